//! Initialisation, tensors, regularization, the training step and the trainer.

mod common;

use common::randomize;
use nn::prelude::*;
use nn::train::{StepError, StepOptions, train_step};
use nn::{Regularization, Role};
use rand_core::SeedableRng;

nn::network! {
    pub struct Mixed {
        relu_layer: Dense<8>,
        tanh_layer: Dense<8>,
        #[init(zeros)]
        zero_layer: Dense<8>,
        #[init(glorot_normal)]
        head: Dense<2>,
    }
    forward(x: [4]) -> y {
        let a = relu(relu_layer(x));
        let b = tanh(tanh_layer(a));
        let y = head(b + zero_layer(a));
    }
}

nn::network! {
    pub struct Regression {
        input: [3],
        hidden: Dense<16>, Tanh,
        out: Dense<1>,
    }
}

fn rng() -> rand_pcg::Pcg64Mcg {
    rand_pcg::Pcg64Mcg::seed_from_u64(11)
}

#[test]
fn tensors_are_named_as_in_pytorch_in_slice_order() {
    let mut names = Vec::new();
    Mixed::<f32>::visit_tensors(&mut |t| {
        names.push((t.to_string(), t.info.shape.to_vec(), t.offset, t.info.role))
    });
    assert_eq!(
        names,
        [
            ("relu_layer.weight".to_string(), vec![8, 4], 0, Role::Weight),
            ("relu_layer.bias".to_string(), vec![8], 32, Role::Bias),
            (
                "tanh_layer.weight".to_string(),
                vec![8, 8],
                40,
                Role::Weight
            ),
            ("tanh_layer.bias".to_string(), vec![8], 104, Role::Bias),
            (
                "zero_layer.weight".to_string(),
                vec![8, 8],
                112,
                Role::Weight
            ),
            ("zero_layer.bias".to_string(), vec![8], 176, Role::Bias),
            ("head.weight".to_string(), vec![2, 8], 184, Role::Weight),
            ("head.bias".to_string(), vec![2], 200, Role::Bias),
        ]
    );
    assert_eq!(Mixed::<f32>::PARAM_COUNT, 202);
}

#[test]
fn init_defaults_follow_the_activation_and_attributes_override() {
    let mut net = Mixed::<f64>::ZERO;
    randomize(&mut net, 1, 1.0);
    net.init(&mut rng());
    // He uniform before ReLU: U(±√(6/4)); Glorot uniform before tanh: U(±√(6/16)).
    let he = (6.0f64 / 4.0).sqrt();
    let glorot = (6.0f64 / 16.0).sqrt();
    assert!(net.relu_layer.weight.iter().all(|w| w.abs() <= he));
    assert!(
        net.relu_layer.weight.iter().any(|w| w.abs() > glorot),
        "wider than Glorot"
    );
    assert!(net.tanh_layer.weight.iter().all(|w| w.abs() <= glorot));
    assert!(net.zero_layer.weight.iter().all(|&w| w == 0.0));
    assert!(net.head.weight.iter().any(|&w| w != 0.0));
    for bias in [
        &net.relu_layer.bias,
        &net.tanh_layer.bias,
        &net.zero_layer.bias,
    ] {
        assert!(bias.iter().all(|&b| b == 0.0));
    }
    // Reproducible from the seed.
    let mut again = Mixed::<f64>::ZERO;
    again.init(&mut rng());
    assert_eq!(net, again);
}

