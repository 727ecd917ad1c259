//! Who builds the graph and whose search answers the queries. The graph is built by
//! inferbench-graph's insertion (straight into the flat layout) or by hnsw_rs; either way
//! it is saved and reloaded in hnsw_rs's files. It is then searched by hnsw_rs itself or in
//! inferbench-graph's flat layout (contiguous vectors and neighbour lists, a reusable
//! visited array, prefetching), which returns the same neighbours faster. Every choice stays
//! selectable so each can be measured.

use std::time::Instant;

use anyhow::{bail, Result};
use inferbench_graph::FlatGraph;
use serde::{Deserialize, Serialize};

use super::distance::Metric;
use super::ground_truth::GroundTruth;
use super::index::Index;
use crate::report::retrieval::LayoutInfo;

/// `--search`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SearchChoice {
    /// hnsw_rs's own search on its own structure.
    HnswRs,
    /// The graph laid out flat by inferbench-graph.
    #[default]
    Flat,
}

impl SearchChoice {
    pub fn parse(s: &str) -> Result<SearchChoice> {
        match s {
            "flat" => Ok(SearchChoice::Flat),
            "hnsw_rs" | "hnsw-rs" => Ok(SearchChoice::HnswRs),
            other => bail!("--search {other}: choose flat or hnsw_rs"),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            SearchChoice::HnswRs => "hnsw_rs",
            SearchChoice::Flat => "flat",
        }
    }
}

/// `--build`: whose insertion builds the graph.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BuildChoice {
    /// inferbench-graph's: HNSW's diversity rule on both ends of every link, as hnswlib.
    #[default]
    Inferbench,
    /// hnsw_rs's parallel insert.
    HnswRs,
}

impl BuildChoice {
    pub fn parse(s: &str) -> Result<BuildChoice> {
        match s {
            "inferbench" => Ok(BuildChoice::Inferbench),
            "hnsw_rs" | "hnsw-rs" => Ok(BuildChoice::HnswRs),
            other => bail!("--build {other}: choose inferbench or hnsw_rs"),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            BuildChoice::Inferbench => "inferbench",
            BuildChoice::HnswRs => "hnsw_rs",
        }
    }
}

/// A graph as it comes out of a build or a reload.
pub enum Built {
    /// hnsw_rs's structure (built by hnsw_rs, or reloaded from hnsw_rs's files).
    HnswRs(Index),
    /// Built by inferbench-graph, already flat.
    Flat { graph: FlatGraph, metric: Metric },
}

/// `--links`: which layer-0 links the flat layout walks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Links {
    /// The graph as it was built.
    AsBuilt,
    /// The graph as it was built, and a link into every node no path led to: the diversity
    /// rule can prune a node's last link in (64 of 200,000 in our own build of well-separated
    /// clusters), and such a node is never found, whatever ef.
    Repaired,
    /// Each node's links chosen again from its links and back-links with HNSW's diversity
    /// rule, and a link into every node no path led to (inferbench-graph's reselect.rs
    /// says why hnsw_rs's graph needs it).
    Reselected,
}

impl Links {
    /// The default for a builder: hnsw_rs's graph needs its links reselected; one built
    /// with the rule on both ends gains no recall from it and loses speed to the fuller
    /// lists (measured at 1M: the same recall per ef, 5-15% fewer queries/s), so only its
    /// unreachable nodes are linked.
    pub fn for_build(build: BuildChoice) -> Links {
        match build {
            BuildChoice::Inferbench => Links::Repaired,
            BuildChoice::HnswRs => Links::Reselected,
        }
    }

    pub fn parse(s: &str) -> Result<Links> {
        match s {
            "reselected" => Ok(Links::Reselected),
            "as-built" => Ok(Links::AsBuilt),
            "repaired" => Ok(Links::Repaired),
            other => bail!("--links {other}: choose reselected, repaired or as-built"),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Links::AsBuilt => "as-built",
            Links::Repaired => "repaired",
            Links::Reselected => "reselected",
        }
    }
}

/// The flat layout's figures, and the nodes no search can reach (sorted).
pub struct Layout {
    pub info: LayoutInfo,
    pub unreachable: Vec<u32>,
}

/// An index ready to answer queries.
pub enum Searcher {
    HnswRs(Index),
    Flat { graph: FlatGraph, metric: Metric },
}

