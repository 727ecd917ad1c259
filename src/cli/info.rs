//! `inferbench info`: what machine this is.

use clap::Args;

use crate::device::MachineInfo;
use crate::exit::Outcome;
use crate::metrics::Reading;
use crate::peaks::{self, Peaks};

#[derive(Args)]
pub struct InfoArgs {
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
    /// Also this machine's peaks, the ceilings of a roofline: memory bandwidth (STREAM triad,
    /// all threads and one), f32 GEMM FLOP/s, and on GPUs nominal and measured copy
    /// bandwidth. Measured once (a few seconds) and cached under the machine's fingerprint.
    #[arg(long)]
    peaks: bool,
    /// Measure the peaks again instead of reading the cache.
    #[arg(long, requires = "peaks")]
    refresh_peaks: bool,
}

pub fn handle(args: InfoArgs) -> anyhow::Result<Outcome> {
    let machine = MachineInfo::collect();
    let peaks = if args.peaks {
        let dir = crate::cache::default_dir();
        let fingerprint = peaks::fingerprint(&machine);
        let cached = (!args.refresh_peaks)
            .then(|| peaks::cached(&dir, &fingerprint))
            .flatten();
        let from_cache = cached.is_some();
        let measured = match cached {
            Some(p) => p,
            None => {
                eprintln!("measuring this machine's peaks (a few seconds)...");
                peaks::measure_and_keep(&dir, &machine)?
            }
        };
        Some((measured, from_cache, peaks::cache_file(&dir, &fingerprint)))
    } else {
        None
    };
    if args.json {
        let mut value = serde_json::to_value(&machine)?;
        if let Some((p, _, _)) = &peaks {
            value["peaks"] = serde_json::to_value(p)?;
        }
        println!("{}", serde_json::to_string_pretty(&value)?);
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
    if let Some((p, from_cache, file)) = &peaks {
        print!("{}", peaks_text(p, *from_cache, file));
    }
    Ok(Outcome::Done)
}

fn peaks_text(p: &Peaks, from_cache: bool, file: &std::path::Path) -> String {
    let gb = |b: f64| format!("{:.1} GB/s", b / 1e9);
    let mut out = format!(
        "peaks:     measured {}{} ({})\n",
        p.measured_at,
        if from_cache { ", from the cache" } else { "" },
        file.display()
    );
    out += &format!(
        "  memory:  {} STREAM triad on {} threads, {} on 1; nominal: {}\n",
        gb(p.cpu.triad_bytes_per_s),
        p.cpu.threads,
        gb(p.cpu.triad_one_thread_bytes_per_s),
        match &p.cpu.nominal_bandwidth {
            Reading::Unavailable { reason } => format!("unavailable ({reason})"),
            r => r.value().map_or("-".into(), gb),
        }
    );
    out += &format!(
        "  f32:     {:.1} GFLOP/s (the faster of candle's matmul and inferbench's packed prefill kernel, {n}x{n}, {} threads)\n",
        p.cpu.gemm_f32_flops / 1e9,
        p.cpu.threads,
        n = peaks::GEMM_SIZE
    );
    for g in &p.gpus {
        out += &format!(
            "  gpu {}:   nominal {}, measured copy {}\n",
            g.index,
            g.nominal_bandwidth_bytes_per_s
                .map_or("unknown".into(), |b| gb(b as f64)),
            match &g.copy_bytes_per_s {
                Reading::Unavailable { reason } => format!("unavailable ({reason})"),
                r => r.value().map_or("-".into(), gb),
            }
        );
    }
    out
}
