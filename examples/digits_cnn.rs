//! A small convolutional network on the real 8×8 handwritten digits, with the same
//! stratified 80/20 split as `examples/digits.rs` (the MLP), to compare with it.
//!
//! Prints per-epoch progress, the test accuracy and confusion matrix, and writes
//! `output/digits-cnn-training.png`.
//!
//! Run: `cargo run --release --example digits_cnn`

#[path = "common/mod.rs"]
mod common;

use common::digits::{SEED, load_split};
use nn::loss::SoftmaxCrossEntropy;
use nn::optim::{Adam, Cosine};
use nn::prelude::*;
use nn::train::{Samples, TrainConfig, Trainer, argmax, argmax_accuracy};
use rand_core::SeedableRng;
use std::time::Instant;

nn::network! {
    /// Two 3×3 convolutions with max-pooling, then a dense classifier (logits).
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

const BATCH: usize = 32;
const EPOCHS: usize = 40;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let started = Instant::now();
    let ((train_x, train_y), test) = load_split();
    println!(
        "UCI digits: {} training and {} test images (stratified 80/20, seed {SEED})\n",
        train_x.len(),
        test.0.len()
    );
    println!("{}\n", DigitsCnn::<f32>::summary());

    let mut net = DigitsCnn::<f32>::new_boxed();
    net.init(&mut rand_pcg::Pcg64Mcg::seed_from_u64(SEED));
    let mut optimizer = Adam::<f32, DigitsCnnGrads<f32>>::new(0.003);
    let schedule = Cosine {
        lr: 0.003,
        t_max: EPOCHS,
        eta_min: 1e-5,
    };
    let config = TrainConfig {
        epochs: EPOCHS,
        seed: SEED,
        log_every: 5,
        ..TrainConfig::default()
    };
    let history = Trainer::new(config)
        .schedule(&schedule)
        .accuracy(argmax_accuracy)
        .fit::<_, _, _, BATCH>(
            &mut *net,
            &mut optimizer,
            &SoftmaxCrossEntropy,
            Samples::new(&train_x, &train_y),
            None,
        )?;
    let training_time = started.elapsed();

    common::digits::report(&test, |x| {
        argmax(net.forward(x).as_slice()).expect("finite outputs")
    });
    println!("training {:.2}s", training_time.as_secs_f64());

    let path = common::output_path("digits-cnn-training.png");
    common::plot_history(&path, "CNN on the UCI digits", &history)?;
    println!("wrote {}", path.display());
    Ok(())
}
