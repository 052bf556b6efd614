//! Generated networks: exact values, finite-difference gradient checks of every graph
//! construct, batches against single samples, f32 against f64, and the generic API.

mod common;

use common::{max_diff, random_matrix, randomize};
use nn::gradcheck::check_network;
use nn::prelude::*;

nn::network! {
    /// Learns XOR.
    pub struct Xor {
        input: [2],
        hidden: Dense<8>, Tanh,
        out: Dense<1>, Sigmoid,
    }
}

nn::network! {
    /// A residual MLP: `h` fans out to `fc2` and to the sum.
    pub struct ResMlp {
        fc1: Dense<32>,
        fc2: Dense<32>,
        head: Dense<1>,
    }
    forward(x: [16]) -> y {
        let h = relu(fc1(x));
        let r = relu(fc2(h));
        let y = sigmoid(head(h + r));
    }
}

nn::network! {
    /// Two inputs, two outputs, concat, product, a shared layer, log-softmax.
    pub struct TwoHeads {
        fa: Dense<4, 6>,
        fb: Dense<5>,
        mix: Dense<6>,
        shared: Dense<6, 6>,
        head_y: Dense<2>,
        head_z: Dense<3>,
    }
    forward(a: [4], b: [3]) -> (y: [2], z: [3]) {
        let ha = tanh(fa(a));
        let hb = gelu(fb(b));
        let c = concat(ha, hb);
        let m = silu(mix(c));
        let g = m * ha;
        let s1 = elu(shared(g), 0.7);
        let s2 = leaky_relu(shared(s1), 0.2);
        let y = head_y(s2 + g);
        let z = log_softmax(head_z(concat(s2, m)));
    }
}

nn::network! {
    /// An activation on the input that reads its input (kept in the tape for `backward`),
    /// before the only layer: the pass of the parameters' gradients reads no input (and its
    /// generated code must compile without warnings).
    pub struct ActivatedInput {
        input: [4],
        Softplus,
        l1: Dense<3>,
    }
}

nn::network! {
    /// Every smooth activation in one chain, and softmax at the end.
    pub struct Activations {
        l1: Dense<5>,
        l2: Dense<5>,
        l3: Dense<5>,
        l4: Dense<5>,
        l5: Dense<5>,
        l6: Dense<4>,
    }
    forward(x: [3]) -> y {
        let a1 = sigmoid(l1(x));
        let a2 = softplus(l2(a1));
        let a3 = identity(l3(a2)) * tanh(a2);
        let a4 = swish(l4(a3));
        let a5 = elu(l5(a4));
        let y = softmax(l6(a5 + a1));
    }
}

nn::network! {
    /// The lecture's single neuron: `z = w·x + b`, `u = σ(z)`.
    pub struct Neuron {
        input: [1],
        unit: Dense<1>, Sigmoid,
    }
}

nn::network! {
    /// An output that also feeds another output, and an output that is a concatenation.
    pub struct OutputsFeedOn {
        fc1: Dense<3>,
        fc2: Dense<2>,
    }
    forward(a: [2], b: [3]) -> (h, y, c) {
        let h = tanh(fc1(a));
        let y = fc2(h * b);
        let c = concat(h, y);
    }
}

fn check<N: Network<f64>, const B: usize>(net: &mut N, input: &N::Input<B>) {
    let report = check_network(net, input);
    assert!(report.max_rel_error < 1e-7, "{report:?}");
    assert_eq!(
        report.checked,
        2 * N::PARAM_COUNT + <N::Input<B> as Values<f64>>::LEN
    );
}

