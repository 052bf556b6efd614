//! Token embedding: [`Embedding`] (PyTorch's `nn.Embedding`).

use crate::init::{self, Init};
use crate::{ConstZero, Layer, Params, Real, Role, TensorInfo, Zeroable};
use nalgebra::{ComplexField, SMatrix};
use rand_core::Rng;

/// A lookup table of `V` vectors of `D` features, PyTorch's `nn.Embedding(V, D)`: a sample
/// of `S` token ids `[S]` gives the sequence of their vectors `[S, D]` (`OUT = S·D`, token
/// `t`'s vector at `t·D .. (t + 1)·D`):
///
/// `y[t, :] = W[id_t, :]`.
///
/// The ids arrive as values of `T` (the network's input is a matrix of `T`), and must be
/// exact integers in `0..V` (`f32` represents every integer below `2²⁴` exactly). An id
/// that is not (a fraction, a negative or too large value, NaN, ∞) gives a row of NaN, so
/// the loss becomes NaN and the trainer refuses the step: never a panic, never a silently
/// wrong row.
///
/// Backward: `∂L/∂W[id_t, :] += ∂L/∂y[t, :]` (rows of repeated ids accumulate; rows of
/// invalid ids get nothing). The ids are not differentiable: `∂L/∂input` is zero (nothing
/// is added to it), as PyTorch, whose `nn.Embedding` takes integer tensors that have no
/// gradient.
///
/// Parameter (PyTorch's): `weight` `[V, D]`, stored column-major as `V × D` (so one token's
/// vector is a strided row), initialised from `N(0, 1)` as PyTorch, whatever the network's
/// scheme. `OUT = S·D` is checked at compile time where the layer is used.
#[derive(Clone, Copy, Debug, PartialEq, Params, ConstZero, Zeroable)]
#[repr(C)]
pub struct Embedding<T: Real, const V: usize, const D: usize, const S: usize, const OUT: usize> {
    /// `W`, `[V, D]`: row `v` is the vector of token `v`.
    pub weight: SMatrix<T, V, D>,
}

/// Compile-time size rules.
const fn check(v: usize, d: usize, s: usize, output: usize) {
    assert!(
        v >= 1 && d >= 1 && s >= 1,
        "Embedding: V, D and S must be at least 1"
    );
    assert!(output == s * d, "Embedding: OUT must be S·D");
}

impl<T: Real, const V: usize, const D: usize, const S: usize, const OUT: usize>
    Embedding<T, V, D, S, OUT>
{
    /// The row of token `id`: `Some(v)` when `id` is exactly an integer `v < V`, `None`
    /// otherwise (fractions, negatives, too large, NaN, ±∞).
    #[inline]
    pub fn index(id: T) -> Option<usize> {
        let id = id.to_f64();
        // `as` saturates (NaN to 0): the round trip is exact only for an integer in range.
        let v = id as usize;
        (v as f64 == id && v < V).then_some(v)
    }
}

impl<T: Real, const V: usize, const D: usize, const S: usize, const OUT: usize> Layer<T, S, OUT>
    for Embedding<T, V, D, S, OUT>
{
    const TENSORS: &'static [TensorInfo] = &[TensorInfo {
        name: "weight",
        shape: &[V, D],
        role: Role::Weight,
    }];

    type Cache<const B: usize> = ();
    type State = ();

    fn forward<const B: usize>(
        &self,
        _: &(),
        x: &SMatrix<T, S, B>,
        y: &mut SMatrix<T, OUT, B>,
        _scratch: &mut [T],
    ) {
        const { check(V, D, S, OUT) };
        let ids = x.as_slice().iter();
        for (&id, y) in ids.zip(y.as_mut_slice().chunks_exact_mut(D)) {
            match Self::index(id) {
                Some(v) => {
                    for (y, &w) in y.iter_mut().zip(self.weight.row(v).iter()) {
                        *y = w;
                    }
                }
                None => y.fill(T::of(f64::NAN)),
            }
        }
    }

    fn backward<const B: usize>(
        &self,
        x: &SMatrix<T, S, B>,
        _cache: &(),
        dy: &SMatrix<T, OUT, B>,
        _dx: Option<&mut SMatrix<T, S, B>>,
        grads: &mut Self,
        _scratch: &mut [T],
    ) {
        const { check(V, D, S, OUT) };
        let ids = x.as_slice().iter();
        for (&id, dy) in ids.zip(dy.as_slice().chunks_exact(D)) {
            if let Some(v) = Self::index(id) {
                for (g, &dy) in grads.weight.row_mut(v).iter_mut().zip(dy) {
                    *g += dy;
                }
            }
        }
    }

    /// `W ~ N(0, 1)`, as PyTorch (the scheme is not used).
    fn init<G: Rng + ?Sized>(&mut self, _scheme: Init, rng: &mut G) {
        fill_normal(self.weight.as_mut_slice(), 1.0, rng);
    }
}

