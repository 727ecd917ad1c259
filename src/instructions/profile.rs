//! What an instruction count depends on besides the code under test: the architecture, the
//! instruction-set extensions the code dispatches on (as the counted process sees them: under
//! valgrind, CPUID is valgrind's), the compiler, the build profile and its cargo features, and
//! valgrind itself. Two counts are comparable only when all of these agree; the CPU model and
//! clock do not matter.

use crate::report::instructions::CountProfile;

/// This process's view, with the valgrind version the runner found.
pub fn here(valgrind: &str) -> CountProfile {
    CountProfile {
        arch: std::env::consts::ARCH.into(),
        features: dispatch_features(),
        rustc: env!("INFERBENCH_RUSTC_VERSION").into(),
        build: if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        }
        .into(),
        cargo_features: crate::device::compiled_features(),
        valgrind: valgrind.into(),
    }
}

/// The extensions this process can use, of those our dependencies dispatch on.
fn dispatch_features() -> Vec<String> {
    #[allow(unused_mut)]
    let mut found: Vec<&str> = Vec::new();
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::is_x86_feature_detected as has;
        for (name, present) in [
            ("avx", has!("avx")),
            ("avx2", has!("avx2")),
            ("fma", has!("fma")),
            ("f16c", has!("f16c")),
            ("avx512f", has!("avx512f")),
        ] {
            if present {
                found.push(name);
            }
        }
    }
    #[cfg(target_arch = "aarch64")]
    {
        use std::arch::is_aarch64_feature_detected as has;
        for (name, present) in [("neon", has!("neon")), ("dotprod", has!("dotprod"))] {
            if present {
                found.push(name);
            }
        }
    }
    found.into_iter().map(String::from).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn differences_name_each_field() {
        let a = here("valgrind-3.19.0");
        assert!(a.differences(&a).is_empty());
        let mut b = a.clone();
        b.rustc = "rustc 0.1".into();
        b.features.push("sse9".into());
        let d = a.differences(&b);
        assert_eq!(d.len(), 2, "{d:?}");
        assert!(d
            .iter()
            .any(|s| s.starts_with("rustc: ") && s.ends_with("rustc 0.1")));
        assert!(d.iter().any(|s| s.starts_with("features: ")));
        assert!(a.slug().starts_with(std::env::consts::ARCH));
    }
}
