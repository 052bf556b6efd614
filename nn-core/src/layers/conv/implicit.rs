//! The forward pass of stride-1 convolutions in `f32` on AVX-512 without the im2col lowering
//! (an "implicit GEMM"): the sample is copied into a zero-padded plane `xp` (`CI × Hp × Wp`,
//! `Hp = H + 2·PH`, `Wp = W + 2·PW`), where the input of tap `k = (ci, kh, kw)` at output
//! position `(oh, ow)` is `xp[off(k) + q]` with `off(k) = ci·Hp·Wp + kh·DH·Wp + kw·DW` and
//! `q = oh·Wp + ow`. So column `k` of the lowering, taken over the "wide" positions
//! `q < (OH − 1)·Wp + OW` (the `Wp − OW` positions at the end of each row are not outputs),
//! is `xp` itself from `off(k)` on: the micro-kernel reads its 32-row panels there, a tap at
//! a time, instead of from a lowered copy. The wide result (`rows × CO`) is then copied to
//! `y` without its extra positions, plus the bias.
//!
//! The lowering it replaces wrote `K·P` scalars per sample in short runs (`OW` of them) and
//! cost as much as the product. Each output is the same chain of fused multiply-adds, tap
//! after tap from zero, plus the bias, as the blocked GEMM's for `K ≤ 256` (one depth block):
//! the same bits.

use super::super::geometry::ConvGeometry2d;
use core::arch::x86_64::*;

/// Rows of the register tile (two 16-lane vectors).
const MR: usize = 32;
/// Most columns of the register tile (output channels).
const NR: usize = 8;

/// The zero-padded plane's `(Hp, Wp)`.
const fn padded<G: ConvGeometry2d>() -> (usize, usize) {
    (G::H + 2 * G::PH, G::W + 2 * G::PW)
}

/// Rows of the wide product, `(OH − 1)·Wp + OW`.
const fn wide_rows<G: ConvGeometry2d>() -> usize {
    let (_, wp) = padded::<G>();
    if G::OH == 0 {
        0
    } else {
        (G::OH - 1) * wp + G::OW
    }
}

/// Scalars of scratch the pass uses: the padded plane and the wide result.
pub(crate) const fn scratch<G: ConvGeometry2d, const CO: usize>() -> usize {
    let (hp, wp) = padded::<G>();
    G::CI * hp * wp + wide_rows::<G>() * CO
}

/// Whether the forward pass of this convolution runs here (when the scalar is `f32` and the
/// CPU has AVX-512F): stride 1, the padded plane and the wide result fit in one im2col tile
/// (`K·P` scalars, the room every caller's scratch has), and the wide rows are at most 1.5
/// times the positions (the extra ones are computed for nothing).
pub(crate) const fn applies<G: ConvGeometry2d, const CO: usize, const K: usize>() -> bool {
    let positions = G::OH * G::OW;
    G::SH == 1
        && G::SW == 1
        && positions > 0
        && scratch::<G, CO>() <= K * positions
        && 2 * wide_rows::<G>() <= 3 * positions
}

/// `y = W ⋆ x + b` for `x.len() / IN` samples (see the module's description).
///
/// # Safety
/// The CPU has AVX-512F; [`applies`] holds; `weight` holds `CO·K` scalars (`CO × K`
/// column-major), `bias` `CO` or none, `x` whole samples of `IN = CI·H·W` and `y` as many of
/// `OUT = CO·OH·OW`; `scratch` at least [`scratch`] scalars.
#[target_feature(enable = "avx512f")]
pub(crate) unsafe fn forward<
    G: ConvGeometry2d,
    const CO: usize,
    const K: usize,
    const IN: usize,
    const OUT: usize,
