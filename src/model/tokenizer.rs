//! Text <-> token ids: from a tokenizer.json, or rebuilt from a GGUF file's own metadata, plus
//! the model's chat template.

use std::path::Path;

use anyhow::{anyhow, bail, Context, Result};
use candle_core::quantized::gguf_file;
use serde_json::{json, Value as Json};

/// Tokens that end a chat turn in the common templates; generation stops on any of them.
const END_OF_TURN_TOKENS: &[&str] = &["<|im_end|>", "<|eot_id|>", "<|end|>", "<end_of_turn>"];

/// A model may pad its embedding table past the tokenizer's vocabulary (to a multiple of 64,
/// 128, ...); a larger gap means the tokenizer belongs to another model.
const MAX_EMBEDDING_PADDING: usize = 1024;

pub struct TextTokenizer {
    inner: tokenizers::Tokenizer,
    pub bos_token_id: Option<u32>,
    pub eos_token_ids: Vec<u32>,
    /// Whether a plain (non-chat) prompt starts with BOS.
    pub add_bos: bool,
    chat_template: Option<String>,
    bos_token: String,
    eos_token: String,
    /// Where the tokenizer came from, for reports and errors.
    pub source: String,
    /// Anything approximate about how it was built.
    pub note: Option<String>,
}

impl TextTokenizer {
    /// Load a tokenizer.json, with tokenizer_config.json (chat template, BOS/EOS) if given.
    pub fn from_file(path: &Path, tokenizer_config: Option<&Path>) -> Result<Self> {
        let mut inner = tokenizers::Tokenizer::from_file(path)
            .map_err(|e| anyhow!("{}: not a valid tokenizer.json: {e}", path.display()))?;
        // A tokenizer.json may truncate or pad (all-MiniLM's cuts at 128 tokens): prompts must
        // reach the model whole, and benchmarks must see every token.
        inner
            .with_truncation(None)
            .map_err(|e| anyhow!("{}: disabling truncation: {e}", path.display()))?;
        inner.with_padding(None);
        let config: Json = match tokenizer_config {
            Some(p) => {
                let text = std::fs::read_to_string(p)
                    .with_context(|| format!("{}: cannot read", p.display()))?;
                serde_json::from_str(&text)
                    .with_context(|| format!("{}: invalid JSON", p.display()))?
            }
            None => Json::Null,
        };
        let token_text = |key: &str| -> Option<String> {
            match &config[key] {
                Json::String(s) => Some(s.clone()),
                Json::Object(o) => o.get("content").and_then(|c| c.as_str()).map(String::from),
                _ => None,
            }
        };
        let chat_template = match &config["chat_template"] {
            Json::String(s) => Some(s.clone()),
            // A list of named templates: take "default", else the first.
            Json::Array(list) => list
                .iter()
                .find(|t| t["name"] == "default")
                .or_else(|| list.first())
                .and_then(|t| t["template"].as_str())
                .map(String::from),
            _ => None,
        };
        let bos_token = token_text("bos_token").unwrap_or_default();
        let eos_token = token_text("eos_token").unwrap_or_default();
        let bos_token_id = inner.token_to_id(&bos_token);
        let mut eos_token_ids: Vec<u32> = inner.token_to_id(&eos_token).into_iter().collect();
        add_end_of_turn_tokens(&inner, &mut eos_token_ids);
        let add_bos = config["add_bos_token"].as_bool().unwrap_or(false);
        Ok(TextTokenizer {
            inner,
            bos_token_id,
            eos_token_ids,
            add_bos,
            chat_template,
            bos_token,
            eos_token,
            source: path.display().to_string(),
            note: None,
        })
    }