#[test]
fn xor_forward_matches_hand_computation() {
    let mut net = Xor::<f64>::ZERO;
    // hidden_0 = tanh(x0 + x1), hidden_1 = tanh(x0 - x1 + 0.5); out = σ(2·h0 − h1 − 0.25)
    net.hidden.weight[(0, 0)] = 1.0;
    net.hidden.weight[(0, 1)] = 1.0;
    net.hidden.weight[(1, 0)] = 1.0;
    net.hidden.weight[(1, 1)] = -1.0;
    net.hidden.bias[1] = 0.5;
    net.out.weight[(0, 0)] = 2.0;
    net.out.weight[(0, 1)] = -1.0;
    net.out.bias[0] = -0.25;
    let x = SMatrix::<f64, 2, 1>::new(1.0, 0.0);
    let z = 2.0 * 1f64.tanh() - 1.5f64.tanh() - 0.25;
    let expected = 1.0 / (1.0 + (-z).exp());
    assert!((net.forward(&x)[0] - expected).abs() < 1e-15);
}

#[test]
fn lecture_single_neuron_gradients_match_the_closed_form() {
    // L = ½(u − y)² + λ·w², u = σ(w·x + b); w = 0.5, b = −0.2, x = 1.5, y = 1, λ = 0.1.
    let (w, b, x, y, lambda) = (0.5, -0.2, 1.5, 1.0, 0.1);
    let mut net = Neuron::<f64>::ZERO;
    net.unit.weight[0] = w;
    net.unit.bias[0] = b;
    let input = SMatrix::<f64, 1, 1>::new(x);
    let mut tape = NeuronTape::ZERO;
    let u = net.forward_train(&input, &mut tape)[0];
    let loss = 0.5 * (u - y) * (u - y) + lambda * w * w;
    let mut grads = NeuronGrads::ZERO;
    net.backward(&mut tape, &SMatrix::<f64, 1, 1>::new(u - y), &mut grads);
    let dl_dw = grads.unit.weight[0] + 2.0 * lambda * w;
    let dl_db = grads.unit.bias[0];

    // Closed form: ∂L/∂w = (σ(wx+b) − y)·σ′(wx+b)·x + 2λw, ∂L/∂b = (σ(wx+b) − y)·σ′(wx+b).
    let sigma = |z: f64| 1.0 / (1.0 + (-z).exp());
    let s = sigma(w * x + b);
    assert!((dl_dw - ((s - y) * s * (1.0 - s) * x + 2.0 * lambda * w)).abs() < 1e-15);
    assert!((dl_db - (s - y) * s * (1.0 - s)).abs() < 1e-15);
    // The same numbers worked independently (Python, `math`).
    assert!((u - 0.634_135_591_010_800_7).abs() < 1e-15);
    assert!((loss - 0.091_928_382_882_508_04).abs() < 1e-15);
    assert!((dl_dw - -0.027_325_008_903_789_166).abs() < 1e-15);
    assert!((dl_db - -0.084_883_339_269_192_78).abs() < 1e-15);
}

#[test]
fn gradcheck_sequential() {
    let mut net = Xor::<f64>::ZERO;
    randomize(&mut net, 1, 1.0);
    check::<_, 3>(&mut net, &random_matrix(2, 1.0));
}

#[test]
fn gradcheck_fan_out_and_add() {
    let mut net = ResMlp::<f64>::ZERO;
    randomize(&mut net, 3, 0.5);
    // ReLU has a kink at 0: check that no pre-activation sits within 1e-4 of it.
    let x = random_matrix::<16, 2>(4, 1.0);
    let (mut fc1_out, mut fc2_out) = (SMatrix::<f64, 32, 2>::ZERO, SMatrix::<f64, 32, 2>::ZERO);
    net.fc1.forward(&(), &x, &mut fc1_out, &mut []);
    net.fc2
        .forward(&(), &fc1_out.map(|v| v.max(0.0)), &mut fc2_out, &mut []);
    for value in fc1_out.iter().chain(fc2_out.iter()) {
        assert!(value.abs() > 1e-4);
    }
    check::<_, 2>(&mut net, &x);
}

