//! The digits CNN of examples/digits_cnn.rs in int8 (issue 14): post-training quantization
//! of the trained `f32` network (`#[nn(int8)]` generates `DigitsCnnQ8`: two int8
//! convolutions with fused ReLU, int8 max pooling, flatten, two int8 Dense layers; the
//! dropout is the identity in inference), calibrated on the training images, and its test
//! accuracy against the `f32` network's on the held-out split.
//!
//! Run: `cargo test --test int8_digits_cnn -- --nocapture` (prints both accuracies).
//!
//! As for the MLP (tests/int8_digits.rs), the exact check against NumPy uses a committed
//! network, `tests/fixtures/digits_cnn.q8` (this test's PTQ network, written on purpose with
//! `NN_WRITE_FIXTURES=1 cargo test --test int8_digits_cnn -- --ignored`), on the quantized
//! test images of `tests/fixtures/digits_int8_inputs.bin` (the MLP's: the same pixels, the
//! same input scale), from which `python3 tests/fixtures/int8_reference.py` computes
//! `digits_cnn_int8_reference.txt`.

#[allow(dead_code)]
#[path = "../examples/common/digits.rs"]
mod digits;
#[path = "common/int8_digits.rs"]
mod int8_digits;

use digits::{Image, Part, load_split};
use int8_digits::{BATCH, accuracy, pixels};
use nn::prelude::*;
use nn::quant::Range;
use nn::train::argmax;
use std::sync::OnceLock;

nn::network! {
    /// examples/digits_cnn.rs's network, and with `#[nn(int8)]` its int8 form `DigitsCnnQ8`.
    #[nn(int8)]
    pub struct DigitsCnn {
        input: [1, 8, 8],
        conv1: Conv2d<16, 3, padding = 1>, Relu,
        pool1: MaxPool2d<2>,
        conv2: Conv2d<32, 3, padding = 1>, Relu,
        pool2: MaxPool2d<2>,
        Flatten,
        fc: Dense<64>, Relu,
        drop: Dropout<0.25>,
        logits: Dense<10>,
    }
}

/// The example's training (Adam 0.003, batches of 32, seed 2024), far fewer epochs (the
/// example trains 40 with a cosine schedule) and no validation split, so that it takes a few
/// seconds in a debug build.
const EPOCHS: usize = 3;

fn train(train: &Part) -> Box<DigitsCnn<f32>> {
    int8_digits::train(train, EPOCHS)
}

/// The min and max of every quantized node (the input, each convolution's and Dense layer's
/// output after its ReLU, the logits) over the training images, from the tapes of training
/// forward passes in batches of `BATCH` (the last batch padded by repeating its first image).
/// The training pass applies the dropout, so the logits' range is that of logits computed
/// from dropped and rescaled hidden units (a little wider than in inference).
fn calibrate(net: &mut DigitsCnn<f32>, images: &[Image]) -> [Range; DigitsCnnQ8::NODES] {
    let mut ranges = [Range::EMPTY; DigitsCnnQ8::NODES];
    let mut tape = DigitsCnnTape::<f32, BATCH>::new_boxed();
    for chunk in images.chunks(BATCH) {
        let x = SMatrix::<f32, 64, BATCH>::from_fn(|i, j| chunk.get(j).unwrap_or(&chunk[0])[i]);
        net.forward_train(&x, &mut tape);
        DigitsCnnQ8::observe(&mut ranges, &tape);
    }
    ranges
}

/// The predicted class of every test image, by the `f32` network and by the int8 one.
fn predictions(net: &DigitsCnn<f32>, q: &DigitsCnnQ8, test: &Part) -> (Vec<usize>, Vec<usize>) {
    let f32_classes = test
        .0
        .iter()
        .map(|x| argmax(net.forward(x).as_slice()).unwrap())
        .collect();
    let int8_classes = test
        .0
        .iter()
        .map(|x| {
            let logits = q.forward(&q.quantize_input(&pixels(x)));
            argmax(&logits.map(|v| v as f32)).unwrap()
        })
        .collect();
    (f32_classes, int8_classes)
}

/// The trained network quantized after training, calibrated on the training images.
fn post_training_quantization() -> &'static (Box<DigitsCnn<f32>>, DigitsCnnQ8, Part) {
    static PTQ: OnceLock<(Box<DigitsCnn<f32>>, DigitsCnnQ8, Part)> = OnceLock::new();
    PTQ.get_or_init(|| {
        let (train_part, test) = load_split();
        let mut net = train(&train_part);
        let ranges = calibrate(&mut net, &train_part.0);
        // Pixels are in [0, 1]; the convolutions' and the hidden Dense layer's outputs are
        // ReLU outputs.
        assert_eq!((ranges[0].min, ranges[0].max), (0.0, 1.0));
        for range in &ranges[1..4] {
            assert_eq!(range.min, 0.0);
        }
        let q = DigitsCnnQ8::quantize(&net, &ranges).unwrap();
        (net, q, test)
    })
}

