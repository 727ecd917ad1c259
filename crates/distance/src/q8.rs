//! Q8_0 weights times activations quantised to Q8_0: the matmul of a decode step.
//!
//! The weights stay in GGML's Q8_0 layout as candle holds them (per block of 32: an f16 scale,
//! then 32 signed bytes), so nothing is copied. The activations are quantised once per call
//! exactly as candle and llama.cpp do (scale = max |x| / 127, rounded through f16), so each
//! block's integer dot product is the same as theirs; only the order of the final f32 sum
//! differs.
//!
//! Why a kernel of our own: candle 0.11's Q8_0 dot product is AVX2 (32 bytes a step, two f16
//! conversions per block through function calls) and reached 40% of the memory bandwidth in a
//! decode step. The AVX2 kernel here (for CPUs without AVX-512 VNNI) does the same arithmetic
//! with four weight rows a tile and the scales converted inline. With AVX-512 VNNI, two blocks
//! go through one `vpdpbusd`, four weight rows share each activation load and up to four
//! activation rows share each weight load (batched decode), and the scales convert with one
//! instruction. `vpdpbusd` multiplies unsigned by
//! signed bytes: the weights are flipped to unsigned (`w ^ 0x80` = w + 128) and the excess,
//! 128 × the sum of the activation bytes in each 4-byte lane, is taken off up front by starting
//! each lane's sum at minus that amount.

/// Bytes of one Q8_0 block: an f16 scale and 32 quants.
pub const BLOCK_BYTES: usize = 34;
/// Values per Q8_0 block.
pub const BLOCK: usize = 32;

/// Activation rows quantised to Q8_0, laid out for the kernel: per row, the quants padded to
/// whole block pairs, each 4-byte lane's correction (-128 × its sum), and each block's scale
/// repeated over its 8 lanes.
pub struct Activations {
    rows: usize,
    blocks: usize,
    /// Blocks per row rounded up to even: the kernel takes blocks two at a time.
    padded: usize,
    quants: Vec<i8>,
    corrections: Vec<i32>,
    scales: Vec<f32>,
}

impl Activations {
    /// `x` holds `rows` rows of `k` values, `k` a multiple of 32.
    pub fn quantise(x: &[f32], rows: usize, k: usize) -> Activations {
        assert!(
            k.is_multiple_of(BLOCK),
            "row width {k} is not a multiple of {BLOCK}"
        );
        assert_eq!(
            x.len(),
            rows * k,
            "activations: {} values for {rows}x{k}",
            x.len()
        );
        let blocks = k / BLOCK;
        let padded = blocks.next_multiple_of(2);
        let mut quants = vec![0i8; rows * padded * BLOCK];
        let mut corrections = vec![0i32; rows * padded * BLOCK / 4];
        let mut scales = vec![0f32; rows * padded * 8];
        let mut fill = |x: &[f32]| {
            for (row, values) in x.chunks_exact(k).enumerate() {
                for (b, block) in values.chunks_exact(BLOCK).enumerate() {
                    let at = row * padded + b;
                    let q = &mut quants[at * BLOCK..(at + 1) * BLOCK];
                    let d = quantise_block(block, q);
                    scales[at * 8..(at + 1) * 8].fill(d);
                    for (lane, c) in corrections[at * 8..(at + 1) * 8].iter_mut().enumerate() {
                        let sum: i32 = q[lane * 4..lane * 4 + 4].iter().map(|&v| v as i32).sum();
                        *c = -128 * sum;
                    }
                }
            }
        };
        // Compiled for the kernel's CPU where it runs, so the rounding vectorises: in the
        // baseline x86-64 build each `round` is a libm call (2 µs for 576 values).
        // SAFETY: each kernel's features were detected by `kernel()`.
        #[cfg(target_arch = "x86_64")]
        match kernel() {
            Some(Kernel::Vnni) => unsafe { vnni::with_features(|| fill(x)) },
            Some(Kernel::Avx2) => unsafe { avx2::with_features(|| fill(x)) },
            None => fill(x),
        }
        #[cfg(not(target_arch = "x86_64"))]
        fill(x);
        Activations {
            rows,
            blocks,
            padded,
            quants,
            corrections,
            scales,
        }
    }

