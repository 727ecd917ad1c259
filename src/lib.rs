//! inferbench: benchmarks for LLM inference and retrieval, in-process and over HTTP.
//! See DESIGN.md for the layout: config -> workload -> engine/http -> metrics -> report.

pub mod device;
pub mod engine;
pub mod metrics;
pub mod model;
pub mod workload;
