//! The derivation: the forward and backward passes as equations, node by node in the order
//! the generated code runs them, rendered as Unicode text and as Markdown with LaTeX.

use super::graph::Graph;
use crate::builtins::ActivationInfo;
use crate::math::{Definition, Equation, Func, Math, ParamName, join, tex_function, tex_shape};
use crate::model::{BinOp, LayerKind, Model, NodeId, Op};
use crate::shape::Shape;
use std::fmt::Write as _;

/// An activation as a function of the equations: `σ`, `leaky_relu(·, 0.2)`.
fn activation(info: &ActivationInfo, params: &[f64]) -> Func {
    Func::with_params(info.func, params.to_vec())
}

/// The forward and backward passes as equations, in the order the code runs them.
pub struct Derivation {
    name: String,
    /// The outputs' names, whose gradients the caller gives.
    outputs: Vec<String>,
    forward: Vec<Equation>,
    backward: Vec<Equation>,
    definitions: Vec<Definition>,
}

impl Derivation {
    /// Derives the equations of the checked model.
    pub fn new(model: &Model) -> Self {
        let graph = Graph::new(model);
        let forward = (0..model.nodes.len())
            .flat_map(|id| forward_lines(&graph, id))
            .collect();
        let mut backward = Vec::new();
        for id in (0..model.nodes.len()).rev() {
            backward.push(gradient_line(&graph, id));
            if let Some((builtin, at)) = graph.builtin_use(id) {
                backward.extend(builtin.backward_equations(&at).steps);
            }
            backward.extend(parameter_lines(&graph, id));
        }
        Derivation {
            name: model.name.to_string(),
            outputs: model.outputs.iter().map(|&id| graph.name(id)).collect(),
            forward,
            backward,
            definitions: definitions(&graph),
        }
    }

    /// Unicode text, aligned in columns: equation, shape, remark.
    pub fn text(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "{}: forward pass, in execution order.", self.name);
        wrap(
            &mut out,
            "Shapes are per sample; a batch of B samples holds one sample per column, and \
             every equation applies column by column.",
        );
        text_lines(&mut out, &self.forward);
        let outputs = &self.outputs;
        let _ = writeln!(out, "\n{}: backward pass, in reverse order.", self.name);
        wrap(
            &mut out,
            &format!(
                "From {}, given by the caller. A node's gradient has one term per child; a \
                 layer's parameter gradients have one term per use, summed over the batch's \
                 columns. · is the matrix product, ⊙ the element-wise product.",
                join(outputs, " and ", |o| format!("d_{o} = ∂L/∂{o}")),
            ),
        );
        text_lines(&mut out, &self.backward);
        if !self.definitions.is_empty() {
            out.push_str("\nwhere\n");
            for definition in &self.definitions {
                let _ = writeln!(out, "  {}", definition.text);
            }
        }
        out.trim_end().to_string()
    }

    /// Markdown, with the equations in LaTeX `math` blocks.
    pub fn markdown(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "### `{}`: forward pass\n\nNodes in execution order. Shapes are per sample; a \
             batch of `B` samples holds one sample per column, and every equation applies \
             column by column.\n",
            self.name
        );
        tex_block(&mut out, &self.forward);
        let outputs = &self.outputs;
        let _ = writeln!(
            out,
            "\n### `{}`: backward pass\n\nIn reverse order, from the upstream {} that the \
             caller passes to `backward` (the loss is not part of the network). A node's \
             gradient has one term per child; a layer's parameter gradients have one term per \
             use, summed over the columns of a batch. ⊙ is the element-wise product.\n",
            self.name,
            join(outputs, ", ", |o| format!("`d_{o}` = ∂L/∂{o}")),
        );
        tex_block(&mut out, &self.backward);
        if !self.definitions.is_empty() {
            out.push_str("\nwhere\n\n```math\n\\begin{aligned}\n");
            let lines: Vec<&str> = self.definitions.iter().map(|d| d.tex.as_str()).collect();
            out.push_str(&lines.join(" \\\\\n"));
            out.push_str("\n\\end{aligned}\n```\n");
        }
        out
    }
}

/// Appends a paragraph, wrapped at 90 columns, and an empty line.
fn wrap(out: &mut String, paragraph: &str) {
    let mut width = 0;
    for word in paragraph.split_whitespace() {
        let length = word.chars().count();
        if width > 0 && width + 1 + length > 90 {
            out.push('\n');
            width = 0;
        } else if width > 0 {
            out.push(' ');
            width += 1;
        }
        out.push_str(word);
        width += length;
    }
    out.push_str("\n\n");
}

