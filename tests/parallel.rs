//! Several threads for one step. `parallel_gradients`: bit-reproducible whatever the number
//! of threads, and equal (to rounding) to the single-threaded gradient of the whole batch.
//! `train_step` on a rayon pool (products and parameter passes split, `nn::parallel`): the
//! same bits as on one thread.

use nn::loss::SoftmaxCrossEntropy;
use nn::prelude::*;
use nn::train::{ParallelWorkspace, parallel_gradients};
use rand_core::SeedableRng;

nn::network! {
    /// A small classifier.
    pub struct Net {
        input: [12],
        l1: Dense<16>, Tanh,
        l2: Dense<8>, Relu,
        l3: Dense<5>,
    }
}

const B: usize = 20;
const CHUNK: usize = 6;

fn setup<T: Real>() -> (Box<Net<T>>, Box<SMatrix<T, 12, B>>, Vec<usize>) {
    let mut rng = rand_pcg::Pcg64Mcg::seed_from_u64(7);
    let mut net = Net::<T>::new_boxed();
    net.init(&mut rng);
    let x = SMatrix::<T, 12, B>::from_fn(|i, j| T::of(((i * 7 + j * 13) % 17) as f64 / 8.0 - 1.0));
    let targets = (0..B).map(|j| (j * 3) % 5).collect();
    (net, Box::new(x), targets)
}

/// The gradient of one forward/backward over the first `n` samples.
fn single<T: Real>(
    net: &Net<T>,
    x: &SMatrix<T, 12, B>,
    targets: &[usize],
) -> (T, Box<NetGrads<T>>) {
    let mut net = Box::new(net.clone());
    let mut tape = NetTape::<T, B>::new_boxed();
    let mut grads = NetGrads::<T>::new_boxed();
    let y = net.forward_train(x, &mut tape);
    let mut dy = SMatrix::<T, 5, B>::zeros();
    let loss = SoftmaxCrossEntropy.loss_and_grad(y, targets, &mut dy);
    net.backward(&mut tape, &dy, &mut grads);
    (loss, grads)
}

fn parallel<T: Real>(
    threads: usize,
    net: &Net<T>,
    x: &SMatrix<T, 12, B>,
    targets: &[usize],
) -> (T, Box<NetGrads<T>>) {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap();
    let mut net = Box::new(net.clone());
    let mut workspace = ParallelWorkspace::<T, Net<T>, 12, 5, CHUNK>::new(B);
    let mut grads = NetGrads::<T>::new_boxed();
    let loss = pool.install(|| {
        parallel_gradients(
            &mut *net,
            &mut workspace,
            x,
            targets,
            &SoftmaxCrossEntropy,
            &mut grads,
        )
    });
    (loss, grads)
}

#[test]
fn equals_the_single_threaded_gradient_to_rounding() {
    let (net, x, targets) = setup::<f64>();
    for n in [B, 17, 6, 1] {
        let (loss, grads) = single(&net, &x, &targets[..n]);
        let (p_loss, p_grads) = parallel(2, &net, &x, &targets[..n]);
        assert!((loss - p_loss).abs() < 1e-12, "{n}: {loss} vs {p_loss}");
        let worst = grads
            .as_slice()
            .iter()
            .zip(p_grads.as_slice())
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max);
        assert!(worst < 1e-12, "{n} samples: {worst:e}");
        assert!(grads.as_slice().iter().any(|&g| g != 0.0));
    }
}

#[test]
fn is_bit_reproducible_whatever_the_thread_count() {
    let (net, x, targets) = setup::<f32>();
    let (loss, grads) = parallel(1, &net, &x, &targets);
    for threads in [2, 3, 4] {
        for _ in 0..3 {
            let (l, g) = parallel(threads, &net, &x, &targets);
            assert_eq!(l.to_bits(), loss.to_bits(), "{threads} threads");
            assert!(
                g.as_slice()
                    .iter()
                    .zip(grads.as_slice())
                    .all(|(a, b)| a.to_bits() == b.to_bits()),
                "{threads} threads"
            );
        }
    }
    // f32 against the single-threaded gradient: rounding only.
    let (s_loss, s_grads) = single(&net, &x, &targets);
    assert!((s_loss - loss).abs() <= 1e-6 * s_loss.abs());
    for (a, b) in s_grads.as_slice().iter().zip(grads.as_slice()) {
        assert!((a - b).abs() <= 1e-6 * (1.0 + a.abs()), "{a} vs {b}");
    }
}

