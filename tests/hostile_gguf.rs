//! GGUF files are untrusted input: every header value later code divides by, indexes with or
//! sizes an allocation with is checked first, and weights that cannot be right are refused,
//! each with the file and the key or tensor named, never a panic. The files are made here: a
//! tiny llama (hidden 8, 2 heads, 1 layer) written with candle's GGUF writer, one value
//! broken at a time.

use std::path::{Path, PathBuf};

use candle_core::quantized::gguf_file::{self, Value};
use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::{Device, Tensor};

use crate::common::{assert_clean_failure, inferbench};

const HIDDEN: usize = 8;
const FF: usize = 16;
const VOCAB: usize = 32;

/// What to break in the tiny model.
#[derive(Default)]
pub(crate) struct Breakage {
    /// Metadata (key, value) that replace or add to the good ones.
    pub(crate) metadata: Vec<(&'static str, Value)>,
    /// Metadata keys to leave out.
    pub(crate) drop: Vec<&'static str>,
    /// Tensors (name, shape) that replace the good ones; a zero dimension is allowed.
    pub(crate) tensors: Vec<(&'static str, Vec<usize>)>,
    /// Fill this tensor with NaN.
    pub(crate) nan: Option<&'static str>,
}

fn good_metadata() -> Vec<(&'static str, Value)> {
    vec![
        ("general.architecture", Value::String("llama".into())),
        ("general.name", Value::String("tiny".into())),
        ("llama.attention.head_count", Value::U32(2)),
        ("llama.attention.head_count_kv", Value::U32(1)),
        ("llama.embedding_length", Value::U32(HIDDEN as u32)),
        ("llama.block_count", Value::U32(1)),
        ("llama.feed_forward_length", Value::U32(FF as u32)),
        ("llama.context_length", Value::U32(64)),
        ("llama.rope.freq_base", Value::F32(10000.0)),
        ("llama.attention.layer_norm_rms_epsilon", Value::F32(1e-5)),
    ]
}

fn good_tensors() -> Vec<(&'static str, Vec<usize>)> {
    let kv = HIDDEN / 2; // one KV head of head dimension 4
    vec![
        ("token_embd.weight", vec![VOCAB, HIDDEN]),
        ("output_norm.weight", vec![HIDDEN]),
        ("blk.0.attn_norm.weight", vec![HIDDEN]),
        ("blk.0.attn_q.weight", vec![HIDDEN, HIDDEN]),
        ("blk.0.attn_k.weight", vec![kv, HIDDEN]),
        ("blk.0.attn_v.weight", vec![kv, HIDDEN]),
        ("blk.0.attn_output.weight", vec![HIDDEN, HIDDEN]),
        ("blk.0.ffn_norm.weight", vec![HIDDEN]),
        ("blk.0.ffn_gate.weight", vec![FF, HIDDEN]),
        ("blk.0.ffn_up.weight", vec![FF, HIDDEN]),
        ("blk.0.ffn_down.weight", vec![HIDDEN, FF]),
    ]
}

/// Write the tiny model with `b` applied.
pub(crate) fn tiny_gguf(dir: &Path, name: &str, b: Breakage) -> PathBuf {
    let mut metadata = good_metadata();
    metadata.retain(|(k, _)| !b.drop.contains(k) && !b.metadata.iter().any(|(m, _)| m == k));
    metadata.extend(b.metadata);
    let mut tensors = good_tensors();
    tensors.retain(|(n, _)| !b.tensors.iter().any(|(m, _)| m == n));
    tensors.extend(b.tensors);
    let qtensors: Vec<(&str, QTensor)> = tensors
        .iter()
        .map(|(n, shape)| {
            let count: usize = shape.iter().product();
            let fill = if b.nan == Some(*n) { f32::NAN } else { 0.02 };
            let values: Vec<f32> = (0..count).map(|i| fill * (1.0 + (i % 7) as f32)).collect();
            let t = Tensor::from_vec(values, shape.as_slice(), &Device::Cpu).unwrap();
            (*n, QTensor::quantize(&t, GgmlDType::F32).unwrap())
        })
        .collect();
    let path = dir.join(name);
    let mut file = std::fs::File::create(&path).unwrap();
    let md: Vec<(&str, &Value)> = metadata.iter().map(|(k, v)| (*k, v)).collect();
    let ts: Vec<(&str, &QTensor)> = qtensors.iter().map(|(n, t)| (*n, t)).collect();
    gguf_file::write(&mut file, &md, &ts).unwrap();
    path
}

fn meta(key: &'static str, value: Value) -> Breakage {
    Breakage {
        metadata: vec![(key, value)],
        ..Default::default()
    }
}

fn shape(name: &'static str, dims: &[usize]) -> Breakage {
    Breakage {
        tensors: vec![(name, dims.to_vec())],
        ..Default::default()
    }
}

/// The file must be refused by `generate` (exit 1) with these words in the message.
fn refused(path: &Path, expected: &[&str]) {
    let p = path.to_string_lossy();
    let o = inferbench(&[
        "generate",
        "--model",
        &p,
        "--prompt",
        "x",
        "--max-tokens",
        "2",
    ]);
    let mut all = vec![p.as_ref()];
    all.extend(expected);
    assert_clean_failure(&o, &all);
    assert_eq!(o.status.code(), Some(1), "{}", p);
}

#[test]
fn the_tiny_model_itself_loads() {
    let dir = tempfile::tempdir().unwrap();
    let path = tiny_gguf(dir.path(), "good.gguf", Breakage::default());
    let loaded = inferbench::model::gguf::load(&path, &Device::Cpu, None, None, 0);
    let (_, info, _) = loaded.unwrap_or_else(|e| panic!("{e:#}"));
    assert_eq!(
        (info.vocab_size, info.layers, info.hidden_size),
        (VOCAB, 1, HIDDEN)
    );
}

#[test]
fn header_values_that_would_divide_by_zero_or_index_out_of_bounds_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let cases: Vec<(&str, Breakage, Vec<&str>)> = vec![
        (
            "heads0",
            meta("llama.attention.head_count", Value::U32(0)),
            vec!["llama.attention.head_count = 0"],
        ),
        (
            "kv0",
            meta("llama.attention.head_count_kv", Value::U32(0)),
            vec!["head_count_kv = 0"],
        ),
        (
            "layers0",
            meta("llama.block_count", Value::U32(0)),
            vec!["llama.block_count = 0", "at least 1"],
        ),
        (
            "hidden0",
            meta("llama.embedding_length", Value::U32(0)),
            vec!["llama.embedding_length = 0"],
        ),
        (
            "ragged",
            meta("llama.attention.head_count", Value::U32(3)),
            vec!["not a multiple"],
        ),
        (
            "gqa",
            meta("llama.attention.head_count_kv", Value::U32(3)),
            vec!["head_count_kv 3"],
        ),
        (
            "rope",
            meta("llama.rope.dimension_count", Value::U32(3)),
            vec!["llama.rope.dimension_count 3"],
        ),
        (
            "ctx",
            meta("llama.context_length", Value::U32(u32::MAX)),
            vec!["llama.context_length"],
        ),
        (
            "align0",
            meta("general.alignment", Value::U32(0)),
            vec!["general.alignment = 0"],
        ),
        (
            "align3",
            meta("general.alignment", Value::U32(3)),
            vec!["general.alignment = 3"],
        ),
        (
            "noheads",
            Breakage {
                drop: vec!["llama.attention.head_count"],
                ..Default::default()
            },
            vec!["llama.attention.head_count"],
        ),
        (
            "layers9",
            meta("llama.block_count", Value::U32(1_000_000)),
            vec!["blk.1.attn_norm.weight"],
        ),
        (
            "emb0",
            shape("token_embd.weight", &[0, HIDDEN]),
            vec!["token_embd.weight"],
        ),
        (
            "emb1d",
            shape("token_embd.weight", &[VOCAB * HIDDEN]),
            vec!["token_embd.weight"],
        ),
        (
            "q",
            shape("blk.0.attn_q.weight", &[HIDDEN, HIDDEN / 2]),
            vec!["blk.0.attn_q.weight"],
        ),
        (
            "norm",
            shape("output_norm.weight", &[HIDDEN + 1]),
            vec!["output_norm.weight"],
        ),
        (
            "ffdown",
            shape("blk.0.ffn_down.weight", &[FF, HIDDEN]),
            vec!["blk.0.ffn_down.weight"],
        ),
    ];
    for (name, breakage, expected) in cases {
        let path = tiny_gguf(dir.path(), &format!("{name}.gguf"), breakage);
        refused(&path, &expected);
    }
}

#[test]
fn values_that_cannot_be_right_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let cases: Vec<(&str, Breakage, Vec<&str>)> = vec![
        (
            "theta0",
            meta("llama.rope.freq_base", Value::F32(0.0)),
            vec!["llama.rope.freq_base 0"],
        ),
        (
            "thetanan",
            meta("llama.rope.freq_base", Value::F32(f32::NAN)),
            vec!["llama.rope.freq_base"],
        ),
        (
            "eps",
            meta("llama.attention.layer_norm_rms_epsilon", Value::F32(-1.0)),
            vec!["layer_norm_rms_epsilon -1"],
        ),
        (
            "nanemb",
            Breakage {
                nan: Some("token_embd.weight"),
                ..Default::default()
            },
            vec!["'token_embd.weight'", "NaN"],
        ),
        (
            "nannorm",
            Breakage {
                nan: Some("blk.0.ffn_norm.weight"),
                ..Default::default()
            },
            vec!["'blk.0.ffn_norm.weight'", "NaN"],
        ),
        (
            "nanout",
            Breakage {
                nan: Some("output_norm.weight"),
                ..Default::default()
            },
            vec!["'output_norm.weight'"],
        ),
        (
            "nanlinear",
            Breakage {
                nan: Some("blk.0.ffn_down.weight"),
                ..Default::default()
            },
            vec!["'blk.0.ffn_down.weight'", "NaN", "element 0"],
        ),
    ];
    for (name, breakage, expected) in cases {
        let path = tiny_gguf(dir.path(), &format!("{name}.gguf"), breakage);
        refused(&path, &expected);
    }
}

