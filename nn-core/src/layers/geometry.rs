//! Geometries of convolutions and poolings: zero-sized marker types carrying the sizes as
//! associated constants, so that a layer's type names its whole geometry with no run-time
//! data and stable Rust (no `generic_const_exprs`).
//!
//! Output sizes follow PyTorch's formulas (see [`conv_output_len`] and
//! [`pool_output_len`]); they are evaluated at compile time, and a geometry whose kernel does
//! not fit its (padded) input, or with a zero stride, dilation or kernel, is a compile-time
//! error where the layer is used.

use core::marker::PhantomData;

/// Output length of a convolution along one axis, PyTorch's formula (`nn.Conv2d`, floor
/// mode): `⌊(n + 2p − d·(k − 1) − 1)/s⌋ + 1`.
///
/// Panics (a compile-time error in a `const`) when the dilated kernel `d·(k − 1) + 1` is
/// longer than the padded input `n + 2p`, or when `k`, `s` or `d` is zero.
pub const fn conv_output_len(
    input: usize,
    kernel: usize,
    stride: usize,
    padding: usize,
    dilation: usize,
) -> usize {
    assert!(
        kernel > 0,
        "convolution: the kernel size must be at least 1"
    );
    assert!(stride > 0, "convolution: the stride must be at least 1");
    assert!(dilation > 0, "convolution: the dilation must be at least 1");
    let span = dilation * (kernel - 1) + 1;
    assert!(
        span <= input + 2 * padding,
        "convolution: the dilated kernel d·(k − 1) + 1 is longer than the padded input n + 2p"
    );
    (input + 2 * padding - span) / stride + 1
}

/// Output length of a pooling along one axis, without padding (PyTorch's formula with
/// `padding = 0, dilation = 1`, floor mode): `⌊(n − k)/s⌋ + 1`.
///
/// Panics (a compile-time error in a `const`) when `k > n`, or when `k` or `s` is zero.
pub const fn pool_output_len(input: usize, kernel: usize, stride: usize) -> usize {
    conv_output_len(input, kernel, stride, 0, 1)
}

/// The geometry of a 2-d convolution (PyTorch's `nn.Conv2d` arguments besides the channel
/// counts): an input of `CI` channels of `H × W`, a `KH × KW` kernel, stride `SH, SW`, zero
/// padding `PH, PW` on each side, dilation `DH, DW`, and the output size `OH × OW`.
pub trait ConvGeometry2d {
    /// Input channels.
    const CI: usize;
    /// Input height.
    const H: usize;
    /// Input width.
    const W: usize;
    /// Kernel height.
    const KH: usize;
    /// Kernel width.
    const KW: usize;
    /// Vertical stride.
    const SH: usize;
    /// Horizontal stride.
    const SW: usize;
    /// Zero padding added above and below.
    const PH: usize;
    /// Zero padding added left and right.
    const PW: usize;
    /// Vertical dilation (spacing between kernel taps).
    const DH: usize;
    /// Horizontal dilation.
    const DW: usize;
    /// Output height, `⌊(H + 2·PH − DH·(KH − 1) − 1)/SH⌋ + 1`.
    const OH: usize;
    /// Output width, `⌊(W + 2·PW − DW·(KW − 1) − 1)/SW⌋ + 1`.
    const OW: usize;
}

/// The geometry of a 1-d convolution (PyTorch's `nn.Conv1d`): an input of `CI` channels of
/// length `L`, a kernel of `K` taps, stride `S`, zero padding `P` on each side, dilation `D`,
/// and the output length `OL`.
pub trait ConvGeometry1d {
    /// Input channels.
    const CI: usize;
    /// Input length.
    const L: usize;
    /// Kernel length.
    const K: usize;
    /// Stride.
    const S: usize;
    /// Zero padding added at each end.
    const P: usize;
    /// Dilation (spacing between kernel taps).
    const D: usize;
    /// Output length, `⌊(L + 2·P − D·(K − 1) − 1)/S⌋ + 1`.
    const OL: usize;
}

