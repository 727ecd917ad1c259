//! A llama-family forward pass over GGUF weights (quantised matmuls through candle's QMatMul).
//!
//! Ours rather than candle-transformers' `quantized_llama` because that one cannot prefill a
//! batch of more than one prompt (its last-position slice is not contiguous for QMatMul), and
//! because the engine needs one place to time and tune the hot path.

use candle_core::quantized::{gguf_file, QMatMul, QTensor};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use candle_core::{DType, Device, IndexOp, Module, Result, Tensor, D};
use candle_transformers::utils::{build_causal_mask, repeat_kv};

use inferbench_distance::panel_gemm::{self, PackedWeight};

use super::kv_cache::KvCache;
use super::op_timer::{tensor_bytes, timed, OpKind};
use super::q8_matmul;

/// The longest context a header may declare: the rotary tables are built for all of it.
const MAX_CONTEXT: usize = 1 << 24;

/// Shapes and constants read from the GGUF metadata (llama.* keys).
#[derive(Debug, Clone)]
pub struct Hyper {
    pub n_head: usize,
    pub n_kv_head: usize,
    pub n_layer: usize,
    pub hidden: usize,
    pub rope_dim: usize,
    pub rope_base: f32,
    pub rms_eps: f64,
    pub context_length: usize,
}

impl Hyper {
    /// Read and check every value later code divides by, indexes with or sizes an
    /// allocation with: a file's header is untrusted input.
    pub fn from_metadata(ct: &gguf_file::Content) -> std::result::Result<Self, String> {
        let get = |key: &str| {
            ct.metadata
                .get(key)
                .ok_or(format!("GGUF metadata has no '{key}'"))
        };
        let number = |key: &str| -> std::result::Result<usize, String> {
            let v = get(key)?.to_u32().map_err(|e| format!("{key}: {e}"))? as usize;
            if v == 0 {
                return Err(format!("{key} = 0: must be at least 1"));
            }
            Ok(v)
        };
        let optional = |key: &str| {
            ct.metadata
                .contains_key(key)
                .then(|| number(key))
                .transpose()
        };
        let float = |key: &str| get(key)?.to_f32().map_err(|e| format!("{key}: {e}"));
        let n_head = number("llama.attention.head_count")?;
        let n_kv_head = number("llama.attention.head_count_kv")?;
        let hidden = number("llama.embedding_length")?;
        let n_layer = number("llama.block_count")?;
        if hidden % n_head != 0 {
            return Err(format!(
                "llama.embedding_length {hidden} is not a multiple of llama.attention.head_count {n_head}"
            ));
        }
        if n_head % n_kv_head != 0 {
            return Err(format!(
                "llama.attention.head_count {n_head} is not a multiple of llama.attention.head_count_kv {n_kv_head}"
            ));
        }
        let head_dim = hidden / n_head;
        let rope_dim = optional("llama.rope.dimension_count")?.unwrap_or(head_dim);
        if rope_dim > head_dim || rope_dim % 2 != 0 {
            return Err(format!(
                "llama.rope.dimension_count {rope_dim}: must be even and at most the head dimension {head_dim}"
            ));
        }
        let rope_base = match ct.metadata.contains_key("llama.rope.freq_base") {
            true => float("llama.rope.freq_base")?,
            false => 10_000.0,
        };
        if !(rope_base.is_finite() && rope_base > 0.0) {
            return Err(format!("llama.rope.freq_base {rope_base}: must be above 0"));
        }
        let rms_eps = float("llama.attention.layer_norm_rms_epsilon")?;
        if !(rms_eps.is_finite() && rms_eps >= 0.0) {
            return Err(format!(
                "llama.attention.layer_norm_rms_epsilon {rms_eps}: must be 0 or more"
            ));
        }
        let context_length = optional("llama.context_length")?.unwrap_or(4096);
        if context_length > MAX_CONTEXT {
            return Err(format!(
                "llama.context_length {context_length}: more than {MAX_CONTEXT} tokens is not a real model"
            ));
        }
        Ok(Hyper {
            n_head,
            n_kv_head,
            n_layer,
            hidden,
            rope_dim,
            rope_base,
            rms_eps: rms_eps as f64,
            context_length,
        })
    }

