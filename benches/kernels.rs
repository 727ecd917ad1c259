//! The hot paths of llama inference, one Criterion group per kernel, at SmolLM2-135M and
//! Llama-2-7B / Llama-3-8B shapes, on every device this build has (CPU, and CUDA with the
//! `cuda` feature and a GPU). Throughput: `elem/s` is FLOP/s for matmul and attention, and
//! `B/s` is weight bytes read per second for quantised matmul and bytes touched for the rest.
//!
//!   cargo bench --bench kernels                      # everything
//!   cargo bench --bench kernels -- 'qmatmul/.*llama' # one group, by regex
//! CPU flamegraph of one group: `cargo bench --bench kernels -- --profile-time 10 'qmatmul/cpu'`
//! writes target/criterion/<group>/<bench>/profile/flamegraph.svg (pprof, 997 Hz).
//! Profile a CUDA run with Nsight: `nsys profile cargo bench --features cuda --bench kernels --
//! --profile-time 10 attention` (`--profile-time` runs without analysis, so the profiler sees
//! only the kernel loop); `ncu --target-processes all` the same way for per-kernel metrics.

#[path = "common/flamegraph.rs"]
mod flamegraph;

use std::time::Duration;

use candle_core::quantized::{GgmlDType, QMatMul, QTensor};
use candle_core::{DType, Device, Module, Tensor};
use criterion::{criterion_group, BenchmarkId, Criterion, Throughput};
use inferbench::model::{dense_gemm, q8_matmul};
use inferbench_distance::panel_gemm::{self, PackedWeight};

/// Model shapes: hidden size, MLP size, attention heads, key/value heads.
struct Shape {
    name: &'static str,
    hidden: usize,
    mlp: usize,
    heads: usize,
    kv_heads: usize,
}

const SHAPES: &[Shape] = &[
    Shape {
        name: "smollm2-135m",
        hidden: 576,
        mlp: 1536,
        heads: 9,
        kv_heads: 3,
    },
    Shape {
        name: "llama2-7b",
        hidden: 4096,
        mlp: 11008,
        heads: 32,
        kv_heads: 32,
    },
    Shape {
        name: "llama3-8b",
        hidden: 4096,
        mlp: 14336,
        heads: 32,
        kv_heads: 8,
    },
];

/// When this run's first benchmark started: results written since are this run's.
static STARTED: std::sync::OnceLock<std::time::SystemTime> = std::sync::OnceLock::new();

/// Where Criterion writes its results (as Criterion decides it, short of `cargo metadata`).
fn criterion_root() -> std::path::PathBuf {
    if let Some(home) = std::env::var_os("CRITERION_HOME") {
        return home.into();
    }
    std::env::var_os("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target"))
        .join("criterion")
}

/// Last: every kernel this run measured, as GB/s or GFLOP/s and a share of this machine's
/// peaks (the CPU's triad and GEMM; a GPU's measured copy).
fn shares_of_peak(_c: &mut Criterion) {
    let Some(started) = STARTED.get() else {
        return; // nothing ran
    };
    let figures = inferbench::kernel_shares::collect(&criterion_root(), *started);
    if figures.is_empty() {
        return; // --profile-time, --list, or a filter that matched nothing: no estimates
    }
    let machine = inferbench::device::MachineInfo::collect();
    let peaks = inferbench::peaks::cached_here(&machine);
    let cpu = inferbench::roofline::Ceiling::of(peaks.as_ref(), None);
    let gpu = inferbench::roofline::Ceiling::of(peaks.as_ref(), Some(0));
    eprintln!(
        "\nkernels against the peaks (median time; cpu: {}):",
        cpu.what
    );
    for f in &figures {
        eprintln!("  {}", inferbench::kernel_shares::line(f, &cpu, &gpu));
    }
}

/// This machine's peaks (from `inferbench info --peaks`), once: Criterion's B/s and elem/s
/// over them are each kernel's share of the roofline.
fn print_peaks() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        STARTED.get_or_init(std::time::SystemTime::now);
        let machine = inferbench::device::MachineInfo::collect();
        match inferbench::peaks::cached_here(&machine) {
            Some(p) => {
                eprintln!(
                    "kernels: peaks of this machine: cpu triad {:.1} GB/s ({} threads), {:.1} GB/s \
                     (1 thread), f32 GEMM {:.1} GFLOP/s",
                    p.cpu.triad_bytes_per_s / 1e9,
                    p.cpu.threads,
                    p.cpu.triad_one_thread_bytes_per_s / 1e9,
                    p.cpu.gemm_f32_flops / 1e9
                );
                for g in &p.gpus {
                    let copy = g.copy_bytes_per_s.value().map(|v| v / 1e9);
                    eprintln!(
                        "kernels: peaks of gpu {} ({}): copy {copy:.1?} GB/s",
                        g.index, g.name
                    );
                }
            }
            None => eprintln!(
                "kernels: no peaks measured on this machine: `inferbench info --peaks` measures \
                 them, to read each kernel's B/s and elem/s as a share of the roofline"
            ),
        }
    });
}

