//! A user's layer with state and a cache, used in a network: the state is updated by
//! `forward_train` and read by `forward`, the cache carries what backward needs, and the
//! generated gradients agree with finite differences of the training pass.

mod common;

use common::{random_matrix, randomize};
use nn::prelude::*;

/// `y = s ⊙ (x − μ)`: μ is the batch mean in training and a running mean in inference
/// (like batch normalization without the variance).
#[derive(Clone, Debug, PartialEq, Params, ConstZero, Zeroable)]
#[repr(C)]
pub struct Center<T: Real, const N: usize> {
    pub scale: SMatrix<T, N, 1>,
}

/// The running mean, updated with momentum 0.1 as PyTorch's batch norm.
#[derive(Clone, Debug, PartialEq, ConstZero, Zeroable)]
pub struct RunningMean<T: Real, const N: usize> {
    pub mean: SMatrix<T, N, 1>,
}

impl<T: Real, const N: usize> Layer<T, N, N> for Center<T, N> {
    type Cache<const B: usize> = SMatrix<T, N, 1>; // the batch mean
    type State = RunningMean<T, N>;

    fn forward<const B: usize>(
        &self,
        state: &Self::State,
        x: &SMatrix<T, N, B>,
        y: &mut SMatrix<T, N, B>,
        _scratch: &mut [T],
    ) {
        for (j, mut column) in y.column_iter_mut().enumerate() {
            column.copy_from(&(x.column(j) - state.mean).component_mul(&self.scale));
        }
    }

    fn forward_train<const B: usize>(
        &self,
        state: &mut Self::State,
        x: &SMatrix<T, N, B>,
        y: &mut SMatrix<T, N, B>,
        mean: &mut SMatrix<T, N, 1>,
        _scratch: &mut [T],
    ) {
        *mean = x.column_mean();
        for (j, mut column) in y.column_iter_mut().enumerate() {
            column.copy_from(&(x.column(j) - *mean).component_mul(&self.scale));
        }
        state.mean = state.mean * T::of(0.9) + *mean * T::of(0.1);
    }

    fn backward<const B: usize>(
        &self,
        x: &SMatrix<T, N, B>,
        mean: &SMatrix<T, N, 1>,
        dy: &SMatrix<T, N, B>,
        dx: Option<&mut SMatrix<T, N, B>>,
        grads: &mut Self,
        _scratch: &mut [T],
    ) {
        for j in 0..B {
            grads.scale += dy.column(j).component_mul(&(x.column(j) - mean));
        }
        // ∂L/∂x_j = s ⊙ (dy_j − mean_k dy_k), since μ depends on every x_k; not computed
        // when the input needs no gradient (`None`).
        if let Some(dx) = dx {
            let dy_mean = dy.column_mean();
            for j in 0..B {
                let mut dx_j = dx.column_mut(j);
                dx_j += (dy.column(j) - dy_mean).component_mul(&self.scale);
            }
        }
    }
}

nn::network! {
    pub struct Centered {
        fc: Dense<4>,
        center: Center<T, 4> -> [4],
        head: Dense<2>,
    }
    forward(x: [3]) -> y {
        let y = head(tanh(center(fc(x))));
    }
}

#[test]
fn state_is_updated_by_training_and_read_by_inference() {
    let mut net = Centered::<f64>::ZERO;
    randomize(&mut net, 1, 1.0);
    assert_eq!(net.state.center, RunningMean::ZERO);
    let x = random_matrix::<3, 5>(2, 1.0);
    let mut tape = CenteredTape::<f64, 5>::ZERO;
    net.forward_train(&x, &mut tape);
    // The cache holds the batch mean of the layer's input; the state moved 10% towards it.
    assert!((tape.center_out_cache - tape.fc_out.column_mean()).amax() < 1e-15);
    assert!((net.state.center.mean - tape.center_out_cache * 0.1).amax() < 1e-15);
    // Inference uses the running mean, so it differs from the training pass.
    assert!((net.forward(&x) - tape.output).amax() > 1e-3);
    // The state is not part of the parameters.
    assert_eq!(Centered::<f64>::PARAM_COUNT, (3 * 4 + 4) + 4 + (4 * 2 + 2));
}

#[test]
fn gradients_through_a_stateful_layer_match_finite_differences() {
    let mut net = Centered::<f64>::ZERO;
    randomize(&mut net, 3, 1.0);
    let report = nn::gradcheck::check_network(&mut net, &random_matrix::<3, 4>(4, 1.0));
    assert!(report.max_rel_error < 1e-7, "{report:?}");
}

#[test]
fn the_layer_alone_passes_the_gradient_check() {
    let mut layer = Center::<f64, 3> {
        scale: SMatrix::from_column_slice(&[0.5, -1.5, 2.0]),
    };
    let state = RunningMean {
        mean: SMatrix::from_column_slice(&[0.1, 0.2, 0.3]),
    };
    let report = nn::gradcheck::check_layer(&mut layer, &state, &random_matrix::<3, 4>(5, 1.0));
    assert!(report.max_rel_error < 1e-8, "{report:?}");
}

/// The derives by path, without the prelude: `nn::Params` names both the trait and its
/// derive, as serde's `Serialize`. A field that is not a parameter is marked and comes last.
mod by_path {
    #[derive(nn::Params, nn::ConstZero, nn::Zeroable)]
    #[repr(C)]
    pub struct Affine<T: nn::Real> {
        pub weight: nn::SMatrix<T, 2, 2>,
        pub bias: nn::SMatrix<T, 2, 1>,
        /// Steps taken: not a parameter, so outside the slice.
        #[nn(skip)]
        pub steps: u32,
    }
}

#[test]
fn derived_params_by_path_count_only_the_parameters() {
    use by_path::Affine;
    assert_eq!(<Affine<f32> as nn::Params<f32>>::LEN, 2 * 2 + 2);
    let mut affine = <Affine<f64> as nn::ConstZero>::ZERO;
    affine.bias[1] = 2.0;
    affine.steps = 3;
    assert_eq!(
        nn::Params::as_slice(&affine),
        [0.0, 0.0, 0.0, 0.0, 0.0, 2.0]
    );
    nn::Params::set_zero(&mut affine);
    assert_eq!((affine.bias[1], affine.steps), (0.0, 3));
}