/// Fills `values` with samples of `N(0, std_dev²)` (Box–Muller, two per pair of uniforms).
pub(super) fn fill_normal<T: Real, G: Rng + ?Sized>(values: &mut [T], std_dev: f64, rng: &mut G) {
    for pair in values.chunks_mut(2) {
        // 1 − u is in (0, 1], so the logarithm is finite.
        let radius = ComplexField::sqrt(-2.0 * ComplexField::ln(1.0 - init::unit(rng)));
        let (sin, cos) = ComplexField::sin_cos(core::f64::consts::TAU * init::unit(rng));
        pair[0] = T::of(radius * cos * std_dev);
        if let Some(second) = pair.get_mut(1) {
            *second = T::of(radius * sin * std_dev);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gradcheck::{FLOOR, STEP};
    use crate::test_util::{Rng, assert_close, det_matrix, random_matrix, randomize};

    type Table = Embedding<f64, 5, 3, 4, 12>;

    fn ids<const B: usize>(ids: [[u32; 4]; B]) -> SMatrix<f64, 4, B> {
        SMatrix::from_fn(|t, j| f64::from(ids[j][t]))
    }

    #[test]
    fn forward_looks_rows_up() {
        let table = Table {
            weight: det_matrix(1.4),
        };
        let mut y = SMatrix::<f64, 12, 2>::ZERO;
        table.forward(&(), &ids([[0, 4, 2, 2], [1, 3, 0, 4]]), &mut y, &mut []);
        // PyTorch: weight[[[0, 4, 2, 2], [1, 3, 0, 4]]] (tests/layers_reference.py).
        assert_close(y.as_slice(), &REFERENCE_EMBEDDING, 0.0);
    }

    /// Invalid ids give a NaN row and the other rows are unaffected; none panics.
    #[test]
    fn invalid_ids_give_nan_rows() {
        let mut table = Table::ZERO;
        randomize(&mut table, 1, 1.0);
        for bad in [
            -1.0,
            5.0,
            2.5,
            -0.5,
            1e300,
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
        ] {
            let x = SMatrix::<f64, 4, 1>::new(1.0, bad, 4.0, -0.0);
            let mut y = SMatrix::<f64, 12, 1>::ZERO;
            table.forward(&(), &x, &mut y, &mut []);
            assert!(y.as_slice()[3..6].iter().all(|v| v.is_nan()), "{bad}");
            let valid = [1, 4, 0].map(|v| table.weight.row(v).into_owned());
            for (t, row) in [(0, valid[0]), (2, valid[1]), (3, valid[2])] {
                assert_eq!(&y.as_slice()[t * 3..t * 3 + 3], row.as_slice(), "{bad}");
            }
            // Backward skips the invalid id and leaves the input gradient alone.
            let (mut dx, mut grads) = (SMatrix::repeat(7.0), Table::ZERO);
            table.backward(
                &x,
                &(),
                &SMatrix::repeat(1.0),
                Some(&mut dx),
                &mut grads,
                &mut [],
            );
            assert_eq!(dx, SMatrix::<f64, 4, 1>::repeat(7.0));
            assert_eq!(grads.weight.sum(), 9.0);
        }
        assert_eq!(Table::index(f32::MAX as f64), None);
        assert_eq!(Embedding::<f32, 5, 3, 4, 12>::index(3.0f32), Some(3));
        assert_eq!(Embedding::<f32, 5, 3, 4, 12>::index(3.000_001f32), None);
    }

    /// The weight gradient against central differences of `L = Σ c·y` (the input is not
    /// differentiable, so `gradcheck::check_layer`, which also perturbs the ids, does not
    /// apply), with repeated ids accumulating.
    #[test]
    fn gradients_match_finite_differences() {
        let mut table = Table::ZERO;
        randomize(&mut table, 2, 1.0);
        let x = ids([[0, 4, 2, 2], [1, 3, 2, 4], [2, 2, 2, 2]]);
        let c = random_matrix::<12, 3>(3, 1.0);
        let loss = |table: &Table| {
            let mut y = SMatrix::ZERO;
            table.forward(&(), &x, &mut y, &mut []);
            c.dot(&y)
        };
        let (mut y, mut dx, mut grads) = (SMatrix::ZERO, SMatrix::ZERO, Table::ZERO);
        table.forward(&(), &x, &mut y, &mut []);
        table.backward(&x, &(), &c, Some(&mut dx), &mut grads, &mut []);
        assert_eq!(dx, SMatrix::<f64, 4, 3>::ZERO);
        for i in 0..Table::LEN {
            let saved = table.as_slice()[i];
            table.as_mut_slice()[i] = saved + STEP;
            let up = loss(&table);
            table.as_mut_slice()[i] = saved - STEP;
            let down = loss(&table);
            table.as_mut_slice()[i] = saved;
            let (analytic, numeric) = (grads.as_slice()[i], (up - down) / (2.0 * STEP));
            let scale = analytic.abs().max(numeric.abs()).max(FLOOR);
            assert!(
                (analytic - numeric).abs() / scale < 1e-7,
                "{i}: {analytic} {numeric}"
            );
        }
        // Token 3 (row 3) appears once: its gradient is c at that position.
        assert_eq!(
            grads.weight.row(3).transpose().as_slice(),
            &c.as_slice()[15..18]
        );
    }

    #[test]
    fn batch_equals_single_samples() {
        let mut table = Table::ZERO;
        randomize(&mut table, 4, 1.0);
        let x = ids([[0, 4, 2, 2], [1, 3, 0, 4], [4, 4, 4, 1]]);
        let dy = random_matrix::<12, 3>(5, 1.0);
        let (mut y, mut dx, mut grads) = (SMatrix::ZERO, SMatrix::ZERO, Table::ZERO);
        table.forward(&(), &x, &mut y, &mut []);
        table.backward(&x, &(), &dy, Some(&mut dx), &mut grads, &mut []);
        let mut single_grads = Table::ZERO;
        for j in 0..3 {
            let xj: SMatrix<f64, 4, 1> = x.column(j).into();
            let dyj: SMatrix<f64, 12, 1> = dy.column(j).into();
            let (mut yj, mut dxj) = (SMatrix::ZERO, SMatrix::ZERO);
            table.forward(&(), &xj, &mut yj, &mut []);
            table.backward(&xj, &(), &dyj, Some(&mut dxj), &mut single_grads, &mut []);
            assert_eq!(yj.as_slice(), y.column(j).as_slice());
        }
        assert_close(single_grads.as_slice(), grads.as_slice(), 1e-15);
    }

    #[test]
    fn f32_agrees_with_f64() {
        let mut table = Table::ZERO;
        randomize(&mut table, 6, 1.0);
        let mut single = Embedding::<f32, 5, 3, 4, 12>::ZERO;
        for (s, &d) in single.as_mut_slice().iter_mut().zip(table.as_slice()) {
            *s = d as f32;
        }
        let x = ids([[0, 4, 2, 2], [1, 3, 0, 4]]);
        let (mut y64, mut y32) = (SMatrix::<f64, 12, 2>::ZERO, SMatrix::<f32, 12, 2>::ZERO);
        table.forward(&(), &x, &mut y64, &mut []);
        single.forward(&(), &x.cast(), &mut y32, &mut []);
        assert_eq!(y32, y64.cast::<f32>());
    }

    #[test]
    fn init_is_standard_normal() {
        let mut table = Embedding::<f64, 100, 50, 1, 50>::ZERO;
        Layer::<f64, 1, 50>::init(&mut table, Init::GlorotUniform, &mut Rng(3));
        let n = 5000.0;
        let mean = table.weight.sum() / n;
        let var = table.weight.iter().map(|w| (w - mean).powi(2)).sum::<f64>() / n;
        assert!(mean.abs() < 0.05, "{mean}");
        assert!((var - 1.0).abs() < 0.05, "{var}");
    }

    const REFERENCE_EMBEDDING: [f64; 24] = [
        0.49272486499423007,
        0.020790331216645468,
        -0.49808230441792034,
        0.0949933378977206,
        -0.499041013989698,
        0.03360403626273746,
        -0.41141429748435443,
        0.3347848810983012,
        0.3251439200785584,
        -0.41141429748435443,
        0.3347848810983012,
        0.3251439200785584,
        0.10755999404390776,
        0.47036527833988656,
        -0.22876794688766067,
        -0.4185708890098734,
        -0.21728281103594838,
        0.47456227682394675,
        0.49272486499423007,
        0.020790331216645468,
        -0.49808230441792034,
        0.0949933378977206,
        -0.499041013989698,
        0.03360403626273746,
    ];
}
