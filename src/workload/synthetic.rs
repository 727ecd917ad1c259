//! Prompts of an exact token length, made of real text so attention sees natural token
//! statistics rather than one repeated id.

use anyhow::{bail, Result};

use crate::model::TextTokenizer;

/// Public-domain prose (the opening of Moby-Dick), repeated as needed.
const PASSAGE: &str =
    "Call me Ishmael. Some years ago, never mind how long precisely, having little \
or no money in my purse, and nothing particular to interest me on shore, I thought I would sail \
about a little and see the watery part of the world. It is a way I have of driving off the spleen \
and regulating the circulation. Whenever I find myself growing grim about the mouth; whenever it \
is a damp, drizzly November in my soul; whenever I find myself involuntarily pausing before coffin \
warehouses, and bringing up the rear of every funeral I meet; and especially whenever my hypos get \
such an upper hand of me, that it requires a strong moral principle to prevent me from \
deliberately stepping into the street, and methodically knocking people's hats off, then, I \
account it high time to get to sea as soon as I can. ";

/// Token ids of exactly `length` tokens (BOS first when the model expects one).
pub fn prompt_of_length(tokenizer: &TextTokenizer, length: usize) -> Result<Vec<u32>> {
    if length == 0 {
        bail!("a prompt must have at least 1 token");
    }
    let passage = tokenizer.encode(PASSAGE)?;
    let start = usize::from(tokenizer.add_bos && tokenizer.bos_token_id.is_some());
    let body = &passage[start..];
    if body.is_empty() {
        bail!(
            "{}: the tokenizer turns the prompt passage into no tokens",
            tokenizer.source
        );
    }
    let mut ids: Vec<u32> = passage[..start].to_vec();
    while ids.len() < length {
        let take = (length - ids.len()).min(body.len());
        ids.extend_from_slice(&body[..take]);
    }
    Ok(ids)
}
