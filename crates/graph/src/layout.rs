//! The flat layout and the builder that fills it.

use std::fmt;

use crate::rows::Rows;

/// How distances between the stored vectors and a query are computed. Both rank exactly as
/// the distance the graph was built with, and are cheaper.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Space {
    /// Squared Euclidean distance (ranks as L2 does, without the square root).
    SquaredL2,
    /// 1 - a·b with vectors and queries normalised to unit length (ranks as cosine does).
    UnitDot,
}

/// A node's links on one layer are stored as `[count, id, id, ...]` in a slot of fixed size;
/// `upper_start` of a node on layer 0 only.
pub(crate) const NO_UPPER: u32 = u32::MAX;

/// An HNSW graph laid out for searching. Node ids are the caller's row numbers.
pub struct FlatGraph {
    pub(crate) rows: Rows,
    pub(crate) levels: Vec<u8>,
    /// Layer 0: `base_slot` u32s per node.
    pub(crate) base_slot: usize,
    pub(crate) base_links: Vec<u32>,
    /// Layers above 0: a node of level L owns L consecutive slots of `upper_slot` u32s
    /// (layers 1..=L) starting at slot `upper_start[node]`.
    pub(crate) upper_start: Vec<u32>,
    pub(crate) upper_slot: usize,
    pub(crate) upper_links: Vec<u32>,
    pub(crate) entry: u32,
    pub(crate) top_level: u8,
}

/// Why a graph could not be laid out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GraphError {
    /// A node was never given.
    MissingNode(u32),
    /// A node id or neighbour id past the node count.
    OutOfRange { node: u32, neighbour: u32 },
    /// A vector of another length than the graph's dimension.
    Dimension { node: u32, got: usize, want: usize },
    /// No entry point, or one past the node count, or one below the top layer.
    Entry(String),
    /// More nodes than 32-bit ids can name.
    TooLarge(usize),
}

impl fmt::Display for GraphError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GraphError::MissingNode(n) => write!(f, "node {n} was never given"),
            GraphError::OutOfRange { node, neighbour } => {
                write!(f, "node {node} links to {neighbour}, past the last node")
            }
            GraphError::Dimension { node, got, want } => {
                write!(f, "node {node} has {got} values, the graph {want}")
            }
            GraphError::Entry(why) => write!(f, "entry point: {why}"),
            GraphError::TooLarge(n) => write!(f, "{n} nodes do not fit 32-bit ids"),
        }
    }
}

impl std::error::Error for GraphError {}

/// Collects nodes in any order, then lays them out.
pub struct GraphBuilder {
    rows: Rows,
    links: Vec<Option<Vec<Vec<u32>>>>,
    entry: Option<u32>,
}

impl GraphBuilder {
    /// A graph of `nodes` vectors of `dim` floats.
    pub fn new(space: Space, dim: usize, nodes: usize) -> Result<GraphBuilder, GraphError> {
        if nodes >= NO_UPPER as usize {
            return Err(GraphError::TooLarge(nodes));
        }
        Ok(GraphBuilder {
            rows: Rows::new(space, dim, nodes),
            links: vec![None; nodes],
            entry: None,
        })
    }

    /// Node `id`'s vector and its neighbours on each of its layers (`layers[0]` is layer 0,
    /// so its level is `layers.len() - 1`).
    pub fn set_node(
        &mut self,
        id: u32,
        vector: &[f32],
        layers: Vec<Vec<u32>>,
    ) -> Result<(), GraphError> {
        let nodes = self.links.len();
        let slot = self
            .links
            .get_mut(id as usize)
            .ok_or(GraphError::OutOfRange {
                node: id,
                neighbour: id,
            })?;
        if vector.len() != self.rows.dim {
            return Err(GraphError::Dimension {
                node: id,
                got: vector.len(),
                want: self.rows.dim,
            });
        }
        if let Some(bad) = layers.iter().flatten().find(|n| **n as usize >= nodes) {
            return Err(GraphError::OutOfRange {
                node: id,
                neighbour: *bad,
            });
        }
        let mut layers = layers;
        if layers.is_empty() {
            layers.push(Vec::new());
        }
        *slot = Some(layers);
        self.rows.set(id, vector);
        Ok(())
    }

    /// The node searches start from; it must be on the top layer.
    pub fn set_entry(&mut self, id: u32) {
        self.entry = Some(id);
    }