impl Searcher {
    /// Ready a graph for `choice` (a graph built flat can only be searched flat: the caller
    /// reloads it with hnsw_rs for `HnswRs`). For `Flat` the hnsw_rs structure is dropped
    /// once copied, so the process holds one graph, not two, and its layer-0 links are
    /// `links`.
    pub fn new(
        built: Built,
        choice: SearchChoice,
        links: Links,
    ) -> Result<(Searcher, Option<Layout>)> {
        match (choice, built) {
            (SearchChoice::HnswRs, Built::HnswRs(index)) => Ok((Searcher::HnswRs(index), None)),
            (SearchChoice::HnswRs, Built::Flat { .. }) => {
                bail!("hnsw_rs cannot search a graph built flat before it is reloaded")
            }
            (SearchChoice::Flat, built) => {
                let started = Instant::now();
                let (mut graph, metric) = match built {
                    Built::HnswRs(index) => (index.flatten()?, index.metric()),
                    Built::Flat { graph, metric } => (graph, metric),
                };
                let as_built = graph.reachability().unreachable;
                let unreachable_as_built = as_built.len() as u64;
                let unreachable = match links {
                    Links::AsBuilt => as_built,
                    Links::Repaired if as_built.is_empty() => as_built,
                    Links::Repaired => graph.link_unreachable(),
                    Links::Reselected => {
                        graph.reselect_base_links(rayon::current_num_threads());
                        graph.link_unreachable()
                    }
                };
                let info = LayoutInfo {
                    seconds: started.elapsed().as_secs_f64(),
                    bytes: graph.memory_bytes() as u64,
                    layers: graph.top_level() + 1,
                    links: Some(links.name().to_string()),
                    unreachable_nodes_as_built: Some(unreachable_as_built),
                    unreachable_nodes: unreachable.len() as u64,
                    queries_with_unreachable_truth: 0,
                    huge_page_bytes: graph.huge_page_bytes(),
                };
                let layout = Layout { info, unreachable };
                Ok((Searcher::Flat { graph, metric }, Some(layout)))
            }
        }
    }

    pub fn choice(&self) -> SearchChoice {
        match self {
            Searcher::HnswRs(_) => SearchChoice::HnswRs,
            Searcher::Flat { .. } => SearchChoice::Flat,
        }
    }

    /// The k nearest found with beam width `ef`: (base index, distance), nearest first.
    pub fn search(&self, query: &[f32], k: usize, ef: usize) -> Vec<(usize, f32)> {
        match self {
            Searcher::HnswRs(index) => index.search(query, k, ef),
            Searcher::Flat { graph, metric } => graph
                .search(query, k, ef)
                .into_iter()
                .map(|(id, d)| (id as usize, metric_distance(*metric, d)))
                .collect(),
        }
    }

