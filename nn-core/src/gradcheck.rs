//! Finite-difference gradient checking, in `f64`.
//!
//! Each check builds a scalar loss `L = Σ_i c_i·y_i` from the outputs with fixed
//! pseudo-random weights `c_i ∈ [−1, 1]` (so every output matters and no symmetry hides a
//! bug), takes the analytic gradient from the backward pass (`∂L/∂y = c`), and compares each
//! component with the central difference `(L(θ + h) − L(θ − h)) / 2h`, `h = 1e-5`.
//!
//! The error of one component is `|analytic − numeric| / max(|analytic|, |numeric|, 0.01)`:
//! relative for gradients of magnitude 0.01 and more, and absolute (scaled by 100) below,
//! where the round-off of the difference quotient (≈ 1e-11·|L|) would otherwise dominate.
//! Keep inputs away from the kinks of non-smooth functions (ReLU at 0), where the two
//! one-sided derivatives differ and no finite difference can agree with both.

use crate::activations::Reads;
use crate::memory::{Outputs, TapeIo};
use crate::{Activation, ConstZero, Layer, Network, Params, Real, Values};
use nalgebra::SMatrix;

/// Step of the central differences.
pub const STEP: f64 = 1e-5;
/// Gradients smaller than this are compared absolutely (see the module docs).
pub const FLOOR: f64 = 1e-2;

/// What was compared, for [`Worst`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wrt {
    /// The `index`-th scalar of the parameters (`Params::as_slice` order).
    Param,
    /// The `index`-th scalar of the input (`Values::get` order).
    Input,
}

/// The component with the largest error.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Worst {
    /// Parameter or input.
    pub wrt: Wrt,
    /// Its index.
    pub index: usize,
    /// The backward pass's value.
    pub analytic: f64,
    /// The central difference.
    pub numeric: f64,
}

/// Result of a gradient check.
#[derive(Clone, Copy, Debug, PartialEq, Default)]
pub struct Report {
    /// Largest error over all components (see the module docs for its definition).
    pub max_rel_error: f64,
    /// Number of comparisons made: each parameter twice (the gradients of the full backward
    /// pass and of the training one), each input component once.
    pub checked: usize,
    /// The component with the largest error.
    pub worst: Option<Worst>,
}

impl Report {
    fn record(&mut self, wrt: Wrt, index: usize, analytic: f64, numeric: f64) {
        let scale = analytic.abs().max(numeric.abs()).max(FLOOR);
        let error = (analytic - numeric).abs() / scale;
        self.checked += 1;
        if self.worst.is_none() || error.is_nan() || error > self.max_rel_error {
            self.max_rel_error = error;
            self.worst = Some(Worst {
                wrt,
                index,
                analytic,
                numeric,
            });
        }
    }
}

