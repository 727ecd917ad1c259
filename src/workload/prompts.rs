//! Prompts for serving benchmarks: a JSONL file (one `{"prompt", "max_tokens",
//! "temperature"}` object per line) or synthetic prompts of an exact token length.

use std::path::Path;

use anyhow::{bail, Context, Result};
use serde::Deserialize;

use rand::rngs::StdRng;
use rand::SeedableRng;

use super::lengths::LengthDist;
use crate::model::TextTokenizer;

/// The prompts used when no file is given: fixtures/prompts.jsonl, built in so `load` works
/// from any folder.
pub const DEFAULT_PROMPTS: &str = include_str!("../../fixtures/prompts.jsonl");
pub const DEFAULT_PROMPTS_NAME: &str = "built-in fixtures/prompts.jsonl";

#[derive(Debug, Clone, PartialEq)]
pub struct Prompt {
    pub text: String,
    pub max_tokens: u32,
    /// None: the server's default.
    pub temperature: Option<f64>,
    /// Earlier turns of its conversation, (user, assistant), oldest first; empty for a
    /// single-turn request.
    pub history: Vec<(String, String)>,
}

impl Prompt {
    /// The conversation as one text, for APIs without roles: "User: ...\nAssistant: ...\n
    /// User: <text>\nAssistant:"; the text alone when there is no history.
    pub fn transcript(&self) -> String {
        if self.history.is_empty() {
            return self.text.clone();
        }
        let mut out = String::new();
        for (user, assistant) in &self.history {
            out.push_str(&format!("User: {user}\nAssistant: {assistant}\n"));
        }
        out.push_str(&format!("User: {}\nAssistant:", self.text));
        out
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Line {
    prompt: String,
    max_tokens: Option<u32>,
    temperature: Option<f64>,
}

/// Read a JSONL prompts file. `max_tokens` fills in lines without one (and replaces every
/// line's when `force_max_tokens`). Blank lines are skipped; any other bad line is an error
/// naming its line number.
pub fn read_jsonl(
    path: &Path,
    default_max_tokens: u32,
    force_max_tokens: bool,
) -> Result<Vec<Prompt>> {
    let bytes = std::fs::read(path)
        .with_context(|| format!("prompts file {}: cannot read it", path.display()))?;
    let text = match String::from_utf8(bytes) {
        Ok(text) => text,
        Err(e) => {
            let bytes = e.as_bytes();
            let at = e.utf8_error().valid_up_to();
            let line = bytes[..at].iter().filter(|b| **b == b'\n').count() + 1;
            bail!(
                "{} line {line}: not UTF-8 text (byte {at} of the file)",
                path.display()
            );
        }
    };
    parse_jsonl(
        &text,
        &path.display().to_string(),
        default_max_tokens,
        force_max_tokens,
    )
}

/// As `read_jsonl`, for text already read; `name` names it in errors.
pub fn parse_jsonl(
    text: &str,
    name: &str,
    default_max_tokens: u32,
    force_max_tokens: bool,
) -> Result<Vec<Prompt>> {
    let mut prompts = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let where_ = || format!("{name} line {}", i + 1);
        if raw.trim().is_empty() {
            continue;
        }
        let line: Line = serde_json::from_str(raw)
            .with_context(|| format!("{}: not a prompt object", where_()))?;
        if line.prompt.trim().is_empty() {
            bail!("{}: `prompt` is empty", where_());
        }
        if line.max_tokens == Some(0) {
            bail!("{}: `max_tokens` must be at least 1", where_());
        }
        if let Some(t) = line.temperature {
            if !(t.is_finite() && t >= 0.0) {
                bail!("{}: `temperature` must be >= 0, got {t}", where_());
            }
        }
        prompts.push(Prompt {
            text: line.prompt,
            max_tokens: match line.max_tokens {
                Some(m) if !force_max_tokens => m,
                _ => default_max_tokens,
            },
            temperature: line.temperature,
            history: Vec::new(),
        });
    }
    if prompts.is_empty() {
        bail!("prompts file {name}: no prompts in it");
    }
    Ok(prompts)
}

/// `count` prompts whose token lengths (by this tokenizer) are drawn from `input`, each
/// asking for a length drawn from `output`, seeded; each starts at a different place in the
/// passage so a server's prefix cache does not make them free.
pub fn synthetic(
    tokenizer: &TextTokenizer,
    input: LengthDist,
    output: LengthDist,
    count: usize,
    seed: u64,
) -> Result<Vec<Prompt>> {
    let ids = super::synthetic::prompt_of_length(tokenizer, input.max() as usize + count)?;
    let start = usize::from(tokenizer.add_bos && tokenizer.bos_token_id.is_some());
    let body = &ids[start..];
    let mut rng = StdRng::seed_from_u64(seed);
    (0..count)
        .map(|i| {
            let take = (input.sample(&mut rng) as usize)
                .saturating_sub(start)
                .clamp(1, body.len());
            let from = i % body.len().saturating_sub(take).max(1);
            Ok(Prompt {
                text: tokenizer.decode(&body[from..from + take])?,
                max_tokens: output.sample(&mut rng),
                temperature: Some(0.0),
                history: Vec::new(),
            })
        })
        .collect()
}

/// Put shared prefix `i % N` in front of prompt `i`: N groups of prompts that share their
/// opening, the rest their own, to measure a server's prefix cache.
pub fn with_shared_prefixes(prompts: &mut [Prompt], prefixes: &[String]) {
    if prefixes.is_empty() {
        return;
    }
    for (i, prompt) in prompts.iter_mut().enumerate() {
        let prefix = &prefixes[i % prefixes.len()];
        prompt.text = format!("{prefix}\n\n{}", prompt.text);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(text: &str) -> tempfile::NamedTempFile {
        let f = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(f.path(), text).unwrap();
        f
    }

    #[test]
    fn lines_fill_in_defaults_and_skip_blanks() {
        let f = file(
            "{\"prompt\": \"a\"}\n\n{\"prompt\": \"b\", \"max_tokens\": 5, \"temperature\": 0.7}\n",
        );
        let p = read_jsonl(f.path(), 64, false).unwrap();
        assert_eq!(p.len(), 2);
        assert_eq!((p[0].max_tokens, p[0].temperature), (64, None));
        assert_eq!((p[1].max_tokens, p[1].temperature), (5, Some(0.7)));
        let forced = read_jsonl(f.path(), 9, true).unwrap();
        assert!(forced.iter().all(|p| p.max_tokens == 9));
    }

    #[test]
    fn the_built_in_prompts_parse() {
        let p = parse_jsonl(DEFAULT_PROMPTS, DEFAULT_PROMPTS_NAME, 128, false).unwrap();
        assert_eq!(p.len(), 32);
    }

    #[test]
    fn bad_lines_are_named_by_number() {
        for (text, expect) in [
            ("{\"prompt\": \"a\"}\n{\"prompt\": 3}\n", "line 2"),
            ("{\"prompt\": \"a\"}\n\n{oops\n", "line 3"),
            ("{\"prompt\": \"a\", \"max_token\": 3}\n", "line 1"),
            ("{\"prompt\": \"  \"}\n", "line 1: `prompt` is empty"),
            ("{\"prompt\": \"a\", \"max_tokens\": 0}\n", "at least 1"),
            ("{\"prompt\": \"a\", \"temperature\": -1}\n", ">= 0"),
            ("\n\n", "no prompts"),
        ] {
            let f = file(text);
            let err = format!("{:#}", read_jsonl(f.path(), 8, false).unwrap_err());
            assert!(err.contains(expect), "{text:?}: {err}");
        }
        for (bytes, expect) in [
            (
                &b"{\"prompt\": \"a\"}\n{\"prompt\": \"\xff\"}\n"[..],
                "line 2: not UTF-8",
            ),
            (&b"\xc3"[..], "line 1: not UTF-8"),
            (
                &b"\n\n\n{\"prompt\": \"\xe2\x82\"}"[..],
                "line 4: not UTF-8",
            ),
        ] {
            let mut f = tempfile::NamedTempFile::new().unwrap();
            std::io::Write::write_all(&mut f, bytes).unwrap();
            let err = format!("{:#}", read_jsonl(f.path(), 8, false).unwrap_err());
            assert!(err.contains(expect), "{bytes:?}: {err}");
        }
    }
}
