//! GPU readings through a source trait: NVML on a real machine, recorded or synthetic
//! readings in tests. NVML is loaded at run time, so a machine without a driver gets a reason,
//! not a crash.

use serde::{Deserialize, Serialize};

/// One sample of the GPU's state; a field is None where the GPU does not report it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GpuSample {
    /// Seconds since the sampler started.
    pub at_s: f64,
    pub power_w: Option<f64>,
    /// Percent of the last period a kernel was running.
    pub gpu_util_percent: Option<u32>,
    pub memory_util_percent: Option<u32>,
    pub memory_used_bytes: Option<u64>,
    pub temperature_c: Option<u32>,
    pub sm_clock_mhz: Option<u32>,
    pub memory_clock_mhz: Option<u32>,
    /// Why the clocks are held back, e.g. ["SW_POWER_CAP"]; idle is not listed.
    pub throttle_reasons: Vec<String>,
}

/// Where GPU readings come from.
pub trait GpuSource: Send {
    /// "NVIDIA H100 80GB HBM3 (GPU 0)".
    fn describe(&self) -> String;
    /// The cumulative energy counter in millijoules, or why there is none.
    fn energy_mj(&mut self) -> Result<u64, String>;
    /// The GPU's state now (`at_s` is set by the sampler).
    fn sample(&mut self) -> GpuSample;
}

/// The GPU at `index` through NVML, or why it cannot be read.
#[cfg(feature = "nvml")]
pub fn open(index: u32) -> Result<Box<dyn GpuSource>, String> {
    nvml::NvmlGpu::open(index).map(|g| Box::new(g) as Box<dyn GpuSource>)
}

#[cfg(not(feature = "nvml"))]
pub fn open(_index: u32) -> Result<Box<dyn GpuSource>, String> {
    Err("this inferbench was built without the nvml feature".into())
}

#[cfg(feature = "nvml")]
mod nvml {
    use nvml_wrapper::bitmasks::device::ThrottleReasons;
    use nvml_wrapper::enum_wrappers::device::{Clock, TemperatureSensor};
    use nvml_wrapper::Nvml;

    use super::{GpuSample, GpuSource};

    /// NVML and a device index; the device handle is looked up per call (it borrows Nvml).
    pub struct NvmlGpu {
        nvml: Nvml,
        index: u32,
        name: String,
    }

    impl NvmlGpu {
        pub fn open(index: u32) -> Result<Self, String> {
            let nvml = Nvml::init().map_err(|e| format!("NVML unavailable: {e}"))?;
            let count = nvml
                .device_count()
                .map_err(|e| format!("NVML cannot count GPUs: {e}"))?;
            if index >= count {
                return Err(format!(
                    "GPU {index} does not exist (NVML sees {count} GPU{})",
                    if count == 1 { "" } else { "s" }
                ));
            }
            let name = nvml
                .device_by_index(index)
                .and_then(|d| d.name())
                .map_err(|e| format!("NVML cannot open GPU {index}: {e}"))?;
            Ok(NvmlGpu { nvml, index, name })
        }
    }

    impl GpuSource for NvmlGpu {
        fn describe(&self) -> String {
            format!("{} (GPU {})", self.name, self.index)
        }

        fn energy_mj(&mut self) -> Result<u64, String> {
            let device = self
                .nvml
                .device_by_index(self.index)
                .map_err(|e| format!("NVML: {e}"))?;
            device
                .total_energy_consumption()
                .map_err(|e| format!("NVML energy counter: {e}"))
        }

        fn sample(&mut self) -> GpuSample {
            let Ok(d) = self.nvml.device_by_index(self.index) else {
                return GpuSample::default();
            };
            let util = d.utilization_rates().ok();
            GpuSample {
                at_s: 0.0,
                power_w: d.power_usage().ok().map(|mw| f64::from(mw) / 1e3),
                gpu_util_percent: util.as_ref().map(|u| u.gpu),
                memory_util_percent: util.as_ref().map(|u| u.memory),
                memory_used_bytes: d.memory_info().ok().map(|m| m.used),
                temperature_c: d.temperature(TemperatureSensor::Gpu).ok(),
                sm_clock_mhz: d.clock_info(Clock::SM).ok(),
                memory_clock_mhz: d.clock_info(Clock::Memory).ok(),
                throttle_reasons: d
                    .current_throttle_reasons()
                    .map(|r| {
                        (r - ThrottleReasons::GPU_IDLE)
                            .iter_names()
                            .map(|(name, _)| name.to_string())
                            .collect()
                    })
                    .unwrap_or_default(),
            }
        }
    }
}
