//! Vector data sets: synthetic Gaussian mixtures (an easy clustered one and a hard one), and
//! real vectors read from a file. Every set comes with queries from the same distribution
//! that are not in the index.

use std::path::Path;

use super::distance::Metric;
use anyhow::{bail, Context, Result};
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, StandardNormal};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

/// Row-major vectors of one dimension.
#[derive(Debug, Clone, PartialEq)]
pub struct VectorSet {
    pub dim: usize,
    pub data: Vec<f32>,
}

impl VectorSet {
    pub fn new(dim: usize, data: Vec<f32>) -> Result<Self> {
        if dim == 0 {
            bail!("vectors of dimension 0");
        }
        if !data.len().is_multiple_of(dim) {
            bail!(
                "{} values do not split into vectors of dimension {dim}",
                data.len()
            );
        }
        Ok(VectorSet { dim, data })
    }

    pub fn len(&self) -> usize {
        self.data.len() / self.dim
    }

    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    pub fn row(&self, i: usize) -> &[f32] {
        &self.data[i * self.dim..(i + 1) * self.dim]
    }

    pub fn rows(&self) -> std::slice::ChunksExact<'_, f32> {
        self.data.chunks_exact(self.dim)
    }

    /// Scale every vector to unit length (zero vectors stay zero).
    /// Refuse vectors no distance can be trusted on: a squared length so large that distances
    /// overflow f32 to infinity (every neighbour then ties, and recall reads 1.0), or, under
    /// cosine and dot, a vector of zeros (it has no direction). `what` names the set.
    pub fn check_usable(&self, metric: Metric, what: &str) -> Result<()> {
        // |a - b|^2 <= 2 |a|^2 + 2 |b|^2: below a quarter of f32::MAX no distance overflows.
        let limit = f32::MAX / 4.0;
        for (i, row) in self.rows().enumerate() {
            let squared: f32 = row.iter().map(|x| x * x).sum();
            if squared.is_nan() || squared > limit {
                bail!(
                    "{what}: vector {} has a squared length of {squared:e}: distances between such \
                     vectors overflow f32; scale the vectors down",
                    i + 1
                );
            }
            if squared == 0.0 && metric != Metric::L2 {
                bail!(
                    "{what}: vector {} is all zeros: it has no direction, so {} distances to it are \
                     meaningless",
                    i + 1,
                    metric.name()
                );
            }
        }
        Ok(())
    }

    pub fn normalize(&mut self) {
        self.data.par_chunks_mut(self.dim).for_each(|v| {
            let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
            if norm > 0.0 {
                v.iter_mut().for_each(|x| *x /= norm);
            }
        });
    }

    /// Split off the rows at `indices` (sorted, distinct) into a second set.
    pub fn split_rows(self, indices: &[usize]) -> (VectorSet, VectorSet) {
        let mut kept = Vec::with_capacity(self.data.len());
        let mut taken = Vec::with_capacity(indices.len() * self.dim);
        let mut next = indices.iter().peekable();
        for (i, row) in self.rows().enumerate() {
            if next.peek() == Some(&&i) {
                next.next();
                taken.extend_from_slice(row);
            } else {
                kept.extend_from_slice(row);
            }
        }
        (
            VectorSet {
                dim: self.dim,
                data: kept,
            },
            VectorSet {
                dim: self.dim,
                data: taken,
            },
        )
    }
}

/// A Gaussian mixture: `clusters` centres drawn from N(0, centre_sd²) per coordinate, each
/// point a centre plus noise of standard deviation `spread` per coordinate. Centres far apart
/// compared with the spread leave empty space between clusters that no graph can route
/// through (measured: at 1M vectors with centre_sd 1 and spread 0.3, over half the queries
/// never reach their cluster at ef 16); real embeddings' topics overlap. The noise spans either
/// every dimension, or a random `intrinsic_dim`-dimensional subspace of each cluster (like
/// real embeddings, which lie near low-dimensional manifolds). Low intrinsic dimension gives
/// neighbours a graph can navigate to (easy); full dimension makes every point of a cluster
/// nearly equidistant from a query (hard: neighbours are barely nearer than anything else).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MixtureSpec {
    pub n: usize,
    pub queries: usize,
    pub dim: usize,
    pub clusters: usize,
    /// Standard deviation of the centres' coordinates.
    pub centre_sd: f32,
    pub spread: f32,
    /// Dimensions the noise spans inside each cluster; None: all of them.
    #[serde(default)]
    pub intrinsic_dim: Option<usize>,
    pub seed: u64,
}

impl MixtureSpec {
    /// The clustered variant: 1000 clusters of sd 0.3 (as the hnswlib reference run) around
    /// centres as spread as uniform [0, 1) coordinates (sd 1/√12), noise in every dimension.
    pub fn clustered(n: usize, dim: usize) -> Self {
        MixtureSpec {
            n,
            queries: 1000,
            dim,
            clusters: 1000,
            centre_sd: 0.288_675_13,
            spread: 0.3,
            intrinsic_dim: None,
            seed: 42,
        }
    }

