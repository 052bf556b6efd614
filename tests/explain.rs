//! The derivation every network carries (`EQUATIONS`, `EQUATIONS_TEXT`, `DOT`, `MERMAID`): the
//! lecture's neuron, fan-out, shared layers, concatenation, products and every activation;
//! each built-in layer's own equations (LeNet, the transformer example, a GRU, batch norm),
//! with the convolution's and batch norm's checked against the code in numbers; diagrams
//! that name every node and edge; and the README and `docs/` kept in step with it.

mod common;

use common::{random_matrix, randomize};
use nn::prelude::*;

nn::network! {
    /// The lecture's single neuron, in the sequential form: `unit = W·input + b`,
    /// `unit_sigmoid = σ(unit)`.
    pub struct Neuron {
        input: [1],
        unit: Dense<1>, Sigmoid,
    }
}

nn::network! {
    /// The same neuron with the lecture's names: `z = w·x + b`, `u = σ(z)`.
    pub struct LectureNeuron {
        unit: Dense<1>,
    }
    forward(x: [1]) -> u {
        let z = unit(x);
        let u = sigmoid(z);
    }
}

nn::network! {
    /// The README's residual MLP: `h` fans out to `fc2` and to the sum.
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
    /// Every smooth activation, identity, and softmax at the end.
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
    /// The thresholds and their straight-through surrogates.
    pub struct Thresholds {
        fc: Dense<2>,
    }
    forward(x: [2]) -> y {
        let y = sign_ste(fc(x)) * heaviside_ste(x) + relu(x) * sign(x) + heaviside(x);
    }
}

nn::network! {
    /// Outputs that feed other nodes, and a node used twice by one child.
    pub struct OutputsFeedOn {
        fc1: Dense<3>,
        fc2: Dense<2>,
    }
    forward(a: [2], b: [3]) -> (h, y, c) {
        let h = tanh(fc1(a));
        let y = fc2(h * b);
        let c = concat(h, y * y);
    }
}

/// `y = s ⊙ x`, a learnable per-feature scale: a layer of your own.
#[derive(Clone, Debug, PartialEq)]
#[repr(C)]
pub struct Scale<T: Real, const N: usize> {
    pub s: SMatrix<T, N, 1>,
}

impl<T: Real, const N: usize> ConstZero for Scale<T, N> {
    const ZERO: Self = Scale { s: SMatrix::ZERO };
}

// SAFETY: repr(C), one static matrix of IEEE floats: all-zero bytes are zeros.
unsafe impl<T: Real, const N: usize> Zeroable for Scale<T, N> {}

// SAFETY: repr(C), one static matrix of T.
unsafe impl<T: Real, const N: usize> Params<T> for Scale<T, N> {
    const LEN: usize = N;
}

impl<T: Real, const N: usize> Layer<T, N, N> for Scale<T, N> {
    type Cache<const B: usize> = ();
    type State = ();

    fn forward<const B: usize>(
        &self,
        _: &(),
        x: &SMatrix<T, N, B>,
        y: &mut SMatrix<T, N, B>,
        _scratch: &mut [T],
    ) {
        for (j, mut column) in y.column_iter_mut().enumerate() {
            column.copy_from(&x.column(j).component_mul(&self.s));
        }
    }

    fn backward<const B: usize>(
        &self,
        x: &SMatrix<T, N, B>,
        _cache: &(),
        dy: &SMatrix<T, N, B>,
        dx: Option<&mut SMatrix<T, N, B>>,
        grads: &mut Self,
        _scratch: &mut [T],
    ) {
        for j in 0..B {
            grads.s += dy.column(j).component_mul(&x.column(j));
        }
        if let Some(dx) = dx {
            for j in 0..B {
                let mut dx_j = dx.column_mut(j);
                dx_j += dy.column(j).component_mul(&self.s);
            }
        }
    }
}

nn::network! {
    /// A layer of your own, used twice.
    pub struct Scaled {
        fc: Dense<4>,
        scale: Scale<T, 4> -> [4],
    }
    forward(x: [3]) -> y {
        let y = tanh(scale(scale(fc(x))));
    }
}

nn::network! {
    /// LeNet-5 on 28×28 images, as in `tests/convnets.rs`.
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

nn::network! {
    /// The transformer example's network (`examples/transformer.rs`): one post-norm encoder
    /// block and a linear read-out.
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

nn::network! {
    /// The sequence example's network (`examples/sequence.rs`): a GRU read at its last step.
    pub struct NextValue {
        input: [16, 1],
        gru: Gru<32, last = true>,
        head: Dense<1>,
    }
}

nn::network! {
    /// Batch norm between two dense layers, and dropout.
    pub struct Normalized {
        input: [3],
        fc: Dense<4>,
        bn: BatchNorm1d<eps = 0.001>,
        drop: Dropout<0.5>,
        head: Dense<2>,
    }
}

nn::network! {
    /// Batch norm alone: its input's gradient is the three-term formula.
    pub struct BatchNormOnly {
        input: [4],
        bn: BatchNorm1d<eps = 0.001>,
    }
}

nn::network! {
    /// Group norm alone: its input's gradient uses each sample's group statistics.
    pub struct GroupNormOnly {
        input: [4, 3],
        gn: GroupNorm<2>,
    }
}

nn::network! {
    /// A 1-d convolution with stride, padding and dilation.
    pub struct Strided {
        input: [2, 9],
        conv: Conv1d<3, 3, stride = 2, padding = 1, dilation = 2>,
    }
}

/// The equation column of each indented line of an `EQUATIONS_TEXT` (the shape and remark
/// columns are separated from it by two spaces or more).
fn equations(text: &str) -> Vec<&str> {
    text.lines()
        .filter(|line| line.starts_with("  "))
        .map(|line| line.trim().split("  ").next().unwrap_or(""))
        .collect()
}

/// The columns (equation, shape, remark) of the line whose equation is `equation`.
fn columns<'a>(text: &'a str, equation: &str) -> Vec<&'a str> {
    let line = text
        .lines()
        .find(|line| line.trim().split("  ").next() == Some(equation))
        .unwrap_or_else(|| panic!("no line `{equation}` in\n{text}"));
    line.split("  ")
        .map(str::trim)
        .filter(|column| !column.is_empty())
        .collect()
}

#[track_caller]
fn assert_equations(text: &str, expected: &[&str]) {
    let found = equations(text);
    for equation in expected {
        assert!(found.contains(equation), "missing `{equation}` in\n{text}");
    }
}

