//! Where a serving benchmark's prompts come from (`load --dataset`): a JSONL prompts file,
//! a ShareGPT file, or random prompts whose lengths follow distributions; optionally each
//! opened by one of N shared prefixes.

use std::ops::Range;
use std::path::{Path, PathBuf};

use anyhow::{bail, Result};

use super::lengths::LengthDist;
use super::prompts::{self, Prompt};
use super::{sharegpt, synthetic};
use crate::model::TextTokenizer;

#[derive(Debug, Clone, PartialEq)]
pub enum Dataset {
    /// One `{"prompt", "max_tokens", "temperature"}` per line; None: the built-in prompts.
    Jsonl(Option<PathBuf>),
    ShareGpt(PathBuf),
    Random {
        input: LengthDist,
        output: LengthDist,
    },
}

/// A dataset's prompts, where they came from, and its own conversations' turns.
type Prompts = (Vec<Prompt>, String, Option<Vec<usize>>);

/// The prompts a run sends, and which of them make up each conversation (multi-turn).
#[derive(Debug)]
pub struct Workload {
    pub prompts: Vec<Prompt>,
    pub source: String,
    /// Each conversation's turns as a range of `prompts`; empty for single requests.
    pub conversations: Vec<Range<usize>>,
}

/// Everything that turns a dataset into the prompts a run sends in turn.
#[derive(Debug, Clone)]
pub struct WorkloadSpec {
    pub dataset: Dataset,
    /// Replaces every prompt's max_tokens (JSONL: fills lines without one when not forced).
    pub max_tokens: Option<u32>,
    /// N shared prefixes of LEN tokens, prompt i opened by prefix i % N.
    pub shared_prefix: Option<(usize, usize)>,
    /// Prompts (or conversations) to prepare (sent in turn, again from the first when a run
    /// needs more).
    pub count: usize,
    /// Turns per conversation; 1: single requests.
    pub turns: usize,
    pub seed: u64,
}

/// What `--dataset` names: "sharegpt:FILE", "jsonl:FILE" or "random" (whose lengths come
/// from other flags, given here).
pub fn parse_dataset(text: &str, random: impl FnOnce() -> Result<Dataset>) -> Result<Dataset> {
    let (kind, file) = match text.split_once(':') {
        Some((kind, file)) => (kind, Some(file)),
        None => (text, None),
    };
    let path = |kind: &str| match file {
        Some(f) if !f.is_empty() => Ok(PathBuf::from(f)),
        _ => bail!("--dataset {text}: give the file, as {kind}:FILE"),
    };
    match kind {
        "sharegpt" => Ok(Dataset::ShareGpt(path("sharegpt")?)),
        "jsonl" => Ok(Dataset::Jsonl(Some(path("jsonl")?))),
        "random" if file.is_none() => random(),
        _ => bail!("--dataset {text}: not a dataset (give sharegpt:FILE, jsonl:FILE or random)"),
    }
}

impl Dataset {
    /// Whether building the prompts needs a tokenizer (one is loaded by default then).
    pub fn needs_tokenizer(&self) -> bool {
        !matches!(self, Dataset::Jsonl(_))
    }
}

impl WorkloadSpec {
    pub fn needs_tokenizer(&self) -> bool {
        self.dataset.needs_tokenizer() || self.shared_prefix.is_some()
    }

    /// The prompts, where they came from, and (multi-turn) which make up each conversation.
    pub fn build(&self, tokenizer: Option<&TextTokenizer>) -> Result<Workload> {
        let (mut prompts, mut source, turns) = self.prompts(tokenizer)?;
        let conversations = if self.turns > 1 {
            let turns = turns.unwrap_or_else(|| {
                let whole = prompts.len() / self.turns;
                let mut t = vec![self.turns; whole];
                if prompts.len() % self.turns > 0 {
                    t.push(prompts.len() % self.turns);
                }
                t
            });
            let mut start = 0;
            turns
                .iter()
                .map(|&n| {
                    start += n;
                    start - n..start
                })
                .collect()
        } else {
            Vec::new()
        };
        if let Some((count, length)) = self.shared_prefix {
            let t = tokenizer.ok_or_else(|| {
                anyhow::anyhow!("--prefix-shared needs a tokenizer (--tokenizer)")
            })?;
            let prefixes = synthetic::shared_prefixes(t, count, length)?;
            if conversations.is_empty() {
                prompts::with_shared_prefixes(&mut prompts, &prefixes);
            } else {
                // A conversation's first turn carries the prefix; later turns carry it in
                // their history.
                let mut firsts: Vec<Prompt> = conversations
                    .iter()
                    .map(|r: &Range<usize>| prompts[r.start].clone())
                    .collect();
                prompts::with_shared_prefixes(&mut firsts, &prefixes);
                for (r, first) in conversations.iter().zip(firsts) {
                    prompts[r.start] = first;
                }
            }
            source.push_str(&format!(
                ", each opened by one of {count} shared prefixes of {length} tokens"
            ));
        }
        if !conversations.is_empty() && !source.contains("conversations of") {
            source.push_str(&format!(
                ", as {} conversations of up to {} turns",
                conversations.len(),
                self.turns
            ));
        }
        Ok(Workload {
            prompts,
            source,
            conversations,
        })
    }