#[test]
fn regularization_penalises_weights_not_biases() {
    let mut net = Regression::<f64>::ZERO;
    net.hidden.weight[(0, 0)] = 2.0;
    net.hidden.weight[(1, 2)] = -3.0;
    net.hidden.bias[0] = 5.0;
    net.out.weight[(0, 4)] = 0.5;
    let mut grads = RegressionGrads::ZERO;
    // L2: λ·Σw² = 0.1·(4 + 9 + 0.25); ∂/∂w = 0.2·w.
    let penalty = Regularization::l2(0.1).apply(&net, &mut grads);
    assert!((penalty - 1.325).abs() < 1e-15);
    assert!((grads.hidden.weight[(1, 2)] - -0.6).abs() < 1e-15);
    assert_eq!(grads.hidden.bias[0], 0.0);
    // L1: λ·Σ|w| = 0.5·5.5; ∂/∂w = 0.5·sign(w), added to what is there.
    let penalty = Regularization::l1(0.5).apply(&net, &mut grads);
    assert!((penalty - 2.75).abs() < 1e-15);
    assert!((grads.hidden.weight[(0, 0)] - (0.4 + 0.5)).abs() < 1e-15);
    assert_eq!(grads.hidden.weight[(0, 1)], 0.0);
    // With biases.
    let with_biases = Regularization {
        biases: true,
        ..Regularization::l2(0.1)
    };
    assert!((with_biases.penalty(&net) - (1.325 + 2.5)).abs() < 1e-15);
}

/// Plain gradient descent, so the test depends only on the step's own arithmetic.
/// Plain gradient descent for the gradients `G` of any network (`gd(α)`).
struct Gd<G> {
    learning_rate: f64,
    grads: core::marker::PhantomData<G>,
}

fn gd<G>(learning_rate: f64) -> Gd<G> {
    Gd {
        learning_rate,
        grads: core::marker::PhantomData,
    }
}

impl<G: nn::Params<f64>> Optimizer<f64> for Gd<G> {
    type Grads = G;

    fn step(&mut self, params: &mut [f64], grads: &[f64]) {
        for (p, g) in params.iter_mut().zip(grads) {
            *p -= self.learning_rate * g;
        }
    }
    fn learning_rate(&self) -> f64 {
        self.learning_rate
    }
    fn set_learning_rate(&mut self, learning_rate: f64) {
        self.learning_rate = learning_rate;
    }
}

#[test]
fn a_step_with_a_non_finite_loss_or_gradient_leaves_the_parameters_untouched() {
    let mut net = Regression::<f64>::ZERO;
    net.init(&mut rng());
    let before = net.clone();
    let mut tape = RegressionTape::<f64, 4>::ZERO;
    let mut grads = RegressionGrads::ZERO;
    let targets = [1.0f64; 4];
    let mut x = SMatrix::<f64, 3, 4>::from_element(0.5);
    x[(1, 2)] = f64::NAN;
    let result = train_step(
        &mut net,
        &mut tape,
        &mut grads,
        &x,
        &targets,
        &nn::loss::Mse,
        &mut gd(0.1),
        &StepOptions::default(),
    );
    assert_eq!(result.unwrap_err(), StepError::NonFiniteLoss);
    assert_eq!(net, before);

    // A huge target makes the loss finite but the gradient overflow in f64? Use infinity in
    // the regularization instead: an infinite weight-decay coefficient.
    let x = SMatrix::<f64, 3, 4>::from_element(0.5);
    let options = StepOptions {
        regularization: Regularization::l2(f64::INFINITY),
        ..StepOptions::default()
    };
    let result = train_step(
        &mut net,
        &mut tape,
        &mut grads,
        &x,
        &targets,
        &nn::loss::Mse,
        &mut gd(0.1),
        &options,
    );
    assert_eq!(result.unwrap_err(), StepError::NonFiniteGradient);
    assert_eq!(net, before);

    let result = train_step(
        &mut net,
        &mut tape,
        &mut grads,
        &x,
        &targets[..0],
        &nn::loss::Mse,
        &mut gd(0.1),
        &StepOptions::default(),
    );
    assert_eq!(result.unwrap_err(), StepError::BadBatchSize);
    assert_eq!(net, before);

    // And a good step changes them, by exactly −α·∇L.
    let result = train_step(
        &mut net,
        &mut tape,
        &mut grads,
        &x,
        &targets,
        &nn::loss::Mse,
        &mut gd(0.1),
        &StepOptions::default(),
    );
    assert!(result.is_ok());
    for ((after, before), g) in net
        .as_slice()
        .iter()
        .zip(before.as_slice())
        .zip(grads.as_slice())
    {
        assert!((after - (before - 0.1 * g)).abs() < 1e-15);
    }
}

