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
const SEED: u64 = 2024;

type Image = SMatrix<f32, 64, 1>;

/// Images and their labels.
type Part = (Vec<Image>, Vec<usize>);

/// Images scaled to [0, 1] and their labels, split 80/20 in every class: (training, test).
fn load_split() -> (Part, Part) {
    let data = smartcore::dataset::digits::load_dataset();
    assert_eq!((data.num_samples, data.num_features), (1797, 64));
    let images: Vec<Image> = data
        .data
        .chunks(64)
        .map(|pixels| Image::from_iterator(pixels.iter().map(|p| p / 16.0)))
        .collect();
    let labels: Vec<usize> = data.target.iter().map(|&t| t as usize).collect();

    // Stratified: shuffle each class's indices with a fixed seed and keep 80% for training.
    let mut rng = rand_pcg::Pcg64Mcg::seed_from_u64(SEED);
    let (mut train, mut test) = ((Vec::new(), Vec::new()), (Vec::new(), Vec::new()));
    for class in 0..10 {
        let mut indices: Vec<usize> = (0..labels.len()).filter(|&i| labels[i] == class).collect();
        for i in (1..indices.len()).rev() {
            let j = (rand_core::Rng::next_u64(&mut rng) % (i as u64 + 1)) as usize;
            indices.swap(i, j);
        }
        let cut = (indices.len() as f64 * 0.8).round() as usize;
        for (k, &i) in indices.iter().enumerate() {
            let part = if k < cut { &mut train } else { &mut test };
            part.0.push(images[i]);
            part.1.push(labels[i]);
        }
    }
    (train, test)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let started = Instant::now();
    let ((train_x, train_y), (test_x, test_y)) = load_split();
    println!(
        "UCI digits: {} training and {} test images (stratified 80/20, seed {SEED})\n",
        train_x.len(),
        test_x.len()
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
        .fit::<_, _, _, 64, 10, BATCH>(
            &mut *net,
            &mut optimizer,
            &SoftmaxCrossEntropy,
            Samples::new(&train_x, &train_y),
            None,
        )?;
    let training_time = started.elapsed();

    // Test accuracy and confusion matrix (rows: true class, columns: predicted).
    let mut confusion = [[0usize; 10]; 10];
    for (x, &label) in test_x.iter().zip(&test_y) {
        let predicted = argmax(net.forward(x).as_slice()).expect("finite outputs");
        confusion[label][predicted] += 1;
    }
    let correct: usize = (0..10).map(|c| confusion[c][c]).sum();
    let accuracy = correct as f64 / test_x.len() as f64;
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
    println!("\nconfusion matrix (rows: true digit, columns: predicted)");
    println!(
        "      {}",
        (0..10).map(|c| format!("{c:>4}")).collect::<String>()
    );
    for (class, row) in confusion.iter().enumerate() {
        println!(
            "  {class:>2}  {}",
            row.iter().map(|n| format!("{n:>4}")).collect::<String>()
        );
    }
    println!(
        "\ntest accuracy {:.2}% ({correct}/{}), training {:.2}s",
        100.0 * accuracy,
        test_x.len(),
        training_time.as_secs_f64()
    );

    let path = common::output_path("digits-training.png");
    common::plot_history(&path, "MLP on the UCI digits", &history)?;
    println!("wrote {}", path.display());
    Ok(())
}
