//! Valgrind client requests, the few that instruction counting needs: is this process running
//! under valgrind, and start/stop callgrind's instrumentation around the measured region.
//!
//! A client request is valgrind's "magic" instruction sequence (documented in valgrind.h):
//! rotations of a register that sum to a full turn, then a no-op exchange. On a real CPU the
//! sequence does nothing and yields the default value; under valgrind the JIT recognises it and
//! answers. Writing the few lines here keeps valgrind's headers out of the build.

/// Callgrind's requests start at VG_USERREQ_TOOL_BASE('C', 'T') (callgrind.h).
const CALLGRIND_BASE: usize = (b'C' as usize) << 24 | (b'T' as usize) << 16;
const START_INSTRUMENTATION: usize = CALLGRIND_BASE + 4;
const STOP_INSTRUMENTATION: usize = CALLGRIND_BASE + 5;
/// valgrind.h's VG_USERREQ__RUNNING_ON_VALGRIND.
const RUNNING_ON_VALGRIND: usize = 0x1001;

/// Whether client requests work on this architecture.
pub const SUPPORTED: bool = cfg!(any(target_arch = "x86_64", target_arch = "aarch64"));

/// Send one request with no arguments; `default` is what comes back outside valgrind.
#[allow(unused_variables)]
fn request(code: usize, default: usize) -> usize {
    let args: [usize; 6] = [code, 0, 0, 0, 0, 0];
    #[allow(unused_mut)]
    let mut result = default;
    #[cfg(target_arch = "x86_64")]
    // SAFETY: rdi turns by 3+13+61+51 = 128 bits and ends as it began; xchg rbx,rbx is a no-op.
    // Valgrind reads the six words at rax and writes its answer to rdx.
    unsafe {
        std::arch::asm!(
            "rol rdi, 3", "rol rdi, 13", "rol rdi, 61", "rol rdi, 51",
            "xchg rbx, rbx",
            inout("rdx") result,
            in("rax") args.as_ptr(),
            options(nostack),
        );
    }
    #[cfg(target_arch = "aarch64")]
    // SAFETY: x12 turns by 3+13+51+61 = 128 bits and ends as it began; orr x10,x10,x10 is a
    // no-op. Valgrind reads the six words at x4 and writes its answer to x3.
    unsafe {
        std::arch::asm!(
            "ror x12, x12, #3", "ror x12, x12, #13", "ror x12, x12, #51", "ror x12, x12, #61",
            "orr x10, x10, x10",
            inout("x3") result,
            in("x4") args.as_ptr(),
            options(nostack),
        );
    }
    std::hint::black_box(&args);
    result
}

/// True when this process runs under valgrind (any tool).
pub fn running_on_valgrind() -> bool {
    request(RUNNING_ON_VALGRIND, 0) != 0
}

/// Callgrind: instrument from here on (with `--instr-atstart=no`, nothing before counts).
/// The counters are not zeroed: nothing was counted before, and zeroing here would leave the
/// output's summary line negative for callgrind_annotate.
pub fn start_counting() {
    request(START_INSTRUMENTATION, 0);
}

/// Callgrind: stop instrumenting; what was counted since `start_counting` is what the final
/// dump holds.
pub fn stop_counting() {
    request(STOP_INSTRUMENTATION, 0);
}

#[cfg(test)]
mod tests {
    #[test]
    fn outside_valgrind_requests_do_nothing() {
        assert!(!super::running_on_valgrind());
        super::start_counting();
        super::stop_counting();
    }
}
