//! The hot paths counted in instructions: each a setup (not counted) and one iteration (counted).
//! Inputs are fixed: seeded data, a fixed text, the default model's weights, so two runs of one
//! build execute the same instructions. Everything runs on the CPU, in one thread (the runner
//! sets RAYON_NUM_THREADS=1), because idle worker threads spin for as long as scheduling
//! decides, which would make the counts vary.

use std::path::Path;
use std::sync::atomic::AtomicBool;

use anyhow::{anyhow, Context, Result};
use candle_core::quantized::{GgmlDType, QMatMul, QTensor};
use candle_core::{DType, Device, Module, Tensor};
use rand::SeedableRng;
use rand_distr::{Distribution, StandardNormal};

use crate::model::{self, LoadOptions, ModelRef, Need};
use crate::retrieval::cache::Lookup;
use crate::retrieval::dataset::MixtureSpec;
use crate::retrieval::distance::{self, Metric};
use crate::retrieval::index::{Index, IndexParams};

/// One iteration of a workload; an error ends the measurement.
pub type Iteration = Box<dyn FnMut() -> Result<()>>;

pub struct Workload {
    /// "qmatmul/smollm2-135m/Q8_0": what compare matches baselines by.
    pub name: &'static str,
    /// One iteration, in words, for `--list`.
    pub what: &'static str,
    /// Iterations counted (and timed per sample); counts are reported per iteration.
    pub iterations: u32,
    /// Whether it reads the default model from the Hugging Face cache.
    pub needs_model: bool,
    /// Inputs too slow to build under valgrind, built natively into a folder first.
    pub prepare: Option<fn(&Path) -> Result<()>>,
    /// Build (or read from the prepared folder) the inputs; return one iteration.
    setup: fn(&Path) -> Result<Iteration>,
}

impl Workload {
    /// The inputs, ready: one iteration to run.
    pub fn set_up(&self, prepared: &Path) -> Result<Iteration> {
        (self.setup)(prepared).with_context(|| format!("setting up {}", self.name))
    }
}

/// SmolLM2-135M: hidden size, MLP size, attention heads, key/value heads.
const HIDDEN: usize = 576;
const MLP: usize = 1536;
const HEADS: usize = 9;
const KV_HEADS: usize = 3;
const HEAD_DIM: usize = HIDDEN / HEADS;
/// Tokens of the prefill-shaped kernels (as the kernels bench).
const SEQ: usize = 128;

pub const ALL: &[Workload] = &[
    Workload {
        name: "qmatmul/smollm2-135m/Q4_0",
        what: "MLP up projection, Q4_0 weights 1536x576 times one token",
        iterations: 10,
        needs_model: false,
        prepare: None,
        setup: |_| qmatmul(GgmlDType::Q4_0),
    },
    Workload {
        name: "qmatmul/smollm2-135m/Q4_1",
        what: "MLP up projection, Q4_1 weights 1536x576 times one token",
        iterations: 10,
        needs_model: false,
        prepare: None,
        setup: |_| qmatmul(GgmlDType::Q4_1),
    },
    Workload {
        name: "qmatmul/smollm2-135m/Q8_0",
        what: "MLP up projection, Q8_0 weights 1536x576 times one token",
        iterations: 10,
        needs_model: false,
        prepare: None,
        setup: |_| qmatmul(GgmlDType::Q8_0),
    },
    Workload {
        name: "pointwise/rms_norm/smollm2-135m",
        what: "rms_norm over 128 tokens x 576",
        iterations: 10,
        needs_model: false,
        prepare: None,
        setup: rms_norm,
    },
    Workload {
        name: "pointwise/rope_i/smollm2-135m",
        what: "interleaved rotary embedding of 9 heads x 128 tokens x 64",
        iterations: 10,
        needs_model: false,
        prepare: None,
        setup: rope,
    },
    Workload {
        name: "pointwise/softmax/smollm2-135m",
        what: "softmax over 9 heads x 128 x 128 attention scores",
        iterations: 10,
        needs_model: false,
        prepare: None,
        setup: softmax,
    },
    Workload {
        name: "attention/decode/smollm2-135m/kv=512",
        what: "one token's attention over a 512-position KV cache (9 heads, 3 KV heads)",
        iterations: 10,
        needs_model: false,
        prepare: None,
        setup: attention_decode,
    },
    Workload {
        name: "decode_step/smollm2-135m-instruct/pos=8",
        what: "one decode step of the default model (SmolLM2-135M-Instruct GGUF) after an 8-token prefill",
        iterations: 1,
        needs_model: true,
        prepare: None,
        setup: decode_step,
    },
    Workload {
        name: "tokenizer/encode/smollm2-gguf/4KiB",
        what: "encode 4 KiB of mixed prose, code and numbers with the default model's tokenizer",
        iterations: 2,
        needs_model: true,
        prepare: None,
        setup: tokenize,
    },
    Workload {
        name: "hnsw/search/20k-x128/ef=64",
        what: "100 queries, k=10 at ef=64, on a 20,000 x 128 clustered L2 index (M=16, ef_construction=64)",
        iterations: 1,
        needs_model: false,
        prepare: Some(hnsw_build),
        setup: hnsw_search,
    },
    Workload {
        name: "distance/l2/384",
        what: "1,000 L2 distances between 384-dimensional vectors",
        iterations: 10,
        needs_model: false,
        prepare: None,
        setup: l2_distance,
    },
];

