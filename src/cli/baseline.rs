//! `inferbench baseline`: save, restore and list committed baselines.

use std::path::PathBuf;

use clap::{Args, Subcommand};

use crate::device::MachineInfo;
use crate::exit::Outcome;
use crate::regress::baseline as store;

#[derive(Subcommand)]
pub enum BaselineCommand {
    /// Copy Criterion baseline NAME (target/criterion/**/NAME) and/or a suite result into
    /// baseline/PROFILE/, with this machine's fingerprint, to commit.
    Save {
        name: String,
        #[command(flatten)]
        place: BaselinePlace,
        /// A suite result (run.json or its folder) to keep as baseline/PROFILE/runs/NAME.json.
        #[arg(long)]
        run: Option<PathBuf>,
    },
    /// Copy baseline/PROFILE/'s Criterion baseline NAME back into target/criterion.
    Restore {
        name: String,
        #[command(flatten)]
        place: BaselinePlace,
    },
    /// List the saved profiles and their baselines.
    List {
        /// The folder of committed baselines.
        #[arg(long, default_value = "baseline")]
        store: PathBuf,
    },
}

#[derive(Args)]
pub struct BaselinePlace {
    /// Hardware profile folder under the store (default: a slug of this machine's GPU, or of
    /// its CPU and thread count).
    #[arg(long)]
    profile: Option<String>,
    /// The folder of committed baselines.
    #[arg(long, default_value = "baseline")]
    store: PathBuf,
    /// Criterion's results folder.
    #[arg(long, default_value = "target/criterion")]
    criterion_dir: PathBuf,
}

pub fn handle(cmd: BaselineCommand) -> anyhow::Result<Outcome> {
    let machine = MachineInfo::collect();
    let profile = |p: &Option<String>| {
        p.clone()
            .unwrap_or_else(|| store::default_profile(&machine))
    };
    match cmd {
        BaselineCommand::Save { name, place, run } => {
            let profile = profile(&place.profile);
            let saved = store::save(
                &place.store,
                &profile,
                &name,
                &place.criterion_dir,
                run.as_deref(),
                &machine,
            )?;
            println!(
                "saved baseline {name} into {}: {} Criterion benchmarks{}",
                saved.dir.display(),
                saved.criterion_benchmarks,
                saved
                    .run
                    .map(|r| format!(", suite result {}", r.display()))
                    .unwrap_or_default()
            );
        }
        BaselineCommand::Restore { name, place } => {
            let profile = profile(&place.profile);
            let n = store::restore(&place.store, &profile, &name, &place.criterion_dir)?;
            println!(
                "restored baseline {name} of profile {profile} into {}: {n} benchmarks \
                 (now `cargo bench -- --baseline {name}` or `inferbench compare --baseline {name}`)",
                place.criterion_dir.display()
            );
        }
        BaselineCommand::List { store: dir } => {
            let listed = store::list(&dir)?;
            if listed.is_empty() {
                println!("no saved baselines in {}", dir.display());
            }
            for (profile, names) in listed {
                println!("{profile}: {}", names.join(", "));
            }
        }
    }
    Ok(Outcome::Done)
}
