//! An HNSW graph laid out flat for searching: every node's vector in one 64-byte-aligned
//! array, each layer's neighbour lists in fixed-size slots of one `u32` array, and a search
//! that reuses a per-thread visited-epoch array and heaps, so a query allocates nothing and
//! chases no pointers but the graph's own.
//!
//! The graph itself is built elsewhere (inferbench builds and persists it with hnsw_rs); this
//! crate copies it in through [`GraphBuilder`] and searches it. A crate of its own so that
//! debug and test builds of inferbench run the hot loop optimised, as users do.

mod insert;
mod layout;
mod reach;
mod reselect;
mod rows;
mod search;

pub use insert::{build, BuildError, BuildParams, MAX_LEVEL};
pub use layout::{FlatGraph, GraphBuilder, GraphError, Space};
pub use reach::Reachability;