/// The workload called `name`.
pub fn find(name: &str) -> Option<&'static Workload> {
    ALL.iter().find(|w| w.name == name)
}

/// Seeded normal values, the same on every run and machine.
fn seeded(shape: &[usize], seed: u64) -> Result<Tensor> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let len = shape.iter().product();
    let data: Vec<f32> = (0..len).map(|_| StandardNormal.sample(&mut rng)).collect();
    Ok(Tensor::from_vec(data, shape, &Device::Cpu)?)
}

fn qmatmul(dtype: GgmlDType) -> Result<Iteration> {
    let w = seeded(&[MLP, HIDDEN], 1)?;
    let mm = QMatMul::from_qtensor(QTensor::quantize(&w, dtype)?)?;
    let x = seeded(&[1, HIDDEN], 2)?;
    Ok(Box::new(move || {
        std::hint::black_box(mm.forward(&x)?);
        Ok(())
    }))
}

fn rms_norm(_: &Path) -> Result<Iteration> {
    let hidden = seeded(&[1, SEQ, HIDDEN], 3)?;
    let alpha = seeded(&[HIDDEN], 4)?;
    Ok(Box::new(move || {
        std::hint::black_box(candle_nn::ops::rms_norm(&hidden, &alpha, 1e-5)?);
        Ok(())
    }))
}

fn rope(_: &Path) -> Result<Iteration> {
    let q = seeded(&[1, HEADS, SEQ, HEAD_DIM], 5)?;
    let cos = seeded(&[SEQ, HEAD_DIM / 2], 6)?;
    let sin = seeded(&[SEQ, HEAD_DIM / 2], 7)?;
    Ok(Box::new(move || {
        std::hint::black_box(candle_nn::rotary_emb::rope_i(&q, &cos, &sin)?);
        Ok(())
    }))
}

fn softmax(_: &Path) -> Result<Iteration> {
    let scores = seeded(&[1, HEADS, SEQ, SEQ], 8)?;
    Ok(Box::new(move || {
        std::hint::black_box(candle_nn::ops::softmax_last_dim(&scores)?);
        Ok(())
    }))
}

/// Attention as the engine computes it: KV heads repeated, scores, softmax, weighted values.
fn attention_decode(_: &Path) -> Result<Iteration> {
    let kv_len = 512;
    let q = seeded(&[1, HEADS, 1, HEAD_DIM], 9)?;
    let k = seeded(&[1, KV_HEADS, kv_len, HEAD_DIM], 10)?;
    let v = seeded(&[1, KV_HEADS, kv_len, HEAD_DIM], 11)?;
    let n_rep = HEADS / KV_HEADS;
    Ok(Box::new(move || {
        let k = candle_transformers::utils::repeat_kv(k.clone(), n_rep)?;
        let v = candle_transformers::utils::repeat_kv(v.clone(), n_rep)?;
        let scores = (q.matmul(&k.t()?)? / (HEAD_DIM as f64).sqrt())?;
        let probs = candle_nn::ops::softmax_last_dim(&scores)?;
        std::hint::black_box(probs.matmul(&v.contiguous()?)?);
        Ok(())
    }))
}

/// A fixed text of about 4 KiB: prose with accents, code and numbers.
fn fixed_text() -> String {
    let block = "The quick brown fox jumps over the lazy dog; naïve café déjà vu. \
                 fn main() { let xs: Vec<u64> = (0..1024).map(|i| i * i).collect(); }\n\
                 Prices rose 3.25% to $1,234.56 on 2024-11-24, said the report.\n";
    let mut text = block.repeat(4096 / block.len() + 1);
    let mut cut = 4096;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    text.truncate(cut);
    text
}