/// The lines of the backward pass.
fn backward(text: &str) -> &str {
    &text[text.find("backward pass").expect("a backward section")..]
}

#[test]
fn lecture_neuron_yields_the_lecture_gradient() {
    let text = Neuron::<f64>::EQUATIONS_TEXT;
    assert_equations(
        text,
        &[
            "input",
            "unit = W_unit·input + b_unit",
            "unit_sigmoid = σ(unit)",
            "∂L/∂unit_sigmoid = d_unit_sigmoid",
            "∂L/∂unit = ∂L/∂unit_sigmoid ⊙ σ′(unit)",
            "∂L/∂W_unit = ∂L/∂unit·inputᵀ",
            "∂L/∂b_unit = ∂L/∂unit",
            "∂L/∂input = W_unitᵀ·∂L/∂unit",
            "σ′(t) = σ(t)·(1 − σ(t))",
        ],
    );
    assert_eq!(
        columns(text, "∂L/∂W_unit = ∂L/∂unit·inputᵀ"),
        ["∂L/∂W_unit = ∂L/∂unit·inputᵀ", "[1, 1]"]
    );
    let latex = Neuron::<f64>::EQUATIONS;
    assert!(latex.contains(
        "\\frac{\\partial L}{\\partial \\mathrm{unit}} &= \\frac{\\partial L}{\\partial \
         \\mathrm{unit\\_sigmoid}} \\odot \\sigma'(\\mathrm{unit}) &&\\in \\mathbb{R}^{1}"
    ));
    assert!(latex.contains(
        "\\frac{\\partial L}{\\partial W_{\\mathrm{unit}}} &= \\frac{\\partial L}{\\partial \
         \\mathrm{unit}} \\, \\mathrm{input}^{\\top} &&\\in \\mathbb{R}^{1 \\times 1}"
    ));

    // With the lecture's names, the whole backward pass reads as in the lecture.
    let lecture = LectureNeuron::<f64>::EQUATIONS_TEXT;
    let backward_equations = equations(backward(lecture));
    assert_eq!(
        backward_equations[..5],
        [
            "∂L/∂u = d_u",
            "∂L/∂z = ∂L/∂u ⊙ σ′(z)",
            "∂L/∂W_unit = ∂L/∂z·xᵀ",
            "∂L/∂b_unit = ∂L/∂z",
            "∂L/∂x = W_unitᵀ·∂L/∂z",
        ]
    );

    // Composed with L = ½(u − y)² + λw² (d_u = u − y; the regulariser adds 2λw), those lines
    // are the lecture's ∂L/∂w = (σ(wx+b) − y)·σ′(wx+b)·x + 2λw; and `backward` computes them.
    let (w, b, x, y, lambda) = (0.5, -0.2, 1.5, 1.0, 0.1);
    let sigma = |t: f64| 1.0 / (1.0 + (-t).exp());
    let sigma_prime = |t: f64| sigma(t) * (1.0 - sigma(t)); // the `where` line
    let z = w * x + b;
    let u = sigma(z);
    let d_u = u - y; // ∂L/∂u of ½(u − y)²
    let d_z = d_u * sigma_prime(z); // ∂L/∂z = ∂L/∂u ⊙ σ′(z)
    let d_w = d_z * x; // ∂L/∂W_unit = ∂L/∂z·xᵀ
    let lecture_formula = (sigma(w * x + b) - y) * sigma_prime(w * x + b) * x + 2.0 * lambda * w;
    assert!((d_w + 2.0 * lambda * w - lecture_formula).abs() < 1e-15);

    let mut net = LectureNeuron::<f64>::ZERO;
    net.unit.weight[0] = w;
    net.unit.bias[0] = b;
    let mut tape = LectureNeuronTape::ZERO;
    let output = *net.forward_train(&SMatrix::<f64, 1, 1>::new(x), &mut tape);
    let mut grads = LectureNeuronGrads::ZERO;
    net.backward(
        &mut tape,
        &SMatrix::<f64, 1, 1>::new(output[0] - y),
        &mut grads,
    );
    assert!((grads.unit.weight[0] + 2.0 * lambda * w - lecture_formula).abs() < 1e-15);
}

#[test]
fn a_fan_out_node_lists_one_term_per_child() {
    let text = ResMlp::<f32>::EQUATIONS_TEXT;
    assert_eq!(
        columns(text, "∂L/∂h = W_fc2ᵀ·∂L/∂fc2_out + ∂L/∂sum"),
        [
            "∂L/∂h = W_fc2ᵀ·∂L/∂fc2_out + ∂L/∂sum",
            "[32]",
            "sum over 2 children"
        ]
    );
    // Written once complete: after both children, in the backward order of the code.
    let order = equations(backward(text));
    let at = |prefix: &str| {
        order
            .iter()
            .position(|e| e.starts_with(prefix))
            .unwrap_or_else(|| panic!("no `{prefix}`"))
    };
    assert!(at("∂L/∂sum =") < at("∂L/∂fc2_out =") && at("∂L/∂fc2_out =") < at("∂L/∂h ="));
    assert!(at("∂L/∂h =") < at("∂L/∂fc1_out =") && at("∂L/∂fc1_out =") < at("∂L/∂x ="));

    // Two children in one node of TwoHeads, with a concatenation and a product among them.
    let text = TwoHeads::<f32>::EQUATIONS_TEXT;
    assert_equations(
        text,
        &[
            "∂L/∂ha = (∂L/∂c)[1:6] + ∂L/∂g ⊙ m",
            "∂L/∂m = ∂L/∂g ⊙ ha + (∂L/∂cat)[7:12]",
            "∂L/∂g = W_sharedᵀ·∂L/∂shared_out + ∂L/∂sum",
            "∂L/∂s2 = ∂L/∂sum + (∂L/∂cat)[1:6]",
        ],
    );
    // An output that feeds other nodes starts from the caller's gradient; a node used twice
    // by one child gets both terms.
    let text = OutputsFeedOn::<f32>::EQUATIONS_TEXT;
    assert_eq!(
        columns(text, "∂L/∂h = d_h + ∂L/∂product ⊙ b + (∂L/∂c)[1:3]"),
        [
            "∂L/∂h = d_h + ∂L/∂product ⊙ b + (∂L/∂c)[1:3]",
            "[3]",
            "given + 2 children"
        ]
    );
    assert_eq!(
        columns(text, "∂L/∂y = d_y + ∂L/∂product_2 ⊙ y + ∂L/∂product_2 ⊙ y"),
        [
            "∂L/∂y = d_y + ∂L/∂product_2 ⊙ y + ∂L/∂product_2 ⊙ y",
            "[2]",
            "given + 2 terms from 1 child"
        ]
    );
}

