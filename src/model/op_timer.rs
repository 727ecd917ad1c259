//! Per-op timing of the forward pass, for `inferbench profile`: while a recording is open on
//! this thread, every op the quantised llama wraps in [`timed`] is timed (wall clock; on a
//! GPU the device is synchronised before and after, so an op's span is its own kernels) and
//! kept with its kind, name and the bytes it moved. With no recording open, [`timed`] costs
//! one thread-local check.

use std::cell::RefCell;
use std::time::{Duration, Instant};

use candle_core::{Device, Result};
use serde::Serialize;

/// What an op is, for grouping: the rows of the profile's table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OpKind {
    /// A quantised (or dequantised-GEMM) projection: q, k, v, o, gate, up, down, output.
    Matmul,
    /// Attention's scores (Q·Kᵀ, scaled) and its weighted sum of V.
    Attention,
    Softmax,
    RmsNorm,
    Rope,
    /// Appending this step's K and V to the cache.
    KvCache,
    /// SiLU and the gate's product.
    Activation,
    /// The residual additions.
    Residual,
    /// The token embedding lookup.
    Embedding,
    /// Reshapes into heads, transposes, contiguous copies, the repeat of K/V heads, the mask.
    Copy,
    /// Choosing the next token from the logits (timed by the caller).
    Sampling,
}

impl OpKind {
    pub fn label(self) -> &'static str {
        match self {
            OpKind::Matmul => "matmul",
            OpKind::Attention => "attention",
            OpKind::Softmax => "softmax",
            OpKind::RmsNorm => "rms_norm",
            OpKind::Rope => "rope",
            OpKind::KvCache => "kv_cache",
            OpKind::Activation => "activation",
            OpKind::Residual => "residual",
            OpKind::Embedding => "embedding",
            OpKind::Copy => "copy",
            OpKind::Sampling => "sampling",
        }
    }
}

/// One timed op: when it started (from the recording's start), how long it took.
#[derive(Debug, Clone, Serialize)]
pub struct OpSpan {
    pub kind: OpKind,
    pub name: &'static str,
    pub start: Duration,
    pub duration: Duration,
    /// Bytes the op read and wrote as far as it is known (a matmul: its weight as held plus
    /// its input and output).
    pub bytes: u64,
}

struct Recording {
    origin: Instant,
    device: Device,
    spans: Vec<OpSpan>,
}

thread_local! {
    static RECORDING: RefCell<Option<Recording>> = const { RefCell::new(None) };
}

/// Start recording this thread's ops, timed from `origin` (a running recording is dropped).
pub fn start(origin: Instant, device: &Device) {
    RECORDING.with(|r| {
        *r.borrow_mut() = Some(Recording {
            origin,
            device: device.clone(),
            spans: Vec::new(),
        })
    });
}

/// Stop recording; the spans in the order the ops ran.
pub fn stop() -> Vec<OpSpan> {
    RECORDING.with(|r| r.borrow_mut().take().map(|r| r.spans).unwrap_or_default())
}

/// Whether a recording is open on this thread.
pub fn recording() -> bool {
    RECORDING.with(|r| r.borrow().is_some())
}

/// Run `op`, timing it when a recording is open. `bytes` is only evaluated then.
pub fn timed<T>(
    kind: OpKind,
    name: &'static str,
    bytes: impl FnOnce(&T) -> u64,
    op: impl FnOnce() -> Result<T>,
) -> Result<T> {
    let Some((origin, device)) = RECORDING.with(|r| {
        r.borrow()
            .as_ref()
            .map(|rec| (rec.origin, rec.device.clone()))
    }) else {
        return op();
    };
    device.synchronize()?;
    let started = Instant::now();
    let out = match super::nvtx::get() {
        Ok(nvtx) => nvtx.range(name, op)?,
        Err(_) => op()?,
    };
    device.synchronize()?;
    let duration = started.elapsed();
    let span = OpSpan {
        kind,
        name,
        start: started.saturating_duration_since(origin),
        duration,
        bytes: bytes(&out),
    };
    RECORDING.with(|r| {
        if let Some(rec) = r.borrow_mut().as_mut() {
            rec.spans.push(span);
        }
    });
    Ok(out)
}

/// Bytes of a tensor's elements.
pub fn tensor_bytes(t: &candle_core::Tensor) -> u64 {
    (t.elem_count() * t.dtype().size_in_bytes()) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ops_are_timed_only_while_recording() {
        let ran = timed(OpKind::Copy, "x", |_| 1, || Ok(7)).unwrap();
        assert_eq!(ran, 7);
        assert!(!recording());
        let origin = Instant::now();
        start(origin, &Device::Cpu);
        timed(
            OpKind::Matmul,
            "attn_q",
            |v: &u64| *v,
            || {
                std::thread::sleep(Duration::from_millis(2));
                Ok(64u64)
            },
        )
        .unwrap();
        let err = timed(
            OpKind::Softmax,
            "s",
            |_: &()| 0,
            || Err(candle_core::Error::Msg("no".into())),
        );
        assert!(err.is_err());
        let spans = stop();
        assert!(!recording());
        // The failed op left no span; the timed one its kind, name, bytes and time.
        assert_eq!(spans.len(), 1);
        let s = &spans[0];
        assert_eq!((s.kind, s.name, s.bytes), (OpKind::Matmul, "attn_q", 64));
        assert!(s.duration >= Duration::from_millis(2), "{s:?}");
        assert!(stop().is_empty());
    }
}
