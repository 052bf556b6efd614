//! `forward`, `forward_train`, `backward` and a whole training step (forward, loss,
//! backward, regularization, clipping, optimizer update) perform no heap allocation: a
//! counting global allocator sees none during the calls. (A test binary of its own, since the
//! global allocator is per binary.) The count is the calling thread's: the test harness's
//! other threads may allocate meanwhile.

use nn::prelude::*;
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

struct Counting;

thread_local! {
    /// Allocations made by this thread (a `const` initialiser: reading it never allocates).
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

fn count_one() {
    // `try_with`: a thread being torn down still allocates, uncounted.
    let _ = ALLOCATIONS.try_with(|count| count.set(count.get() + 1));
}

// SAFETY: forwards to the system allocator, counting calls.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count_one();
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count_one();
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

nn::network! {
    struct ResMlp {
        fc1: Dense<32>,
        fc2: Dense<32>,
        head: Dense<3>,
        gate: Dense<32>,
    }
    forward(x: [16], c: [4]) -> (y, p) {
        let h = relu(fc1(x));
        let r = gelu(fc2(h)) * sigmoid(gate(concat(c, x, c)));
        let y = head(h + r);
        let p = softmax(y);
    }
}

fn allocations_during(f: impl FnOnce()) -> usize {
    let before = ALLOCATIONS.with(Cell::get);
    f();
    ALLOCATIONS.with(Cell::get) - before
}

fn passes<const B: usize>(net: &mut ResMlp<f32>) -> [usize; 3] {
    let mut tape = ResMlpTape::<f32, B>::new_boxed();
    let mut grads = ResMlpGrads::<f32>::new_boxed();
    let x = SMatrix::<f32, 16, B>::from_fn(|i, j| (i as f32 - 7.5) * 0.1 + j as f32);
    let c = SMatrix::<f32, 4, B>::from_fn(|i, j| i as f32 * 0.3 - j as f32);
    let dy = SMatrix::<f32, 3, B>::from_element(0.5);
    let dp = SMatrix::<f32, 3, B>::from_element(-0.25);
    [
        allocations_during(|| {
            std::hint::black_box(net.forward(&x, &c));
        }),
        allocations_during(|| {
            std::hint::black_box(net.forward_train(&x, &c, &mut tape));
        }),
        allocations_during(|| {
            std::hint::black_box(net.backward(&mut tape, &dy, &dp, &mut grads));
        }),
    ]
}

nn::network! {
    struct Classifier {
        input: [16],
        hidden: Dense<32>, Relu,
        logits: Dense<4>,
    }
}

fn training_steps() -> usize {
    use nn::loss::SoftmaxCrossEntropy;
    use nn::optim::{Adam, AdamConfig};
    use nn::train::{StepOptions, train_step};
    use rand_core::SeedableRng;

    let mut net = Classifier::<f32>::new_boxed();
    net.init(&mut rand_pcg::Pcg64Mcg::seed_from_u64(3));
    let mut tape = ClassifierTape::<f32, 8>::new_boxed();
    let mut grads = ClassifierGrads::<f32>::new_boxed();
    let mut adam = Adam::<f32, ClassifierGrads<f32>>::new_boxed(AdamConfig {
        lr: 0.01,
        ..AdamConfig::default()
    });
    let x = SMatrix::<f32, 16, 8>::from_fn(|i, j| ((i * 3 + j) % 7) as f32 * 0.2 - 0.6);
    let targets = [0usize, 1, 2, 3, 0, 1, 2]; // a partial batch of 7
    let options = StepOptions {
        regularization: nn::Regularization::l2(1e-4),
        clip_grad_norm: Some(1.0),
    };
    allocations_during(|| {
        for _ in 0..3 {
            let outcome = train_step(
                &mut *net,
                &mut *tape,
                &mut *grads,
                &x,
                &targets,
                &SoftmaxCrossEntropy,
                &mut *adam,
                &options,
            );
            std::hint::black_box(outcome.expect("a finite step"));
        }
    })
}

#[test]
fn forward_forward_train_backward_and_training_steps_do_not_allocate() {
    let mut net = ResMlp::<f32>::new_boxed();
    for (i, p) in net.as_mut_slice().iter_mut().enumerate() {
        *p = ((i * 7919) % 101) as f32 / 101.0 - 0.5;
    }
    assert_eq!(
        passes::<1>(&mut net),
        [0, 0, 0],
        "single sample: [forward, forward_train, backward]"
    );
    assert_eq!(
        passes::<8>(&mut net),
        [0, 0, 0],
        "batch of 8: [forward, forward_train, backward]"
    );
    assert_eq!(training_steps(), 0, "three training steps");
    // The counter works: a Vec allocates.
    assert_eq!(
        allocations_during(|| drop(std::hint::black_box(vec![1u8; 10]))),
        1
    );
}