>(
    weight: &[f32],
    bias: &[f32],
    x: &[f32],
    y: &mut [f32],
    scratch: &mut [f32],
) {
    let (hp, wp) = padded::<G>();
    let plane_p = hp * wp;
    let rows = wide_rows::<G>();
    let plane = G::OH * G::OW;
    let (xp, rest) = scratch.split_at_mut(G::CI * plane_p);
    let wide = &mut rest[..rows * CO];
    // The padding stays zero; the inside is overwritten sample after sample.
    xp.fill(0.0);
    let weight = &weight[..CO * K];
    for (x, y) in x.chunks_exact(IN).zip(y.chunks_exact_mut(OUT)) {
        pad_into::<G>(x, xp);
        let mut i = 0;
        while i < rows {
            let m = MR.min(rows - i);
            let mut j = 0;
            while j < CO {
                // SAFETY: rows i..i + m of the wide product read xp at off(k) + q for
                // q < rows, which is inside xp (the last tap of the last wide row reads its
                // last scalar); the tile of `wide` (leading dimension `rows`) is inside it;
                // channels j..j + n of the weight exist. The CPU has AVX-512F.
                unsafe {
                    let (a, w, c) = (
                        xp.as_ptr().add(i),
                        weight.as_ptr().add(j),
                        wide.as_mut_ptr().add(i + j * rows),
                    );
                    match CO - j {
                        1 => tile::<G, 1, CO>(a, w, c, rows, m),
                        2 => tile::<G, 2, CO>(a, w, c, rows, m),
                        3 => tile::<G, 3, CO>(a, w, c, rows, m),
                        4 => tile::<G, 4, CO>(a, w, c, rows, m),
                        5 => tile::<G, 5, CO>(a, w, c, rows, m),
                        6 => tile::<G, 6, CO>(a, w, c, rows, m),
                        7 => tile::<G, 7, CO>(a, w, c, rows, m),
                        _ => tile::<G, NR, CO>(a, w, c, rows, m),
                    }
                }
                j += NR;
            }
            i += MR;
        }
        // Row after row, 16 outputs a vector (left to itself, the compiler vectorises these
        // loops across the channels, with gathers and scatters).
        for co in 0..CO {
            let b = bias.get(co).map(|&b| _mm512_set1_ps(b));
            for oh in 0..G::OH {
                let from = &wide[co * rows + oh * wp..co * rows + oh * wp + G::OW];
                let to = &mut y[co * plane + oh * G::OW..co * plane + (oh + 1) * G::OW];
                let mut o = 0;
                while o < G::OW {
                    let lanes = mask16(G::OW - o);
                    // SAFETY: the lanes of o..min(o + 16, OW) of both rows (the others are
                    // masked off: neither read nor written).
                    unsafe {
                        let v = _mm512_maskz_loadu_ps(lanes, from.as_ptr().add(o));
                        let v = match b {
                            Some(b) => _mm512_add_ps(v, b),
                            None => v,
                        };
                        _mm512_mask_storeu_ps(to.as_mut_ptr().add(o), lanes, v);
                    }
                    o += 16;
                }
            }
        }
    }
}

/// Copies one sample `x` (`CI × H × W`) inside the zero-padded plane `xp` (`CI × Hp × Wp`),
/// leaving its padding as it is (zero).
#[inline(always)]
fn pad_into<G: ConvGeometry2d>(x: &[f32], xp: &mut [f32]) {
    let (hp, wp) = padded::<G>();
    for ci in 0..G::CI {
        for h in 0..G::H {
            let to = ci * hp * wp + (h + G::PH) * wp + G::PW;
            let from = (ci * G::H + h) * G::W;
            xp[to..to + G::W].copy_from_slice(&x[from..from + G::W]);
        }
    }
}

/// The mask of the first `n` of 16 lanes.
#[inline(always)]
fn mask16(n: usize) -> __mmask16 {
    if n >= 16 {
        0xFFFF
    } else {
        ((1u32 << n) - 1) as __mmask16
    }
}

/// `C[0..m, 0..N] = Σ_k A[.., k]·W[j.., k]ᵀ` for one tile: `A`'s column `k` at `a + off(k)`,
/// `W[j + jj, k]` at `w + jj + k·CO`, `C` column-major with leading dimension `ldc`.
///
/// # Safety
/// `a + off(k) + r` is readable for `r < m` (for `r < 32` when `m == 32`), `w` as said,
/// `c` an `m × N` writable block; `1 ≤ m ≤ 32`; the CPU has AVX-512F.
#[target_feature(enable = "avx512f")]
#[inline]
unsafe fn tile<G: ConvGeometry2d, const N: usize, const CO: usize>(
    a: *const f32,
    w: *const f32,
    c: *mut f32,
    ldc: usize,
    m: usize,
) {
    let (hp, wp) = padded::<G>();
    let mut lo = [_mm512_setzero_ps(); N];
    let mut hi = [_mm512_setzero_ps(); N];
    let (k0, k1) = (mask16(m), mask16(m.saturating_sub(16)));
    let whole = m == MR;
    let mut k = 0;
    for ci in 0..G::CI {
        for kh in 0..G::KH {
            for kw in 0..G::KW {
                // SAFETY: the caller's contract.
                unsafe {
                    let ap = a.add(ci * hp * wp + kh * G::DH * wp + kw * G::DW);
                    let (a0, a1) = if whole {
                        (_mm512_loadu_ps(ap), _mm512_loadu_ps(ap.add(16)))
                    } else {
                        // Lanes past m are masked off (not read, cannot fault).
                        (
                            _mm512_maskz_loadu_ps(k0, ap),
                            _mm512_maskz_loadu_ps(k1, ap.wrapping_add(16)),
                        )
                    };
                    let wk = w.add(k * CO);
                    for jj in 0..N {
                        let b = _mm512_set1_ps(*wk.add(jj));
                        lo[jj] = _mm512_fmadd_ps(a0, b, lo[jj]);
                        hi[jj] = _mm512_fmadd_ps(a1, b, hi[jj]);
                    }
                }
                k += 1;
            }
        }
    }
    for jj in 0..N {
        // SAFETY: column jj < N of the m-row block of C; masked lanes are not written.
        unsafe {
            let col = c.add(jj * ldc);
            _mm512_mask_storeu_ps(col, k0, lo[jj]);
            _mm512_mask_storeu_ps(col.wrapping_add(16), k1, hi[jj]);
        }
    }
}