#[test]
fn a_shared_layer_gradient_lists_both_uses() {
    let text = TwoHeads::<f32>::EQUATIONS_TEXT;
    assert_equations(
        text,
        &[
            "shared_out = W_shared·g + b_shared",
            "shared_out_2 = W_shared·s1 + b_shared",
        ],
    );
    assert_eq!(
        columns(text, "shared_out_2 = W_shared·s1 + b_shared"),
        [
            "shared_out_2 = W_shared·s1 + b_shared",
            "[6]",
            "shared layer, use 2 of 2"
        ]
    );
    assert_eq!(
        columns(
            text,
            "∂L/∂W_shared = ∂L/∂shared_out·gᵀ + ∂L/∂shared_out_2·s1ᵀ"
        ),
        [
            "∂L/∂W_shared = ∂L/∂shared_out·gᵀ + ∂L/∂shared_out_2·s1ᵀ",
            "[6, 6]",
            "sum over 2 uses"
        ]
    );
    assert_equations(text, &["∂L/∂b_shared = ∂L/∂shared_out + ∂L/∂shared_out_2"]);
    // Each parameter gradient once, written after the last use the backward pass reaches.
    let order = equations(backward(text));
    let count = |prefix: &str| order.iter().filter(|e| e.starts_with(prefix)).count();
    for layer in ["fa", "fb", "mix", "shared", "head_y", "head_z"] {
        assert_eq!(count(&format!("∂L/∂W_{layer} =")), 1, "{layer}");
        assert_eq!(count(&format!("∂L/∂b_{layer} =")), 1, "{layer}");
    }
    let at = |prefix: &str| order.iter().position(|e| e.starts_with(prefix)).unwrap();
    assert!(at("∂L/∂shared_out =") < at("∂L/∂W_shared ="));

    let latex = TwoHeads::<f32>::EQUATIONS;
    assert!(latex.contains(
        "\\frac{\\partial L}{\\partial W_{\\mathrm{shared}}} &= \\frac{\\partial L}{\\partial \
         \\mathrm{shared\\_out}} \\, g^{\\top} + \\frac{\\partial L}{\\partial \
         \\mathrm{shared\\_out\\_2}} \\, \\mathrm{s1}^{\\top} &&\\in \\mathbb{R}^{6 \\times 6} \
         &&\\text{sum over 2 uses}"
    ));

    // A layer of your own: its Jacobians, one term per use.
    let text = Scaled::<f32>::EQUATIONS_TEXT;
    assert_equations(
        text,
        &[
            "scale_out = scale(fc_out; θ_scale)",
            "y = tanh(scale_out_2)",
            "∂L/∂scale_out = (∂scale_out_2/∂scale_out)ᵀ·∂L/∂scale_out_2",
            "∂L/∂θ_scale = (∂scale_out/∂θ_scale)ᵀ·∂L/∂scale_out + \
             (∂scale_out_2/∂θ_scale)ᵀ·∂L/∂scale_out_2",
        ],
    );
}

#[test]
fn concat_product_and_activations_render() {
    let text = TwoHeads::<f32>::EQUATIONS_TEXT;
    assert_equations(
        text,
        &[
            "a",
            "b",
            "ha = tanh(fa_out)",
            "hb = gelu(fb_out)",
            "c = [ha; hb]",
            "m = silu(mix_out)",
            "g = m ⊙ ha",
            "s1 = elu(shared_out, 0.7)",
            "s2 = leaky_relu(shared_out_2, 0.2)",
            "sum = s2 + g",
            "cat = [s2; m]",
            "z = log_softmax(head_z_out)",
            "∂L/∂z = d_z",
            "∂L/∂y = d_y",
            "∂L/∂head_z_out = ∂L/∂z − exp(z)·(𝟏ᵀ·∂L/∂z)",
            "∂L/∂hb = (∂L/∂c)[7:11]",
            "∂L/∂shared_out_2 = ∂L/∂s2 ⊙ leaky_relu′(shared_out_2, 0.2)",
            "∂L/∂shared_out = ∂L/∂s1 ⊙ elu′(shared_out, 0.7)",
            "∂L/∂fb_out = ∂L/∂hb ⊙ gelu′(fb_out)",
            "tanh′(t) = 1 − tanh²(t)",
            "silu′(t) = σ(t)·(1 + t·(1 − σ(t)))",
            "elu′(t, 0.7) = 1 if t > 0, else 0.7·eᵗ",
            "leaky_relu′(t, 0.2) = 1 if t > 0, else 0.2",
        ],
    );
    assert_eq!(columns(text, "c = [ha; hb]"), ["c = [ha; hb]", "[11]"]);
    assert_eq!(columns(text, "a"), ["a", "[4]", "input"]);
    assert_eq!(
        columns(text, "∂L/∂a = W_faᵀ·∂L/∂fa_out"),
        ["∂L/∂a = W_faᵀ·∂L/∂fa_out", "[4]", "returned"]
    );
    let latex = TwoHeads::<f32>::EQUATIONS;
    for expected in [
        "c &= \\begin{bmatrix} \\mathrm{ha} \\\\ \\mathrm{hb} \\end{bmatrix} &&\\in \\mathbb{R}^{11}",
        "g &= m \\odot \\mathrm{ha} &&\\in \\mathbb{R}^{6}",
        "\\left(\\frac{\\partial L}{\\partial c}\\right)_{1:6}",
        "\\mathrm{leaky\\_relu}'(\\mathrm{shared\\_out\\_2}, 0.2)",
        "\\frac{\\partial L}{\\partial z} - \\exp(z) \\, \\left(\\mathbf{1}^{\\top} \\, \
         \\frac{\\partial L}{\\partial z}\\right)",
    ] {
        assert!(latex.contains(expected), "missing `{expected}` in\n{latex}");
    }

    let text = Activations::<f32>::EQUATIONS_TEXT;
    assert_equations(
        text,
        &[
            "a1 = σ(l1_out)",
            "a2 = softplus(l2_out)",
            "identity_out = identity(l3_out)",
            "tanh_out = tanh(a2)",
            "a3 = identity_out ⊙ tanh_out",
            "a4 = swish(l4_out)",
            "a5 = elu(l5_out, 1)",
            "y = softmax(l6_out)",
            "∂L/∂l6_out = y ⊙ (∂L/∂y − (yᵀ·∂L/∂y)·𝟏)",
            "∂L/∂l3_out = ∂L/∂identity_out",
            "∂L/∂a2 = W_l3ᵀ·∂L/∂l3_out + ∂L/∂tanh_out ⊙ tanh′(a2)",
            "σ′(t) = σ(t)·(1 − σ(t))",
            "softplus′(t) = σ(t)",
            "swish′(t) = σ(t)·(1 + t·(1 − σ(t)))",
            "elu′(t, 1) = 1 if t > 0, else 1·eᵗ",
        ],
    );

    let text = Thresholds::<f32>::EQUATIONS_TEXT;
    assert_equations(
        text,
        &[
            "∂L/∂fc_out = ∂L/∂sign_ste_out ⊙ sign_ste′(fc_out)",
            "sign_ste′(t) = 1 if |t| ≤ 1, else 0 (straight-through surrogate, not the \
             derivative of sign)",
            "heaviside_ste′(t) = ½ if |t| ≤ 1, else 0 (straight-through surrogate, not the \
             derivative of the step)",
            "relu′(t) = 1 if t > 0, else 0",
            "sign′(t) = 0 (almost everywhere; taken as 0 at 0): no gradient flows",
            "heaviside′(t) = 0 (almost everywhere; taken as 0 at 0): no gradient flows",
        ],
    );
}