    /// The dataset's prompts, a line saying where they came from, and the turns of each
    /// conversation when the dataset has its own.
    fn prompts(&self, tokenizer: Option<&TextTokenizer>) -> Result<Prompts> {
        let tokenizer_for = |what: &str| {
            tokenizer.ok_or_else(|| anyhow::anyhow!("{what} needs a tokenizer (--tokenizer)"))
        };
        let (prompts, source) = match &self.dataset {
            Dataset::Jsonl(path) => {
                let (max_tokens, force) =
                    (self.max_tokens.unwrap_or(128), self.max_tokens.is_some());
                match path {
                    Some(path) => (
                        prompts::read_jsonl(path, max_tokens, force)?,
                        format!("prompts file {}", path.display()),
                    ),
                    None => (
                        prompts::parse_jsonl(
                            prompts::DEFAULT_PROMPTS,
                            prompts::DEFAULT_PROMPTS_NAME,
                            max_tokens,
                            force,
                        )?,
                        prompts::DEFAULT_PROMPTS_NAME.to_string(),
                    ),
                }
            }
            Dataset::ShareGpt(path) => {
                return self.sharegpt(path, tokenizer_for("--dataset sharegpt")?);
            }
            Dataset::Random { input, output } => {
                let t = tokenizer_for("--dataset random")?;
                let mut prompts = prompts::synthetic(t, *input, *output, self.count, self.seed)?;
                if let Some(m) = self.max_tokens {
                    prompts.iter_mut().for_each(|p| p.max_tokens = m);
                }
                (
                    prompts,
                    format!("synthetic: {input} input / {output} output tokens"),
                )
            }
        };
        Ok((prompts, source, None))
    }

    fn sharegpt(&self, path: &Path, tokenizer: &TextTokenizer) -> Result<Prompts> {
        let conversations = sharegpt::read(path)?;
        let selection = sharegpt::select(
            path,
            conversations,
            tokenizer,
            self.count,
            self.max_tokens,
            self.turns,
            self.seed,
        )?;
        let source = format!("ShareGPT file {}: {}", path.display(), selection.describe());
        Ok((selection.prompts, source, Some(selection.turns)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn random() -> Result<Dataset> {
        Ok(Dataset::Random {
            input: LengthDist::Fixed(8),
            output: LengthDist::Fixed(4),
        })
    }

    #[test]
    fn dataset_names_parse_and_bad_ones_say_what_is_accepted() {
        assert_eq!(
            parse_dataset("sharegpt:a/b.json", random).unwrap(),
            Dataset::ShareGpt("a/b.json".into())
        );
        assert_eq!(
            parse_dataset("jsonl:p.jsonl", random).unwrap(),
            Dataset::Jsonl(Some("p.jsonl".into()))
        );
        assert_eq!(parse_dataset("random", random).unwrap(), random().unwrap());
        for (bad, want) in [
            ("sharegpt", "give the file, as sharegpt:FILE"),
            ("jsonl:", "as jsonl:FILE"),
            ("sonnet", "not a dataset"),
            ("random:x", "not a dataset"),
        ] {
            let err = parse_dataset(bad, random).unwrap_err().to_string();
            assert!(err.contains(want) && err.contains(bad), "{bad}: {err}");
        }
    }

    #[test]
    fn random_prompts_follow_the_length_distributions() {
        let t = TextTokenizer::words_for_tests();
        let spec = WorkloadSpec {
            dataset: Dataset::Random {
                input: LengthDist::around(40, 0.5, "--input").unwrap(),
                output: LengthDist::parse("uniform:10:30", "--output-dist").unwrap(),
            },
            max_tokens: None,
            shared_prefix: Some((2, 16)),
            count: 200,
            turns: 1,
            seed: 5,
        };
        let Workload {
            prompts, source, ..
        } = spec.build(Some(&t)).unwrap();
        assert_eq!(prompts.len(), 200);
        assert!(source.contains("40 ±50% input") && source.contains("2 shared prefixes"));
        // Each prompt: a 16-token prefix, a blank line, then 20 to 60 tokens of its own.
        let lengths: Vec<usize> = prompts
            .iter()
            .map(|p| t.encode_plain(&p.text).unwrap().len() - 16)
            .collect();
        assert!(lengths.iter().all(|n| (20..=60).contains(n)), "{lengths:?}");
        assert!(lengths.iter().min() < Some(&25) && lengths.iter().max() > Some(&55));
        assert!(prompts.iter().all(|p| (10..=30).contains(&p.max_tokens)));
        let again = spec.build(Some(&t)).unwrap().prompts;
        assert_eq!(prompts, again, "the seed fixes the workload");
    }

    #[test]
    fn tokenizer_free_datasets_need_none_and_others_say_so() {
        let spec = WorkloadSpec {
            dataset: Dataset::Jsonl(None),
            max_tokens: Some(7),
            shared_prefix: None,
            count: 4,
            turns: 1,
            seed: 0,
        };
        assert!(!spec.needs_tokenizer());
        let p = spec.build(None).unwrap().prompts;
        assert!(p.iter().all(|p| p.max_tokens == 7));
        let random = WorkloadSpec {
            dataset: random().unwrap(),
            ..spec
        };
        let err = random.build(None).unwrap_err().to_string();
        assert!(err.contains("--dataset random needs a tokenizer"), "{err}");
    }
}
