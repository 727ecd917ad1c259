//! A background thread that samples the GPU (when there is one) and the process's resident
//! memory at a fixed interval, so each phase gets its power curve, peaks and means.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::gpu::{GpuSample, GpuSource};

/// One tick of the sampler.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    /// Seconds since the sampler started.
    pub at_s: f64,
    pub host_rss_bytes: Option<u64>,
    pub gpu: Option<GpuSample>,
}

pub type SharedGpu = Arc<Mutex<Box<dyn GpuSource>>>;

pub struct Sampler {
    samples: Arc<Mutex<Vec<Sample>>>,
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
    started: Instant,
    interval: Duration,
}

impl Sampler {
    /// Start sampling every `interval` (the first sample at once).
    pub fn start(gpu: Option<SharedGpu>, interval: Duration) -> Sampler {
        let samples: Arc<Mutex<Vec<Sample>>> = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let started = Instant::now();
        let handle = {
            let (samples, stop) = (samples.clone(), stop.clone());
            std::thread::Builder::new()
                .name("inferbench-telemetry".into())
                .spawn(move || run(gpu, interval, started, &samples, &stop))
                .ok()
        };
        Sampler {
            samples,
            stop,
            handle,
            started,
            interval,
        }
    }

    pub fn interval(&self) -> Duration {
        self.interval
    }

    pub fn started(&self) -> Instant {
        self.started
    }

    /// How many samples there are so far: a phase boundary.
    pub fn len(&self) -> usize {
        self.samples.lock().map(|s| s.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The samples from index `from` to `to`.
    pub fn window(&self, from: usize, to: usize) -> Vec<Sample> {
        self.samples
            .lock()
            .map(|s| s[from.min(s.len())..to.min(s.len())].to_vec())
            .unwrap_or_default()
    }
}

impl Drop for Sampler {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// One tick's work: the GPU's state (when there is one) and the process's resident memory.
pub fn take_sample(gpu: Option<&SharedGpu>, started: Instant) -> Sample {
    let gpu_sample = gpu.and_then(|g| g.lock().ok().map(|mut g| g.sample()));
    let at_s = started.elapsed().as_secs_f64();
    Sample {
        at_s,
        host_rss_bytes: super::host_memory::current_rss(),
        gpu: gpu_sample.map(|g| GpuSample { at_s, ..g }),
    }
}

fn run(
    gpu: Option<SharedGpu>,
    interval: Duration,
    started: Instant,
    samples: &Mutex<Vec<Sample>>,
    stop: &AtomicBool,
) {
    let mut next = Instant::now();
    while !stop.load(Ordering::SeqCst) {
        let sample = take_sample(gpu.as_ref(), started);
        if let Ok(mut s) = samples.lock() {
            s.push(sample);
        }
        next += interval;
        // Sleep in short steps so a stop is seen quickly; after a stall, start afresh.
        loop {
            let now = Instant::now();
            if stop.load(Ordering::SeqCst) || now >= next {
                if now > next + interval {
                    next = now;
                }
                break;
            }
            std::thread::sleep((next - now).min(Duration::from_millis(20)));
        }
    }
}
