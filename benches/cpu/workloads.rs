//! The CPU workloads W1–W6 of BENCHMARKS.md: their data, nn's networks, hand-written nalgebra
//! versions (nalgebra's own products, or matrixmultiply's), and the timing harness.
//!
//! Shared by the `cpu` bench of the `nn` package and by `bench-peers` (which adds dfdx and
//! candle and includes this file by path), so that every contestant gets the same data.

#![allow(dead_code)] // each includer uses a part

use nn::loss::{Loss, Mse, SoftmaxCrossEntropy};
use nn::optim::{Optimizer, Sgd, SgdConfig};
use nn::prelude::*;
use nn::train::{StepOptions, train_step};
use std::hint::black_box;
use std::time::{Duration, Instant};

/// Learning rate of every training workload (plain SGD).
pub const LR: f32 = 0.01;

nn::network! {
    /// W1, W4: 2 → 16 → 16 → 1, tanh, linear output.
    pub struct Tiny {
        input: [2],
        l1: Dense<16>, Tanh,
        l2: Dense<16>, Tanh,
        l3: Dense<1>,
    }
}

/// [`nn::activations::TanhFast`] as a parameter-free layer, so that a network can use it
/// before the macro knows it as an activation: the generated code is the same as for an
/// activation node (one forward call, one backward call, one tape entry).
#[derive(Clone, Debug, PartialEq)]
#[repr(C)]
pub struct FastTanh<T: Real, const N: usize>([T; 0]);

impl<T: Real, const N: usize> ConstZero for FastTanh<T, N> {
    const ZERO: Self = FastTanh([]);
}

// SAFETY: repr(C), no bytes.
unsafe impl<T: Real, const N: usize> Zeroable for FastTanh<T, N> {}

// SAFETY: repr(C), zero scalars, aligned as `T`.
unsafe impl<T: Real, const N: usize> Params<T> for FastTanh<T, N> {
    const LEN: usize = 0;
}

impl<T: Real, const N: usize> Layer<T, N, N> for FastTanh<T, N> {
    type Cache<const B: usize> = ();
    type State = ();

    #[inline]
    fn forward<const B: usize>(&self, _: &(), x: &SMatrix<T, N, B>, y: &mut SMatrix<T, N, B>) {
        nn::activations::TanhFast.forward(x, y);
    }

    #[inline]
    fn backward<const B: usize>(
        &self,
        x: &SMatrix<T, N, B>,
        y: &SMatrix<T, N, B>,
        _: &(),
        dy: &SMatrix<T, N, B>,
        dx: &mut SMatrix<T, N, B>,
        _: &mut Self,
    ) {
        nn::activations::TanhFast.backward(x, y, dy, dx);
    }
}

nn::network! {
    /// W1, W4 with `TanhFast`.
    pub struct TinyFast {
        input: [2],
        l1: Dense<16>,
        a1: FastTanh<T, 16> -> [16],
        l2: Dense<16>,
        a2: FastTanh<T, 16> -> [16],
        l3: Dense<1>,
    }
}

nn::network! {
    /// W2: 64 → 32 → 16 → 10, ReLU, logits.
    pub struct Small {
        input: [64],
        l1: Dense<32>, Relu,
        l2: Dense<16>, Relu,
        l3: Dense<10>,
    }
}

nn::network! {
    /// W3, W5, W6: 784 → 256 → 128 → 10, ReLU, logits.
    pub struct Mnist {
        input: [784],
        l1: Dense<256>, Relu,
        l2: Dense<128>, Relu,
        l3: Dense<10>,
    }
}

// ---------------------------------------------------------------------------------------
// Data

/// SplitMix64: the generator of every weight and input, the same for every contestant.
pub struct SplitMix(pub u64);

