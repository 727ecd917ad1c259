//! f32 matmul `x · wᵀ` for prefill, over a weight packed into panels of 16 output columns.
//!
//! A prompt of a few dozen tokens gives a GEMM of few rows (m = 32) and a weight read once:
//! general GEMMs pack the weight at every call and size their tiles for large m (gemm 0.19's
//! AVX-512 tile is 48 rows), so they reached about half of this CPU's FLOP peak there. Here
//! the weight is packed once, when it is dequantised: for each group of 16 output columns,
//! for each k, the 16 weights side by side, so one tile step is three vector loads, eight
//! broadcasts of activations and 24 FMAs into registers (8 rows × 48 columns). Each output is
//! one dot product summed in k order with FMA.

use crate::Isa;

/// Output columns per panel: one AVX-512 vector of f32, two of AVX2.
pub const PANEL: usize = 16;

/// A weight of `n` rows (output columns of the product) and `k` columns, packed: panel `p`
/// holds, for each `kk`, weights `w[16p .. 16p + 16][kk]` side by side (zero past `n`).
#[derive(PartialEq)]
pub struct PackedWeight {
    data: Vec<f32>,
    n: usize,
    k: usize,
}

impl PackedWeight {
    /// Packs rows `w[0..n]` of a row-major `n × k` weight.
    pub fn pack(w: &[f32], n: usize, k: usize) -> PackedWeight {
        assert!(
            w.len() >= n * k,
            "weight has {} values, not {n} × {k}",
            w.len()
        );
        PackedWeight::from_panels(n, k, |data, panel_len| {
            for (p, panel) in data.chunks_exact_mut(panel_len).enumerate() {
                pack_panel(panel, k, panel_rows(n, p), |r, values| {
                    values.copy_from_slice(&w[(p * PANEL + r) * k..][..k])
                });
            }
        })
    }

    /// An `n × k` weight whose panels `fill(data, panel_len)` writes: `data` holds the
    /// panels one after another (zeroed), `panel_len` values each, panel `p` being rows
    /// `16p ..` as [`pack_panel`] lays them out. The caller may fill panels in parallel.
    pub fn from_panels(n: usize, k: usize, fill: impl FnOnce(&mut [f32], usize)) -> PackedWeight {
        let mut data = vec![0f32; n.div_ceil(PANEL) * k * PANEL];
        fill(&mut data, k * PANEL);
        PackedWeight { data, n, k }
    }

    pub fn rows(&self) -> usize {
        self.n
    }

    pub fn cols(&self) -> usize {
        self.k
    }

    pub fn panels(&self) -> usize {
        self.n.div_ceil(PANEL)
    }

    /// Bytes held.
    pub fn bytes(&self) -> usize {
        self.data.len() * 4
    }
}

/// Rows of an `n`-row weight in panel `p`: 16, fewer in a last panel.
pub fn panel_rows(n: usize, p: usize) -> usize {
    n.saturating_sub(p * PANEL).min(PANEL)
}

/// Writes one panel (`k × 16` values: for each `kk`, the 16 rows' weights side by side) from
/// its first `rows` rows, `row(r, values)` writing row `r`'s `k` values; lanes from `rows` on
/// keep what `panel` held (zero in [`PackedWeight::from_panels`]).
pub fn pack_panel(
    panel: &mut [f32],
    k: usize,
    rows: usize,
    mut row: impl FnMut(usize, &mut [f32]),
) {
    assert!(
        panel.len() == k * PANEL && rows <= PANEL,
        "a panel is {k} × {PANEL}"
    );
    let mut values = vec![0f32; k];
    for r in 0..rows {
        row(r, &mut values);
        for (kk, &v) in values.iter().enumerate() {
            panel[kk * PANEL + r] = v;
        }
    }
}

/// True when this CPU runs a packed kernel: x86-64 with AVX-512F, or with AVX2 and FMA
/// (INFERBENCH_NO_AVX512 picks the latter, as for every kernel of this crate, `crate::isa`).
pub fn available() -> bool {
    crate::isa() != Isa::Portable
}

