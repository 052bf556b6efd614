//! The trainer: epochs of shuffled mini-batches, validation, early stopping, a progress bar
//! and a returned history. Needs `std`.

use super::step::{StepError, StepOptions, train_step};
use crate::optim::Schedule;
use crate::{ConstZero, Loss, Network, Optimizer, Real, SMatrix, Zeroable};
use indicatif::{ProgressBar, ProgressStyle};
use rand_core::{Rng, SeedableRng};
use std::boxed::Box;
use std::fmt;
use std::format;
use std::time::Instant;
use std::vec::Vec;

/// A data set: inputs (one vector each) and their targets, index for index.
#[derive(Debug)]
pub struct Samples<'a, T: Real, const IN: usize, Target> {
    /// The inputs.
    pub inputs: &'a [SMatrix<T, IN, 1>],
    /// The target of each input.
    pub targets: &'a [Target],
}

impl<T: Real, const IN: usize, Target> Clone for Samples<'_, T, IN, Target> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T: Real, const IN: usize, Target> Copy for Samples<'_, T, IN, Target> {}

impl<'a, T: Real, const IN: usize, Target> Samples<'a, T, IN, Target> {
    /// Pairs inputs with targets (the shorter length counts).
    pub fn new(inputs: &'a [SMatrix<T, IN, 1>], targets: &'a [Target]) -> Self {
        let n = inputs.len().min(targets.len());
        Samples {
            inputs: &inputs[..n],
            targets: &targets[..n],
        }
    }

    /// Number of samples.
    pub fn len(&self) -> usize {
        self.inputs.len()
    }

    /// True if there are no samples.
    pub fn is_empty(&self) -> bool {
        self.inputs.is_empty()
    }
}

/// Stop when the monitored loss (validation, or training without validation data) has not
/// improved by `min_delta` for `patience` epochs.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct EarlyStopping {
    /// Epochs without improvement before stopping.
    pub patience: usize,
    /// The least decrease that counts as an improvement.
    pub min_delta: f64,
    /// Put back the parameters of the best epoch when stopping (or at the end).
    pub restore_best: bool,
}

/// How to train.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TrainConfig {
    /// Passes over the training data.
    pub epochs: usize,
    /// Seed of the shuffling.
    pub seed: u64,
    /// Shuffle the training samples each epoch.
    pub shuffle: bool,
    /// Fraction of the training samples held out for validation when no validation set is
    /// given: a random subset drawn with `seed` (not the last ones, as Keras takes, which
    /// is wrong for data sorted by class).
    pub validation_split: f64,
    /// Stop early (default: no).
    pub early_stopping: Option<EarlyStopping>,
    /// Show a progress bar with the live loss during each epoch, and a line per epoch.
    pub progress: bool,
    /// With `progress`, print the line of every `log_every`-th epoch (and of the last).
    pub log_every: usize,
    /// Skip the last batch of an epoch when it is partial. Needed for layers that mix the
    /// samples of a batch (batch normalization): a partial batch is padded with zero columns,
    /// which would enter its statistics.
    pub drop_last: bool,
    /// Regularization and gradient clipping of each step.
    pub step: StepOptions,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            epochs: 10,
            seed: 0,
            shuffle: true,
            validation_split: 0.0,
            early_stopping: None,
            progress: true,
            log_every: 1,
            drop_last: false,
            step: StepOptions::default(),
        }
    }
}

/// The numbers of one epoch.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct EpochStats {
    /// 0-based epoch number.
    pub epoch: usize,
    /// Mean data loss over the epoch's training batches (as computed during the epoch).
    pub train_loss: f64,
    /// Fraction of training samples classified right during the epoch, if an accuracy was set.
    pub train_accuracy: Option<f64>,
    /// Loss on the validation data after the epoch.
    pub valid_loss: Option<f64>,
    /// Accuracy on the validation data after the epoch.
    pub valid_accuracy: Option<f64>,
    /// The learning rate used in the epoch.
    pub learning_rate: f64,
    /// Wall-clock seconds of the epoch.
    pub seconds: f64,
}

/// What [`Trainer::fit`] returns.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct History {
    /// One entry per epoch run.
    pub epochs: Vec<EpochStats>,
    /// Whether early stopping ended the training.
    pub stopped_early: bool,
    /// The epoch with the best monitored loss.
    pub best_epoch: usize,
}

/// Training stopped because a step failed; the parameters are those before that step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TrainError {
    /// Epoch of the failed step.
    pub epoch: usize,
    /// Batch within the epoch.
    pub batch: usize,
    /// What failed.
    pub error: StepError,
}

impl fmt::Display for TrainError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "epoch {}, batch {}: {}",
            self.epoch, self.batch, self.error
        )
    }
}

impl std::error::Error for TrainError {}

/// Scores one output column against its target (e.g. [`argmax_accuracy`](super::argmax_accuracy)).
pub type AccuracyFn<T, Target> = fn(&[T], &Target) -> bool;

