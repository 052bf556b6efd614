//! The memory plan (issue 11): networks of any size run and train in a thread with a 2 MiB
//! stack, in debug and in release (`.ci/run` runs this file in both); the stack the passes
//! use does not grow with the batch or the layer width; the plan is within 25% of what no
//! plan can beat; and the planned passes compute what the unplanned ones did.

mod common;

use common::stack::stack_used;
use common::{random_matrix, randomize};
use nn::loss::SoftmaxCrossEntropy;
use nn::optim::{Adam, AdamConfig, Sgd, SgdConfig};
use nn::prelude::*;
use nn::train::{Samples, StepOptions, TrainConfig, Trainer, train_step};
use rand_core::SeedableRng;

nn::network! {
    /// The CIFAR-sized CNN: 545,098 parameters, 4 MiB of activations per node at
    /// B = 32 in the old tape.
    pub struct Cifar {
        input: [3, 32, 32],
        conv1: Conv2d<32, 3, padding = 1>, Relu,
        pool1: MaxPool2d<2>,
        conv2: Conv2d<64, 3, padding = 1>, Relu,
        pool2: MaxPool2d<2>,
        Flatten,
        fc1: Dense<128>, Relu,
        fc2: Dense<10>,
    }
}

nn::network! {
    /// 784 → 1024 → 1024 → 10: 7.45 MB of parameters in `f32`.
    pub struct Wide {
        input: [784],
        fc1: Dense<1024>, Relu,
        fc2: Dense<1024>, Relu,
        out: Dense<10>,
    }
}

nn::network! {
    /// 784 → 2048 → 2048 → 10: 23 MB of parameters in `f32`.
    pub struct Wider {
        input: [784],
        fc1: Dense<2048>, Relu,
        fc2: Dense<2048>, Relu,
        out: Dense<10>,
    }
}

nn::network! {
    /// W3's network.
    pub struct Mnist {
        input: [784],
        l1: Dense<256>, Relu,
        l2: Dense<128>, Relu,
        l3: Dense<10>,
    }
}

nn::network! {
    /// Narrow: the stack of its passes against `Wider`'s.
    pub struct Narrow {
        input: [784],
        fc1: Dense<16>, Relu,
        fc2: Dense<16>, Relu,
        out: Dense<10>,
    }
}

nn::network! {
    /// LeNet-5, as in the benches (C1–C3).
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
    /// The transformer example's network.
    pub struct Palindromes {
        embed: Embedding<4, 16>,
        positions: LearnedPositions,
        attention: MultiHeadAttention<2>,
        norm1: LayerNorm,
        ff1: Dense<32>,
        ff2: Dense<16>,
        norm2: LayerNorm,
        readout: Dense<2>,
    }
    forward(tokens: [8]) -> logits {
        let x = positions(embed(tokens));
        let a = norm1(x + attention(x));
        let b = norm2(a + ff2(relu(ff1(a))));
        let logits = readout(b);
    }
}

const STACK: usize = 2 << 20;

/// Runs `f` in a thread with a 2 MiB stack; an overflow aborts the test process.
fn in_small_stack<R: Send + 'static>(f: impl FnOnce() -> R + Send + 'static) -> R {
    std::thread::Builder::new()
        .stack_size(STACK)
        .spawn(f)
        .unwrap()
        .join()
        .unwrap()
}

fn seeded<N: Network<f32>>(seed: u64) -> Box<N> {
    let mut net = N::new_boxed();
    net.init(&mut rand_pcg::Pcg64Mcg::seed_from_u64(seed));
    net
}

/// A batch of `B` samples of `N` inputs in `[0, 1)`, on the heap.
fn batch<const N: usize, const B: usize>(seed: usize) -> Box<SMatrix<f32, N, B>> {
    let mut x = SMatrix::<f32, N, B>::new_boxed();
    for (i, v) in x.iter_mut().enumerate() {
        *v = ((i * 7919 + seed * 104_729) % 1000) as f32 / 1000.0;
    }
    x
}