    /// Rebuild the tokenizer a GGUF file describes in its metadata (tokenizer.ggml.*).
    pub fn from_gguf(content: &gguf_file::Content, path: &Path) -> Result<Self> {
        let md = &content.metadata;
        let get = |key: &str| {
            md.get(key)
                .ok_or_else(|| anyhow!("{}: GGUF metadata has no '{key}'", path.display()))
        };
        let strings = |key: &str| -> Result<Vec<String>> {
            get(key)?
                .to_vec()
                .map_err(|e| anyhow!("{}: '{key}': {e}", path.display()))?
                .iter()
                .map(|v| v.to_string().cloned())
                .collect::<candle_core::Result<Vec<_>>>()
                .map_err(|e| anyhow!("{}: '{key}': {e}", path.display()))
        };
        let kind = get("tokenizer.ggml.model")?
            .to_string()
            .map_err(|e| anyhow!("{}: tokenizer.ggml.model: {e}", path.display()))?
            .clone();
        let tokens = strings("tokenizer.ggml.tokens")?;
        let token_types: Vec<i32> = match md.get("tokenizer.ggml.token_type") {
            Some(v) => v
                .to_vec()
                .map_err(|e| anyhow!("{}: token_type: {e}", path.display()))?
                .iter()
                .map(|t| t.to_i32().unwrap_or(1))
                .collect(),
            None => vec![1; tokens.len()],
        };
        let id = |key: &str| md.get(key).and_then(|v| v.to_u32().ok());
        let bos_token_id = id("tokenizer.ggml.bos_token_id");
        let eos_token_id = id("tokenizer.ggml.eos_token_id");
        let flag = |key: &str| md.get(key).and_then(|v| v.to_bool().ok());

        let added_tokens: Vec<Json> = tokens
            .iter()
            .zip(&token_types)
            .enumerate()
            // 3 = control (special), 4 = user-defined: matched whole, never split by BPE.
            .filter(|(_, (_, t))| **t == 3 || **t == 4)
            .map(|(i, (tok, t))| {
                json!({"id": i, "content": tok, "single_word": false, "lstrip": false,
                       "rstrip": false, "normalized": false, "special": *t == 3})
            })
            .collect();

        let (spec, add_bos_default, note) = match kind.as_str() {
            "gpt2" => {
                let merges = strings("tokenizer.ggml.merges")?;
                let pre = md
                    .get("tokenizer.ggml.pre")
                    .and_then(|v| v.to_string().ok())
                    .cloned()
                    .unwrap_or_else(|| "default".into());
                let (pre_tokenizer, note) = byte_level_pre_tokenizer(&pre);
                let vocab: serde_json::Map<String, Json> = tokens
                    .iter()
                    .enumerate()
                    .map(|(i, t)| (t.clone(), json!(i)))
                    .collect();
                let spec = json!({
                    "version": "1.0", "truncation": null, "padding": null,
                    "added_tokens": added_tokens, "normalizer": null,
                    "pre_tokenizer": pre_tokenizer, "post_processor": null,
                    "decoder": {"type": "ByteLevel", "add_prefix_space": true,
                                "trim_offsets": true, "use_regex": true},
                    "model": {"type": "BPE", "dropout": null, "unk_token": null,
                              "continuing_subword_prefix": null, "end_of_word_suffix": null,
                              "fuse_unk": false, "byte_fallback": false, "ignore_merges": false,
                              "vocab": vocab, "merges": merges}
                });
                (spec, false, note)
            }
            "llama" => {
                let scores: Vec<f64> = match md.get("tokenizer.ggml.scores") {
                    Some(v) => v
                        .to_vec()
                        .map_err(|e| anyhow!("{}: tokenizer.ggml.scores: {e}", path.display()))?
                        .iter()
                        .map(|s| s.to_f32().map(f64::from).unwrap_or(0.0))
                        .collect(),
                    None => vec![0.0; tokens.len()],
                };
                let vocab: Vec<Json> = tokens
                    .iter()
                    .zip(scores.iter().chain(std::iter::repeat(&0.0)))
                    .map(|(t, s)| json!([t, s]))
                    .collect();
                let unk = id("tokenizer.ggml.unknown_token_id").unwrap_or(0);
                let spec = json!({
                    "version": "1.0", "truncation": null, "padding": null,
                    "added_tokens": added_tokens,
                    "normalizer": {"type": "Sequence", "normalizers": [
                        {"type": "Prepend", "prepend": "\u{2581}"},
                        {"type": "Replace", "pattern": {"String": " "}, "content": "\u{2581}"}]},
                    "pre_tokenizer": null, "post_processor": null,
                    "decoder": {"type": "Sequence", "decoders": [
                        {"type": "Replace", "pattern": {"String": "\u{2581}"}, "content": " "},
                        {"type": "ByteFallback"}, {"type": "Fuse"},
                        {"type": "Strip", "content": " ", "start": 1, "stop": 0}]},
                    "model": {"type": "Unigram", "unk_id": unk, "vocab": vocab, "byte_fallback": true}
                });
                let note = Some(
                    "SentencePiece vocabulary rebuilt as a unigram model from GGUF scores; \
                     token counts can differ slightly from the original tokenizer"
                        .to_string(),
                );
                (spec, true, note)
            }
            other => bail!(
                "{}: GGUF tokenizer type '{other}' is not supported (gpt2 and llama are); \
                 pass a tokenizer.json with --tokenizer",
                path.display()
            ),
        };
        let inner =
            tokenizers::Tokenizer::from_bytes(spec.to_string().as_bytes()).map_err(|e| {
                anyhow!(
                    "{}: building the tokenizer from GGUF metadata: {e}",
                    path.display()
                )
            })?;
        let token_at = |id: Option<u32>| {
            id.and_then(|i| tokens.get(i as usize).cloned())
                .unwrap_or_default()
        };
        let mut eos_token_ids: Vec<u32> = eos_token_id.into_iter().collect();
        add_end_of_turn_tokens(&inner, &mut eos_token_ids);
        Ok(TextTokenizer {
            bos_token: token_at(bos_token_id),
            eos_token: token_at(eos_token_id),
            inner,
            bos_token_id,
            eos_token_ids,
            add_bos: flag("tokenizer.ggml.add_bos_token").unwrap_or(add_bos_default),
            chat_template: md
                .get("tokenizer.chat_template")
                .and_then(|v| v.to_string().ok())
                .cloned(),
            source: format!("{} (GGUF metadata, {kind})", path.display()),
            note,
        })
    }

