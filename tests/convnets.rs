//! Convolutional networks: shapes computed by the macro, gradients through every layer, and
//! a LeNet-style network on 28×28 inputs.

mod common;

use common::{random_matrix, randomize};
use nn::prelude::*;

nn::network! {
    /// Two convolutions with stride, padding and dilation, then a dense head.
    pub struct SmallCnn {
        input: [2, 7, 6],
        conv1: Conv2d<3, 3, padding = 1>, Tanh,
        conv2: Conv2d<4, (3, 2), stride = (2, 1), dilation = (1, 2), bias = false>, Tanh,
        Flatten,
        head: Dense<3>,
    }
}

#[test]
fn shapes_follow_pytorch() {
    let text = SmallCnn::<f32>::summary().to_string();
    // conv1: (7 + 2 − 3)/1 + 1 = 7, (6 + 2 − 3) + 1 = 6; conv2: (7 − 3)/2 + 1 = 3, (6 − 3)/1 + 1 = 4.
    assert!(text.contains("[3, 7, 6]"), "{text}");
    assert!(text.contains("[4, 3, 4]"), "{text}");
    assert_eq!(
        SmallCnn::<f32>::PARAM_COUNT,
        (3 * 2 * 9 + 3) + (4 * 3 * 6) + (3 * 48 + 3)
    );
}

#[test]
fn gradients_through_convolutions_match_finite_differences() {
    let mut net = SmallCnn::<f64>::ZERO;
    randomize(&mut net, 1, 0.5);
    let report = nn::gradcheck::check_network(&mut net, &random_matrix::<84, 2>(2, 1.0));
    assert!(report.max_rel_error < 1e-7, "{report:?}");
}

#[test]
fn a_batch_equals_its_samples() {
    let mut net = SmallCnn::<f64>::ZERO;
    randomize(&mut net, 3, 0.5);
    let x = random_matrix::<84, 3>(4, 1.0);
    let y = net.forward(&x);
    for j in 0..3 {
        let xj: SMatrix<f64, 84, 1> = x.column(j).into();
        assert!((net.forward(&xj) - y.column(j)).amax() < 1e-14);
    }
}

nn::network! {
    /// LeNet-5 on 28×28 images (padding 2 keeps conv1 at 28×28, as in the classic setup).
    pub struct LeNet {
        input: [1, 28, 28],
        conv1: Conv2d<6, 5, padding = 2>, Relu,
        pool1: MaxPool2d<2>,
        conv2: Conv2d<16, 5>, Relu,
        pool2: MaxPool2d<2>,
        Flatten,
        fc1: Dense<120>, Relu,
        fc2: Dense<84>, Relu,
        fc3: Dense<10>,
    }
}

#[test]
fn lenet_runs_forward_and_backward() {
    assert_eq!(LeNet::<f32>::PARAM_COUNT, 61_706);
    let mut net = LeNet::<f32>::new_boxed();
    net.init(&mut rand_pcg::Pcg64Mcg::new(1));
    let x = SMatrix::<f32, 784, 4>::from_fn(|i, j| ((i * 7 + j * 13) % 17) as f32 / 17.0);
    let mut tape = LeNetTape::<f32, 4>::new_boxed();
    let mut grads = LeNetGrads::<f32>::new_boxed();
    let y = *net.forward_train(&x, &mut tape);
    assert!((net.forward(&x) - y).amax() < 1e-5);
    let d_x = net.backward(&mut tape, &SMatrix::from_element(0.1), &mut grads);
    assert!(d_x.iter().all(|v| v.is_finite()));
    assert!(grads.conv1.weight.iter().any(|&g| g != 0.0));
    assert!(grads.as_slice().iter().all(|g| g.is_finite()));
}

nn::network! {
    /// Batch norm (1-d and 2-d), average pooling, global pooling and dropout in one graph.
    pub struct NormPool {
        conv: Conv1d<3, 2>,
        bn1: BatchNorm1d,
        conv2: Conv2d<2, 2, padding = 1>,
        bn2: BatchNorm2d<momentum = 0.2>,
        pool: AvgPool2d<2, stride = 1>,
        gap: GlobalAvgPool,
        drop: Dropout<0.3>,
        head: Dense<2>,
    }
    forward(seq: [2, 6], img: [1, 3, 3]) -> y {
        let a = tanh(bn1(conv(seq)));
        let b = drop(gap(a));
        let c = tanh(pool(bn2(conv2(img))));
        let y = head(concat(b, flatten(c)));
    }
}

#[test]
fn gradients_through_batch_norm_pooling_and_dropout_match_finite_differences() {
    let mut net = NormPool::<f64>::ZERO;
    net.init(&mut rand_pcg::Pcg64Mcg::new(7));
    randomize(&mut net, 8, 0.8); // γ, β away from their initial 1 and 0 too
    let input = (
        random_matrix::<12, 4>(9, 1.0),
        random_matrix::<9, 4>(10, 1.0),
    );
    let report = nn::gradcheck::check_network(&mut net, &input);
    assert!(report.max_rel_error < 1e-6, "{report:?}");
}

#[test]
fn training_updates_running_statistics_and_inference_uses_them() {
    let mut net = NormPool::<f64>::ZERO;
    net.init(&mut rand_pcg::Pcg64Mcg::new(11));
    assert!(net.state.bn1.running_var.iter().all(|&v| v == 1.0));
    let input = (
        random_matrix::<12, 8>(12, 1.0),
        random_matrix::<9, 8>(13, 1.0),
    );
    let mut tape = NormPoolTape::<f64, 8>::ZERO;
    let y_train = net.forward_train(&input.0, &input.1, &mut tape);
    assert!(net.state.bn1.running_mean.iter().any(|&m| m != 0.0));
    // Inference: running statistics and no dropout, so it differs from the training pass,
    // and it is deterministic.
    let y = net.forward(&input.0, &input.1);
    assert!((y - y_train).amax() > 1e-6);
    assert_eq!(y, net.forward(&input.0, &input.1));
}

#[test]
fn backward_params_gives_the_parameter_gradients_of_backward() {
    let mut net = NormPool::<f64>::ZERO;
    net.init(&mut rand_pcg::Pcg64Mcg::new(21));
    randomize(&mut net, 22, 0.8);
    let input = (
        random_matrix::<12, 3>(23, 1.0),
        random_matrix::<9, 3>(24, 1.0),
    );
    let mut tape = NormPoolTape::<f64, 3>::ZERO;
    net.forward_train(&input.0, &input.1, &mut tape);
    let d_y = random_matrix::<2, 3>(25, 1.0);
    let (mut full, mut params_only) = (NormPoolGrads::ZERO, NormPoolGrads::ZERO);
    net.backward(&mut tape, &d_y, &mut full);
    net.backward_params(&mut tape, &d_y, &mut params_only);
    assert_eq!(full, params_only);
}
