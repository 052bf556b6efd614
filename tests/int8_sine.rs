//! The int8 sine network (issue 14, item 3): post-training quantization of the firmware's
//! `f32` network (`firmware/weights/sine.nnw`), calibrated on evenly spaced points of
//! [0, 2π]; its weights in `firmware/weights/sine.q8`, which the `sine-int8` firmware builds
//! into flash at compile time.
//!
//! Regenerate the int8 weights (after the `f32` ones changed) with
//! `NN_WRITE_FIRMWARE_WEIGHTS=1 cargo test --test int8_sine -- --ignored`; then the NumPy
//! reference with `python3 tests/fixtures/int8_reference.py`.

use nn::prelude::*;
use nn::quant::file::{Reader, Writer};
use nn::quant::{Chain, DenseQ8, LayerQ8, QuantParams, Range};
use std::f32::consts::TAU;

nn::network! {
    /// firmware/src/lib.rs's network: the TensorFlow Lite Micro "hello world" model, and with
    /// `#[nn(int8)]` its int8 form `SineQ8`.
    #[nn(int8)]
    pub struct Sine {
        input: [1],
        fc1: Dense<16>, Relu,
        fc2: Dense<16>, Relu,
        out: Dense<1>,
    }
}

/// The int8 sine network assembled by hand from `nn::quant`'s layers, to check the generated
/// `SineQ8` against.
type SineChain = Chain<Chain<DenseQ8<1, 16>, DenseQ8<16, 16>, 16>, DenseQ8<16, 1>, 16>;

const WEIGHTS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/firmware/weights/sine.nnw");
const INT8_WEIGHTS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/firmware/weights/sine.q8");
const REFERENCE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/sine_int8_reference.txt"
);

/// Calibration samples: this many evenly spaced points of [0, 2π], in batches of `BATCH`.
const CALIBRATION: usize = 1024;
const BATCH: usize = 64;

fn float_net() -> Box<Sine<f32>> {
    let mut net = Sine::<f32>::new_boxed();
    nn::io::flat::load(&mut *net, &std::fs::read(WEIGHTS).unwrap()).unwrap();
    net
}

/// Runs the training forward pass over the calibration points, batch by batch, and gives
/// `observe` each tape: it keeps every node's value.
fn calibration_tapes(net: &Sine<f32>, mut observe: impl FnMut(&SineTape<f32, BATCH>)) {
    let mut net = net.clone();
    let mut tape = SineTape::<f32, BATCH>::new_boxed();
    for batch in 0..CALIBRATION / BATCH {
        let x = SMatrix::<f32, 1, BATCH>::from_fn(|_, j| {
            TAU * (batch * BATCH + j) as f32 / (CALIBRATION - 1) as f32
        });
        net.forward_train(&x, &mut tape);
        observe(&tape);
    }
}

/// The min and max of every quantized node over the calibration points (TFLite's
/// calibration): the input, and the outputs of the two ReLUs and of the last layer.
fn calibrate(net: &Sine<f32>) -> [Range; 4] {
    let mut ranges = [Range::EMPTY; SineQ8::NODES];
    calibration_tapes(net, |tape| SineQ8::observe(&mut ranges, tape));
    ranges
}

/// Post-training quantization of the sine network: the generated `SineQ8::quantize`.
fn quantize(net: &Sine<f32>) -> SineQ8 {
    SineQ8::quantize(net, &calibrate(net)).unwrap()
}

/// The same by hand, layer by layer, from the tape's node values.
fn quantize_by_hand(net: &Sine<f32>) -> SineChain {
    let mut ranges = [Range::EMPTY; 4];
    calibration_tapes(net, |tape| {
        ranges[0].observe(tape.input.as_slice());
        ranges[1].observe(tape.fc1_relu.as_slice());
        ranges[2].observe(tape.fc2_relu.as_slice());
        ranges[3].observe(tape.output.as_slice());
    });
    let p = ranges.map(QuantParams::from_range);
    let fc1 = DenseQ8::quantize(&net.fc1, p[0], p[1], true).unwrap();
    let fc2 = DenseQ8::quantize(&net.fc2, p[1], p[2], true).unwrap();
    let out = DenseQ8::quantize(&net.out, p[2], p[3], false).unwrap();
    Chain::new(Chain::new(fc1, fc2).unwrap(), out).unwrap()
}

