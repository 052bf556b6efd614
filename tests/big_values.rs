//! Owned big values are built in place, never on the stack: optimizer state, deserialized
//! networks, copies of boxed networks, gradient structs, and everything the trainer keeps.
//! Each is made for a 784 → 1024 → 1024 → 10 network (1,863,690 parameters, 7.45 MB in
//! `f32`) inside a thread with a 2 MiB stack; a value built on the stack first would
//! overflow it (the process aborts). `.ci/run` runs this file in debug (where values are
//! copied on the stack the most) and in release.

use nn::io;
use nn::loss::SoftmaxCrossEntropy;
use nn::optim::{Adam, AdamConfig, AdamW, AdamWConfig, RmsProp, RmsPropConfig, Sgd, SgdConfig};
use nn::prelude::*;
use nn::quant::QatDense;
use nn::train::{Samples, TrainConfig, Trainer};
use rand_core::SeedableRng;

nn::network! {
    /// 7.45 MB of parameters.
    pub struct Wide {
        input: [784],
        fc1: Dense<1024>, Relu,
        fc2: Dense<1024>, Relu,
        out: Dense<10>,
    }
}

const STACK: usize = 2 << 20;

/// Runs `f` in a thread with a 2 MiB stack, failing the test if it overflows or panics.
fn with_small_stack(f: impl FnOnce() + Send + 'static) {
    std::thread::Builder::new()
        .stack_size(STACK)
        .spawn(f)
        .unwrap()
        .join()
        .unwrap();
}

fn initialised() -> Box<Wide<f32>> {
    let mut net = Wide::<f32>::new_boxed();
    net.init(&mut rand_pcg::Pcg64Mcg::seed_from_u64(3));
    net
}

#[test]
fn the_network_is_bigger_than_the_stack() {
    assert_eq!(Wide::<f32>::PARAM_COUNT, 1_863_690);
    const { assert!(Wide::<f32>::BYTES > 3 * STACK) };
    assert!(size_of::<Adam<f32, WideGrads<f32>>>() > 6 * STACK);
}

#[test]
fn every_optimizer_is_built_on_the_heap() {
    with_small_stack(|| {
        let adam = Adam::<f32, WideGrads<f32>>::new_boxed(AdamConfig::default());
        let adamw = AdamW::<f32, WideGrads<f32>>::new_boxed(AdamWConfig::default());
        let sgd = Sgd::<f32, WideGrads<f32>>::new_boxed(SgdConfig {
            momentum: 0.9,
            ..SgdConfig::default()
        });
        let rmsprop = RmsProp::<f32, WideGrads<f32>>::new_boxed(RmsPropConfig::default());
        assert_eq!((adam.steps(), adamw.steps(), sgd.steps()), (0, 0, 0));
        // And each takes a step on the big network, in place.
        let mut net = initialised();
        let mut grads = WideGrads::<f32>::new_boxed();
        grads.as_mut_slice().fill(1e-3);
        let mut optimizers: Vec<Box<dyn Optimizer<f32, Grads = WideGrads<f32>>>> =
            vec![adam, adamw, sgd, rmsprop];
        for optimizer in &mut optimizers {
            let before = net.fc1.weight[(0, 0)];
            optimizer.step(net.as_mut_slice(), grads.as_slice());
            assert!(net.fc1.weight[(0, 0)] < before);
        }
    });
}

#[test]
fn copies_of_boxed_networks_and_gradients_are_made_in_place() {
    with_small_stack(|| {
        let net = initialised();
        let copy = nn::clone_boxed(&*net);
        assert!(*copy == *net);
        let mut grads = WideGrads::<f32>::new_boxed();
        grads.as_mut_slice()[17] = 2.5;
        let mut other = WideGrads::<f32>::new_boxed();
        nn::copy_into(&*grads, &mut *other);
        assert_eq!(other.as_slice()[17], 2.5);
        let mut tape = WideTape::<f32, 32>::new_boxed();
        tape.input[(5, 3)] = 1.5;
        let copy = nn::clone_boxed(&*tape);
        assert_eq!(copy.input[(5, 3)], 1.5);
        assert!(copy.fc1_relu.iter().all(|&v| v == 0.0));
    });
}