/// `out[r][c - 16 × panels.start] = Σ_kk x[r][kk] · w[c][kk]` for the `m` rows of `x`
/// (row-major, `m × k`) and the output columns of `panels` (a range of panel indices); `out`
/// is row-major with `out_stride` values a row, of which this writes only the columns of
/// those panels that exist (`c < n`). Each output is one chain of FMAs in k order, so every
/// instruction set gives the same bits; scalar code where the CPU has neither AVX2 nor AVX-512.
///
/// # Safety
/// `out` must be valid for writes of rows `0..m` at stride `out_stride`, columns
/// `0..16 × panels.len()` clipped to the weight's `n`, and nothing else may access them
/// during the call. `x` must hold `m × k` values.
pub unsafe fn matmul_panels(
    x: &[f32],
    m: usize,
    w: &PackedWeight,
    panels: std::ops::Range<usize>,
    out: *mut f32,
    out_stride: usize,
) {
    // SAFETY: the caller's contract, passed on.
    unsafe { matmul_panels_on(crate::isa(), x, m, w, panels, out, out_stride) }
}

/// [`matmul_panels`] with the kernel of `choice`, or the best below it that this CPU has: for
/// tests and benches of each kernel.
///
/// # Safety
/// As [`matmul_panels`].
pub unsafe fn matmul_panels_on(
    choice: Isa,
    x: &[f32],
    m: usize,
    w: &PackedWeight,
    panels: std::ops::Range<usize>,
    out: *mut f32,
    out_stride: usize,
) {
    assert!(
        x.len() >= m * w.k,
        "x has {} values, not {m} × {}",
        x.len(),
        w.k
    );
    assert!(panels.end <= w.panels(), "panels past the weight");
    // SAFETY: each kernel runs only where the CPU has its features; the bounds are the
    // caller's contract above.
    #[cfg(target_arch = "x86_64")]
    match choice.min(crate::isa()) {
        Isa::Avx512 => return unsafe { avx512::matmul_panels(x, m, w, panels, out, out_stride) },
        Isa::Avx2 => return unsafe { avx2::matmul_panels(x, m, w, panels, out, out_stride) },
        Isa::Portable => {}
    }
    for r in 0..m {
        let xr = &x[r * w.k..][..w.k];
        for p in panels.clone() {
            for lane in 0..panel_rows(w.n, p) {
                let mut sum = 0f32;
                for (kk, &xv) in xr.iter().enumerate() {
                    sum = xv.mul_add(w.data[(p * w.k + kk) * PANEL + lane], sum);
                }
                // SAFETY: in the caller's output region.
                unsafe { *out.add(r * out_stride + (p - panels.start) * PANEL + lane) = sum };
            }
        }
    }
}

/// One tile of a kernel's walk: `rows` rows of x from `x` times `panels` consecutive panels
/// from `w`, into `out` (row stride `out_stride`); the last panel's columns from `last` on are
/// not written; `prefetch` on the first row block, which streams the panels from memory.
#[cfg(target_arch = "x86_64")]
#[derive(Clone, Copy)]
struct Tile {
    x: *const f32,
    w: *const f32,
    out: *mut f32,
    rows: usize,
    panels: usize,
    last: usize,
    prefetch: bool,
}

