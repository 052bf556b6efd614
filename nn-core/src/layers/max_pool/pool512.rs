//! Max pooling in `f32` with AVX-512 intrinsics (see `forward_batch` and
//! `MaxPool2d::backward_with` in the parent module, which dispatch here).

use super::PoolGeometry2d;
use core::arch::x86_64::*;

/// The mask of the first `n` of 16 lanes.
#[inline(always)]
fn mask16(n: usize) -> __mmask16 {
    if n >= 16 { !0 } else { (1u16 << n) - 1 }
}

/// Windows pooled at a time by [`forward`]: as many as fit 16 lanes and two vectors of
/// input (`(n − 1)·SW + KW ≤ 32`).
pub(super) const fn lanes<G: PoolGeometry2d>() -> usize {
    if G::SW == 0 || G::KW == 0 || G::KW > 32 {
        return 0;
    }
    let n = (32 - G::KW) / G::SW + 1;
    if n < 16 { n } else { 16 }
}

/// Whether [`forward`] pools `G`: at least 8 windows a vector (strides up to 4 across;
/// windows up to 25 wide at stride 1), overlapping or not.
pub(super) const fn pools<G: PoolGeometry2d>() -> bool {
    lanes::<G>() >= 8 && G::OH > 0 && G::OW > 0
}

/// `y = maxpool(x)` and, with `ARG_MAX`, each output's arg-max (its input's index in the
/// sample), `n` ([`lanes`]) windows of a row at a time, one per lane: for each of the
/// `KH` input rows, the row's inputs of the `n` windows are loaded as two vectors
/// (masked at the end: no copy, nothing read past the last window), each window column
/// `kw` picked out of them by a permutation (lane `l` gets input `l·SW + kw`), and swept
/// across the lanes in row-major window order with the rule of [`super::replaces`]
/// (`v > best` or `v` NaN, one comparison per element: see the comments), then masked
/// moves: the same choices as [`super::sweep`], so the same bits and arg-maxes.
///
/// # Safety
/// The CPU has AVX-512F; [`pools`] holds; `x` holds `n` samples of `IN = C·H·W`, `y` `n`
/// of `OUT = C·OH·OW` and, with `ARG_MAX`, `arg_max` `n` of `OUT` (else it is not used).
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn forward<
    G: PoolGeometry2d,
    const IN: usize,
    const OUT: usize,
    const ARG_MAX: bool,
>(
    x: &[f32],
    y: &mut [f32],
    arg_max: &mut [u32],
) {
    let n = const { lanes::<G>() };
    let (in_plane, out_plane) = (G::H * G::W, G::OH * G::OW);
    let infinity = _mm512_set1_ps(f32::INFINITY);
    // Lane l's first input, l·SW, in the row of its window.
    let step = _mm512_mullo_epi32(
        _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
        _mm512_set1_epi32(G::SW as i32),
    );
    let samples = x.chunks_exact(IN).zip(y.chunks_exact_mut(OUT));
    for (s, (x, y)) in samples.enumerate() {
        for c in 0..G::C {
            for oh in 0..G::OH {
                let top = c * in_plane + oh * G::SH * G::W;
                let out = c * out_plane + oh * G::OW;
                let mut ow = 0;
                while ow < G::OW {
                    let count = if G::OW - ow < n { G::OW - ow } else { n };
                    let col = ow * G::SW;
                    // The inputs of the `count` windows in a row: col..col + used ≤ W.
                    let used = (count - 1) * G::SW + G::KW;
                    let (low, high) = (mask16(used), mask16(used.saturating_sub(16)));
                    // Each lane's first input, as its index in the sample.
                    let first = _mm512_add_epi32(_mm512_set1_epi32((top + col) as i32), step);
                    let mut best = _mm512_setzero_ps();
                    let mut key = _mm512_setzero_ps();
                    let mut arg = _mm512_setzero_si512();
                    for kh in 0..G::KH {
                        let from = x[top + kh * G::W + col..][..used].as_ptr();
                        // SAFETY: the `used` inputs from `from` (the others masked off:
                        // not read).
                        let (a, b) = unsafe {
                            (
                                _mm512_maskz_loadu_ps(low, from),
                                _mm512_maskz_loadu_ps(high, from.wrapping_add(16)),
                            )
                        };
                        for kw in 0..G::KW {
                            // Lane l: input l·SW + kw of the two vectors (< 32 for the
                            // lanes used).
                            let pick = _mm512_add_epi32(step, _mm512_set1_epi32(kw as i32));
                            let v = _mm512_permutex2var_ps(a, pick, b);
                            let offset = _mm512_set1_epi32((kh * G::W + kw) as i32);
                            if kh == 0 && kw == 0 {
                                best = v;
                                key = _mm512_min_ps(v, infinity);
                                arg = first;
                            } else if ARG_MAX {
                                // v replaces best if v > best or v is NaN: with one
                                // comparison, `!(v <= key)` (unordered: true if v is NaN),
                                // `key` being `best` with a NaN as +∞ (`vminps x, +∞` is x,
                                // or +∞ if x is NaN): no v but a NaN replaces a NaN.
                                let replace = _mm512_cmp_ps_mask::<_CMP_NLE_UQ>(v, key);
                                best = _mm512_mask_mov_ps(best, replace, v);
                                key = _mm512_mask_mov_ps(key, replace, _mm512_min_ps(v, infinity));
                                arg = _mm512_mask_add_epi32(arg, replace, first, offset);
                            } else {
                                // The same choice with one comparison: `vmaxps v, best`
                                // is `v > best ? v : best` (best if either is NaN), then
                                // v where v is NaN.
                                let nan = _mm512_cmp_ps_mask::<_CMP_UNORD_Q>(v, v);
                                best = _mm512_mask_mov_ps(_mm512_max_ps(v, best), nan, v);
                            }
                        }
                    }
                    let valid = mask16(count);
                    let to = y[out + ow..][..count].as_mut_ptr();
                    // SAFETY: outputs ow..ow + count of the row (the other lanes masked
                    // off: not written).
                    unsafe { _mm512_mask_storeu_ps(to, valid, best) };
                    if ARG_MAX {
                        let to = arg_max[s * OUT + out + ow..][..count].as_mut_ptr();
                        // SAFETY: those outputs' arg-maxes.
                        unsafe { _mm512_mask_storeu_epi32(to.cast(), valid, arg) };
                    }
                    ow += n;
                }
            }
        }
    }
}

