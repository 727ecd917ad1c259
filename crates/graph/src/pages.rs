//! Large arrays on huge pages where the kernel offers them.
//!
//! A search at 1M × 384 touches vectors scattered over 1.5 GB: with 4 KiB pages nearly every
//! vector read also misses the TLB, and the page walk itself misses the cache. Linux's
//! transparent huge pages are often set to `madvise` (used only where a program asks), so
//! we ask, before the array is first written: the kernel then backs it with 2 MiB pages as
//! it faults in. A hint only: where it is refused or not Linux, nothing changes.
//! `INFERBENCH_NO_HUGE_PAGES=1` leaves the pages as they come (to measure what they buy, or
//! to search as a library that does not ask would).

/// A vector of `len` values made by `make`, its memory advised for huge pages first.
pub(crate) fn filled<T>(len: usize, make: impl FnMut() -> T) -> Vec<T> {
    let mut v: Vec<T> = Vec::with_capacity(len);
    advise_huge(v.as_ptr().cast(), len * std::mem::size_of::<T>());
    v.resize_with(len, make);
    v
}

/// Arrays smaller than this stay on ordinary pages (a huge page would be mostly empty).
const WORTH_IT: usize = 4 << 20;

#[cfg(target_os = "linux")]
fn advise_huge(start: *const u8, bytes: usize) {
    if bytes < WORTH_IT || std::env::var_os("INFERBENCH_NO_HUGE_PAGES").is_some() {
        return;
    }
    const PAGE: usize = 4096;
    let first = (start as usize).next_multiple_of(PAGE);
    let end = (start as usize + bytes) / PAGE * PAGE;
    if end > first {
        // SAFETY: madvise only changes how the kernel backs pages of this process's own
        // (allocated, not yet written) range; MADV_HUGEPAGE never changes their contents.
        unsafe {
            libc::madvise(first as *mut libc::c_void, end - first, libc::MADV_HUGEPAGE);
        }
    }
}

#[cfg(not(target_os = "linux"))]
fn advise_huge(_start: *const u8, _bytes: usize) {}

/// How many bytes of `ranges` (start address, length) the kernel holds on huge pages now,
/// from `/proc/self/smaps`; None where that cannot be read.
#[cfg(target_os = "linux")]
pub(crate) fn huge_bytes(ranges: &[(usize, usize)]) -> Option<u64> {
    let smaps = std::fs::read_to_string("/proc/self/smaps").ok()?;
    let mut total = 0u64;
    let mut inside = false;
    for line in smaps.lines() {
        if let Some((span, _)) = line.split_once(' ') {
            if let Some((lo, hi)) = span.split_once('-') {
                if let (Ok(lo), Ok(hi)) =
                    (usize::from_str_radix(lo, 16), usize::from_str_radix(hi, 16))
                {
                    // A mapping's header line: does it overlap any range?
                    inside = ranges
                        .iter()
                        .any(|&(start, len)| lo < start + len && start < hi);
                    continue;
                }
            }
        }
        if inside {
            if let Some(kb) = line.strip_prefix("AnonHugePages:") {
                let kb: u64 = kb.trim().trim_end_matches("kB").trim().parse().ok()?;
                total += kb * 1024;
            }
        }
    }
    Some(total)
}

#[cfg(not(target_os = "linux"))]
pub(crate) fn huge_bytes(_ranges: &[(usize, usize)]) -> Option<u64> {
    None
}

/// Where a vector's elements lie: (address, bytes).
pub(crate) fn span<T>(v: &[T]) -> (usize, usize) {
    (v.as_ptr() as usize, std::mem::size_of_val(v))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_large_array_is_filled_and_asks_for_huge_pages() {
        let v = filled(8 << 20, || 7u32); // 32 MiB
        assert!(v.len() == 8 << 20 && v.iter().all(|&x| x == 7));
        let huge = huge_bytes(&[span(&v)]);
        assert!(huge.unwrap_or(0) <= 32 << 20);
        #[cfg(target_os = "linux")]
        {
            let mode = std::fs::read_to_string("/sys/kernel/mm/transparent_hugepage/enabled")
                .unwrap_or_default();
            let offered = mode.contains("[always]") || mode.contains("[madvise]");
            if offered && std::env::var_os("INFERBENCH_NO_HUGE_PAGES").is_none() {
                // Most of it: the unaligned ends stay on small pages.
                assert!(huge.unwrap() >= 16 << 20, "huge pages: {huge:?} ({mode})");
            }
        }
    }
}
