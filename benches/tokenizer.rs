//! Tokenizer throughput in bytes of text per second: encode and decode, on a short chat-sized
//! prompt and a long document, for the default model's GGUF-built tokenizer and the
//! all-MiniLM-L6-v2 tokenizer.json (both from the Hugging Face cache: scripts/fetch-models.sh).

use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use inferbench::model::{self, ModelRef, Need, TextTokenizer};

const SHORT: &str = "What is the capital of France? Answer in one sentence, please.";

/// About 64 KiB of mixed prose, code and numbers.
fn long_text() -> String {
    let block = "The quick brown fox jumps over the lazy dog; naïve café déjà vu. \
                 fn main() { let xs: Vec<u64> = (0..1024).map(|i| i * i).collect(); }\n\
                 Prices rose 3.25% to $1,234.56 on 2024-11-24, said the report.\n";
    block.repeat(65_536 / block.len() + 1)
}

fn tokenizers() -> Vec<(&'static str, TextTokenizer)> {
    let smollm = model::source::resolve(&ModelRef::default(), Need::Weights)
        .unwrap_or_else(|e| panic!("{e:#}"));
    let minilm = hf_hub::Cache::from_env()
        .model("sentence-transformers/all-MiniLM-L6-v2".into())
        .get("tokenizer.json")
        .expect("all-MiniLM-L6-v2 in the hub cache (run scripts/fetch-models.sh)");
    vec![
        (
            "smollm2-gguf",
            model::load_tokenizer_file(smollm.main_path()).unwrap(),
        ),
        ("minilm-json", model::load_tokenizer_file(&minilm).unwrap()),
    ]
}

fn benches(c: &mut Criterion) {
    let long = long_text();
    let mut group = c.benchmark_group("tokenizer");
    group
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    for (name, tok) in tokenizers() {
        for (size, text) in [("short", SHORT), ("long", long.as_str())] {
            group.throughput(Throughput::Bytes(text.len() as u64));
            group.bench_function(BenchmarkId::new("encode", format!("{name}/{size}")), |b| {
                b.iter(|| tok.encode(text).unwrap())
            });
            let ids = tok.encode(text).unwrap();
            group.bench_function(BenchmarkId::new("decode", format!("{name}/{size}")), |b| {
                b.iter(|| tok.decode(&ids).unwrap())
            });
        }
    }
    group.finish();
}

criterion_group!(tokenizer, benches);
criterion_main!(tokenizer);