/// The nodes (name, in execution order) and edges (parent, child) of a network, read from its
/// summary and written out by hand, checked against its DOT and Mermaid texts.
fn check_diagrams(
    dot: &str,
    mermaid: &str,
    nodes: &[&str],
    edges: &[(&str, &str)],
    shared: &[(&str, &str)],
) {
    for node in nodes {
        assert!(
            dot.contains(&format!("\n  \"{node}\" [label=\"{node}\\n")),
            "node `{node}` missing from\n{dot}"
        );
        let declared = mermaid.lines().any(|line| {
            line.strip_prefix(&format!("  {node}"))
                .is_some_and(|rest| rest.contains(&format!("\"{node}<br/>")))
        });
        assert!(declared, "node `{node}` missing from\n{mermaid}");
    }
    let dot_edges: Vec<&str> = dot
        .lines()
        .filter(|line| line.contains(" -> ") && !line.contains("style=dashed"))
        .collect();
    let mermaid_edges: Vec<&str> = mermaid.lines().filter(|l| l.contains(" -->")).collect();
    assert_eq!(dot_edges.len(), edges.len(), "{dot}");
    assert_eq!(mermaid_edges.len(), edges.len(), "{mermaid}");
    let dashed = |text: &str, marker: &str| text.lines().filter(|l| l.contains(marker)).count();
    assert_eq!(dashed(dot, "style=dashed"), shared.len(), "{dot}");
    assert_eq!(dashed(mermaid, " -.-|"), shared.len(), "{mermaid}");
    for (edge, (parent, child)) in dot_edges.iter().zip(edges) {
        assert!(
            edge.starts_with(&format!("  \"{parent}\" -> \"{child}\"")),
            "expected {parent} -> {child}, found {edge}"
        );
    }
    for (edge, (parent, child)) in mermaid_edges.iter().zip(edges) {
        assert!(
            edge.starts_with(&format!("  {parent} -->")) && edge.ends_with(&format!(" {child}")),
            "expected {parent} --> {child}, found {edge}"
        );
    }
    for (first, second) in shared {
        assert!(
            dot.contains(&format!("  \"{first}\" -> \"{second}\" [style=dashed")),
            "{dot}"
        );
        assert!(
            mermaid.contains(&format!("  {first} -.-|")) && mermaid.contains("classDef shared"),
            "{mermaid}"
        );
        for node in [first, second] {
            assert!(
                mermaid.lines().any(|l| l.starts_with("  class ")
                    && l.ends_with(" shared")
                    && l.contains(node)),
                "{mermaid}"
            );
        }
    }
}

#[test]
fn diagrams_name_every_node_and_edge_and_mark_shared_layers() {
    let nodes = |rows: &[nn::SummaryRow]| -> Vec<&'static str> {
        rows.iter().map(|row| row.node).collect()
    };
    check_diagrams(
        ResMlp::<f32>::DOT,
        ResMlp::<f32>::MERMAID,
        &nodes(&ResMlp::<f32>::summary().rows),
        &[
            ("x", "fc1_out"),
            ("fc1_out", "h"),
            ("h", "fc2_out"),
            ("fc2_out", "r"),
            ("h", "sum"),
            ("r", "sum"),
            ("sum", "head_out"),
            ("head_out", "y"),
        ],
        &[],
    );
    check_diagrams(
        TwoHeads::<f32>::DOT,
        TwoHeads::<f32>::MERMAID,
        &nodes(&TwoHeads::<f32>::summary().rows),
        &[
            ("a", "fa_out"),
            ("fa_out", "ha"),
            ("b", "fb_out"),
            ("fb_out", "hb"),
            ("ha", "c"),
            ("hb", "c"),
            ("c", "mix_out"),
            ("mix_out", "m"),
            ("m", "g"),
            ("ha", "g"),
            ("g", "shared_out"),
            ("shared_out", "s1"),
            ("s1", "shared_out_2"),
            ("shared_out_2", "s2"),
            ("s2", "sum"),
            ("g", "sum"),
            ("sum", "y"),
            ("s2", "cat"),
            ("m", "cat"),
            ("cat", "head_z_out"),
            ("head_z_out", "z"),
        ],
        &[("shared_out", "shared_out_2")],
    );
    let dot = TwoHeads::<f32>::DOT;
    assert!(dot.contains("\"ha\" -> \"c\" [label=\"rows 1:6\"]"));
    assert!(dot.contains("label=\"shared_out\\nshared: Dense(6 → 6)\\n[6]\\nshared, use 1 of 2\""));
    assert!(dot.contains("\"z\" [label=\"z\\nlog_softmax\\n[3]\\noutput\", peripheries=2]"));
    let mermaid = TwoHeads::<f32>::MERMAID;
    assert!(mermaid.contains("  ha -->|\"rows 1:6\"| c\n"));
    assert!(mermaid.contains("  class y,z output\n"));
    check_diagrams(
        Scaled::<f32>::DOT,
        Scaled::<f32>::MERMAID,
        &nodes(&Scaled::<f32>::summary().rows),
        &[
            ("x", "fc_out"),
            ("fc_out", "scale_out"),
            ("scale_out", "scale_out_2"),
            ("scale_out_2", "y"),
        ],
        &[("scale_out", "scale_out_2")],
    );
}

