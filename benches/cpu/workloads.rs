//! The CPU workloads W1–W7 of BENCHMARKS.md: their data, nn's networks, hand-written nalgebra
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

/// One workload: its name, its goal (ns), how many steps `verify` compares, the contestants.
pub struct Workload {
    pub name: &'static str,
    pub goal_ns: f64,
    pub steps: usize,
    /// Training steps each call of a contestant makes (its times are divided by them).
    pub steps_per_call: usize,
    pub contestants: Contestants<'static>,
}

/// Every workload, in the order of BENCHMARKS.md (P3 is W3 on threads, P1 C1, P0 their
/// ceiling on this machine at the time, P0x what moving data between its cores costs then).
pub const SUITE: &[fn() -> Workload] = &[
    w1,
    w4,
    w2,
    w3,
    w5,
    w6,
    w7,
    c1,
    c2,
    c3,
    c4,
    g1,
    a1,
    crate::peak::p0,
    crate::peak::p0x,
    p3,
    crate::peak::p0,
    crate::peak::p0x,
    p1,
    k1,
    k2,
    k3,
    k4,
    k5,
    k6,
    k7,
    k8,
    k9,
    k10,
    k11,
    k12,
    n1,
];

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

nn::network! {
    /// C1: LeNet-5 on 28×28 images.
    pub struct LeNet {
        input: [1, 28, 28],
        conv1: Conv2d<6, 5, padding = 2>, Relu,
        pool1: MaxPool2d<2>,
        conv2: Conv2d<16, 5>, Relu,
        pool2: MaxPool2d<2>,
        Flatten,
        fc1: Dense<120>, Relu,
        fc2: Dense<84>, Relu,
        fc3: Dense<10>,
    }
}

nn::network! {
    /// C4: a small CNN with batch norm and average pooling on 28×28 images.
    pub struct BnCnn {
        input: [1, 28, 28],
        conv1: Conv2d<8, 3, padding = 1>,
        bn1: BatchNorm2d, Relu,
        pool1: AvgPool2d<2>,
        conv2: Conv2d<16, 3, padding = 1>,
        bn2: BatchNorm2d, Relu,
        pool2: AvgPool2d<2>,
        Flatten,
        fc: Dense<10>,
    }
}

nn::network! {
    /// G1: a GRU over 32 steps of 16 features, hidden 64, its last state into a dense layer
    /// of 10 logits.
    pub struct GruNet {
        input: [32, 16],
        gru: Gru<64, last = true>,
        head: Dense<10>,
    }
}