impl SplitMix {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in `[-limit, limit)`.
    pub fn uniform(&mut self, limit: f32) -> f32 {
        ((self.next_u64() >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0) * limit
    }
}

/// One dense layer's parameters in PyTorch's layout: `w` is `[out, in]` row-major.
#[derive(Clone, Debug)]
pub struct LayerData {
    pub inputs: usize,
    pub outputs: usize,
    pub w: Vec<f32>,
    pub b: Vec<f32>,
}

/// Targets of a batch: one value per sample (MSE) or one class index per sample
/// (softmax cross-entropy).
#[derive(Clone, Debug)]
pub enum Targets {
    Values(Vec<f32>),
    Classes(Vec<usize>),
}

/// A workload's data: initial parameters, a batch (`x` is `[batch, in]` row-major, i.e.
/// column-major `in × batch`, one sample per column) and its targets.
#[derive(Clone, Debug)]
pub struct Data {
    pub layers: Vec<LayerData>,
    pub batch: usize,
    pub x: Vec<f32>,
    pub targets: Targets,
}

/// Glorot-uniform weights, small biases, inputs in `[-1, 1)`, targets in `[-1, 1)` or
/// classes `0..10`.
pub fn data(sizes: &[usize], batch: usize, classes: bool, seed: u64) -> Data {
    let mut rng = SplitMix(seed);
    let layers = sizes
        .windows(2)
        .map(|io| {
            let (inputs, outputs) = (io[0], io[1]);
            let limit = (6.0 / (inputs + outputs) as f32).sqrt();
            LayerData {
                inputs,
                outputs,
                w: (0..inputs * outputs).map(|_| rng.uniform(limit)).collect(),
                b: (0..outputs).map(|_| rng.uniform(0.1)).collect(),
            }
        })
        .collect();
    let x = (0..sizes[0] * batch).map(|_| rng.uniform(1.0)).collect();
    let targets = if classes {
        Targets::Classes((0..batch).map(|_| (rng.next_u64() % 10) as usize).collect())
    } else {
        Targets::Values((0..batch).map(|_| rng.uniform(1.0)).collect())
    };
    Data {
        layers,
        batch,
        x,
        targets,
    }
}

pub fn w1_data() -> Data {
    data(&[2, 16, 16, 1], 1, false, 1)
}
pub fn w2_data() -> Data {
    data(&[64, 32, 16, 10], 32, true, 2)
}
pub fn w3_data(batch: usize) -> Data {
    data(&[784, 256, 128, 10], batch, true, 3)
}

/// A checksum of outputs that notices permutations: `Σ_k y_k·(1 + k mod 7)`.
pub fn checksum(y: &[f32]) -> f32 {
    y.iter()
        .enumerate()
        .map(|(k, &v)| v * (1 + k % 7) as f32)
        .sum()
}

// ---------------------------------------------------------------------------------------
// The harness

/// A contestant: one training step (returns the loss before the update) or one inference
/// (returns the checksum of the outputs).
pub trait Run {
    fn run(&mut self) -> f32;
}

impl<F: FnMut() -> f32> Run for F {
    fn run(&mut self) -> f32 {
        self()
    }
}

/// Runs every contestant `steps` times from its initial state and checks that they agree
/// with the first one, step by step, to `rel_tol`. Returns the first contestant's values.
pub fn verify(name: &str, contestants: &mut [(String, Box<dyn Run + '_>)], steps: usize, rel_tol: f32) -> Vec<f32> {
    let values: Vec<Vec<f32>> = contestants
        .iter_mut()
        .map(|(_, c)| (0..steps).map(|_| c.run()).collect())
        .collect();
    for ((who, _), got) in contestants.iter().zip(&values) {
        for (step, (&g, &w)) in got.iter().zip(&values[0]).enumerate() {
            let err = (g - w).abs() / w.abs().max(1e-3);
            assert!(
                err <= rel_tol,
                "{name}: {who} computes {g} at step {step}, {} computes {w} (rel. error {err:e})",
                contestants[0].0
            );
        }
    }
    values[0].clone()
}

/// Nanoseconds per call of each contestant: the median of `runs` interleaved runs, each
/// the median of `blocks` timed blocks of about `block` each.
pub fn measure(contestants: &mut [(String, Box<dyn Run + '_>)], runs: usize, blocks: usize, block: Duration) -> Vec<f64> {
    // Calibrate: calls per block.
    let iters: Vec<u64> = contestants
        .iter_mut()
        .map(|(_, c)| {
            let mut n = 1u64;
            loop {
                let t = Instant::now();
                for _ in 0..n {
                    black_box(c.run());
                }
                let e = t.elapsed();
                if e >= block / 4 || n >= 1 << 30 {
                    let per = e.as_secs_f64() / n as f64;
                    return ((block.as_secs_f64() / per) as u64).max(1);
                }
                n *= 4;
            }
        })
        .collect();
    let mut per_run: Vec<Vec<f64>> = vec![Vec::new(); contestants.len()];
    for _ in 0..runs {
        for (k, (_, c)) in contestants.iter_mut().enumerate() {
            let mut samples: Vec<f64> = (0..blocks)
                .map(|_| {
                    let t = Instant::now();
                    for _ in 0..iters[k] {
                        black_box(c.run());
                    }
                    t.elapsed().as_secs_f64() * 1e9 / iters[k] as f64
                })
                .collect();
            per_run[k].push(median(&mut samples));
        }
    }
    per_run.iter_mut().map(|v| median(v)).collect()
}

pub fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// Human units for nanoseconds.
pub fn pretty(ns: f64) -> String {
    if ns < 1e3 {
        format!("{:.3} µs", ns / 1e3)
    } else if ns < 1e6 {
        format!("{:.1} µs", ns / 1e3)
    } else {
        format!("{:.3} ms", ns / 1e6)
    }
}

// ---------------------------------------------------------------------------------------
// nn

/// Copies `d`'s parameters into a network whose layers are those of `d`, in order
/// (each weight column-major `out × in`, then its bias).
pub fn load<N: Params<f32>>(net: &mut N, d: &Data) {
    let slice = net.as_mut_slice();
    let mut at = 0;
    for l in &d.layers {
        for i in 0..l.inputs {
            for o in 0..l.outputs {
                slice[at + o + i * l.outputs] = l.w[o * l.inputs + i];
            }
        }
        at += l.inputs * l.outputs;
        slice[at..at + l.outputs].copy_from_slice(&l.b);
        at += l.outputs;
    }
    assert_eq!(at, slice.len());
}

/// A boxed zero value.
pub fn boxed<Z: Zeroable>() -> Box<Z> {
    Z::new_boxed()
}

/// nn's state for a training workload: network, tape, gradients, optimizer, batch, `∂L/∂y`.
pub struct NnTrain<N: Network<f32>, Tg: 'static, const IN: usize, const OUT: usize, const B: usize> {
    pub net: Box<N>,
    pub tape: Box<N::Tape<B>>,
    pub grads: Box<N::Grads>,
    pub opt: Box<Sgd<f32, N::Grads>>,
    pub x: Box<SMatrix<f32, IN, B>>,
    pub dy: Box<SMatrix<f32, OUT, B>>,
    pub targets: Vec<Tg>,
}

impl<N, Tg, const IN: usize, const OUT: usize, const B: usize> NnTrain<N, Tg, IN, OUT, B>
where
    N: Network<f32, Input<B> = SMatrix<f32, IN, B>, Output<B> = SMatrix<f32, OUT, B>>,
    Tg: Clone + 'static,
{
    pub fn new(d: &Data, targets: Vec<Tg>) -> Self {
        let mut net = boxed::<N>();
        load(&mut *net, d);
        let mut x = boxed::<SMatrix<f32, IN, B>>();
        x.as_mut_slice().copy_from_slice(&d.x);
        NnTrain {
            net,
            tape: boxed(),
            grads: boxed(),
            opt: Sgd::new_boxed(SgdConfig {
                lr: LR as f64,
                ..SgdConfig::default()
            }),
            x,
            dy: boxed(),
            targets,
        }
    }

    /// `nn::train::train_step`: the library's safe step (non-finite checks, gradient norm).
    pub fn train_step<L: Loss<f32, OUT, Tg>>(&mut self, loss: &L) -> f32 {
        let out = train_step(
            &mut *self.net,
            &mut *self.tape,
            &mut *self.grads,
            &*self.x,
            &self.targets,
            loss,
            &mut *self.opt,
            &StepOptions::default(),
        )
        .expect("finite step");
        out.loss
    }

    /// The bare step: forward, loss, backward (through the generated code), SGD update.
    pub fn raw_step<L: Loss<f32, OUT, Tg>>(&mut self, loss: &L) -> f32 {
        let y = self.net.forward_train(&*self.x, &mut *self.tape);
        let value = loss.loss_and_grad(&y, &self.targets, &mut *self.dy);
        self.grads.set_zero();
        black_box(self.net.backward(&*self.tape, &*self.dy, &mut *self.grads));
        self.opt.step(self.net.as_mut_slice(), self.grads.as_slice());
        value
    }
}

/// W1's targets for nn's MSE (one scalar per sample).
pub fn values(d: &Data) -> Vec<f32> {
    match &d.targets {
        Targets::Values(v) => v.clone(),
        Targets::Classes(_) => panic!("class targets"),
    }
}

/// W2's and W3's class targets.
pub fn classes(d: &Data) -> Vec<usize> {
    match &d.targets {
        Targets::Classes(c) => c.clone(),
        Targets::Values(_) => panic!("value targets"),
    }
}

/// MSE in nn's form, `½(y − t)²` averaged (what every contestant computes).
pub const MSE: Mse = Mse;
/// Softmax cross-entropy on logits, mean over the batch.
pub const CE: SoftmaxCrossEntropy = SoftmaxCrossEntropy;

/// The backward pass the macro generates for `Mnist`, except that the first layer computes
/// only its parameter gradients (`Dense::param_gradients`), not `∂L/∂input`: the change the
/// benchmarks recommend for the macro (measured as "nn, no ∂input").
pub fn mnist_backward_no_dx<const B: usize>(
    net: &Mnist<f32>,
    tape: &MnistTape<f32, B>,
    d_l3: &SMatrix<f32, 10, B>,
    grads: &mut MnistGrads<f32>,
) {
    let mut d_l2_relu = SMatrix::<f32, 128, B>::zeros();
    net.l3.backward(&tape.l2_relu, &tape.l3, &(), d_l3, &mut d_l2_relu, &mut grads.l3);
    let mut d_l2 = SMatrix::<f32, 128, B>::zeros();
    nn::activations::Relu.backward(&tape.l2, &tape.l2_relu, &d_l2_relu, &mut d_l2);
    let mut d_l1_relu = SMatrix::<f32, 256, B>::zeros();
    net.l2.backward(&tape.l1_relu, &tape.l2, &(), &d_l2, &mut d_l1_relu, &mut grads.l2);
    let mut d_l1 = SMatrix::<f32, 256, B>::zeros();
    nn::activations::Relu.backward(&tape.l1, &tape.l1_relu, &d_l1_relu, &mut d_l1);
    net.l1.param_gradients(&tape.input, &d_l1, &mut grads.l1);
}

/// As [`mnist_backward_no_dx`], for `Small`.
pub fn small_backward_no_dx<const B: usize>(
    net: &Small<f32>,
    tape: &SmallTape<f32, B>,
    d_l3: &SMatrix<f32, 10, B>,
    grads: &mut SmallGrads<f32>,
) {
    let mut d_l2_relu = SMatrix::<f32, 16, B>::zeros();
    net.l3.backward(&tape.l2_relu, &tape.l3, &(), d_l3, &mut d_l2_relu, &mut grads.l3);
    let mut d_l2 = SMatrix::<f32, 16, B>::zeros();
    nn::activations::Relu.backward(&tape.l2, &tape.l2_relu, &d_l2_relu, &mut d_l2);
    let mut d_l1_relu = SMatrix::<f32, 32, B>::zeros();
    net.l2.backward(&tape.l1_relu, &tape.l2, &(), &d_l2, &mut d_l1_relu, &mut grads.l2);
    let mut d_l1 = SMatrix::<f32, 32, B>::zeros();
    nn::activations::Relu.backward(&tape.l1, &tape.l1_relu, &d_l1_relu, &mut d_l1);
    net.l1.param_gradients(&tape.input, &d_l1, &mut grads.l1);
}

// ---------------------------------------------------------------------------------------
// Hand-written nalgebra

/// Which routine multiplies the hand-written version's matrices.
pub const NALGEBRA: bool = false;
/// matrixmultiply's `sgemm` (allocates its packing buffers on every call).
pub const MATRIXMULTIPLY: bool = true;

/// A 3-layer MLP written by hand over nalgebra fixed-size matrices: tanh (W1) or ReLU
/// hidden layers, linear output, MSE (`½(y − t)²`) or softmax cross-entropy, plain SGD.
/// Every buffer is preallocated; `∂L/∂input` is not computed (as the peers don't).
pub struct Hand<const I: usize, const H1: usize, const H2: usize, const O: usize, const B: usize, const TANH: bool, const MM: bool> {
    m: Box<HandMats<I, H1, H2, O, B>>,
    values: Vec<f32>,
    classes: Vec<usize>,
}

/// The matrices of [`Hand`]: parameters, gradients, activations (zeroable, boxed).
#[repr(C)]
pub struct HandMats<const I: usize, const H1: usize, const H2: usize, const O: usize, const B: usize> {
    w1: SMatrix<f32, H1, I>,
    b1: SMatrix<f32, H1, 1>,
    w2: SMatrix<f32, H2, H1>,
    b2: SMatrix<f32, H2, 1>,
    w3: SMatrix<f32, O, H2>,
    b3: SMatrix<f32, O, 1>,
    dw1: SMatrix<f32, H1, I>,
    db1: SMatrix<f32, H1, 1>,
    dw2: SMatrix<f32, H2, H1>,
    db2: SMatrix<f32, H2, 1>,
    dw3: SMatrix<f32, O, H2>,
    db3: SMatrix<f32, O, 1>,
    x: SMatrix<f32, I, B>,
    xt: SMatrix<f32, B, I>,
    z1: SMatrix<f32, H1, B>,
    h1: SMatrix<f32, H1, B>,
    h1t: SMatrix<f32, B, H1>,
    z2: SMatrix<f32, H2, B>,
    h2: SMatrix<f32, H2, B>,
    h2t: SMatrix<f32, B, H2>,
    y: SMatrix<f32, O, B>,
    dy: SMatrix<f32, O, B>,
    dh2: SMatrix<f32, H2, B>,
    dh1: SMatrix<f32, H1, B>,
}

/// `C = A·B` (`beta = 0`) through matrixmultiply, for column-major nalgebra matrices; `A`
/// and/or `B` may be read transposed.
#[allow(clippy::too_many_arguments)]
fn sgemm<const M: usize, const N: usize>(
    c: &mut SMatrix<f32, M, N>,
    k: usize,
    a: &[f32],
    (rsa, csa): (isize, isize),
    b: &[f32],
    (rsb, csb): (isize, isize),
) {
    assert!(a.len() >= M * k && b.len() >= k * N);
    // SAFETY: the strides address the M × k and k × N extents of `a` and `b` (checked
    // lengths), and `c` is M × N column-major.
    unsafe {
        matrixmultiply::sgemm(M, k, N, 1.0, a.as_ptr(), rsa, csa, b.as_ptr(), rsb, csb, 0.0, c.as_mut_ptr(), 1, M as isize);
    }
}

impl<const I: usize, const H1: usize, const H2: usize, const O: usize, const B: usize, const TANH: bool, const MM: bool>
    Hand<I, H1, H2, O, B, TANH, MM>
{
    pub fn new(d: &Data) -> Box<Self> {
        // SAFETY: every field is a matrix of f32, for which zero bytes are 0.0.
        let m = unsafe { Box::<HandMats<I, H1, H2, O, B>>::new_zeroed().assume_init() };
        let mut h = Box::new(Hand { m, values: Vec::new(), classes: Vec::new() });
        h.m.w1 = SMatrix::from_row_slice(&d.layers[0].w);
        h.m.b1 = SMatrix::from_column_slice(&d.layers[0].b);
        h.m.w2 = SMatrix::from_row_slice(&d.layers[1].w);
        h.m.b2 = SMatrix::from_column_slice(&d.layers[1].b);
        h.m.w3 = SMatrix::from_row_slice(&d.layers[2].w);
        h.m.b3 = SMatrix::from_column_slice(&d.layers[2].b);
        h.m.x.as_mut_slice().copy_from_slice(&d.x[..I * B]);
        match &d.targets {
            Targets::Values(v) => h.values = v.clone(),
            Targets::Classes(c) => h.classes = c.clone(),
        }
        h
    }

    fn act(z: f32) -> f32 {
        if TANH { z.tanh() } else { z.max(0.0) }
    }

    /// `f′` from the output `h` (tanh) or the input `z` (ReLU).
    fn act_derivative(z: f32, h: f32) -> f32 {
        if TANH {
            1.0 - h * h
        } else if z > 0.0 {
            1.0
        } else {
            0.0
        }
    }

    /// `C = W·X` by the chosen routine.
    fn forward_product<const M: usize, const K: usize>(c: &mut SMatrix<f32, M, B>, w: &SMatrix<f32, M, K>, x: &SMatrix<f32, K, B>) {
        if MM && B > 1 {
            sgemm(c, K, w.as_slice(), (1, M as isize), x.as_slice(), (1, K as isize));
        } else {
            c.gemm(1.0, w, x, 0.0);
        }
    }

    /// `C = D·Hᵀ` (`H` is `K × B`, `Ht` its transpose buffer).
    fn weight_gradient<const M: usize, const K: usize>(
        c: &mut SMatrix<f32, M, K>,
        d: &SMatrix<f32, M, B>,
        h: &SMatrix<f32, K, B>,
        ht: &mut SMatrix<f32, B, K>,
    ) {
        if MM && B > 1 {
            sgemm(c, B, d.as_slice(), (1, M as isize), h.as_slice(), (K as isize, 1));
        } else {
            h.transpose_to(ht);
            c.gemm(1.0, d, ht, 0.0);
        }
    }

    /// `C = Wᵀ·D`.
    fn input_gradient<const M: usize, const K: usize>(c: &mut SMatrix<f32, K, B>, w: &SMatrix<f32, M, K>, d: &SMatrix<f32, M, B>) {
        if MM && B > 1 {
            sgemm(c, M, w.as_slice(), (M as isize, 1), d.as_slice(), (1, M as isize));
        } else {
            c.gemm_tr(1.0, w, d, 0.0);
        }
    }

    fn add_bias<const M: usize>(z: &mut SMatrix<f32, M, B>, b: &SMatrix<f32, M, 1>) {
        for mut column in z.column_iter_mut() {
            column += b;
        }
    }

    fn forward(&mut self) {
        Self::forward_product(&mut self.m.z1, &self.m.w1, &self.m.x);
        Self::add_bias(&mut self.m.z1, &self.m.b1);
        self.m.h1.zip_apply(&self.m.z1, |h, z| *h = Self::act(z));
        Self::forward_product(&mut self.m.z2, &self.m.w2, &self.m.h1);
        Self::add_bias(&mut self.m.z2, &self.m.b2);
        self.m.h2.zip_apply(&self.m.z2, |h, z| *h = Self::act(z));
        Self::forward_product(&mut self.m.y, &self.m.w3, &self.m.h2);
        Self::add_bias(&mut self.m.y, &self.m.b3);
    }

    /// Inference: the checksum of the outputs.
    pub fn infer(&mut self) -> f32 {
        self.forward();
        checksum(self.m.y.as_slice())
    }

    /// One SGD step; returns the loss before the update.
    pub fn step(&mut self) -> f32 {
        self.forward();
        // Loss and ∂L/∂y.
        let mut loss = 0.0;
        if self.values.is_empty() {
            for j in 0..B {
                let z = self.m.y.column(j);
                let max = z.max();
                let sum: f32 = z.iter().map(|&v| (v - max).exp()).sum();
                let class = self.classes[j];
                loss += sum.ln() - (z[class] - max);
                for i in 0..O {
                    let p = (z[i] - max).exp() / sum;
                    self.m.dy[(i, j)] = (p - if i == class { 1.0 } else { 0.0 }) / B as f32;
                }
            }
            loss /= B as f32;
        } else {
            for j in 0..B {
                for i in 0..O {
                    let d = self.m.y[(i, j)] - self.values[j * O + i];
                    loss += 0.5 * d * d;
                    self.m.dy[(i, j)] = d / (B * O) as f32;
                }
            }
            loss /= (B * O) as f32;
        }
        // Backward.
        Self::weight_gradient(&mut self.m.dw3, &self.m.dy, &self.m.h2, &mut self.m.h2t);
        self.m.db3 = self.m.dy.column_sum();
        Self::input_gradient(&mut self.m.dh2, &self.m.w3, &self.m.dy);
        self.m.dh2.zip_zip_apply(&self.m.z2, &self.m.h2, |d, z, h| *d *= Self::act_derivative(z, h));
        Self::weight_gradient(&mut self.m.dw2, &self.m.dh2, &self.m.h1, &mut self.m.h1t);
        self.m.db2 = self.m.dh2.column_sum();
        Self::input_gradient(&mut self.m.dh1, &self.m.w2, &self.m.dh2);
        self.m.dh1.zip_zip_apply(&self.m.z1, &self.m.h1, |d, z, h| *d *= Self::act_derivative(z, h));
        Self::weight_gradient(&mut self.m.dw1, &self.m.dh1, &self.m.x, &mut self.m.xt);
        self.m.db1 = self.m.dh1.column_sum();
        // SGD.
        self.m.w1.zip_apply(&self.m.dw1, |w, g| *w -= LR * g);
        self.m.b1.zip_apply(&self.m.db1, |w, g| *w -= LR * g);
        self.m.w2.zip_apply(&self.m.dw2, |w, g| *w -= LR * g);
        self.m.b2.zip_apply(&self.m.db2, |w, g| *w -= LR * g);
        self.m.w3.zip_apply(&self.m.dw3, |w, g| *w -= LR * g);
        self.m.b3.zip_apply(&self.m.db3, |w, g| *w -= LR * g);
        loss
    }
}

pub type HandTiny<const MM: bool> = Hand<2, 16, 16, 1, 1, true, MM>;
pub type HandSmall<const MM: bool> = Hand<64, 32, 16, 10, 32, false, MM>;
pub type HandMnist<const B: usize, const MM: bool> = Hand<784, 256, 128, 10, B, false, MM>;
