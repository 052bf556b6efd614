//! Fully connected layer: `y = W·x + b`.

use crate::{ConstZero, Layer, Params, Real, Role, Store, TensorInfo, Zeroable, kernels};
use nalgebra::SMatrix;

/// Fully connected (affine) layer, PyTorch's `nn.Linear`: `y = W·x + b`.
///
/// `weight` is `[OUT, IN]` (PyTorch's layout, `fc.weight`), `bias` is `[OUT]` (`fc.bias`).
/// For a batch `X` of `B` columns:
///
/// - forward: `Y = W·X + b·1ᵀ` (on 512 inputs or more, `W·X` in two halves of its depth,
///   [`kernels::matmul_depth_halves`], in [`SCRATCH`](Layer::SCRATCH) of `OUT` per sample)
/// - backward: `∂L/∂W += ∂L/∂Y·Xᵀ`, `∂L/∂b += ∂L/∂Y·1`, `∂L/∂X += Wᵀ·∂L/∂Y`
///
/// All three are matrix-matrix products over the whole batch, computed by
/// [`kernels`](crate::kernels): a matrix-vector loop for one sample, direct loops for small
/// layers, a packed GEMM (AVX-512 where the CPU has it) for large ones; no allocation.
#[derive(Clone, Copy, Debug, PartialEq, Params, ConstZero, Zeroable)]
#[repr(C)]
pub struct Dense<T: Real, const IN: usize, const OUT: usize> {
    /// `W`, `[OUT, IN]`.
    pub weight: SMatrix<T, OUT, IN>,
    /// `b`, `[OUT]`.
    pub bias: SMatrix<T, OUT, 1>,
}

impl<T: Real, const IN: usize, const OUT: usize> Layer<T, IN, OUT> for Dense<T, IN, OUT> {
    const TENSORS: &'static [TensorInfo] = &[
        TensorInfo {
            name: "weight",
            shape: &[OUT, IN],
            role: Role::Weight,
        },
        TensorInfo {
            name: "bias",
            shape: &[OUT],
            role: Role::Bias,
        },
    ];

    /// Scratch for the forward product's second half of the depth, on 512 inputs or more
    /// ([`kernels::matmul_depth_halves`]): `OUT` per sample.
    const SCRATCH: usize = if IN >= kernels::DEPTH_HALVES_MIN_DEPTH {
        OUT
    } else {
        0
    };

    type Cache<const B: usize> = ();
    type State = ();

    // Always inlined (as are `forward_train`, `backward` and `param_gradients`): the passes
    // of a small network run in a copy compiled for AVX-512 (`network!`), where the inlined
    // loops of small products get its wide vectors; a call would run them as compiled for
    // the baseline. For large products the body is the call of a kernel.
    #[inline(always)]
    fn forward<const B: usize>(
        &self,
        _state: &(),
        x: &SMatrix<T, IN, B>,
        y: &mut SMatrix<T, OUT, B>,
        scratch: &mut [T],
    ) {
        for mut column in y.column_iter_mut() {
            column.copy_from(&self.bias);
        }
        kernels::matmul_depth_halves(y, &self.weight, x, true, scratch);
    }

    #[inline(always)]
    fn forward_train<const B: usize>(
        &self,
        state: &mut (),
        x: &SMatrix<T, IN, B>,
        y: &mut SMatrix<T, OUT, B>,
        _cache: &mut (),
        scratch: &mut [T],
    ) {
        self.forward(state, x, y, scratch);
    }

    /// `∂L/∂W` and `∂L/∂b` always; `∂L/∂X = Wᵀ·∂L/∂Y` (as costly as `∂L/∂W`) only when
    /// `dx` is given.
    #[inline(always)]
    fn backward<const B: usize>(
        &self,
        x: &SMatrix<T, IN, B>,
        _cache: &(),
        dy: &SMatrix<T, OUT, B>,
        dx: Option<&mut SMatrix<T, IN, B>>,
        grads: &mut Self,
        scratch: &mut [T],
    ) {
        self.backward_with(x, &(), dy, dx, Store::Add, grads, Store::Add, scratch);
    }

    /// Each gradient written or added as asked: written, `∂W`'s and `∂X`'s products start
    /// from their first term (no zeroing pass, and no read of the destination).
    #[inline(always)]
    fn backward_with<const B: usize>(
        &self,
        x: &SMatrix<T, IN, B>,
        _cache: &(),
        dy: &SMatrix<T, OUT, B>,
        dx: Option<&mut SMatrix<T, IN, B>>,
        dx_store: Store,
        grads: &mut Self,
        grads_store: Store,
        _scratch: &mut [T],
    ) {
        self.param_gradients_with(x, dy, grads, grads_store);
        if let Some(dx) = dx {
            kernels::matmul_atb(dx, &self.weight, dy, dx_store == Store::Add);
        }
    }
}