    /// Token ids for `text`; special-token text (e.g. `<|im_start|>`) becomes its single id.
    /// BOS is prepended when the model expects it.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        let enc = self
            .inner
            .encode(text, false)
            .map_err(|e| anyhow!("tokenizing the prompt: {e}"))?;
        let mut ids = Vec::with_capacity(enc.len() + 1);
        if let (true, Some(bos)) = (self.add_bos, self.bos_token_id) {
            if !text.starts_with(&self.bos_token) || self.bos_token.is_empty() {
                ids.push(bos);
            }
        }
        ids.extend_from_slice(enc.get_ids());
        Ok(ids)
    }

    /// Token ids for `text` with no BOS added: how many tokens a generated answer is.
    pub fn encode_plain(&self, text: &str) -> Result<Vec<u32>> {
        let enc = self
            .inner
            .encode(text, false)
            .map_err(|e| anyhow!("tokenizing: {e}"))?;
        Ok(enc.get_ids().to_vec())
    }

    /// A tokenizer of whole words (one token per word or punctuation mark, all unknown), for
    /// unit tests that count tokens without a model.
    #[cfg(test)]
    pub fn words_for_tests() -> Self {
        let json = json!({
            "version": "1.0", "truncation": null, "padding": null,
            // "[UNK]" read back as one token, so decoded text counts the same again.
            "added_tokens": [{"id": 0, "content": "[UNK]", "single_word": false, "lstrip": false,
                "rstrip": false, "normalized": false, "special": false}],
            "normalizer": null, "pre_tokenizer": {"type": "Whitespace"},
            "post_processor": null, "decoder": null,
            "model": {"type": "WordLevel", "vocab": {"[UNK]": 0}, "unk_token": "[UNK]"}
        });
        let file = tempfile::NamedTempFile::new().expect("a temporary file");
        std::fs::write(file.path(), json.to_string()).expect("writing it");
        Self::from_file(file.path(), None).expect("a word-level tokenizer")
    }

    /// Text for `ids`, special tokens left out.
    pub fn decode(&self, ids: &[u32]) -> Result<String> {
        self.inner
            .decode(ids, true)
            .map_err(|e| anyhow!("decoding tokens: {e}"))
    }

    /// Number of token ids the tokenizer can produce, added tokens included.
    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }

    pub fn token_to_id(&self, token: &str) -> Option<u32> {
        self.inner.token_to_id(token)
    }

    pub fn has_chat_template(&self) -> bool {
        self.chat_template.is_some()
    }

    /// The prompt as the model saw it in instruction tuning: one user turn, then the
    /// assistant's turn opened.
    pub fn apply_chat_template(&self, user_message: &str) -> Result<String> {
        let template = self.chat_template.as_deref().ok_or_else(|| {
            anyhow!(
                "{}: --chat needs a chat template, and this model has none \
                 (GGUF tokenizer.chat_template or tokenizer_config.json chat_template)",
                self.source
            )
        })?;
        let mut env = minijinja::Environment::new();
        // The settings transformers renders chat templates with.
        env.set_trim_blocks(true);
        env.set_lstrip_blocks(true);
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        env.add_function(
            "raise_exception",
            |msg: String| -> Result<String, minijinja::Error> {
                Err(minijinja::Error::new(
                    minijinja::ErrorKind::InvalidOperation,
                    msg,
                ))
            },
        );
        env.add_template("chat", template)
            .with_context(|| format!("{}: the chat template does not parse", self.source))?;
        let rendered = env
            .get_template("chat")
            .and_then(|t| {
                t.render(minijinja::context! {
                    messages => vec![minijinja::context! { role => "user", content => user_message }],
                    add_generation_prompt => true,
                    bos_token => &self.bos_token,
                    eos_token => &self.eos_token,
                })
            })
            .with_context(|| format!("{}: rendering the chat template", self.source))?;
        Ok(rendered)
    }

    /// Refuse a tokenizer whose ids do not fit the model, naming both sizes.
    pub fn check_matches_model(&self, model_vocab_size: usize) -> Result<()> {
        let tok = self.vocab_size();
        if tok > model_vocab_size {
            bail!(
                "{}: tokenizer has {tok} tokens but the model's vocabulary has {model_vocab_size}: \
                 this tokenizer belongs to another model",
                self.source
            );
        }
        if model_vocab_size - tok > MAX_EMBEDDING_PADDING {
            bail!(
                "{}: tokenizer has {tok} tokens but the model's vocabulary has {model_vocab_size} \
                 (more than {MAX_EMBEDDING_PADDING} apart): this tokenizer belongs to another model",
                self.source
            );
        }
        // An end-of-sequence id past the vocabulary can never be sampled: every answer would
        // run to max_tokens while looking like a normal run.
        if let Some(id) = self
            .eos_token_ids
            .iter()
            .find(|id| **id as usize >= model_vocab_size)
        {
            bail!(
                "{}: end-of-sequence token id {id} is outside the model's vocabulary of \
                 {model_vocab_size} tokens",
                self.source
            );
        }
        Ok(())
    }
}

