//! Which device a run uses (`--device auto|cpu|cuda[:N]`) and what machine we are on.

use std::fmt;
use std::str::FromStr;

use anyhow::{bail, Context, Result};
use candle_core::Device;
use serde::{Deserialize, Serialize};

/// What the user asked for on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DeviceRequest {
    /// CUDA when the build has it and a GPU is present, otherwise CPU.
    #[default]
    Auto,
    Cpu,
    Cuda(usize),
}

impl FromStr for DeviceRequest {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "auto" => Ok(Self::Auto),
            "cpu" => Ok(Self::Cpu),
            "cuda" | "gpu" => Ok(Self::Cuda(0)),
            other => match other.strip_prefix("cuda:") {
                Some(n) => n
                    .parse()
                    .map(Self::Cuda)
                    .map_err(|_| format!("'{s}': the GPU index after 'cuda:' must be a number")),
                None => Err(format!("'{s}': expected auto, cpu, cuda or cuda:N")),
            },
        }
    }
}

impl fmt::Display for DeviceRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Auto => write!(f, "auto"),
            Self::Cpu => write!(f, "cpu"),
            Self::Cuda(n) => write!(f, "cuda:{n}"),
        }
    }
}

/// A device ready for candle, with the reason it was chosen.
#[derive(Debug, Clone)]
pub struct SelectedDevice {
    pub device: Device,
    /// Short name for reports: "cpu" or "cuda:N".
    pub name: String,
    /// Why this device: shown to the user so a CPU fallback is never silent.
    pub reason: String,
}

/// Fixes the CPU thread count for the process: RAYON_NUM_THREADS set, when unset, to the
/// count candle would pick. candle reads it at every CPU matmul and, without it, counts the
/// physical cores from /proc each time (29 µs on the 2-core VM): the safetensors llama path,
/// hundreds of matmuls a step, decoded at 13 GB/s instead of 28-42 for that alone. Call at
/// the start of `main`, before any thread exists (it sets an environment variable).
pub fn pin_cpu_threads() {
    if std::env::var_os("RAYON_NUM_THREADS").is_none() {
        let threads = candle_core::utils::get_num_threads();
        std::env::set_var("RAYON_NUM_THREADS", threads.to_string());
    }
}

/// Host memory the kernel says is available now (MemAvailable), when /proc/meminfo is
/// readable: what a run's size is checked against before anything is allocated.
pub fn available_memory() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let kib: u64 = text
        .lines()
        .find_map(|l| l.strip_prefix("MemAvailable:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    Some(kib * 1024)
}

/// Bytes as GiB, for messages.
pub fn gib(bytes: u64) -> f64 {
    bytes as f64 / (1u64 << 30) as f64
}

/// Is this binary built with CUDA support?
pub fn cuda_compiled() -> bool {
    cfg!(feature = "cuda")
}

/// Turn a request into a device, or a clear error when the request cannot be met.
pub fn select(request: DeviceRequest) -> Result<SelectedDevice> {
    match request {
        DeviceRequest::Cpu => Ok(cpu("requested with --device cpu")),
        DeviceRequest::Cuda(ordinal) => {
            if !cuda_compiled() {
                bail!(
                    "--device {request}: this inferbench was built without CUDA support; \
                     rebuild with `cargo build --release --features cuda` (needs nvcc) or use --device cpu"
                );
            }
            let device = Device::new_cuda(ordinal)
                .with_context(|| format!("--device {request}: could not open CUDA GPU {ordinal} (is a GPU present and the driver loaded?)"))?;
            Ok(SelectedDevice {
                device,
                name: format!("cuda:{ordinal}"),
                reason: "requested with --device".into(),
            })
        }
        DeviceRequest::Auto => {
            if !cuda_compiled() {
                return Ok(cpu("auto: this build has no CUDA support"));
            }
            match Device::new_cuda(0) {
                Ok(device) => Ok(SelectedDevice {
                    device,
                    name: "cuda:0".into(),
                    reason: "auto: CUDA GPU found".into(),
                }),
                Err(e) => Ok(cpu(&format!("auto: no usable CUDA GPU ({e})"))),
            }
        }
    }
}

fn cpu(reason: &str) -> SelectedDevice {
    SelectedDevice {
        device: Device::Cpu,
        name: "cpu".into(),
        reason: reason.into(),
    }
}

/// Block until queued GPU work is done, so a clock read afterwards times finished work.
pub fn synchronize(device: &Device) -> Result<()> {
    device.synchronize().context("synchronising the device")
}

/// One GPU as NVML sees it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GpuInfo {
    pub index: u32,
    pub name: String,
    pub memory_total_bytes: u64,
    pub uuid: Option<String>,
    /// "8.9" for an RTX 4090.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compute_capability: Option<String>,
    /// Nominal memory bandwidth: the highest memory clock NVML reports × the bus width × 2
    /// (data moves on both clock edges); the peak a roofline is drawn against.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_bandwidth_bytes_per_s: Option<u64>,
}

