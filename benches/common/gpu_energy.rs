//! GPU energy as a Criterion measurement: values are joules from the NVML energy counter, so
//! Criterion's statistics, reports and baselines work on energy as they do on time.
//! The counter has millijoule resolution and updates every few milliseconds: measure spans of
//! many steps (Criterion's samples are, at the default measurement time).

use std::sync::Mutex;

use criterion::measurement::{Measurement, ValueFormatter};
use criterion::Throughput;
use inferbench::telemetry::gpu::GpuSource;

pub struct GpuEnergy {
    source: Mutex<Box<dyn GpuSource>>,
}

impl GpuEnergy {
    pub fn new(source: Box<dyn GpuSource>) -> Self {
        GpuEnergy {
            source: Mutex::new(source),
        }
    }

    /// The counter now, in millijoules; 0 (and a message) if it fails mid-run.
    pub fn read_mj(&self) -> u64 {
        let mut source = self.source.lock().expect("GPU source lock");
        source.energy_mj().unwrap_or_else(|e| {
            eprintln!("gpu energy: {e}");
            0
        })
    }
}

impl Measurement for GpuEnergy {
    type Intermediate = u64;
    type Value = f64;

    fn start(&self) -> u64 {
        self.read_mj()
    }

    fn end(&self, start: u64) -> f64 {
        self.read_mj().saturating_sub(start) as f64 / 1e3
    }

    fn add(&self, a: &f64, b: &f64) -> f64 {
        a + b
    }

    fn zero(&self) -> f64 {
        0.0
    }

    fn to_f64(&self, value: &f64) -> f64 {
        *value
    }

    fn formatter(&self) -> &dyn ValueFormatter {
        &JoulesFormatter
    }
}

struct JoulesFormatter;

impl ValueFormatter for JoulesFormatter {
    fn scale_values(&self, typical: f64, values: &mut [f64]) -> &'static str {
        let (factor, unit) = if typical >= 1.0 {
            (1.0, "J")
        } else if typical >= 1e-3 {
            (1e3, "mJ")
        } else {
            (1e6, "µJ")
        };
        values.iter_mut().for_each(|v| *v *= factor);
        unit
    }

    fn scale_throughputs(
        &self,
        _typical: f64,
        throughput: &Throughput,
        values: &mut [f64],
    ) -> &'static str {
        let (amount, unit) = match throughput {
            Throughput::Elements(n) | Throughput::ElementsAndBytes { elements: n, .. } => {
                (*n as f64, "tok/J")
            }
            Throughput::Bytes(n) | Throughput::BytesDecimal(n) => (*n as f64, "B/J"),
            Throughput::Bits(n) => (*n as f64, "bit/J"),
        };
        values.iter_mut().for_each(|v| *v = amount / *v);
        unit
    }

    fn scale_for_machines(&self, _values: &mut [f64]) -> &'static str {
        "J"
    }
}
