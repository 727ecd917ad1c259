//! What the machine did while a benchmark ran: host memory now; GPU power and energy
//! (NVML) and CPU energy (RAPL) are the telemetry issue's.

pub mod host_memory;