    /// One block's dot product with a weight block, as the kernel sums it (for the scalar path).
    fn block_dot(&self, row: usize, b: usize, weight_quants: &[i8]) -> i32 {
        let at = row * self.padded + b;
        self.quants[at * BLOCK..(at + 1) * BLOCK]
            .iter()
            .zip(weight_quants)
            .map(|(&x, &w)| x as i32 * w as i32)
            .sum()
    }
}

/// Candle's (and GGML's) Q8_0 quantisation of one block: the quants into `q`, the scale as
/// f32 after its round trip through f16 (what the stored block holds).
#[inline(always)]
fn quantise_block(x: &[f32], q: &mut [i8]) -> f32 {
    // Lane by lane, so that the maximum (exact in any order) vectorises.
    let mut lanes = [0f32; 16];
    for part in x.chunks_exact(16) {
        for (m, v) in lanes.iter_mut().zip(part) {
            *m = m.max(v.abs());
        }
    }
    let amax = lanes.iter().fold(0f32, |m, &v| m.max(v));
    let d = amax / 127.0;
    let inverse = if d != 0.0 { 1.0 / d } else { 0.0 };
    for (q, &v) in q.iter_mut().zip(x) {
        *q = round_half_away(v * inverse) as i32 as i8;
    }
    half::f16::from_f32(d).to_f32()
}

/// `f32::round` (half way rounds away from zero) from a truncation and an exact fraction, which
/// vectorise; `round` itself is a libm call or a scalar instruction per value.
#[inline(always)]
fn round_half_away(y: f32) -> f32 {
    let whole = y.trunc();
    if (y - whole).abs() >= 0.5 {
        whole + 1f32.copysign(y)
    } else {
        whole
    }
}

/// The vector kernels of this module, best first.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Kernel {
    /// AVX-512 with VNNI: `vpdpbusd` over two blocks at a time.
    Vnni,
    /// AVX2 with FMA and F16C: a block at a time through `vpmaddubsw`, as GGML's AVX2 code.
    Avx2,
}

/// The kernel this CPU runs, if any (INFERBENCH_NO_AVX512 leaves AVX2 at most, as for every
/// kernel of this crate); where none, callers keep their own path.
pub fn kernel() -> Option<Kernel> {
    static DETECTED: std::sync::OnceLock<Option<Kernel>> = std::sync::OnceLock::new();
    *DETECTED.get_or_init(|| {
        #[cfg(target_arch = "x86_64")]
        {
            // The AVX2 kernel's features; the VNNI one is picked only with them too, so that
            // asking for AVX2 on a VNNI CPU (tests) is always sound.
            let avx2 = std::arch::is_x86_feature_detected!("avx2")
                && std::arch::is_x86_feature_detected!("fma")
                && std::arch::is_x86_feature_detected!("f16c");
            if crate::isa() == crate::Isa::Avx512
                && std::arch::is_x86_feature_detected!("avx512bw")
                && std::arch::is_x86_feature_detected!("avx512vnni")
                && avx2
            {
                return Some(Kernel::Vnni);
            }
            if avx2 {
                return Some(Kernel::Avx2);
            }
        }
        None
    })
}

/// Whether this CPU runs one of the vector kernels.
pub fn available() -> bool {
    kernel().is_some()
}