    pub fn len(&self) -> usize {
        match self {
            Searcher::HnswRs(index) => index.len(),
            Searcher::Flat { graph, .. } => graph.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Queries whose true top-k holds one of `unreachable` (sorted ids).
pub fn queries_missing_truth(truth: &GroundTruth, queries: usize, unreachable: &[u32]) -> u64 {
    if unreachable.is_empty() {
        return 0;
    }
    (0..queries)
        .filter(|&q| {
            truth
                .ids_of(q)
                .iter()
                .any(|id| unreachable.binary_search(id).is_ok())
        })
        .count() as u64
}

/// The flat layout's distance (squared L2, or 1 - dot of unit vectors) as the metric's.
fn metric_distance(metric: Metric, flat: f32) -> f32 {
    match metric {
        Metric::L2 => flat.max(0.0).sqrt(),
        Metric::Cosine | Metric::Dot => flat.max(0.0),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicBool;

    use super::*;
    use crate::retrieval::dataset::MixtureSpec;
    use crate::retrieval::ground_truth::{self, recall};
    use crate::retrieval::index::IndexParams;

    /// Queries of the comparisons below: at 200 the recall of a racy hnsw_rs build varied by
    /// ±0.005 from build to build, as much as the margin tested.
    const QUERIES: usize = 500;

    /// Both searches over one hnsw_rs graph: (queries with the same answers, flat recall,
    /// hnsw_rs recall).
    fn both(metric: Metric) -> (usize, f64, f64) {
        let (base, queries) = MixtureSpec {
            queries: QUERIES,
            ..MixtureSpec::clustered(4000, 24)
        }
        .generate(&|_| {})
        .unwrap();
        let (mut base, mut queries) = (base, queries);
        if metric == Metric::Dot {
            base.normalize();
            queries.normalize();
        }
        let truth = ground_truth::compute(&base, &queries, 10, metric, &|_| {}).unwrap();
        let params = IndexParams {
            metric,
            m: 8,
            ef_construction: 64,
        };
        let build = || Index::build(&base, params, &AtomicBool::new(false), &|_| {}).unwrap();
        // hnsw_rs's parallel inserts race, so two builds differ: flatten the very graph
        // hnsw_rs searches, by saving it once and loading it twice.
        let dir = tempfile::tempdir().unwrap();
        build().save(dir.path(), &params).unwrap();
        let load = || match Index::load(dir.path(), &params, metric) {
            crate::retrieval::cache::Lookup::Hit(i) => i,
            _ => panic!("the saved index does not reload"),
        };
        let hnsw_rs = |choice| Searcher::new(Built::HnswRs(load()), choice, Links::AsBuilt);
        let (own, _) = hnsw_rs(SearchChoice::HnswRs).unwrap();
        let (flat, layout) = hnsw_rs(SearchChoice::Flat).unwrap();
        let layout = layout.expect("the flat search reports its layout");
        assert_eq!(flat.len(), 4000);
        let (mut same, mut flat_recall, mut own_recall) = (0, 0.0, 0.0);
        for (qi, q) in queries.rows().enumerate() {
            let a = own.search(q, 10, 32);
            let b = flat.search(q, 10, 32);
            assert_eq!(b.len(), 10);
            let ids = |v: &[(usize, f32)]| v.iter().map(|x| x.0).collect::<Vec<_>>();
            same += usize::from(ids(&a) == ids(&b));
            // Distances come back in the metric's units, as hnsw_rs's do.
            for (x, y) in a.iter().zip(&b).filter(|(x, y)| x.0 == y.0) {
                assert!(
                    (x.1 - y.1).abs() <= 1e-4 * x.1.abs().max(1.0),
                    "{x:?} vs {y:?}"
                );
            }
            own_recall += recall(truth.ids_of(qi), truth.distances_of(qi), &a) / QUERIES as f64;
            flat_recall += recall(truth.ids_of(qi), truth.distances_of(qi), &b) / QUERIES as f64;
        }
        assert_eq!(
            layout.unreachable.len() as u64,
            layout.info.unreachable_nodes
        );
        (same, flat_recall, own_recall)
    }

    #[test]
    fn the_flat_layout_returns_hnsw_rs_answers_on_the_same_graph() {
        for metric in [Metric::L2, Metric::Cosine, Metric::Dot] {
            let (same, flat, own) = both(metric);
            // The flat search descends each upper layer greedily until nothing nearer is
            // left (hnsw_rs looks at one node's links per layer) and starts layer 0 from a
            // few nodes of layer 1, not one, so it may find other (nearer) answers; ties and
            // rounding (squared L2, pre-normalised cosine) reorder a few more. The answers
            // must otherwise be hnsw_rs's, with no recall lost.
            assert!(
                same * 4 >= QUERIES * 3,
                "{metric:?}: {same} of {QUERIES} identical"
            );
            assert!(flat >= own - 0.005, "{metric:?}: recall {flat} vs {own}");
        }
    }

    #[test]
    fn a_graph_built_here_is_saved_as_hnsw_rs_reads_it_and_both_searches_agree() {
        for metric in [Metric::L2, Metric::Cosine] {
            let (base, queries) = MixtureSpec {
                queries: 200,
                ..MixtureSpec::clustered(4000, 24)
            }
            .generate(&|_| {})
            .unwrap();
            let truth = ground_truth::compute(&base, &queries, 10, metric, &|_| {}).unwrap();
            let params = IndexParams {
                metric,
                m: 8,
                ef_construction: 64,
            };
            let graph = inferbench_graph::build(
                crate::retrieval::index::graph_space(metric),
                base.dim,
                &base.data,
                inferbench_graph::BuildParams {
                    m: 8,
                    ef_construction: 64,
                    seed: 3,
                    // One thread: the same graph every run, so the recall bounds below judge
                    // the two searches and not which of many parallel builds came out.
                    threads: 1,
                },
                &AtomicBool::new(false),
                &mut |_| {},
            )
            .unwrap();
            let dir = tempfile::tempdir().unwrap();
            Index::save_graph(&graph, &base, params, dir.path(), &params).unwrap();
            let index = match Index::load(dir.path(), &params, metric) {
                crate::retrieval::cache::Lookup::Hit(i) => i,
                _ => panic!("{metric:?}: hnsw_rs does not reload the graph built here"),
            };
            assert_eq!((index.len(), index.dim()), (4000, 24));
            // hnsw_rs holds the very graph: every node's links on every layer.
            let again = index.flatten().unwrap();
            for node in 0..4000u32 {
                assert_eq!(again.level(node), graph.level(node));
                for layer in 0..=graph.level(node) {
                    let sorted = |l: &[u32]| {
                        let mut l = l.to_vec();
                        l.sort_unstable();
                        l
                    };
                    assert_eq!(
                        sorted(again.neighbours(node, layer)),
                        sorted(graph.neighbours(node, layer)),
                        "{metric:?}: node {node}, layer {layer}"
                    );
                }
            }
            // And hnsw_rs's own search on it answers as the flat search does.
            let (own, _) =
                Searcher::new(Built::HnswRs(index), SearchChoice::HnswRs, Links::AsBuilt).unwrap();
            let flat = Built::Flat { graph, metric };
            let (flat, _) = Searcher::new(flat, SearchChoice::Flat, Links::AsBuilt).unwrap();
            let (mut same, mut own_recall, mut flat_recall) = (0, 0.0, 0.0);
            for (qi, q) in queries.rows().enumerate() {
                let a = own.search(q, 10, 32);
                let b = flat.search(q, 10, 32);
                let ids = |v: &[(usize, f32)]| v.iter().map(|x| x.0).collect::<Vec<_>>();
                same += usize::from(ids(&a) == ids(&b));
                own_recall += recall(truth.ids_of(qi), truth.distances_of(qi), &a) / 200.0;
                flat_recall += recall(truth.ids_of(qi), truth.distances_of(qi), &b) / 200.0;
            }
            // As with hnsw_rs's own graphs (above), the descents differ, so a few answers do.
            assert!(same >= 150, "{metric:?}: {same} of 200 identical");
            assert!(
                flat_recall >= own_recall - 0.005
                    && own_recall >= flat_recall - 0.03
                    && flat_recall >= 0.85,
                "{metric:?}: recall {own_recall} (hnsw_rs) vs {flat_recall} (flat)"
            );
        }
    }

    #[test]
    fn queries_with_unreachable_truth_are_counted() {
        let truth = GroundTruth {
            k: 2,
            ids: vec![0, 1, 2, 3, 4, 5],
            distances: vec![0.0; 6],
        };
        assert_eq!(queries_missing_truth(&truth, 3, &[3, 9]), 1);
        assert_eq!(queries_missing_truth(&truth, 3, &[]), 0);
        assert_eq!(queries_missing_truth(&truth, 3, &[0, 5]), 2);
    }

    /// Five points on a line, each linked to its neighbours, but none links to node 4.
    fn a_node_no_link_leads_to() -> Built {
        let mut g =
            inferbench_graph::GraphBuilder::new(inferbench_graph::Space::SquaredL2, 1, 5).unwrap();
        let links: [&[u32]; 5] = [&[1], &[0, 2], &[1, 3], &[2], &[3]];
        for (id, l) in links.iter().enumerate() {
            g.set_node(id as u32, &[id as f32], vec![l.to_vec()])
                .unwrap();
        }
        g.set_entry(0);
        Built::Flat {
            graph: g.finish().unwrap(),
            metric: Metric::L2,
        }
    }

    #[test]
    fn repaired_links_make_every_node_findable_and_as_built_leaves_the_graph_alone() {
        let (as_built, layout) = Searcher::new(
            a_node_no_link_leads_to(),
            SearchChoice::Flat,
            Links::AsBuilt,
        )
        .unwrap();
        assert_eq!(layout.unwrap().unreachable, vec![4]);
        assert_ne!(as_built.search(&[4.0], 1, 8)[0].0, 4);

        let (repaired, layout) = Searcher::new(
            a_node_no_link_leads_to(),
            SearchChoice::Flat,
            Links::Repaired,
        )
        .unwrap();
        let layout = layout.unwrap();
        assert!(layout.unreachable.is_empty());
        assert_eq!(layout.info.unreachable_nodes_as_built, Some(1));
        assert_eq!(layout.info.links.as_deref(), Some("repaired"));
        assert_eq!(repaired.search(&[4.0], 1, 8)[0].0, 4);
        assert_eq!(Links::for_build(BuildChoice::Inferbench), Links::Repaired);
        assert_eq!(Links::parse("repaired").unwrap(), Links::Repaired);
    }

    #[test]
    fn search_choices_parse_and_name_themselves() {
        assert_eq!(SearchChoice::parse("flat").unwrap(), SearchChoice::Flat);
        assert_eq!(SearchChoice::parse("hnsw_rs").unwrap().name(), "hnsw_rs");
        assert!(SearchChoice::parse("faiss")
            .unwrap_err()
            .to_string()
            .contains("flat or hnsw_rs"));
    }
}