    pub fn finish(self) -> Result<FlatGraph, GraphError> {
        let n = self.links.len();
        let mut layers = Vec::with_capacity(n);
        for (id, l) in self.links.into_iter().enumerate() {
            layers.push(l.ok_or(GraphError::MissingNode(id as u32))?);
        }
        let levels: Vec<u8> = layers
            .iter()
            .map(|l| (l.len() - 1).min(u8::MAX as usize) as u8)
            .collect();
        let top_level = levels.iter().copied().max().unwrap_or(0);
        let entry = match self.entry {
            None if n == 0 => 0,
            None => return Err(GraphError::Entry("none was given".into())),
            Some(e) if e as usize >= n => {
                return Err(GraphError::Entry(format!("{e} is past the last node")))
            }
            Some(e) if levels[e as usize] < top_level => {
                return Err(GraphError::Entry(format!(
                    "{e} is on layer {}, below the top layer {top_level}",
                    levels[e as usize]
                )))
            }
            Some(e) => e,
        };
        let base_slot = 1 + layers.iter().map(|l| l[0].len()).max().unwrap_or(0);
        let upper_slot = 1 + layers
            .iter()
            .flat_map(|l| &l[1..])
            .map(Vec::len)
            .max()
            .unwrap_or(0);
        let mut base_links = crate::pages::filled(n * base_slot, || 0u32);
        let (upper_start, upper_count) = upper_slots(&levels);
        let mut upper_links = vec![0u32; upper_count * upper_slot];
        for (id, node_layers) in layers.iter().enumerate() {
            write_slot(
                &mut base_links[id * base_slot..(id + 1) * base_slot],
                &node_layers[0],
            );
            for (above, list) in node_layers[1..].iter().enumerate() {
                let at = (upper_start[id] as usize + above) * upper_slot;
                write_slot(&mut upper_links[at..at + upper_slot], list);
            }
        }
        Ok(FlatGraph {
            rows: self.rows,
            levels,
            base_slot,
            base_links,
            upper_start,
            upper_slot,
            upper_links,
            entry,
            top_level,
        })
    }
}

/// Where each node's upper-layer slots start (layers 1..=level, consecutive), and how many
/// slots all nodes need.
pub(crate) fn upper_slots(levels: &[u8]) -> (Vec<u32>, usize) {
    let mut next = 0usize;
    let starts = levels
        .iter()
        .map(|&level| {
            if level == 0 {
                return NO_UPPER;
            }
            let start = next as u32;
            next += level as usize;
            start
        })
        .collect();
    (starts, next)
}

fn write_slot(slot: &mut [u32], ids: &[u32]) {
    slot[0] = ids.len() as u32;
    slot[1..=ids.len()].copy_from_slice(ids);
}

impl FlatGraph {
    pub fn len(&self) -> usize {
        self.levels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.levels.is_empty()
    }

    pub fn dim(&self) -> usize {
        self.rows.dim
    }

    pub fn space(&self) -> Space {
        self.rows.space
    }

    /// The highest layer any node reaches.
    pub fn top_level(&self) -> u8 {
        self.top_level
    }

    /// The node every search starts from (on the top layer).
    pub fn entry(&self) -> u32 {
        self.entry
    }

    /// A node's level (it is on layers 0..=level).
    pub fn level(&self, node: u32) -> u8 {
        self.levels[node as usize]
    }

    /// The stored vector of a node (normalised for `UnitDot`).
    #[inline]
    pub fn vector(&self, node: u32) -> &[f32] {
        self.rows.get(node)
    }

    /// A node's neighbours on `layer` (empty above its level).
    #[inline]
    pub fn neighbours(&self, node: u32, layer: u8) -> &[u32] {
        let slot = if layer == 0 {
            let at = node as usize * self.base_slot;
            &self.base_links[at..at + self.base_slot]
        } else {
            let start = self.upper_start[node as usize];
            if start == NO_UPPER || layer > self.levels[node as usize] {
                return &[];
            }
            let at = (start as usize + layer as usize - 1) * self.upper_slot;
            &self.upper_links[at..at + self.upper_slot]
        };
        &slot[1..=slot[0] as usize]
    }

    /// Replace a node's layer-0 links (at most the slot's size).
    pub(crate) fn set_base_links(&mut self, node: u32, links: &[u32]) {
        let at = node as usize * self.base_slot;
        let slot = &mut self.base_links[at..at + self.base_slot];
        let links = &links[..links.len().min(slot.len() - 1)];
        write_slot(slot, links);
    }

    /// Bytes of the vectors and layer-0 links the kernel holds on huge pages (see
    /// `INFERBENCH_NO_HUGE_PAGES`); None where it cannot be told (not Linux).
    pub fn huge_page_bytes(&self) -> Option<u64> {
        use crate::pages::{huge_bytes, span};
        huge_bytes(&[self.rows.span(), span(&self.base_links)])
    }

    /// Bytes the layout holds: vectors, links, levels.
    pub fn memory_bytes(&self) -> usize {
        self.rows.bytes()
            + (self.base_links.len() + self.upper_links.len() + self.upper_start.len()) * 4
            + self.levels.len()
    }
}
