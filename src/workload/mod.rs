//! What the engine or a server is asked to do: prompts (a JSONL file, a ShareGPT file, or
//! synthetic prompts whose token lengths follow a distribution, with shared prefixes), and
//! when an open-loop run sends each request.

pub mod arrival;
pub mod dataset;
pub mod lengths;
pub mod pattern;
pub mod prompts;
pub mod sharegpt;
pub mod synthetic;
pub mod trace;