/// The fixed weight of output component `i` in the test loss, in `[−1, 1]`.
fn loss_weight(i: usize) -> f64 {
    // A multiplicative hash (Knuth) of the index, mapped to [−1, 1]; never exactly 0.
    let h = (i as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 11;
    (h as f64 / (1u64 << 53) as f64) * 2.0 - 1.0 + 1e-3
}

fn test_loss<V: Values<f64>>(y: &V) -> f64 {
    (0..V::LEN).map(|i| loss_weight(i) * y.get(i)).sum()
}

fn loss_gradient<V: Values<f64>>() -> V {
    let mut dy = V::ZERO;
    for i in 0..V::LEN {
        *dy.get_mut(i) = loss_weight(i);
    }
    dy
}

fn central_difference(mut loss_at: impl FnMut(f64) -> f64) -> f64 {
    (loss_at(STEP) - loss_at(-STEP)) / (2.0 * STEP)
}

/// Checks a network's backward pass against finite differences, for every parameter and
/// every input component, on the batch `input`; the parameter gradients of both
/// [`Network::backward`] and [`Network::backward_params`]. Also asserts that
/// [`Network::backward_params_overwrite`] gives `backward_params`'s values.
///
/// The function differentiated is the training forward pass (`forward_train`: batch
/// statistics, the same dropout mask), each evaluation starting from the network's state as
/// it was, so that state updates do not leak between evaluations. `net` is perturbed one
/// scalar at a time and restored exactly; its state is left as one training pass leaves it.
pub fn check_network<N: Network<f64>, const B: usize>(net: &mut N, input: &N::Input<B>) -> Report {
    let before = net.clone();
    let mut tape = <N::Tape<B> as ConstZero>::ZERO;
    let mut grads = <N::Grads as ConstZero>::ZERO;
    net.forward_train(input, &mut tape);
    *tape.d_output_mut() = loss_gradient::<N::Output<B>>();
    net.backward(&mut tape, &mut grads);
    let d_input = tape.d_input().clone();
    // The training backward pass, from the same forward pass: the same parameter gradients.
    let mut params_only = <N::Grads as ConstZero>::ZERO;
    before.clone().forward_train(input, &mut tape);
    *tape.d_output_mut() = loss_gradient::<N::Output<B>>();
    net.backward_params(&mut tape, &mut params_only);
    // The training step's pass, writing over gradients that hold NaNs: the same values.
    let mut overwritten = <N::Grads as ConstZero>::ZERO;
    overwritten.as_mut_slice().fill(f64::NAN);
    before.clone().forward_train(input, &mut tape);
    *tape.d_output_mut() = loss_gradient::<N::Output<B>>();
    net.backward_params_overwrite(&mut tape, &mut overwritten);
    assert_eq!(
        overwritten.as_slice(),
        params_only.as_slice(),
        "backward_params_overwrite differs from backward_params on zeroed gradients"
    );
    // The training step's passes, which read the caller's input instead of a copy in the
    // tape: the same values, on a tape that holds another batch's input (a pass that read
    // the tape's copy would differ).
    let mut other_input = input.clone();
    for i in 0..<N::Input<B> as Values<f64>>::LEN {
        *other_input.get_mut(i) = 0.5 - other_input.get(i);
    }
    before.clone().forward_train(&other_input, &mut tape);
    let mut borrowing = <N::Grads as ConstZero>::ZERO;
    borrowing.as_mut_slice().fill(f64::NAN);
    before.clone().forward_train_borrowing(input, &mut tape);
    *tape.d_output_mut() = loss_gradient::<N::Output<B>>();
    net.backward_params_overwrite_borrowing(input, &mut tape, &mut borrowing);
    assert_eq!(
        borrowing.as_slice(),
        params_only.as_slice(),
        "the borrowing passes differ from forward_train and backward_params"
    );

    // The loss of a training pass from the original state, at parameters `params_of(probe)`.
    let mut probe_tape = <N::Tape<B> as ConstZero>::ZERO;
    let mut loss_at = |perturb: &mut dyn FnMut(&mut N), x: &N::Input<B>| {
        let mut probe = before.clone();
        perturb(&mut probe);
        probe.forward_train(x, &mut probe_tape);
        test_loss(probe_tape.output())
    };

    let mut report = Report::default();
    for i in 0..<N as Params<f64>>::LEN {
        let numeric = central_difference(|delta| {
            loss_at(&mut |probe: &mut N| probe.as_mut_slice()[i] += delta, input)
        });
        report.record(Wrt::Param, i, grads.as_slice()[i], numeric);
        report.record(Wrt::Param, i, params_only.as_slice()[i], numeric);
    }
    let mut x = input.clone();
    for i in 0..<N::Input<B> as Values<f64>>::LEN {
        let numeric = central_difference(|delta| {
            let saved = x.get(i);
            *x.get_mut(i) = saved + delta;
            let loss = loss_at(&mut |_: &mut N| {}, &x);
            *x.get_mut(i) = saved;
            loss
        });
        report.record(Wrt::Input, i, d_input.get(i), numeric);
    }
    report
}

/// Checks a [`Layer`]'s backward pass against finite differences, for every parameter and
/// every input component, on the batch `x`, starting each training forward pass from
/// `state`.
///
/// Every parameter is compared twice: with the gradients of `backward` given a `dx`, and with
/// those of `backward` without one (`dx: None`, which must add the same parameter
/// gradients). The passes get `Layer::SCRATCH · B + Layer::SCRATCH_PER_CALL` scalars of scratch, NaN at first, so
/// that a layer reading scratch it has not written fails the check (a layer with scratch
/// needs the `alloc` feature here).
pub fn check_layer<L, const IN: usize, const OUT: usize, const B: usize>(
    layer: &mut L,
    state: &L::State,
    x: &SMatrix<f64, IN, B>,
) -> Report
where
    L: Layer<f64, IN, OUT>,
{
    let mut scratch = scratch(L::SCRATCH * B + L::SCRATCH_PER_CALL);
    let scratch = &mut scratch[..];
    let forward =
        |layer: &L, x: &SMatrix<f64, IN, B>, cache: &mut L::Cache<B>, scratch: &mut [f64]| {
            let mut y = SMatrix::<f64, OUT, B>::ZERO;
            layer.forward_train(&mut state.clone(), x, &mut y, cache, scratch);
            y
        };
    let mut cache = L::Cache::<B>::ZERO;
    forward(layer, x, &mut cache, scratch);
    let dy = loss_gradient::<SMatrix<f64, OUT, B>>();
    let (mut dx, mut grads, mut params_only) = (SMatrix::ZERO, L::ZERO, L::ZERO);
    layer.backward(x, &cache, &dy, Some(&mut dx), &mut grads, scratch);
    layer.backward(x, &cache, &dy, None, &mut params_only, scratch);

    let mut probe_cache = L::Cache::<B>::ZERO;
    let mut report = Report::default();
    for i in 0..L::LEN {
        let numeric = central_difference(|delta| {
            let saved = layer.as_slice()[i];
            layer.as_mut_slice()[i] = saved + delta;
            let loss = test_loss(&forward(layer, x, &mut probe_cache, scratch));
            layer.as_mut_slice()[i] = saved;
            loss
        });
        report.record(Wrt::Param, i, grads.as_slice()[i], numeric);
        report.record(Wrt::Param, i, params_only.as_slice()[i], numeric);
    }
    check_input(&mut report, x, &dx, |x| {
        let mut cache = L::Cache::<B>::ZERO;
        forward(layer, x, &mut cache, scratch)
    });
    report
}

/// `len` scalars of layer scratch, all NaN.
#[cfg(feature = "alloc")]
fn scratch(len: usize) -> alloc::vec::Vec<f64> {
    alloc::vec![f64::NAN; len]
}

/// No scratch: without an allocator only layers that need none can be checked.
#[cfg(not(feature = "alloc"))]
fn scratch(len: usize) -> [f64; 0] {
    assert!(
        len == 0,
        "gradcheck::check_layer: a layer with scratch needs the `alloc` feature"
    );
    []
}

/// Checks an [`Activation`]'s backward pass against finite differences at `x`, giving it
/// the value its [`READS`](Activation::READS) names (see [`activation_backward`]).
pub fn check_activation<A: Activation<f64>, const N: usize, const B: usize>(
    activation: &A,
    x: &SMatrix<f64, N, B>,
) -> Report {
    let forward = |x: &SMatrix<f64, N, B>| {
        let mut y = SMatrix::ZERO;
        activation.forward(x, &mut y);
        y
    };
    let y = forward(x);
    let mut dx = SMatrix::ZERO;
    activation_backward(activation, x, &y, &loss_gradient(), &mut dx);
    let mut report = Report::default();
    check_input(&mut report, x, &dx, forward);
    report
}

/// Runs `activation.backward` as generated code does, with the value of the forward pass
/// its [`READS`](Activation::READS) names: `x` for [`Reads::Input`], `y` for
/// [`Reads::Output`], and for [`Reads::Nothing`] a matrix of NaN, so that a backward pass
/// that reads it after all gives NaN and fails its test.
pub fn activation_backward<T: Real, A: Activation<T>, const N: usize, const B: usize>(
    activation: &A,
    x: &SMatrix<T, N, B>,
    y: &SMatrix<T, N, B>,
    dy: &SMatrix<T, N, B>,
    dx: &mut SMatrix<T, N, B>,
) {
    match A::READS {
        Reads::Input => activation.backward(x, dy, dx),
        Reads::Output => activation.backward(y, dy, dx),
        Reads::Nothing => activation.backward(&SMatrix::repeat(T::of(f64::NAN)), dy, dx),
    }
}

fn check_input<const N: usize, const B: usize, Y: Values<f64>>(
    report: &mut Report,
    x: &SMatrix<f64, N, B>,
    dx: &SMatrix<f64, N, B>,
    mut forward: impl FnMut(&SMatrix<f64, N, B>) -> Y,
) {
    let mut x = *x;
    for i in 0..N * B {
        let numeric = central_difference(|delta| {
            let saved = x.as_slice()[i];
            x.as_mut_slice()[i] = saved + delta;
            let loss = test_loss(&forward(&x));
            x.as_mut_slice()[i] = saved;
            loss
        });
        report.record(Wrt::Input, i, dx.as_slice()[i], numeric);
    }
}
