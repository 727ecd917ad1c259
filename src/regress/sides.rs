//! The two sides of a comparison, whatever they are: two suite results (run.json of any kind)
//! or two Criterion runs under target/criterion; with their labels and the hardware each was
//! measured on, and the policy for a baseline from other hardware.

use std::path::PathBuf;

use anyhow::{bail, Result};

use super::baseline::{self, Fingerprint};
use super::{criterion, suite, Benchmark, Comparison};
use crate::device::MachineInfo;
use crate::results::RunHeader;

/// What to compare.
pub enum CompareInput {
    /// Two suite results: run.json files or run folders.
    Runs { base: PathBuf, current: PathBuf },
    /// Criterion's saved baseline `baseline` against its run `current`, under `dir`.
    Criterion {
        dir: PathBuf,
        baseline: String,
        current: String,
    },
}

pub struct Sides {
    pub base: Vec<Benchmark>,
    pub current: Vec<Benchmark>,
    /// How the table names each side: "RUN_ID (COMMIT)" or the Criterion baseline's name.
    pub labels: (String, String),
    /// The hardware of each side; None when the baseline has no fingerprint.
    pub fingerprints: Option<(Fingerprint, Fingerprint)>,
    /// Instruction counts of one profile: the hardware they ran on does not matter.
    pub counts_of_one_profile: bool,
}

impl CompareInput {
    /// Load both sides; runs of different kinds are refused.
    pub fn load(&self) -> Result<Sides> {
        match self {
            CompareInput::Runs { base, current } => {
                let (b, c) = (suite::load(base)?, suite::load(current)?);
                let (bh, ch) = (&b.header, &c.header);
                if bh.kind != ch.kind {
                    bail!(
                        "{} is a {} run and {} a {} run: not comparable",
                        base.display(),
                        bh.kind,
                        current.display(),
                        ch.kind
                    );
                }
                if let (Some(bp), Some(cp)) = (&b.count_profile, &c.count_profile) {
                    let differences = bp.differences(cp);
                    if !differences.is_empty() {
                        bail!(
                            "{} and {} were counted with different profiles ({}): instruction \
                             counts are comparable only for one compiler, build, instruction \
                             set and valgrind; record a baseline with this profile",
                            base.display(),
                            current.display(),
                            differences.join("; ")
                        );
                    }
                }
                let label = |h: &RunHeader| format!("{} ({})", h.run_id, h.git_commit);
                Ok(Sides {
                    counts_of_one_profile: b.count_profile.is_some() && c.count_profile.is_some(),
                    labels: (label(bh), label(ch)),
                    fingerprints: Some((
                        Fingerprint::of(&bh.machine),
                        Fingerprint::of(&ch.machine),
                    )),
                    base: b.benchmarks,
                    current: c.benchmarks,
                })
            }
            CompareInput::Criterion {
                dir,
                baseline: name,
                current,
            } => {
                let base = criterion::load(dir, name)?;
                let cur = criterion::load(dir, current)?;
                let fp_path = baseline::restored_fingerprint_path(dir, name);
                let fingerprints = if fp_path.is_file() {
                    let now = Fingerprint::of(&MachineInfo::collect());
                    Some((baseline::read_fingerprint(&fp_path)?, now))
                } else {
                    None
                };
                Ok(Sides {
                    counts_of_one_profile: false,
                    base,
                    current: cur,
                    labels: (name.clone(), current.clone()),
                    fingerprints,
                })
            }
        }
    }
}

impl Sides {
    /// Compare the two sides under `settings`, then apply the hardware policy (see
    /// `check_hardware`): what `inferbench compare`, the report and the dashboard all do.
    pub fn compare(&self, settings: &super::RegressSection, strict: bool) -> Result<Comparison> {
        let mut c = super::compare(
            &self.base,
            &self.current,
            settings,
            (&self.labels.0, &self.labels.1),
        );
        self.check_hardware(&mut c, strict)?;
        Ok(c)
    }

    /// A baseline from other hardware is a loud note on the comparison (an error with
    /// `strict`); a baseline without a fingerprint is a quiet one.
    pub fn check_hardware(&self, comparison: &mut Comparison, strict: bool) -> Result<()> {
        if self.counts_of_one_profile {
            return Ok(()); // what counts depend on was checked when loading
        }
        let Some((b, c)) = &self.fingerprints else {
            comparison.notes.push(format!(
                "baseline {} has no fingerprint (saved by cargo bench directly): hardware not checked",
                self.labels.0
            ));
            return Ok(());
        };
        let differences = b.hardware_differences(c);
        if differences.is_empty() {
            return Ok(());
        }
        let msg = format!(
            "DIFFERENT HARDWARE: the baseline was measured elsewhere ({}); changes may be the machine, not the code",
            differences.join("; ")
        );
        eprintln!("warning: {msg}");
        if strict {
            bail!("--strict: {msg}");
        }
        comparison.notes.insert(0, msg);
        Ok(())
    }
}
