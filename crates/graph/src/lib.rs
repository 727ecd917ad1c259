//! An HNSW graph laid out flat for searching: every node's vector in one 64-byte-aligned
//! array, each layer's neighbour lists in fixed-size slots of one `u32` array, and a search
//! that reuses a per-thread visited-epoch array and heaps, so a query allocates nothing and
//! chases no pointers but the graph's own.
//!
//! A graph comes in two ways: [`build`] inserts the vectors itself, HNSW as hnswlib does it,
//! on several threads straight into the flat layout; or a graph built elsewhere (hnsw_rs) is
//! copied in through [`GraphBuilder`]. A crate of its own so that debug and test builds of
//! inferbench run the hot loops optimised, as users do.

mod insert;
mod layout;
mod pages;
mod reach;
mod reselect;
mod rows;
mod search;

pub use insert::{build, BuildError, BuildParams, MAX_LEVEL};
pub use layout::{FlatGraph, GraphBuilder, GraphError, Space};
pub use reach::Reachability;
