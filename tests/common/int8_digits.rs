//! What the int8 digits tests (`int8_digits.rs`, `int8_digits_cnn.rs`) share: the example's
//! training, shortened, and the accuracy of a list of predicted classes.

use super::digits::{Image, Part, SEED};
use nn::loss::SoftmaxCrossEntropy;
use nn::optim::Adam;
use nn::prelude::*;
use nn::train::{Samples, TrainConfig, Trainer};
use rand_core::SeedableRng;

/// The examples' batch size.
pub const BATCH: usize = 32;

/// The examples' training (Adam 0.003, batches of 32, seed 2024) for `epochs` epochs and
/// without a validation split, so that it takes seconds in a debug build.
pub fn train<N>(train: &Part, epochs: usize) -> Box<N>
where
    N: Network<
            f32,
            Input<BATCH> = SMatrix<f32, 64, BATCH>,
            Output<BATCH> = SMatrix<f32, 10, BATCH>,
        >,
{
    let mut net = N::new_boxed();
    net.init(&mut rand_pcg::Pcg64Mcg::seed_from_u64(SEED));
    let mut optimizer = Adam::<f32, N::Grads>::new(0.003);
    let config = TrainConfig {
        epochs,
        seed: SEED,
        validation_split: 0.0,
        progress: false,
        ..TrainConfig::default()
    };
    Trainer::new(config)
        .fit::<_, _, _, BATCH>(
            &mut *net,
            &mut optimizer,
            &SoftmaxCrossEntropy,
            Samples::new(&train.0, &train.1),
            None,
        )
        .unwrap();
    net
}

/// An image as the int8 network's `f32` input.
pub fn pixels(x: &Image) -> [f32; 64] {
    core::array::from_fn(|i| x[i])
}

/// The share of `classes` equal to `labels`.
pub fn accuracy(classes: &[usize], labels: &[usize]) -> f64 {
    let correct = classes.iter().zip(labels).filter(|(c, l)| c == l).count();
    correct as f64 / labels.len() as f64
}