/// Whether [`write_arg_maxes`] writes the input gradient of `G`: windows that do not
/// overlap, at most 2 apart across (16 windows' inputs in two vectors).
pub(super) const fn writes<G: PoolGeometry2d>() -> bool {
    G::SH >= G::KH && G::SW >= G::KW && G::SW <= 2 && G::OW > 0
}

/// Overwrites `dx` with the input gradient of max pooling `G` (windows that do not
/// overlap), row by row of each plane: in a row of windows, 16 windows at a time, input
/// `kw` of each window (a lane) gets `0 + ∂L/∂y` of its window if its index is the
/// window's arg-max, else `+0`; the `SW` such vectors are interleaved into the row (two
/// permutations for stride 2). Rows and columns in no window get `+0`.
///
/// # Safety
/// The CPU has AVX-512F; [`writes`] holds; `arg_max` and `dy` hold `n` samples of `OUT =
/// C·OH·OW` values, `dx` `n` samples of `IN = C·H·W`.
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn write_arg_maxes<G: PoolGeometry2d, const IN: usize, const OUT: usize>(
    arg_max: &[u32],
    dy: &[f32],
    dx: &mut [f32],
) {
    let (in_plane, out_plane) = (G::H * G::W, G::OH * G::OW);
    // Lane l's first input, l·SW, and where each element of two interleaved vectors
    // comes from (element e of the pair: lane e/2 of vector e%2).
    let step = _mm512_mullo_epi32(
        _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
        _mm512_set1_epi32(G::SW as i32),
    );
    let low = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
    let high = _mm512_setr_epi32(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
    let samples = arg_max.chunks_exact(OUT).zip(dy.chunks_exact(OUT));
    for ((arg_max, dy), dx) in samples.zip(dx.chunks_exact_mut(IN)) {
        for c in 0..G::C {
            for r in 0..G::H {
                let start = c * in_plane + r * G::W;
                let row = &mut dx[start..start + G::W];
                let (oh, kh) = (r / G::SH, r % G::SH);
                if oh >= G::OH || kh >= G::KH {
                    row.fill(0.0);
                    continue;
                }
                let outs = &arg_max[c * out_plane + oh * G::OW..][..G::OW];
                let dys = &dy[c * out_plane + oh * G::OW..][..G::OW];
                let mut ow = 0;
                while ow < G::OW {
                    let valid = mask16(G::OW - ow);
                    let col = ow * G::SW;
                    // SAFETY: lanes ow..min(ow + 16, OW) of the row's arg-maxes and
                    // gradients (the others masked off: not read).
                    let (at, d) = unsafe {
                        (
                            _mm512_maskz_loadu_epi32(valid, outs.as_ptr().add(ow).cast()),
                            _mm512_maskz_loadu_ps(valid, dys.as_ptr().add(ow)),
                        )
                    };
                    // Input kw of each lane's window: its index in the sample.
                    let first = _mm512_add_epi32(_mm512_set1_epi32((start + col) as i32), step);
                    let input = |kw: usize| {
                        let index = _mm512_add_epi32(first, _mm512_set1_epi32(kw as i32));
                        let hit = _mm512_mask_cmpeq_epi32_mask(valid, at, index);
                        _mm512_maskz_add_ps(hit, _mm512_setzero_ps(), d)
                    };
                    // The row's inputs col..col + 16·SW (those past W masked off).
                    let span = G::W - col;
                    let to = row.as_mut_ptr().wrapping_add(col);
                    if G::SW == 1 {
                        // SAFETY: inputs col..min(col + 16, W) of the row.
                        unsafe { _mm512_mask_storeu_ps(to, mask16(span), input(0)) };
                    } else {
                        let odd = if G::KW == 2 {
                            input(1)
                        } else {
                            _mm512_setzero_ps()
                        };
                        let even = input(0);
                        // SAFETY: inputs col..min(col + 32, W) of the row.
                        unsafe {
                            _mm512_mask_storeu_ps(
                                to,
                                mask16(span),
                                _mm512_permutex2var_ps(even, low, odd),
                            );
                            _mm512_mask_storeu_ps(
                                to.wrapping_add(16),
                                mask16(span.saturating_sub(16)),
                                _mm512_permutex2var_ps(even, high, odd),
                            );
                        }
                    }
                    ow += 16;
                }
                // Inputs right of the last 16 windows' vectors (past the last window).
                let done = G::OW.div_ceil(16) * 16 * G::SW;
                if done < G::W {
                    row[done..].fill(0.0);
                }
            }
        }
    }
}
