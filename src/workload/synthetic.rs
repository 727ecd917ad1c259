//! Prompts of an exact token length, made of real text so attention sees natural token
//! statistics rather than one repeated id.

use anyhow::{bail, Result};

use crate::model::TextTokenizer;

/// Public-domain prose (the opening of Moby-Dick), repeated as needed.
pub(crate) const PASSAGE: &str =
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

/// `count` distinct prefixes of about `length` tokens each: a numbered heading, then the
/// passage from a different place, so no two share even their first cache block.
pub fn shared_prefixes(
    tokenizer: &TextTokenizer,
    count: usize,
    length: usize,
) -> Result<Vec<String>> {
    if count == 0 || length == 0 {
        bail!("--prefix-shared: give N:LEN with both above 0, e.g. 4:256");
    }
    let passage = tokenizer.encode_plain(PASSAGE)?;
    if passage.is_empty() {
        bail!(
            "{}: the tokenizer turns the prompt passage into no tokens",
            tokenizer.source
        );
    }
    (0..count)
        .map(|j| {
            let mut ids = tokenizer.encode_plain(&format!("Document {j}.\n"))?;
            let mut at = j * 41 % passage.len();
            while ids.len() < length {
                ids.push(passage[at]);
                at = (at + 1) % passage.len();
            }
            ids.truncate(length);
            tokenizer.decode(&ids)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_are_distinct_and_of_the_length_asked() {
        let t = TextTokenizer::words_for_tests();
        let p = shared_prefixes(&t, 3, 40).unwrap();
        assert_eq!(p.len(), 3);
        // Word-level ids decode to "[UNK]" each: the count of words is the length.
        assert!(
            p.iter().all(|x| x.split_whitespace().count() == 40),
            "{p:?}"
        );
        assert!(shared_prefixes(&t, 0, 8).is_err() && shared_prefixes(&t, 2, 0).is_err());
    }
}
