//! The top of each run in a report: what measured it, where, and with which settings, as the
//! run's JSON has them.

use super::page::{json_details, key_values};
use crate::device::MachineInfo;
use crate::results::RunHeader;

/// Gibibytes with one decimal, for memory sizes.
pub fn gib(bytes: u64) -> String {
    format!("{:.1} GiB", bytes as f64 / (1u64 << 30) as f64)
}

pub fn mib(bytes: u64) -> String {
    format!("{:.0} MiB", bytes as f64 / (1u64 << 20) as f64)
}

fn machine_line(m: &MachineInfo) -> String {
    let cores = match m.cpu_physical_cores {
        Some(p) => format!("{p} cores / {} threads", m.cpu_logical_cores),
        None => format!("{} threads", m.cpu_logical_cores),
    };
    format!(
        "{} ({cores}, {} RAM, SIMD {})",
        m.cpu_model,
        gib(m.memory_total_bytes),
        if m.cpu_simd.is_empty() {
            "none".into()
        } else {
            m.cpu_simd.join(" ")
        }
    )
}

fn gpus_line(m: &MachineInfo) -> String {
    if m.gpus.is_empty() {
        return format!("none ({})", m.gpu_note.as_deref().unwrap_or("none found"));
    }
    m.gpus
        .iter()
        .map(|g| format!("{}: {} ({})", g.index, g.name, gib(g.memory_total_bytes)))
        .collect::<Vec<_>>()
        .join("; ")
}

/// The header's fields, then `extra` (model, device, target...), then crate versions and the
/// config as collapsible JSON.
pub fn block(
    header: &RunHeader,
    extra: Vec<(&str, String)>,
    config: Option<&serde_json::Value>,
) -> String {
    let mut pairs = vec![
        ("run", format!("{} ({})", header.run_id, header.kind)),
        (
            "status",
            format!("{:?}", header.status).to_lowercase()
                + &header
                    .finished_at
                    .as_ref()
                    .map(|f| format!(", finished {f}"))
                    .unwrap_or_default(),
        ),
        ("started", header.started_at.clone()),
        (
            "build",
            format!(
                "inferbench {} at {}",
                header.inferbench_version, header.git_commit
            ),
        ),
        ("machine", machine_line(&header.machine)),
        ("GPUs", gpus_line(&header.machine)),
    ];
    if let Some(host) = &header.machine.hostname {
        pairs.push(("host", host.clone()));
    }
    pairs.extend(extra);
    let versions = header
        .crate_versions
        .iter()
        .map(|(k, v)| format!("{k} {v}"))
        .collect::<Vec<_>>()
        .join(", ");
    pairs.push(("crates", versions));
    let mut out = key_values(&pairs);
    if let Some(config) = config {
        out += &json_details("configuration (as run.json has it)", config);
    }
    out
}