/// A 2-d convolution geometry given by its constants: `CI` input channels of `H × W`, kernel
/// `KH × KW`, stride `SH, SW`, padding `PH, PW`, dilation `DH, DW`. A zero-sized marker; the
/// output size is computed by PyTorch's formula ([`conv_output_len`]).
///
/// PyTorch's `nn.Conv2d(CI, CO, (KH, KW), stride=(SH, SW), padding=(PH, PW),
/// dilation=(DH, DW))` on an input `[CI, H, W]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Geometry2d<
    const CI: usize,
    const H: usize,
    const W: usize,
    const KH: usize,
    const KW: usize,
    const SH: usize,
    const SW: usize,
    const PH: usize,
    const PW: usize,
    const DH: usize,
    const DW: usize,
>;

impl<
    const CI: usize,
    const H: usize,
    const W: usize,
    const KH: usize,
    const KW: usize,
    const SH: usize,
    const SW: usize,
    const PH: usize,
    const PW: usize,
    const DH: usize,
    const DW: usize,
> ConvGeometry2d for Geometry2d<CI, H, W, KH, KW, SH, SW, PH, PW, DH, DW>
{
    const CI: usize = CI;
    const H: usize = H;
    const W: usize = W;
    const KH: usize = KH;
    const KW: usize = KW;
    const SH: usize = SH;
    const SW: usize = SW;
    const PH: usize = PH;
    const PW: usize = PW;
    const DH: usize = DH;
    const DW: usize = DW;
    const OH: usize = conv_output_len(H, KH, SH, PH, DH);
    const OW: usize = conv_output_len(W, KW, SW, PW, DW);
}

/// A 1-d convolution geometry given by its constants: `CI` input channels of length `L`,
/// kernel `K`, stride `S`, padding `P`, dilation `D`. A zero-sized marker; the output length
/// is computed by PyTorch's formula ([`conv_output_len`]).
///
/// PyTorch's `nn.Conv1d(CI, CO, K, stride=S, padding=P, dilation=D)` on an input `[CI, L]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Geometry1d<
    const CI: usize,
    const L: usize,
    const K: usize,
    const S: usize,
    const P: usize,
    const D: usize,
>;

impl<
    const CI: usize,
    const L: usize,
    const K: usize,
    const S: usize,
    const P: usize,
    const D: usize,
> ConvGeometry1d for Geometry1d<CI, L, K, S, P, D>
{
    const CI: usize = CI;
    const L: usize = L;
    const K: usize = K;
    const S: usize = S;
    const P: usize = P;
    const D: usize = D;
    const OL: usize = conv_output_len(L, K, S, P, D);
}

/// A 1-d convolution seen as a 2-d one of height 1 (kernel height 1, no vertical padding),
/// so that both share one implementation.
pub(crate) struct Lift1d<G>(PhantomData<G>);

impl<G: ConvGeometry1d> ConvGeometry2d for Lift1d<G> {
    const CI: usize = G::CI;
    const H: usize = 1;
    const W: usize = G::L;
    const KH: usize = 1;
    const KW: usize = G::K;
    const SH: usize = 1;
    const SW: usize = G::S;
    const PH: usize = 0;
    const PW: usize = G::P;
    const DH: usize = 1;
    const DW: usize = G::D;
    const OH: usize = 1;
    const OW: usize = G::OL;
}

/// The geometry of a 2-d pooling without padding (PyTorch's `nn.MaxPool2d` /
/// `nn.AvgPool2d` with `padding = 0`): `C` channels of `H × W`, a `KH × KW` window, stride
/// `SH, SW`, and the output size `OH × OW`. Each channel is pooled on its own.
pub trait PoolGeometry2d {
    /// Channels (input and output).
    const C: usize;
    /// Input height.
    const H: usize;
    /// Input width.
    const W: usize;
    /// Window height.
    const KH: usize;
    /// Window width.
    const KW: usize;
    /// Vertical stride.
    const SH: usize;
    /// Horizontal stride.
    const SW: usize;
    /// Output height, `⌊(H − KH)/SH⌋ + 1`.
    const OH: usize;
    /// Output width, `⌊(W − KW)/SW⌋ + 1`.
    const OW: usize;
}