#[test]
fn gradcheck_multi_input_output_concat_product_shared_layer() {
    let mut net = TwoHeads::<f64>::ZERO;
    randomize(&mut net, 5, 0.7);
    let input = (random_matrix::<4, 3>(6, 1.0), random_matrix::<3, 3>(7, 1.0));
    check::<_, 3>(&mut net, &input);
}

#[test]
fn gradcheck_outputs_that_feed_other_outputs() {
    let mut net = OutputsFeedOn::<f64>::ZERO;
    randomize(&mut net, 15, 0.8);
    let input = (
        random_matrix::<2, 2>(16, 1.0),
        random_matrix::<3, 2>(17, 1.0),
    );
    check::<_, 2>(&mut net, &input);
}

#[test]
fn gradcheck_activation_chain_and_softmax() {
    let mut net = Activations::<f64>::ZERO;
    randomize(&mut net, 8, 0.9);
    check::<_, 2>(&mut net, &random_matrix(9, 1.0));
}

#[test]
fn shared_layer_gradient_is_the_sum_of_both_uses() {
    let mut net = TwoHeads::<f64>::ZERO;
    randomize(&mut net, 10, 0.7);
    let input = (
        random_matrix::<4, 1>(11, 1.0),
        random_matrix::<3, 1>(12, 1.0),
    );
    let mut tape = TwoHeadsTape::ZERO;
    net.forward_train(&input.0, &input.1, &mut tape);
    let d_out = (
        random_matrix::<2, 1>(13, 1.0),
        random_matrix::<3, 1>(14, 1.0),
    );
    let mut grads = TwoHeadsGrads::ZERO;
    net.backward(&mut tape, &d_out.0, &d_out.1, &mut grads);

    // The forward values by hand (the tape keeps only what the backward pass reads).
    use nn::activations::{Elu, Gelu, LeakyRelu, LogSoftmax, Silu, Tanh};
    fn dense<const I: usize, const O: usize>(
        layer: &nn::layers::Dense<f64, I, O>,
        x: &SMatrix<f64, I, 1>,
    ) -> SMatrix<f64, O, 1> {
        let mut y = SMatrix::ZERO;
        layer.forward(&(), x, &mut y, &mut []);
        y
    }
    fn act<A: nn::Activation<f64>, const N: usize>(
        a: &A,
        x: &SMatrix<f64, N, 1>,
    ) -> SMatrix<f64, N, 1> {
        let mut y = SMatrix::ZERO;
        a.forward(x, &mut y);
        y
    }
    let ha = act(&Tanh, &dense(&net.fa, &input.0));
    let hb = act(&Gelu, &dense(&net.fb, &input.1));
    let mut c = SMatrix::<f64, 11, 1>::zeros();
    c.fixed_rows_mut::<6>(0).copy_from(&ha);
    c.fixed_rows_mut::<5>(6).copy_from(&hb);
    let m = act(&Silu, &dense(&net.mix, &c));
    let g = m.component_mul(&ha);
    let shared_out = dense(&net.shared, &g);
    let s1 = act(&Elu { alpha: 0.7 }, &shared_out);
    let shared_out_2 = dense(&net.shared, &s1);
    let s2 = act(&LeakyRelu { alpha: 0.2 }, &shared_out_2);
    let sum = s2 + g;
    let mut cat = SMatrix::<f64, 12, 1>::zeros();
    cat.fixed_rows_mut::<6>(0).copy_from(&s2);
    cat.fixed_rows_mut::<6>(6).copy_from(&m);
    let z = act(&LogSoftmax, &dense(&net.head_z, &cat));

    // Redo both uses of `shared` backward by hand: the layer sees `g` then `s1`.
    let mut d_s2 = SMatrix::<f64, 6, 1>::zeros();
    let mut d_m = SMatrix::<f64, 6, 1>::zeros();
    let mut unused = TwoHeadsGrads::ZERO;
    let mut d_cat = SMatrix::<f64, 12, 1>::zeros();
    let mut d_z = SMatrix::<f64, 3, 1>::zeros();
    // Log-softmax reads its output.
    nn::Activation::backward(&LogSoftmax, &z, &d_out.1, &mut d_z);
    net.head_z.backward(
        &cat,
        &(),
        &d_z,
        Some(&mut d_cat),
        &mut unused.head_z,
        &mut [],
    );
    d_s2 += d_cat.fixed_rows::<6>(0);
    d_m += d_cat.fixed_rows::<6>(6);
    let mut d_sum = SMatrix::<f64, 6, 1>::zeros();
    net.head_y.backward(
        &sum,
        &(),
        &d_out.0,
        Some(&mut d_sum),
        &mut unused.head_y,
        &mut [],
    );
    d_s2 += d_sum;
    let mut d_shared2 = SMatrix::<f64, 6, 1>::zeros();
    // Leaky ReLU and ELU read their inputs.
    nn::Activation::backward(
        &LeakyRelu { alpha: 0.2 },
        &shared_out_2,
        &d_s2,
        &mut d_shared2,
    );
    let mut second_use = nn::layers::Dense::<f64, 6, 6>::ZERO;
    let mut d_s1 = SMatrix::<f64, 6, 1>::zeros();
    net.shared.backward(
        &s1,
        &(),
        &d_shared2,
        Some(&mut d_s1),
        &mut second_use,
        &mut [],
    );
    let mut d_shared1 = SMatrix::<f64, 6, 1>::zeros();
    nn::Activation::backward(&Elu { alpha: 0.7 }, &shared_out, &d_s1, &mut d_shared1);
    let mut first_use = nn::layers::Dense::<f64, 6, 6>::ZERO;
    let mut d_g = SMatrix::<f64, 6, 1>::zeros();
    net.shared
        .backward(&g, &(), &d_shared1, Some(&mut d_g), &mut first_use, &mut []);
    let _ = d_m;

    let mut both = first_use;
    both.weight += second_use.weight;
    both.bias += second_use.bias;
    assert!(max_diff(both.as_slice(), grads.shared.as_slice()) < 1e-14);
    assert!(max_diff(first_use.as_slice(), grads.shared.as_slice()) > 1e-6);
}