#[test]
fn a_partial_batch_equals_the_smaller_batch() {
    let mut net = Regression::<f64>::ZERO;
    net.init(&mut rng());
    let x4 = SMatrix::<f64, 3, 4>::from_fn(|i, j| (i as f64 - 1.0) * 0.3 + j as f64 * 0.2);
    let x3: SMatrix<f64, 3, 3> = x4.fixed_columns::<3>(0).into();
    let mut x4_padded = x4;
    x4_padded.column_mut(3).fill(0.0);
    let targets = [0.3, -0.2, 0.9];
    let (mut net3, mut net4) = (net.clone(), net.clone());
    let (mut tape3, mut tape4) = (
        RegressionTape::<f64, 3>::ZERO,
        RegressionTape::<f64, 4>::ZERO,
    );
    let mut grads3 = RegressionGrads::ZERO;
    let mut grads4 = RegressionGrads::ZERO;
    let out3 = train_step(
        &mut net3,
        &mut tape3,
        &mut grads3,
        &x3,
        &targets,
        &nn::loss::Mse,
        &mut gd(0.1),
        &StepOptions::default(),
    )
    .unwrap();
    let out4 = train_step(
        &mut net4,
        &mut tape4,
        &mut grads4,
        &x4_padded,
        &targets,
        &nn::loss::Mse,
        &mut gd(0.1),
        &StepOptions::default(),
    )
    .unwrap();
    assert!((out3.loss - out4.loss).abs() < 1e-15);
    assert!(common::max_diff(grads3.as_slice(), grads4.as_slice()) < 1e-15);
    assert!(common::max_diff(net3.as_slice(), net4.as_slice()) < 1e-15);
}

mod trainer {
    use super::*;
    use nn::loss::SoftmaxCrossEntropy;
    use nn::optim::{Adam, StepDecay};
    use nn::train::{EarlyStopping, Samples, TrainConfig, TrainError, Trainer, argmax_accuracy};

    nn::network! {
        pub struct Quadrants {
            input: [2],
            hidden: Dense<16>, Tanh,
            logits: Dense<2>,
        }
    }

    /// Class 1 when x0·x1 > 0: 100 points on a grid.
    fn data() -> (Vec<SMatrix<f32, 2, 1>>, Vec<usize>) {
        let inputs: Vec<SMatrix<f32, 2, 1>> = (0..100)
            .map(|i| SMatrix::from([[(i % 10) as f32 - 4.5, (i / 10) as f32 - 4.5]]))
            .collect();
        let targets = inputs
            .iter()
            .map(|x| usize::from(x[0] * x[1] > 0.0))
            .collect();
        (inputs, targets)
    }

    fn quiet(epochs: usize) -> TrainConfig {
        TrainConfig {
            epochs,
            seed: 5,
            progress: false,
            ..TrainConfig::default()
        }
    }

    type QuadrantsAdam = Adam<f32, QuadrantsGrads<f32>>;

    fn fresh() -> (Box<Quadrants<f32>>, Box<QuadrantsAdam>) {
        let mut net = Quadrants::<f32>::new_boxed();
        net.init(&mut rand_pcg::Pcg64Mcg::seed_from_u64(9));
        (net, Box::new(Adam::new(0.05)))
    }

    #[test]
    fn learns_and_reports_every_epoch() {
        let (inputs, targets) = data();
        let (mut net, mut adam) = fresh();
        let schedule = StepDecay {
            lr: 0.05,
            step_size: 20,
            gamma: 0.5,
        };
        let config = TrainConfig {
            validation_split: 0.2,
            ..quiet(60)
        };
        let history = Trainer::new(config)
            .schedule(&schedule)
            .accuracy(argmax_accuracy)
            .fit::<_, _, _, 16>(
                &mut *net,
                &mut *adam,
                &SoftmaxCrossEntropy,
                Samples::new(&inputs, &targets),
                None,
            )
            .unwrap();
        assert_eq!(history.epochs.len(), 60);
        assert!(!history.stopped_early);
        let last = history.epochs.last().unwrap();
        assert!(last.train_accuracy.unwrap() > 0.95, "{last:?}");
        assert!(last.valid_accuracy.unwrap() > 0.85, "{last:?}");
        assert!(last.train_loss < history.epochs[0].train_loss / 4.0);
        assert_eq!(history.epochs[19].learning_rate, 0.05);
        assert_eq!(history.epochs[20].learning_rate, 0.025);
        assert_eq!(history.epochs[59].learning_rate, 0.0125);
    }