fn text_lines(out: &mut String, lines: &[Equation]) {
    let equations: Vec<String> = lines
        .iter()
        .map(|line| match &line.rhs {
            Some(rhs) => format!("{} = {}", line.lhs.text(), rhs.text()),
            None => line.lhs.text(),
        })
        .collect();
    let shapes: Vec<String> = lines
        .iter()
        .map(|line| {
            line.shape
                .as_ref()
                .map_or_else(String::new, Shape::to_string)
        })
        .collect();
    let width = |texts: &[String]| texts.iter().map(|t| columns(t)).max().unwrap_or(0);
    let (equation_width, shape_width) = (width(&equations), width(&shapes));
    // Padded by hand: `format!`'s width counts a combining accent (the hat of `x̂`) too.
    let pad = |text: &str, width: usize| format!("{text}{}", " ".repeat(width - columns(text)));
    for ((equation, shape), line) in equations.iter().zip(&shapes).zip(lines) {
        let text = format!(
            "  {}  {}  {}",
            pad(equation, equation_width),
            pad(shape, shape_width),
            line.note
        );
        let _ = writeln!(out, "{}", text.trim_end());
    }
}

/// Text for LaTeX's `\\text{..}`: its special characters escaped (`h_0`, `{`).
fn tex_text(text: &str) -> String {
    let mut out = String::new();
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\textbackslash{}"),
            '_' | '{' | '}' | '#' | '%' | '&' | '$' => {
                out.push('\\');
                out.push(c);
            }
            '^' => out.push_str("\\^{}"),
            _ => out.push(c),
        }
    }
    out
}

/// The columns a text takes in a terminal: its characters but the combining accents.
fn columns(text: &str) -> usize {
    text.chars()
        .filter(|c| !('\u{300}'..='\u{36f}').contains(c))
        .count()
}

fn tex_block(out: &mut String, lines: &[Equation]) {
    out.push_str("```math\n\\begin{aligned}\n");
    let rows: Vec<String> = lines
        .iter()
        .map(|line| {
            let mut row = line.lhs.tex();
            match &line.rhs {
                Some(rhs) => {
                    let _ = write!(row, " &= {}", rhs.tex());
                }
                None => row.push_str(" &"),
            }
            let shape = line.shape.as_ref().map(tex_shape).unwrap_or_default();
            let _ = write!(row, " &&{shape}");
            if !line.note.is_empty() {
                let _ = write!(row, " &&\\text{{{}}}", tex_text(&line.note));
            }
            row
        })
        .collect();
    // A little room between the rows, for the fractions.
    out.push_str(&rows.join(" \\\\[3pt]\n"));
    out.push_str("\n\\end{aligned}\n```\n");
}

/// `h = relu(fc1_out)`; for a built-in layer, its intermediate equations first.
fn forward_lines(graph: &Graph, id: NodeId) -> Vec<Equation> {
    let model = graph.model;
    let node = &model.nodes[id];
    let mut lines = Vec::new();
    let mut notes = Vec::new();
    let rhs = match &node.op {
        Op::Input => {
            notes.push("input".to_string());
            None
        }
        Op::Layer { layer, arg, .. } => match graph.builtin_use(id) {
            Some((builtin, at)) => {
                let forward = builtin.forward_equations(&at);
                lines = forward.steps;
                if !forward.note.is_empty() {
                    notes.push(forward.note);
                }
                Some(forward.value)
            }
            None => {
                let layer_name = model.layers[*layer].name.to_string();
                Some(Math::Apply(Func::Layer(layer_name), vec![graph.node(*arg)]))
            }
        },
        Op::Activation { info, params, arg } => Some(Math::Apply(
            activation(info, params),
            vec![graph.node(*arg)],
        )),
        Op::Binary { op, left, right } => {
            let (a, b) = (graph.node(*left), graph.node(*right));
            Some(match op {
                BinOp::Add => Math::Sum(vec![a, b]),
                BinOp::Mul => Math::Hadamard(Box::new(a), Box::new(b)),
            })
        }
        Op::Concat(parts) => Some(Math::Stack(
            parts.iter().map(|&part| graph.node(part)).collect(),
        )),
        Op::Flatten(arg) => Some(Func::apply("flatten", vec![graph.node(*arg)])),
    };
    if let Some((k, n)) = graph.shared_use(id) {
        notes.push(format!("shared layer, use {k} of {n}"));
    }
    if graph.is_output(id) {
        notes.push("output".to_string());
    }
    lines.push(Equation {
        lhs: graph.node(id),
        rhs,
        shape: Some(node.shape.clone()),
        note: notes.join("; "),
    });
    lines
}