#[test]
fn int8_digits_cnn_is_as_accurate_as_f32() {
    let (net, q, test) = post_training_quantization();
    let (f32_classes, int8_classes) = predictions(net, q, test);
    let f32_accuracy = accuracy(&f32_classes, &test.1);
    let int8_accuracy = accuracy(&int8_classes, &test.1);
    let agree = f32_classes
        .iter()
        .zip(&int8_classes)
        .filter(|(a, b)| a == b)
        .count();
    let agreement = agree as f64 / test.1.len() as f64;
    println!(
        "digits CNN ({EPOCHS} epochs), {} test images: f32 {:.2}%, int8 (PTQ) {:.2}%; \
         int8 and f32 agree on {agree} ({:.2}%)",
        test.1.len(),
        100.0 * f32_accuracy,
        100.0 * int8_accuracy,
        100.0 * agreement,
    );
    // Measured: see BENCHMARKS.md. The bound: within 2 points of f32, and 97% agreement.
    assert!(f32_accuracy > 0.9, "f32 accuracy {f32_accuracy}");
    assert!(
        (int8_accuracy - f32_accuracy).abs() <= 0.02,
        "int8 {int8_accuracy} vs f32 {f32_accuracy}"
    );
    assert!(agreement >= 0.97, "agreement {agreement}");
}

/// The int8 network's dequantized logits are close to the `f32` network's: within a few
/// output steps on most images (the error of 5 layers of rounding, the dropout-widened
/// logits range aside).
#[test]
fn int8_logits_are_close_to_f32() {
    let (net, q, test) = post_training_quantization();
    let step = q.logits.output.scale;
    let mut errors: Vec<f32> = test
        .0
        .iter()
        .flat_map(|x| {
            let exact = net.forward(x);
            let int8 = q.forward_f32(&pixels(x));
            (0..10)
                .map(|i| (int8[i] - exact[i]).abs())
                .collect::<Vec<_>>()
        })
        .collect();
    errors.sort_by(f32::total_cmp);
    let median = errors[errors.len() / 2];
    let worst = errors[errors.len() - 1];
    println!(
        "logit error: median {median:.4} ({:.2} steps), max {worst:.4} ({:.2} steps), step {step:.4}",
        median / step,
        worst / step
    );
    assert!(median < 3.0 * step, "median {median} vs step {step}");
}

const INT8_WEIGHTS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/digits_cnn.q8");
const INT8_INPUTS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/digits_int8_inputs.bin"
);
const REFERENCE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/digits_cnn_int8_reference.txt"
);

/// The committed int8 network, built at compile time as firmware would build it.
static COMMITTED: DigitsCnnQ8 = DigitsCnnQ8::from_file(include_bytes!("fixtures/digits_cnn.q8"));

/// The committed network's int8 logits for every test image equal NumPy's, computed in
/// `int64` from the weight file by `tests/fixtures/int8_reference.py` (convolutions with
/// zero-point padding, max pooling, Dense layers); and its accuracy is the one BENCHMARKS.md
/// reports.
#[test]
fn int8_digits_cnn_outputs_equal_the_numpy_reference_exactly() {
    let (_, test) = load_split();
    // The committed inputs are the test images (pixels in [0, 1]: S = 1/255, Z = −128).
    let committed_inputs = std::fs::read(INT8_INPUTS).unwrap();
    assert_eq!(committed_inputs.len(), 64 * test.0.len());
    let inputs: Vec<[i8; 64]> = test
        .0
        .iter()
        .map(|x| COMMITTED.quantize_input(&pixels(x)))
        .collect();
    for (x, bytes) in inputs.iter().zip(committed_inputs.chunks(64)) {
        assert_eq!(x.map(|v| v as u8), bytes);
    }
    let reference = std::fs::read_to_string(REFERENCE).unwrap();
    let expected: Vec<Vec<i8>> = reference
        .lines()
        .filter(|line| !line.starts_with('#'))
        .map(|line| line.split(' ').map(|v| v.parse().unwrap()).collect())
        .collect();
    assert_eq!(expected.len(), test.0.len());
    let mut correct = 0;
    for (n, ((x, y), &label)) in inputs.iter().zip(&expected).zip(&test.1).enumerate() {
        let logits = COMMITTED.forward(x);
        assert_eq!(logits.as_slice(), y.as_slice(), "test image {n}");
        correct += (argmax(&logits.map(|v| v as f32)).unwrap() == label) as usize;
    }
    println!(
        "committed int8 digits CNN: {correct}/{} test images right",
        test.0.len()
    );
    assert_eq!(correct, COMMITTED_CORRECT);
}

/// Test images the committed int8 network classifies right (of 359), on the machine that
/// wrote it.
const COMMITTED_CORRECT: usize = 348;

/// Writes the int8 network of the fixtures (run on purpose only); then run
/// `python3 tests/fixtures/int8_reference.py`.
#[test]
#[ignore = "writes tests/fixtures/digits_cnn.q8 when NN_WRITE_FIXTURES=1"]
fn write_int8_digits_cnn_fixture() {
    let (_, q, _) = post_training_quantization();
    let mut bytes = Vec::new();
    q.write_file(&mut |b| bytes.extend_from_slice(b));
    println!("{} bytes of weights", bytes.len());
    if std::env::var_os("NN_WRITE_FIXTURES").is_some() {
        std::fs::write(INT8_WEIGHTS, bytes).unwrap();
        println!("wrote {INT8_WEIGHTS}");
    }
}