nn::network! {
    /// A1: multi-head self-attention (4 heads) over 32 tokens of 64 features, flattened into a
    /// dense layer of 10 logits.
    pub struct AttentionNet {
        input: [32, 64],
        attention: MultiHeadAttention<4>,
        Flatten,
        head: Dense<10>,
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

/// A checksum of a large output, from every 61st value (so that it costs little next to
/// the product it checks).
pub fn sampled_checksum(y: &[f32]) -> f32 {
    let sample: Vec<f32> = y.iter().step_by(61).copied().collect();
    checksum(&sample)
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
pub fn verify(
    name: &str,
    contestants: &mut [(String, Box<dyn Run + '_>)],
    steps: usize,
    rel_tol: f32,
) -> Vec<f32> {
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

/// The clock of the timed blocks: the process's CPU time (`CLOCK_PROCESS_CPUTIME_ID`), which
/// does not count the time other processes take from a shared machine's cores, or, with
/// `wall`, the wall clock (for the multi-threaded workload, whose threads run at once).
fn now(wall: bool) -> Duration {
    if wall {
        return START.with(|start| start.elapsed());
    }
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid clock id and a valid out-pointer.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime");
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

thread_local! {
    static START: Instant = Instant::now();
}

/// Nanoseconds per call of each contestant: the median of `runs` interleaved runs, each
/// the median of `blocks` timed blocks of about `block` each (CPU time, or wall time when
/// `wall`; see [`now`]).
pub fn measure(
    contestants: &mut [(String, Box<dyn Run + '_>)],
    runs: usize,
    blocks: usize,
    block: Duration,
    wall: bool,
) -> Vec<f64> {
    // Calibrate: calls per block.
    let iters: Vec<u64> = contestants
        .iter_mut()
        .map(|(_, c)| {
            let mut n = 1u64;
            loop {
                let t = now(wall);
                for _ in 0..n {
                    black_box(c.run());
                }
                let e = now(wall) - t;
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
                    let t = now(wall);
                    for _ in 0..iters[k] {
                        black_box(c.run());
                    }
                    (now(wall) - t).as_secs_f64() * 1e9 / iters[k] as f64
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

/// A zero value in memory of its own backed by 2 MiB pages (transparent huge pages, asked
/// for with `madvise`), leaked: physically contiguous, so that a network of about 1 MB does
/// not lose L2 capacity to conflicting 4 KiB pages.
pub fn huge<Z: Zeroable>() -> &'static mut Z {
    const HUGE: usize = 2 << 20;
    let len = size_of::<Z>().div_ceil(HUGE) * HUGE + HUGE;
    // SAFETY: an anonymous private mapping (zeroed by the kernel), checked; the aligned
    // start leaves room for `size_of::<Z>()` bytes; all-zero bytes are a valid `Z`
    // (`Zeroable`); never unmapped, so the reference is 'static.
    unsafe {
        let p = libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        );
        assert_ne!(p, libc::MAP_FAILED, "mmap");
        let aligned = (p as usize).div_ceil(HUGE) * HUGE;
        libc::madvise(
            aligned as *mut libc::c_void,
            len - (aligned - p as usize),
            libc::MADV_HUGEPAGE,
        );
        &mut *(aligned as *mut Z)
    }
}

/// A boxed zero value.
pub fn boxed<Z: Zeroable>() -> Box<Z> {
    Z::new_boxed()
}

/// nn's state for a training workload: network, tape, gradients, optimizer, batch, `∂L/∂y`.
pub struct NnTrain<N: Network<f32>, Tg: 'static, const IN: usize, const OUT: usize, const B: usize>
{
    pub net: Box<N>,
    pub tape: Box<N::Tape<B>>,
    pub grads: Box<N::Grads>,
    pub opt: Box<Sgd<f32, N::Grads>>,
    pub x: Box<SMatrix<f32, IN, B>>,
    pub targets: Vec<Tg>,
}

impl<N, Tg, const IN: usize, const OUT: usize, const B: usize> NnTrain<N, Tg, IN, OUT, B>
where
    N: Network<f32, Input<B> = SMatrix<f32, IN, B>, Output<B> = SMatrix<f32, OUT, B>>,
    Tg: Clone + 'static,
{
    pub fn new(d: &Data, targets: Vec<Tg>) -> Self {
        let mut net = boxed::<N>();
        if d.layers
            .iter()
            .map(|l| l.inputs * l.outputs + l.outputs)
            .sum::<usize>()
            == N::LEN
        {
            load(&mut *net, d);
        }
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
        self.net.forward_train(&*self.x, &mut *self.tape);
        let (y, dy) = self.tape.output_and_d_output();
        let value = loss.loss_and_grad(y, &self.targets, dy);
        self.grads.set_zero();
        self.net.backward_params(&mut *self.tape, &mut *self.grads);
        black_box(&*self.grads);
        self.opt
            .step(self.net.as_mut_slice(), self.grads.as_slice());
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

// ---------------------------------------------------------------------------------------
// Hand-written nalgebra

/// Which routine multiplies the hand-written version's matrices.
pub const NALGEBRA: bool = false;
/// matrixmultiply's `sgemm` (allocates its packing buffers on every call).
pub const MATRIXMULTIPLY: bool = true;

/// A 3-layer MLP written by hand over nalgebra fixed-size matrices: tanh (W1) or ReLU
/// hidden layers, linear output, MSE (`½(y − t)²`) or softmax cross-entropy, plain SGD.
/// Every buffer is preallocated; `∂L/∂input` is not computed (as the peers don't).
pub struct Hand<
    const I: usize,
    const H1: usize,
    const H2: usize,
    const O: usize,
    const B: usize,
    const TANH: bool,
    const MM: bool,
> {
    m: Box<HandMats<I, H1, H2, O, B>>,
    values: Vec<f32>,
    classes: Vec<usize>,
}

/// The matrices of [`Hand`]: parameters, gradients, activations (zeroable, boxed).
#[repr(C)]
pub struct HandMats<
    const I: usize,
    const H1: usize,
    const H2: usize,
    const O: usize,
    const B: usize,
> {
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
        matrixmultiply::sgemm(
            M,
            k,
            N,
            1.0,
            a.as_ptr(),
            rsa,
            csa,
            b.as_ptr(),
            rsb,
            csb,
            0.0,
            c.as_mut_ptr(),
            1,
            M as isize,
        );
    }
}

impl<
    const I: usize,
    const H1: usize,
    const H2: usize,
    const O: usize,
    const B: usize,
    const TANH: bool,
    const MM: bool,
> Hand<I, H1, H2, O, B, TANH, MM>
{
    pub fn new(d: &Data) -> Box<Self> {
        // SAFETY: every field is a matrix of f32, for which zero bytes are 0.0.
        let m = unsafe { Box::<HandMats<I, H1, H2, O, B>>::new_zeroed().assume_init() };
        let mut h = Box::new(Hand {
            m,
            values: Vec::new(),
            classes: Vec::new(),
        });
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
    fn forward_product<const M: usize, const K: usize>(
        c: &mut SMatrix<f32, M, B>,
        w: &SMatrix<f32, M, K>,
        x: &SMatrix<f32, K, B>,
    ) {
        if MM && B > 1 {
            sgemm(
                c,
                K,
                w.as_slice(),
                (1, M as isize),
                x.as_slice(),
                (1, K as isize),
            );
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
            sgemm(
                c,
                B,
                d.as_slice(),
                (1, M as isize),
                h.as_slice(),
                (K as isize, 1),
            );
        } else {
            h.transpose_to(ht);
            c.gemm(1.0, d, ht, 0.0);
        }
    }

    /// `C = Wᵀ·D`.
    fn input_gradient<const M: usize, const K: usize>(
        c: &mut SMatrix<f32, K, B>,
        w: &SMatrix<f32, M, K>,
        d: &SMatrix<f32, M, B>,
    ) {
        if MM && B > 1 {
            sgemm(
                c,
                M,
                w.as_slice(),
                (M as isize, 1),
                d.as_slice(),
                (1, M as isize),
            );
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
        self.m.dh2.zip_zip_apply(&self.m.z2, &self.m.h2, |d, z, h| {
            *d *= Self::act_derivative(z, h)
        });
        Self::weight_gradient(&mut self.m.dw2, &self.m.dh2, &self.m.h1, &mut self.m.h1t);
        self.m.db2 = self.m.dh2.column_sum();
        Self::input_gradient(&mut self.m.dh1, &self.m.w2, &self.m.dh2);
        self.m.dh1.zip_zip_apply(&self.m.z1, &self.m.h1, |d, z, h| {
            *d *= Self::act_derivative(z, h)
        });
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

// ---------------------------------------------------------------------------------------
// The suite

pub type Contestants<'a> = Vec<(String, Box<dyn Run + 'a>)>;

pub fn entry<'a>(name: &str, run: impl Run + 'a) -> (String, Box<dyn Run + 'a>) {
    (name.to_string(), Box::new(run))
}

/// How long to time.
pub struct Settings {
    pub runs: usize,
    pub blocks: usize,
    pub block: Duration,
}

/// Verifies, times and prints one workload; the first contestant is nn's, the ratio
/// column is against the one named `baseline`.
pub fn run(w: Workload, settings: &Settings) {
    let Workload {
        name,
        goal_ns,
        steps,
        steps_per_call,
        mut contestants,
    } = w;
    // `NN_BENCH_ONLY=W3` (a prefix of the workload's name) runs one workload.
    if let Ok(only) = std::env::var("NN_BENCH_ONLY")
        && !name.starts_with(&only)
    {
        return;
    }
    verify(name, &mut contestants, steps, 2e-4);
    // `NN_BENCH_WHO=bare` (a part of the contestants' names) times only those.
    if let Ok(who) = std::env::var("NN_BENCH_WHO") {
        contestants.retain(|(n, _)| n.contains(&who));
    }
    let wall = name.starts_with('P');
    let times: Vec<f64> = measure(
        &mut contestants,
        settings.runs,
        settings.blocks,
        settings.block,
        wall,
    )
    .into_iter()
    .map(|t| t / steps_per_call as f64)
    .collect();
    // Ratios against the hand-written nalgebra version, or the first contestant.
    let baseline = contestants
        .iter()
        .position(|(n, _)| n.starts_with("nalgebra by hand"))
        .unwrap_or(0);
    for ((who, _), &t) in contestants.iter().zip(&times) {
        let goal = if who.starts_with("nn") && goal_ns.is_finite() {
            format!(
                "{} (goal {})",
                if t <= goal_ns { "met" } else { "missed" },
                pretty(goal_ns)
            )
        } else {
            String::new()
        };
        println!(
            "| {name} | {who} | {} | {:.2}× | {goal} |",
            pretty(t),
            times[baseline] / t
        );
    }
}

/// W1: train step, 2 → 16 → 16 → 1 tanh, MSE, batch 1, SGD.
pub fn w1() -> Workload {
    let d = w1_data();
    let mut a = NnTrain::<Tiny<f32>, f32, 2, 1, 1>::new(&d, values(&d));
    let mut b = NnTrain::<Tiny<f32>, f32, 2, 1, 1>::new(&d, values(&d));
    let mut h = HandTiny::<NALGEBRA>::new(&d);

    Workload {
        name: "W1 train",
        goal_ns: 150.0,
        steps: 3,
        steps_per_call: 1,
        contestants: vec![
            entry("nn train_step", move || a.train_step(&MSE)),
            entry("nn bare step", move || b.raw_step(&MSE)),
            entry("nalgebra by hand", move || h.step()),
        ],
    }
}

/// W4: inference, the same network, one sample.
pub fn w4() -> Workload {
    let d = w1_data();
    let mut net = boxed::<Tiny<f32>>();
    load(&mut *net, &d);
    let x = nn::SMatrix::<f32, 2, 1>::from_column_slice(&d.x);
    let mut h = HandTiny::<NALGEBRA>::new(&d);

    Workload {
        name: "W4 infer",
        goal_ns: 60.0,
        steps: 1,
        steps_per_call: 1,
        contestants: vec![
            entry("nn forward", move || {
                checksum(net.forward(std::hint::black_box(&x)).as_slice())
            }),
            entry("nalgebra by hand", move || h.infer()),
        ],
    }
}

/// W2: train step, 64 → 32 → 16 → 10 ReLU, softmax-CE, batch 32.
pub fn w2() -> Workload {
    let d = w2_data();
    let mut a = NnTrain::<Small<f32>, usize, 64, 10, 32>::new(&d, classes(&d));
    let mut b = NnTrain::<Small<f32>, usize, 64, 10, 32>::new(&d, classes(&d));
    let mut h = HandSmall::<NALGEBRA>::new(&d);
    let mut m = HandSmall::<MATRIXMULTIPLY>::new(&d);

    Workload {
        name: "W2 train",
        goal_ns: 8_000.0,
        steps: 3,
        steps_per_call: 1,
        contestants: vec![
            entry("nn train_step", move || a.train_step(&CE)),
            entry("nn bare step", move || b.raw_step(&CE)),
            entry("nalgebra by hand", move || h.step()),
            entry("nalgebra by hand + matrixmultiply", move || m.step()),
        ],
    }
}

/// W3: train step, 784 → 256 → 128 → 10 ReLU, softmax-CE, batch 64.
pub fn w3() -> Workload {
    let d = w3_data(64);
    let mut a = NnTrain::<Mnist<f32>, usize, 784, 10, 64>::new(&d, classes(&d));
    let mut b = NnTrain::<Mnist<f32>, usize, 784, 10, 64>::new(&d, classes(&d));
    let mut h = HandMnist::<64, NALGEBRA>::new(&d);
    let mut m = HandMnist::<64, MATRIXMULTIPLY>::new(&d);

    Workload {
        name: "W3 train",
        goal_ns: 450_000.0,
        steps: 3,
        steps_per_call: 1,
        contestants: vec![
            entry("nn train_step", move || a.train_step(&CE)),
            entry("nn bare step", move || b.raw_step(&CE)),
            entry("nalgebra by hand", move || h.step()),
            entry("nalgebra by hand + matrixmultiply", move || m.step()),
        ],
    }
}

/// W5: inference, W3's network, one sample.
pub fn w5() -> Workload {
    let d = w3_data(1);
    let mut net = boxed::<Mnist<f32>>();
    load(&mut *net, &d);
    let on_huge = huge::<Mnist<f32>>();
    load(on_huge, &d);
    let x = nn::SMatrix::<f32, 784, 1>::from_column_slice(&d.x);
    let net_in = net.clone();
    let mut workspace = boxed::<MnistWorkspace<f32, 1>>();
    let mut h = HandMnist::<1, NALGEBRA>::new(&d);

    Workload {
        name: "W5 infer",
        goal_ns: 10_000.0,
        steps: 1,
        steps_per_call: 1,
        contestants: vec![
            entry("nn forward", move || {
                checksum(net.forward(std::hint::black_box(&x)).as_slice())
            }),
            entry("nn forward_in (a boxed workspace)", move || {
                checksum(
                    net_in
                        .forward_in(std::hint::black_box(&x), &mut workspace)
                        .as_slice(),
                )
            }),
            entry("nn forward, weights on 2 MiB pages", move || {
                checksum(on_huge.forward(std::hint::black_box(&x)).as_slice())
            }),
            entry("nalgebra by hand", move || h.infer()),
        ],
    }
}

/// W6: inference, W3's network, batch 64.
pub fn w6() -> Workload {
    let d = w3_data(64);
    let mut net = boxed::<Mnist<f32>>();
    load(&mut *net, &d);
    let net_in = net.clone();
    let mut workspace = boxed::<MnistWorkspace<f32, 64>>();
    let mut x = boxed::<nn::SMatrix<f32, 784, 64>>();
    x.as_mut_slice().copy_from_slice(&d.x);
    let x2 = x.clone();
    let on_huge = huge::<Mnist<f32>>();
    load(on_huge, &d);
    let x3 = huge::<nn::SMatrix<f32, 784, 64>>();
    x3.as_mut_slice().copy_from_slice(&d.x);
    let mut h = HandMnist::<64, NALGEBRA>::new(&d);
    let mut m = HandMnist::<64, MATRIXMULTIPLY>::new(&d);

    Workload {
        name: "W6 infer",
        goal_ns: 220_000.0,
        steps: 1,
        steps_per_call: 1,
        contestants: vec![
            entry("nn forward", move || {
                checksum(net.forward(std::hint::black_box(&*x)).as_slice())
            }),
            entry("nn forward_in (a boxed workspace)", move || {
                checksum(
                    net_in
                        .forward_in(std::hint::black_box(&*x2), &mut workspace)
                        .as_slice(),
                )
            }),
            entry("nn forward, weights on 2 MiB pages", move || {
                checksum(on_huge.forward(std::hint::black_box(&*x3)).as_slice())
            }),
            entry("nalgebra by hand", move || h.infer()),
            entry("nalgebra by hand + matrixmultiply", move || m.infer()),
        ],
    }
}

/// W7: inference, W3's network, a batch of 4 (a few streams at once, as a real-time user
/// runs them): narrower than every kernel's panel of `B`.
pub fn w7() -> Workload {
    let d = w3_data(4);
    let mut net = boxed::<Mnist<f32>>();
    load(&mut *net, &d);
    let mut workspace = boxed::<MnistWorkspace<f32, 4>>();
    let x = nn::SMatrix::<f32, 784, 4>::from_column_slice(&d.x);
    let mut h = HandMnist::<4, NALGEBRA>::new(&d);
    let mut m = HandMnist::<4, MATRIXMULTIPLY>::new(&d);

    Workload {
        name: "W7 infer",
        goal_ns: f64::INFINITY,
        steps: 1,
        steps_per_call: 1,
        contestants: vec![
            entry("nn forward_in (a boxed workspace)", move || {
                checksum(
                    net.forward_in(std::hint::black_box(&x), &mut workspace)
                        .as_slice(),
                )
            }),
            entry("nalgebra by hand", move || h.infer()),
            entry("nalgebra by hand + matrixmultiply", move || m.infer()),
        ],
    }
}

/// C1's state: LeNet-5 initialised by `init` (seed 4), a batch of 32 inputs in `[-1, 1)`
/// with classes `0..10`.
pub fn c1_state() -> NnTrain<LeNet<f32>, usize, 784, 10, 32> {
    initialised(4)
}

/// A network initialised by `init` (seed `seed`) and a batch of `B` inputs of `IN` values in
/// `[-1, 1)` with classes `0..10` (the same seed): C1's, G1's and A1's states.
fn initialised<N, const IN: usize, const B: usize>(seed: u64) -> NnTrain<N, usize, IN, 10, B>
where
    N: Network<f32, Input<B> = SMatrix<f32, IN, B>, Output<B> = SMatrix<f32, 10, B>>,
{
    use rand_core::SeedableRng;
    let d = data(&[IN, 10], B, true, seed);
    let mut state = NnTrain::<N, usize, IN, 10, B>::new(&d, classes(&d));
    state.net.init(&mut rand_pcg::Pcg64Mcg::seed_from_u64(seed));
    state
}

/// A training workload: `make()`'s state through `train_step` and through the bare step.
fn training<N, const IN: usize, const B: usize>(
    name: &'static str,
    make: fn() -> NnTrain<N, usize, IN, 10, B>,
) -> Workload
where
    N: Network<f32, Input<B> = SMatrix<f32, IN, B>, Output<B> = SMatrix<f32, 10, B>> + 'static,
{
    let (mut a, mut b) = (make(), make());
    Workload {
        name,
        goal_ns: f64::INFINITY,
        steps: 3,
        steps_per_call: 1,
        contestants: vec![
            entry("nn train_step", move || a.train_step(&CE)),
            entry("nn bare step", move || b.raw_step(&CE)),
        ],
    }
}

/// C1: train step of LeNet-5 (conv 6@5×5 pad 2, max-pool, conv 16@5×5, max-pool, 120, 84,
/// 10; ReLU), softmax-CE, batch 32, SGD. nn only here (PyTorch and JAX: `bench-peers/`).
pub fn c1() -> Workload {
    training("C1 train (LeNet, batch 32)", c1_state)
}

/// LeNet-5 as C1 initialises it, and a batch of `B` inputs (seed 7).
pub fn lenet_inference<const B: usize>() -> (Box<LeNet<f32>>, Box<SMatrix<f32, 784, B>>) {
    let d = data(&[784, 10], B, true, 7);
    let mut x = boxed::<SMatrix<f32, 784, B>>();
    x.as_mut_slice().copy_from_slice(&d.x);
    (c1_state().net, x)
}

/// C2, C3: LeNet-5 inference at batch 1 and 64.
fn lenet_infer<const B: usize>(name: &'static str) -> Workload {
    let (net, x) = lenet_inference::<B>();
    let mut workspace = boxed::<LeNetWorkspace<f32, B>>();
    Workload {
        name,
        goal_ns: f64::INFINITY,
        steps: 1,
        steps_per_call: 1,
        contestants: vec![entry("nn forward_in", move || {
            checksum(
                net.forward_in(std::hint::black_box(&*x), &mut workspace)
                    .as_slice(),
            )
        })],
    }
}

/// C2: LeNet-5 inference, one image.
pub fn c2() -> Workload {
    lenet_infer::<1>("C2 infer (LeNet, batch 1)")
}

/// C3: LeNet-5 inference, 64 images.
pub fn c3() -> Workload {
    lenet_infer::<64>("C3 infer (LeNet, batch 64)")
}

/// C4's state: the batch-norm CNN initialised by `init` (seed 8), a batch of 32 inputs in
/// `[-1, 1)` with classes `0..10`.
pub fn c4_state() -> NnTrain<BnCnn<f32>, usize, 784, 10, 32> {
    initialised(8)
}

/// C4: train step of a small CNN with batch norm and average pooling (conv 8@3×3 pad 1,
/// batch norm, ReLU, avg-pool 2, conv 16@3×3 pad 1, batch norm, ReLU, avg-pool 2, 10),
/// softmax-CE, batch 32, SGD. nn only here (PyTorch and JAX: `bench-peers/`).
pub fn c4() -> Workload {
    training("C4 train (BN CNN, batch 32)", c4_state)
}

/// G1's state: the GRU network initialised by `init` (seed 5), a batch of 16 sequences of
/// 32 × 16 values in `[-1, 1)` with classes `0..10`.
pub fn g1_state() -> NnTrain<GruNet<f32>, usize, 512, 10, 16> {
    initialised(5)
}

/// G1: train step of a GRU (32 steps × 16 inputs, hidden 64, last state) and a dense layer
/// of 10 logits, softmax-CE, batch 16, SGD. nn only here (PyTorch and JAX: `bench-peers/`).
pub fn g1() -> Workload {
    training("G1 train (GRU, batch 16)", g1_state)
}

/// A1's state: the attention network initialised by `init` (seed 6), a batch of 16
/// sequences of 32 × 64 values in `[-1, 1)` with classes `0..10`.
pub fn a1_state() -> NnTrain<AttentionNet<f32>, usize, 2048, 10, 16> {
    initialised(6)
}

/// A1: train step of multi-head self-attention (32 tokens × 64 features, 4 heads) and a
/// dense layer of 10 logits on the flattened sequence, softmax-CE, batch 16, SGD. nn only.
pub fn a1() -> Workload {
    training("A1 train (attention, batch 16)", a1_state)
}

/// Training steps each call of a P workload's contestants makes: a training loop runs inside
/// one `pool.install` (`Trainer::fit` in it), not one per step, so the pool's threads are
/// woken once per call rather than for every step (about 30–50 µs of a LeNet step on two
/// threads, 2026-12-04).
const STEPS_A_CALL: usize = 8;

/// [`STEPS_A_CALL`] runs of `step` inside one `install` of a rayon pool of `threads` threads
/// (made once): the products the step's layers make split across the pool's threads
/// (`nn::parallel`). Returns the last step's loss.
fn in_pool(threads: usize, step: impl FnMut() -> f32 + Send) -> impl FnMut() -> f32 {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap();
    let mut steps = on_this_thread(step);
    move || pool.install(&mut steps)
}

/// [`STEPS_A_CALL`] runs of `step` on the calling thread. Returns the last step's loss.
fn on_this_thread(mut step: impl FnMut() -> f32 + Send) -> impl FnMut() -> f32 + Send {
    move || (0..STEPS_A_CALL).fold(0.0, |_, _| step())
}

/// A training step whose batch gradient comes from `nn::train::parallel_gradients` (chunks
/// of `CHUNK`) on a pool of `threads`, then SGD; the whole step inside the pool.
fn chunked_step<N, const IN: usize, const B: usize, const CHUNK: usize>(
    mut state: NnTrain<N, usize, IN, 10, B>,
    threads: usize,
) -> impl FnMut() -> f32
where
    N: Network<
            f32,
            Input<CHUNK> = SMatrix<f32, IN, CHUNK>,
            Output<CHUNK> = SMatrix<f32, 10, CHUNK>,
        > + Network<f32, Input<B> = SMatrix<f32, IN, B>, Output<B> = SMatrix<f32, 10, B>>
        + Send
        + Sync
        + 'static,
    N::Grads: Send + Sync,
    N::Tape<CHUNK>: Send + Sync,
    N::Tape<B>: Send,
{
    let mut workspace = nn::train::ParallelWorkspace::<f32, N, IN, 10, CHUNK>::new(B);
    in_pool(threads, move || {
        let s = &mut state;
        nn::Params::set_zero(&mut *s.grads);
        let loss = nn::train::parallel_gradients(
            &mut *s.net,
            &mut workspace,
            &*s.x,
            &s.targets,
            &CE,
            &mut *s.grads,
        );
        nn::Optimizer::step(
            &mut *s.opt,
            nn::Params::as_mut_slice(&mut *s.net),
            nn::Params::as_slice(&*s.grads),
        );
        loss
    })
}

/// P3: W3's training step on 1 and 2 threads: the generated step with its products split
/// across a pool's threads, and the batch split into chunks (`parallel_gradients`, chunks of
/// 32); [`STEPS_A_CALL`] steps a call, times per step. Run without `taskset` to give it two
/// cores.
pub fn p3() -> Workload {
    let d = w3_data(64);
    let state = || NnTrain::<Mnist<f32>, usize, 784, 10, 64>::new(&d, classes(&d));
    let (mut one, mut two) = (state(), state());
    Workload {
        name: "P3 train (W3, threads)",
        goal_ns: f64::INFINITY,
        steps: 3,
        steps_per_call: STEPS_A_CALL,
        contestants: vec![
            entry(
                "nn train_step, 1 thread",
                on_this_thread(move || one.train_step(&CE)),
            ),
            entry(
                "nn train_step, products on 2 threads",
                in_pool(2, move || two.train_step(&CE)),
            ),
            entry(
                "nn parallel_gradients, 1 thread",
                chunked_step::<Mnist<f32>, 784, 64, 32>(state(), 1),
            ),
            entry(
                "nn parallel_gradients, 2 threads",
                chunked_step::<Mnist<f32>, 784, 64, 32>(state(), 2),
            ),
        ],
    }
}

/// P1: C1 (LeNet-5, batch 32) on 1 and 2 threads: the generated step with its products split
/// across a pool's threads, and the batch split into chunks of 16 (`parallel_gradients`);
/// [`STEPS_A_CALL`] steps a call, times per step. Run without `taskset` to give it two cores.
pub fn p1() -> Workload {
    let (mut one, mut two) = (c1_state(), c1_state());
    Workload {
        name: "P1 train (C1, threads)",
        goal_ns: f64::INFINITY,
        steps: 3,
        steps_per_call: STEPS_A_CALL,
        contestants: vec![
            entry(
                "nn train_step, 1 thread",
                on_this_thread(move || one.train_step(&CE)),
            ),
            entry(
                "nn train_step, products on 2 threads",
                in_pool(2, move || two.train_step(&CE)),
            ),
            entry(
                "nn parallel_gradients, 1 thread",
                chunked_step::<LeNet<f32>, 784, 32, 16>(c1_state(), 1),
            ),
            entry(
                "nn parallel_gradients, 2 threads",
                chunked_step::<LeNet<f32>, 784, 32, 16>(c1_state(), 2),
            ),
        ],
    }
}

/// One product through nn's kernels, matrixmultiply's `sgemm` and nalgebra's `gemm` (`gemm_tr`
/// for `Aᵀ·B`; for `A·Bᵀ`, on a `Bᵀ` transposed beforehand, as nalgebra has no such product),
/// on heap matrices; each returns the checksum of `C`.
macro_rules! kernel_workload {
    ($fn:ident, $name:literal, $kind:ident, $m:literal, $k:literal, $n:literal) => {
        #[doc = concat!("Kernel ", $name, ".")]
        pub fn $fn() -> Workload {
            const M: usize = $m;
            const K: usize = $k;
            const N: usize = $n;
            fn matrix<const R: usize, const C: usize>(seed: u64) -> Box<SMatrix<f32, R, C>> {
                let mut rng = SplitMix(seed);
                let mut m = boxed::<SMatrix<f32, R, C>>();
                m.iter_mut().for_each(|v| *v = rng.uniform(1.0));
                m
            }
            // A (M × K), or Aᵀ stored (K × M) for `tn`; B (K × N), or Bᵀ stored (N × K)
            // for `nt`; all column-major.
            let a = kernel_workload!(@a $kind, M, K);
            let b = kernel_workload!(@b $kind, K, N);
            let (a1, b1, a2, b2) = (a.clone(), b.clone(), a.clone(), b.clone());
            let (rsa, csa) = kernel_workload!(@sa $kind, M, K);
            let (rsb, csb) = kernel_workload!(@sb $kind, K, N);
            #[allow(unused_variables)]
            let bt = kernel_workload!(@bt $kind, b);
            let (mut ours, mut mm, mut na) = (boxed::<SMatrix<f32, M, N>>(), boxed::<SMatrix<f32, M, N>>(), boxed::<SMatrix<f32, M, N>>());
            Workload {
                name: concat!("K ", $name),
                goal_ns: f64::INFINITY,
                steps: 1,
                steps_per_call: 1,
                contestants: vec![
                    entry("nn kernels", move || {
                        kernel_workload!(@ours $kind, ours, a, b);
                        sampled_checksum(ours.as_slice())
                    }),
                    entry("matrixmultiply", move || {
                        // SAFETY: the strides address A's M × K and B's K × N extents, C is
                        // M × N column-major.
                        unsafe {
                            matrixmultiply::sgemm(M, K, N, 1.0, a1.as_ptr(), rsa, csa, b1.as_ptr(), rsb, csb, 0.0, mm.as_mut_ptr(), 1, M as isize);
                        }
                        sampled_checksum(mm.as_slice())
                    }),
                    entry("nalgebra", move || {
                        let _ = &b2;
                        kernel_workload!(@nalgebra $kind, na, a2, b2, bt);
                        sampled_checksum(na.as_slice())
                    }),
                ],
            }
        }
    };
    (@a tn, $m:ident, $k:ident) => { matrix::<$k, $m>(1) };
    (@a $other:ident, $m:ident, $k:ident) => { matrix::<$m, $k>(1) };
    (@b nt, $k:ident, $n:ident) => { matrix::<$n, $k>(2) };
    (@b $other:ident, $k:ident, $n:ident) => { matrix::<$k, $n>(2) };
    (@sa tn, $m:ident, $k:ident) => { ($k as isize, 1) };
    (@sa $other:ident, $m:ident, $k:ident) => { (1, $m as isize) };
    (@sb nt, $k:ident, $n:ident) => { ($n as isize, 1) };
    (@sb $other:ident, $k:ident, $n:ident) => { (1, $k as isize) };
    (@bt nt, $b:ident) => { Box::new($b.transpose()) };
    (@bt $other:ident, $b:ident) => { () };
    (@ours nn, $c:ident, $a:ident, $b:ident) => { nn::kernels::matmul(&mut *$c, &*$a, &*$b, false) };
    (@ours nt, $c:ident, $a:ident, $b:ident) => { nn::kernels::matmul_abt(&mut *$c, &*$a, &*$b, false) };
    (@ours tn, $c:ident, $a:ident, $b:ident) => { nn::kernels::matmul_atb(&mut *$c, &*$a, &*$b, false) };
    (@nalgebra nn, $c:ident, $a:ident, $b:ident, $bt:ident) => { $c.gemm(1.0, &*$a, &*$b, 0.0) };
    (@nalgebra nt, $c:ident, $a:ident, $b:ident, $bt:ident) => { $c.gemm(1.0, &*$a, &*$bt, 0.0) };
    (@nalgebra tn, $c:ident, $a:ident, $b:ident, $bt:ident) => { $c.gemm_tr(1.0, &*$a, &*$b, 0.0) };
}

kernel_workload!(k1, "W·X 256×784×64 (W3 l1 forward)", nn, 256, 784, 64);
kernel_workload!(k2, "∂Y·Xᵀ 256×64×784 (W3 l1 ∂W)", nt, 256, 64, 784);
kernel_workload!(k3, "Wᵀ·∂Y 784×256×64 (W3 l1 ∂input)", tn, 784, 256, 64);
kernel_workload!(k4, "W·X 32×64×32 (W2 l1 forward)", nn, 32, 64, 32);
kernel_workload!(k5, "W·x 256×784×1 (W5 l1)", nn, 256, 784, 1);
kernel_workload!(k6, "W·X 10×128×64 (W3 l3 forward)", nn, 10, 128, 64);
kernel_workload!(k7, "∂Y·Xᵀ 10×64×128 (W3 l3 ∂W)", nt, 10, 64, 128);
kernel_workload!(k8, "W·X 20×128×32 (a layer of 20)", nn, 20, 128, 32);
kernel_workload!(k9, "W·X 40×64×32 (a layer of 40)", nn, 40, 64, 32);
kernel_workload!(k10, "∂Y·Xᵀ 50×32×64 (a layer of 50, ∂W)", nt, 50, 32, 64);
kernel_workload!(
    k11,
    "W·X 16×784×64 (a layer of 16 on MNIST)",
    nn,
    16,
    784,
    64
);
kernel_workload!(
    k12,
    "W·X 10×1024×64 (after a layer of 1024)",
    nn,
    10,
    1024,
    64
);

/// N: the gradient norm `train_step` computes (`nn::optim::global_norm`: blocks of 4,096 in
/// 32 interleaved partial `f64` sums, AVX-512 where the CPU has it) against one sum in 8
/// interleaved partial sums (its inner loop until 2026-12-03), on W3's 235,146 gradients.
pub fn n1() -> Workload {
    let mut rng = SplitMix(6);
    let g: Vec<f32> = (0..235_146).map(|_| rng.uniform(1e-3)).collect();
    let g2 = g.clone();
    Workload {
        name: "N global_norm of W3's gradient",
        goal_ns: f64::INFINITY,
        steps: 1,
        steps_per_call: 1,
        contestants: vec![
            entry("nn::optim::global_norm", move || {
                nn::optim::global_norm(std::hint::black_box(&g)) as f32
            }),
            entry("8 partial sums (before)", move || {
                let g = std::hint::black_box(&g2);
                let mut lanes = [0.0f64; 8];
                let chunks = g.chunks_exact(8);
                let tail: f64 = chunks
                    .remainder()
                    .iter()
                    .map(|&x| x as f64 * x as f64)
                    .sum();
                for c in chunks {
                    for (l, &x) in lanes.iter_mut().zip(c) {
                        *l += x as f64 * x as f64;
                    }
                }
                (lanes.iter().sum::<f64>() + tail).sqrt() as f32
            }),
        ],
    }
}