/// `∂L/∂h = W_fc2ᵀ·∂L/∂fc2_out + ∂L/∂sum`: one term per child (and the given upstream
/// gradient first, for an output).
fn gradient_line(graph: &Graph, id: NodeId) -> Equation {
    let model = graph.model;
    let node = &model.nodes[id];
    let mut terms = Vec::new();
    let given = graph.is_output(id);
    if given {
        terms.push(Math::Given(graph.name(id)));
    }
    let children = &graph.children[id];
    for &child in children {
        for (k, parent) in model.nodes[child].op.parents().into_iter().enumerate() {
            if parent == id {
                terms.push(contribution(graph, child, k));
            }
        }
    }
    let uses = terms.len() - usize::from(given);
    let mut notes = Vec::new();
    let plural = |n: usize, word: &str| match n {
        1 => format!("1 {word}"),
        _ if word == "child" => format!("{n} children"),
        _ => format!("{n} {word}s"),
    };
    let terms_from = if uses == children.len() {
        plural(uses, "child")
    } else {
        format!("{uses} terms from {}", plural(children.len(), "child"))
    };
    match (given, uses) {
        (true, 0) => notes.push("given".to_string()),
        (true, _) => notes.push(format!("given + {terms_from}")),
        (false, 0) => {}
        (false, 1) if children.len() == 1 => {}
        (false, _) => notes.push(format!("sum over {terms_from}")),
    }
    if let Some((k, n)) = graph.shared_use(id) {
        notes.push(format!("shared layer, use {k} of {n}"));
    }
    if matches!(node.op, Op::Input) {
        notes.push("returned".to_string());
    }
    let rhs = match terms.len() {
        0 => Math::Zero,
        1 => terms.pop().expect("one term"),
        _ => Math::Sum(terms),
    };
    Equation {
        lhs: graph.grad(id),
        rhs: Some(rhs),
        shape: Some(node.shape.clone()),
        note: notes.join("; "),
    }
}

/// After a layer's node: its parameter gradients, written once every use has added its term
/// (at the first use, which the backward pass reaches last).
fn parameter_lines(graph: &Graph, id: NodeId) -> Vec<Equation> {
    let model = graph.model;
    let Op::Layer { layer, .. } = model.nodes[id].op else {
        return Vec::new();
    };
    let uses = &graph.uses[layer];
    if uses[0] != id {
        return Vec::new();
    }
    let decl = &model.layers[layer];
    let layer_name = decl.name.to_string();
    let sum = |mut terms: Vec<Math>| {
        if terms.len() == 1 {
            terms.pop().expect("one term")
        } else {
            Math::Sum(terms)
        }
    };
    let note = if uses.len() > 1 {
        format!("sum over {} uses", uses.len())
    } else {
        String::new()
    };
    let line = |param: ParamName, terms: Vec<Math>, shape: Option<Shape>| Equation {
        lhs: Math::Grad(Box::new(param.of(&layer_name))),
        rhs: Some(sum(terms)),
        shape,
        note: note.clone(),
    };
    let LayerKind::Builtin(builtin) = &decl.kind else {
        // A layer of your own: its Jacobian with respect to all its parameters.
        let terms = uses
            .iter()
            .map(|&u| {
                Math::Product(vec![
                    Math::transpose(Math::Jacobian(
                        Box::new(graph.node(u)),
                        Box::new(ParamName::THETA.of(&layer_name)),
                    )),
                    graph.grad(u),
                ])
            })
            .collect();
        return vec![line(ParamName::THETA, terms, None)];
    };
    let mut terms: Vec<Vec<Math>> = Vec::new();
    for &u in uses {
        let (_, at) = graph.builtin_use(u).expect("a use of a built-in layer");
        terms.push(builtin.parameter_gradients(&at));
    }
    builtin
        .parameters(&decl.input_shape)
        .into_iter()
        .enumerate()
        .map(|(k, parameter)| {
            let per_use = terms.iter().map(|use_terms| use_terms[k].clone()).collect();
            line(parameter.name, per_use, Some(parameter.shape))
        })
        .collect()
}

