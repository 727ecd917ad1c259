//! CPU package energy from Linux RAPL (powercap): each top-level `intel-rapl:N` zone's
//! `energy_uj` counter, which wraps at `max_energy_range_uj`. AMD processors expose the same
//! interface on recent kernels. Reading it often needs root.

use std::path::{Path, PathBuf};

use super::counter::counter_delta;

const POWERCAP: &str = "/sys/class/powercap";

#[derive(Debug, Clone)]
struct Zone {
    name: String,
    energy: PathBuf,
    range_uj: Option<u64>,
}

/// The package zones, ready to read.
#[derive(Debug, Clone)]
pub struct Rapl {
    zones: Vec<Zone>,
}

/// One reading of every zone, in microjoules.
#[derive(Debug, Clone, PartialEq)]
pub struct RaplReading(pub Vec<u64>);

impl Rapl {
    /// The machine's RAPL zones, or why there are none.
    pub fn open() -> Result<Rapl, String> {
        Self::open_at(Path::new(POWERCAP))
    }

    pub fn open_at(root: &Path) -> Result<Rapl, String> {
        let entries = std::fs::read_dir(root)
            .map_err(|e| format!("RAPL not present ({}: {e})", root.display()))?;
        let mut zones: Vec<Zone> = entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| {
                // Top-level package zones only ("intel-rapl:0"); subzones ("intel-rapl:0:0")
                // are parts of them.
                p.file_name()
                    .and_then(|n| n.to_str())
                    .and_then(|n| n.strip_prefix("intel-rapl:"))
                    .is_some_and(|rest| !rest.contains(':'))
            })
            .map(|p| Zone {
                name: std::fs::read_to_string(p.join("name"))
                    .map(|s| s.trim().to_string())
                    .unwrap_or_else(|_| p.display().to_string()),
                range_uj: std::fs::read_to_string(p.join("max_energy_range_uj"))
                    .ok()
                    .and_then(|s| s.trim().parse().ok()),
                energy: p.join("energy_uj"),
            })
            .collect();
        zones.sort_by(|a, b| a.energy.cmp(&b.energy));
        if zones.is_empty() {
            return Err(format!(
                "RAPL not present (no intel-rapl zone in {})",
                root.display()
            ));
        }
        let rapl = Rapl { zones };
        rapl.read()?; // readable now, or say why (often: permission denied)
        Ok(rapl)
    }

    pub fn zone_names(&self) -> Vec<String> {
        self.zones.iter().map(|z| z.name.clone()).collect()
    }

    pub fn read(&self) -> Result<RaplReading, String> {
        self.zones
            .iter()
            .map(|z| {
                let text = std::fs::read_to_string(&z.energy)
                    .map_err(|e| format!("RAPL unreadable ({}: {e})", z.energy.display()))?;
                text.trim()
                    .parse()
                    .map_err(|_| format!("RAPL: {} holds {:?}", z.energy.display(), text.trim()))
            })
            .collect::<Result<Vec<u64>, String>>()
            .map(RaplReading)
    }

    /// Joules over all zones between two readings.
    pub fn joules_between(&self, a: &RaplReading, b: &RaplReading) -> Result<f64, String> {
        let mut micro = 0u64;
        for ((zone, start), end) in self.zones.iter().zip(&a.0).zip(&b.0) {
            micro += counter_delta(*start, *end, zone.range_uj)
                .map_err(|e| format!("RAPL {}: {e}", zone.name))?;
        }
        Ok(micro as f64 / 1e6)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zone(root: &Path, dir: &str, energy: &str, range: &str) {
        let d = root.join(dir);
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join("name"), format!("{dir}-name\n")).unwrap();
        std::fs::write(d.join("energy_uj"), energy).unwrap();
        std::fs::write(d.join("max_energy_range_uj"), range).unwrap();
    }

    #[test]
    fn reads_package_zones_and_handles_wrap_around() {
        let root = tempfile::tempdir().unwrap();
        zone(root.path(), "intel-rapl:0", "999000000\n", "1000000000\n");
        zone(root.path(), "intel-rapl:0:0", "5\n", "1000000000\n"); // a subzone: skipped
        let rapl = Rapl::open_at(root.path()).unwrap();
        assert_eq!(rapl.zone_names(), ["intel-rapl:0-name"]);
        let a = rapl.read().unwrap();
        std::fs::write(root.path().join("intel-rapl:0/energy_uj"), "2000000").unwrap();
        let b = rapl.read().unwrap();
        // 1 J to the top of the range, 2 J after the wrap.
        assert!((rapl.joules_between(&a, &b).unwrap() - 3.0).abs() < 1e-9);
    }

    #[test]
    fn missing_and_unreadable_say_why() {
        let root = tempfile::tempdir().unwrap();
        let none = Rapl::open_at(&root.path().join("nothing")).unwrap_err();
        assert!(none.contains("not present"), "{none}");
        let empty = Rapl::open_at(root.path()).unwrap_err();
        assert!(empty.contains("no intel-rapl zone"), "{empty}");
        zone(root.path(), "intel-rapl:0", "garbage", "10");
        let bad = Rapl::open_at(root.path()).unwrap_err();
        assert!(
            bad.contains("energy_uj") && bad.contains("garbage"),
            "{bad}"
        );
    }
}