fn devices() -> Vec<(String, Device)> {
    print_peaks();
    let mut devices = vec![("cpu".to_string(), Device::Cpu)];
    if cfg!(feature = "cuda") {
        match Device::new_cuda(0) {
            Ok(d) => devices.push(("cuda0".to_string(), d)),
            Err(e) => eprintln!("kernels: CUDA built in but no GPU usable ({e}); CPU only"),
        }
    }
    devices
}

fn sync(device: &Device) {
    device.synchronize().expect("device synchronise");
}

fn randn(shape: &[usize], dtype: DType, device: &Device) -> Tensor {
    Tensor::randn(0f32, 1.0, shape, device)
        .and_then(|t| t.to_dtype(dtype))
        .expect("random tensor")
}

fn configure<'a>(
    c: &'a mut Criterion,
    name: &str,
) -> criterion::BenchmarkGroup<'a, criterion::measurement::WallTime> {
    let mut g = c.benchmark_group(name);
    g.sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    g
}

/// Dense matmul of the MLP up projection: rows × hidden times hidden × mlp.
fn matmul(c: &mut Criterion) {
    let mut g = configure(c, "matmul");
    for (dev_name, device) in devices() {
        for shape in SHAPES {
            for dtype in [DType::F32, DType::F16, DType::BF16] {
                for rows in [1usize, 128] {
                    let x = randn(&[rows, shape.hidden], dtype, &device);
                    let w = randn(&[shape.mlp, shape.hidden], dtype, &device)
                        .t()
                        .unwrap();
                    g.throughput(Throughput::Elements(
                        (2 * rows * shape.hidden * shape.mlp) as u64,
                    ));
                    let id = format!("{dev_name}/{}/{dtype:?}/rows={rows}", shape.name);
                    g.bench_function(BenchmarkId::from_parameter(id), |b| {
                        b.iter(|| {
                            let y = x.matmul(&w).unwrap();
                            sync(&device);
                            y
                        })
                    });
                    if dtype == DType::F32 && device.is_cpu() && panel_gemm::available() {
                        // The engine's prefill kernel on the same weight, packed once as the
                        // engine keeps it.
                        let rows_of_w = w.t().unwrap().flatten_all().unwrap();
                        let packed = PackedWeight::pack(
                            &rows_of_w.to_vec1::<f32>().unwrap(),
                            shape.mlp,
                            shape.hidden,
                        );
                        let id = format!("{dev_name}/{}/F32-inferbench/rows={rows}", shape.name);
                        g.bench_function(BenchmarkId::from_parameter(id), |b| {
                            b.iter(|| dense_gemm::matmul_packed(&x, &packed).unwrap())
                        });
                    }
                }
            }
        }
    }
    g.finish();
}

/// The decode hot path: quantised weights times one activation vector.
fn qmatmul(c: &mut Criterion) {
    let mut g = configure(c, "qmatmul");
    for (dev_name, device) in devices() {
        for shape in SHAPES {
            for qtype in [GgmlDType::Q4_0, GgmlDType::Q4_1, GgmlDType::Q8_0] {
                let w = randn(&[shape.mlp, shape.hidden], DType::F32, &device);
                let q = QTensor::quantize(&w, qtype).expect("quantise");
                let bytes = q.storage_size_in_bytes() as u64;
                let mm = QMatMul::from_qtensor(q).expect("qmatmul");
                let x = randn(&[1, shape.hidden], DType::F32, &device);
                g.throughput(Throughput::Bytes(bytes));
                let id = format!("{dev_name}/{}/{qtype:?}", shape.name);
                g.bench_function(BenchmarkId::from_parameter(id), |b| {
                    b.iter(|| {
                        let y = mm.forward(&x).unwrap();
                        sync(&device);
                        y
                    })
                });
                let ours = (qtype == GgmlDType::Q8_0).then(|| q8_weight(&w));
                if let Some(q) = ours.filter(|q| q8_matmul::applies(q, &device)) {
                    // The engine's own kernel (decode's matvec) on the same weight.
                    let id = format!("{dev_name}/{}/Q8_0-inferbench", shape.name);
                    g.bench_function(BenchmarkId::from_parameter(id), |b| {
                        b.iter(|| q8_matmul::forward(&q, &x).unwrap())
                    });
                }
            }
        }
    }
    g.finish();
}