#[test]
fn adds_to_the_gradient_and_leaves_a_stateless_network_alone() {
    let (mut net, x, targets) = setup::<f64>();
    let before = net.clone();
    let mut workspace = ParallelWorkspace::<f64, Net<f64>, 12, 5, CHUNK>::new(B);
    assert_eq!(workspace.max_batch(), 24);
    let mut grads = NetGrads::<f64>::new_boxed();
    parallel_gradients(
        &mut *net,
        &mut workspace,
        &*x,
        &targets,
        &SoftmaxCrossEntropy,
        &mut grads,
    );
    let once: Vec<f64> = grads.as_slice().to_vec();
    parallel_gradients(
        &mut *net,
        &mut workspace,
        &*x,
        &targets,
        &SoftmaxCrossEntropy,
        &mut grads,
    );
    // The second call adds the same gradient (to rounding: chunk 0 adds into `grads`).
    for (twice, once) in grads.as_slice().iter().zip(&once) {
        assert!((twice - 2.0 * once).abs() <= 1e-15 * (1.0 + once.abs()));
    }
    assert_eq!(net, before);
}

#[test]
#[should_panic(expected = "need 4 chunks")]
fn a_workspace_too_small_panics() {
    let (mut net, x, targets) = setup::<f64>();
    let mut workspace = ParallelWorkspace::<f64, Net<f64>, 12, 5, CHUNK>::new(12);
    let mut grads = NetGrads::<f64>::new_boxed();
    parallel_gradients(
        &mut *net,
        &mut workspace,
        &*x,
        &targets,
        &SoftmaxCrossEntropy,
        &mut grads,
    );
}

nn::network! {
    /// A classifier with layer state (batch normalization's running statistics).
    pub struct Normed {
        input: [12],
        l1: Dense<16>,
        bn: BatchNorm1d, Relu,
        l2: Dense<5>,
    }
}

/// A network without layer state is shared by the chunks, one with state runs them on copies
/// (`Network::HAS_STATE`); on copies, each chunk's gradient is that of its own forward and
/// backward pass on the network as it was (batch normalization normalising each chunk by its
/// own statistics), added in chunk order, on any number of threads.
#[test]
fn a_network_with_state_runs_its_chunks_on_copies() {
    const { assert!(!Net::<f32>::HAS_STATE && Normed::<f32>::HAS_STATE) };
    const N: usize = 18;
    let mut rng = rand_pcg::Pcg64Mcg::seed_from_u64(9);
    let mut net = Normed::<f64>::new_boxed();
    net.init(&mut rng);
    let (_, x, targets) = setup::<f64>();
    let targets = &targets[..N];
    // By hand: each chunk on a fresh copy, its loss and gradient scaled by its share.
    let mut expected = NormedGrads::<f64>::new_boxed();
    let mut expected_loss = 0.0;
    for c in 0..N / CHUNK {
        let mut copy = net.clone();
        let mut tape = NormedTape::<f64, CHUNK>::new_boxed();
        let chunk = SMatrix::<f64, 12, CHUNK>::from_fn(|i, j| x[(i, c * CHUNK + j)]);
        let y = copy.forward_train(&chunk, &mut tape);
        let mut dy = SMatrix::<f64, 5, CHUNK>::zeros();
        let share = CHUNK as f64 / N as f64;
        let loss = SoftmaxCrossEntropy.loss_and_grad(y, &targets[c * CHUNK..][..CHUNK], &mut dy);
        dy *= share;
        copy.backward(&mut tape, &dy, &mut expected);
        expected_loss += loss * share;
    }
    let mut bits = None;
    for threads in [1, 2, 3] {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        let mut run = net.clone();
        let mut workspace = ParallelWorkspace::<f64, Normed<f64>, 12, 5, CHUNK>::new(B);
        let mut grads = NormedGrads::<f64>::new_boxed();
        let loss = pool.install(|| {
            parallel_gradients(
                &mut *run,
                &mut workspace,
                &*x,
                targets,
                &SoftmaxCrossEntropy,
                &mut grads,
            )
        });
        assert!(
            (loss - expected_loss).abs() < 1e-12,
            "{loss} vs {expected_loss}"
        );
        for (a, b) in grads.as_slice().iter().zip(expected.as_slice()) {
            assert!((a - b).abs() < 1e-12, "{threads} threads: {a} vs {b}");
        }
        // Chunk 0 updated the running statistics of the caller's network.
        assert_ne!(run.state, net.state);
        let now: Vec<u64> = grads.as_slice().iter().map(|g| g.to_bits()).collect();
        assert_eq!(
            *bits.get_or_insert_with(|| now.clone()),
            now,
            "{threads} threads"
        );
    }
}