#[test]
fn every_diagram_parses_as_dot() {
    for dot in [
        Neuron::<f32>::DOT,
        LectureNeuron::<f32>::DOT,
        ResMlp::<f32>::DOT,
        TwoHeads::<f32>::DOT,
        Activations::<f32>::DOT,
        Thresholds::<f32>::DOT,
        OutputsFeedOn::<f32>::DOT,
        Scaled::<f32>::DOT,
        LeNet::<f32>::DOT,
        Palindromes::<f32>::DOT,
        NextValue::<f32>::DOT,
        Normalized::<f32>::DOT,
    ] {
        let mut parser = layout::gv::DotParser::new(dot);
        assert!(parser.process().is_ok(), "{dot}");
    }
}

#[test]
fn the_documented_summary_is_what_summary_prints() {
    let cases = [
        (
            Neuron::<f32>::SUMMARY_TEXT,
            Neuron::<f32>::summary().to_string(),
        ),
        (
            ResMlp::<f32>::SUMMARY_TEXT,
            ResMlp::<f32>::summary().to_string(),
        ),
        (
            TwoHeads::<f32>::SUMMARY_TEXT,
            TwoHeads::<f32>::summary().to_string(),
        ),
        (
            Activations::<f32>::SUMMARY_TEXT,
            Activations::<f32>::summary().to_string(),
        ),
        (
            OutputsFeedOn::<f32>::SUMMARY_TEXT,
            OutputsFeedOn::<f32>::summary().to_string(),
        ),
        (
            LeNet::<f32>::SUMMARY_TEXT,
            LeNet::<f32>::summary().to_string(),
        ),
        (
            Palindromes::<f32>::SUMMARY_TEXT,
            Palindromes::<f32>::summary().to_string(),
        ),
        (
            NextValue::<f32>::SUMMARY_TEXT,
            NextValue::<f32>::summary().to_string(),
        ),
    ];
    for (documented, printed) in cases {
        assert_eq!(documented, printed);
    }
    // A layer of your own: its parameter count is known to its type only, so the macro
    // writes `?` (and no bytes).
    let printed = Scaled::<f32>::summary().to_string();
    let expected: Vec<String> = printed
        .lines()
        .map(|line| {
            if line.contains("Scale<T,4>") && !line.contains("shared") {
                format!("{}?", line.strip_suffix('4').expect("4 parameters"))
            } else if line == "Trainable params: 20 (80 B)" {
                "Trainable params: 16 + ? (layers of your own: see PARAM_COUNT)".to_string()
            } else {
                line.to_string()
            }
        })
        .collect();
    assert_eq!(Scaled::<f32>::SUMMARY_TEXT, expected.join("\n"));
}

#[test]
fn the_readme_and_docs_show_the_current_derivation() {
    let readme = include_str!("../README.md");
    let regenerate = "regenerate with `cargo run --example explain` (and `-- --markdown`)";
    assert!(
        readme.contains(ResMlp::<f32>::EQUATIONS),
        "the README's equations of ResMlp are stale: {regenerate}"
    );
    assert!(
        readme.contains(&format!("```mermaid\n{}```", ResMlp::<f32>::MERMAID)),
        "the README's Mermaid diagram of ResMlp is stale: {regenerate}"
    );
    // The README's lecture neuron: the lines it quotes are the derived ones.
    let lecture = include_str!("../README.md")
        .split("### The lecture's neuron")
        .nth(1)
        .expect("the lecture's neuron in the README");
    let quoted = lecture
        .split("```text\n")
        .nth(1)
        .and_then(|block| block.split("```").next())
        .expect("its equations");
    let derived = equations(LectureNeuron::<f32>::EQUATIONS_TEXT);
    for line in quoted.lines() {
        assert!(
            derived.contains(&line),
            "the README's `{line}` is not derived"
        );
    }
    // The README's lines of LeNet and of a GRU: derived ones.
    let layers = readme
        .split("### Each layer's own equations")
        .nth(1)
        .and_then(|section| section.split("```text\n").nth(1))
        .and_then(|block| block.split("```").next())
        .expect("the README's equations of built-in layers");
    let derived: Vec<&str> = equations(LeNet::<f32>::EQUATIONS_TEXT)
        .into_iter()
        .chain(equations(NextValue::<f32>::EQUATIONS_TEXT))
        .collect();
    for line in layers.lines() {
        assert!(
            derived.contains(&line),
            "the README's `{line}` is not derived"
        );
    }
    assert_eq!(
        include_str!("../docs/explain-resmlp.dot"),
        ResMlp::<f32>::DOT,
        "docs/explain-resmlp.dot is stale: {regenerate}"
    );
    assert_eq!(
        include_str!("../docs/explain-resmlp.mmd"),
        ResMlp::<f32>::MERMAID,
        "docs/explain-resmlp.mmd is stale: {regenerate}"
    );
}