#[test]
fn a_tensor_listed_twice_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = tiny_gguf(dir.path(), "dup.gguf", Breakage::default());
    // Rename one tensor-table entry to another's name of the same length, in place.
    let mut bytes = std::fs::read(&path).unwrap();
    let (from, to) = (b"blk.0.ffn_up.weight", b"blk.0.attn_q.weight");
    let at = bytes.windows(from.len()).position(|w| w == from).unwrap();
    bytes[at..at + from.len()].copy_from_slice(to);
    std::fs::write(&path, bytes).unwrap();
    refused(&path, &["listed twice"]);
}

/// A tiny model whose first tensor-table entry has ggml type 99: candle's reader refuses it.
fn unknown_dtype_gguf(dir: &Path) -> PathBuf {
    let path = tiny_gguf(dir, "dtype.gguf", Breakage::default());
    let mut bytes = std::fs::read(&path).unwrap();
    let name = b"token_embd.weight";
    let at = bytes.windows(name.len()).position(|w| w == name).unwrap() + name.len();
    let n_dims = u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
    let dtype_at = at + 4 + 8 * n_dims;
    bytes[dtype_at..dtype_at + 4].copy_from_slice(&99u32.to_le_bytes());
    std::fs::write(&path, bytes).unwrap();
    path
}