impl<T: Real, const IN: usize, const OUT: usize> Dense<T, IN, OUT> {
    /// The parameter half of [`Layer::backward`]: adds `∂L/∂W = ∂L/∂Y·Xᵀ` and
    /// `∂L/∂b = ∂L/∂Y·1` to `grads`, without computing `∂L/∂X`.
    ///
    /// What [`Layer::backward`] does with `dx: None` (a layer fed by the network's input,
    /// when no `∂L/∂input` is wanted): `∂L/∂X` costs as much as `∂L/∂W` (`IN·OUT·B`
    /// multiply-adds).
    #[inline(always)]
    pub fn param_gradients<const B: usize>(
        &self,
        x: &SMatrix<T, IN, B>,
        dy: &SMatrix<T, OUT, B>,
        grads: &mut Self,
    ) {
        self.param_gradients_with(x, dy, grads, Store::Add);
    }

    /// [`param_gradients`](Self::param_gradients), added to `grads` or written over them.
    #[inline(always)]
    fn param_gradients_with<const B: usize>(
        &self,
        x: &SMatrix<T, IN, B>,
        dy: &SMatrix<T, OUT, B>,
        grads: &mut Self,
        store: Store,
    ) {
        kernels::matmul_abt(&mut grads.weight, dy, x, store == Store::Add);
        if store == Store::Overwrite {
            // `0 + Σ`: the bits of adding to a zeroed gradient.
            grads.bias.fill(T::ZERO);
        }
        for column in dy.column_iter() {
            grads.bias += column;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::check_layer;
    use nalgebra::{Matrix2x3, Vector2};

    fn example() -> Dense<f64, 3, 2> {
        Dense {
            weight: Matrix2x3::new(1.0, 2.0, 3.0, -1.0, 0.5, 0.0),
            bias: Vector2::new(0.5, -2.0),
        }
    }

    #[test]
    fn forward_matches_hand_computation() {
        let x = SMatrix::<f64, 3, 2>::from_column_slice(&[1.0, 1.0, 1.0, 2.0, 0.0, -1.0]);
        let mut y = SMatrix::<f64, 2, 2>::ZERO;
        example().forward(&(), &x, &mut y, &mut []);
        // column 0: [1+2+3+0.5, -1+0.5+0-2]; column 1: [2+0-3+0.5, -2+0+0-2]
        assert_eq!(y.as_slice(), &[6.5, -2.5, -0.5, -4.0]);
    }

    #[test]
    fn backward_matches_hand_computation() {
        let x = SMatrix::<f64, 3, 1>::new(1.0, 2.0, 3.0);
        let dy = SMatrix::<f64, 2, 1>::new(1.0, -1.0);
        let mut y = SMatrix::ZERO;
        let mut dx = SMatrix::<f64, 3, 1>::ZERO;
        let mut grads = Dense::ZERO;
        let layer = example();
        layer.forward(&(), &x, &mut y, &mut []);
        layer.backward(&x, &(), &dy, Some(&mut dx), &mut grads, &mut []);
        // ∂L/∂W = dy·xᵀ, ∂L/∂b = dy, ∂L/∂x = Wᵀ·dy
        assert_eq!(
            grads.weight,
            Matrix2x3::new(1.0, 2.0, 3.0, -1.0, -2.0, -3.0)
        );
        assert_eq!(grads.bias, dy);
        assert_eq!(dx.as_slice(), &[2.0, 1.5, 3.0]);
    }

    #[test]
    fn gradients_match_finite_differences() {
        let mut layer = example();
        let x = SMatrix::<f64, 3, 4>::from_fn(|i, j| (i as f64 - 1.3) * (j as f64 + 0.7));
        let report = check_layer(&mut layer, &(), &x);
        assert!(report.max_rel_error < 1e-8, "{report:?}");
    }

    /// Forward and backward of a layer large enough for the packed and dot-product kernels
    /// (and one of batch 1, the matrix-vector kernel), against the definitions: `y = Wx + b`,
    /// and `dx`, `dW`, `db` *added* to what they held.
    fn check_against_definition<const IN: usize, const OUT: usize, const B: usize>() {
        let value = |i: usize, j: usize, seed: usize| {
            ((i * 31 + j * 17 + seed * 7) % 23) as f64 / 11.0 - 1.0
        };
        // Boxed: the deep sizes are too large for a debug build's test thread.
        fn boxed<const R: usize, const C: usize>(
            f: impl Fn(usize, usize) -> f64,
        ) -> std::boxed::Box<SMatrix<f64, R, C>> {
            let mut m = SMatrix::<f64, R, C>::new_boxed();
            for j in 0..C {
                for i in 0..R {
                    m[(i, j)] = f(i, j);
                }
            }
            m
        }
        let mut layer = Dense::<f64, IN, OUT>::new_boxed();
        layer.weight = *boxed(|i, j| value(i, j, 1));
        layer.bias = *boxed(|i, _| value(i, 0, 2));
        let x = boxed::<IN, B>(|i, j| value(i, j, 3));
        let dy = boxed::<OUT, B>(|i, j| value(i, j, 4));
        let mut y = boxed::<OUT, B>(|_, _| 9.0);
        let scratch_len = <Dense<f64, IN, OUT> as Layer<f64, IN, OUT>>::SCRATCH * B;
        let mut scratch = std::vec![f64::NAN; scratch_len];
        layer.forward(&(), &x, &mut y, &mut scratch);
        let mut dx = boxed::<IN, B>(|_, _| 0.5);
        let mut grads = Dense::<f64, IN, OUT>::new_boxed();
        grads.weight.fill(0.25);
        grads.bias.fill(-0.25);
        layer.backward(&x, &(), &dy, Some(&mut dx), &mut grads, &mut []);
        for j in 0..B {
            for o in 0..OUT {
                let want: f64 = layer.bias[o]
                    + (0..IN)
                        .map(|i| layer.weight[(o, i)] * x[(i, j)])
                        .sum::<f64>();
                assert!((y[(o, j)] - want).abs() < 1e-12, "y[{o}, {j}]");
            }
            for i in 0..IN {
                let want: f64 = 0.5
                    + (0..OUT)
                        .map(|o| layer.weight[(o, i)] * dy[(o, j)])
                        .sum::<f64>();
                assert!((dx[(i, j)] - want).abs() < 1e-12, "dx[{i}, {j}]");
            }
        }
        for o in 0..OUT {
            for i in 0..IN {
                let want: f64 = 0.25 + (0..B).map(|j| dy[(o, j)] * x[(i, j)]).sum::<f64>();
                assert!((grads.weight[(o, i)] - want).abs() < 1e-12, "dW[{o}, {i}]");
            }
            let want: f64 = -0.25 + (0..B).map(|j| dy[(o, j)]).sum::<f64>();
            assert!((grads.bias[o] - want).abs() < 1e-12, "db[{o}]");
        }
    }

    #[test]
    fn every_kernel_path_matches_the_definition() {
        check_against_definition::<70, 40, 33>(); // packed GEMM, dot-product Wᵀ·∂Y
        check_against_definition::<300, 20, 1>(); // matrix-vector, dot products
        check_against_definition::<9, 5, 7>(); // direct loops, transposed copy
        check_against_definition::<16, 1, 1>(); // a single output row
        check_against_definition::<600, 40, 20>(); // the forward product in halves of its depth
        check_against_definition::<600, 40, 1>(); // scratch declared, matrix-vector kernel
    }

    #[test]
    fn deep_layers_match_finite_differences() {
        // 520 inputs: the forward product in two halves of its depth, in NaN scratch.
        let mut layer = Dense::<f64, 520, 3>::ZERO;
        for (k, w) in layer.weight.iter_mut().enumerate() {
            *w = ((k * 37 % 101) as f64 / 101.0 - 0.5) * 0.2;
        }
        layer.bias = SMatrix::from_fn(|i, _| i as f64 * 0.1 - 0.1);
        let x = SMatrix::<f64, 520, 6>::from_fn(|i, j| ((i * 7 + j * 13) % 29) as f64 / 29.0 - 0.5);
        let report = check_layer(&mut layer, &(), &x);
        assert!(report.max_rel_error < 1e-8, "{report:?}");
    }

    #[test]
    fn batch_equals_single_samples() {
        let layer = example();
        let x = SMatrix::<f64, 3, 4>::from_fn(|i, j| (i * 3 + j) as f64 * 0.25 - 1.0);
        let dy = SMatrix::<f64, 2, 4>::from_fn(|i, j| (i + 2 * j) as f64 * 0.5 - 1.0);
        let (mut y, mut dx, mut grads) = (SMatrix::ZERO, SMatrix::ZERO, Dense::ZERO);
        layer.forward(&(), &x, &mut y, &mut []);
        layer.backward(&x, &(), &dy, Some(&mut dx), &mut grads, &mut []);
        let mut single_grads = Dense::ZERO;
        for j in 0..4 {
            let xj: SMatrix<f64, 3, 1> = x.column(j).into();
            let dyj: SMatrix<f64, 2, 1> = dy.column(j).into();
            let (mut yj, mut dxj) = (SMatrix::ZERO, SMatrix::ZERO);
            layer.forward(&(), &xj, &mut yj, &mut []);
            layer.backward(&xj, &(), &dyj, Some(&mut dxj), &mut single_grads, &mut []);
            assert!((yj - y.column(j)).amax() < 1e-12);
            assert!((dxj - dx.column(j)).amax() < 1e-12);
        }
        assert!((single_grads.weight - grads.weight).amax() < 1e-12);
        assert!((single_grads.bias - grads.bias).amax() < 1e-12);
    }
}