#[test]
fn deserialization_builds_the_network_in_place() {
    with_small_stack(|| {
        let net = initialised();
        let bytes = postcard::to_allocvec(&io::serde::Weights::new(&*net)).unwrap();
        let back: Box<Wide<f32>> =
            io::serde::deserialize_boxed(&mut postcard::Deserializer::from_bytes(&bytes)).unwrap();
        assert!(*back == *net);
        // Into an existing network (staged in a copy made in place).
        let mut target = Wide::<f32>::new_boxed();
        io::serde::deserialize_into(
            &mut postcard::Deserializer::from_bytes(&bytes),
            &mut *target,
        )
        .unwrap();
        assert!(*target == *net);
        // A field of a struct of your own, `#[serde(with = "nn::io::serde::boxed")]`.
        let checkpoint = Checkpoint { epoch: 4, net };
        let bytes = postcard::to_allocvec(&checkpoint).unwrap();
        let back: Checkpoint = postcard::from_bytes(&bytes).unwrap();
        assert_eq!(back.epoch, 4);
        assert!(*back.net == *checkpoint.net);
        // The other formats load in place too.
        let flat = io::flat::to_vec(&*checkpoint.net).unwrap();
        let mut loaded = Wide::<f32>::new_boxed();
        io::flat::load(&mut *loaded, &flat).unwrap();
        assert!(*loaded == *checkpoint.net);
    });
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Checkpoint {
    epoch: u32,
    #[serde(with = "nn::io::serde::boxed")]
    net: Box<Wide<f32>>,
}

nn::network! {
    /// 7.6 MB of parameters, in one layer fed by the input (whose backward pass computes no
    /// input gradient) and a small one.
    pub struct Broad {
        input: [784],
        fc1: Dense<2400>, Relu,
        out: Dense<10>,
    }
}

nn::network! {
    /// One small layer, for big batches: at B = 1024 an input batch is 3.2 MB.
    pub struct Linear {
        input: [784],
        out: Dense<10>,
    }
}

/// The trainer on `N` with batches of `B`, in a thread with a 2 MiB stack: three epochs with
/// a validation split and early stopping that keeps the best parameters.
fn train_in_a_small_stack<N, const B: usize>(mut net: Box<N>)
where
    N: Network<f32, Input<B> = SMatrix<f32, 784, B>, Output<B> = SMatrix<f32, 10, B>>
        + Send
        + 'static,
{
    with_small_stack(move || {
        let mut adam = Adam::<f32, N::Grads>::new_boxed(AdamConfig {
            lr: 1e-3,
            ..AdamConfig::default()
        });
        let n = 2 * B + 8;
        let inputs: Vec<SMatrix<f32, 784, 1>> = (0..n)
            .map(|i| SMatrix::from_fn(|r, _| ((r * 7 + i * 13) % 17) as f32 / 17.0))
            .collect();
        let targets: Vec<usize> = (0..n).map(|i| i % 10).collect();
        let config = TrainConfig {
            epochs: 3,
            progress: false,
            validation_split: 0.2,
            early_stopping: Some(nn::train::EarlyStopping {
                patience: 5,
                min_delta: 0.0,
                restore_best: true,
            }),
            ..TrainConfig::default()
        };
        let history = Trainer::new(config)
            .fit::<_, _, _, B>(
                &mut *net,
                &mut *adam,
                &SoftmaxCrossEntropy,
                Samples::new(&inputs, &targets),
                None,
            )
            .unwrap();
        assert_eq!(history.epochs.len(), 3);
        assert!(history.epochs.iter().all(|e| e.train_loss.is_finite()));
    });
}

#[test]
fn the_trainer_keeps_weight_sized_values_on_the_heap() {
    // Tape, gradients, Adam's moments and early stopping's best parameters: 7.6 MB each.
    const { assert!(Broad::<f32>::BYTES > 3 * STACK) };
    let mut net = Broad::<f32>::new_boxed();
    net.init(&mut rand_pcg::Pcg64Mcg::seed_from_u64(4));
    train_in_a_small_stack::<_, 1>(net);
}

#[test]
fn the_trainer_keeps_batch_sized_values_on_the_heap() {
    // The input batch and the tape: 3.2 MB each.
    const { assert!(784 * 1024 * 4 > STACK) };
    let mut net = Linear::<f32>::new_boxed();
    net.init(&mut rand_pcg::Pcg64Mcg::seed_from_u64(5));
    train_in_a_small_stack::<_, 1024>(net);
}

/// 784 → 1024 → 1024 → 10 at B = 32 through the trainer, in debug too: the generated passes
/// keep every batch-sized value in the tape or the workspace (the memory plan), and the
/// kernels keep no weight- or batch-sized local.
#[test]
fn the_trainer_trains_784_1024_1024_10_in_a_2_mib_stack() {
    train_in_a_small_stack::<_, 32>(initialised());
}

nn::network! {
    /// A convolution of 4.7 MB and a dense layer of 2.1 MB (`f32`), each over the stack's size.
    pub struct BigConv {
        input: [256, 4, 4],
        conv: Conv2d<512, 3, padding = 1>, Relu,
        Flatten,
        fc: Dense<64>,
    }
}

nn::network! {
    /// `BigConv` for quantization-aware training.
    pub struct BigConvQat {
        input: [256, 4, 4],
        conv: QatConv2d<512, 3, padding = 1>, Relu,
        Flatten,
        fc: QatDense<T, 8192, 64> -> [64],
    }
}

/// QAT's hand-over copies layers too large for the stack in place, both ways.
#[test]
fn qat_layers_are_copied_in_place() {
    const { assert!(size_of::<BigConv<f32>>() > 3 * STACK) };
    with_small_stack(|| {
        let mut net = BigConv::<f32>::new_boxed();
        net.init(&mut rand_pcg::Pcg64Mcg::seed_from_u64(5));
        let mut qat = BigConvQat::<f32>::new_boxed();
        qat.conv.copy_from_conv(&net.conv);
        qat.fc.copy_from_dense(&net.fc);
        assert_eq!(qat.as_slice(), net.as_slice());
        let mut back = BigConv::<f32>::new_boxed();
        qat.conv.copy_to_conv(&mut back.conv);
        qat.fc.copy_to_dense(&mut back.fc);
        assert_eq!(back.as_slice(), net.as_slice());
    });
}
