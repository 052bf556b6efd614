//! The README's main example: a multilayer perceptron learns the real 8×8 handwritten digits
//! (1797 images, 10 classes; the UCI set scikit-learn ships as `load_digits`, embedded in the
//! `smartcore` crate), with a fixed, stratified 80/20 split.
//!
//! Prints per-epoch progress, the test accuracy and confusion matrix, and writes
//! `output/digits-training.png` (loss and accuracy per epoch).
//!
//! Run: `cargo run --release --example digits`

#[path = "common/mod.rs"]
mod common;

use common::digits::{SEED, load_split};
use nn::loss::SoftmaxCrossEntropy;
use nn::optim::Adam;
use nn::prelude::*;
use nn::train::{EarlyStopping, Samples, TrainConfig, Trainer, argmax, argmax_accuracy};
use rand_core::SeedableRng;
use std::time::Instant;

nn::network! {
    /// 64 pixels → 64 hidden units (ReLU) → 10 class scores (logits).
    pub struct DigitsMlp {
        input: [64],
        hidden: Dense<64>, Relu,
        logits: Dense<10>,
    }
}

const BATCH: usize = 32;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let started = Instant::now();
    let ((train_x, train_y), test) = load_split();
    println!(
        "UCI digits: {} training and {} test images (stratified 80/20, seed {SEED})\n",
        train_x.len(),
        test.0.len()
    );
    println!("{}\n", DigitsMlp::<f32>::summary());

    let mut net = DigitsMlp::<f32>::new_boxed();
    net.init(&mut rand_pcg::Pcg64Mcg::seed_from_u64(SEED));
    let mut optimizer = Adam::<f32, DigitsMlpGrads<f32>>::new(0.003);
    let config = TrainConfig {
        epochs: 60,
        seed: SEED,
        validation_split: 0.1,
        early_stopping: Some(EarlyStopping {
            patience: 8,
            min_delta: 1e-4,
            restore_best: true,
        }),
        ..TrainConfig::default()
    };
    let history = Trainer::new(config)
        .accuracy(argmax_accuracy)
        .fit::<_, _, _, BATCH>(
            &mut *net,
            &mut optimizer,
            &SoftmaxCrossEntropy,
            Samples::new(&train_x, &train_y),
            None,
        )?;
    let training_time = started.elapsed();

    println!(
        "\nbest epoch {} of {}{}",
        history.best_epoch + 1,
        history.epochs.len(),
        if history.stopped_early {
            " (stopped early)"
        } else {
            ""
        }
    );
    common::digits::report(&test, |x| {
        argmax(net.forward(x).as_slice()).expect("finite outputs")
    });
    println!("training {:.2}s", training_time.as_secs_f64());

    let path = common::output_path("digits-training.png");
    common::plot_history(&path, "MLP on the UCI digits", &history)?;
    println!("wrote {}", path.display());
    Ok(())
}