/// Runs forward_train and backward on a batch of 4 and on each of its samples, and checks
/// outputs, input gradients and accumulated parameter gradients agree.
macro_rules! assert_batch_equals_samples {
    ($net:expr, $tape:ident, $grads:ident, $in:literal, $out:literal, $seed:literal) => {{
        let net: &mut _ = $net;
        let x = random_matrix::<$in, 4>($seed, 1.0);
        let dy = random_matrix::<$out, 4>($seed + 1, 1.0);
        let mut tape = $tape::<f64, 4>::ZERO;
        let y = *net.forward_train(&x, &mut tape);
        let mut grads = $grads::ZERO;
        let dx = *net.backward(&mut tape, &dy, &mut grads);
        let mut single_grads = $grads::ZERO;
        for j in 0..4 {
            let xj: SMatrix<f64, $in, 1> = x.column(j).into();
            let dyj: SMatrix<f64, $out, 1> = dy.column(j).into();
            let mut tape = $tape::<f64, 1>::ZERO;
            let yj = *net.forward_train(&xj, &mut tape);
            let dxj = *net.backward(&mut tape, &dyj, &mut single_grads);
            assert!((yj - y.column(j)).amax() < 1e-14);
            assert!((dxj - dx.column(j)).amax() < 1e-14);
            assert!((net.forward(&xj) - yj).amax() == 0.0);
        }
        assert!(max_diff(single_grads.as_slice(), grads.as_slice()) < 1e-13);
    }};
}

#[test]
fn batch_equals_single_samples() {
    let mut xor = Xor::<f64>::ZERO;
    randomize(&mut xor, 20, 1.0);
    assert_batch_equals_samples!(&mut xor, XorTape, XorGrads, 2, 1, 21);
    let mut res = ResMlp::<f64>::ZERO;
    randomize(&mut res, 22, 0.5);
    assert_batch_equals_samples!(&mut res, ResMlpTape, ResMlpGrads, 16, 1, 23);
    let mut act = Activations::<f64>::ZERO;
    randomize(&mut act, 24, 0.9);
    assert_batch_equals_samples!(&mut act, ActivationsTape, ActivationsGrads, 3, 4, 25);
}