/// Values to Q8_0 blocks (an f16 scale, then 32 quants, 34 bytes a block) into `out`, byte
/// for byte as candle's and GGML's weight quantisation writes them: the repack of a GGUF's
/// Q4_1 weights at load. `x` holds whole blocks.
pub fn quantise_blocks(x: &[f32], out: &mut [u8]) {
    assert!(
        x.len().is_multiple_of(BLOCK) && out.len() == x.len() / BLOCK * BLOCK_BYTES,
        "{} values into {} bytes of Q8_0 blocks",
        x.len(),
        out.len()
    );
    // As for the activations: compiled for the kernel's CPU, `round` is an instruction
    // instead of a libm call per value (candle's loop spent 0.5 s of SmolLM2's load in it).
    // SAFETY: each kernel's features were detected by `kernel()`.
    #[cfg(target_arch = "x86_64")]
    match kernel() {
        Some(Kernel::Vnni) => return unsafe { vnni::with_features(|| quantise_all(x, out)) },
        Some(Kernel::Avx2) => return unsafe { avx2::with_features(|| quantise_all(x, out)) },
        None => {}
    }
    quantise_all(x, out);
}

/// The loop of [`quantise_blocks`], inlined into the build for each CPU.
#[inline(always)]
fn quantise_all(x: &[f32], out: &mut [u8]) {
    for (block, bytes) in x.chunks_exact(BLOCK).zip(out.chunks_exact_mut(BLOCK_BYTES)) {
        let mut q = [0i8; BLOCK];
        let d = quantise_block(block, &mut q);
        bytes[..2].copy_from_slice(&half::f16::from_f32(d).to_le_bytes());
        for (b, q) in bytes[2..].iter_mut().zip(q) {
            *b = q as u8;
        }
    }
}

/// One row of Q8_0 blocks to f32: each quant times its block's scale, as candle and GGML
/// dequantise (one rounding per value, so the values equal theirs bit for bit).
pub fn dequantize_row(blocks: &[u8], out: &mut [f32]) {
    assert_eq!(
        blocks.len() / BLOCK_BYTES * BLOCK,
        out.len(),
        "{} bytes of Q8_0 blocks for {} values",
        blocks.len(),
        out.len()
    );
    for (block, values) in blocks
        .chunks_exact(BLOCK_BYTES)
        .zip(out.chunks_exact_mut(BLOCK))
    {
        let d = half::f16::from_le_bytes([block[0], block[1]]).to_f32();
        for (v, &q) in values.iter_mut().zip(&block[2..]) {
            *v = q as i8 as f32 * d;
        }
    }
}

/// Dot products of consecutive Q8_0 weight rows with every activation row.
///
/// `weights` holds whole rows (`k / 32` blocks of 34 bytes each) and `out` gets, for each
/// weight row r and activation row i, `out[r * rows + i]`. Uses this CPU's [`kernel`], else a
/// scalar loop (slow: for tests and other CPUs' correctness only).
pub fn matmul_rows(weights: &[u8], acts: &Activations, out: &mut [f32]) {
    matmul_rows_on(kernel(), weights, acts, out)
}

/// [`matmul_rows`] with `choice` of kernel where this CPU has it (else the scalar loop): for
/// tests and benches of each kernel.
pub fn matmul_rows_on(choice: Option<Kernel>, weights: &[u8], acts: &Activations, out: &mut [f32]) {
    let row_bytes = acts.blocks * BLOCK_BYTES;
    assert!(
        row_bytes > 0 && weights.len().is_multiple_of(row_bytes),
        "weights: {} bytes is not whole rows of {row_bytes}",
        weights.len()
    );
    let weight_rows = weights.len() / row_bytes;
    assert_eq!(out.len(), weight_rows * acts.rows, "output size");
    // SAFETY: a kernel runs only where `kernel()` detected its features (Vnni implies what
    // Avx2 needs); sizes checked above.
    #[cfg(target_arch = "x86_64")]
    match (choice, kernel()) {
        (Some(Kernel::Vnni), Some(Kernel::Vnni)) => {
            return unsafe { vnni::matmul_rows(weights, acts, out, weight_rows) }
        }
        (Some(_), Some(_)) => return unsafe { avx2::matmul_rows(weights, acts, out, weight_rows) },
        _ => {}
    }
    matmul_rows_scalar(weights, acts, out);
}

