//! The trainer: epochs of shuffled mini-batches, validation, early stopping, a progress bar
//! and a returned history. Needs `std`.

use super::OutputLoss;
use super::step::{StepError, StepOptions, train_step};
use crate::memory::Outputs;
use crate::optim::Schedule;
use crate::{Batch, Network, Optimizer, Real, Values, Zeroable};
use indicatif::{ProgressBar, ProgressStyle};
use rand_core::{Rng, SeedableRng};
use std::fmt;
use std::format;
use std::time::Instant;
use std::vec::Vec;

/// A data set: inputs and their targets, index for index.
///
/// An input is one sample of the network's input: an `SMatrix<T, N, 1>`, or a tuple of them
/// for a network with several inputs (`(SMatrix<f32, 4, 1>, SMatrix<f32, 3, 1>)`). A target
/// is what the loss takes: a class index, a vector, or a tuple of them for a network with
/// several outputs (one per output, with a [`Weighted`](super::Weighted) loss each).
#[derive(Debug)]
pub struct Samples<'a, X, Target> {
    /// The inputs.
    pub inputs: &'a [X],
    /// The target of each input.
    pub targets: &'a [Target],
}

impl<X, Target> Clone for Samples<'_, X, Target> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<X, Target> Copy for Samples<'_, X, Target> {}

impl<'a, X, Target> Samples<'a, X, Target> {
    /// Pairs inputs with targets. Both must have the same length: [`Trainer::fit`] refuses a
    /// data set whose lengths differ ([`TrainError::LengthMismatch`]), never truncates it.
    pub fn new(inputs: &'a [X], targets: &'a [Target]) -> Self {
        Samples { inputs, targets }
    }

    /// Number of samples (of inputs).
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
    /// Skip the last batch of an epoch when it is partial. A network whose training uses
    /// batch statistics (batch normalization, [`Network::BATCH_STATISTICS`]) always does: its
    /// padding columns would enter them.
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

/// Which data set an error is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DataSet {
    /// The training samples.
    Training,
    /// The validation samples.
    Validation,
}

impl fmt::Display for DataSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DataSet::Training => "training",
            DataSet::Validation => "validation",
        })
    }
}

/// Why [`Trainer::fit`] refused to train or stopped.
///
/// Every variant but [`Step`](TrainError::Step) and
/// [`NonFiniteValidationLoss`](TrainError::NonFiniteValidationLoss) is found before the first
/// step, and the network is then untouched.
#[derive(Clone, Copy, Debug, PartialEq)]
#[non_exhaustive]
pub enum TrainError {
    /// A step failed; the parameters are those before that step.
    Step {
        /// Epoch of the failed step.
        epoch: usize,
        /// Batch within the epoch.
        batch: usize,
        /// What failed.
        error: StepError,
    },
    /// A data set has no sample.
    Empty(DataSet),
    /// A data set has a different number of inputs and targets.
    LengthMismatch {
        /// Which.
        set: DataSet,
        /// Its inputs.
        inputs: usize,
        /// Its targets.
        targets: usize,
    },
    /// `validation_split` is not in `[0, 1)` (or is NaN).
    ValidationSplit(f64),
    /// Not one batch to train on: the samples left after the validation split are fewer
    /// than the batch size where only full batches train (`drop_last`, or a network with
    /// batch statistics), or there are none.
    NoTrainingBatch {
        /// Training samples after the split.
        samples: usize,
        /// The batch size `B`.
        batch_size: usize,
        /// Whether only full batches train.
        full_batches_only: bool,
    },
    /// A validation input holds a NaN or an infinity.
    NonFiniteValidationInput {
        /// Its index in the validation data (in the training data for a split).
        sample: usize,
    },
    /// The validation loss after an epoch is not finite (a target the loss cannot score, or
    /// a network driven to overflow); the parameters are those after that epoch.
    NonFiniteValidationLoss {
        /// The epoch.
        epoch: usize,
    },
}

impl fmt::Display for TrainError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TrainError::Step {
                epoch,
                batch,
                error,
            } => write!(f, "epoch {epoch}, batch {batch}: {error}"),
            TrainError::Empty(set) => write!(f, "the {set} data has no sample"),
            TrainError::LengthMismatch {
                set,
                inputs,
                targets,
            } => write!(
                f,
                "the {set} data has {inputs} inputs but {targets} targets"
            ),
            TrainError::ValidationSplit(split) => {
                write!(f, "validation_split is {split}, not in [0, 1)")
            }
            TrainError::NoTrainingBatch {
                samples,
                batch_size,
                full_batches_only,
            } => {
                write!(
                    f,
                    "no batch to train on: {samples} training samples for batches of {batch_size}"
                )?;
                if *full_batches_only {
                    f.write_str(" (only full batches train: drop_last, or batch statistics)")?;
                }
                Ok(())
            }
            TrainError::NonFiniteValidationInput { sample } => {
                write!(f, "validation input {sample} is not finite")
            }
            TrainError::NonFiniteValidationLoss { epoch } => {
                write!(f, "epoch {epoch}: the validation loss is not finite")
            }
        }
    }
}