/// Nominal bandwidth from NVML's figures: 10501 MHz × 384 bits gives an RTX 4090's 1008 GB/s.
pub fn nominal_bandwidth(memory_clock_mhz: u32, bus_width_bits: u32) -> u64 {
    memory_clock_mhz as u64 * 1_000_000 * bus_width_bits as u64 / 8 * 2
}

/// The machine a run happens on; goes into every result.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MachineInfo {
    pub hostname: Option<String>,
    pub os: Option<String>,
    pub kernel: Option<String>,
    pub cpu_model: String,
    pub cpu_physical_cores: Option<usize>,
    pub cpu_logical_cores: usize,
    pub memory_total_bytes: u64,
    /// SIMD extensions candle's CPU kernels can use on this processor.
    pub cpu_simd: Vec<String>,
    /// Threads candle's CPU kernels run on.
    pub compute_threads: usize,
    pub gpus: Vec<GpuInfo>,
    pub gpu_driver: Option<String>,
    pub cuda_driver_version: Option<String>,
    /// Why there are no GPUs listed, when there are none.
    pub gpu_note: Option<String>,
    pub compiled_features: Vec<String>,
    pub inferbench_version: String,
}

impl MachineInfo {
    pub fn collect() -> Self {
        use sysinfo::System;
        let mut sys = System::new();
        sys.refresh_memory();
        sys.refresh_cpu_all();
        let cpu_model = sys
            .cpus()
            .first()
            .map(|c| c.brand().trim().to_string())
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "unknown".into());
        let gpus = probe_gpus();
        MachineInfo {
            hostname: System::host_name(),
            os: System::long_os_version(),
            kernel: System::kernel_version(),
            cpu_model,
            cpu_physical_cores: System::physical_core_count(),
            cpu_logical_cores: sys.cpus().len(),
            memory_total_bytes: sys.total_memory(),
            cpu_simd: cpu_simd(),
            compute_threads: candle_core::utils::get_num_threads(),
            gpus: gpus.gpus,
            gpu_driver: gpus.driver,
            cuda_driver_version: gpus.cuda_version,
            gpu_note: gpus.note,
            compiled_features: compiled_features(),
            inferbench_version: env!("CARGO_PKG_VERSION").into(),
        }
    }
}

/// The cargo features this binary was built with.
pub fn compiled_features() -> Vec<String> {
    let mut features = Vec::new();
    if cfg!(feature = "cuda") {
        features.push("cuda".to_string());
    }
    if cfg!(feature = "nvml") {
        features.push("nvml".to_string());
    }
    if cfg!(feature = "inject-slowdown") {
        features.push("inject-slowdown".to_string());
    }
    features
}

fn cpu_simd() -> Vec<String> {
    #[allow(unused_mut)]
    let mut simd = Vec::new();
    #[cfg(target_arch = "x86_64")]
    {
        for (name, present) in [
            ("avx", std::arch::is_x86_feature_detected!("avx")),
            ("avx2", std::arch::is_x86_feature_detected!("avx2")),
            ("fma", std::arch::is_x86_feature_detected!("fma")),
            ("f16c", std::arch::is_x86_feature_detected!("f16c")),
            ("avx512f", std::arch::is_x86_feature_detected!("avx512f")),
        ] {
            if present {
                simd.push(name.to_string());
            }
        }
    }
    #[cfg(target_arch = "aarch64")]
    simd.push("neon".to_string());
    simd
}