/// The reference: each block's integer dot product times both scales, summed in block order.
pub fn matmul_rows_scalar(weights: &[u8], acts: &Activations, out: &mut [f32]) {
    let row_bytes = acts.blocks * BLOCK_BYTES;
    for (r, row) in weights.chunks_exact(row_bytes).enumerate() {
        for i in 0..acts.rows {
            let mut sum = 0f32;
            for (b, block) in row.chunks_exact(BLOCK_BYTES).enumerate() {
                let dw = half::f16::from_le_bytes([block[0], block[1]]).to_f32();
                let quants: Vec<i8> = block[2..].iter().map(|&v| v as i8).collect();
                let dx = acts.scales[(i * acts.padded + b) * 8];
                sum += acts.block_dot(i, b, &quants) as f32 * (dw * dx);
            }
            out[r * acts.rows + i] = sum;
        }
    }
}

/// Weight rows per tile of both kernels: four independent sums hide the FMA latency at batch 1.
const TILE_ROWS: usize = 4;
/// How far ahead of each row's reads the kernels prefetch, in bytes. The hardware prefetcher
/// alone left a decode step's matmuls at 12 GB/s on one core of the EPYC VM (a plain read: 34);
/// 2 KB ahead gave 15, 8 KB 23, 16-32 KB 20 (the bytes interleave four rows, so 8 KB is about a
/// tile and a half of SmolLM2's rows ahead).
const PREFETCH: usize = 8192;

/// The walk both kernels share: weight rows [`TILE_ROWS`] at a time (a short last tile repeats
/// its last row: the same sums, written once), activation rows `ACTS` at a time;
/// `tile(rows, first, sums)` fills `sums[row][act]` for the activation rows from `first`, and
/// the walk writes them to `out[row * acts.rows + act]`. Inlined into each kernel's build.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn walk_tiles<const ACTS: usize>(
    weights: &[u8],
    acts: &Activations,
    out: &mut [f32],
    weight_rows: usize,
    mut tile: impl FnMut(&[*const u8; TILE_ROWS], usize, &mut [[f32; ACTS]; TILE_ROWS]),
) {
    use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
    let row_bytes = acts.blocks * BLOCK_BYTES;
    // The tiles prefetch PREFETCH bytes ahead of themselves; the first PREFETCH bytes are
    // asked for here, all at once, rather than waiting on the hardware's ramp (a decode step's
    // matrices are small: a few hundred KB per thread).
    for line in (0..weights.len().min(PREFETCH)).step_by(64) {
        // SAFETY: a prefetch of an address inside `weights`; SSE is baseline on x86-64.
        unsafe { _mm_prefetch::<_MM_HINT_T0>(weights.as_ptr().add(line) as *const i8) };
    }
    let mut r = 0;
    while r < weight_rows {
        // SAFETY: row (r + j), clamped below weight_rows, starts inside `weights`, which holds
        // weight_rows whole rows (checked by `matmul_rows_on`).
        let rows: [*const u8; TILE_ROWS] = std::array::from_fn(|j| unsafe {
            weights
                .as_ptr()
                .add((r + j).min(weight_rows - 1) * row_bytes)
        });
        let valid = (weight_rows - r).min(TILE_ROWS);
        let mut i = 0;
        while i < acts.rows {
            let mut sums = [[0f32; ACTS]; TILE_ROWS];
            tile(&rows, i, &mut sums);
            let n = (acts.rows - i).min(ACTS);
            for (j, row_sums) in sums.iter().enumerate().take(valid) {
                let at = (r + j) * acts.rows + i;
                out[at..at + n].copy_from_slice(&row_sums[..n]);
            }
            i += ACTS;
        }
        r += TILE_ROWS;
    }
}

#[cfg(target_arch = "x86_64")]
mod vnni {
    use super::{Activations, BLOCK, BLOCK_BYTES, PREFETCH, TILE_ROWS as ROWS};
    use std::arch::x86_64::*;

    /// Activation rows per tile: 4 × 4 accumulators leave registers for the loads.
    const ACTS: usize = 4;