#[test]
fn lenets_layers_give_their_own_equations() {
    let text = LeNet::<f32>::EQUATIONS_TEXT;
    assert_equations(
        text,
        &[
            "conv1 = W_conv1 ⋆ input + b_conv1",
            "pool1 = maxpool(conv1_relu)",
            "pool2_flat = flatten(pool2)",
            "fc1 = W_fc1·pool2_flat + b_fc1",
            // The weights' gradient is the input correlated with the output's gradient.
            "∂L/∂W_conv2 = corr(pool1, ∂L/∂conv2)",
            "∂L/∂b_conv2 = Σ_pos ∂L/∂conv2",
            "∂L/∂pool1 = W_conv2 ⋆ᵀ ∂L/∂conv2",
            // Max pooling routes each gradient to its window's arg-max.
            "∂L/∂conv1_relu = to_argmax(conv1_relu, ∂L/∂pool1)",
            "∂L/∂pool2 = ∂L/∂pool2_flat",
        ],
    );
    assert_eq!(
        columns(text, "conv1 = W_conv1 ⋆ input + b_conv1"),
        [
            "conv1 = W_conv1 ⋆ input + b_conv1",
            "[6, 28, 28]",
            "s = 1×1, p = 2×2, d = 1×1"
        ]
    );
    assert_eq!(
        columns(text, "∂L/∂W_conv1 = corr(input, ∂L/∂conv1)"),
        ["∂L/∂W_conv1 = corr(input, ∂L/∂conv1)", "[6, 1, 5, 5]"]
    );
    for definition in [
        "(W ⋆ x)[o, i, j] = Σ_{c,u,v} W[o, c, u, v]·x[c, s·i + d·u − p, s·j + d·v − p]",
        "corr(x, g)[o, c, u, v] = Σ_{i,j} g[o, i, j]·x[c, s·i + d·u − p, s·j + d·v − p]",
        "to_argmax(x, g)[c, m] = Σ g[c, i, j] over the windows (i, j) whose maximum is x[c, m]",
    ] {
        assert!(
            text.contains(definition),
            "missing `{definition}` in\n{text}"
        );
    }
    let latex = LeNet::<f32>::EQUATIONS;
    assert!(latex.contains(
        "\\frac{\\partial L}{\\partial W_{\\mathrm{conv1}}} &= \\operatorname{corr}(\\mathrm{input}, \
         \\frac{\\partial L}{\\partial \\mathrm{conv1}}) &&\\in \\mathbb{R}^{6 \\times 1 \\times 5 \\times 5}"
    ));
}

#[test]
fn the_transformers_layers_give_their_own_equations() {
    let text = Palindromes::<f32>::EQUATIONS_TEXT;
    assert_equations(
        text,
        &[
            "embed_out = onehot(tokens)·W_embed",
            "x = embed_out + P_positions",
            "[Q K V] = x·W_in_attentionᵀ + 𝟏·b_in_attentionᵀ",
            "A_h = (Q_h·K_hᵀ)/√8",
            "P_h = softmax(A_h)",
            "attention_out = O·W_out_attentionᵀ + 𝟏·b_out_attentionᵀ",
            "x̂_norm1 = (sum − μ_norm1)/√(σ²_norm1 + ε)",
            "a = γ_norm1 ⊙ x̂_norm1 + β_norm1",
            // A dense layer on a sequence acts on each row (position).
            "ff1_out = a·W_ff1ᵀ + 𝟏·b_ff1ᵀ",
            "∂L/∂W_ff1 = (∂L/∂ff1_out)ᵀ·a",
            "∂L/∂relu_out = ∂L/∂ff2_out·W_ff2",
            // Softmax's vector-Jacobian product, row by row.
            "∂A_h = P_h ⊙ (∂P_h − rowsum(P_h ⊙ ∂P_h)·𝟏ᵀ)",
            "∂L/∂W_in_attention = ∂[Q K V]ᵀ·x",
            "∂L/∂x = ∂[Q K V]·W_in_attention + ∂L/∂sum",
            // Layer norm's three-term gradient.
            "g_norm1 = γ_norm1 ⊙ ∂L/∂a",
            "∂L/∂sum = (g_norm1 − row_mean(g_norm1) − x̂_norm1 ⊙ row_mean(g_norm1 ⊙ x̂_norm1))/\
             √(σ²_norm1 + ε)",
            "∂L/∂γ_norm1 = Σ_pos ∂L/∂a ⊙ x̂_norm1",
            // Token ids have no gradient; the table gets the rows of the tokens seen.
            "∂L/∂W_embed = onehot(tokens)ᵀ·∂L/∂embed_out",
            "∂L/∂tokens = 0",
        ],
    );
    assert_eq!(
        columns(text, "A_h = (Q_h·K_hᵀ)/√8"),
        ["A_h = (Q_h·K_hᵀ)/√8", "[8, 8]", "for each head h = 1…2"]
    );
}

#[test]
fn a_gru_gives_one_step_of_backpropagation_through_time() {
    let text = NextValue::<f32>::EQUATIONS_TEXT;
    assert_equations(
        text,
        &[
            "gi_t = W_ih_gru·input[t] + b_ih_gru",
            "gh_t = W_hh_gru·h_{t−1} + b_hh_gru",
            "r_t = σ(gi_t[r] + gh_t[r])",
            "z_t = σ(gi_t[z] + gh_t[z])",
            "n_t = tanh(gi_t[n] + r_t ⊙ gh_t[n])",
            "h_t = (1 − z_t) ⊙ n_t + z_t ⊙ h_{t−1}",
            "gru = h_16",
            "∂h_t = ∂h′_t",
            "∂n_t = ∂h_t ⊙ (1 − z_t)",
            "∂z_t = ∂h_t ⊙ (h_{t−1} − n_t)",
            "∂gi_t[n] = ∂n_t ⊙ (1 − n_t²)",
            "∂gi_t[r] = ∂gi_t[n] ⊙ gh_t[n] ⊙ r_t ⊙ (1 − r_t)",
            "∂gi_t[z] = ∂z_t ⊙ z_t ⊙ (1 − z_t)",
            "∂gh_t = [∂gi_t[r]; ∂gi_t[z]; r_t ⊙ ∂gi_t[n]]",
            "∂h′_{t−1} = ∂h_t ⊙ z_t + W_hh_gruᵀ·∂gh_t",
            "∂L/∂W_ih_gru = Σ_t ∂gi_t·input[t]ᵀ",
            "∂L/∂W_hh_gru = Σ_t ∂gh_t·h_{t−1}ᵀ",
            "∂L/∂input = (W_ih_gruᵀ·∂gi_t)_{t=1…16}",
        ],
    );
    assert_eq!(
        columns(text, "gi_t = W_ih_gru·input[t] + b_ih_gru"),
        [
            "gi_t = W_ih_gru·input[t] + b_ih_gru",
            "[96]",
            "gru: for t = 1…16, from h_0 = 0"
        ]
    );
    assert_eq!(
        columns(text, "∂h_t = ∂h′_t"),
        [
            "∂h_t = ∂h′_t",
            "[32]",
            "gru, back through time: t = 16…1, from ∂h′_16 = ∂L/∂gru"
        ]
    );
    // The step runs after ∂L/∂gru, and the parameter gradients after the step.
    let order = equations(backward(text));
    let at = |e: &str| order.iter().position(|&x| x == e).unwrap();
    assert!(at("∂L/∂gru = W_headᵀ·∂L/∂head") < at("∂h_t = ∂h′_t"));
    assert!(
        at("∂h′_{t−1} = ∂h_t ⊙ z_t + W_hh_gruᵀ·∂gh_t") < at("∂L/∂W_ih_gru = Σ_t ∂gi_t·input[t]ᵀ")
    );
}