/// The geometry of a 1-d pooling without padding (PyTorch's `nn.MaxPool1d` /
/// `nn.AvgPool1d` with `padding = 0`): `C` channels of length `L`, a window of `K`, stride
/// `S`, and the output length `OL`.
pub trait PoolGeometry1d {
    /// Channels (input and output).
    const C: usize;
    /// Input length.
    const L: usize;
    /// Window length.
    const K: usize;
    /// Stride.
    const S: usize;
    /// Output length, `⌊(L − K)/S⌋ + 1`.
    const OL: usize;
}

/// A 2-d pooling geometry given by its constants: `C` channels of `H × W`, window
/// `KH × KW`, stride `SH, SW` (PyTorch's default stride is the window; the `network!` macro
/// fills it in). A zero-sized marker; the output size is `⌊(H − KH)/SH⌋ + 1` by
/// `⌊(W − KW)/SW⌋ + 1` ([`pool_output_len`]).
///
/// PyTorch's `nn.MaxPool2d((KH, KW), stride=(SH, SW))` on an input `[C, H, W]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct PoolGeometry2dOf<
    const C: usize,
    const H: usize,
    const W: usize,
    const KH: usize,
    const KW: usize,
    const SH: usize,
    const SW: usize,
>;

impl<
    const C: usize,
    const H: usize,
    const W: usize,
    const KH: usize,
    const KW: usize,
    const SH: usize,
    const SW: usize,
> PoolGeometry2d for PoolGeometry2dOf<C, H, W, KH, KW, SH, SW>
{
    const C: usize = C;
    const H: usize = H;
    const W: usize = W;
    const KH: usize = KH;
    const KW: usize = KW;
    const SH: usize = SH;
    const SW: usize = SW;
    const OH: usize = pool_output_len(H, KH, SH);
    const OW: usize = pool_output_len(W, KW, SW);
}

/// A 1-d pooling geometry given by its constants: `C` channels of length `L`, window `K`,
/// stride `S`. A zero-sized marker; the output length is `⌊(L − K)/S⌋ + 1`.
///
/// PyTorch's `nn.MaxPool1d(K, stride=S)` on an input `[C, L]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct PoolGeometry1dOf<const C: usize, const L: usize, const K: usize, const S: usize>;

impl<const C: usize, const L: usize, const K: usize, const S: usize> PoolGeometry1d
    for PoolGeometry1dOf<C, L, K, S>
{
    const C: usize = C;
    const L: usize = L;
    const K: usize = K;
    const S: usize = S;
    const OL: usize = pool_output_len(L, K, S);
}

/// A 1-d pooling seen as a 2-d one of height 1.
pub(crate) struct LiftPool1d<G>(PhantomData<G>);

impl<G: PoolGeometry1d> PoolGeometry2d for LiftPool1d<G> {
    const C: usize = G::C;
    const H: usize = 1;
    const W: usize = G::L;
    const KH: usize = 1;
    const KW: usize = G::K;
    const SH: usize = 1;
    const SW: usize = G::S;
    const OH: usize = 1;
    const OW: usize = G::OL;
}