#[test]
fn f32_agrees_with_f64() {
    let mut net64 = TwoHeads::<f64>::ZERO;
    randomize(&mut net64, 30, 0.7);
    let mut net32 = TwoHeads::<f32>::ZERO;
    for (p32, p64) in net32.as_mut_slice().iter_mut().zip(net64.as_slice()) {
        *p32 = *p64 as f32;
    }
    let (a, b) = (
        random_matrix::<4, 2>(31, 1.0),
        random_matrix::<3, 2>(32, 1.0),
    );
    let (y64, z64) = net64.forward(&a, &b);
    let (y32, z32) = net32.forward(&a.cast::<f32>(), &b.cast::<f32>());
    assert!((y32.cast::<f64>() - y64).amax() < 1e-5);
    assert!((z32.cast::<f64>() - z64).amax() < 1e-5);
}

#[test]
fn backward_accumulates_into_grads() {
    let mut net = ResMlp::<f64>::ZERO;
    randomize(&mut net, 40, 0.5);
    let x = random_matrix::<16, 2>(41, 1.0);
    let dy = random_matrix::<1, 2>(42, 1.0);
    let mut tape = ResMlpTape::ZERO;
    net.forward_train(&x, &mut tape);
    let mut once = ResMlpGrads::ZERO;
    net.backward(&mut tape, &dy, &mut once);
    let mut twice = ResMlpGrads::ZERO;
    net.backward(&mut tape, &dy, &mut twice);
    net.backward(&mut tape, &dy, &mut twice);
    let doubled: Vec<f64> = once.as_slice().iter().map(|g| 2.0 * g).collect();
    assert!(max_diff(&doubled, twice.as_slice()) < 1e-15);
}

/// One step of plain gradient descent on the mean squared error, written only against the
/// `Network` trait.
fn sgd_step<N: Network<f64>, const B: usize>(
    net: &mut N,
    x: &N::Input<B>,
    target: &N::Output<B>,
    learning_rate: f64,
) -> f64
where
    N::Tape<B>: Sized,
{
    let mut tape = <N::Tape<B> as ConstZero>::ZERO;
    let mut grads = <N::Grads as ConstZero>::ZERO;
    net.forward_train(x, &mut tape);
    let (y, dy) = tape.output_and_d_output();
    let mut loss = 0.0;
    for i in 0..<N::Output<B> as Values<f64>>::LEN {
        let error = y.get(i) - target.get(i);
        loss += 0.5 * error * error / B as f64;
        *dy.get_mut(i) = error / B as f64;
    }
    net.backward(&mut tape, &mut grads);
    for (p, g) in net.as_mut_slice().iter_mut().zip(grads.as_slice()) {
        *p -= learning_rate * g;
    }
    loss
}

#[test]
fn generic_training_through_the_network_trait_reduces_the_loss() {
    let mut net = Xor::<f64>::ZERO;
    randomize(&mut net, 50, 1.0);
    let x = SMatrix::<f64, 2, 4>::from_column_slice(&[0., 0., 0., 1., 1., 0., 1., 1.]);
    let y = SMatrix::<f64, 1, 4>::from_column_slice(&[0., 1., 1., 0.]);
    let first = sgd_step(&mut net, &x, &y, 1.0);
    let mut last = first;
    for _ in 0..2000 {
        last = sgd_step(&mut net, &x, &y, 1.0);
    }
    assert!(last < first / 10.0, "loss {first} -> {last}");
}