    #[test]
    fn is_reproducible_from_its_seed() {
        let (inputs, targets) = data();
        let run = || {
            let (mut net, mut adam) = fresh();
            Trainer::new(quiet(5))
                .fit::<_, _, _, 16>(
                    &mut *net,
                    &mut *adam,
                    &SoftmaxCrossEntropy,
                    Samples::new(&inputs, &targets),
                    None,
                )
                .unwrap();
            net
        };
        assert_eq!(run(), run());
    }

    #[test]
    fn early_stopping_restores_the_best_epoch() {
        let (inputs, targets) = data();
        let samples = Samples::new(&inputs, &targets);
        // No decrease ever counts as an improvement: stop after `patience` epochs and go
        // back to the parameters after the first.
        let config = TrainConfig {
            early_stopping: Some(EarlyStopping {
                patience: 2,
                min_delta: 1e9,
                restore_best: true,
            }),
            ..quiet(50)
        };
        let (mut net, mut adam) = fresh();
        let history = Trainer::new(config)
            .fit::<_, _, _, 16>(&mut *net, &mut *adam, &SoftmaxCrossEntropy, samples, None)
            .unwrap();
        assert!(history.stopped_early);
        assert_eq!(history.epochs.len(), 3);
        assert_eq!(history.best_epoch, 0);

        let (mut one_epoch, mut adam) = fresh();
        Trainer::new(quiet(1))
            .fit::<_, _, _, 16>(
                &mut *one_epoch,
                &mut *adam,
                &SoftmaxCrossEntropy,
                samples,
                None,
            )
            .unwrap();
        assert_eq!(net, one_epoch);
    }

    #[test]
    fn bad_data_stops_training_with_an_error_and_intact_parameters() {
        let (mut inputs, targets) = data();
        inputs[40][1] = f32::NAN; // in the third batch of 16, unshuffled
        let (mut net, mut adam) = fresh();
        let config = TrainConfig {
            shuffle: false,
            ..quiet(1)
        };
        // Parameters after the two good batches of the first epoch.
        let (mut expected, mut expected_adam) = fresh();
        Trainer::new(config)
            .fit::<_, _, _, 16>(
                &mut *expected,
                &mut *expected_adam,
                &SoftmaxCrossEntropy,
                Samples::new(&inputs[..32], &targets[..32]),
                None,
            )
            .unwrap();
        let error = Trainer::new(TrainConfig {
            epochs: 1,
            ..config
        })
        .fit::<_, _, _, 16>(
            &mut *net,
            &mut *adam,
            &SoftmaxCrossEntropy,
            Samples::new(&inputs, &targets),
            None,
        )
        .unwrap_err();
        assert_eq!(
            error,
            TrainError::Step {
                epoch: 0,
                batch: 2,
                error: StepError::NonFiniteLoss
            }
        );
        assert_eq!(
            error.to_string(),
            "epoch 0, batch 2: the loss is not finite; the parameters were not updated"
        );
        assert!(net.as_slice().iter().all(|p| p.is_finite()));
        assert_eq!(net, expected);
    }
}

/// The trainer's refusals, batch statistics, and networks with several inputs and outputs.
mod trainer_edges {
    use super::*;
    use nn::loss::{Mse, SoftmaxCrossEntropy};
    use nn::optim::{Adam, Sgd};
    use nn::train::{DataSet, Samples, TrainConfig, TrainError, Trainer, Weighted};

    nn::network! {
        pub struct Small {
            input: [2],
            hidden: Dense<4>, Tanh,
            logits: Dense<2>,
        }
    }

    nn::network! {
        /// Batch norm in the middle: its training mixes the samples of a batch.
        pub struct Normed {
            input: [2],
            hidden: Dense<4>,
            bn: BatchNorm1d, Relu,
            logits: Dense<2>,
        }
    }