impl std::error::Error for TrainError {}

/// Scores one sample's output against its target (e.g.
/// [`argmax_accuracy`](super::argmax_accuracy)): the sample's column of the output, or of
/// every output in order for a network with several.
pub type AccuracyFn<T, Target> = fn(&[T], &Target) -> bool;

/// Trains a network over a data set in mini-batches of a const size `B`: any network, with
/// one or several inputs and outputs.
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
    /// `train`), and returns the history. Name only the batch size:
    /// `fit::<_, _, _, 32>(&mut net, &mut optimizer, &loss, train, None)`; the sample types
    /// come from the network's.
    ///
    /// Refuses, before any step and with the network untouched: an empty data set, inputs and
    /// targets of different lengths, a `validation_split` outside `[0, 1)`, no training batch
    /// left (after the split, with `drop_last` or batch statistics), a non-finite validation
    /// input. A non-finite validation loss after an epoch stops training with an error.
    ///
    /// Everything batch- or weight-sized (tape, gradients, the input batch, the best
    /// parameters kept by early stopping) is allocated once, on the heap; each step allocates
    /// nothing. The last batch of an epoch may be partial (unless `drop_last`, or the network
    /// has batch statistics: then it is skipped); its padding columns get no gradient.
    #[allow(clippy::type_complexity)]
    pub fn fit<N, L, O, const B: usize>(
        &self,
        net: &mut N,
        optimizer: &mut O,
        loss: &L,
        train: Samples<'_, <N::Input<B> as Batch<T>>::Sample, Target>,
        valid: Option<Samples<'_, <N::Input<B> as Batch<T>>::Sample, Target>>,
    ) -> Result<History, TrainError>
    where
        N: Network<T>,
        L: OutputLoss<T, N::Output<B>, Target>,
        O: Optimizer<T, Grads = N::Grads>,
        Target: Clone,
    {
        let config = &self.config;
        let mut rng = rand_pcg::Pcg64Mcg::seed_from_u64(config.seed);
        let (order, valid) = split::<T, N::Input<B>, Target>(train, valid, config, &mut rng)?;
        let mut order = order;
        let full_batches_only = config.drop_last || N::BATCH_STATISTICS;
        let batches = if full_batches_only {
            order.len() / B
        } else {
            order.len().div_ceil(B)
        };
        if batches == 0 {
            return Err(TrainError::NoTrainingBatch {
                samples: order.len(),
                batch_size: B,
                full_batches_only,
            });
        }

        let mut tape = <N::Tape<B> as Zeroable>::new_boxed();
        let mut workspace = <N::Workspace<B> as Zeroable>::new_boxed();
        let mut grads = <N::Grads as Zeroable>::new_boxed();
        let mut x = <N::Input<B> as Zeroable>::new_boxed();
        let mut batch_targets: Vec<Target> = Vec::with_capacity(B);
        let mut output_column =
            std::vec![T::ZERO; <<N::Output<B> as Batch<T>>::Sample as Values<T>>::LEN];
        let mut best: Option<(f64, usize)> = None;
        let keep_best = config.early_stopping.is_some_and(|e| e.restore_best);
        let mut best_params: Vec<T> = if keep_best {
            net.as_slice().to_vec()
        } else {
            Vec::new()
        };
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
            let bar = progress_bar(config.progress, batches, epoch, config.epochs);
            let (mut loss_sum, mut correct, mut seen) = (0.0, 0usize, 0usize);
            for (batch, indices) in order.chunks(B).take(batches).enumerate() {
                fill_batch(&mut *x, &mut batch_targets, train, indices);
                let outcome = train_step(
                    net,
                    &mut *tape,
                    &mut *grads,
                    &*x,
                    &batch_targets,
                    loss,
                    optimizer,
                    &config.step,
                );
                let outcome = outcome.map_err(|error| {
                    bar.abandon();
                    TrainError::Step {
                        epoch,
                        batch,
                        error,
                    }
                })?;
                loss_sum += outcome.loss.to_f64() * indices.len() as f64;
                seen += indices.len();
                if let Some(accuracy) = self.accuracy {
                    // The outputs of this step's forward pass, before its update.
                    correct +=
                        count_correct(tape.output(), &batch_targets, accuracy, &mut output_column);
                }
                bar.inc(1);
                if batch % 8 == 0 {
                    bar.set_message(format!("loss {:.4}", loss_sum / seen as f64));
                }
            }
            bar.finish_and_clear();

            let (valid_loss, valid_accuracy) = match &valid {
                Some((data, indices)) => {
                    let (l, a) = self.evaluate::<N, L, B>(
                        net,
                        loss,
                        *data,
                        indices,
                        &mut x,
                        &mut workspace,
                        &mut batch_targets,
                        &mut output_column,
                    );
                    if !l.is_finite() {
                        return Err(TrainError::NonFiniteValidationLoss { epoch });
                    }
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
            let improved = best.is_none_or(|(b, _)| monitored < b - min_delta);
            if improved {
                if keep_best {
                    // Into the buffer allocated once, not a new copy per improvement.
                    best_params.copy_from_slice(net.as_slice());
                }
                best = Some((monitored, epoch));
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
        if let Some((_, epoch)) = best {
            history.best_epoch = epoch;
            if keep_best {
                net.as_mut_slice().copy_from_slice(&best_params);
            }
        }
        Ok(history)
    }

    /// Mean loss and accuracy of `net` over the samples `indices` of `data`, in batches of
    /// `B`.
    #[allow(clippy::too_many_arguments)]
    fn evaluate<N, L, const B: usize>(
        &self,
        net: &N,
        loss: &L,
        data: Samples<'_, <N::Input<B> as Batch<T>>::Sample, Target>,
        indices: &[usize],
        x: &mut N::Input<B>,
        workspace: &mut N::Workspace<B>,
        batch_targets: &mut Vec<Target>,
        output_column: &mut [T],
    ) -> (f64, Option<f64>)
    where
        N: Network<T>,
        L: OutputLoss<T, N::Output<B>, Target>,
        Target: Clone,
    {
        let (mut loss_sum, mut correct) = (0.0, 0);
        for chunk in indices.chunks(B) {
            fill_batch(x, batch_targets, data, chunk);
            net.forward_in(x, workspace);
            let y = workspace.output();
            loss_sum += loss.total(y, batch_targets).to_f64() * chunk.len() as f64;
            if let Some(accuracy) = self.accuracy {
                correct += count_correct(y, batch_targets, accuracy, output_column);
            }
        }
        let n = indices.len().max(1) as f64;
        (loss_sum / n, self.accuracy.map(|_| correct as f64 / n))
    }
}

/// The training samples' indices into `train` and the validation set with its indices,
/// after every check that can be made before training.
#[allow(clippy::type_complexity)]
fn split<'a, T: Real, X: Batch<T>, Target>(
    train: Samples<'a, X::Sample, Target>,
    valid: Option<Samples<'a, X::Sample, Target>>,
    config: &TrainConfig,
    rng: &mut impl Rng,
) -> Result<
    (
        Vec<usize>,
        Option<(Samples<'a, X::Sample, Target>, Vec<usize>)>,
    ),
    TrainError,
> {
    let check = |data: Samples<'_, X::Sample, Target>, set| {
        if data.inputs.len() != data.targets.len() {
            return Err(TrainError::LengthMismatch {
                set,
                inputs: data.inputs.len(),
                targets: data.targets.len(),
            });
        }
        if data.is_empty() {
            return Err(TrainError::Empty(set));
        }
        Ok(())
    };
    check(train, DataSet::Training)?;
    let split = config.validation_split;
    if !(0.0..1.0).contains(&split) {
        return Err(TrainError::ValidationSplit(split));
    }
    let mut order: Vec<usize> = (0..train.len()).collect();
    let valid = match valid {
        Some(valid) => {
            check(valid, DataSet::Validation)?;
            Some((valid, (0..valid.len()).collect::<Vec<_>>()))
        }
        None if split > 0.0 => {
            shuffle(&mut order, rng);
            let n = (train.len() as f64 * split).round() as usize;
            let held_out = order.split_off(order.len() - n.min(order.len()));
            order.sort_unstable();
            (!held_out.is_empty()).then_some((train, held_out))
        }
        None => None,
    };
    if let Some((data, indices)) = &valid
        && let Some(&sample) = indices.iter().find(|&&i| !is_finite(&data.inputs[i]))
    {
        return Err(TrainError::NonFiniteValidationInput { sample });
    }
    Ok((order, valid))
}

/// Whether every value of a sample is finite.
fn is_finite<T: Real, V: Values<T>>(sample: &V) -> bool {
    (0..V::LEN).all(|i| sample.get(i).is_finite())
}

/// Samples of the batch `y` whose output (every output's column, in order) `accuracy` scores
/// right against their target.
fn count_correct<T: Real, Y: Batch<T>, Target>(
    y: &Y,
    targets: &[Target],
    accuracy: AccuracyFn<T, Target>,
    column: &mut [T],
) -> usize {
    targets
        .iter()
        .enumerate()
        .filter(|(j, target)| {
            y.copy_column(*j, column);
            accuracy(column, target)
        })
        .count()
}

/// Copies the samples at `indices` into the columns of `x` (zeroing the rest) and their
/// targets into `targets`. Allocates nothing once `targets` has capacity `B`.
fn fill_batch<T: Real, X: Batch<T>, Target: Clone>(
    x: &mut X,
    targets: &mut Vec<Target>,
    data: Samples<'_, X::Sample, Target>,
    indices: &[usize],
) {
    targets.clear();
    for (j, &i) in indices.iter().enumerate() {
        x.set_column(j, &data.inputs[i]);
        targets.push(data.targets[i].clone());
    }
    for j in indices.len()..X::COLUMNS {
        x.clear_column(j);
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
