//! Work split over candle's persistent thread pool, each task writing its own run of one
//! output buffer. candle's barrier pool keeps its workers spinning between ops, so a task
//! split costs a few hundred nanoseconds, where rayon's sleeping workers cost microseconds
//! (a decode step has ~200 small ops).

/// Threads of candle's pool, the caller's among them. Not candle's `get_num_threads`, which
/// without RAYON_NUM_THREADS counts physical cores anew at every call (parsing /proc: it had
/// cost a 512-position decode step 0.9 ms, called once per attention op).
pub fn threads() -> usize {
    candle_core::utils::barrier_pool().n_workers() + 1
}

/// Fills `out` in runs of `run` elements (the last may be shorter), run `i` by `task(i, run)`,
/// the runs spread over the pool's threads.
pub fn fill_runs<T: Send>(out: &mut [T], run: usize, task: impl Fn(usize, &mut [T]) + Sync) {
    if out.is_empty() || run == 0 {
        return;
    }
    let len = out.len();
    let tasks = len.div_ceil(run);
    let shared = SharedOut(out.as_mut_ptr());
    candle_core::utils::barrier_pool().execute_chunked(tasks, |range| {
        for i in range {
            let start = i * run;
            let end = (start + run).min(len);
            // SAFETY: run i is [i·run, (i+1)·run) clipped to the buffer: runs never overlap,
            // each is handed to one task, and `out` outlives the call (execute_chunked returns
            // when every task is done).
            let slice = unsafe { shared.run(start, end - start) };
            task(i, slice);
        }
    });
}

/// An output buffer shared by the pool's workers, each writing only its own elements (runs
/// in `fill_runs`, column ranges in `dense_gemm`).
pub(crate) struct SharedOut<T = f32>(pub(crate) *mut T);

// SAFETY: its users hand each worker elements no other worker writes.
unsafe impl<T: Send> Sync for SharedOut<T> {}

impl<T> SharedOut<T> {
    /// Element `at` (not dereferenced here: the caller writes through it).
    pub(crate) fn at(&self, at: usize) -> *mut T {
        self.0.wrapping_add(at)
    }

    /// # Safety
    /// `start..start + len` must lie in the buffer and be written by no one else meanwhile.
    #[allow(clippy::mut_from_ref)]
    unsafe fn run(&self, start: usize, len: usize) -> &mut [T] {
        unsafe { std::slice::from_raw_parts_mut(self.0.add(start), len) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_element_is_written_by_the_task_of_its_run() {
        for (len, run) in [(10, 3), (16, 16), (1, 5), (1000, 7)] {
            let mut out = vec![-1f32; len];
            fill_runs(&mut out, run, |i, slice| {
                assert!(slice.len() <= run);
                slice.fill(i as f32);
            });
            for (at, v) in out.iter().enumerate() {
                assert_eq!(*v, (at / run) as f32, "len {len} run {run} at {at}");
            }
        }
    }
}
