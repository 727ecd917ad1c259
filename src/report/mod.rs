//! The result schema and its writers. A writer formats what a runner measured; it never
//! measures.

pub mod csv;
pub mod http;
pub mod json;
pub mod retrieval;
pub mod schema;
pub mod table;

pub use schema::{
    DeviceUsed, EnergySummary, LatencyHistograms, Reading, RunHeader, RunResult, RunStatus,
    ScenarioResult, TargetsUsed, WarmupSummary, SCHEMA_VERSION,
};