#[test]
fn errors_carry_no_backtrace_even_with_rust_backtrace_set() {
    // candle captures a backtrace into its error's message when RUST_BACKTRACE is set.
    let dir = tempfile::tempdir().unwrap();
    let path = unknown_dtype_gguf(dir.path());
    let p = path.to_string_lossy();
    let run = |lib_backtrace: Option<&str>| {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_inferbench"));
        cmd.args(["generate", "--model", &p, "--prompt", "x"])
            .env("RUST_BACKTRACE", "1")
            .env_remove("RUST_LIB_BACKTRACE");
        if let Some(v) = lib_backtrace {
            cmd.env("RUST_LIB_BACKTRACE", v);
        }
        let o = cmd.output().unwrap();
        assert_eq!(o.status.code(), Some(1));
        String::from_utf8_lossy(&o.stderr).into_owned()
    };
    let frames = |err: &str| {
        err.lines()
            .filter(|l| l.trim_start().starts_with("0: ") || l.contains("at ./"))
            .count()
    };
    let err = run(None);
    assert!(err.contains(p.as_ref()) && err.contains("99"), "{err}");
    assert!(frames(&err) == 0 && err.lines().count() <= 3, "{err}");
    // Asked for explicitly, library backtraces are still there (what the check above sees).
    assert!(
        frames(&run(Some("1"))) > 0,
        "RUST_LIB_BACKTRACE=1 shows no frames"
    );
}

#[test]
fn an_end_of_sequence_id_outside_the_vocabulary_is_refused() {
    // The real model with its tokenizer.ggml.eos_token_id (a u32 after the key and its
    // type) patched in place past the vocabulary.
    let dir = tempfile::tempdir().unwrap();
    let mut bytes = std::fs::read(crate::common::smollm_gguf()).unwrap();
    let key = b"tokenizer.ggml.eos_token_id";
    let at = bytes.windows(key.len()).position(|w| w == key).unwrap() + key.len();
    assert_eq!(
        u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap()),
        4,
        "a u32 value"
    );
    bytes[at + 4..at + 8].copy_from_slice(&4_000_000_000u32.to_le_bytes());
    let path = dir.path().join("eos.gguf");
    std::fs::write(&path, bytes).unwrap();
    refused(
        &path,
        &[
            "end-of-sequence token id 4000000000",
            "outside the model's vocabulary",
        ],
    );
}