    /// The hard variant: 10 clusters whose noise is as wide as the spread of their centres,
    /// in every dimension.
    pub fn hard(n: usize, dim: usize) -> Self {
        MixtureSpec {
            clusters: 10,
            centre_sd: 1.0,
            spread: 1.0,
            intrinsic_dim: None,
            ..Self::clustered(n, dim)
        }
    }

    pub fn check(&self) -> Result<()> {
        if self.n == 0 || self.dim == 0 || self.clusters == 0 || self.queries == 0 {
            bail!(
                "n, dim, clusters and queries must be at least 1 (got n {}, dim {}, clusters {}, queries {})",
                self.n, self.dim, self.clusters, self.queries
            );
        }
        if !(self.spread.is_finite() && self.spread > 0.0) {
            bail!("spread must be a positive number, got {}", self.spread);
        }
        if !(self.centre_sd.is_finite() && self.centre_sd >= 0.0) {
            bail!("centre sd must be zero or more, got {}", self.centre_sd);
        }
        if let Some(d) = self.intrinsic_dim {
            if d == 0 || d > self.dim {
                bail!(
                    "intrinsic dimension must be between 1 and dim ({}), got {d}",
                    self.dim
                );
            }
        }
        Ok(())
    }

    /// The base vectors and the queries. Deterministic for a seed, whatever the thread count.
    pub fn generate(&self, progress: &(dyn Fn(u64) + Sync)) -> Result<(VectorSet, VectorSet)> {
        self.check()?;
        let centres = gaussian(
            self.clusters * self.dim,
            self.centre_sd,
            stream_seed(self.seed, 0, 0),
        );
        // Per cluster, a dim × d basis of N(0, 1/d) entries: noise B·z with z ~ N(0, I_d)
        // then has unit variance per coordinate, as the full-dimensional noise does.
        let bases = self.intrinsic_dim.map(|d| {
            gaussian(
                self.clusters * self.dim * d,
                1.0 / (d as f32).sqrt(),
                stream_seed(self.seed, 4, 0),
            )
        });
        let base = self.points(&centres, bases.as_deref(), self.n, 1, progress);
        let queries = self.points(&centres, bases.as_deref(), self.queries, 2, &|_| {});
        Ok((
            VectorSet::new(self.dim, base)?,
            VectorSet::new(self.dim, queries)?,
        ))
    }

    fn points(
        &self,
        centres: &[f32],
        bases: Option<&[f32]>,
        count: usize,
        stream: u64,
        progress: &(dyn Fn(u64) + Sync),
    ) -> Vec<f32> {
        const CHUNK: usize = 4096;
        let dim = self.dim;
        let mut data = vec![0.0f32; count * dim];
        let done = std::sync::atomic::AtomicU64::new(0);
        data.par_chunks_mut(CHUNK * dim)
            .enumerate()
            .for_each(|(chunk, out)| {
                let mut rng = rand::rngs::StdRng::seed_from_u64(stream_seed(
                    self.seed,
                    stream,
                    chunk as u64 + 1,
                ));
                let mut z = Vec::new();
                for v in out.chunks_exact_mut(dim) {
                    let c = rng.random_range(0..self.clusters);
                    let centre = &centres[c * dim..(c + 1) * dim];
                    match (bases, self.intrinsic_dim) {
                        (Some(bases), Some(d)) => {
                            z.clear();
                            z.extend((0..d).map(|_| {
                                let x: f32 = StandardNormal.sample(&mut rng);
                                x
                            }));
                            let basis = &bases[c * dim * d..(c + 1) * dim * d];
                            for ((x, m), row) in v.iter_mut().zip(centre).zip(basis.chunks_exact(d))
                            {
                                let noise: f32 = row.iter().zip(&z).map(|(b, z)| b * z).sum();
                                *x = m + self.spread * noise;
                            }
                        }
                        _ => {
                            for (x, m) in v.iter_mut().zip(centre) {
                                let z: f32 = StandardNormal.sample(&mut rng);
                                *x = m + self.spread * z;
                            }
                        }
                    }
                }
                let rows = (out.len() / dim) as u64;
                let total = done.fetch_add(rows, std::sync::atomic::Ordering::Relaxed) + rows;
                progress(total);
            });
        data
    }
}

fn gaussian(len: usize, sd: f32, seed: u64) -> Vec<f32> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    (0..len)
        .map(|_| {
            let z: f32 = StandardNormal.sample(&mut rng);
            sd * z
        })
        .collect()
}

/// Independent seeds for (data set seed, stream, chunk), so chunks generate in any order.
fn stream_seed(seed: u64, stream: u64, chunk: u64) -> u64 {
    let mut h = seed ^ 0x9e37_79b9_7f4a_7c15;
    for x in [stream, chunk] {
        h = (h ^ x).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        h ^= h >> 31;
    }
    h
}

