//! The result schemas and their writers. A writer formats what a runner measured; it never
//! measures.

mod columns;
pub mod csv;
pub mod http;
pub mod retrieval;
pub mod schema;
pub mod table;

pub use schema::{
    DeviceUsed, EnergySummary, LatencyHistograms, RunResult, ScenarioResult, TargetsUsed,
    WarmupSummary,
};