nn::network! {
    /// Layers large enough for their products to be split across a pool's threads
    /// (`nn::parallel::PARALLEL_MIN_WORK`), the first deep enough for its forward product to
    /// be cut in halves of its depth (`nn::kernels::DEPTH_HALVES_MIN_DEPTH`), and a gradient
    /// large enough for the optimizer's and the norm's passes to be split
    /// (`nn::parallel::ELEMENTWISE_MIN_LEN`), tensor by tensor in the update.
    pub struct Wide {
        input: [520],
        l1: Dense<256>, Relu,
        l2: Dense<130>, Tanh,
        l3: Dense<7>,
    }
}

const WIDE_B: usize = 48;

/// The parameters after three `train_step`s with `optimizer` (made by `make`), run on a pool
/// of `threads` threads (`None`: on the test's own thread), the three steps in one outer
/// `nn::parallel::region` or each in its own, and each step's loss and norm.
fn wide_steps<T: Real, O: Optimizer<T, Grads = WideGrads<T>> + Send>(
    threads: Option<(usize, bool)>,
    make: impl Fn() -> Box<O>,
) -> (Vec<T>, Vec<(T, f64)>) {
    let mut rng = rand_pcg::Pcg64Mcg::seed_from_u64(11);
    let mut net = Wide::<T>::new_boxed();
    net.init(&mut rng);
    let mut x = SMatrix::<T, 520, WIDE_B>::new_boxed();
    for (s, v) in x.iter_mut().enumerate() {
        *v = T::of(((s * 7919) % 1013) as f64 / 506.5 - 1.0);
    }
    let targets: Vec<usize> = (0..WIDE_B).map(|j| (j * 5) % 7).collect();
    let mut tape = WideTape::<T, WIDE_B>::new_boxed();
    let mut grads = WideGrads::<T>::new_boxed();
    let mut optimizer = make();
    let options = nn::train::StepOptions {
        clip_grad_norm: Some(0.5),
        ..Default::default()
    };
    let mut run = || {
        (0..3)
            .map(|_| {
                let out = nn::train::train_step(
                    &mut *net,
                    &mut *tape,
                    &mut *grads,
                    &*x,
                    &targets,
                    &SoftmaxCrossEntropy,
                    &mut *optimizer,
                    &options,
                )
                .unwrap();
                (out.loss, out.grad_norm)
            })
            .collect::<Vec<_>>()
    };
    let outcomes = match threads {
        None => run(),
        Some((t, one_region)) => rayon::ThreadPoolBuilder::new()
            .num_threads(t)
            .build()
            .unwrap()
            .install(|| {
                if one_region {
                    nn::parallel::region(run)
                } else {
                    run()
                }
            }),
    };
    (net.as_slice().to_vec(), outcomes)
}

#[test]
fn train_step_on_a_pool_gives_the_same_bits_on_any_number_of_threads() {
    fn check<T: Real, O: Optimizer<T, Grads = WideGrads<T>> + Send>(
        what: &str,
        make: impl Fn() -> Box<O> + Copy,
    ) {
        let alone = wide_steps::<T, O>(None, make);
        assert!(alone.1.iter().all(|(l, n)| l.is_finite() && n.is_finite()));
        for threads in [1, 2, 3] {
            for one_region in [false, true] {
                let pooled = wide_steps::<T, O>(Some((threads, one_region)), make);
                assert!(
                    pooled.1 == alone.1,
                    "{what}: losses or norms differ on {threads} threads ({one_region})"
                );
                assert!(
                    pooled.0 == alone.0,
                    "{what}: parameters differ on {threads} threads ({one_region})"
                );
            }
        }
    }
    use nn::optim::{Adam, AdamConfig, RmsProp, RmsPropConfig, Sgd, SgdConfig};
    check::<f32, _>("SGD with momentum, f32", || {
        Sgd::<f32, WideGrads<f32>>::new_boxed(SgdConfig {
            lr: 0.05,
            momentum: 0.9,
            ..Default::default()
        })
    });
    check::<f64, _>("Adam, f64", || {
        Adam::<f64, WideGrads<f64>>::new_boxed(AdamConfig {
            weight_decay: 0.01,
            ..Default::default()
        })
    });
    check::<f32, _>("RMSprop centered with momentum, f32", || {
        RmsProp::<f32, WideGrads<f32>>::new_boxed(RmsPropConfig {
            momentum: 0.5,
            centered: true,
            ..Default::default()
        })
    });
}

