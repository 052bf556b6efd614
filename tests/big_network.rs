//! A 784 → 256 → 128 → 10 network (235,146 parameters, 940 KB in f32) is created, trained,
//! run, saved and loaded inside a thread with a 2 MiB stack, because nothing is built on
//! the stack by value: the network, its tape, gradients, Adam's state and the input batch
//! are zeroed in place on the heap. `.ci/run` runs this in debug and in release
//! (`cargo test --release --test big_network`): debug builds copy values on the stack the
//! most.

use nn::loss::SoftmaxCrossEntropy;
use nn::optim::{Adam, AdamConfig};
use nn::prelude::*;
use nn::train::{StepOptions, train_step};
use rand_core::SeedableRng;

nn::network! {
    /// An MNIST-sized classifier.
    pub struct Mnist {
        input: [784],
        fc1: Dense<256>, Relu,
        fc2: Dense<128>, Relu,
        out: Dense<10>,
    }
}

const STACK: usize = 2 << 20;
const B: usize = 32;

/// Runs `f` in a thread with a 2 MiB stack (cargo's default for test threads), failing the
/// test if it overflows (the process would abort) or panics.
fn with_small_stack(f: impl FnOnce() + Send + 'static) {
    std::thread::Builder::new()
        .stack_size(STACK)
        .spawn(f)
        .unwrap()
        .join()
        .unwrap();
}

/// `bytes` as a generated struct `S` occupies them: rounded up to its alignment (64 bytes on
/// x86-64, where the generated structs are cache-line aligned; exact elsewhere).
fn padded<S>(bytes: usize) -> usize {
    bytes.next_multiple_of(align_of::<S>())
}

#[test]
fn sizes_are_known_at_compile_time() {
    const _: () = assert!(Mnist::<f32>::PARAM_COUNT == 784 * 256 + 256 + 256 * 128 + 128 + 1290);
    assert_eq!(Mnist::<f32>::PARAM_BYTES, 940_584);
    assert_eq!(
        Mnist::<f32>::BYTES,
        padded::<Mnist<f32>>(Mnist::<f32>::PARAM_BYTES)
    );
    // At least the input batch and the two hidden layers' outputs.
    assert!(Mnist::<f32>::tape_bytes::<B>() >= (784 + 256 + 128) * B * 4);
}

#[test]
fn a_784_256_128_10_network_trains_in_a_thread_with_a_2_mib_stack() {
    with_small_stack(|| {
        let mut net = Mnist::<f32>::new_boxed();
        net.init(&mut rand_pcg::Pcg64Mcg::seed_from_u64(1));
        let mut tape = MnistTape::<f32, B>::new_boxed();
        let mut grads = MnistGrads::<f32>::new_boxed();
        let mut adam = Adam::<f32, MnistGrads<f32>>::new_boxed(AdamConfig {
            lr: 1e-3,
            ..AdamConfig::default()
        });
        // The batch: 100 KB, on the heap too.
        let mut x = SMatrix::<f32, 784, B>::new_boxed();
        for (i, v) in x.iter_mut().enumerate() {
            *v = ((i * 7919) % 256) as f32 / 255.0;
        }
        let targets: [usize; B] = core::array::from_fn(|j| j % 10);

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

        // Inference, batched and single.
        let y = net.forward(&*x);
        assert!(y.iter().all(|v| v.is_finite()));
        let one = net.forward(&x.fixed_columns::<1>(0).into_owned());
        assert!((one - y.fixed_columns::<1>(0)).amax() < 1e-4);

        // Weights out and back in, flat and safetensors.
        let bytes = nn::io::flat::to_vec(&*net).unwrap();
        let mut copy = Mnist::<f32>::new_boxed();
        nn::io::flat::load(&mut *copy, &bytes).unwrap();
        assert!(*copy == *net);
        let bytes = nn::io::safetensors::save(&*net).unwrap();
        copy.set_zero();
        nn::io::safetensors::load(&mut *copy, &bytes).unwrap();
        assert!(*copy == *net);
    });
}
