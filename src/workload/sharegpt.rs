//! Prompts from a ShareGPT file, chosen as vLLM's benchmark does: each conversation's first
//! human turn is the prompt, the recorded answer's token length is `max_tokens`, and
//! conversations too short (under 4 tokens either side) or too long (prompt over 1024, both
//! over 2048 tokens) are left out. The layout is a JSON array of
//! `{"id", "conversations": [{"from": "human"|"gpt", "value": "..."}, ...]}`; "role"/"content"
//! and "user"/"assistant" are read too.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{bail, Context, Result};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use serde::Deserialize;

use super::prompts::Prompt;
use crate::model::TextTokenizer;

/// vLLM's filter of ShareGPT conversations (benchmark_dataset.py's `is_valid_sequence`).
const MIN_TOKENS: usize = 4;
const MAX_PROMPT_TOKENS: usize = 1024;
const MAX_TOTAL_TOKENS: usize = 2048;

/// No vocabulary token is longer than this many bytes, so a text longer than the limit times
/// this is over the limit without being tokenized (a 100 MB turn is skipped at once).
const MAX_BYTES_PER_TOKEN: usize = 256;

#[derive(Deserialize)]
struct Entry {
    #[serde(default)]
    conversations: Option<Vec<Turn>>,
}

#[derive(Deserialize)]
struct Turn {
    #[serde(alias = "role")]
    from: Option<String>,
    #[serde(alias = "content")]
    value: Option<String>,
}

/// One conversation's turns, in order: (the human's, the answer's) pairs.
#[derive(Debug, Clone, PartialEq)]
pub struct Exchange {
    pub human: String,
    pub answer: String,
}

/// What was read and why conversations were left out, for the report.
#[derive(Debug, Default, PartialEq)]
pub struct Selection {
    /// Every conversation's turns, one conversation after another.
    pub prompts: Vec<Prompt>,
    /// How many turns of `prompts` each conversation has, in order.
    pub turns: Vec<usize>,
    pub conversations: usize,
    /// Reason -> conversations left out for it (only those looked at).
    pub skipped: BTreeMap<&'static str, usize>,
}

impl Selection {
    /// "64 prompts from 13 conversations (skipped: 2 with no human turn answered)".
    pub fn describe(&self) -> String {
        let mut text = if self.prompts.len() == self.turns.len() {
            format!(
                "{} prompts from {} conversations",
                self.prompts.len(),
                self.conversations
            )
        } else {
            format!(
                "{} conversations of {} turns in all, from {}",
                self.turns.len(),
                self.prompts.len(),
                self.conversations
            )
        };
        if !self.skipped.is_empty() {
            let reasons: Vec<String> = self
                .skipped
                .iter()
                .map(|(why, n)| format!("{n} {why}"))
                .collect();
            text.push_str(&format!(" (skipped: {})", reasons.join(", ")));
        }
        text
    }
}

/// Read the file's conversations; every error names the file.
pub fn read(path: &Path) -> Result<Vec<Option<Vec<Exchange>>>> {
    let name = path.display();
    let bytes =
        std::fs::read(path).with_context(|| format!("ShareGPT file {name}: cannot read it"))?;
    if let Err(e) = std::str::from_utf8(&bytes) {
        let at = e.valid_up_to();
        let line = bytes[..at].iter().filter(|b| **b == b'\n').count() + 1;
        bail!("ShareGPT file {name} line {line}: not UTF-8 text (byte {at} of the file)");
    }
    let entries: Vec<Entry> = serde_json::from_slice(&bytes).map_err(|e| {
        anyhow::anyhow!(
            "ShareGPT file {name}: not the ShareGPT layout, a JSON array of \
             {{\"conversations\": [{{\"from\", \"value\"}}, ...]}} ({e})"
        )
    })?;
    if entries.is_empty() {
        bail!("ShareGPT file {name}: no conversations in it");
    }
    Ok(entries.into_iter().map(exchanges).collect())
}

/// The conversation's human turns each with the answer that follows it; None when it has
/// no turns at all.
fn exchanges(entry: Entry) -> Option<Vec<Exchange>> {
    let turns = entry.conversations?;
    let is_human = |t: &Turn| matches!(t.from.as_deref(), Some("human" | "user"));
    let is_answer = |t: &Turn| {
        matches!(
            t.from.as_deref(),
            Some("gpt" | "assistant" | "chatgpt" | "bard")
        )
    };
    let mut pairs = Vec::new();
    let mut i = 0;
    while i + 1 < turns.len() {
        if is_human(&turns[i]) && is_answer(&turns[i + 1]) {
            pairs.push(Exchange {
                human: turns[i].value.clone().unwrap_or_default(),
                answer: turns[i + 1].value.clone().unwrap_or_default(),
            });
            i += 2;
        } else {
            i += 1;
        }
    }
    Some(pairs)
}

