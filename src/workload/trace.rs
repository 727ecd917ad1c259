//! Request traces to replay on their own clock (`load --pattern replay:FILE`): Mooncake's
//! JSONL (`{"timestamp": ms, "input_length", "output_length", "hash_ids": [...]}` per line)
//! or BurstGPT's CSV (`Timestamp` in seconds, `Request tokens`, `Response tokens`). Mooncake's
//! `hash_ids` name the 512-token blocks a prompt is made of; prompts are built from them so
//! requests that shared blocks in the trace share text here, and a prefix cache sees what it
//! saw then.

use std::collections::HashMap;
use std::path::Path;

use anyhow::{bail, Context, Result};
use serde::Deserialize;

use super::prompts::Prompt;
use crate::model::TextTokenizer;

/// Tokens in one of Mooncake's hash blocks.
const BLOCK_TOKENS: usize = 512;

/// Most prompt tokens a replay builds (about 2 GiB of text): a longer trace is replayed in
/// part with --duration.
const MAX_TOTAL_TOKENS: u64 = 400_000_000;

#[derive(Debug, Clone, PartialEq)]
pub struct TraceEntry {
    /// Seconds from the trace's first request.
    pub at_s: f64,
    pub input_tokens: u32,
    pub output_tokens: u32,
    /// Mooncake's block ids, in prompt order; empty for BurstGPT.
    pub blocks: Vec<u64>,
}

#[derive(Deserialize)]
struct MooncakeLine {
    timestamp: f64,
    input_length: u32,
    output_length: u32,
    #[serde(default)]
    hash_ids: Vec<u64>,
}

/// Read a trace: `.csv` as BurstGPT, anything else as Mooncake JSONL. Entries come sorted by
/// time, offsets from the first; every error names the file and line.
pub fn read(path: &Path) -> Result<Vec<TraceEntry>> {
    let name = path.display().to_string();
    let bytes = std::fs::read(path).with_context(|| format!("trace {name}: cannot read it"))?;
    let text = match String::from_utf8(bytes) {
        Ok(t) => t,
        Err(e) => {
            let at = e.utf8_error().valid_up_to();
            let line = e.as_bytes()[..at].iter().filter(|b| **b == b'\n').count() + 1;
            bail!("trace {name} line {line}: not UTF-8 text");
        }
    };
    let is_csv = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("csv"));
    let mut entries = if is_csv {
        burstgpt(&text, &name)?
    } else {
        mooncake(&text, &name)?
    };
    if entries.is_empty() {
        bail!("trace {name}: no requests in it");
    }
    entries.sort_by(|a, b| a.at_s.total_cmp(&b.at_s));
    let first = entries[0].at_s;
    for e in &mut entries {
        e.at_s -= first;
    }
    Ok(entries)
}

fn mooncake(text: &str, name: &str) -> Result<Vec<TraceEntry>> {
    let mut entries = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        if raw.trim().is_empty() {
            continue;
        }
        let at = || format!("trace {name} line {}", i + 1);
        let line: MooncakeLine = serde_json::from_str(raw).with_context(|| {
            format!(
                "{}: not a Mooncake request ({{\"timestamp\", \"input_length\", \"output_length\"}})",
                at()
            )
        })?;
        entries.push(checked(
            line.timestamp / 1e3,
            line.input_length,
            line.output_length,
            line.hash_ids,
            &at,
        )?);
    }
    Ok(entries)
}

