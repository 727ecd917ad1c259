//! What the engine or a server is asked to do: prompts, including synthetic prompts of an
//! exact token length, and when an open-loop run sends each request.

pub mod arrival;
pub mod prompts;
pub mod synthetic;