struct GpuProbe {
    gpus: Vec<GpuInfo>,
    driver: Option<String>,
    cuda_version: Option<String>,
    note: Option<String>,
}

#[cfg(feature = "nvml")]
fn probe_gpus() -> GpuProbe {
    use nvml_wrapper::Nvml;
    let nvml = match Nvml::init() {
        Ok(n) => n,
        Err(e) => {
            return GpuProbe {
                gpus: vec![],
                driver: None,
                cuda_version: None,
                note: Some(format!("NVML unavailable: {e}")),
            }
        }
    };
    let driver = nvml.sys_driver_version().ok();
    let cuda_version = nvml
        .sys_cuda_driver_version()
        .ok()
        .map(|v| format!("{}.{}", v / 1000, (v % 1000) / 10));
    let count = nvml.device_count().unwrap_or(0);
    let gpus = (0..count)
        .filter_map(|i| {
            let d = nvml.device_by_index(i).ok()?;
            Some(GpuInfo {
                index: i,
                name: d.name().unwrap_or_else(|_| "unknown".into()),
                memory_total_bytes: d.memory_info().map(|m| m.total).unwrap_or(0),
                uuid: d.uuid().ok(),
                compute_capability: d
                    .cuda_compute_capability()
                    .ok()
                    .map(|c| format!("{}.{}", c.major, c.minor)),
                memory_bandwidth_bytes_per_s: match (
                    d.max_clock_info(nvml_wrapper::enum_wrappers::device::Clock::Memory),
                    d.memory_bus_width(),
                ) {
                    (Ok(clock), Ok(width)) => Some(nominal_bandwidth(clock, width)),
                    _ => None,
                },
            })
        })
        .collect::<Vec<_>>();
    let note = gpus.is_empty().then(|| "NVML found no GPUs".to_string());
    GpuProbe {
        gpus,
        driver,
        cuda_version,
        note,
    }
}

#[cfg(not(feature = "nvml"))]
fn probe_gpus() -> GpuProbe {
    GpuProbe {
        gpus: vec![],
        driver: None,
        cuda_version: None,
        note: Some("built without the nvml feature".into()),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn nominal_bandwidth_matches_published_figures() {
        // NVML's highest memory clock and bus width of each GPU, against its data sheet.
        let tb = |b: u64| b as f64 / 1e12;
        assert!((tb(nominal_bandwidth(10501, 384)) - 1.008).abs() < 0.001); // RTX 4090
        assert!((tb(nominal_bandwidth(2619, 5120)) - 3.352).abs() < 0.001); // H100 SXM
    }

    use super::*;

    #[test]
    fn parses_device_requests() {
        assert_eq!("auto".parse::<DeviceRequest>(), Ok(DeviceRequest::Auto));
        assert_eq!("CPU".parse::<DeviceRequest>(), Ok(DeviceRequest::Cpu));
        assert_eq!("cuda".parse::<DeviceRequest>(), Ok(DeviceRequest::Cuda(0)));
        assert_eq!(
            "cuda:3".parse::<DeviceRequest>(),
            Ok(DeviceRequest::Cuda(3))
        );
        assert!("cuda:x"
            .parse::<DeviceRequest>()
            .unwrap_err()
            .contains("number"));
        assert!("tpu"
            .parse::<DeviceRequest>()
            .unwrap_err()
            .contains("expected"));
    }

    #[test]
    fn cpu_request_gives_cpu() {
        let d = select(DeviceRequest::Cpu).unwrap();
        assert!(d.device.is_cpu());
        assert_eq!(d.name, "cpu");
    }

    #[cfg(not(feature = "cuda"))]
    #[test]
    fn cuda_request_without_cuda_build_is_a_clear_error() {
        let err = select(DeviceRequest::Cuda(0)).unwrap_err().to_string();
        assert!(err.contains("without CUDA support"), "{err}");
        let auto = select(DeviceRequest::Auto).unwrap();
        assert!(auto.device.is_cpu());
        assert!(auto.reason.contains("no CUDA"), "{}", auto.reason);
    }
}
