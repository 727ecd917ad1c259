//! The integration tests, one binary (linking candle once): the `inferbench` binary as users
//! run it, the real default model through the real loaders, and result files against their
//! golden copies.

mod browser;
mod build_plan;
mod cli;
mod common;
mod compare;
mod exit_codes;
mod fuzz;
mod golden;
mod gpu_check;
mod history;
mod hostile_gguf;
mod http;
mod instructions;
mod k8s;
mod llama_safetensors;
mod load_workloads;
mod retrieval;
mod run;
mod smollm;
mod workers;
