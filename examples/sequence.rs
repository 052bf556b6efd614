//! A GRU learns to predict the next value of noisy sine waves of random frequency and phase
//! from the 16 values before it — a sequence task a feed-forward network on one value cannot
//! do (it must infer the frequency and phase from the window).
//!
//! Prints the test error next to two baselines (repeating the last value; extrapolating the
//! last two linearly) and shows the streaming API: the same network fed one value at a time
//! through `Gru::step` gives the same prediction.
//!
//! Run: `cargo run --release --example sequence`

use nn::loss::Mse;
use nn::optim::{Adam, Cosine};
use nn::prelude::*;
use nn::train::{Samples, TrainConfig, Trainer};
use rand_core::{Rng, SeedableRng};
use std::time::Instant;

const STEPS: usize = 16;
const BATCH: usize = 32;
const EPOCHS: usize = 60;
const SEED: u64 = 7;

nn::network! {
    /// A window of 16 values → the next value.
    pub struct NextValue {
        input: [16, 1],
        gru: Gru<32, last = true>,
        head: Dense<1>,
    }
}

type Window = SMatrix<f32, STEPS, 1>;

fn uniform(rng: &mut impl Rng) -> f64 {
    (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64
}

/// `count` windows of `sin(ω t + φ) + noise` with ω ∈ [0.2, 0.6], and the value after each.
fn windows(count: usize, rng: &mut impl Rng) -> (Vec<Window>, Vec<f32>) {
    let (mut inputs, mut targets) = (Vec::new(), Vec::new());
    for _ in 0..count {
        let omega = 0.2 + 0.4 * uniform(rng);
        let phase = std::f64::consts::TAU * uniform(rng);
        let value = |t: usize, rng: &mut dyn FnMut() -> f64| {
            (omega * t as f64 + phase).sin() + 0.1 * (rng() - 0.5)
        };
        let mut noise = || uniform(rng);
        let window = Window::from_fn(|t, _| value(t, &mut noise) as f32);
        targets.push(value(STEPS, &mut noise) as f32);
        inputs.push(window);
    }
    (inputs, targets)
}

fn rmse(predict: impl Fn(&Window) -> f32, inputs: &[Window], targets: &[f32]) -> f64 {
    let sum: f64 = inputs
        .iter()
        .zip(targets)
        .map(|(x, &t)| f64::from(predict(x) - t).powi(2))
        .sum();
    (sum / inputs.len() as f64).sqrt()
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut rng = rand_pcg::Pcg64Mcg::seed_from_u64(SEED);
    let (train_x, train_y) = windows(2000, &mut rng);
    let (test_x, test_y) = windows(500, &mut rng);
    println!("{}\n", NextValue::<f32>::summary());

    let started = Instant::now();
    let mut net = NextValue::<f32>::new_boxed();
    net.init(&mut rng);
    let mut adam = Adam::<f32, NextValueGrads<f32>>::new(0.005);
    let schedule = Cosine {
        lr: 0.005,
        t_max: EPOCHS,
        eta_min: 1e-5,
    };
    let config = TrainConfig {
        epochs: EPOCHS,
        seed: SEED,
        log_every: 10,
        validation_split: 0.1,
        ..TrainConfig::default()
    };
    Trainer::new(config)
        .schedule(&schedule)
        .fit::<_, _, _, BATCH>(
            &mut *net,
            &mut adam,
            &Mse,
            Samples::new(&train_x, &train_y),
            None,
        )?;
    let seconds = started.elapsed().as_secs_f64();

    let gru = rmse(|x| net.forward(x)[0], &test_x, &test_y);
    let last = rmse(|x| x[STEPS - 1], &test_x, &test_y);
    let linear = rmse(|x| 2.0 * x[STEPS - 1] - x[STEPS - 2], &test_x, &test_y);
    println!("\ntest RMS error of the next value (500 unseen waves):");
    println!("  GRU                        {gru:.4}");
    println!("  repeat the last value      {last:.4}");
    println!("  extrapolate the last two   {linear:.4}");
    println!("training {seconds:.1}s");

    // Streaming: one value at a time through the layer's `step`, then the head.
    let mut state = nn::layers::GruState::<f32, 32>::default();
    let mut hidden = SMatrix::<f32, 32, 1>::zeros();
    for &value in test_x[0].iter() {
        hidden = net.gru.step(&SMatrix::<f32, 1, 1>::new(value), &mut state);
    }
    let mut streamed = SMatrix::<f32, 1, 1>::zeros();
    nn::Layer::forward(&net.head, &(), &hidden, &mut streamed, &mut []);
    println!(
        "\nstreaming the first test wave value by value: {:.6} (whole-sequence forward: {:.6})",
        streamed[0],
        net.forward(&test_x[0])[0]
    );
    Ok(())
}
