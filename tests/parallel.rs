//! `parallel_gradients`: bit-reproducible whatever the number of threads, and equal (to
//! rounding) to the single-threaded gradient of the whole batch.

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