/// `Trainer::fit` on a pool gives the parameters and the losses of `fit` alone, bit for bit;
/// and a step's error on a pool still ends it.
#[test]
fn fit_on_a_pool_gives_the_same_bits_as_alone() {
    use nn::optim::{Sgd, SgdConfig};
    use nn::train::{Samples, TrainConfig, Trainer};
    let inputs: Vec<SMatrix<f32, 520, 1>> = (0..150)
        .map(|i| SMatrix::from_fn(|r, _| ((r * 7 + i * 13) % 17) as f32 / 17.0 - 0.5))
        .collect();
    let targets: Vec<usize> = (0..150).map(|i| i % 7).collect();
    let fit = |threads: Option<usize>, lr: f64| {
        let mut net = Wide::<f32>::new_boxed();
        net.init(&mut rand_pcg::Pcg64Mcg::seed_from_u64(5));
        let mut sgd = Sgd::<f32, WideGrads<f32>>::new_boxed(SgdConfig {
            lr,
            momentum: 0.9,
            ..Default::default()
        });
        let config = TrainConfig {
            epochs: 2,
            progress: false,
            validation_split: 0.2,
            ..TrainConfig::default()
        };
        let mut run = || {
            Trainer::new(config)
                .fit::<_, _, _, WIDE_B>(
                    &mut *net,
                    &mut *sgd,
                    &SoftmaxCrossEntropy,
                    Samples::new(&inputs, &targets),
                    None,
                )
                .map(|h| {
                    h.epochs
                        .iter()
                        .map(|e| (e.train_loss, e.valid_loss))
                        .collect::<Vec<_>>()
                })
        };
        let history = match threads {
            None => run(),
            Some(t) => rayon::ThreadPoolBuilder::new()
                .num_threads(t)
                .build()
                .unwrap()
                .install(run),
        };
        (history, net.as_slice().to_vec())
    };
    let alone = fit(None, 0.05);
    assert!(alone.0.is_ok());
    for threads in [2, 3] {
        assert!(fit(Some(threads), 0.05) == alone, "{threads} threads");
    }
    // An infinite learning rate: the second step's loss is not finite.
    assert!(matches!(
        fit(Some(2), f64::INFINITY).0,
        Err(nn::train::TrainError::Step { batch: 1, .. })
    ));
}

/// `forward_train_shared` (from `&self`) computes what `forward_train` does, bit for bit.
#[test]
fn the_shared_training_pass_equals_forward_train() {
    let (mut net, x, _) = setup::<f32>();
    let (mut shared, mut own) = (
        NetTape::<f32, B>::new_boxed(),
        NetTape::<f32, B>::new_boxed(),
    );
    let y_shared = *net.forward_train_shared(&x, &mut shared);
    let y_own = *net.forward_train(&x, &mut own);
    assert!(
        y_shared
            .iter()
            .zip(y_own.iter())
            .all(|(a, b)| a.to_bits() == b.to_bits())
    );
    let mut trait_tape = NetTape::<f32, B>::new_boxed();
    <Net<f32> as Network<f32>>::forward_train_shared(&net, &x, &mut trait_tape);
    assert!(
        trait_tape
            .output_and_d_output()
            .0
            .iter()
            .zip(y_own.iter())
            .all(|(a, b)| a.to_bits() == b.to_bits())
    );
}

/// A network with layer state has no shared training pass: the trait's default panics.
#[test]
#[should_panic(expected = "layers have state")]
fn a_network_with_state_has_no_shared_training_pass() {
    let net = Normed::<f64>::new_boxed();
    let x = SMatrix::<f64, 12, CHUNK>::zeros();
    let mut tape = NormedTape::<f64, CHUNK>::new_boxed();
    <Normed<f64> as Network<f64>>::forward_train_shared(&net, &x, &mut tape);
}