fn add_end_of_turn_tokens(tokenizer: &tokenizers::Tokenizer, ids: &mut Vec<u32>) {
    for tok in END_OF_TURN_TOKENS {
        if let Some(id) = tokenizer.token_to_id(tok) {
            if !ids.contains(&id) {
                ids.push(id);
            }
        }
    }
}

/// The pre-tokenizer for llama.cpp's `tokenizer.ggml.pre` names, in tokenizer.json form.
fn byte_level_pre_tokenizer(pre: &str) -> (Json, Option<String>) {
    let byte_level = |use_regex: bool| json!({"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": use_regex});
    let split = |pattern: &str| json!({"type": "Split", "pattern": {"Regex": pattern}, "behavior": "Isolated", "invert": false});
    match pre {
        "smollm" => (
            json!({"type": "Sequence", "pretokenizers": [
                {"type": "Digits", "individual_digits": true}, byte_level(true)]}),
            None,
        ),
        "llama-bpe" | "llama3" => (
            json!({"type": "Sequence", "pretokenizers": [
                split(r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"),
                byte_level(false)]}),
            None,
        ),
        "qwen2" => (
            json!({"type": "Sequence", "pretokenizers": [
                split(r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"),
                byte_level(false)]}),
            None,
        ),
        "gpt2" | "gpt-2" | "default" => (byte_level(true), None),
        other => (
            byte_level(true),
            Some(format!(
                "pre-tokenizer '{other}' is not known here; GPT-2 splitting used, so token counts \
                 can differ slightly from the original tokenizer"
            )),
        ),
    }
}