    /// Runs `f` with the kernel's features enabled, so what it inlines is compiled for them.
    #[target_feature(enable = "avx512f,avx512bw,avx512vnni,f16c")]
    pub unsafe fn with_features<T>(f: impl FnOnce() -> T) -> T {
        f()
    }

    #[target_feature(enable = "avx512f,avx512bw,avx512vnni,f16c")]
    pub unsafe fn matmul_rows(
        weights: &[u8],
        acts: &Activations,
        out: &mut [f32],
        weight_rows: usize,
    ) {
        super::walk_tiles::<ACTS>(weights, acts, out, weight_rows, |rows, i, sums| {
            // SAFETY: this function's features are the tiles'; `rows` point at whole rows.
            unsafe {
                match acts.rows - i {
                    1 => tile::<1>(rows, acts, i, sums),
                    2 => tile::<2>(rows, acts, i, sums),
                    3 => tile::<3>(rows, acts, i, sums),
                    _ => tile::<4>(rows, acts, i, sums),
                }
            }
        })
    }

    /// ROWS weight rows times M activation rows starting at `first`, into `sums[row][act]`.
    #[target_feature(enable = "avx512f,avx512bw,avx512vnni,f16c")]
    unsafe fn tile<const M: usize>(
        rows: &[*const u8; ROWS],
        acts: &Activations,
        first: usize,
        sums: &mut [[f32; ACTS]; ROWS],
    ) {
        let mut acc = [[_mm512_setzero_ps(); M]; ROWS];
        let acts = ActRows {
            quants: acts.quants.as_ptr().add(first * acts.padded * BLOCK),
            corrections: acts.corrections.as_ptr().add(first * acts.padded * 8),
            scales: acts.scales.as_ptr().add(first * acts.padded * 8),
            stride: acts.padded * BLOCK,
            pairs: acts.blocks / 2,
            odd: acts.blocks % 2 == 1,
        };
        for p in 0..acts.pairs {
            for (row, acc_row) in rows.iter().zip(acc.iter_mut()) {
                let block = row.add(p * 2 * BLOCK_BYTES);
                // wrapping_add: past the last rows this points beyond the weights, which a
                // prefetch may (it never faults) but pointer arithmetic may not.
                _mm_prefetch::<_MM_HINT_T0>(block.wrapping_add(PREFETCH) as *const i8);
                let (w, dw) = weight_pair(block, true);
                accumulate(acc_row, w, dw, &acts, p);
            }
        }
        if acts.odd {
            // The odd last block: its pair's second half is zero on both sides.
            for (row, acc_row) in rows.iter().zip(acc.iter_mut()) {
                let (w, dw) = weight_pair(row.add(acts.pairs * 2 * BLOCK_BYTES), false);
                accumulate(acc_row, w, dw, &acts, acts.pairs);
            }
        }
        for (acc_row, sums_row) in acc.iter().zip(sums.iter_mut()) {
            for (acc, sum) in acc_row.iter().zip(sums_row.iter_mut()) {
                *sum = _mm512_reduce_add_ps(*acc);
            }
        }
    }

    /// A tile's activation rows, from its first: quants, lane corrections and block scales,
    /// `stride` bytes (and i32/f32 lanes × 4) apart.
    struct ActRows {
        quants: *const i8,
        corrections: *const i32,
        scales: *const f32,
        stride: usize,
        pairs: usize,
        odd: bool,
    }