fn q8_weight(w: &Tensor) -> QTensor {
    QTensor::quantize(w, GgmlDType::Q8_0).expect("quantise")
}

/// Elementwise-style kernels over a 128-token prefill: softmax over attention scores,
/// rms_norm over hidden states, and the interleaved rotary embedding on queries.
fn pointwise(c: &mut Criterion) {
    let mut g = configure(c, "pointwise");
    let seq = 128;
    for (dev_name, device) in devices() {
        for shape in SHAPES {
            let head_dim = shape.hidden / shape.heads;
            let scores = randn(&[1, shape.heads, seq, seq], DType::F32, &device);
            g.throughput(Throughput::Bytes((scores.elem_count() * 4 * 2) as u64));
            g.bench_function(
                BenchmarkId::new("softmax", format!("{dev_name}/{}", shape.name)),
                |b| {
                    b.iter(|| {
                        let y = candle_nn::ops::softmax_last_dim(&scores).unwrap();
                        sync(&device);
                        y
                    })
                },
            );
            let hidden = randn(&[1, seq, shape.hidden], DType::F32, &device);
            let alpha = randn(&[shape.hidden], DType::F32, &device);
            g.throughput(Throughput::Bytes((hidden.elem_count() * 4 * 2) as u64));
            g.bench_function(
                BenchmarkId::new("rms_norm", format!("{dev_name}/{}", shape.name)),
                |b| {
                    b.iter(|| {
                        let y = candle_nn::ops::rms_norm(&hidden, &alpha, 1e-5).unwrap();
                        sync(&device);
                        y
                    })
                },
            );
            let q = randn(&[1, shape.heads, seq, head_dim], DType::F32, &device);
            let cos = randn(&[seq, head_dim / 2], DType::F32, &device);
            let sin = randn(&[seq, head_dim / 2], DType::F32, &device);
            g.throughput(Throughput::Bytes((q.elem_count() * 4 * 2) as u64));
            g.bench_function(
                BenchmarkId::new("rope_i", format!("{dev_name}/{}", shape.name)),
                |b| {
                    b.iter(|| {
                        let y = candle_nn::rotary_emb::rope_i(&q, &cos, &sin).unwrap();
                        sync(&device);
                        y
                    })
                },
            );
        }
    }
    g.finish();
}

/// Scaled dot-product attention as the engine runs it (grouped KV heads repeated):
/// prefill of 128 tokens, and one decoding token over a 512-position KV cache.
fn attention(c: &mut Criterion) {
    let mut g = configure(c, "attention");
    for (dev_name, device) in devices() {
        for shape in SHAPES {
            let head_dim = shape.hidden / shape.heads;
            for (label, q_len, kv_len) in [("prefill", 128usize, 128usize), ("decode", 1, 512)] {
                let q = randn(&[1, shape.heads, q_len, head_dim], DType::F32, &device);
                let k = randn(&[1, shape.kv_heads, kv_len, head_dim], DType::F32, &device);
                let v = randn(&[1, shape.kv_heads, kv_len, head_dim], DType::F32, &device);
                let n_rep = shape.heads / shape.kv_heads;
                let flops = 4 * shape.heads * q_len * kv_len * head_dim;
                g.throughput(Throughput::Elements(flops as u64));
                let id = format!("{dev_name}/{}/q={q_len},kv={kv_len}", shape.name);
                g.bench_function(BenchmarkId::new(label, id), |b| {
                    b.iter(|| {
                        let k = candle_transformers::utils::repeat_kv(k.clone(), n_rep).unwrap();
                        let v = candle_transformers::utils::repeat_kv(v.clone(), n_rep).unwrap();
                        let scores = (q.matmul(&k.t().unwrap()).unwrap()
                            / (head_dim as f64).sqrt())
                        .unwrap();
                        let probs = candle_nn::ops::softmax_last_dim(&scores).unwrap();
                        let y = probs.matmul(&v.contiguous().unwrap()).unwrap();
                        sync(&device);
                        y
                    })
                });
            }
        }
    }
    g.finish();
}

criterion_group! {
    name = kernels;
    config = Criterion::default().with_profiler(flamegraph::Flamegraph::default());
    targets = matmul, qmatmul, pointwise, attention, shares_of_peak
}
/// criterion_main!, with the CPU thread count pinned first as the CLI pins it: candle's CPU
/// matmul otherwise re-counts the cores from /proc at every call, which would be timed too.
fn main() {
    inferbench::device::pin_cpu_threads();
    kernels();
    Criterion::default().configure_from_args().final_summary();
}