/// Trains a single-input, single-output network over a data set in mini-batches of a const
/// size `B`.
///
/// See the `nn` crate's README (section "Training") and `examples/digits.rs`.
pub struct Trainer<'a, T: Real, Target> {
    config: TrainConfig,
    schedule: Option<&'a dyn Schedule>,
    accuracy: Option<AccuracyFn<T, Target>>,
}

impl<'a, T: Real, Target> Trainer<'a, T, Target> {
    /// A trainer with this configuration.
    pub fn new(config: TrainConfig) -> Self {
        Trainer {
            config,
            schedule: None,
            accuracy: None,
        }
    }

    /// Sets the learning rate of each epoch from `schedule` (epoch number as its step).
    pub fn schedule(mut self, schedule: &'a dyn Schedule) -> Self {
        self.schedule = Some(schedule);
        self
    }

    /// Reports accuracy with `accuracy`.
    pub fn accuracy(mut self, accuracy: AccuracyFn<T, Target>) -> Self {
        self.accuracy = Some(accuracy);
        self
    }

    /// Trains `net` on `train` (validating on `valid`, or on the configured split of
    /// `train`), and returns the history.
    ///
    /// Each step allocates nothing: the tape and gradients are allocated once, on the heap.
    /// The last batch of an epoch may be partial; its padding columns get no gradient.
    pub fn fit<N, L, O, const IN: usize, const OUT: usize, const B: usize>(
        &self,
        net: &mut N,
        optimizer: &mut O,
        loss: &L,
        train: Samples<'_, T, IN, Target>,
        valid: Option<Samples<'_, T, IN, Target>>,
    ) -> Result<History, TrainError>
    where
        N: Network<T, Input<B> = SMatrix<T, IN, B>, Output<B> = SMatrix<T, OUT, B>>,
        L: Loss<T, OUT, Target>,
        O: Optimizer<T, Grads = N::Grads>,
        Target: Clone,
    {
        let config = &self.config;
        let mut rng = rand_pcg::Pcg64Mcg::seed_from_u64(config.seed);
        // Indices into `train` of the training samples, and the validation set with its
        // indices: a seeded random subset of `train` for `validation_split`.
        let mut order: Vec<usize> = (0..train.len()).collect();
        let valid = match valid {
            Some(valid) => Some((valid, (0..valid.len()).collect::<Vec<_>>())),
            None if config.validation_split > 0.0 => {
                shuffle(&mut order, &mut rng);
                let n = (train.len() as f64 * config.validation_split).round() as usize;
                let held_out = order.split_off(order.len() - n.min(order.len()));
                order.sort_unstable();
                (!held_out.is_empty()).then_some((train, held_out))
            }
            None => None,
        };

        let mut tape = N::Tape::<B>::new_boxed();
        let mut grads = N::Grads::new_boxed();
        let mut x = Box::new(<SMatrix<T, IN, B> as ConstZero>::ZERO);
        let mut batch_targets: Vec<Target> = Vec::with_capacity(B);
        let mut best: Option<(f64, usize, Vec<T>)> = None;
        let mut history = History::default();
        let mut epochs_without_improvement = 0;

        for epoch in 0..config.epochs {
            let started = Instant::now();
            if let Some(schedule) = self.schedule {
                optimizer.set_learning_rate(schedule.learning_rate(epoch));
            }
            if config.shuffle {
                shuffle(&mut order, &mut rng);
            }
            let batches = if config.drop_last {
                order.len() / B
            } else {
                order.len().div_ceil(B)
            };
            let bar = progress_bar(config.progress, batches, epoch, config.epochs);
            let (mut loss_sum, mut correct, mut seen) = (0.0, 0usize, 0usize);
            for (batch, indices) in order.chunks(B).take(batches).enumerate() {
                fill_batch(&mut x, &mut batch_targets, train, indices);
                let outcome = train_step(
                    net,
                    &mut tape,
                    &mut grads,
                    &x,
                    &batch_targets,
                    loss,
                    optimizer,
                    &config.step,
                );
                let outcome = outcome.map_err(|error| {
                    bar.abandon();
                    TrainError {
                        epoch,
                        batch,
                        error,
                    }
                })?;
                loss_sum += outcome.loss.to_f64() * indices.len() as f64;
                seen += indices.len();
                if let Some(accuracy) = self.accuracy {
                    // The outputs of this step's forward pass, before its update.
                    correct += count_correct(&outcome.output, &batch_targets, accuracy);
                }
                bar.inc(1);
                if batch % 8 == 0 {
                    bar.set_message(format!("loss {:.4}", loss_sum / seen as f64));
                }
            }
            bar.finish_and_clear();

            let (valid_loss, valid_accuracy) = match &valid {
                Some((data, indices)) => {
                    let (l, a) = self.evaluate::<N, L, IN, OUT, B>(
                        net,
                        loss,
                        *data,
                        indices,
                        &mut x,
                        &mut batch_targets,
                    );
                    (Some(l), a)
                }
                None => (None, None),
            };
            let stats = EpochStats {
                epoch,
                train_loss: loss_sum / seen.max(1) as f64,
                train_accuracy: self.accuracy.map(|_| correct as f64 / seen.max(1) as f64),
                valid_loss,
                valid_accuracy,
                learning_rate: optimizer.learning_rate(),
                seconds: started.elapsed().as_secs_f64(),
            };
            let last = epoch + 1 == config.epochs;
            if config.progress && (last || epoch % config.log_every.max(1) == 0) {
                std::println!("{}", EpochLine(&stats, config.epochs));
            }
            history.epochs.push(stats);

            let monitored = valid_loss.unwrap_or(stats.train_loss);
            let min_delta = config.early_stopping.map_or(0.0, |e| e.min_delta);
            let improved = best
                .as_ref()
                .is_none_or(|(b, _, _)| monitored < b - min_delta);
            if improved {
                let keep = config.early_stopping.is_some_and(|e| e.restore_best);
                let saved = if keep {
                    net.as_slice().to_vec()
                } else {
                    Vec::new()
                };
                best = Some((monitored, epoch, saved));
                epochs_without_improvement = 0;
            } else {
                epochs_without_improvement += 1;
            }
            if let Some(early) = config.early_stopping
                && epochs_without_improvement >= early.patience.max(1)
            {
                history.stopped_early = true;
                break;
            }
        }
        if let Some((_, epoch, saved)) = best {
            history.best_epoch = epoch;
            if config.early_stopping.is_some_and(|e| e.restore_best) && !saved.is_empty() {
                net.as_mut_slice().copy_from_slice(&saved);
            }
        }
        Ok(history)
    }

