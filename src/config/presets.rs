//! The presets in fixtures/presets/, built into the binary so `--preset` works wherever
//! inferbench is installed.

const PRESETS: &[(&str, &str)] = &[
    ("quick", include_str!("../../fixtures/presets/quick.toml")),
    ("full", include_str!("../../fixtures/presets/full.toml")),
    (
        "tok_throughput",
        include_str!("../../fixtures/presets/tok_throughput.toml"),
    ),
    (
        "cpu_only",
        include_str!("../../fixtures/presets/cpu_only.toml"),
    ),
    (
        "rtx_4090",
        include_str!("../../fixtures/presets/rtx_4090.toml"),
    ),
    ("h100", include_str!("../../fixtures/presets/h100.toml")),
    ("h200", include_str!("../../fixtures/presets/h200.toml")),
    (
        "production",
        include_str!("../../fixtures/presets/production.toml"),
    ),
];

/// The preset's canonical name, if `name` is one.
pub fn name(name: &str) -> Option<&'static str> {
    PRESETS.iter().find(|(n, _)| *n == name).map(|(n, _)| *n)
}

pub fn text(name: &str) -> Option<&'static str> {
    PRESETS.iter().find(|(n, _)| *n == name).map(|(_, t)| *t)
}

pub fn names() -> Vec<&'static str> {
    PRESETS.iter().map(|(n, _)| *n).collect()
}

/// The hardware profile whose targets apply to a device, for `profile = "auto"`.
pub fn hardware_profile(device_name: &str, gpu_name: Option<&str>) -> Option<&'static str> {
    if device_name == "cpu" {
        return Some("cpu_only");
    }
    let gpu = gpu_name?.to_ascii_lowercase();
    if gpu.contains("4090") {
        Some("rtx_4090")
    } else if gpu.contains("h100") {
        Some("h100")
    } else if gpu.contains("h200") {
        Some("h200")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_preset_file_is_built_in() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/presets");
        let mut on_disk: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "toml"))
            .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
            .collect();
        on_disk.sort();
        let mut built_in: Vec<String> = names().iter().map(|s| s.to_string()).collect();
        built_in.sort();
        assert_eq!(on_disk, built_in);
    }

    #[test]
    fn auto_profile_follows_the_hardware() {
        assert_eq!(hardware_profile("cpu", None), Some("cpu_only"));
        assert_eq!(
            hardware_profile("cuda:0", Some("NVIDIA GeForce RTX 4090")),
            Some("rtx_4090")
        );
        assert_eq!(
            hardware_profile("cuda:0", Some("NVIDIA H100 80GB HBM3")),
            Some("h100")
        );
        assert_eq!(
            hardware_profile("cuda:0", Some("NVIDIA H200")),
            Some("h200")
        );
        assert_eq!(hardware_profile("cuda:0", Some("Tesla T4")), None);
    }
}