/// The definitions the equations use, in order of first use: each activation's derivative,
/// and the notation of concatenation, custom layers and softmax.
fn definitions(graph: &Graph) -> Vec<Definition> {
    let (mut derivatives, mut notation): (Vec<Definition>, Vec<Definition>) = Default::default();
    let add = |list: &mut Vec<Definition>, definition: Definition| {
        if !list.iter().any(|d| d.text == definition.text) {
            list.push(definition);
        }
    };
    for (id, node) in graph.model.nodes.iter().enumerate() {
        match &node.op {
            Op::Activation { info, params, .. } => {
                if let Some(definition) = derivative_definition(info, params) {
                    add(&mut derivatives, definition);
                }
                // Softmax and log-softmax pass back their full vector-Jacobian product.
                if matches!(info.func, "softmax" | "log_softmax") {
                    add(&mut notation, Definition::ones());
                }
            }
            Op::Concat(_) => add(
                &mut notation,
                Definition::new(
                    "(v)[i:j]: rows i to j of v, counting from 1",
                    "\\left(v\\right)_{i:j} &: \\text{rows } i \\text{ to } j \\text{ of } v \
                     \\text{, counting from 1}",
                ),
            ),
            Op::Flatten(_) => add(
                &mut notation,
                Definition::new(
                    "flatten(x): the values of x as a vector, in PyTorch's (row-major) order; its \
                     gradient passes back unchanged, in x's shape",
                    "\\operatorname{flatten}(x) &: \\text{the values of } x \\text{ as a vector \
                     (row-major); its gradient passes back unchanged}",
                ),
            ),
            Op::Layer { .. } => match graph.builtin_use(id) {
                Some((builtin, at)) => {
                    for definition in builtin.definitions(&at) {
                        add(&mut notation, definition);
                    }
                }
                None => add(
                    &mut notation,
                    Definition::new(
                        "∂y/∂x, ∂y/∂θ_l: the Jacobians of a layer l of your own, whose backward \
                         multiplies ∂L/∂y by their transposes",
                        "\\frac{\\partial y}{\\partial x}, \\frac{\\partial y}{\\partial \
                         \\theta_l} &: \\text{the Jacobians of a layer } l \\text{ of your own, \
                         whose backward multiplies by their transposes}",
                    ),
                ),
            },
            Op::Input | Op::Binary { .. } => {}
        }
    }
    derivatives.extend(notation);
    derivatives
}