/// The walk both kernels share: the panels `GROUP` at a time, each group's rows of x
/// `TILE_ROWS` at a time, `tile` called per block. Inlined into each kernel's build.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn walk_panels<const TILE_ROWS: usize, const GROUP: usize>(
    x: &[f32],
    m: usize,
    w: &PackedWeight,
    panels: std::ops::Range<usize>,
    out: *mut f32,
    out_stride: usize,
    mut tile: impl FnMut(Tile),
) {
    let mut p = panels.start;
    while p < panels.end {
        let np = GROUP.min(panels.end - p);
        let mut r = 0;
        while r < m {
            let rows = TILE_ROWS.min(m - r);
            // Pointers only, not dereferenced here: the kernels read and write through them
            // within the bounds `matmul_panels_on` checked and its caller promised.
            tile(Tile {
                x: x.as_ptr().wrapping_add(r * w.k),
                w: w.data.as_ptr().wrapping_add(p * w.k * PANEL),
                out: out.wrapping_add((p - panels.start) * PANEL + r * out_stride),
                rows,
                panels: np,
                last: panel_rows(w.n, p + np - 1),
                prefetch: r == 0,
            });
            r += rows;
        }
        p += np;
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use super::{PackedWeight, PANEL};
    use std::arch::x86_64::*;

    /// Rows a tile covers at most: 6 rows × 2 vectors of 8 columns are 12 accumulators,
    /// which with the panel's two vectors and a broadcast fill 15 of the 16 registers.
    const TILE_ROWS: usize = 6;
    /// As for AVX-512: how far ahead (in k steps) the first row block prefetches its panel.
    const PREFETCH_K: usize = 64;

    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn matmul_panels(
        x: &[f32],
        m: usize,
        w: &PackedWeight,
        panels: std::ops::Range<usize>,
        out: *mut f32,
        out_stride: usize,
    ) {
        let k = w.k;
        super::walk_panels::<TILE_ROWS, 1>(x, m, w, panels, out, out_stride, |t| {
            let (x, w, o, last, fetch) = (t.x, t.w, t.out, t.last, t.prefetch);
            // SAFETY: this function's features are the tile's; the pointers are in bounds.
            unsafe {
                match t.rows {
                    1 => tile::<1>(x, k, w, o, out_stride, last, fetch),
                    2 => tile::<2>(x, k, w, o, out_stride, last, fetch),
                    3 => tile::<3>(x, k, w, o, out_stride, last, fetch),
                    4 => tile::<4>(x, k, w, o, out_stride, last, fetch),
                    5 => tile::<5>(x, k, w, o, out_stride, last, fetch),
                    _ => tile::<6>(x, k, w, o, out_stride, last, fetch),
                }
            }
        })
    }

    /// `MR` rows of x times one panel, into `MR × 16` outputs (columns from `last` on are not
    /// written).
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn tile<const MR: usize>(
        x: *const f32,
        k: usize,
        w: *const f32,
        out: *mut f32,
        out_stride: usize,
        last: usize,
        prefetch: bool,
    ) {
        let mut acc = [[_mm256_setzero_ps(); 2]; MR];
        let step = |kk: usize, acc: &mut [[__m256; 2]; MR]| {
            let low = _mm256_loadu_ps(w.add(kk * PANEL));
            let high = _mm256_loadu_ps(w.add(kk * PANEL + 8));
            for (i, row) in acc.iter_mut().enumerate() {
                let a = _mm256_set1_ps(*x.add(i * k + kk));
                row[0] = _mm256_fmadd_ps(a, low, row[0]);
                row[1] = _mm256_fmadd_ps(a, high, row[1]);
            }
        };
        if prefetch {
            for kk in 0..k {
                let ahead = w.wrapping_add((kk + PREFETCH_K) * PANEL);
                _mm_prefetch::<_MM_HINT_T0>(ahead as *const i8);
                step(kk, &mut acc);
            }
        } else {
            for kk in 0..k {
                step(kk, &mut acc);
            }
        }
        for (i, row) in acc.iter().enumerate() {
            let dst = out.add(i * out_stride);
            if last == PANEL {
                _mm256_storeu_ps(dst, row[0]);
                _mm256_storeu_ps(dst.add(8), row[1]);
            } else {
                let mut values = [0f32; PANEL];
                _mm256_storeu_ps(values.as_mut_ptr(), row[0]);
                _mm256_storeu_ps(values.as_mut_ptr().add(8), row[1]);
                std::ptr::copy_nonoverlapping(values.as_ptr(), dst, last);
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use super::{PackedWeight, PANEL};
    use std::arch::x86_64::*;

    /// Rows a tile covers at most, and panels (of 16 columns) side by side.
    const TILE_ROWS: usize = 8;
    const TILE_PANELS: usize = 3;
    /// How far ahead (in k steps of 64 bytes a panel) the first row block prefetches the
    /// weight it streams from memory; later row blocks find it in L2.
    const PREFETCH_K: usize = 64;

    #[target_feature(enable = "avx512f")]
    pub unsafe fn matmul_panels(
        x: &[f32],
        m: usize,
        w: &PackedWeight,
        panels: std::ops::Range<usize>,
        out: *mut f32,
        out_stride: usize,
    ) {
        let k = w.k;
        super::walk_panels::<TILE_ROWS, TILE_PANELS>(x, m, w, panels, out, out_stride, |t| {
            let (x, w, o, last, fetch) = (t.x, t.w, t.out, t.last, t.prefetch);
            // One monomorphised tile per (rows, panels): the accumulators stay in registers
            // only when both are constants.
            macro_rules! go {
                ($($mr:literal)*) => {
                    match (t.rows, t.panels) {
                        $(
                            ($mr, 3) => tile::<$mr, 3>(x, k, w, o, out_stride, last, fetch),
                            ($mr, 2) => tile::<$mr, 2>(x, k, w, o, out_stride, last, fetch),
                            ($mr, _) => tile::<$mr, 1>(x, k, w, o, out_stride, last, fetch),
                        )*
                        _ => unreachable!("tile rows are 1..=8"),
                    }
                };
            }
            // SAFETY: this function's features are the tile's; the pointers are in bounds.
            unsafe { go!(1 2 3 4 5 6 7 8) }
        })
    }

    /// `MR` rows of x times `NP` consecutive panels, into `MR × 16·NP` outputs (the last
    /// panel's columns past `last` are not written).
    #[inline]
    #[target_feature(enable = "avx512f")]
    unsafe fn tile<const MR: usize, const NP: usize>(
        x: *const f32,
        k: usize,
        w: *const f32,
        out: *mut f32,
        out_stride: usize,
        last: usize,
        prefetch: bool,
    ) {
        let panel_len = k * PANEL;
        let mut acc = [[_mm512_setzero_ps(); NP]; MR];
        let step = |kk: usize, acc: &mut [[__m512; NP]; MR]| {
            let mut wv = [_mm512_setzero_ps(); NP];
            for (j, v) in wv.iter_mut().enumerate() {
                *v = _mm512_loadu_ps(w.add(j * panel_len + kk * PANEL));
            }
            for (i, row) in acc.iter_mut().enumerate() {
                let a = _mm512_set1_ps(*x.add(i * k + kk));
                for (j, v) in row.iter_mut().enumerate() {
                    *v = _mm512_fmadd_ps(a, wv[j], *v);
                }
            }
        };
        if prefetch {
            for kk in 0..k {
                for j in 0..NP {
                    // wrapping: past the panel's end near the last k steps (a prefetch
                    // of any address is harmless; forming it with `add` would not be).
                    let ahead = w.wrapping_add(j * panel_len + (kk + PREFETCH_K) * PANEL);
                    _mm_prefetch::<_MM_HINT_T0>(ahead as *const i8);
                }
                step(kk, &mut acc);
            }
        } else {
            for kk in 0..k {
                step(kk, &mut acc);
            }
        }
        let tail: __mmask16 = if last >= PANEL {
            0xffff
        } else {
            (1u16 << last) - 1
        };
        for (i, row) in acc.iter().enumerate() {
            for (j, v) in row.iter().enumerate() {
                let dst = out.add(i * out_stride + j * PANEL);
                if j + 1 == NP {
                    _mm512_mask_storeu_ps(dst, tail, *v);
                } else {
                    _mm512_storeu_ps(dst, *v);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(len: usize, seed: u32) -> Vec<f32> {
        let mut s = seed.wrapping_mul(2654435761).max(1);
        (0..len)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 17;
                s ^= s << 5;
                (s % 2001) as f32 / 1000.0 - 1.0
            })
            .collect()
    }

    fn reference(x: &[f32], w: &[f32], m: usize, n: usize, k: usize) -> Vec<f64> {
        let mut out = vec![0f64; m * n];
        for r in 0..m {
            for c in 0..n {
                out[r * n + c] = (0..k)
                    .map(|kk| x[r * k + kk] as f64 * w[c * k + kk] as f64)
                    .sum();
            }
        }
        out
    }

    /// Panels filled one by one (in any order, as the model fills them in parallel) equal
    /// the weight packed whole; lanes past the last row are zero.
    #[test]
    fn panels_filled_apart_equal_the_weight_packed_whole() {
        for (n, k) in [(1, 3), (16, 5), (37, 9)] {
            let w = values(n * k, 3 + n as u32);
            let whole = PackedWeight::pack(&w, n, k);
            let apart = PackedWeight::from_panels(n, k, |data, panel_len| {
                for (p, panel) in data.chunks_exact_mut(panel_len).enumerate().rev() {
                    pack_panel(panel, k, panel_rows(n, p), |r, values| {
                        values.copy_from_slice(&w[(p * PANEL + r) * k..][..k])
                    });
                }
            });
            assert!(apart == whole, "{n} × {k}");
            assert_eq!(whole.bytes(), n.div_ceil(PANEL) * PANEL * k * 4);
            let last = n.div_ceil(PANEL) - 1;
            for kk in 0..k {
                for lane in panel_rows(n, last)..PANEL {
                    assert_eq!(whole.data[(last * k + kk) * PANEL + lane], 0.0);
                }
            }
        }
    }

    /// Every tile edge: rows 1..=17 (full and partial row blocks of 6 and 8), columns that end
    /// inside a panel and groups of 1, 2 and 3 panels, k not a multiple of anything, the
    /// panels whole or split in two calls; on every instruction set this CPU has, every output
    /// written, within rounding of an f64 reference and the same bits on each.
    #[test]
    fn matches_the_reference_at_every_edge() {
        for (m, n, k) in [
            (1, 1, 1),
            (3, 16, 7),
            (8, 48, 64),
            (9, 50, 33),
            (17, 83, 129),
        ] {
            let x = values(m * k, 1 + m as u32);
            let w = values(n * k, 7 + n as u32);
            let packed = PackedWeight::pack(&w, n, k);
            let want = reference(&x, &w, m, n, k);
            let split = packed.panels() / 2;
            // Whole, and in two calls split at `split` (the first empty when there is one panel).
            for parts in [
                [0..0, 0..packed.panels()],
                [0..split, split..packed.panels()],
            ] {
                let mut by_isa = Vec::new();
                for isa in Isa::ALL {
                    let mut out = vec![f32::NAN; m * n];
                    for part in parts.clone() {
                        // SAFETY: `out` is m × n; each part writes its own columns.
                        unsafe {
                            matmul_panels_on(
                                isa,
                                &x,
                                m,
                                &packed,
                                part.clone(),
                                out.as_mut_ptr().add(part.start * PANEL),
                                n,
                            )
                        };
                    }
                    for (i, (&got, &exact)) in out.iter().zip(&want).enumerate() {
                        let tolerance = 1e-5 * k as f64;
                        assert!(
                            (got as f64 - exact).abs() <= tolerance,
                            "{isa:?} {m}×{n}×{k} at {i}: {got} vs {exact}"
                        );
                    }
                    by_isa.push(out);
                }
                // One FMA chain in k order per output, whatever the instruction set.
                for out in &by_isa[1..] {
                    assert!(
                        out.iter()
                            .zip(&by_isa[0])
                            .all(|(a, b)| a.to_bits() == b.to_bits()),
                        "{m}×{n}×{k}: the instruction sets disagree"
                    );
                }
            }
        }
    }
}