    /// Mean loss and accuracy of `net` over the samples `indices` of `data`, in batches of
    /// `B`.
    #[allow(clippy::too_many_arguments)]
    fn evaluate<N, L, const IN: usize, const OUT: usize, const B: usize>(
        &self,
        net: &N,
        loss: &L,
        data: Samples<'_, T, IN, Target>,
        indices: &[usize],
        x: &mut SMatrix<T, IN, B>,
        batch_targets: &mut Vec<Target>,
    ) -> (f64, Option<f64>)
    where
        N: Network<T, Input<B> = SMatrix<T, IN, B>, Output<B> = SMatrix<T, OUT, B>>,
        L: Loss<T, OUT, Target>,
        Target: Clone,
    {
        let (mut loss_sum, mut correct) = (0.0, 0);
        for chunk in indices.chunks(B) {
            fill_batch(x, batch_targets, data, chunk);
            let y = Network::forward::<B>(net, x);
            loss_sum += loss.loss(&y, batch_targets).to_f64() * chunk.len() as f64;
            if let Some(accuracy) = self.accuracy {
                correct += count_correct(&y, batch_targets, accuracy);
            }
        }
        let n = indices.len().max(1) as f64;
        (loss_sum / n, self.accuracy.map(|_| correct as f64 / n))
    }
}

fn count_correct<T: Real, Target, const OUT: usize, const B: usize>(
    y: &SMatrix<T, OUT, B>,
    targets: &[Target],
    accuracy: AccuracyFn<T, Target>,
) -> usize {
    targets
        .iter()
        .enumerate()
        .filter(|(j, target)| accuracy(y.column(*j).as_slice(), target))
        .count()
}

/// Copies the samples at `indices` into the columns of `x` (zeroing the rest) and their
/// targets into `targets`. Allocates nothing once `targets` has capacity `B`.
fn fill_batch<T: Real, Target: Clone, const IN: usize, const B: usize>(
    x: &mut SMatrix<T, IN, B>,
    targets: &mut Vec<Target>,
    data: Samples<'_, T, IN, Target>,
    indices: &[usize],
) {
    targets.clear();
    for (j, &i) in indices.iter().enumerate() {
        x.set_column(j, &data.inputs[i]);
        targets.push(data.targets[i].clone());
    }
    for j in indices.len()..B {
        x.column_mut(j).fill(T::ZERO);
    }
}

/// Fisher–Yates.
fn shuffle<R: Rng>(order: &mut [usize], rng: &mut R) {
    for i in (1..order.len()).rev() {
        let j = (rng.next_u64() % (i as u64 + 1)) as usize;
        order.swap(i, j);
    }
}

fn progress_bar(show: bool, batches: usize, epoch: usize, epochs: usize) -> ProgressBar {
    if !show {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(batches as u64);
    let style = ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} {msg}")
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
    bar.set_style(style);
    bar.set_prefix(format!("epoch {:>3}/{epochs}", epoch + 1));
    bar
}

struct EpochLine<'a>(&'a EpochStats, usize);

impl fmt::Display for EpochLine<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.0;
        write!(
            f,
            "epoch {:>3}/{}  loss {:.4}",
            s.epoch + 1,
            self.1,
            s.train_loss
        )?;
        if let Some(a) = s.train_accuracy {
            write!(f, "  acc {:.2}%", 100.0 * a)?;
        }
        if let Some(l) = s.valid_loss {
            write!(f, "  val_loss {l:.4}")?;
        }
        if let Some(a) = s.valid_accuracy {
            write!(f, "  val_acc {:.2}%", 100.0 * a)?;
        }
        write!(f, "  lr {:.3e}  {:.2}s", s.learning_rate, s.seconds)
    }
}