    pub fn head_dim(&self) -> usize {
        self.hidden / self.n_head
    }
}

/// Dequantised copies of weight matrices for the prefill GEMM, kept up to a byte budget:
/// without them every prefill dequantises every matrix again, which on CPU costs more than
/// the GEMM itself for short prompts.
pub struct DenseCache {
    budget_left: AtomicU64,
    used: AtomicU64,
}

impl DenseCache {
    pub fn new(budget_bytes: u64) -> Arc<Self> {
        Arc::new(DenseCache {
            budget_left: AtomicU64::new(budget_bytes),
            used: AtomicU64::new(0),
        })
    }

    /// Bytes of dequantised weights kept so far.
    pub fn used_bytes(&self) -> u64 {
        self.used.load(Ordering::Relaxed)
    }

    fn try_reserve(&self, bytes: u64) -> bool {
        let reserved = self
            .budget_left
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |left| {
                left.checked_sub(bytes)
            })
            .is_ok();
        if reserved {
            self.used.fetch_add(bytes, Ordering::Relaxed);
        }
        reserved
    }
}

/// A quantised weight matrix. Few rows (decode) go through quantised dot products (ours for
/// Q8_0 on CPUs with AVX-512 VNNI or AVX2, else candle's); many rows (prefill) on CPU use the f32 GEMM
/// over the dequantised weight, which is several times faster there than one quantised dot
/// product per (row, column) pair. The dequantised weight is kept after its first use while
/// the cache's budget allows.
struct QLinear {
    /// "attn_q", "ffn_down", "output": what the profile calls it.
    name: &'static str,
    matmul: QMatMul,
    weight: Arc<QTensor>,
    /// Few rows go through our Q8_0 kernel (`q8_matmul`) instead of candle's dot products.
    own_kernel: bool,
    gemm_rows: Option<usize>,
    cache: Arc<DenseCache>,
    /// Set at the first GEMM use: the kept f32 weight, or None when the budget said no.
    dense: OnceLock<Option<DenseWeight>>,
}

/// A dequantised weight for the prefill GEMM: packed into panels per output block for our
/// kernel where the CPU has it, else the rows as candle stores them.
#[derive(Clone)]
enum DenseWeight {
    Packed(Arc<[PackedWeight]>),
    Rows(Tensor),
}

impl QLinear {
    fn new(
        name: &'static str,
        weight: QTensor,
        gemm_rows: Option<usize>,
        cache: &Arc<DenseCache>,
    ) -> Result<Self> {
        let weight = Arc::new(weight);
        let own_kernel = q8_matmul::applies(&weight, &weight.device());
        Ok(QLinear {
            name,
            matmul: QMatMul::from_arc(weight.clone())?,
            own_kernel,
            weight,
            gemm_rows,
            cache: cache.clone(),
            dense: OnceLock::new(),
        })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let width = self.weight.shape().dims2()?.0;
        let [y] = self.forward_parts(x, &[width])?;
        Ok(y)
    }

