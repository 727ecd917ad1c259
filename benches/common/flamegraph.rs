//! A Criterion profiler that writes a CPU flamegraph of each benchmark run with
//! `--profile-time N`: pprof samples the process's stacks at 997 Hz (a prime, so sampling
//! does not lock onto a periodic loop) and renders `flamegraph.svg` into the benchmark's
//! folder under target/criterion/<group>/<bench>/profile/.

use std::fs::File;
use std::path::Path;

use criterion::profiler::Profiler;
use pprof::ProfilerGuard;

const SAMPLES_PER_SECOND: i32 = 997;

#[derive(Default)]
pub struct Flamegraph {
    active: Option<ProfilerGuard<'static>>,
}

impl Profiler for Flamegraph {
    fn start_profiling(&mut self, benchmark_id: &str, _dir: &Path) {
        match pprof::ProfilerGuardBuilder::default()
            .frequency(SAMPLES_PER_SECOND)
            // Stack walks through these can deadlock or fault in a signal handler.
            .blocklist(&["libc", "libgcc", "pthread", "vdso"])
            .build()
        {
            Ok(guard) => self.active = Some(guard),
            Err(e) => eprintln!("flamegraph: cannot profile {benchmark_id}: {e}"),
        }
    }

    fn stop_profiling(&mut self, benchmark_id: &str, dir: &Path) {
        let Some(guard) = self.active.take() else {
            return;
        };
        let written = std::fs::create_dir_all(dir)
            .map_err(|e| e.to_string())
            .and_then(|()| guard.report().build().map_err(|e| e.to_string()))
            .and_then(|report| {
                let path = dir.join("flamegraph.svg");
                let file = File::create(&path).map_err(|e| e.to_string())?;
                report.flamegraph(file).map_err(|e| e.to_string())?;
                Ok(path)
            });
        match written {
            Ok(path) => eprintln!("flamegraph: {benchmark_id} -> {}", path.display()),
            Err(e) => eprintln!("flamegraph: {benchmark_id}: {e}"),
        }
    }
}