/// `σ′(t) = σ(t)·(1 − σ(t))`, or `None` when the equations need no definition (identity, and
/// softmax and log_softmax, whose backward is written out in full).
fn derivative_definition(info: &'static ActivationInfo, params: &[f64]) -> Option<Definition> {
    let f = activation(info, params);
    let alpha = params.first().map(|a| a.to_string()).unwrap_or_default();
    let (text, tex): (String, String) = match info.func {
        "identity" | "softmax" | "log_softmax" => return None,
        "sigmoid" => (
            "σ(t)·(1 − σ(t))".into(),
            "\\sigma(t)\\,\\bigl(1 - \\sigma(t)\\bigr)".into(),
        ),
        "tanh" => ("1 − tanh²(t)".into(), "1 - \\tanh^2(t)".into()),
        "relu" => (
            "1 if t > 0, else 0".into(),
            "\\begin{cases} 1 & t > 0 \\\\ 0 & \\text{otherwise} \\end{cases}".into(),
        ),
        "leaky_relu" => (
            format!("1 if t > 0, else {alpha}"),
            format!("\\begin{{cases}} 1 & t > 0 \\\\ {alpha} & \\text{{otherwise}} \\end{{cases}}"),
        ),
        "elu" => (
            format!("1 if t > 0, else {alpha}·eᵗ"),
            format!(
                "\\begin{{cases}} 1 & t > 0 \\\\ {alpha}\\, e^{{t}} & \\text{{otherwise}} \
                 \\end{{cases}}"
            ),
        ),
        "softplus" => ("σ(t)".into(), "\\sigma(t)".into()),
        "gelu" => (
            "½(1 + tanh u) + ½t·(1 − tanh²u)·√(2/π)·(1 + 3·0.044715·t²), where \
             u = √(2/π)·(t + 0.044715·t³)"
                .into(),
            "\\tfrac12 (1 + \\tanh u) + \\tfrac12 t \\,(1 - \\tanh^2 u)\\, \\sqrt{2/\\pi}\\, \
             (1 + 3 \\cdot 0.044715\\, t^2), \\quad u = \\sqrt{2/\\pi}\\,(t + 0.044715\\, t^3)"
                .into(),
        ),
        "silu" | "swish" => (
            "σ(t)·(1 + t·(1 − σ(t)))".into(),
            "\\sigma(t)\\,\\bigl(1 + t\\,(1 - \\sigma(t))\\bigr)".into(),
        ),
        "sign" | "heaviside" => (
            "0 (almost everywhere; taken as 0 at 0): no gradient flows".into(),
            "0 \\quad \\text{(almost everywhere; taken as 0 at 0): no gradient flows}".into(),
        ),
        "sign_ste" => (
            "1 if |t| ≤ 1, else 0 (straight-through surrogate, not the derivative of sign)".into(),
            "\\begin{cases} 1 & |t| \\le 1 \\\\ 0 & \\text{otherwise} \\end{cases} \\quad \
             \\text{(straight-through surrogate)}"
                .into(),
        ),
        "heaviside_ste" => (
            "½ if |t| ≤ 1, else 0 (straight-through surrogate, not the derivative of the step)"
                .into(),
            "\\begin{cases} \\tfrac12 & |t| \\le 1 \\\\ 0 & \\text{otherwise} \\end{cases} \
             \\quad \\text{(straight-through surrogate)}"
                .into(),
        ),
        other => (
            format!(
                "the derivative of {other}, as nn::activations::{} computes it",
                info.ty
            ),
            format!(
                "\\text{{the derivative of }} {} \\text{{ (see }} \\mathtt{{{}}}\\text{{)}}",
                tex_function(other),
                info.ty
            ),
        ),
    };
    Some(Definition {
        text: format!("{} = {text}", f.apply_text("t", "′")),
        tex: format!("{} &= {tex}", f.apply_tex("t", "'")),
    })
}

/// What the child's backward statement adds into the gradient of its `k`-th parent.
fn contribution(graph: &Graph, child: NodeId, k: usize) -> Math {
    let node = &graph.model.nodes[child];
    let parents = node.op.parents();
    let parent = parents[k];
    let d_child = graph.grad(child);
    match &node.op {
        Op::Input => unreachable!("an input has no parents"),
        Op::Layer { .. } => match graph.builtin_use(child) {
            Some((builtin, at)) => builtin.backward_equations(&at).input_gradient,
            // A layer of your own: its Jacobian.
            None => Math::Product(vec![
                Math::transpose(Math::Jacobian(
                    Box::new(graph.node(child)),
                    Box::new(graph.node(parent)),
                )),
                d_child,
            ]),
        },
        Op::Activation { info, params, .. } => match info.func {
            "identity" => d_child,
            // y ⊙ (∂L/∂y − (yᵀ·∂L/∂y)·𝟏)
            "softmax" => Math::Hadamard(
                Box::new(graph.node(child)),
                Box::new(Math::Difference(
                    Box::new(d_child.clone()),
                    Box::new(Math::Product(vec![
                        Math::Product(vec![Math::Transpose(Box::new(graph.node(child))), d_child]),
                        Math::Ones,
                    ])),
                )),
            ),
            // ∂L/∂y − exp(y)·(𝟏ᵀ·∂L/∂y)
            "log_softmax" => Math::Difference(
                Box::new(d_child.clone()),
                Box::new(Math::Product(vec![
                    Math::Exp(Box::new(graph.node(child))),
                    Math::Product(vec![Math::Transpose(Box::new(Math::Ones)), d_child]),
                ])),
            ),
            _ => Math::Hadamard(
                Box::new(d_child),
                Box::new(Math::Derivative(
                    activation(info, params),
                    Box::new(graph.node(parent)),
                )),
            ),
        },
        Op::Binary { op: BinOp::Add, .. } => d_child,
        Op::Binary {
            op: BinOp::Mul,
            left,
            right,
        } => {
            let other = if k == 0 { *right } else { *left };
            Math::Hadamard(Box::new(d_child), Box::new(graph.node(other)))
        }
        Op::Concat(_) => {
            let (first, last) = graph.concat_rows(child, k).expect("a concatenation");
            Math::Rows(Box::new(d_child), first, last)
        }
        // The same values in another shape: the gradient passes through unchanged.
        Op::Flatten(_) => d_child,
    }
}