/// Up to `count` conversations of at most `turns` turns, taken in a seeded random order
/// (the first turn filtered as vLLM does, later ones only when not empty). `max_tokens`
/// replaces each answer's length when given. Fails when no conversation qualifies.
pub fn select(
    path: &Path,
    conversations: Vec<Option<Vec<Exchange>>>,
    tokenizer: &TextTokenizer,
    count: usize,
    max_tokens: Option<u32>,
    turns: usize,
    seed: u64,
) -> Result<Selection> {
    let mut order: Vec<usize> = (0..conversations.len()).collect();
    order.shuffle(&mut StdRng::seed_from_u64(seed));
    let mut selection = Selection {
        conversations: conversations.len(),
        ..Default::default()
    };
    let mut skip = |why: &'static str| *selection.skipped.entry(why).or_default() += 1;
    let mut prompts = Vec::new();
    let mut lengths = Vec::new();
    for i in order {
        if lengths.len() >= count {
            break;
        }
        let Some(first) = conversations[i].as_ref().and_then(|c| c.first()) else {
            skip(if conversations[i].is_none() {
                "without `conversations`"
            } else {
                "with no human turn answered"
            });
            continue;
        };
        if first.human.trim().is_empty() || first.answer.trim().is_empty() {
            skip("with an empty turn");
            continue;
        }
        if first.human.len() > MAX_PROMPT_TOKENS * MAX_BYTES_PER_TOKEN
            || first.human.len() + first.answer.len() > MAX_TOTAL_TOKENS * MAX_BYTES_PER_TOKEN
        {
            skip("over 1024 prompt or 2048 total tokens");
            continue;
        }
        let prompt_len = tokenizer.encode_plain(&first.human)?.len();
        let answer_len = tokenizer.encode_plain(&first.answer)?.len();
        if prompt_len < MIN_TOKENS || answer_len < MIN_TOKENS {
            skip("under 4 tokens");
            continue;
        }
        if prompt_len > MAX_PROMPT_TOKENS || prompt_len + answer_len > MAX_TOTAL_TOKENS {
            skip("over 1024 prompt or 2048 total tokens");
            continue;
        }
        prompts.push(Prompt {
            text: first.human.clone(),
            max_tokens: max_tokens.unwrap_or(answer_len as u32),
            temperature: Some(0.0),
            history: Vec::new(),
        });
        let mut taken = 1;
        for later in conversations[i].iter().flatten().skip(1) {
            if taken >= turns
                || later.human.trim().is_empty()
                || later.human.len() + later.answer.len() > MAX_TOTAL_TOKENS * MAX_BYTES_PER_TOKEN
            {
                break;
            }
            let answer_len = tokenizer.encode_plain(&later.answer)?.len().max(1);
            prompts.push(Prompt {
                text: later.human.clone(),
                max_tokens: max_tokens.unwrap_or(answer_len as u32),
                temperature: Some(0.0),
                history: Vec::new(),
            });
            taken += 1;
        }
        lengths.push(taken);
    }
    if prompts.is_empty() {
        bail!(
            "ShareGPT file {}: no usable conversation among {} ({})",
            path.display(),
            selection.conversations,
            selection
                .skipped
                .iter()
                .map(|(why, n)| format!("{n} {why}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    selection.prompts = prompts;
    selection.turns = lengths;
    Ok(selection)
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/sharegpt-small.json");

    fn file(bytes: &[u8]) -> tempfile::NamedTempFile {
        let f = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(f.path(), bytes).unwrap();
        f
    }

    fn choose(path: &Path, count: usize, seed: u64) -> Result<Selection> {
        let tokenizer = TextTokenizer::words_for_tests();
        select(path, read(path)?, &tokenizer, count, None, 1, seed)
    }

    #[test]
    fn the_fixture_gives_first_turns_with_answer_lengths() {
        let s = choose(Path::new(FIXTURE), 100, 0).unwrap();
        assert_eq!(s.conversations, 12);
        // q11 has no answer; q10's answer and q5's... are long enough; q12 opens with the
        // assistant, so its first human turn is the octopus question.
        assert_eq!(s.prompts.len(), 11, "{}", s.describe());
        assert_eq!(s.skipped.get("with no human turn answered"), Some(&1));
        let octopus = s
            .prompts
            .iter()
            .find(|p| p.text.contains("octopuses"))
            .unwrap();
        // "An octopus has three hearts: ..." in whole words and marks.
        let answer = "An octopus has three hearts: two pump blood through the gills, one \
                      through the rest of the body, and that one stops while it swims.";
        let words = TextTokenizer::words_for_tests()
            .encode_plain(answer)
            .unwrap()
            .len();
        assert_eq!(octopus.max_tokens as usize, words);
        assert!(s.prompts.iter().all(|p| !p.text.contains("Now one about")));
    }

    #[test]
    fn multi_turn_takes_each_conversation_s_later_human_turns() {
        let path = Path::new(FIXTURE);
        let t = TextTokenizer::words_for_tests();
        let s = select(path, read(path).unwrap(), &t, 100, None, 3, 0).unwrap();
        assert_eq!(s.turns.len(), 11);
        // q2 and q7 have two exchanges each; the rest one.
        assert_eq!(s.turns.iter().sum::<usize>(), 13);
        let at = s
            .prompts
            .iter()
            .position(|p| p.text.contains("haiku"))
            .unwrap();
        assert!(s.prompts[at + 1].text.contains("Now one about the morning"));
        assert!(
            s.describe().contains("11 conversations of 13 turns"),
            "{}",
            s.describe()
        );
    }

    #[test]
    fn the_seed_picks_the_order_and_count_the_number() {
        let a = choose(Path::new(FIXTURE), 4, 1).unwrap();
        let b = choose(Path::new(FIXTURE), 4, 1).unwrap();
        let c = choose(Path::new(FIXTURE), 4, 2).unwrap();
        assert_eq!(a.prompts, b.prompts);
        assert_ne!(a.prompts, c.prompts);
        assert_eq!(a.prompts.len(), 4);
    }

    #[test]
    fn bad_files_are_refused_naming_the_file_and_the_problem() {
        for (bytes, want) in [
            (
                &b"[{\"conversations\": [{\"from\": \"human\", \"value\": \"\xff\"}]}]"[..],
                "line 1: not UTF-8",
            ),
            (b"{\"conversations\": []}", "not the ShareGPT layout"),
            (b"[]", "no conversations"),
            (
                b"[{\"conversations\": [{\"from\": \"human\", \"value\": 3}]}]",
                "not the ShareGPT layout",
            ),
        ] {
            let f = file(bytes);
            let err = format!("{:#}", choose(f.path(), 8, 0).unwrap_err());
            assert!(err.contains(&f.path().display().to_string()), "{err}");
            assert!(err.contains(want), "{bytes:?}: {err}");
        }
    }

    #[test]
    fn a_file_with_nothing_usable_says_why_each_was_left_out() {
        let f = file(
            br#"[{"conversations": [{"from": "human", "value": "hi"}]},
                 {"conversations": [{"from": "human", "value": ""}, {"from": "gpt", "value": "a b c d"}]},
                 {"conversations": [{"from": "human", "value": "a b"}, {"from": "gpt", "value": "a b c d"}]},
                 {"id": "no turns"}]"#,
        );
        let err = format!("{:#}", choose(f.path(), 8, 0).unwrap_err());
        for want in [
            "no usable conversation among 4",
            "1 with no human turn answered",
            "1 with an empty turn",
            "1 under 4 tokens",
            "1 without `conversations`",
        ] {
            assert!(err.contains(want), "{want}: {err}");
        }
    }

    #[test]
    fn a_100_mb_turn_on_one_line_is_skipped_without_tokenizing_it() {
        let mut text = String::from(r#"[{"conversations": [{"from": "human", "value": ""#);
        text.push_str(&"a".repeat(100 << 20));
        text.push_str(r#""}, {"from": "gpt", "value": "fine answer of words"}]},"#);
        text.push_str(r#"{"conversations": [{"from": "human", "value": "a short question here"}, {"from": "gpt", "value": "and a short answer here"}]}]"#);
        let f = file(text.as_bytes());
        let started = std::time::Instant::now();
        let s = choose(f.path(), 8, 0).unwrap();
        assert_eq!(s.prompts.len(), 1);
        assert_eq!(
            s.skipped.get("over 1024 prompt or 2048 total tokens"),
            Some(&1)
        );
        assert!(started.elapsed().as_secs() < 30);
    }

    #[test]
    fn a_huge_line_of_garbage_is_refused_quickly() {
        let f = file(&vec![b'x'; 100 << 20]);
        let started = std::time::Instant::now();
        let err = format!("{:#}", choose(f.path(), 8, 0).unwrap_err());
        assert!(
            err.contains("not the ShareGPT layout") && err.contains("line 1"),
            "{err}"
        );
        assert!(started.elapsed().as_secs() < 30);
    }
}