    /// The output split into consecutive blocks of `widths` columns, for a weight that
    /// stacks several projections. A few rows (decode) take one quantised matmul over the
    /// whole stack, then views of its columns; many rows (prefill) one GEMM per block over
    /// the rows of the dequantised stack, so each output comes out whole, as separate
    /// weights would give it (one wide GEMM plus copies out of it measured 6% slower).
    fn forward_parts<const N: usize>(
        &self,
        x: &Tensor,
        widths: &[usize; N],
    ) -> Result<[Tensor; N]> {
        let rows = x.elem_count() / x.dim(D::Minus1)?;
        let gemm = matches!(self.gemm_rows, Some(min) if rows >= min)
            && !matches!(self.matmul, QMatMul::Tensor(_));
        // What the op reads of its weight: the f32 copy for the GEMM, else the stored blocks.
        let weight_bytes = if gemm {
            (self.weight.shape().elem_count() * 4) as u64
        } else {
            self.weight.storage_size_in_bytes() as u64
        };
        let moved = |ys: &[Tensor; N]| {
            weight_bytes + tensor_bytes(x) + ys.iter().map(tensor_bytes).sum::<u64>()
        };
        timed(OpKind::Matmul, self.name, moved, || {
            let mut at = 0;
            let mut block = |width: usize| {
                let start = at;
                at += width;
                (start, width)
            };
            let outputs: Vec<Tensor> = if gemm {
                match self.dense_weight(x.device(), widths)? {
                    DenseWeight::Packed(blocks) => blocks
                        .iter()
                        .map(|w| {
                            super::dense_gemm::matmul_packed(x, w)?.ok_or_else(|| {
                                candle_core::Error::Msg("packed GEMM needs f32 on the CPU".into())
                            })
                        })
                        .collect::<Result<_>>()?,
                    DenseWeight::Rows(w) => widths
                        .iter()
                        .map(|&n| {
                            let (start, n) = block(n);
                            match super::dense_gemm::matmul_rows(x, &w, start, n)? {
                                Some(y) => Ok(y),
                                None => x.broadcast_matmul(&w.narrow(0, start, n)?.t()?),
                            }
                        })
                        .collect::<Result<_>>()?,
                }
            } else {
                let y = if self.own_kernel {
                    q8_matmul::forward(&self.weight, x)?
                } else {
                    self.matmul.forward(x)?
                };
                if N == 1 {
                    vec![y]
                } else {
                    widths
                        .iter()
                        .map(|&n| {
                            let (start, n) = block(n);
                            y.narrow(D::Minus1, start, n)
                        })
                        .collect::<Result<_>>()?
                }
            };
            outputs
                .try_into()
                .map_err(|_| candle_core::Error::Msg("projection outputs".into()))
        })
    }

    /// The f32 weight for the GEMM, kept after the first call while the cache's budget
    /// allows; packed per block of `widths` rows where the CPU runs the packed kernel, kept
    /// or not, so that the cache changes memory and time but no result.
    fn dense_weight(&self, device: &Device, widths: &[usize]) -> Result<DenseWeight> {
        if let Some(Some(w)) = self.dense.get() {
            return Ok(w.clone());
        }
        let bytes = (self.weight.shape().elem_count() * DType::F32.size_in_bytes()) as u64;
        let dense = if device.is_cpu() && panel_gemm::available() {
            DenseWeight::Packed(super::dense_gemm::pack(&self.weight, widths)?)
        } else {
            DenseWeight::Rows(self.weight.dequantize(device)?)
        };
        if self.dense.get().is_none() {
            let keep = self.cache.try_reserve(bytes);
            let _ = self.dense.set(keep.then(|| dense.clone()));
        }
        Ok(dense)
    }
}

/// Projections of the same input: one matmul over their weights stacked when they share a
/// quantisation (one pass over the input and one thread-pool dispatch instead of N: the small
/// k and v matvecs of a decode step were bound by the dispatch), else one each. Each output
/// column is the same dot product either way.
enum Projections {
    Fused { linear: QLinear, widths: Vec<usize> },
    Apart(Vec<QLinear>),
}