fn int8_file(q: &SineQ8) -> Vec<u8> {
    let mut bytes = Vec::new();
    q.write_file(&mut |b| bytes.extend_from_slice(b));
    bytes
}

/// As firmware/src/bin/sine_int8.rs builds it: in a `static`, at compile time.
static CONST_BUILT: SineQ8 = SineQ8::from_file(include_bytes!("../firmware/weights/sine.q8"));

/// The same file read by `nn::quant::file::Reader` into the hand-assembled chain.
static CHAIN_BUILT: SineChain = {
    let mut file = Reader::new(include_bytes!("../firmware/weights/sine.q8"));
    let fc1 = file.dense::<1, 16>("fc1");
    let fc2 = file.dense::<16, 16>("fc2");
    let out = file.dense::<16, 1>("out");
    file.finish();
    Chain {
        first: Chain {
            first: fc1,
            second: fc2,
        },
        second: out,
    }
};

/// Largest |f(x) − sin x| over 1000 evenly spaced points of [0, 2π].
fn max_error(f: impl Fn(f32) -> f32) -> f32 {
    (0..1000)
        .map(|i| {
            let x = TAU * i as f32 / 999.0;
            (f(x) - x.sin()).abs()
        })
        .fold(0.0, f32::max)
}

#[test]
fn the_committed_int8_weights_are_the_quantized_network() {
    let q = quantize(&float_net());
    assert_eq!(std::fs::read(INT8_WEIGHTS).unwrap(), int8_file(&q));
    // And the network built from them at compile time is that network.
    assert_eq!(CONST_BUILT, q);
}

#[test]
fn the_generated_int8_network_is_the_hand_assembled_chain() {
    let net = float_net();
    let q = quantize(&net);
    let chain = quantize_by_hand(&net);
    assert_eq!(
        (q.fc1, q.fc2, q.out),
        (chain.first.first, chain.first.second, chain.second)
    );
    assert_eq!(
        (CHAIN_BUILT.first.first, CHAIN_BUILT.second),
        (q.fc1, q.out)
    );
    // The file `Writer` writes from the chain is the one `SineQ8::write_file` writes.
    let mut writer = Writer::new();
    writer.dense("fc1", &chain.first.first);
    writer.dense("fc2", &chain.first.second);
    writer.dense("out", &chain.second);
    assert_eq!(writer.finish(), int8_file(&q));
    for x in -128..=127 {
        assert_eq!(q.forward(&[x]), LayerQ8::forward(&chain, &[x]));
    }
    assert_eq!(q.forward_f32(&[1.0]), chain.forward_f32(&[1.0]));
}

#[test]
fn calibration_ranges_and_scales() {
    let net = float_net();
    let ranges = calibrate(&net);
    assert_eq!(ranges[0].min, 0.0);
    assert_eq!(ranges[0].max, TAU);
    // ReLU outputs start at 0: their zero point is −128, so the fused ReLU clamp is free.
    for range in &ranges[1..3] {
        assert_eq!(range.min, 0.0);
        assert_eq!(QuantParams::from_range(*range).zero_point, -128);
    }
    // The output spans about [−1, 1].
    assert!(
        ranges[3].min < -0.9 && ranges[3].max > 0.9,
        "{:?}",
        ranges[3]
    );
}