fn burstgpt(text: &str, name: &str) -> Result<Vec<TraceEntry>> {
    let mut lines = text.lines().enumerate();
    let Some((_, header)) = lines.next() else {
        bail!("trace {name}: empty");
    };
    let columns: Vec<&str> = header.split(',').map(str::trim).collect();
    let column = |wanted: &str| {
        columns.iter().position(|c| c.eq_ignore_ascii_case(wanted)).ok_or_else(|| {
            anyhow::anyhow!(
                "trace {name} line 1: no `{wanted}` column (BurstGPT's header has Timestamp, Request tokens, Response tokens)"
            )
        })
    };
    let (t, input, output) = (
        column("Timestamp")?,
        column("Request tokens")?,
        column("Response tokens")?,
    );
    let mut entries = Vec::new();
    for (i, raw) in lines {
        if raw.trim().is_empty() {
            continue;
        }
        let at = || format!("trace {name} line {}", i + 1);
        let fields: Vec<&str> = raw.split(',').map(str::trim).collect();
        let field = |k: usize, what: &str| -> Result<f64> {
            let value = fields
                .get(k)
                .ok_or_else(|| anyhow::anyhow!("{}: no {what} field", at()))?;
            value
                .parse::<f64>()
                .map_err(|_| anyhow::anyhow!("{}: {what} `{value}` is not a number", at()))
        };
        let whole = |x: f64, what: &str| -> Result<u32> {
            if x.is_finite() && x >= 0.0 && x <= u32::MAX as f64 {
                Ok(x as u32)
            } else {
                bail!("{}: {what} {x} is not a token count", at())
            }
        };
        let at_s = field(t, "Timestamp")?;
        let input_tokens = whole(field(input, "Request tokens")?, "Request tokens")?;
        // BurstGPT logs failed requests with 0 response tokens: ask for 1.
        let output_tokens = whole(field(output, "Response tokens")?, "Response tokens")?.max(1);
        entries.push(checked(at_s, input_tokens, output_tokens, Vec::new(), &at)?);
    }
    Ok(entries)
}

fn checked(
    at_s: f64,
    input_tokens: u32,
    output_tokens: u32,
    blocks: Vec<u64>,
    at: &dyn Fn() -> String,
) -> Result<TraceEntry> {
    if !at_s.is_finite() || at_s < 0.0 {
        bail!("{}: the timestamp must be 0 or more, got {at_s}", at());
    }
    if input_tokens == 0 {
        bail!("{}: a request needs at least 1 input token", at());
    }
    if output_tokens == 0 {
        bail!("{}: a request needs at least 1 output token", at());
    }
    Ok(TraceEntry {
        at_s,
        input_tokens,
        output_tokens,
        blocks,
    })
}