impl Projections {
    fn new(
        fused_name: &'static str,
        parts: Vec<(&'static str, QTensor)>,
        gemm_rows: Option<usize>,
        cache: &Arc<DenseCache>,
    ) -> Result<Self> {
        if let Some((weight, widths)) = stack_rows(&parts)? {
            return Ok(Projections::Fused {
                linear: QLinear::new(fused_name, weight, gemm_rows, cache)?,
                widths,
            });
        }
        let apart = parts
            .into_iter()
            .map(|(name, t)| QLinear::new(name, t, gemm_rows, cache))
            .collect::<Result<_>>()?;
        Ok(Projections::Apart(apart))
    }

    /// Each projection's output, in the order given.
    fn forward<const N: usize>(&self, x: &Tensor) -> Result<[Tensor; N]> {
        let wrong = |n: usize| candle_core::Error::Msg(format!("{n} projections, expected {N}"));
        match self {
            Projections::Fused { linear, widths } => {
                let widths: [usize; N] = widths
                    .as_slice()
                    .try_into()
                    .map_err(|_| wrong(widths.len()))?;
                linear.forward_parts(x, &widths)
            }
            Projections::Apart(linears) => {
                let outs: Vec<Tensor> = linears
                    .iter()
                    .map(|l| l.forward(x))
                    .collect::<Result<_>>()?;
                let n = outs.len();
                outs.try_into().map_err(|_| wrong(n))
            }
        }
    }
}

/// The weights stacked row-wise into one (their output rows one after another), with each
/// one's row count; None when their types or input widths differ. A quantised weight's rows
/// are whole blocks, so stacking is concatenating the stored bytes.
fn stack_rows(parts: &[(&'static str, QTensor)]) -> Result<Option<(QTensor, Vec<usize>)>> {
    let Some((_, first)) = parts.first() else {
        return Ok(None);
    };
    let (dtype, device) = (first.dtype(), first.device());
    let mut widths = Vec::with_capacity(parts.len());
    let mut bytes = Vec::new();
    for (_, t) in parts {
        let (rows, cols) = t.shape().dims2()?;
        if t.dtype() != dtype
            || cols != first.shape().dims2()?.1
            || !device.same_device(&t.device())
        {
            return Ok(None);
        }
        widths.push(rows);
        bytes.extend_from_slice(&t.data()?);
    }
    let rows: usize = widths.iter().sum();
    let cols = first.shape().dims2()?.1;
    let stacked = candle_core::quantized::ggml_file::qtensor_from_ggml(
        dtype,
        &bytes,
        vec![rows, cols],
        &device,
    )?;
    Ok(Some((stacked, widths)))
}

struct Layer {
    attn_norm: Tensor,
    /// q, k and v in one matmul when their weights share a type.
    qkv: Projections,
    wo: QLinear,
    ffn_norm: Tensor,
    /// gate and up in one matmul, likewise.
    gate_up: Projections,
    w_down: QLinear,
    kv_cache: Option<KvCache>,
}

pub struct QuantizedLlama {
    hyper: Hyper,
    embeddings: Tensor,
    layers: Vec<Layer>,
    norm: Tensor,
    output: QLinear,
    cos: Tensor,
    sin: Tensor,
}

impl QuantizedLlama {
    /// Build from GGUF tensors; `tensor(name)` reads (and may repack) one tensor.
    /// `gemm_rows`: from this many input rows on, matmuls use the f32 GEMM over dequantised
    /// weights, which `cache` keeps up to its budget.
    pub fn load(
        hyper: Hyper,
        device: &Device,
        gemm_rows: Option<usize>,
        cache: &Arc<DenseCache>,
        mut tensor: impl FnMut(&str) -> Result<QTensor>,
    ) -> Result<Self> {
        let float = |t: QTensor| t.dequantize(device);
        let embeddings_q = tensor("token_embd.weight")?;
        let embeddings = embeddings_q.dequantize(device)?;
        // Tied embeddings: the output projection reuses the embedding table.
        let output = match tensor("output.weight") {
            Ok(t) => t,
            Err(_) => embeddings_q,
        };
        let mut layers = Vec::with_capacity(hyper.n_layer);
        for i in 0..hyper.n_layer {
            let mut q = |name: &str| tensor(&format!("blk.{i}.{name}.weight"));
            let linear = |name: &'static str, t: QTensor| QLinear::new(name, t, gemm_rows, cache);
            layers.push(Layer {
                attn_norm: float(q("attn_norm")?)?,
                qkv: Projections::new(
                    "attn_qkv",
                    vec![
                        ("attn_q", q("attn_q")?),
                        ("attn_k", q("attn_k")?),
                        ("attn_v", q("attn_v")?),
                    ],
                    gemm_rows,
                    cache,
                )?,
                wo: linear("attn_output", q("attn_output")?)?,
                ffn_norm: float(q("ffn_norm")?)?,
                gate_up: Projections::new(
                    "ffn_gate_up",
                    vec![("ffn_gate", q("ffn_gate")?), ("ffn_up", q("ffn_up")?)],
                    gemm_rows,
                    cache,
                )?,
                w_down: linear("ffn_down", q("ffn_down")?)?,
                kv_cache: None,
            });
        }
        let (cos, sin) = rotary_tables(&hyper, device)?;
        Ok(QuantizedLlama {
            norm: float(tensor("output_norm.weight")?)?,
            output: QLinear::new("output", output, gemm_rows, cache)?,
            hyper,
            embeddings,
            layers,
            cos,
            sin,
        })
    }

    pub fn clear_kv_cache(&mut self) {
        for layer in &mut self.layers {
            layer.kv_cache = None;
        }
    }

    /// Logits of the last position of each row: tokens (batch, seq) -> (batch, vocab).
    pub fn forward(&mut self, tokens: &Tensor, position: usize) -> Result<Tensor> {
        let (batch, seq) = tokens.dims2()?;
        let hidden = self.hyper.hidden;
        let mut x = timed(OpKind::Embedding, "token_embd", tensor_bytes, || {
            self.embeddings
                .index_select(&tokens.flatten_all()?, 0)?
                .reshape((batch, seq, hidden))
        })?;
        // The CPU attends from the cache without one (cache_attention).
        let mask = if seq > 1 && !tokens.device().is_cpu() {
            Some(timed(OpKind::Copy, "causal_mask", tensor_bytes, || {
                build_causal_mask(seq, position, tokens.device())
            })?)
        } else {
            None
        };
        let cos = self.cos.narrow(0, position, seq)?;
        let sin = self.sin.narrow(0, position, seq)?;
        let eps = self.hyper.rms_eps as f32;
        // Bytes of an elementwise op: `inputs` tensors the size of its output, read, and the
        // output written.
        let elementwise = |inputs: u64| move |y: &Tensor| (inputs + 1) * tensor_bytes(y);
        let norm = |name, x: &Tensor, weight: &Tensor| {
            timed(OpKind::RmsNorm, name, elementwise(1), || {
                candle_nn::ops::rms_norm(x, weight, eps)
            })
        };
        for layer in &mut self.layers {
            let h = norm("attn_norm", &x, &layer.attn_norm)?;
            let attn = attention(&self.hyper, layer, &h, mask.as_ref(), &cos, &sin)?;
            x = timed(OpKind::Residual, "attn_residual", elementwise(2), || {
                &x + &attn
            })?;
            let h = norm("ffn_norm", &x, &layer.ffn_norm)?;
            let [gate, up] = layer.gate_up.forward(&h)?;
            let act = timed(OpKind::Activation, "silu_gate", elementwise(2), || {
                super::swiglu::silu_mul(&gate, &up)
            })?;
            let mlp = layer.w_down.forward(&act)?;
            x = timed(OpKind::Residual, "ffn_residual", elementwise(2), || {
                &x + &mlp
            })?;
        }
        let x = norm("output_norm", &x, &self.norm)?;
        // QMatMul needs a contiguous input; the last-position slice of a batch is strided.
        let last = timed(OpKind::Copy, "last_position", tensor_bytes, || {
            x.i((.., seq - 1, ..))?.contiguous()
        })?;
        self.output.forward(&last)
    }
}

fn attention(
    hyper: &Hyper,
    layer: &mut Layer,
    x: &Tensor,
    mask: Option<&Tensor>,
    cos: &Tensor,
    sin: &Tensor,
) -> Result<Tensor> {
    let (batch, seq, hidden) = x.dims3()?;
    let head_dim = hyper.head_dim();
    let copied = |y: &Tensor| 2 * tensor_bytes(y);
    let heads = |name, t: Tensor, n: usize| {
        timed(OpKind::Copy, name, copied, || {
            t.reshape((batch, seq, n, head_dim))?
                .transpose(1, 2)?
                .contiguous()
        })
    };
    let [q, k, v] = layer.qkv.forward(x)?;
    let q = heads("split_heads_q", q, hyper.n_head)?;
    let k = heads("split_heads_k", k, hyper.n_kv_head)?;
    let v = heads("split_heads_v", v, hyper.n_kv_head)?;
    // GGUF llama weights are permuted for interleaved (GPT-J style) rotary pairs.
    let q = timed(OpKind::Rope, "rope_q", copied, || {
        candle_nn::rotary_emb::rope_i(&q, cos, sin)
    })?;
    let k = timed(OpKind::Rope, "rope_k", copied, || {
        candle_nn::rotary_emb::rope_i(&k, cos, sin)
    })?;
    // The new positions, read and written into the cache in place.
    let appended = 2 * (tensor_bytes(&k) + tensor_bytes(&v));
    let (k, v) = timed(
        OpKind::KvCache,
        "kv_append",
        |_| appended,
        || KvCache::append(&mut layer.kv_cache, &k, &v),
    )?;
    // On the CPU: attend straight from the cache (cache_attention), causal without a mask.
    if q.device().is_cpu() {
        let moved =
            |y: &Tensor| tensor_bytes(&q) + tensor_bytes(&k) + tensor_bytes(&v) + tensor_bytes(y);
        let name = if seq == 1 {
            "decode_attention"
        } else {
            "prefill_attention"
        };
        let attended = timed(
            OpKind::Attention,
            name,
            |y: &Option<Tensor>| y.as_ref().map_or(0, moved),
            || super::cache_attention::attend(&q, &k, &v),
        )?;
        if let Some(y) = attended {
            return layer.wo.forward(&y);
        }
    }
    let n_rep = hyper.n_head / hyper.n_kv_head;
    let k = timed(OpKind::Copy, "repeat_kv", copied, || repeat_kv(k, n_rep))?;
    let v = timed(OpKind::Copy, "repeat_kv", copied, || {
        repeat_kv(v, n_rep)?.contiguous()
    })?;
    let scores = timed(
        OpKind::Attention,
        "scores",
        |s| tensor_bytes(&q) + tensor_bytes(&k) + tensor_bytes(s),
        || q.matmul(&k.t()?)? / (head_dim as f64).sqrt(),
    )?;
    let cpu_mask;
    let mask = match mask {
        None if seq > 1 => {
            cpu_mask = build_causal_mask(seq, k.dim(2)? - seq, x.device())?;
            Some(&cpu_mask)
        }
        mask => mask,
    };
    let scores = match mask {
        Some(m) => timed(OpKind::Copy, "mask", copied, || {
            let m = m.broadcast_as(scores.shape())?;
            let neg_inf = Tensor::new(f32::NEG_INFINITY, scores.device())?
                .to_dtype(scores.dtype())?
                .broadcast_as(scores.shape())?;
            m.where_cond(&neg_inf, &scores)
        })?,
        None => scores,
    };
    let probs = timed(OpKind::Softmax, "softmax", copied, || {
        candle_nn::ops::softmax_last_dim(&scores)
    })?;
    let y = timed(
        OpKind::Attention,
        "weighted_sum",
        |y| tensor_bytes(&probs) + tensor_bytes(&v) + tensor_bytes(y),
        || probs.matmul(&v),
    )?;
    let y = timed(OpKind::Copy, "merge_heads", copied, || {
        y.transpose(1, 2)?.reshape((batch, seq, hidden))
    })?;
    layer.wo.forward(&y)
}

/// cos/sin of every position for the rotary embedding: (context, rope_dim / 2).
fn rotary_tables(hyper: &Hyper, device: &Device) -> Result<(Tensor, Tensor)> {
    let inv_freq: Vec<f32> = (0..hyper.rope_dim)
        .step_by(2)
        .map(|i| 1.0 / hyper.rope_base.powf(i as f32 / hyper.rope_dim as f32))
        .collect();
    let n = inv_freq.len();
    let inv_freq = Tensor::from_vec(inv_freq, (1, n), device)?;
    let positions = Tensor::arange(0u32, hyper.context_length as u32, device)?
        .to_dtype(DType::F32)?
        .reshape((hyper.context_length, 1))?;
    let angles = positions.matmul(&inv_freq)?;
    Ok((angles.cos()?, angles.sin()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q8(rows: usize, seed: f32) -> QTensor {
        let w = Tensor::arange(0f32, (rows * 64) as f32, &Device::Cpu)
            .unwrap()
            .affine(0.001, seed as f64)
            .unwrap()
            .sin()
            .unwrap()
            .reshape((rows, 64))
            .unwrap();
        QTensor::quantize(&w, candle_core::quantized::GgmlDType::Q8_0).unwrap()
    }

    #[test]
    fn stacked_projections_give_each_projection_its_own_output() {
        let cache = DenseCache::new(1 << 20);
        let parts = || vec![("a", q8(96, 0.1)), ("b", q8(32, 0.7)), ("c", q8(32, 1.3))];
        let x = Tensor::arange(0f32, 128.0, &Device::Cpu)
            .unwrap()
            .affine(0.01, -0.5)
            .unwrap()
            .reshape((2, 1, 64))
            .unwrap();
        // Quantised matvecs (no GEMM), and the GEMM from 2 rows on.
        for gemm_rows in [None, Some(2)] {
            let fused = Projections::new("abc", parts(), gemm_rows, &cache).unwrap();
            assert!(matches!(fused, Projections::Fused { .. }));
            let apart = Projections::Apart(
                parts()
                    .into_iter()
                    .map(|(n, t)| QLinear::new(n, t, gemm_rows, &cache).unwrap())
                    .collect(),
            );
            let [a, b, c] = fused.forward(&x).unwrap();
            let [a2, b2, c2] = apart.forward(&x).unwrap();
            for (one, other) in [(a, a2), (b, b2), (c, c2)] {
                assert_eq!(one.dims(), other.dims());
                // The same dot products: equal to the bit.
                assert_eq!(
                    one.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
                    other.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
                    "{gemm_rows:?}"
                );
            }
        }
        // Types that differ are kept apart.
        let f32_weight = QTensor::quantize(
            &q8(32, 0.2).dequantize(&Device::Cpu).unwrap(),
            candle_core::quantized::GgmlDType::F32,
        )
        .unwrap();
        let mixed = vec![("a", q8(32, 0.1)), ("b", f32_weight)];
        assert!(matches!(
            Projections::new("ab", mixed, None, &cache).unwrap(),
            Projections::Apart(_)
        ));
    }

    #[test]
    fn dense_cache_keeps_weights_up_to_its_budget() {
        let cache = DenseCache::new(1000);
        assert!(cache.try_reserve(600));
        assert!(!cache.try_reserve(600), "600 more would pass the budget");
        assert!(cache.try_reserve(400));
        assert_eq!(cache.used_bytes(), 1000);
        assert!(!DenseCache::new(0).try_reserve(1));
    }
}