    nn::network! {
        /// The README's two inputs, two outputs.
        pub struct TwoHeads {
            enc_a: Dense<4, 8>,
            enc_b: Dense<8>,
            shared: Dense<16, 16>,
            value: Dense<1>,
            classes: Dense<3>,
        }
        forward(a: [4], b: [3]) -> (v: [1], p: [3]) {
            let h = tanh(concat(enc_a(a), enc_b(b)));
            let g = shared(shared(h)) * h;
            let v = value(g);
            let p = softmax(classes(g + h));
        }
    }

    fn quiet(epochs: usize) -> TrainConfig {
        TrainConfig {
            epochs,
            progress: false,
            ..TrainConfig::default()
        }
    }

    fn points(n: usize) -> (Vec<SMatrix<f32, 2, 1>>, Vec<usize>) {
        let inputs: Vec<SMatrix<f32, 2, 1>> = (0..n)
            .map(|i| SMatrix::from([[(i % 7) as f32 - 3.0, (i % 5) as f32 - 2.0]]))
            .collect();
        let targets = inputs.iter().map(|x| usize::from(x[0] > x[1])).collect();
        (inputs, targets)
    }

    /// Trains a fresh `Small` with `config` on `data` (validating on `valid`), returning the
    /// result and whether the network changed.
    fn fit_small(
        config: TrainConfig,
        train: Samples<'_, SMatrix<f32, 2, 1>, usize>,
        valid: Option<Samples<'_, SMatrix<f32, 2, 1>, usize>>,
    ) -> (Result<nn::train::History, TrainError>, bool) {
        let mut net = Small::<f32>::new_boxed();
        net.init(&mut rng());
        let before = nn::clone_boxed(&*net);
        let mut sgd = Sgd::<f32, SmallGrads<f32>>::new(0.1);
        let result = Trainer::new(config).fit::<_, _, _, 8>(
            &mut *net,
            &mut sgd,
            &SoftmaxCrossEntropy,
            train,
            valid,
        );
        let changed = *net != *before;
        (result, changed)
    }

    #[test]
    fn bad_configurations_are_refused_before_any_step() {
        let (inputs, targets) = points(20);
        let data = Samples::new(&inputs, &targets);
        let refused = |config: TrainConfig, train, valid| {
            let (result, changed) = fit_small(config, train, valid);
            assert!(!changed, "the network was touched");
            result.unwrap_err()
        };
        assert_eq!(
            refused(quiet(1), Samples::new(&inputs[..0], &targets[..0]), None),
            TrainError::Empty(DataSet::Training)
        );
        let error = refused(quiet(1), Samples::new(&inputs, &targets[..19]), None);
        assert_eq!(
            error,
            TrainError::LengthMismatch {
                set: DataSet::Training,
                inputs: 20,
                targets: 19
            }
        );
        assert_eq!(
            error.to_string(),
            "the training data has 20 inputs but 19 targets"
        );
        assert_eq!(
            refused(
                quiet(1),
                data,
                Some(Samples::new(&inputs[..3], &targets[..4]))
            ),
            TrainError::LengthMismatch {
                set: DataSet::Validation,
                inputs: 3,
                targets: 4
            }
        );
        assert_eq!(
            refused(
                quiet(1),
                data,
                Some(Samples::new(&inputs[..0], &targets[..0]))
            ),
            TrainError::Empty(DataSet::Validation)
        );
        for split in [1.0, 1.5, -0.5, f64::NAN] {
            let config = TrainConfig {
                validation_split: split,
                ..quiet(1)
            };
            match refused(config, data, None) {
                TrainError::ValidationSplit(s) => assert!(s.to_bits() == split.to_bits()),
                other => panic!("{split}: {other:?}"),
            }
        }
        // A split that leaves fewer samples than a batch, with drop_last: nothing to train.
        let config = TrainConfig {
            validation_split: 0.7,
            drop_last: true,
            ..quiet(1)
        };
        let error = refused(config, data, None);
        assert_eq!(
            error,
            TrainError::NoTrainingBatch {
                samples: 6,
                batch_size: 8,
                full_batches_only: true
            }
        );
        assert_eq!(
            error.to_string(),
            "no batch to train on: 6 training samples for batches of 8 (only full batches \
             train: drop_last, or batch statistics)"
        );
        // Non-finite validation data, given or split off.
        let mut bad = inputs.clone();
        bad[3][1] = f32::INFINITY;
        assert_eq!(
            refused(quiet(1), data, Some(Samples::new(&bad[..5], &targets[..5]))),
            TrainError::NonFiniteValidationInput { sample: 3 }
        );
        let config = TrainConfig {
            validation_split: 0.5,
            ..quiet(1)
        };
        let bad = vec![SMatrix::from([[f32::NAN, 0.0]]); 20];
        assert!(matches!(
            refused(config, Samples::new(&bad, &targets), None),
            TrainError::NonFiniteValidationInput { .. }
        ));
        // And a good configuration trains.
        let (result, changed) = fit_small(quiet(2), data, Some(data));
        assert!(result.is_ok() && changed);
    }

