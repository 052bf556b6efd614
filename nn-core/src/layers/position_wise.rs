//! A layer applied to every position of a sequence: PyTorch's `nn.Linear` on a `[S, D]`
//! input, which acts on the last dimension.

use crate::{ConstZero, Layer, Params, Real, TensorInfo, Zeroable};
use core::marker::PhantomData;
use nalgebra::SMatrix;
use rand_core::Rng;

/// The layer `L` (mapping `D` features to `O`) applied to each of the `S` positions of a
/// sequence `[S, D]`, giving `[S, O]`, with the same parameters at every position:
/// `y_t = L(x_t)`. `SD = S·D` and `SO = S·O` are the flat sizes.
///
/// It has `L`'s parameters and tensor names (a `Dense` inside keeps `weight` and `bias`, as
/// PyTorch's `nn.Linear` applied to a `(N, S, D)` tensor), so weight files are unchanged.
/// The gradient of the parameters is the sum over the positions.
#[derive(Clone, Debug, PartialEq, Params, ConstZero, Zeroable)]
#[repr(transparent)]
pub struct PositionWise<
    T: Real,
    L,
    const D: usize,
    const O: usize,
    const S: usize,
    const SD: usize,
    const SO: usize,
> {
    /// The layer applied at each position.
    pub layer: L,
    _scalar: PhantomData<T>,
}

impl<T, L, const D: usize, const O: usize, const S: usize, const SD: usize, const SO: usize>
    PositionWise<T, L, D, O, S, SD, SO>
where
    T: Real,
{
    const SIZES_AGREE: () = assert!(SD == S * D && SO == S * O, "SD = S·D and SO = S·O");
}

/// Position `t` of sample `j` of a batch of sequences, as a column vector.
fn position<T: Real, const N: usize, const F: usize, const B: usize>(
    batch: &SMatrix<T, N, B>,
    t: usize,
    j: usize,
) -> SMatrix<T, F, 1> {
    batch.fixed_view::<F, 1>(t * F, j).into_owned()
}

impl<T, L, const D: usize, const O: usize, const S: usize, const SD: usize, const SO: usize>
    Layer<T, SD, SO> for PositionWise<T, L, D, O, S, SD, SO>
