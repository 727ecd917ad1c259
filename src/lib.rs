//! inferbench: benchmarks for LLM inference and retrieval, in-process and over HTTP.
//! Data flows one way: config -> workload -> engine/http -> metrics+telemetry -> results ->
//! report -> regress -> html (pages) -> dashboard; runners publish what they are doing to
//! `live`, a leaf the dashboard reads. `cli` sits on top and `main` only dispatches. Modules
//! import downward.

pub mod build_info;
pub mod cache;
pub mod cli;
pub mod config;
pub mod dashboard;
pub mod device;
pub mod engine;
pub mod exit;
pub mod history;
pub mod html;
pub mod http;
pub mod instructions;
pub mod k8s;
pub mod kernel_shares;
pub mod live;
pub mod metrics;
pub mod model;
pub mod peaks;
pub mod progress;
pub mod regress;
pub mod report;
pub mod results;
pub mod retrieval;
pub mod roofline;
pub mod serve;
pub mod suite;
pub mod targets;
pub mod telemetry;
pub mod workload;