/// `∂W (CO × K) += Σ_samples ∂Y_s·X̃ᵀ` without the im2col lowering, for the geometries of
/// [`applies`]: by dot products over the wide positions of `∂Y_s`'s rows (copied into a
/// widened `∂Y`, zero at the positions that are not outputs) and of each tap's column of the
/// padded plane (`xp` from `off(k)` on), `R × C` of them at a time in vector accumulators,
/// added to `∂W` at the end of each sample.
///
/// # Safety
/// As [`forward`]; `dy` holds as many samples of `OUT` as `x` of `IN`; `d_weight` `CO·K`
/// scalars (`CO × K` column-major).
#[target_feature(enable = "avx512f")]
pub(crate) unsafe fn weight_gradient<
    G: ConvGeometry2d,
    const CO: usize,
    const K: usize,
    const IN: usize,
    const OUT: usize,
>(
    x: &[f32],
    dy: &[f32],
    d_weight: &mut [f32],
    scratch: &mut [f32],
) {
    let (hp, wp) = padded::<G>();
    let plane_p = hp * wp;
    let rows = wide_rows::<G>();
    let plane = G::OH * G::OW;
    let (xp, rest) = scratch.split_at_mut(G::CI * plane_p);
    let dyw = &mut rest[..rows * CO];
    // The padding and the positions that are not outputs stay zero.
    xp.fill(0.0);
    dyw.fill(0.0);
    let d_weight = &mut d_weight[..CO * K];
    for (x, dy) in x.chunks_exact(IN).zip(dy.chunks_exact(OUT)) {
        pad_into::<G>(x, xp);
        for co in 0..CO {
            for oh in 0..G::OH {
                let to = co * rows + oh * wp;
                let from = co * plane + oh * G::OW;
                dyw[to..to + G::OW].copy_from_slice(&dy[from..from + G::OW]);
            }
        }
        let mut co = 0;
        while co < CO {
            let mut k = 0;
            while k < K {
                // SAFETY: rows co..co + r of dyw and taps k..k + c (each read over the wide
                // rows from off(k), inside xp as in `forward`) exist; the CPU has AVX-512F.
                unsafe {
                    let (a, b, c) = (dyw.as_ptr(), xp.as_ptr(), d_weight.as_mut_ptr());
                    macro_rules! dispatch {
                        ($(($r:literal, $c:literal)),*) => {
                            match ((CO - co).min(4), (K - k).min(4)) {
                                $(($r, $c) => dots::<G, $r, $c, CO>(a, b, c, co, k, rows),)*
                                _ => unreachable!(),
                            }
                        };
                    }
                    dispatch!(
                        (1, 1),
                        (1, 2),
                        (1, 3),
                        (1, 4),
                        (2, 1),
                        (2, 2),
                        (2, 3),
                        (2, 4),
                        (3, 1),
                        (3, 2),
                        (3, 3),
                        (3, 4),
                        (4, 1),
                        (4, 2),
                        (4, 3),
                        (4, 4)
                    );
                }
                k += 4;
            }
            co += 4;
        }
    }
}

/// The offset in the padded plane of tap `k`'s column, `ci·Hp·Wp + kh·DH·Wp + kw·DW`.
#[inline(always)]
fn tap_offset<G: ConvGeometry2d>(k: usize) -> usize {
    let (hp, wp) = padded::<G>();
    let (ci, rest) = (k / (G::KH * G::KW), k % (G::KH * G::KW));
    let (kh, kw) = (rest / G::KW, rest % G::KW);
    ci * hp * wp + kh * G::DH * wp + kw * G::DW
}

