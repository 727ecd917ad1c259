//! What this machine can do at best, the ceilings a roofline is drawn against: memory
//! bandwidth (a STREAM triad over all threads and over one) and f32 matrix multiply FLOP/s on
//! the CPU; on each GPU the nominal bandwidth NVML gives and a measured device-to-device copy.
//! Measured once per machine and cached under its fingerprint, since a measurement takes
//! seconds and the hardware does not change between runs.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::device::MachineInfo;
use crate::metrics::Reading;
use crate::results::{now_rfc3339, write_atomic};

/// Elements per triad array: 8 Mi f64 (64 MiB each, 192 MiB in all), far past any CPU cache.
pub const TRIAD_ELEMENTS: usize = 8 << 20;
/// Bytes a triad element moves, as STREAM counts them: read b and c, write a.
const TRIAD_BYTES_PER_ELEMENT: f64 = 24.0;
/// The square f32 matrices multiplied for the FLOP/s peak (17 GFLOP a product).
pub const GEMM_SIZE: usize = 2048;
/// Timed repetitions; the best counts (STREAM's convention). A triad pass takes milliseconds,
/// a product a tenth of a second on two cores.
const TRIAD_REPS: usize = 20;
const GEMM_REPS: usize = 5;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Peaks {
    /// What the figures belong to: CPU, threads, memory, GPUs, compiled features.
    pub fingerprint: String,
    pub measured_at: String,
    pub cpu: CpuPeaks,
    pub gpus: Vec<GpuPeaks>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct CpuPeaks {
    pub threads: usize,
    /// a[i] = b[i] + s·c[i] over TRIAD_ELEMENTS f64, all threads: bytes/s.
    pub triad_bytes_per_s: f64,
    /// The same on one thread: what a single-threaded kernel can hope for.
    pub triad_one_thread_bytes_per_s: f64,
    /// The faster of candle's f32 matmul and inferbench's packed prefill kernel (where the
    /// CPU runs it) on two GEMM_SIZE² matrices, all threads: FLOP/s (2n³ per product).
    pub gemm_f32_flops: f64,
    /// No vendor figure for DRAM is known to the program on a CPU.
    pub nominal_bandwidth: Reading<f64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct GpuPeaks {
    pub index: u32,
    pub name: String,
    /// Memory clock × bus width × 2, from NVML.
    pub nominal_bandwidth_bytes_per_s: Option<u64>,
    /// A device-to-device copy of 256 MiB: (read + written) bytes/s, best of ten.
    pub copy_bytes_per_s: Reading<f64>,
}

/// The identity the cache is keyed by: what the peaks depend on.
pub fn fingerprint(m: &MachineInfo) -> String {
    let gpus: Vec<&str> = m.gpus.iter().map(|g| g.name.as_str()).collect();
    // "peaks 2": the GEMM peak counts inferbench's packed kernel since; older caches re-measure.
    format!(
        "peaks 2 | {} | {} threads (candle {}) | {} GiB | simd {} | gpus [{}] | features [{}] | {} build",
        m.cpu_model,
        m.cpu_logical_cores,
        m.compute_threads,
        m.memory_total_bytes >> 30,
        m.cpu_simd.join(" "),
        gpus.join(", "),
        m.compiled_features.join(", "),
        // A debug build's own loops are slower: its figures must not stand for a release's.
        if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        }
    )
}

/// The cache file for this fingerprint.
pub fn cache_file(dir: &Path, fingerprint: &str) -> PathBuf {
    dir.join(format!("peaks-{}.json", crate::cache::key(&fingerprint)))
}

/// The cached peaks of this machine, or None when there are none (or they are unreadable or
/// of another machine: then they are measured again).
pub fn cached(dir: &Path, fingerprint: &str) -> Option<Peaks> {
    let text = std::fs::read_to_string(cache_file(dir, fingerprint)).ok()?;
    let peaks: Peaks = serde_json::from_str(&text).ok()?;
    (peaks.fingerprint == fingerprint).then_some(peaks)
}

/// This machine's cached peaks from the default cache folder, without measuring.
pub fn cached_here(machine: &MachineInfo) -> Option<Peaks> {
    cached(&crate::cache::default_dir(), &fingerprint(machine))
}

/// Measure, then keep the result in `dir` for next time.
pub fn measure_and_keep(dir: &Path, machine: &MachineInfo) -> Result<Peaks> {
    let peaks = measure(machine);
    std::fs::create_dir_all(dir)
        .with_context(|| format!("{}: cannot create the cache folder", dir.display()))?;
    let file = cache_file(dir, &peaks.fingerprint);
    write_atomic(&file, serde_json::to_string_pretty(&peaks)?.as_bytes())?;
    Ok(peaks)
}

pub fn measure(machine: &MachineInfo) -> Peaks {
    let threads = machine.compute_threads.max(1);
    Peaks {
        fingerprint: fingerprint(machine),
        measured_at: now_rfc3339(),
        cpu: CpuPeaks {
            threads,
            triad_bytes_per_s: triad(threads, TRIAD_ELEMENTS),
            triad_one_thread_bytes_per_s: triad(1, TRIAD_ELEMENTS),
            gemm_f32_flops: gemm_flops(GEMM_SIZE).max(packed_gemm_flops(GEMM_SIZE)),
            nominal_bandwidth: Reading::unavailable(
                "no vendor figure for this CPU's memory; the measured triad is the ceiling",
            ),
        },
        gpus: machine
            .gpus
            .iter()
            .map(|g| GpuPeaks {
                index: g.index,
                name: g.name.clone(),
                nominal_bandwidth_bytes_per_s: g.memory_bandwidth_bytes_per_s,
                copy_bytes_per_s: gpu_copy(g.index as usize),
            })
            .collect(),
    }
}

/// Best bytes/s of the STREAM triad on `threads` threads over arrays of `n` f64.
pub fn triad(threads: usize, n: usize) -> f64 {
    let Ok(pool) = rayon::ThreadPoolBuilder::new().num_threads(threads).build() else {
        return f64::NAN;
    };
    let chunk = n.div_ceil(threads * 8).max(4096);
    pool.install(|| {
        // First touch on the threads that will use the pages.
        let mut a = vec![0f64; n];
        let mut b = vec![0f64; n];
        let mut c = vec![0f64; n];
        b.par_chunks_mut(chunk).for_each(|x| x.fill(1.0));
        c.par_chunks_mut(chunk).for_each(|x| x.fill(2.0));
        a.par_chunks_mut(chunk).for_each(|x| x.fill(0.0));
        let scalar = std::hint::black_box(3.0);
        let mut best = f64::INFINITY;
        for _ in 0..=TRIAD_REPS {
            let start = Instant::now();
            a.par_chunks_mut(chunk)
                .zip(b.par_chunks(chunk))
                .zip(c.par_chunks(chunk))
                .for_each(|((a, b), c)| {
                    for ((a, b), c) in a.iter_mut().zip(b).zip(c) {
                        *a = b + scalar * c;
                    }
                });
            std::hint::black_box(&a);
            best = best.min(start.elapsed().as_secs_f64());
        }
        TRIAD_BYTES_PER_ELEMENT * n as f64 / best
    })
}

/// Best FLOP/s of candle's f32 matmul of two n×n matrices on the CPU.
pub fn gemm_flops(n: usize) -> f64 {
    use candle_core::{Device, Tensor};
    let make = |seed| Tensor::from_vec(gemm_operand(n, seed), (n, n), &Device::Cpu);
    let (Ok(a), Ok(b)) = (make(0.1), make(0.7)) else {
        return f64::NAN;
    };
    square_product_flops(n, || a.matmul(&b).map(std::hint::black_box).is_ok())
}

/// The same product through the prefill's packed kernel over candle's pool (`dense_gemm`),
/// which on AVX-512 CPUs beats candle's matmul: a ceiling the engine's prefill can exceed
/// must not be called one. NaN where the CPU does not run it.
pub fn packed_gemm_flops(n: usize) -> f64 {
    use candle_core::{Device, Tensor};
    use inferbench_distance::panel_gemm::{self, PackedWeight};
    if !panel_gemm::available() {
        return f64::NAN;
    }
    let Ok(a) = Tensor::from_vec(gemm_operand(n, 0.1), (n, n), &Device::Cpu) else {
        return f64::NAN;
    };
    let b = PackedWeight::pack(&gemm_operand(n, 0.7), n, n);
    square_product_flops(n, || {
        crate::model::dense_gemm::matmul_packed(&a, &b)
            .map(std::hint::black_box)
            .is_ok_and(|y| y.is_some())
    })
}

/// An n × n operand of small deterministic values (no denormals, no zeros to skip).
fn gemm_operand(n: usize, seed: f32) -> Vec<f32> {
    (0..n * n)
        .map(|i| ((i as f32 * 0.618 + seed).fract() - 0.5) * 0.1)
        .collect()
}

/// FLOP/s of an n × n × n product from the best of GEMM_REPS + 1 timed calls of `product`
/// (false when it failed: NaN).
fn square_product_flops(n: usize, mut product: impl FnMut() -> bool) -> f64 {
    let mut best = f64::INFINITY;
    for _ in 0..=GEMM_REPS {
        let start = Instant::now();
        if !product() {
            return f64::NAN;
        }
        best = best.min(start.elapsed().as_secs_f64());
    }
    2.0 * (n as f64).powi(3) / best
}

/// A device-to-device copy on GPU `index`: bytes read and written per second.
#[cfg(feature = "cuda")]
fn gpu_copy(index: usize) -> Reading<f64> {
    use candle_core::{DType, Device, Tensor};
    const COPY_REPS: usize = 10;
    let run = || -> candle_core::Result<f64> {
        let device = Device::new_cuda(index)?;
        let elements = 64 << 20; // 256 MiB of f32
        let source = Tensor::zeros(elements, DType::F32, &device)?;
        let mut best = f64::INFINITY;
        for _ in 0..=COPY_REPS {
            device.synchronize()?;
            let start = Instant::now();
            let copy = source.copy()?;
            device.synchronize()?;
            best = best.min(start.elapsed().as_secs_f64());
            drop(copy);
        }
        Ok(2.0 * (elements * 4) as f64 / best)
    };
    match run() {
        Ok(v) => Reading::Measured { value: v },
        Err(e) => Reading::unavailable(format!("the copy on GPU {index} failed: {e}")),
    }
}

#[cfg(not(feature = "cuda"))]
fn gpu_copy(_index: usize) -> Reading<f64> {
    Reading::unavailable("this build has no CUDA (build with --features cuda)")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_triad_and_the_gemm_give_plausible_rates() {
        // 2 MiB arrays: quick, and small beside what other tests of this process measure
        // (host_memory's peak RSS).
        let one = triad(1, 1 << 18);
        assert!(one.is_finite() && one > 1e8, "{one} B/s");
        let flops = gemm_flops(128);
        assert!(flops.is_finite() && flops > 1e7, "{flops} FLOP/s");
    }

    #[test]
    fn peaks_are_cached_per_machine() {
        let dir = tempfile::tempdir().unwrap();
        let peaks = Peaks {
            fingerprint: "cpu x | 2 threads".into(),
            measured_at: "now".into(),
            cpu: CpuPeaks {
                threads: 2,
                triad_bytes_per_s: 1e10,
                triad_one_thread_bytes_per_s: 6e9,
                gemm_f32_flops: 5e10,
                nominal_bandwidth: Reading::unavailable("x"),
            },
            gpus: Vec::new(),
        };
        let file = cache_file(dir.path(), &peaks.fingerprint);
        std::fs::write(&file, serde_json::to_string(&peaks).unwrap()).unwrap();
        assert_eq!(cached(dir.path(), "cpu x | 2 threads"), Some(peaks));
        assert_eq!(
            cached(dir.path(), "cpu y | 2 threads"),
            None,
            "another machine"
        );
        std::fs::write(&file, "{ not json").unwrap();
        assert_eq!(
            cached(dir.path(), "cpu x | 2 threads"),
            None,
            "a broken file is remeasured"
        );
    }
}
