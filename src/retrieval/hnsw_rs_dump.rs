//! A graph built by inferbench-graph, written in the files hnsw_rs 0.3.5 dumps (format v4,
//! full mode), so that hnsw_rs's `HnswIo` reloads it as its own index: the cache, `--search
//! hnsw_rs` and users of hnsw_rs read one format, whoever built the graph.
//!
//! The layout, as hnsw_rs's hnswio.rs reads it (native byte order, `usize` as 8 bytes):
//! - `<base>.hnsw.graph`: a description (magic, mode, M, level scale, 16 layers,
//!   ef_construction, points, dimension, distance type name, value type name); then per
//!   layer 0..16 a magic, its point count and its points (the nodes whose level is that
//!   layer, each named by (layer, rank in layer)): a magic, the node id, its (layer, rank),
//!   and for each of the 16 layers its neighbours as (id, layer, rank, distance); last the
//!   entry point's id, layer and rank.
//! - `<base>.hnsw.data`: a magic and the dimension, then per point in the same order a
//!   magic, its id, its byte length and its values.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use anyhow::{bail, Context, Result};
use inferbench_graph::{FlatGraph, MAX_LEVEL};

use super::dataset::VectorSet;
use super::distance::{Metric, SimdCosine, SimdDot, SimdL2};

const MAGIC_DESCRIPTION_V4: u32 = 0x002a_6779;
const MAGIC_POINT: u32 = 0x000a_678f;
const MAGIC_LAYER: u32 = 0x000a_676f;
const MAGIC_DATA: u32 = 0xa67f_0000;
/// hnsw_rs always describes and stores 16 layers.
const LAYERS: u8 = MAX_LEVEL + 1;

/// Write `graph` (built over `data` with `metric`, `m`, `ef_construction`) as
/// `dir/<basename>.hnsw.{graph,data}`.
pub fn write(
    dir: &Path,
    basename: &str,
    graph: &FlatGraph,
    data: &VectorSet,
    metric: Metric,
    m: usize,
    ef_construction: usize,
) -> Result<()> {
    if graph.len() != data.len() || graph.dim() != data.dim {
        bail!("the graph does not hold these vectors");
    }
    let graph_path = dir.join(format!("{basename}.hnsw.graph"));
    let data_path = dir.join(format!("{basename}.hnsw.data"));
    let create = |p: &Path| {
        File::create(p)
            .map(|f| BufWriter::with_capacity(1 << 20, f))
            .with_context(|| format!("{}: cannot create it", p.display()))
    };
    let mut g = create(&graph_path)?;
    let mut d = create(&data_path)?;
    let ranks = Ranks::of(graph);
    write_description(&mut g, graph, metric, m, ef_construction)?;
    d.write_all(&MAGIC_DATA.to_ne_bytes())?;
    d.write_all(&data.dim.to_ne_bytes())?;
    g.write_all(&[LAYERS])?;
    for layer in 0..LAYERS {
        let members = &ranks.by_layer[layer as usize];
        g.write_all(&MAGIC_LAYER.to_ne_bytes())?;
        g.write_all(&members.len().to_ne_bytes())?;
        for &node in members {
            write_point(&mut g, graph, &ranks, data, metric, node)?;
            let values = data.row(node as usize);
            d.write_all(&MAGIC_DATA.to_ne_bytes())?;
            d.write_all(&(node as u64).to_ne_bytes())?;
            d.write_all(&(std::mem::size_of_val(values) as u64).to_ne_bytes())?;
            let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_ne_bytes()).collect();
            d.write_all(&bytes)?;
        }
    }
    let entry = graph.entry();
    g.write_all(&(entry as usize).to_ne_bytes())?;
    write_place(&mut g, graph, &ranks, entry)?;
    for (mut w, p) in [(g, &graph_path), (d, &data_path)] {
        w.flush()
            .with_context(|| format!("{}: cannot write it", p.display()))?;
    }
    Ok(())
}

/// hnsw_rs names a point by its layer (its level) and its rank among that layer's points.
struct Ranks {
    by_layer: Vec<Vec<u32>>,
    rank: Vec<u32>,
}

impl Ranks {
    fn of(graph: &FlatGraph) -> Ranks {
        let mut by_layer = vec![Vec::new(); LAYERS as usize];
        let mut rank = vec![0u32; graph.len()];
        for node in 0..graph.len() as u32 {
            let members = &mut by_layer[graph.level(node).min(MAX_LEVEL) as usize];
            rank[node as usize] = members.len() as u32;
            members.push(node);
        }
        Ranks { by_layer, rank }
    }
}

fn write_description(
    g: &mut impl Write,
    graph: &FlatGraph,
    metric: Metric,
    m: usize,
    ef_construction: usize,
) -> Result<()> {
    let distance = match metric {
        Metric::L2 => std::any::type_name::<SimdL2>(),
        Metric::Cosine => std::any::type_name::<SimdCosine>(),
        Metric::Dot => std::any::type_name::<SimdDot>(),
    };
    g.write_all(&MAGIC_DESCRIPTION_V4.to_ne_bytes())?;
    g.write_all(&[1u8, m as u8])?; // full mode, M
    g.write_all(&(1.0 / (m as f64).ln()).to_ne_bytes())?; // the level scale hnsw_rs records
    g.write_all(&[LAYERS])?;
    g.write_all(&ef_construction.to_ne_bytes())?;
    g.write_all(&graph.len().to_ne_bytes())?;
    g.write_all(&graph.dim().to_ne_bytes())?;
    for name in [distance, std::any::type_name::<f32>()] {
        g.write_all(&name.len().to_ne_bytes())?;
        g.write_all(name.as_bytes())?;
    }
    Ok(())
}

/// A node's (layer, rank).
fn write_place(g: &mut impl Write, graph: &FlatGraph, ranks: &Ranks, node: u32) -> Result<()> {
    g.write_all(&[graph.level(node).min(MAX_LEVEL)])?;
    g.write_all(&(ranks.rank[node as usize] as i32).to_ne_bytes())?;
    Ok(())
}

fn write_point(
    g: &mut impl Write,
    graph: &FlatGraph,
    ranks: &Ranks,
    data: &VectorSet,
    metric: Metric,
    node: u32,
) -> Result<()> {
    g.write_all(&MAGIC_POINT.to_ne_bytes())?;
    g.write_all(&(node as usize).to_ne_bytes())?;
    write_place(g, graph, ranks, node)?;
    let here = data.row(node as usize);
    for layer in 0..LAYERS {
        let links = graph.neighbours(node, layer);
        g.write_all(&links.len().to_ne_bytes())?;
        for &n in links {
            g.write_all(&(n as usize).to_ne_bytes())?;
            write_place(g, graph, ranks, n)?;
            let dist = metric.eval(here, data.row(n as usize));
            g.write_all(&dist.to_ne_bytes())?;
        }
    }
    Ok(())
}