/// Compile-time checks of a pooling's sizes against its geometry (call in a `const` block).
pub(crate) const fn check_pool_sizes<G: PoolGeometry2d, const IN: usize, const OUT: usize>() {
    assert!(G::C > 0, "pooling: the channel count must be at least 1");
    assert!(
        IN == G::C * G::H * G::W,
        "pooling: IN must be C·H·W (C·L in 1-d)"
    );
    assert!(
        OUT == G::C * G::OH * G::OW,
        "pooling: OUT must be C·OH·OW (C·OL in 1-d)"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    /// PyTorch's formula written out in signed arithmetic, as its documentation states it.
    fn pytorch_formula(n: i64, k: i64, s: i64, p: i64, d: i64) -> i64 {
        ((n + 2 * p - d * (k - 1) - 1) as f64 / s as f64).floor() as i64 + 1
    }

    #[test]
    fn conv_output_len_follows_pytorch() {
        // (n, k, s, p, d, expected): hand-computed.
        let cases = [
            (28, 3, 1, 0, 1, 26),
            (28, 3, 1, 1, 1, 28),
            (28, 5, 2, 2, 1, 14),
            (32, 3, 2, 1, 1, 16),
            (4, 2, 2, 1, 2, 2),
            (7, 3, 2, 0, 1, 3),
            (7, 3, 3, 0, 2, 1),
            (10, 3, 1, 2, 3, 8),
            (5, 5, 1, 0, 1, 1),
            (1, 3, 1, 1, 1, 1),
            (224, 7, 2, 3, 1, 112),
        ];
        for (n, k, s, p, d, expected) in cases {
            assert_eq!(
                conv_output_len(n, k, s, p, d),
                expected,
                "{n} {k} {s} {p} {d}"
            );
            let formula = pytorch_formula(n as i64, k as i64, s as i64, p as i64, d as i64);
            assert_eq!(formula, expected as i64);
        }
        // Every small combination agrees with the signed formula.
        for n in 1..12 {
            for k in 1..5 {
                for s in 1..4 {
                    for p in 0..3 {
                        for d in 1..4 {
                            if d * (k - 1) < n + 2 * p {
                                assert_eq!(
                                    conv_output_len(n, k, s, p, d) as i64,
                                    pytorch_formula(
                                        n as i64, k as i64, s as i64, p as i64, d as i64
                                    )
                                );
                            }
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn pool_output_len_follows_pytorch() {
        assert_eq!(pool_output_len(4, 2, 2), 2);
        assert_eq!(pool_output_len(5, 2, 2), 2);
        assert_eq!(pool_output_len(28, 2, 2), 14);
        assert_eq!(pool_output_len(7, 3, 2), 3);
        assert_eq!(pool_output_len(7, 3, 1), 5);
        assert_eq!(pool_output_len(3, 3, 3), 1);
    }

    #[test]
    fn geometry_types_carry_their_sizes() {
        type G = Geometry2d<3, 28, 30, 5, 3, 2, 1, 2, 0, 1, 2>;
        assert_eq!((G::CI, G::H, G::W), (3, 28, 30));
        assert_eq!((G::KH, G::KW, G::SH, G::SW), (5, 3, 2, 1));
        assert_eq!((G::PH, G::PW, G::DH, G::DW), (2, 0, 1, 2));
        // (28 + 4 − 4 − 1)/2 + 1 = 14, (30 + 0 − 4 − 1)/1 + 1 = 26.
        assert_eq!((G::OH, G::OW), (14, 26));
        type G1 = Geometry1d<2, 10, 3, 2, 1, 2>;
        // (10 + 2 − 4 − 1)/2 + 1 = 4.
        assert_eq!(
            (G1::CI, G1::L, G1::K, G1::S, G1::P, G1::D, G1::OL),
            (2, 10, 3, 2, 1, 2, 4)
        );
        type L1 = Lift1d<G1>;
        assert_eq!((L1::H, L1::W, L1::OH, L1::OW), (1, 10, 1, 4));
        type P = PoolGeometry2dOf<4, 7, 6, 3, 2, 2, 2>;
        assert_eq!((P::C, P::OH, P::OW), (4, 3, 3));
        type P1 = PoolGeometry1dOf<2, 9, 3, 3>;
        assert_eq!((P1::C, P1::OL), (2, 3));
        assert_eq!(<LiftPool1d<P1> as PoolGeometry2d>::OW, 3);
        assert_eq!(core::mem::size_of::<G>(), 0);
    }
}