    #[test]
    fn a_non_finite_validation_loss_stops_training_with_an_error() {
        let (inputs, targets) = points(20);
        let mut bad_targets = targets.clone();
        bad_targets[2] = 7; // a class the network does not have: the loss is NaN
        let train = Samples::new(&inputs, &targets);
        let valid = Samples::new(&inputs, &bad_targets);
        let (result, _) = fit_small(quiet(3), train, Some(valid));
        assert_eq!(
            result.unwrap_err(),
            TrainError::NonFiniteValidationLoss { epoch: 0 }
        );
    }

    #[test]
    fn padding_never_enters_batch_statistics() {
        let (inputs, targets) = points(20);
        let mut net = Normed::<f32>::new_boxed();
        net.init(&mut rng());
        const { assert!(Normed::<f32>::BATCH_STATISTICS && !Small::<f32>::BATCH_STATISTICS) };
        // train_step refuses a partial batch, before anything runs.
        let mut tape = NormedTape::<f32, 8>::new_boxed();
        let mut grads = NormedGrads::<f32>::new_boxed();
        let mut adam = Adam::<f32, NormedGrads<f32>>::new(0.01);
        let before = nn::clone_boxed(&*net);
        let x = SMatrix::<f32, 2, 8>::from_fn(|i, j| inputs[j][i]);
        let result = train_step(
            &mut *net,
            &mut *tape,
            &mut *grads,
            &x,
            &targets[..5],
            &SoftmaxCrossEntropy,
            &mut adam,
            &StepOptions::default(),
        );
        assert_eq!(result.unwrap_err(), StepError::PartialBatch);
        assert!(*net == *before);
        // The trainer runs only the two full batches of 20 samples each epoch (the last 4,
        // a different 4 each epoch, wait for the next): the running statistics count them.
        let history = Trainer::new(quiet(3))
            .fit::<_, _, _, 8>(
                &mut *net,
                &mut adam,
                &SoftmaxCrossEntropy,
                Samples::new(&inputs, &targets),
                None,
            )
            .unwrap();
        assert_eq!(history.epochs.len(), 3);
        assert_eq!(net.state.bn.num_batches_tracked, 6);
        // Fewer samples than a batch: nothing to train, refused.
        let error = Trainer::new(quiet(1))
            .fit::<_, _, _, 8>(
                &mut *net,
                &mut adam,
                &SoftmaxCrossEntropy,
                Samples::new(&inputs[..7], &targets[..7]),
                None,
            )
            .unwrap_err();
        assert_eq!(
            error,
            TrainError::NoTrainingBatch {
                samples: 7,
                batch_size: 8,
                full_batches_only: true
            }
        );
    }

    #[test]
    #[should_panic(expected = "padding would enter the batch statistics")]
    fn parallel_gradients_refuse_a_partial_chunk_with_batch_statistics() {
        let mut net = Normed::<f32>::new_boxed();
        net.init(&mut rng());
        let mut workspace = nn::train::ParallelWorkspace::<f32, Normed<f32>, 2, 2, 4>::new(8);
        let mut grads = NormedGrads::<f32>::new_boxed();
        let x = SMatrix::<f32, 2, 8>::from_fn(|i, j| (i + j) as f32);
        let targets = [0usize, 1, 0, 1, 0];
        nn::train::parallel_gradients(
            &mut *net,
            &mut workspace,
            &x,
            &targets,
            &SoftmaxCrossEntropy,
            &mut grads,
        );
    }