/// Read vectors from a text file: one vector per line, numbers separated by spaces, tabs or
/// commas; blank lines and lines starting with '#' are skipped.
pub fn read_text_vectors(path: &Path) -> Result<VectorSet> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("{}: cannot read the vectors file", path.display()))?;
    let mut dim = 0;
    let mut data = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut count = 0;
        for (col, field) in line
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|f| !f.is_empty())
            .enumerate()
        {
            let value: f32 = field
                .parse()
                .ok()
                .filter(|v: &f32| v.is_finite())
                .with_context(|| {
                    format!(
                        "{}: line {}, value {}: {field:?} is not a finite number",
                        path.display(),
                        i + 1,
                        col + 1
                    )
                })?;
            data.push(value);
            count += 1;
        }
        if dim == 0 {
            dim = count;
        } else if count != dim {
            bail!(
                "{}: line {} has {count} values, but the first vector has {dim}",
                path.display(),
                i + 1
            );
        }
    }
    if dim == 0 {
        bail!("{}: no vectors in the file (it is empty)", path.display());
    }
    VectorSet::new(dim, data)
}

/// `count` distinct row indices out of `n`, sorted, drawn with a seed: the held-out queries of
/// a file's vectors.
pub fn sample_indices(n: usize, count: usize, seed: u64) -> Vec<usize> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(stream_seed(seed, 3, 0));
    let mut picked = rand::seq::index::sample(&mut rng, n, count.min(n)).into_vec();
    picked.sort_unstable();
    picked
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generation_is_deterministic_and_queries_are_not_in_the_base() {
        let spec = MixtureSpec {
            queries: 20,
            ..MixtureSpec::clustered(10_000, 8)
        };
        let (base, queries) = spec.generate(&|_| {}).unwrap();
        assert_eq!((base.len(), queries.len(), base.dim), (10_000, 20, 8));
        let (again, _) = spec.generate(&|_| {}).unwrap();
        assert_eq!(base, again);
        for q in queries.rows() {
            assert!(base.rows().all(|b| b != q));
        }
        let other = MixtureSpec { seed: 7, ..spec };
        assert_ne!(other.generate(&|_| {}).unwrap().0, base);
    }

    #[test]
    fn clustered_points_sit_near_their_centres_and_hard_ones_do_not() {
        // Mean distance to the nearest other point, relative to the mean distance overall.
        let ratio = |spec: MixtureSpec| {
            let (base, _) = spec.generate(&|_| {}).unwrap();
            let d = |a: &[f32], b: &[f32]| super::super::distance::l2(a, b);
            let (mut nearest, mut overall) = (0.0, 0.0);
            for i in 0..50 {
                let others = (0..base.len()).filter(|j| *j != i);
                let ds: Vec<f32> = others.map(|j| d(base.row(i), base.row(j))).collect();
                nearest += ds.iter().cloned().fold(f32::MAX, f32::min);
                overall += ds.iter().sum::<f32>() / ds.len() as f32;
            }
            nearest / overall
        };
        // 200 points per cluster, so nearest neighbours lie inside a point's own cluster.
        let few = MixtureSpec {
            clusters: 10,
            centre_sd: 1.0,
            intrinsic_dim: Some(16),
            ..MixtureSpec::clustered(2000, 64)
        };
        let easy = ratio(few.clone());
        let full = ratio(MixtureSpec {
            intrinsic_dim: None,
            ..few
        });
        let hard = ratio(MixtureSpec::hard(2000, 64));
        assert!(
            easy < 0.8 * full && full < 0.4 && hard > 0.5,
            "easy {easy}, full {full}, hard {hard}"
        );
    }

    #[test]
    fn vectors_file_errors_name_the_line() {
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, text: &str| {
            let p = dir.path().join(name);
            std::fs::write(&p, text).unwrap();
            p
        };
        let good = read_text_vectors(&write("good.txt", "# header\n1 2 3\n4,5,6\n\n")).unwrap();
        assert_eq!((good.len(), good.dim), (2, 3));
        let cases = [
            ("empty.txt", "", "empty"),
            ("text.txt", "1 2 3\n4 five 6\n", "line 2, value 2"),
            ("nan.txt", "1 NaN 3\n", "not a finite number"),
            ("ragged.txt", "1 2 3\n4 5\n", "line 2 has 2 values"),
        ];
        for (name, text, expected) in cases {
            let err = format!("{:#}", read_text_vectors(&write(name, text)).unwrap_err());
            assert!(err.contains(name) && err.contains(expected), "{err}");
        }
    }

    #[test]
    fn split_rows_takes_exactly_the_named_rows() {
        let set = VectorSet::new(2, (0..10).map(|x| x as f32).collect()).unwrap();
        let (kept, taken) = set.split_rows(&[1, 3]);
        assert_eq!(kept.data, [0.0, 1.0, 4.0, 5.0, 8.0, 9.0]);
        assert_eq!(taken.data, [2.0, 3.0, 6.0, 7.0]);
        let picked = sample_indices(100, 10, 1);
        assert_eq!(picked.len(), 10);
        assert!(picked.windows(2).all(|w| w[0] < w[1]));
    }
}
