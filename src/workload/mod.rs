//! What the engine is asked to do: prompts, including synthetic prompts of an exact token length.

pub mod prompts;
pub mod synthetic;