    type Inputs = (SMatrix<f64, 4, 1>, SMatrix<f64, 3, 1>);
    type Targets = (f64, SMatrix<f64, 3, 1>);

    fn two_heads_data(n: usize) -> (Vec<Inputs>, Vec<Targets>) {
        let inputs: Vec<Inputs> = (0..n)
            .map(|i| {
                let t = i as f64 * 0.37;
                (
                    SMatrix::from_fn(|r, _| (t + r as f64).sin()),
                    SMatrix::from_fn(|r, _| (2.0 * t - r as f64).cos()),
                )
            })
            .collect();
        let targets = inputs
            .iter()
            .map(|(a, b)| {
                let class = usize::from(a[0] > 0.0) + usize::from(b[0] > 0.5);
                (
                    0.5 * a.sum() - b[2],
                    SMatrix::from_fn(|r, _| f64::from(r == class)),
                )
            })
            .collect();
        (inputs, targets)
    }

    #[test]
    fn a_network_with_two_inputs_and_two_outputs_trains_with_a_loss_per_output() {
        let (inputs, targets) = two_heads_data(64);
        let loss = (Weighted::new(Mse, 1.0), Weighted::new(Mse, 0.5));
        let mut net = TwoHeads::<f64>::new_boxed();
        net.init(&mut rng());

        // One step: the gradient is backward of (1·∂MSE_v, 0.5·∂MSE_p), batched.
        const B: usize = 4;
        let x = (
            SMatrix::<f64, 4, B>::from_fn(|i, j| inputs[j].0[i]),
            SMatrix::<f64, 3, B>::from_fn(|i, j| inputs[j].1[i]),
        );
        let mut tape = TwoHeadsTape::<f64, B>::new_boxed();
        let mut grads = TwoHeadsGrads::<f64>::new_boxed();
        let mut stepped = nn::clone_boxed(&*net);
        let outcome = train_step(
            &mut *stepped,
            &mut *tape,
            &mut *grads,
            &x,
            &targets[..3],
            &loss,
            &mut gd(0.1),
            &StepOptions::default(),
        )
        .unwrap();
        let (v, p) = net.forward(&x.0, &x.1);
        let (tv, tp): (Vec<f64>, Vec<SMatrix<f64, 3, 1>>) = targets[..3].iter().cloned().unzip();
        let (mut dv, mut dp) = (SMatrix::<f64, 1, B>::zeros(), SMatrix::<f64, 3, B>::zeros());
        let expected_loss =
            Mse.loss_and_grad(&v, &tv, &mut dv) + 0.5 * Mse.loss_and_grad(&p, &tp, &mut dp);
        assert!((outcome.loss - expected_loss).abs() < 1e-14);
        let mut expected = TwoHeadsGrads::<f64>::new_boxed();
        net.forward_train(&x.0, &x.1, &mut tape);
        net.backward(&mut tape, &dv, &(dp * 0.5), &mut expected);
        assert!(common::max_diff(grads.as_slice(), expected.as_slice()) < 1e-14);

        // The trainer: tuples of inputs and of targets, the same loss.
        let config = TrainConfig {
            validation_split: 0.25,
            ..quiet(60)
        };
        let mut adam = Adam::<f64, TwoHeadsGrads<f64>>::new(0.01);
        let history = Trainer::new(config)
            .fit::<_, _, _, 8>(
                &mut *net,
                &mut adam,
                &loss,
                Samples::new(&inputs, &targets),
                None,
            )
            .unwrap();
        let (first, last) = (history.epochs[0], *history.epochs.last().unwrap());
        assert!(
            last.train_loss < first.train_loss / 3.0,
            "{first:?} {last:?}"
        );
        assert!(last.valid_loss.unwrap() < first.valid_loss.unwrap());
    }
}