where
    T: Real,
    L: Layer<T, D, O, State = ()> + Clone + core::fmt::Debug + PartialEq,
{
    const TENSORS: &'static [TensorInfo] = L::TENSORS;

    /// None per sample: the inner layer runs one position at a time (a batch of 1), so one
    /// call's worth of its scratch serves every position.
    const SCRATCH: usize = 0;

    /// The inner layer's scratch for a batch of 1.
    const SCRATCH_PER_CALL: usize = L::SCRATCH + L::SCRATCH_PER_CALL;

    /// The inner layer's cache for each position of each sample.
    type Cache<const B: usize> = [[L::Cache<1>; S]; B];
    type State = ();

    fn forward<const B: usize>(
        &self,
        _: &(),
        x: &SMatrix<T, SD, B>,
        y: &mut SMatrix<T, SO, B>,
        scratch: &mut [T],
    ) {
        let () = Self::SIZES_AGREE;
        for j in 0..B {
            for t in 0..S {
                let mut y_t = SMatrix::<T, O, 1>::ZERO;
                self.layer.forward(
                    &(),
                    &position::<T, SD, D, B>(x, t, j),
                    &mut y_t,
                    &mut scratch[..Self::SCRATCH_PER_CALL],
                );
                y.fixed_view_mut::<O, 1>(t * O, j).copy_from(&y_t);
            }
        }
    }

    fn forward_train<const B: usize>(
        &self,
        _: &mut (),
        x: &SMatrix<T, SD, B>,
        y: &mut SMatrix<T, SO, B>,
        cache: &mut Self::Cache<B>,
        scratch: &mut [T],
    ) {
        let () = Self::SIZES_AGREE;
        for (j, caches) in cache.iter_mut().enumerate() {
            for (t, cache) in caches.iter_mut().enumerate() {
                let mut y_t = SMatrix::<T, O, 1>::ZERO;
                self.layer.forward_train(
                    &mut (),
                    &position::<T, SD, D, B>(x, t, j),
                    &mut y_t,
                    cache,
                    &mut scratch[..Self::SCRATCH_PER_CALL],
                );
                y.fixed_view_mut::<O, 1>(t * O, j).copy_from(&y_t);
            }
        }
    }

    fn backward<const B: usize>(
        &self,
        x: &SMatrix<T, SD, B>,
        cache: &Self::Cache<B>,
        dy: &SMatrix<T, SO, B>,
        mut dx: Option<&mut SMatrix<T, SD, B>>,
        grads: &mut Self,
        scratch: &mut [T],
    ) {
        for (j, caches) in cache.iter().enumerate() {
            for (t, cache) in caches.iter().enumerate() {
                let x_t = position::<T, SD, D, B>(x, t, j);
                let dy_t = position::<T, SO, O, B>(dy, t, j);
                let scratch = &mut scratch[..Self::SCRATCH_PER_CALL];
                let Some(dx) = dx.as_deref_mut() else {
                    self.layer
                        .backward(&x_t, cache, &dy_t, None, &mut grads.layer, scratch);
                    continue;
                };
                let mut dx_t = position::<T, SD, D, B>(dx, t, j);
                self.layer.backward(
                    &x_t,
                    cache,
                    &dy_t,
                    Some(&mut dx_t),
                    &mut grads.layer,
                    scratch,
                );
                dx.fixed_view_mut::<D, 1>(t * D, j).copy_from(&dx_t);
            }
        }
    }

    fn init<R: Rng + ?Sized>(&mut self, scheme: crate::init::Init, rng: &mut R) {
        self.layer.init(scheme, rng);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layers::Dense;
    use crate::test_util::check_layer;

    type Seq = PositionWise<f64, Dense<f64, 3, 2>, 3, 2, 4, 12, 8>;

    fn example() -> Seq {
        let mut layer = Seq::ZERO;
        for (i, p) in layer.as_mut_slice().iter_mut().enumerate() {
            *p = (i as f64 * 0.37).sin();
        }
        layer
    }

    #[test]
    fn each_position_gets_the_same_layer() {
        let layer = example();
        let x = SMatrix::<f64, 12, 2>::from_fn(|i, j| (i as f64 - 5.0) * 0.3 + j as f64);
        let mut y = SMatrix::ZERO;
        layer.forward(&(), &x, &mut y, &mut []);
        for j in 0..2 {
            for t in 0..4 {
                let x_t: SMatrix<f64, 3, 1> = x.fixed_view::<3, 1>(3 * t, j).into_owned();
                let expected = layer.layer.weight * x_t + layer.layer.bias;
                assert!((y.fixed_view::<2, 1>(2 * t, j) - expected).amax() < 1e-15);
            }
        }
    }

    #[test]
    fn gradients_match_finite_differences() {
        let mut layer = example();
        let x = SMatrix::<f64, 12, 3>::from_fn(|i, j| ((i * 5 + j * 3) % 7) as f64 * 0.2 - 0.6);
        let report = check_layer(&mut layer, &(), &x);
        assert!(report.max_rel_error < 1e-8, "{report:?}");
    }

    /// `y = w·x` on `N` features, going through scratch (`N` scalars per sample) both ways:
    /// a layer that needs scratch, for the plumbing of `PositionWise` and of the checker.
    #[derive(Clone, Debug, PartialEq, Params, ConstZero, Zeroable)]
    #[repr(C)]
    struct ScaledThroughScratch<T: Real, const N: usize> {
        w: SMatrix<T, 1, 1>,
    }

    impl<const N: usize> Layer<f64, N, N> for ScaledThroughScratch<f64, N> {
        const SCRATCH: usize = N;
        type Cache<const B: usize> = ();
        type State = ();

        fn forward<const B: usize>(
            &self,
            _: &(),
            x: &SMatrix<f64, N, B>,
            y: &mut SMatrix<f64, N, B>,
            scratch: &mut [f64],
        ) {
            assert_eq!(scratch.len(), N * B);
            for (s, &x) in scratch.iter_mut().zip(x.iter()) {
                *s = self.w[0] * x;
            }
            y.copy_from_slice(scratch);
        }

        fn backward<const B: usize>(
            &self,
            x: &SMatrix<f64, N, B>,
            _: &(),
            dy: &SMatrix<f64, N, B>,
            dx: Option<&mut SMatrix<f64, N, B>>,
            grads: &mut Self,
            scratch: &mut [f64],
        ) {
            assert_eq!(scratch.len(), N * B);
            grads.w[0] += x.dot(dy);
            if let Some(dx) = dx {
                for (s, &dy) in scratch.iter_mut().zip(dy.iter()) {
                    *s = self.w[0] * dy;
                }
                for (dx, &s) in dx.iter_mut().zip(scratch.iter()) {
                    *dx += s;
                }
            }
        }
    }

    #[test]
    fn passes_its_scratch_to_the_inner_layer() {
        type Scaled = PositionWise<f64, ScaledThroughScratch<f64, 3>, 3, 3, 4, 12, 12>;
        // One position's worth, whatever the batch.
        assert_eq!(<Scaled as Layer<f64, 12, 12>>::SCRATCH, 0);
        assert_eq!(<Scaled as Layer<f64, 12, 12>>::SCRATCH_PER_CALL, 3);
        let mut layer = Scaled::ZERO;
        layer.layer.w[0] = -1.5;
        let x = SMatrix::<f64, 12, 2>::from_fn(|i, j| i as f64 * 0.25 - j as f64);
        // The network's scratch for B = 2; the inner layer gets the same 3 scalars at each
        // position.
        let (mut y, mut scratch) = (SMatrix::ZERO, [f64::NAN; 3]);
        layer.forward(&(), &x, &mut y, &mut scratch);
        assert_eq!(y, x * -1.5);
        // The checker gives the layer NaN scratch of SCRATCH · B + SCRATCH_PER_CALL scalars.
        let report = check_layer(&mut layer, &(), &x);
        assert!(report.max_rel_error < 1e-8, "{report:?}");
    }

    #[test]
    fn keeps_the_inner_layer_names() {
        assert_eq!(<Seq as Layer<f64, 12, 8>>::TENSORS[0].name, "weight");
        assert_eq!(<Seq as Params<f64>>::LEN, 8);
    }
}
