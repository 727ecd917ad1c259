//! The result schemas and their writers. A writer formats what a runner measured; it never
//! measures.

mod checks;
pub(crate) mod columns;
pub mod csv;
pub mod http;
pub mod instructions;
pub mod profile;
pub mod retrieval;
pub mod schema;
pub mod table;

pub use schema::{
    DeviceUsed, EnergySummary, RunResult, ScenarioResult, TargetsUsed, WarmupSummary,
};