    /// Two weight blocks' quants as unsigned bytes (`w ^ 0x80`) and their scales spread over
    /// lanes 0-7 and 8-15; with `both` false, the first block alone (the second half zero).
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vnni,f16c")]
    unsafe fn weight_pair(block: *const u8, both: bool) -> (__m512i, __m512) {
        let flip = _mm512_set1_epi8(0x80u8 as i8);
        let low = _mm256_loadu_si256(block.add(2) as *const __m256i);
        let mut d = (block as *const u16).read_unaligned() as u32;
        let high = if both {
            d |= ((block.add(BLOCK_BYTES) as *const u16).read_unaligned() as u32) << 16;
            _mm256_loadu_si256(block.add(BLOCK_BYTES + 2) as *const __m256i)
        } else {
            // 0x80 flips to 0: the padding contributes no products.
            _mm256_set1_epi8(0x80u8 as i8)
        };
        let w = _mm512_inserti64x4::<1>(_mm512_castsi256_si512(low), high);
        let halves = _mm512_set_epi32(1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0);
        let scales = _mm512_castps128_ps512(_mm_cvtph_ps(_mm_cvtsi32_si128(d as i32)));
        (
            _mm512_xor_si512(w, flip),
            _mm512_permutexvar_ps(halves, scales),
        )
    }

    /// `acc[m]` += pair `p` of activation row m · the weight pair `w` (scales `dw`).
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vnni,f16c")]
    unsafe fn accumulate<const M: usize>(
        acc: &mut [__m512; M],
        w: __m512i,
        dw: __m512,
        acts: &ActRows,
        p: usize,
    ) {
        for (m, acc) in acc.iter_mut().enumerate() {
            let lanes = m * acts.stride / 4 + p * 16;
            let x = _mm512_loadu_si512(acts.quants.add(m * acts.stride + p * 64) as *const _);
            let c = _mm512_loadu_si512(acts.corrections.add(lanes) as *const _);
            let dx = _mm512_loadu_ps(acts.scales.add(lanes));
            let dot = _mm512_dpbusd_epi32(c, w, x);
            *acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot), _mm512_mul_ps(dw, dx), *acc);
        }
    }
}

/// The AVX2 kernel: per block, `vpmaddubsw` of the weight quants' magnitudes with the
/// activation quants signed by them (the products of two signed bytes, |w|·sign(w)x, summed in
/// pairs without overflow: at most 2 · 128 · 127), `vpmaddwd` to 8 lanes of i32, then one FMA
/// with the product of the two scales.
#[cfg(target_arch = "x86_64")]
mod avx2 {
    use super::{Activations, BLOCK, BLOCK_BYTES, PREFETCH, TILE_ROWS as ROWS};
    use std::arch::x86_64::*;

    /// Activation rows per tile: 4 × 2 accumulators and the loads fit in 16 registers.
    const ACTS: usize = 2;

    /// Runs `f` with the kernel's features enabled, so what it inlines is compiled for them.
    #[target_feature(enable = "avx2,fma,f16c")]
    pub unsafe fn with_features<T>(f: impl FnOnce() -> T) -> T {
        f()
    }

    #[target_feature(enable = "avx2,fma,f16c")]
    pub unsafe fn matmul_rows(
        weights: &[u8],
        acts: &Activations,
        out: &mut [f32],
        weight_rows: usize,
    ) {
        super::walk_tiles::<ACTS>(weights, acts, out, weight_rows, |rows, i, sums| {
            // SAFETY: this function's features are the tiles'; `rows` point at whole rows.
            unsafe {
                match acts.rows - i {
                    1 => tile::<1>(rows, acts, i, sums),
                    _ => tile::<2>(rows, acts, i, sums),
                }
            }
        })
    }