#[test]
fn no_built_in_layer_is_shown_as_a_layer_of_your_own() {
    for text in [
        LeNet::<f32>::EQUATIONS_TEXT,
        Palindromes::<f32>::EQUATIONS_TEXT,
        NextValue::<f32>::EQUATIONS_TEXT,
        Normalized::<f32>::EQUATIONS_TEXT,
        BatchNormOnly::<f32>::EQUATIONS_TEXT,
        GroupNormOnly::<f32>::EQUATIONS_TEXT,
        Strided::<f32>::EQUATIONS_TEXT,
    ] {
        assert!(!text.contains("of your own"), "{text}");
        assert!(!text.contains('θ'), "{text}");
        assert!(!text.contains("∂gru/∂"), "{text}");
    }
    // A layer of your own still is.
    assert!(Scaled::<f32>::EQUATIONS_TEXT.contains("of your own"));
}

/// Batch norm's equations, `∂L/∂x = (γ/√(σ² + ε)) ⊙ (g − batch_mean(g) − x̂ ⊙
/// batch_mean(g ⊙ x̂))` and `∂L/∂γ = Σ g ⊙ x̂`, computed as written from a training pass, are
/// what `backward` computes.
#[test]
fn batch_norms_three_term_gradient_is_what_backward_computes() {
    assert_equations(
        Normalized::<f64>::EQUATIONS_TEXT,
        &[
            "x̂_bn = (fc − μ_bn)/√(σ²_bn + ε)",
            "bn = γ_bn ⊙ x̂_bn + β_bn",
            "drop = m_drop ⊙ bn",
            "∂L/∂bn = m_drop ⊙ ∂L/∂drop",
            "∂L/∂fc = (γ_bn/√(σ²_bn + ε)) ⊙ (∂L/∂bn − batch_mean(∂L/∂bn) − x̂_bn ⊙ \
             batch_mean(∂L/∂bn ⊙ x̂_bn))",
            "∂L/∂γ_bn = ∂L/∂bn ⊙ x̂_bn",
        ],
    );
    assert_equations(
        BatchNormOnly::<f64>::EQUATIONS_TEXT,
        &[
            "∂L/∂input = (γ_bn/√(σ²_bn + ε)) ⊙ (∂L/∂bn − batch_mean(∂L/∂bn) − x̂_bn ⊙ \
             batch_mean(∂L/∂bn ⊙ x̂_bn))",
            "∂L/∂γ_bn = ∂L/∂bn ⊙ x̂_bn",
            "∂L/∂β_bn = ∂L/∂bn",
        ],
    );

    const B: usize = 5;
    let mut net = BatchNormOnly::<f64>::ZERO;
    randomize(&mut net, 7, 0.8);
    let x = random_matrix::<4, B>(8, 1.0);
    let mut tape = BatchNormOnlyTape::<f64, B>::ZERO;
    net.forward_train(&x, &mut tape);
    let g = random_matrix::<4, B>(9, 1.0); // ∂L/∂bn
    let mut grads = BatchNormOnlyGrads::ZERO;
    let d_x = net.backward(&mut tape, &g, &mut grads);

    let eps = 0.001;
    for c in 0..4 {
        let (x_c, g_c) = (x.row(c).transpose(), g.row(c).transpose());
        // μ and the biased σ² of the channel over the batch; batch_mean likewise.
        let mean = x_c.mean();
        let variance = x_c.map(|v| (v - mean).powi(2)).mean();
        let std = (variance + eps).sqrt();
        let x_hat = x_c.map(|v| (v - mean) / std);
        let gamma = net.bn.weight[c];
        let three_terms = (g_c.add_scalar(-g_c.mean()) - x_hat * g_c.component_mul(&x_hat).mean())
            * (gamma / std);
        let by_backward = d_x.row(c).transpose();
        assert!((three_terms - by_backward).amax() < 1e-12, "channel {c}");
        assert!((grads.bn.weight[c] - g_c.component_mul(&x_hat).sum()).abs() < 1e-12);
        assert!((grads.bn.bias[c] - g_c.sum()).abs() < 1e-12);
    }
}

/// Group norm's equations, `g = γ ⊙ ∂L/∂y` and `∂L/∂x = (g − group_mean(g) − x̂ ⊙
/// group_mean(g ⊙ x̂))/√(σ² + ε)`, computed as written, are what `backward` computes; and its
/// gradients through the generated network match finite differences.
#[test]
fn group_norms_gradient_is_what_backward_computes() {
    let text = GroupNormOnly::<f64>::EQUATIONS_TEXT;
    assert_equations(
        text,
        &[
            "x̂_gn = (input − μ_gn)/√(σ²_gn + ε)",
            "gn = γ_gn ⊙ x̂_gn + β_gn",
            "g_gn = γ_gn ⊙ ∂L/∂gn",
            "∂L/∂γ_gn = Σ_pos ∂L/∂gn ⊙ x̂_gn",
            "∂L/∂input = (g_gn − group_mean(g_gn) − x̂_gn ⊙ group_mean(g_gn ⊙ x̂_gn))/\
             √(σ²_gn + ε)",
        ],
    );
    assert_eq!(
        columns(text, "x̂_gn = (input − μ_gn)/√(σ²_gn + ε)")[2],
        "gn: μ and σ² of each group of 2 channels over their positions, in each sample; ε = 0.00001"
    );

    const B: usize = 2;
    let mut net = GroupNormOnly::<f64>::ZERO;
    randomize(&mut net, 11, 0.8);
    let x = random_matrix::<12, B>(12, 1.0);
    let mut tape = GroupNormOnlyTape::<f64, B>::ZERO;
    net.forward_train(&x, &mut tape);
    let dy = random_matrix::<12, B>(13, 1.0);
    let mut grads = GroupNormOnlyGrads::ZERO;
    let d_x = net.backward(&mut tape, &dy, &mut grads);
    for j in 0..B {
        // Group k holds channels 2k and 2k + 1, values 6k..6k + 6 of the sample.
        for k in 0..2 {
            let values = 6 * k..6 * k + 6;
            let x_g: Vec<f64> = values.clone().map(|i| x[(i, j)]).collect();
            let mean = x_g.iter().sum::<f64>() / 6.0;
            let variance = x_g.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / 6.0;
            let std = (variance + 1e-5).sqrt();
            let x_hat: Vec<f64> = x_g.iter().map(|v| (v - mean) / std).collect();
            let g: Vec<f64> = values
                .clone()
                .map(|i| net.gn.weight[i / 3] * dy[(i, j)])
                .collect();
            let group_mean = |v: &dyn Fn(usize) -> f64| (0..6).map(v).sum::<f64>() / 6.0;
            let (mean_g, mean_gx) = (group_mean(&|i| g[i]), group_mean(&|i| g[i] * x_hat[i]));
            for (i, value) in values.enumerate() {
                let expected = (g[i] - mean_g - x_hat[i] * mean_gx) / std;
                assert!(
                    (expected - d_x[(value, j)]).abs() < 1e-12,
                    "x[{value}] of {j}"
                );
            }
        }
    }
    let report = nn::gradcheck::check_network(&mut net, &x);
    assert!(report.max_rel_error < 1e-7, "{report:?}");
}