#[test]
fn int8_sine_is_close_to_the_f32_network() {
    let net = float_net();
    let q = quantize(&net);
    let f32_error = max_error(|x| net.forward(&SMatrix::<f32, 1, 1>::new(x))[0]);
    let int8_error = max_error(|x| q.forward_f32(&[x])[0]);
    let gap = max_error(|x| {
        q.forward_f32(&[x])[0] - net.forward(&SMatrix::<f32, 1, 1>::new(x))[0] + x.sin()
    });
    // The f32 network on the input rounded to the int8 grid (a step of 2π/255 = 0.025): the
    // part of the error that 8 bits of input cost whatever the rest.
    let input = QuantParams::from_range(calibrate(&net)[0]);
    let rounded_input_error = max_error(|x| {
        let x = input.dequantize(input.quantize(x));
        net.forward(&SMatrix::<f32, 1, 1>::new(x))[0]
    });
    println!(
        "max error vs sin: f32 {f32_error:.4}, f32 on int8 inputs {rounded_input_error:.4}, \
         int8 {int8_error:.4}; int8 vs f32 {gap:.4}"
    );
    // Measured: f32 0.0283, f32 on int8 inputs 0.0309, int8 0.0662, int8 vs f32 0.0645.
    // microflow's int8 sine: 0.31.
    assert!(int8_error < 0.08, "int8 max error {int8_error}");
    assert!(gap < 0.08, "int8 vs f32 {gap}");
}

/// Every one of the 256 inputs of the int8 network against NumPy's outputs, computed in
/// `int64` from the weight file by `tests/fixtures/int8_reference.py`.
#[test]
fn int8_outputs_equal_the_numpy_reference_exactly() {
    let reference = std::fs::read_to_string(REFERENCE).unwrap();
    let expected: Vec<(i8, i8)> = reference
        .lines()
        .filter(|line| !line.starts_with('#'))
        .map(|line| {
            let (x, y) = line.split_once(' ').unwrap();
            (x.parse().unwrap(), y.parse().unwrap())
        })
        .collect();
    assert_eq!(expected.len(), 256);
    let distinct: std::collections::BTreeSet<i8> = expected.iter().map(|&(_, y)| y).collect();
    assert!(distinct.len() > 100, "a sine takes many output levels");
    let mut workspace = SineQ8Workspace::ZERO;
    for (x, y) in expected {
        assert_eq!(CONST_BUILT.forward(&[x]), [y], "input {x}");
        // Three layers through the two buffers: fc1 → a, fc2 → b, out → a.
        assert_eq!(
            CONST_BUILT.forward_in(&[x], &mut workspace),
            &[y],
            "input {x}"
        );
    }
    assert_eq!(SineQ8::ACTIVATION_BYTES, 16);
    assert_eq!(SineQ8::WORKSPACE_BYTES, 32);
}

nn::network! {
    /// One int8 layer: `forward_in` writes buffer `a` only.
    #[nn(int8)]
    pub struct OneLayer {
        input: [5],
        fc: Dense<3>, Relu,
    }
}

#[test]
fn forward_in_of_a_single_layer_equals_forward() {
    let mut net = OneLayer::<f32>::new_boxed();
    let mut state = 3u32;
    for w in net.fc.weight.iter_mut().chain(net.fc.bias.iter_mut()) {
        state = state.wrapping_mul(1_103_515_245).wrapping_add(12_345);
        *w = (state >> 16) as f32 / 32_768.0 - 1.0;
    }
    let q = OneLayerQ8::quantize(&net, &[Range::new(-1.0, 1.0), Range::new(0.0, 3.0)]).unwrap();
    assert_eq!(OneLayerQ8::ACTIVATION_BYTES, 3);
    let mut workspace = OneLayerQ8Workspace::ZERO;
    for n in 0..200i32 {
        let x: [i8; 5] = core::array::from_fn(|i| ((n * 37 + i as i32 * 91) % 256 - 128) as i8);
        assert_eq!(q.forward_in(&x, &mut workspace), &q.forward(&x));
    }
}

/// Quantizes the firmware's network and writes its int8 weights (run on purpose only).
#[test]
#[ignore = "writes firmware/weights/sine.q8 when NN_WRITE_FIRMWARE_WEIGHTS=1"]
fn write_int8_firmware_weights() {
    let q = quantize(&float_net());
    let bytes = int8_file(&q);
    println!("{} bytes", bytes.len());
    if std::env::var_os("NN_WRITE_FIRMWARE_WEIGHTS").is_some() {
        std::fs::write(INT8_WEIGHTS, bytes).unwrap();
        println!("wrote {INT8_WEIGHTS}");
    }
}
