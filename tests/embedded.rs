//! The embedded side, checked on the host: the weights compiled into the firmware
//! (`firmware/weights/sine.nnw`) load and fit sin, the network the firmware builds from them
//! at compile time (`nn::include_flat!`) is the one the run-time loader loads, bit for bit,
//! and the footprint constants add up.
//!
//! Regenerate the weights (trained here, on the host) with
//! `NN_WRITE_FIRMWARE_WEIGHTS=1 cargo test --release --test embedded -- --ignored`.

use nn::loss::Mse;
use nn::optim::{Adam, AdamConfig};
use nn::prelude::*;
use nn::train::{StepOptions, train_step};
use rand_core::{Rng, SeedableRng};
use std::f32::consts::TAU;

nn::network! {
    /// firmware/src/lib.rs's network: the TensorFlow Lite Micro "hello world" model.
    pub struct Sine {
        input: [1],
        fc1: Dense<16>, Relu,
        fc2: Dense<16>, Relu,
        out: Dense<1>,
    }
}

const WEIGHTS_PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/firmware/weights/sine.nnw");

/// Largest |net(x) − sin x| over 1000 evenly spaced points of [0, 2π].
fn max_error(net: &Sine<f32>) -> f32 {
    (0..1000)
        .map(|i| {
            let x = TAU * i as f32 / 999.0;
            (net.forward(&SMatrix::<f32, 1, 1>::new(x))[0] - x.sin()).abs()
        })
        .fold(0.0, f32::max)
}

#[test]
fn the_firmware_weights_load_and_fit_sin() {
    let bytes = std::fs::read(WEIGHTS_PATH).unwrap();
    let mut net = Sine::<f32>::ZERO;
    nn::io::flat::load(&mut net, &bytes).unwrap();
    assert_eq!(bytes.len(), nn::io::flat::encoded_len::<f32, Sine<f32>>());
    let error = max_error(&net);
    assert!(error < 0.06, "max error {error}");
}

/// As `firmware/src/bin/sine_infer.rs` builds it: in a `static`, at compile time.
static CONST_BUILT: Sine<f32> = nn::include_flat!("../firmware/weights/sine.nnw");

#[test]
fn the_const_built_network_is_the_loaded_one_bit_for_bit() {
    let bytes = std::fs::read(WEIGHTS_PATH).unwrap();
    let mut loaded = Sine::<f32>::ZERO;
    nn::io::flat::load(&mut loaded, &bytes).unwrap();
    let bits = |net: &Sine<f32>| {
        net.as_slice()
            .iter()
            .map(|v| v.to_bits())
            .collect::<Vec<_>>()
    };
    assert_eq!(bits(&CONST_BUILT), bits(&loaded));
    assert!(CONST_BUILT.as_slice().iter().any(|&v| v != 0.0));
    // The same outputs, bit for bit, on the firmware's inputs.
    for i in 0..=8 {
        let x = SMatrix::<f32, 1, 1>::new(TAU * i as f32 / 8.0);
        assert_eq!(
            CONST_BUILT.forward(&x)[0].to_bits(),
            loaded.forward(&x)[0].to_bits()
        );
    }
}

/// `bytes` as a generated struct `S` occupies them: rounded up to its alignment (64 bytes on
/// x86-64, where the generated structs are cache-line aligned; exact elsewhere).
fn padded<S>(bytes: usize) -> usize {
    bytes.next_multiple_of(align_of::<S>())
}

#[test]
fn footprint_constants_add_up() {
    // 1·16 + 16 + 16·16 + 16 + 16·1 + 1 parameters.
    assert_eq!(Sine::<f32>::PARAM_COUNT, 321);
    assert_eq!(Sine::<f32>::PARAM_BYTES, 1284);
    assert_eq!(Sine::<f32>::BYTES, padded::<Sine<f32>>(1284));
    assert_eq!(Sine::<f32>::GRAD_BYTES, padded::<SineGrads<f32>>(1284));
    // Per sample: the output, its gradient and the input's (3); what backward reads, the
    // input and both ReLUs' outputs (1 + 16 + 16); two slots of 16 for the rest (the
    // pre-activations forward, the gradients backward, two of which are live at each step).
    assert_eq!(
        Sine::<f32>::tape_bytes::<16>(),
        padded::<SineTape<f32, 16>>((3 + 33 + 32) * 16 * 4)
    );
    // Inference: the output and two slots of 16.
    assert_eq!(
        Sine::<f32>::workspace_bytes::<1>(),
        padded::<SineWorkspace<f32, 1>>((1 + 32) * 4)
    );
    // Adam's state: two moments of the gradients' shape, its configuration and the step count
    // (where the structs are cache-line aligned, padding after the moments and the
    // configuration too).
    let adam = size_of::<Adam<f32, SineGrads<f32>>>();
    let state = 2 * Sine::<f32>::GRAD_BYTES + size_of::<AdamConfig>() + size_of::<u64>();
    let line = align_of::<SineGrads<f32>>();
    if line == align_of::<f32>() {
        assert_eq!(adam, state);
    } else {
        assert!((state..state + 2 * line).contains(&adam), "{adam} bytes");
    }
    // Known at compile time.
    const _: () = assert!(Sine::<f32>::PARAM_BYTES + Sine::<f32>::GRAD_BYTES < 4096);
}

/// Trains the firmware's network on the host and writes its weights (run on purpose only).
#[test]
#[ignore = "writes firmware/weights/sine.nnw when NN_WRITE_FIRMWARE_WEIGHTS=1"]
fn write_firmware_weights() {
    let mut net = Sine::<f32>::new_boxed();
    let mut rng = rand_pcg::Pcg64Mcg::seed_from_u64(2024);
    net.init(&mut rng);
    let mut tape = SineTape::<f32, 32>::new_boxed();
    let mut grads = SineGrads::<f32>::new_boxed();
    let mut adam = Adam::<f32, SineGrads<f32>>::new_boxed(AdamConfig {
        lr: 0.005,
        ..AdamConfig::default()
    });
    let mut x = SMatrix::<f32, 1, 32>::zeros();
    let mut targets = [0.0f32; 32];
    for step in 0..40_000 {
        if step == 30_000 {
            adam.config.lr = 0.0005;
        }
        for j in 0..32 {
            x[j] = TAU * (rng.next_u32() >> 8) as f32 / (1u32 << 24) as f32;
            targets[j] = x[j].sin();
        }
        train_step(
            &mut *net,
            &mut *tape,
            &mut *grads,
            &x,
            &targets,
            &Mse,
            &mut *adam,
            &StepOptions::default(),
        )
        .unwrap();
    }
    let error = max_error(&net);
    println!("max |net(x) - sin x| = {error}");
    assert!(error < 0.05, "max error {error}");
    if std::env::var_os("NN_WRITE_FIRMWARE_WEIGHTS").is_some() {
        std::fs::write(WEIGHTS_PATH, nn::io::flat::to_vec(&*net).unwrap()).unwrap();
        println!("wrote {WEIGHTS_PATH}");
    }
}