    /// ROWS weight rows times M activation rows starting at `first`, into `sums[row][act]`.
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn tile<const M: usize>(
        rows: &[*const u8; ROWS],
        acts: &Activations,
        first: usize,
        sums: &mut [[f32; ACTS]; ROWS],
    ) {
        let ones = _mm256_set1_epi16(1);
        let mut acc = [[_mm256_setzero_ps(); M]; ROWS];
        for b in 0..acts.blocks {
            let x: [__m256i; M] = std::array::from_fn(|m| {
                let at = ((first + m) * acts.padded + b) * BLOCK;
                _mm256_loadu_si256(acts.quants.as_ptr().add(at) as *const __m256i)
            });
            let dx: [f32; M] =
                std::array::from_fn(|m| acts.scales[((first + m) * acts.padded + b) * 8]);
            for (row, acc_row) in rows.iter().zip(acc.iter_mut()) {
                let block = row.add(b * BLOCK_BYTES);
                // wrapping_add: near the end this points past the weights, which a prefetch
                // may (it never faults) but pointer arithmetic may not.
                _mm_prefetch::<_MM_HINT_T0>(block.wrapping_add(PREFETCH) as *const i8);
                let w = _mm256_loadu_si256(block.add(2) as *const __m256i);
                let bits = (block as *const u16).read_unaligned();
                let dw = _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(bits as i32)));
                let magnitudes = _mm256_sign_epi8(w, w);
                for m in 0..M {
                    let pairs = _mm256_maddubs_epi16(magnitudes, _mm256_sign_epi8(x[m], w));
                    let lanes = _mm256_cvtepi32_ps(_mm256_madd_epi16(pairs, ones));
                    acc_row[m] = _mm256_fmadd_ps(lanes, _mm256_set1_ps(dw * dx[m]), acc_row[m]);
                }
            }
        }
        for (acc_row, sums_row) in acc.iter().zip(sums.iter_mut()) {
            for (acc, sum) in acc_row.iter().zip(sums_row.iter_mut()) {
                *sum = horizontal_sum(*acc);
            }
        }
    }

    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn horizontal_sum(v: __m256) -> f32 {
        let four = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps::<1>(v));
        let two = _mm_add_ps(four, _mm_movehl_ps(four, four));
        _mm_cvtss_f32(_mm_add_ss(two, _mm_movehdup_ps(two)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Q8_0 bytes of `rows` rows of `k` values, quantised as GGML does.
    fn q8_rows(values: &[f32], k: usize) -> Vec<u8> {
        let mut bytes = Vec::new();
        for block in values.chunks_exact(BLOCK) {
            let mut q = [0i8; BLOCK];
            let d = quantise_block(block, &mut q);
            bytes.extend_from_slice(&half::f16::from_f32(d).to_le_bytes());
            bytes.extend(q.iter().map(|&v| v as u8));
        }
        assert_eq!(bytes.len(), values.len() / k * (k / BLOCK) * BLOCK_BYTES);
        bytes
    }

    /// A deterministic spread of values in [-scale, scale].
    fn values(n: usize, seed: u32, scale: f32) -> Vec<f32> {
        let mut s = seed.wrapping_mul(2654435761).wrapping_add(1);
        (0..n)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 17;
                s ^= s << 5;
                (s as f32 / u32::MAX as f32 * 2.0 - 1.0) * scale
            })
            .collect()
    }

    #[test]
    fn rounding_is_f32_round_everywhere() {
        let below_half = f32::from_bits(0.5f32.to_bits() - 1);
        let mut cases = vec![
            0.0,
            -0.0,
            0.5,
            -0.5,
            below_half,
            -below_half,
            1.5,
            2.5,
            -2.5,
        ];
        cases.extend([
            126.5,
            127.0,
            -127.49998,
            8388607.5,
            8388609.0,
            1e30,
            f32::INFINITY,
        ]);
        cases.extend(values(10_000, 4, 130.0));
        for y in cases {
            assert_eq!(round_half_away(y), y.round(), "{y}");
        }
        assert!(round_half_away(f32::NAN).is_nan());
    }

    /// The bytes the loader writes equal the test's own GGML quantisation, including the
    /// edges of rounding (values exactly half way between two quants), an all-zero block and
    /// a block of one sign.
    #[test]
    fn quantised_blocks_are_ggmls_bytes() {
        let mut x = values(4 * BLOCK, 9, 2.0);
        // Half-way values: with amax 127 the scale is 1, so 2.5 and -3.5 sit between quants.
        x[..BLOCK].fill(0.0);
        x[BLOCK] = 127.0;
        x[BLOCK + 1] = 2.5;
        x[BLOCK + 2] = -3.5;
        x[BLOCK + 3] = 0.5;
        x[BLOCK + 4] = -0.5;
        for v in &mut x[2 * BLOCK..3 * BLOCK] {
            *v = v.abs();
        }
        let mut out = vec![0u8; 4 * BLOCK_BYTES];
        quantise_blocks(&x, &mut out);
        assert_eq!(out, q8_rows(&x, BLOCK));
        assert_eq!(
            out[BLOCK_BYTES + 2..][..5],
            [127, 3, (-4i8) as u8, 1, (-1i8) as u8]
        );
    }

    #[test]
    fn dequantised_rows_are_each_quant_times_its_blocks_scale() {
        let k = 96;
        let x = values(2 * k, 5, 3.0);
        let bytes = q8_rows(&x, k);
        let mut out = vec![f32::NAN; 2 * k];
        for (row, values) in out.chunks_exact_mut(k).enumerate() {
            let row_bytes = k / BLOCK * BLOCK_BYTES;
            dequantize_row(&bytes[row * row_bytes..][..row_bytes], values);
        }
        for (b, block) in bytes.chunks_exact(BLOCK_BYTES).enumerate() {
            let d = half::f16::from_le_bytes([block[0], block[1]]).to_f32();
            for (j, &q) in block[2..].iter().enumerate() {
                assert_eq!(
                    out[b * BLOCK + j],
                    q as i8 as f32 * d,
                    "block {b}, value {j}"
                );
            }
            // And close to what was quantised: half a step, plus the f16 rounding of the
            // scale (2^-11 of it) times up to 127.
            for j in 0..BLOCK {
                assert!((out[b * BLOCK + j] - x[b * BLOCK + j]).abs() <= d * 0.57);
            }
        }
    }

    /// Each kernel this CPU has (one asked for that it lacks runs the next below it, so both
    /// are checked where both exist: AVX-512 CPUs have AVX2 too).
    #[test]
    fn kernel_matches_the_scalar_reference_at_every_tile_shape() {
        // Odd and even block counts, weight rows not a multiple of 4, 1..9 activation rows.
        for &(k, n) in &[(64, 4), (96, 7), (576, 9), (32, 3), (1536, 5)] {
            let w = q8_rows(&values(n * k, 7, 0.2), k);
            for m in 1..=9 {
                let acts = Activations::quantise(&values(m * k, m as u32, 3.0), m, k);
                let mut slow = vec![0f32; n * m];
                matmul_rows_scalar(&w, &acts, &mut slow);
                for choice in [Kernel::Vnni, Kernel::Avx2] {
                    let mut fast = vec![0f32; n * m];
                    matmul_rows_on(Some(choice), &w, &acts, &mut fast);
                    for (f, s) in fast.iter().zip(&slow) {
                        assert!(
                            (f - s).abs() <= 1e-4 * s.abs().max(1.0),
                            "{choice:?} k {k} n {n} m {m}: {f} vs {s}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn product_is_close_to_the_f32_product() {
        let (k, n) = (256, 3);
        let wf = values(n * k, 3, 0.5);
        let xf = values(k, 4, 2.0);
        let w = q8_rows(&wf, k);
        let acts = Activations::quantise(&xf, 1, k);
        let mut out = vec![0f32; n];
        matmul_rows(&w, &acts, &mut out);
        for (r, got) in out.iter().enumerate() {
            let exact: f32 = wf[r * k..(r + 1) * k]
                .iter()
                .zip(&xf)
                .map(|(a, b)| a * b)
                .sum();
            assert!((got - exact).abs() < 0.05, "row {r}: {got} vs {exact}");
        }
    }

    #[test]
    fn zero_activations_give_zero() {
        let k = 64;
        let w = q8_rows(&values(2 * k, 9, 1.0), k);
        let acts = Activations::quantise(&vec![0.0; k], 1, k);
        let mut out = vec![1f32; 2];
        matmul_rows(&w, &acts, &mut out);
        assert_eq!(out, [0.0, 0.0]);
    }
}
