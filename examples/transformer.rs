//! A small transformer block (embedding, learned positions, multi-head self-attention,
//! layer norm, a position-wise feed-forward network and residual connections) learns to tell
//! palindromes among sequences of 8 tokens — a task that needs each position to look at its
//! mirror, which is what attention is for.
//!
//! Run: `cargo run --release --example transformer`

use nn::loss::SoftmaxCrossEntropy;
use nn::optim::{AdamW, AdamWConfig};
use nn::prelude::*;
use nn::train::{Samples, TrainConfig, Trainer, argmax, argmax_accuracy};
use rand_core::{Rng, SeedableRng};
use std::time::Instant;

const LEN: usize = 8;
const VOCAB: u64 = 4;
const BATCH: usize = 32;
const EPOCHS: usize = 30;
const SEED: u64 = 3;

nn::network! {
    /// One post-norm transformer encoder block (as `nn.TransformerEncoderLayer`) and a
    /// linear read-out.
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
        let logits = readout(flatten(b));
    }
}

type Tokens = SMatrix<f32, LEN, 1>;

/// Half palindromes, half not (a random sequence is almost never one).
fn sequences(count: usize, rng: &mut impl Rng) -> (Vec<Tokens>, Vec<usize>) {
    let (mut inputs, mut labels) = (Vec::new(), Vec::new());
    for i in 0..count {
        let mut tokens = [0u64; LEN];
        for token in &mut tokens {
            *token = rng.next_u64() % VOCAB;
        }
        let palindrome = i % 2 == 0;
        if palindrome {
            for t in 0..LEN / 2 {
                tokens[LEN - 1 - t] = tokens[t];
            }
        } else {
            // Break the symmetry at one random mirrored pair, so negatives are hard.
            for t in 0..LEN / 2 {
                tokens[LEN - 1 - t] = tokens[t];
            }
            let t = (rng.next_u64() % (LEN as u64 / 2)) as usize;
            tokens[LEN - 1 - t] = (tokens[t] + 1 + rng.next_u64() % (VOCAB - 1)) % VOCAB;
        }
        inputs.push(Tokens::from_fn(|t, _| tokens[t] as f32));
        labels.push(usize::from(palindrome));
    }
    (inputs, labels)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut rng = rand_pcg::Pcg64Mcg::seed_from_u64(SEED);
    let (train_x, train_y) = sequences(4000, &mut rng);
    let (test_x, test_y) = sequences(1000, &mut rng);
    println!("{}\n", Palindromes::<f32>::summary());

    let started = Instant::now();
    let mut net = Palindromes::<f32>::new_boxed();
    net.init(&mut rng);
    let mut optimizer = AdamW::<f32, PalindromesGrads<f32>>::with_config(AdamWConfig {
        lr: 0.003,
        ..AdamWConfig::default()
    });
    let config = TrainConfig {
        epochs: EPOCHS,
        seed: SEED,
        log_every: 10,
        validation_split: 0.1,
        ..TrainConfig::default()
    };
    Trainer::new(config)
        .accuracy(argmax_accuracy)
        .fit::<_, _, _, BATCH>(
            &mut *net,
            &mut optimizer,
            &SoftmaxCrossEntropy,
            Samples::new(&train_x, &train_y),
            None,
        )?;
    let seconds = started.elapsed().as_secs_f64();

    let correct = test_x
        .iter()
        .zip(&test_y)
        .filter(|&(x, &label)| argmax(net.forward(x).as_slice()) == Some(label))
        .count();
    println!(
        "\ntest accuracy {:.1}% on {} unseen sequences (chance: 50%), training {seconds:.1}s",
        100.0 * correct as f64 / test_x.len() as f64,
        test_x.len()
    );
    Ok(())
}