/// One prompt per entry, of its input length (by this tokenizer), asking for its output
/// length; entries naming the same blocks share those blocks' text.
pub fn prompts(
    entries: &[TraceEntry],
    tokenizer: &TextTokenizer,
    name: &str,
) -> Result<Vec<Prompt>> {
    let total: u64 = entries.iter().map(|e| u64::from(e.input_tokens)).sum();
    if total > MAX_TOTAL_TOKENS {
        bail!(
            "trace {name}: its {} requests ask for {total} prompt tokens in all, more than the {MAX_TOTAL_TOKENS} a replay builds; replay part of it with --duration",
            entries.len()
        );
    }
    let passage = tokenizer.encode_plain(super::synthetic::PASSAGE)?;
    if passage.is_empty() {
        bail!(
            "{}: the tokenizer turns the prompt passage into no tokens",
            tokenizer.source
        );
    }
    // A block's tokens: a heading naming it, then the passage from a place of its own.
    let mut block_ids: HashMap<u64, Vec<u32>> = HashMap::new();
    let mut block = |id: u64| -> Result<Vec<u32>> {
        if let Some(ids) = block_ids.get(&id) {
            return Ok(ids.clone());
        }
        let mut ids = tokenizer.encode_plain(&format!("Block {id}.\n"))?;
        let mut at = (id as usize).wrapping_mul(31) % passage.len();
        while ids.len() < BLOCK_TOKENS {
            ids.push(passage[at]);
            at = (at + 1) % passage.len();
        }
        ids.truncate(BLOCK_TOKENS);
        block_ids.insert(id, ids.clone());
        Ok(ids)
    };
    entries
        .iter()
        .enumerate()
        .map(|(i, e)| {
            let want = e.input_tokens as usize;
            let mut ids = Vec::with_capacity(want);
            for &b in &e.blocks {
                if ids.len() >= want {
                    break;
                }
                ids.extend(block(b)?);
            }
            // No blocks (BurstGPT) or too few: a block of this request's own.
            let mut own = 0u64;
            while ids.len() < want {
                ids.extend(block(u64::MAX - i as u64 * 1024 - own)?);
                own += 1;
            }
            ids.truncate(want);
            Ok(Prompt {
                text: tokenizer.decode(&ids)?,
                max_tokens: e.output_tokens,
                temperature: Some(0.0),
                history: Vec::new(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(name: &str, text: &str) -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        (dir, path)
    }

    #[test]
    fn mooncake_lines_become_offsets_and_shared_blocks_share_text() {
        let (_d, path) = file(
            "t.jsonl",
            r#"{"timestamp": 1000, "input_length": 600, "output_length": 5, "hash_ids": [7, 8]}
{"timestamp": 1500, "input_length": 700, "output_length": 9, "hash_ids": [7, 9]}
{"timestamp": 1200, "input_length": 20, "output_length": 3}
"#,
        );
        let e = read(&path).unwrap();
        assert_eq!(
            e.iter().map(|e| (e.at_s * 1e3).round()).collect::<Vec<_>>(),
            [0.0, 200.0, 500.0],
            "sorted, from the first"
        );
        let t = TextTokenizer::words_for_tests();
        let p = prompts(&e, &t, "t").unwrap();
        let words = |s: &str| t.encode_plain(s).unwrap().len();
        assert_eq!(
            (words(&p[0].text), words(&p[1].text), words(&p[2].text)),
            (600, 20, 700)
        );
        assert_eq!((p[0].max_tokens, p[2].max_tokens), (5, 9));
        // Both name block 7 first: their first 512 tokens are the same text.
        let first_block = |s: &str| s.split_whitespace().take(512).collect::<Vec<_>>().join(" ");
        assert_eq!(first_block(&p[0].text), first_block(&p[2].text));
    }

    #[test]
    fn burstgpt_csv_is_read_by_its_header() {
        let (_d, path) = file(
            "b.csv",
            "Timestamp,Model,Request tokens,Response tokens,Total tokens,Log Type\n\
             5,ChatGPT,472,18,490,Conversation log\n\
             7.5,GPT-4,1087,0,1087,API log\n",
        );
        let e = read(&path).unwrap();
        assert_eq!(e.len(), 2);
        assert_eq!(
            (e[1].at_s, e[1].input_tokens, e[1].output_tokens),
            (2.5, 1087, 1)
        );
    }

    #[test]
    fn bad_traces_name_the_file_and_line() {
        for (name, text, want) in [
            (
                "a.jsonl",
                "{\"timestamp\": 1, \"input_length\": 3}\n",
                "line 1: not a Mooncake request",
            ),
            (
                "b.jsonl",
                "\n{\"timestamp\": -5, \"input_length\": 3, \"output_length\": 1}\n",
                "line 2: the timestamp must be 0 or more",
            ),
            (
                "c.jsonl",
                "{\"timestamp\": 1, \"input_length\": 0, \"output_length\": 1}\n",
                "at least 1 input token",
            ),
            ("d.jsonl", "\n\n", "no requests"),
            (
                "e.csv",
                "Time,Request tokens,Response tokens\n1,2,3\n",
                "no `Timestamp` column",
            ),
            (
                "f.csv",
                "Timestamp,Request tokens,Response tokens\n1,x,3\n",
                "line 2: Request tokens `x` is not a number",
            ),
            (
                "g.csv",
                "Timestamp,Request tokens,Response tokens\n1,5\n",
                "line 2: no Response tokens field",
            ),
        ] {
            let (_d, path) = file(name, text);
            let err = format!("{:#}", read(&path).unwrap_err());
            assert!(err.contains(name) && err.contains(want), "{name}: {err}");
        }
    }
}