#[test]
fn summary_lists_every_node_with_shapes_and_parameter_counts() {
    let summary = TwoHeads::<f32>::summary();
    assert_eq!(summary.param_count(), TwoHeads::<f32>::PARAM_COUNT);
    assert_eq!(
        TwoHeads::<f32>::PARAM_COUNT,
        (4 * 6 + 6) + (3 * 5 + 5) + (11 * 6 + 6) + (6 * 6 + 6) + (6 * 2 + 2) + (12 * 3 + 3)
    );
    let text = summary.to_string();
    assert!(text.contains("shared: Dense(6 → 6), shared"), "{text}");
    assert!(text.contains("concat(ha, hb)"), "{text}");
    assert!(text.contains("log_softmax"), "{text}");
    let xor = Xor::<f32>::summary().to_string();
    let expected = "\
Network: Xor
=======================================================
Node         Operation             Output shape  Params
-------------------------------------------------------
input        input                 [2]                0
hidden       hidden: Dense(2 → 8)  [8]               24
hidden_tanh  tanh                  [8]                0
out          out: Dense(8 → 1)     [1]                9
out_sigmoid  sigmoid               [1]                0
=======================================================
Trainable params: 33 (132 B)
Memory per sample (scalars): workspace 17 (lower bound 17); tape 10 saved + 4 inputs/outputs + 16 in slots (lower bound 16)";
    assert_eq!(xor, expected);
}

/// `bytes` as a generated struct `S` occupies them: rounded up to its alignment (64 bytes on
/// x86-64, where the generated structs are cache-line aligned; exact elsewhere).
fn padded<S>(bytes: usize) -> usize {
    bytes.next_multiple_of(align_of::<S>())
}

#[test]
fn default_scalar_is_f32_and_layouts_follow_pytorch() {
    let net: Xor = Xor::ZERO;
    let weight: &SMatrix<f32, 8, 2> = &net.hidden.weight; // [out, in]
    assert_eq!(weight.shape(), (8, 2));
    assert_eq!(<Xor as Params<f32>>::LEN, Xor::<f32>::PARAM_COUNT);
    assert_eq!(size_of::<Xor>(), padded::<Xor>(33 * 4));
    // Per sample: the output, its gradient and the input's (1 + 1 + 2); the values backward
    // reads, the input and tanh's output (2 + 8); two slots of 8 for the rest (the gradients
    // of `hidden_tanh` and `hidden` are live together at tanh's backward step).
    assert_eq!(
        size_of::<XorTape<f64, 2>>(),
        padded::<XorTape<f64, 2>>((1 + 1 + 2 + 2 + 8 + 8 + 8) * 2 * 8)
    );
    assert_eq!(
        (
            Xor::<f32>::TAPE_ENDS_PER_SAMPLE,
            Xor::<f32>::TAPE_SAVED_PER_SAMPLE,
            Xor::<f32>::TAPE_WORK_PER_SAMPLE,
            Xor::<f32>::TAPE_WORK_LOWER_BOUND
        ),
        (4, 10, 16, 16)
    );
    // Inference: the output (1) and two slots of 8 (`hidden` and `hidden_tanh` are live
    // together at tanh's step; `out` reuses the first).
    assert_eq!(Xor::<f64>::WORKSPACE_PER_SAMPLE, 1 + 8 + 8);
    assert_eq!(
        size_of::<XorWorkspace<f64, 2>>(),
        padded::<XorWorkspace<f64, 2>>(17 * 2 * 8)
    );
}

#[test]
fn footprint_is_known_at_compile_time() {
    const _: () = assert!(Xor::<f32>::PARAM_BYTES <= 16 * 1024);
    assert_eq!(Xor::<f32>::PARAM_BYTES, 33 * 4);
    assert_eq!(Xor::<f64>::GRAD_BYTES, padded::<XorGrads<f64>>(33 * 8));
    assert_eq!(Xor::<f32>::BYTES, padded::<Xor<f32>>(33 * 4));
    assert_eq!(
        Xor::<f32>::tape_bytes::<4>(),
        padded::<XorTape<f32, 4>>(30 * 4 * 4)
    );
    assert_eq!(
        Xor::<f32>::workspace_bytes::<4>(),
        padded::<XorWorkspace<f32, 4>>(Xor::<f32>::WORKSPACE_PER_SAMPLE * 4 * 4)
    );
}