/// A convolution's equations with their definitions, `∂L/∂W = corr(x, g)` and
/// `∂L/∂x = W ⋆ᵀ g` with `corr(x, g)[o, c, u] = Σ_i g[o, i]·x[c, s·i + d·u − p]`, computed
/// as written, are what `backward` computes (weights stored as PyTorch's `[o, c, u]`
/// flattened to columns `c·K + u`).
#[test]
fn a_convolutions_weight_gradient_is_the_correlation_of_its_input_and_output_gradient() {
    let text = Strided::<f64>::EQUATIONS_TEXT;
    assert_equations(
        text,
        &[
            "conv = W_conv ⋆ input + b_conv",
            "∂L/∂W_conv = corr(input, ∂L/∂conv)",
            "∂L/∂b_conv = Σ_pos ∂L/∂conv",
            "∂L/∂input = W_conv ⋆ᵀ ∂L/∂conv",
        ],
    );
    assert_eq!(
        columns(text, "conv = W_conv ⋆ input + b_conv")[1..],
        ["[3, 4]", "s = 2, p = 1, d = 2; output"]
    );
    for definition in [
        "(W ⋆ x)[o, i] = Σ_{c,u} W[o, c, u]·x[c, s·i + d·u − p]",
        "(W ⋆ᵀ g)[c, m] = Σ W[o, c, u]·g[o, i] over every (o, i, u) with s·i + d·u − p = m",
        "corr(x, g)[o, c, u] = Σ_i g[o, i]·x[c, s·i + d·u − p]",
    ] {
        assert!(
            text.contains(definition),
            "missing `{definition}` in\n{text}"
        );
    }

    let (channels, length, out, out_length, kernel) = (2, 9, 3, 4, 3);
    let (s, p, d) = (2, 1, 2);
    let mut net = Strided::<f64>::ZERO;
    randomize(&mut net, 3, 0.8);
    let x = random_matrix::<18, 1>(4, 1.0);
    let g = random_matrix::<12, 1>(5, 1.0); // ∂L/∂conv
    let mut tape = StridedTape::<f64, 1>::ZERO;
    net.forward_train(&x, &mut tape);
    let mut grads = StridedGrads::ZERO;
    let d_x = net.backward(&mut tape, &g, &mut grads);

    // The input position that output i and kernel tap u meet at, if inside the input.
    let position = |i: usize, u: usize| (s * i + d * u).checked_sub(p).filter(|&m| m < length);
    let x_at = |c: usize, m: usize| x[c * length + m];
    let g_at = |o: usize, i: usize| g[o * out_length + i];
    let w_at = |o: usize, c: usize, u: usize| net.conv.weight[(o, c * kernel + u)];
    for o in 0..out {
        for c in 0..channels {
            for u in 0..kernel {
                let corr: f64 = (0..out_length)
                    .filter_map(|i| position(i, u).map(|m| g_at(o, i) * x_at(c, m)))
                    .sum();
                let by_backward = grads.conv.weight[(o, c * kernel + u)];
                assert!((corr - by_backward).abs() < 1e-12, "W[{o}, {c}, {u}]");
            }
        }
    }
    for c in 0..channels {
        for m in 0..length {
            let mut transposed = 0.0;
            for o in 0..out {
                for i in 0..out_length {
                    for u in 0..kernel {
                        if position(i, u) == Some(m) {
                            transposed += w_at(o, c, u) * g_at(o, i);
                        }
                    }
                }
            }
            assert!(
                (transposed - d_x[c * length + m]).abs() < 1e-12,
                "x[{c}, {m}]"
            );
        }
    }
}

/// The LaTeX of every network is well formed: its braces and `\left`/`\right` pairs balance.
#[test]
fn every_latex_derivation_balances_its_brackets() {
    for latex in [
        Neuron::<f32>::EQUATIONS,
        ResMlp::<f32>::EQUATIONS,
        TwoHeads::<f32>::EQUATIONS,
        Activations::<f32>::EQUATIONS,
        Thresholds::<f32>::EQUATIONS,
        OutputsFeedOn::<f32>::EQUATIONS,
        Scaled::<f32>::EQUATIONS,
        LeNet::<f32>::EQUATIONS,
        Palindromes::<f32>::EQUATIONS,
        NextValue::<f32>::EQUATIONS,
        Normalized::<f32>::EQUATIONS,
        BatchNormOnly::<f32>::EQUATIONS,
        GroupNormOnly::<f32>::EQUATIONS,
        Strided::<f32>::EQUATIONS,
    ] {
        let mut depth = 0i32;
        let mut escaped = false;
        for c in latex.chars() {
            match c {
                '\\' => escaped = !escaped,
                '{' if !escaped => depth += 1,
                '}' if !escaped => depth -= 1,
                _ => escaped = false,
            }
            if c != '\\' {
                escaped = false;
            }
            assert!(depth >= 0, "{latex}");
        }
        assert_eq!(depth, 0, "{latex}");
        assert_eq!(
            latex.matches("\\left").count(),
            latex.matches("\\right").count(),
            "{latex}"
        );
        assert_eq!(
            latex.matches("\\begin{").count(),
            latex.matches("\\end{").count(),
            "{latex}"
        );
    }
}
