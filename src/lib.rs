//! inferbench: benchmarks for LLM inference and retrieval, in-process and over HTTP.
//! See DESIGN.md for the layout: config -> workload -> engine/http -> metrics -> report.

pub mod build_info;
pub mod config;
pub mod device;
pub mod engine;
pub mod http;
pub mod metrics;
pub mod model;
pub mod progress;
pub mod regress;
pub mod report;
pub mod retrieval;
pub mod serve;
pub mod suite;
pub mod targets;
pub mod telemetry;
pub mod workload;