/// `∂W[co + i, k + j] += Σ_q dyw[(co + i)·rows + q]·xp[off(k + j) + q]` for `i < R`, `j < C`,
/// `q < rows`: `R·C` vector accumulators, reduced at the end.
///
/// # Safety
/// As [`weight_gradient`]'s call.
#[target_feature(enable = "avx512f")]
#[inline]
unsafe fn dots<G: ConvGeometry2d, const R: usize, const C: usize, const CO: usize>(
    dyw: *const f32,
    xp: *const f32,
    d_weight: *mut f32,
    co: usize,
    k: usize,
    rows: usize,
) {
    let mut acc = [[_mm512_setzero_ps(); C]; R];
    // SAFETY (all the pointers): the caller's contract.
    let a: [*const f32; R] = core::array::from_fn(|i| unsafe { dyw.add((co + i) * rows) });
    let b: [*const f32; C] = core::array::from_fn(|j| unsafe { xp.add(tap_offset::<G>(k + j)) });
    let whole = rows / 16 * 16;
    let mut q = 0;
    while q < whole {
        // SAFETY: q + 16 ≤ rows: inside every row and column.
        unsafe {
            let av: [__m512; R] = core::array::from_fn(|i| _mm512_loadu_ps(a[i].add(q)));
            for j in 0..C {
                let bv = _mm512_loadu_ps(b[j].add(q));
                for i in 0..R {
                    acc[i][j] = _mm512_fmadd_ps(av[i], bv, acc[i][j]);
                }
            }
        }
        q += 16;
    }
    if whole < rows {
        let tail = mask16(rows - whole);
        // SAFETY: the lanes past `rows` are masked off (not read, cannot fault).
        unsafe {
            let av: [__m512; R] =
                core::array::from_fn(|i| _mm512_maskz_loadu_ps(tail, a[i].wrapping_add(whole)));
            for j in 0..C {
                let bv = _mm512_maskz_loadu_ps(tail, b[j].wrapping_add(whole));
                for i in 0..R {
                    acc[i][j] = _mm512_fmadd_ps(av[i], bv, acc[i][j]);
                }
            }
        }
    }
    for (i, row) in acc.iter().enumerate() {
        for (j, &sum) in row.iter().enumerate() {
            // SAFETY: (co + i, k + j) is inside the CO × K gradient.
            unsafe { *d_weight.add(co + i + (k + j) * CO) += _mm512_reduce_add_ps(sum) };
        }
    }
}

/// Whether [`im2col_by_positions`] lowers this geometry: `DW = 1` (each run of `KW` taps is
/// contiguous in the input) and `KW ≤ 16` (one vector).
pub(crate) const fn lowers_by_positions<G: ConvGeometry2d>() -> bool {
    G::DW == 1 && G::KW >= 1 && G::KW <= 16
}

/// The position-major lowering of one sample (`X̃`, `K × P`, element `(k, p)` at `p·K + k`)
/// as `conv::im2col_by_positions` writes it, a run of `KW` taps by one masked load and one
/// masked store (the taps in the padding are masked off the load, so zero).
///
/// # Safety
/// The CPU has AVX-512F; [`lowers_by_positions`] holds; `x` holds one sample, `cols`
/// `K·OH·OW` scalars, `K = CI·KH·KW`.
#[target_feature(enable = "avx512f")]
pub(crate) unsafe fn im2col_by_positions<G: ConvGeometry2d, const K: usize>(
    x: &[f32],
    cols: &mut [f32],
) {
    debug_assert!(x.len() >= G::CI * G::H * G::W && cols.len() >= K * G::OH * G::OW);
    let run = mask16(G::KW);
    let zero = _mm512_setzero_ps();
    let mut to = cols.as_mut_ptr();
    for oh in 0..G::OH {
        for ow in 0..G::OW {
            // The input column of the run's first tap, and the taps inside the input.
            let first = (ow * G::SW) as isize - G::PW as isize;
            let lo = (-first).clamp(0, G::KW as isize) as u32;
            let hi = (G::W as isize - first).clamp(0, G::KW as isize) as u32;
            let inside = if lo < hi {
                run & !mask16(lo as usize) & mask16(hi as usize)
            } else {
                0
            };
            for ci in 0..G::CI {
                for kh in 0..G::KH {
                    // SAFETY: `to` walks the K·P scalars of `cols` KW at a time; the lanes
                    // read are inputs of row ih of channel ci (the others are masked off,
                    // not read, and cannot fault).
                    unsafe {
                        let ih = (oh * G::SH + kh * G::DH).wrapping_sub(G::PH);
                        let v = if ih < G::H {
                            let row = x.as_ptr().add((ci * G::H + ih) * G::W);
                            _mm512_maskz_loadu_ps(inside, row.wrapping_offset(first))
                        } else {
                            zero
                        };
                        _mm512_mask_storeu_ps(to, run, v);
                        to = to.add(G::KW);
                    }
                }
            }
        }
    }
}