#[test]
fn the_cifar_cnn_infers_and_trains_in_a_2_mib_stack() {
    const { assert!(Cifar::<f32>::tape_bytes::<32>() > 4 * STACK) };
    in_small_stack(|| {
        let mut net = seeded::<Cifar<f32>>(1);
        // Inference at B = 64: the workspace is 6 MiB, on the heap.
        let x = batch::<3072, 64>(1);
        let mut workspace = CifarWorkspace::<f32, 64>::new_boxed();
        let y = *net.forward_in(&x, &mut workspace);
        assert!(y.iter().all(|v| v.is_finite()));
        // The same outputs as a batch of one (the plan changes where values live, not
        // what they are).
        let mut one = CifarWorkspace::<f32, 1>::new_boxed();
        let x0: Box<SMatrix<f32, 3072, 1>> = {
            let mut x0 = SMatrix::<f32, 3072, 1>::new_boxed();
            x0.copy_from(&x.column(0));
            x0
        };
        let y0 = *net.forward_in(&x0, &mut one);
        assert!((y0 - y.column(0)).amax() < 1e-5);

        // Training: one epoch, one batch of 64, through the trainer (whose tape, gradients
        // and workspace are on the heap).
        let inputs: Vec<SMatrix<f32, 3072, 1>> = (0..64).map(|j| x.column(j).into()).collect();
        let targets: Vec<usize> = (0..64).map(|j| j % 10).collect();
        let mut optimizer = Sgd::<f32, CifarGrads<f32>>::new_boxed(SgdConfig::default());
        let trainer = Trainer::new(TrainConfig {
            epochs: 1,
            progress: false,
            ..TrainConfig::default()
        });
        let history = trainer
            .fit::<_, _, _, 64>(
                &mut *net,
                &mut *optimizer,
                &SoftmaxCrossEntropy,
                Samples::new(&inputs, &targets),
                None,
            )
            .unwrap();
        assert!(history.epochs[0].train_loss.is_finite());
    });
}

#[test]
fn a_784_1024_1024_10_network_trains_in_a_2_mib_stack() {
    in_small_stack(|| {
        let mut net = seeded::<Wide<f32>>(2);
        let mut tape = WideTape::<f32, 32>::new_boxed();
        let mut grads = WideGrads::<f32>::new_boxed();
        let mut adam = Adam::<f32, WideGrads<f32>>::new_boxed(AdamConfig {
            lr: 1e-4,
            ..AdamConfig::default()
        });
        let x = batch::<784, 32>(2);
        let targets: Vec<usize> = (0..32).map(|j| j % 10).collect();
        let mut losses = Vec::new();
        for _ in 0..3 {
            let outcome = train_step(
                &mut *net,
                &mut *tape,
                &mut *grads,
                &*x,
                &targets,
                &SoftmaxCrossEntropy,
                &mut *adam,
                &StepOptions::default(),
            )
            .unwrap();
            losses.push(outcome.loss);
        }
        assert!(losses[2] < losses[0], "{losses:?}");
        let mut workspace = WideWorkspace::<f32, 32>::new_boxed();
        assert!(
            net.forward_in(&x, &mut workspace)
                .iter()
                .all(|v| v.is_finite())
        );
    });
}

#[test]
fn a_784_2048_2048_10_network_trains_in_a_2_mib_stack() {
    in_small_stack(|| {
        let mut net = seeded::<Wider<f32>>(3);
        let mut tape = WiderTape::<f32, 8>::new_boxed();
        let mut grads = WiderGrads::<f32>::new_boxed();
        let mut sgd = Sgd::<f32, WiderGrads<f32>>::new_boxed(SgdConfig::default());
        let x = batch::<784, 8>(3);
        let targets: Vec<usize> = (0..8).collect();
        let outcome = train_step(
            &mut *net,
            &mut *tape,
            &mut *grads,
            &*x,
            &targets,
            &SoftmaxCrossEntropy,
            &mut *sgd,
            &StepOptions::default(),
        )
        .unwrap();
        assert!(outcome.loss.is_finite() && outcome.grad_norm > 0.0);
    });
}

/// The stack one training step and one inference use, for a network and batch.
fn stack_of_passes<N: Network<f32> + 'static, const B: usize>() -> usize
where
    N::Input<B>: Send,
{
    stack_used(|| {
        let mut net = seeded::<N>(4);
        let mut tape = <N::Tape<B> as Zeroable>::new_boxed();
        let mut workspace = <N::Workspace<B> as Zeroable>::new_boxed();
        let mut grads = <N::Grads as Zeroable>::new_boxed();
        let x = <N::Input<B> as Zeroable>::new_boxed();
        net.forward_in(&x, &mut workspace);
        net.forward_train(&x, &mut tape);
        net.backward(&mut tape, &mut grads);
        std::hint::black_box((&*workspace, &*tape, &*grads));
    })
}

#[test]
fn the_stack_the_passes_use_does_not_grow_with_the_batch_or_the_width() {
    let narrow_1 = stack_of_passes::<Narrow<f32>, 1>();
    let narrow_64 = stack_of_passes::<Narrow<f32>, 64>();
    let wider_16 = stack_of_passes::<Wider<f32>, 16>();
    let cifar_4 = stack_of_passes::<Cifar<f32>, 4>();
    println!(
        "stack used: 784-16-16-10 B=1 {narrow_1} B, B=64 {narrow_64} B; 784-2048-2048-10 \
         B=16 {wider_16} B; CIFAR CNN B=4 {cifar_4} B"
    );
    // A batch of 16 of a 2048-wide layer is 128 KiB: the passes use a few KiB whatever the
    // size (the kernels' fixed blocks, the frames of the generated code).
    for used in [narrow_1, narrow_64, wider_16, cifar_4] {
        assert!(used < 64 << 10, "{used} B of stack");
    }
    // The wider network's products of 2,048 rows (columns of 8 KiB) copy their micro-panels
    // into the GEMM's tile (`MAX_STACK_BYTES`), in a frame of its own: a constant too.
    assert!(
        wider_16 < narrow_1 + nn::kernels::MAX_STACK_BYTES + (8 << 10),
        "{wider_16} B against {narrow_1} B"
    );
}