fn default_model_file() -> Result<std::path::PathBuf> {
    let files = model::source::resolve(&ModelRef::default(), Need::Weights).context(
        "the default model is not in the Hugging Face cache (run scripts/fetch-models.sh)",
    )?;
    Ok(files.main_path().to_path_buf())
}

fn tokenize(_: &Path) -> Result<Iteration> {
    let tokenizer = model::load_tokenizer_file(&default_model_file()?)?;
    let text = fixed_text();
    Ok(Box::new(move || {
        std::hint::black_box(tokenizer.encode_plain(&text)?);
        Ok(())
    }))
}

/// Tokens before the counted decode step: below the prefill GEMM's 32 rows, so the setup
/// does not dequantise the weights (slow under valgrind, and not what is counted).
const CONTEXT: usize = 8;

/// The default model after an 8-token prefill; each iteration decodes one more token, greedy
/// over a fixed token (the position advances, so the KV cache grows by one per iteration).
fn decode_step(_: &Path) -> Result<Iteration> {
    let loaded = model::load(&LoadOptions::default(), &Device::Cpu)?;
    let mut lm = loaded.model;
    let mut prompt = loaded.tokenizer.encode_plain(&fixed_text())?;
    prompt.truncate(CONTEXT);
    if prompt.len() < CONTEXT {
        return Err(anyhow!(
            "the fixed text tokenised to fewer than {CONTEXT} tokens"
        ));
    }
    let input = Tensor::new(prompt.as_slice(), &Device::Cpu)?.unsqueeze(0)?;
    lm.forward(&input, 0)?;
    let next = Tensor::new(&[prompt[CONTEXT - 1]], &Device::Cpu)?.unsqueeze(0)?;
    let mut position = CONTEXT;
    Ok(Box::new(move || {
        std::hint::black_box(lm.forward(&next, position)?.to_dtype(DType::F32)?);
        position += 1;
        Ok(())
    }))
}

fn hnsw_spec() -> MixtureSpec {
    let mut spec = MixtureSpec::clustered(20_000, 128);
    spec.queries = 100;
    spec
}

const HNSW_PARAMS: IndexParams = IndexParams {
    metric: Metric::L2,
    m: 16,
    ef_construction: 64,
};

/// Build the index natively (in one thread: the same graph every time) and save it.
fn hnsw_build(prepared: &Path) -> Result<()> {
    let (base, _) = hnsw_spec().generate(&|_| {})?;
    let index = Index::build(&base, HNSW_PARAMS, &AtomicBool::new(false), &|_| {})?;
    index.save(&prepared.join("hnsw"), &HNSW_PARAMS)
}

fn hnsw_search(prepared: &Path) -> Result<Iteration> {
    let (_, queries) = hnsw_spec().generate(&|_| {})?;
    let dir = prepared.join("hnsw");
    let index = match Index::load(&dir, &HNSW_PARAMS, HNSW_PARAMS.metric) {
        Lookup::Hit(index) => index,
        Lookup::Missing => return Err(anyhow!("{}: the index was not prepared", dir.display())),
        Lookup::Unusable(why) => return Err(anyhow!("{}: {why}", dir.display())),
    };
    Ok(Box::new(move || {
        for q in queries.rows() {
            std::hint::black_box(index.search(q, 10, 64));
        }
        Ok(())
    }))
}

/// The kernel over a block of rows, so the loop around it (unoptimised in debug builds) is
/// not what gets counted.
fn l2_distance(_: &Path) -> Result<Iteration> {
    let dim = 384;
    let query = seeded(&[dim], 12)?.to_vec1::<f32>()?;
    let rows = seeded(&[1000, dim], 13)?.flatten_all()?.to_vec1::<f32>()?;
    let mut out = vec![0.0f32; 1000];
    Ok(Box::new(move || {
        distance::l2_to_rows(&query, &rows, &mut out);
        std::hint::black_box(&out);
        Ok(())
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_plain() {
        let mut names: Vec<_> = ALL.iter().map(|w| w.name).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), ALL.len());
        for w in ALL {
            assert!(w.iterations >= 1, "{}", w.name);
            assert!(!w.name.contains(' '), "{}", w.name);
        }
    }

    #[test]
    fn the_fixed_text_is_4_kib_of_whole_characters() {
        let text = fixed_text();
        assert!(text.len() <= 4096 && text.len() > 4090, "{}", text.len());
    }

    #[test]
    fn kernels_without_a_model_run() {
        for w in ALL
            .iter()
            .filter(|w| !w.needs_model && !w.name.starts_with("hnsw"))
        {
            let mut iteration = w.set_up(Path::new("/nonexistent")).unwrap();
            iteration().unwrap();
        }
    }
}
