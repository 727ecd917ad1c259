//! Benchmarks on Kubernetes without a scheduler of our own: Jobs place the pods (an Indexed
//! Job for load workers, one Job per GPU preset × node pool), each run gets its own
//! namespace, results come back through the pods' logs, load workers merge exactly, and
//! the manifests are kept with the results.

pub mod config;
pub mod render;
pub mod run;
pub mod yaml;