/// `backward_params` (used by training) gives exactly the parameter gradients of `backward`.
fn backward_params_agrees<N: Network<f64>, const B: usize>(net: &mut N, input: &N::Input<B>) {
    let mut tape = <N::Tape<B> as ConstZero>::ZERO;
    net.forward_train(input, &mut tape);
    // The backward pass may add into `∂L/∂output` (an output that feeds another), so it is
    // written before each pass.
    let set_d_out = |tape: &mut N::Tape<B>| {
        for i in 0..<N::Output<B> as Values<f64>>::LEN {
            *tape.d_output_mut().get_mut(i) = ((i * 7 % 11) as f64 - 5.0) * 0.1;
        }
    };
    set_d_out(&mut tape);
    let mut full = <N::Grads as ConstZero>::ZERO;
    net.backward(&mut tape, &mut full);
    set_d_out(&mut tape);
    let mut params_only = <N::Grads as ConstZero>::ZERO;
    net.backward_params(&mut tape, &mut params_only);
    assert_eq!(full.as_slice(), params_only.as_slice());
    assert!(full.as_slice().iter().any(|&g| g != 0.0));
    // The training step's pass, over gradients holding NaNs: the same values.
    set_d_out(&mut tape);
    let mut overwritten = <N::Grads as ConstZero>::ZERO;
    overwritten.as_mut_slice().fill(f64::NAN);
    net.backward_params_overwrite(&mut tape, &mut overwritten);
    assert_eq!(full.as_slice(), overwritten.as_slice());
    // The training step's passes, which read the caller's input, not a copy in the tape:
    // the same values, on a tape holding another batch's input.
    let mut other = input.clone();
    for i in 0..<N::Input<B> as Values<f64>>::LEN {
        *other.get_mut(i) = 0.5 - other.get(i);
    }
    net.forward_train(&other, &mut tape);
    net.forward_train_borrowing(input, &mut tape);
    set_d_out(&mut tape);
    let mut borrowing = <N::Grads as ConstZero>::ZERO;
    borrowing.as_mut_slice().fill(f64::NAN);
    net.backward_params_overwrite_borrowing(input, &mut tape, &mut borrowing);
    assert_eq!(full.as_slice(), borrowing.as_slice());
}

#[test]
fn backward_params_gives_the_parameter_gradients_of_backward() {
    let mut xor = Xor::<f64>::ZERO;
    randomize(&mut xor, 60, 1.0);
    backward_params_agrees::<_, 3>(&mut xor, &random_matrix(61, 1.0));
    let mut res = ResMlp::<f64>::ZERO;
    randomize(&mut res, 62, 0.5);
    backward_params_agrees::<_, 2>(&mut res, &random_matrix(63, 1.0));
    let mut two = TwoHeads::<f64>::ZERO;
    randomize(&mut two, 64, 0.7);
    backward_params_agrees::<_, 2>(&mut two, &(random_matrix(65, 1.0), random_matrix(66, 1.0)));
    let mut outs = OutputsFeedOn::<f64>::ZERO;
    randomize(&mut outs, 67, 0.8);
    backward_params_agrees::<_, 2>(&mut outs, &(random_matrix(68, 1.0), random_matrix(69, 1.0)));
    let mut acts = Activations::<f64>::ZERO;
    randomize(&mut acts, 70, 0.9);
    backward_params_agrees::<_, 2>(&mut acts, &random_matrix(71, 1.0));
    let mut activated = ActivatedInput::<f64>::ZERO;
    randomize(&mut activated, 72, 0.9);
    backward_params_agrees::<_, 3>(&mut activated, &random_matrix(73, 1.0));
}