#[test]
fn the_plan_is_within_a_quarter_of_the_lower_bound() {
    macro_rules! within {
        ($net:ident) => {{
            println!(
                "{}: tape {} B at B=32 (kept {} + ends {} + slots {} scalars per sample, \
                 slots' lower bound {}), workspace {} B at B=32 (lower bound {} scalars)",
                stringify!($net),
                $net::<f32>::tape_bytes::<32>(),
                $net::<f32>::TAPE_SAVED_PER_SAMPLE,
                $net::<f32>::TAPE_ENDS_PER_SAMPLE,
                $net::<f32>::TAPE_WORK_PER_SAMPLE,
                $net::<f32>::TAPE_WORK_LOWER_BOUND,
                $net::<f32>::workspace_bytes::<32>(),
                $net::<f32>::WORKSPACE_LOWER_BOUND,
            );
            let (plan, bound) = (
                $net::<f32>::WORKSPACE_PER_SAMPLE,
                $net::<f32>::WORKSPACE_LOWER_BOUND,
            );
            assert!(
                plan * 4 <= bound * 5,
                "{}: workspace {plan} against {bound}",
                stringify!($net)
            );
            let (plan, bound) = (
                $net::<f32>::TAPE_WORK_PER_SAMPLE,
                $net::<f32>::TAPE_WORK_LOWER_BOUND,
            );
            assert!(
                plan * 4 <= bound * 5,
                "{}: tape slots {plan} against {bound}",
                stringify!($net)
            );
        }};
    }
    within!(LeNet);
    within!(Mnist);
    within!(Palindromes);
    within!(Cifar);
    within!(Wide);
}

/// The "before" figures (`f32`, measured on main before the plan): the tape kept every
/// node's value, and the passes kept the other values and every gradient in locals, on the
/// stack. Now the tape keeps what backward reads (and the caches) and, besides, the outputs,
/// their gradients, the inputs' gradients and the slots where every other value and every
/// gradient lives: the kept part is smaller than the old tape, the whole tape is what training
/// needs besides the parameters, with nothing left on the stack.
#[test]
fn the_tape_keeps_only_what_backward_reads() {
    macro_rules! kept {
        ($net:ident, $b:literal, $before:literal) => {{
            let total = $net::<f32>::tape_bytes::<$b>();
            let moving =
                ($net::<f32>::TAPE_ENDS_PER_SAMPLE + $net::<f32>::TAPE_WORK_PER_SAMPLE) * 4 * $b
                    + $net::<f32>::SCRATCH_PER_CALL * 4;
            let kept = total - moving;
            println!(
                "{} B={}: tape {total} B, of which kept for backward {kept} B (before the \
                 plan: {} B, gradients on the stack besides)",
                stringify!($net),
                $b,
                $before
            );
            assert!(kept < $before, "{}: {kept} B", stringify!($net));
        }};
    }
    kept!(LeNet, 1, 63_144);
    kept!(LeNet, 32, 2_020_608);
    kept!(Mnist, 1, 6_248);
    kept!(Mnist, 32, 199_936);
    kept!(Palindromes, 1, 9_384);
    kept!(Palindromes, 32, 300_288);
}

/// `bytes` as a generated struct `S` occupies them: rounded up to its alignment (64 bytes on
/// x86-64, where the generated structs are cache-line aligned; exact elsewhere).
fn padded<S>(bytes: usize) -> usize {
    bytes.next_multiple_of(align_of::<S>())
}

#[test]
fn a_workspace_is_a_plain_static() {
    // Usable as a `static` on a microcontroller: built by a constant, of the planned size.
    static WORKSPACE: std::sync::Mutex<MnistWorkspace<f32, 1>> =
        std::sync::Mutex::new(MnistWorkspace::ZERO);
    assert_eq!(
        Mnist::<f32>::workspace_bytes::<1>(),
        padded::<MnistWorkspace<f32, 1>>(Mnist::<f32>::WORKSPACE_PER_SAMPLE * 4)
    );
    let mut net = Mnist::<f32>::new_boxed();
    randomize(&mut *net, 5, 0.1);
    let x = random_matrix::<784, 1>(6, 1.0).cast::<f32>();
    let mut workspace = WORKSPACE.lock().unwrap();
    let y = *net.forward_in(&x, &mut workspace);
    assert_eq!(y, net.forward(&x));
}
