//! `inferbench info`: what machine this is.

use clap::Args;

use crate::device::MachineInfo;
use crate::exit::Outcome;

#[derive(Args)]
pub struct InfoArgs {
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

pub fn handle(args: InfoArgs) -> anyhow::Result<Outcome> {
    let machine = MachineInfo::collect();
    if args.json {
        println!("{}", serde_json::to_string_pretty(&machine)?);
        return Ok(Outcome::Done);
    }
    let gib = |b: u64| b as f64 / (1u64 << 30) as f64;
    println!("inferbench {}", machine.inferbench_version);
    println!(
        "os:        {} (kernel {})",
        machine.os.as_deref().unwrap_or("unknown"),
        machine.kernel.as_deref().unwrap_or("unknown")
    );
    println!("cpu:       {}", machine.cpu_model);
    println!(
        "cores:     {} logical, {} physical; candle uses {} threads",
        machine.cpu_logical_cores,
        machine
            .cpu_physical_cores
            .map_or("unknown".into(), |c| c.to_string()),
        machine.compute_threads
    );
    println!("simd:      {}", machine.cpu_simd.join(" "));
    println!("memory:    {:.1} GiB", gib(machine.memory_total_bytes));
    if machine.gpus.is_empty() {
        println!(
            "gpus:      none ({})",
            machine.gpu_note.as_deref().unwrap_or("unknown")
        );
    }
    for g in &machine.gpus {
        let capability = g
            .compute_capability
            .as_ref()
            .map_or(String::new(), |c| format!(", compute capability {c}"));
        let bandwidth = g.memory_bandwidth_bytes_per_s.map_or(String::new(), |b| {
            format!(", {:.0} GB/s nominal memory bandwidth", b as f64 / 1e9)
        });
        println!(
            "gpu {}:     {} ({:.1} GiB{capability}{bandwidth})",
            g.index,
            g.name,
            gib(g.memory_total_bytes)
        );
    }
    if let Some(d) = &machine.gpu_driver {
        println!(
            "driver:    {d} (CUDA {})",
            machine.cuda_driver_version.as_deref().unwrap_or("?")
        );
    }
    println!(
        "features:  {}",
        if machine.compiled_features.is_empty() {
            "none".into()
        } else {
            machine.compiled_features.join(", ")
        }
    );
    Ok(Outcome::Done)
}
