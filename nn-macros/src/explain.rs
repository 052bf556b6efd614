//! The derivation of a network, shown: its forward and backward passes as equations, and a
//! diagram of its graph, generated from the same checked [`Model`] as the code (so they cannot
//! drift apart from it).
//!
//! [`Derivation::new`] walks the model once and writes every equation as a small math tree
//! ([`Math`]), in the order the generated code runs: forward in node order; backward in
//! reverse node order, where a node's gradient is the sum of one term per child (the
//! contribution each child's backward statement adds into `d_<node>`) and a layer's parameter
//! gradient the sum of one term per use. The trees are rendered twice, as LaTeX (Markdown
//! `math` blocks, which GitHub renders) and as Unicode text (terminals, rustdoc). The diagram
//! is written as Graphviz DOT and as a Mermaid flowchart; the summary table is the text that
//! the generated `summary()` prints.

use crate::builtins::ActivationInfo;
use crate::model::{LayerKind, Model, NodeId, Op, shape_text};
use crate::parse::BinOp;
use proc_macro2::TokenStream;
use quote::quote;
use std::fmt::Write as _;

/// Items added to the network's inherent impl: the equations and the diagram as constants.
pub fn items(model: &Model) -> TokenStream {
    let name = model.name.to_string();
    let derivation = Derivation::new(model);
    let equations = derivation.markdown();
    let equations_text = derivation.text();
    let dot = dot(model);
    let mermaid = mermaid(model);
    let summary = summary_text(model);
    let equations_doc = format!(
        " The forward and backward passes of `{name}` as equations, node by node in the \
         order the generated code runs them, with every shape: Markdown, with the math in \
         LaTeX `math` blocks (as GitHub renders them). Derived by `nn::network!` from the \
         checked graph that generates the code."
    );
    let text_doc = format!(
        " The equations of [`{name}::EQUATIONS`] as plain Unicode text, for a terminal \
         (`println!(\"{{}}\", {name}::<f32>::EQUATIONS_TEXT)`); the network's documentation \
         shows them too."
    );
    let dot_doc = format!(
        " The graph of `{name}` in Graphviz DOT: one box per node (its name, operation and \
         shape), edges in data order, the uses of a shared layer highlighted and joined by a \
         dashed line. Render it with `dot -Tsvg` (or the `layout-rs` crate)."
    );
    let mermaid_doc = format!(
        " The graph of `{name}` as a Mermaid flowchart (the same as [`{name}::DOT`]), which \
         GitHub renders in a `mermaid` code block."
    );
    // Each text is wrapped in a block with an inner `const`, so that rustdoc does not print
    // the whole string after the constant's name (as it does for a literal).
    quote! {
        #[doc = #equations_doc]
        pub const EQUATIONS: &'static str = { const TEXT: &str = #equations; TEXT };

        #[doc = #text_doc]
        pub const EQUATIONS_TEXT: &'static str = { const TEXT: &str = #equations_text; TEXT };

        #[doc = #dot_doc]
        pub const DOT: &'static str = { const TEXT: &str = #dot; TEXT };

        #[doc = #mermaid_doc]
        pub const MERMAID: &'static str = { const TEXT: &str = #mermaid; TEXT };

        /// The summary table as the network's documentation shows it: computed by the macro,
        /// it is what `summary()` prints, except that the parameter count of a layer of your
        /// own is `?` (the macro does not know it). For tests.
        #[doc(hidden)]
        pub const SUMMARY_TEXT: &'static str = { const TEXT: &str = #summary; TEXT };
    }
}

/// `#[doc = ...]` attributes appended to the network struct's documentation: the summary
/// table, the equations and the diagram.
pub fn struct_docs(model: &Model) -> TokenStream {
    let name = model.name.to_string();
    let derivation = Derivation::new(model);
    let mut doc = String::new();
    let block = |doc: &mut String, lang: &str, body: &str| {
        let _ = writeln!(doc, "```{lang}");
        doc.push_str(body.trim_end());
        doc.push_str("\n```\n");
    };
    let _ = writeln!(
        doc,
        "\n# Summary\n\nWhat [`{name}::summary`] prints (for `f32`): each node's operation, \
         output shape (of one sample) and parameter count.\n"
    );
    block(&mut doc, "text", &summary_text(model));
    let _ = writeln!(
        doc,
        "\n# Derivation\n\nThe forward and backward passes as the macro derived them, node by \
         node in the order the generated code runs them (also in [`{name}::EQUATIONS`], as \
         Markdown with LaTeX math, and in [`{name}::EQUATIONS_TEXT`]).\n"
    );
    block(&mut doc, "text", &derivation.text());
    let _ = writeln!(
        doc,
        "\n# Graph\n\nAs a Mermaid flowchart ([`{name}::MERMAID`]):\n"
    );
    block(&mut doc, "mermaid", &mermaid(model));
    let _ = writeln!(
        doc,
        "\nIn Graphviz DOT ([`{name}::DOT`]; render it with `dot -Tsvg`):\n"
    );
    block(&mut doc, "dot", &dot(model));
    doc.lines()
        .map(|line| {
            let line = if line.is_empty() {
                String::new()
            } else {
                format!(" {line}")
            };
            quote! { #[doc = #line] }
        })
        .collect()
}

// ---------------------------------------------------------------------------------------
// The graph, as the derivation reads it.

/// The model with what the derivation needs precomputed.
struct Graph<'a> {
    model: &'a Model,
    /// Each node's children (the nodes reading it), in execution order, each once.
    children: Vec<Vec<NodeId>>,
    /// Each layer's uses (the nodes applying it), in execution order.
    uses: Vec<Vec<NodeId>>,
}

impl<'a> Graph<'a> {
    fn new(model: &'a Model) -> Self {
        let mut children = vec![Vec::new(); model.nodes.len()];
        let mut uses = vec![Vec::new(); model.layers.len()];
        for (id, node) in model.nodes.iter().enumerate() {
            for parent in node.op.parents() {
                if !children[parent].contains(&id) {
                    children[parent].push(id);
                }
            }
            if let Op::Layer { layer, .. } = node.op {
                uses[layer].push(id);
            }
        }
        Graph {
            model,
            children,
            uses,
        }
    }

    fn name(&self, id: NodeId) -> String {
        self.model.nodes[id].name.to_string()
    }

    fn node(&self, id: NodeId) -> Math {
        Math::Node(self.name(id))
    }

    fn grad(&self, id: NodeId) -> Math {
        Math::Grad(Box::new(self.node(id)))
    }

    fn is_output(&self, id: NodeId) -> bool {
        self.model.outputs.contains(&id)
    }

    /// `(k, n)` if the node is use `k` (from 1) of a layer used `n > 1` times.
    fn shared_use(&self, id: NodeId) -> Option<(usize, usize)> {
        let Op::Layer { layer, .. } = self.model.nodes[id].op else {
            return None;
        };
        let uses = &self.uses[layer];
        let k = uses.iter().position(|&u| u == id)? + 1;
        (uses.len() > 1).then_some((k, uses.len()))
    }

    /// The operation as the summary table writes it (`fc1: Dense(16 → 32)`), without the
    /// summary's `, shared` mark.
    fn operation(&self, id: NodeId) -> String {
        let node = &self.model.nodes[id];
        match &node.op {
            Op::Input => "input".to_string(),
            Op::Layer { layer, .. } => {
                let decl = &self.model.layers[*layer];
                format!("{}: {}", decl.name, decl.describe())
            }
            Op::Activation { info, params, .. } => {
                if params.is_empty() {
                    info.func.to_string()
                } else {
                    format!("{}({})", info.func, numbers(params))
                }
            }
            Op::Binary { .. } | Op::Concat(_) | Op::Flatten(_) => node.expr.clone(),
        }
    }

    /// What the child's backward statement adds into the gradient of its `k`-th parent.
    fn contribution(&self, child: NodeId, k: usize) -> Math {
        let node = &self.model.nodes[child];
        let parents = node.op.parents();
        let parent = parents[k];
        let d_child = self.grad(child);
        match &node.op {
            Op::Input => unreachable!("an input has no parents"),
            Op::Layer { layer, .. } => {
                let decl = &self.model.layers[*layer];
                let jacobian = match decl.as_dense() {
                    Some(_) => Math::Param(Param::Weight, decl.name.to_string()),
                    // A layer of your own (or any other kind): its Jacobian.
                    _ => Math::Jacobian(Box::new(self.node(child)), Box::new(self.node(parent))),
                };
                Math::Product(vec![Math::Transpose(Box::new(jacobian)), d_child])
            }
            Op::Activation { info, params, .. } => match info.func {
                "identity" => d_child,
                // y ⊙ (∂L/∂y − (yᵀ·∂L/∂y)·𝟏)
                "softmax" => Math::Hadamard(
                    Box::new(self.node(child)),
                    Box::new(Math::Difference(
                        Box::new(d_child.clone()),
                        Box::new(Math::Product(vec![
                            Math::Product(vec![
                                Math::Transpose(Box::new(self.node(child))),
                                d_child,
                            ]),
                            Math::Ones,
                        ])),
                    )),
                ),
                // ∂L/∂y − exp(y)·(𝟏ᵀ·∂L/∂y)
                "log_softmax" => Math::Difference(
                    Box::new(d_child.clone()),
                    Box::new(Math::Product(vec![
                        Math::Exp(Box::new(self.node(child))),
                        Math::Product(vec![Math::Transpose(Box::new(Math::Ones)), d_child]),
                    ])),
                ),
                _ => Math::Hadamard(
                    Box::new(d_child),
                    Box::new(Math::Derivative(
                        Func::Activation(info, params.clone()),
                        Box::new(self.node(parent)),
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
                Math::Hadamard(Box::new(d_child), Box::new(self.node(other)))
            }
            Op::Concat(parts) => {
                let before: usize = parts[..k]
                    .iter()
                    .map(|&p| self.model.nodes[p].shape[0])
                    .sum();
                let rows = self.model.nodes[parent].shape[0];
                Math::Rows(Box::new(d_child), before + 1, before + rows)
            }
            // The same values in another shape: the gradient passes through unchanged.
            Op::Flatten(_) => d_child,
        }
    }
}

// ---------------------------------------------------------------------------------------
// Math, rendered as Unicode text and as LaTeX.

/// An expression of the derivation.
#[derive(Clone)]
enum Math {
    /// A node's value: `h`, `fc1_out`.
    Node(String),
    /// A layer's parameter: `W_fc1`, `b_fc1`, `θ_scale`.
    Param(Param, String),
    /// `∂L/∂x`.
    Grad(Box<Math>),
    /// The upstream gradient of an output, the argument `d_y` of `backward`.
    Given(String),
    /// `xᵀ`.
    Transpose(Box<Math>),
    /// Matrix product `a·b`.
    Product(Vec<Math>),
    /// Element-wise product `a ⊙ b`.
    Hadamard(Box<Math>, Box<Math>),
    Sum(Vec<Math>),
    Difference(Box<Math>, Box<Math>),
    /// `relu(x)`, `σ(x)`, `scale(x; θ_scale)`.
    Apply(Func, Box<Math>),
    /// `relu′(x)`.
    Derivative(Func, Box<Math>),
    /// Rows `first..=last` (from 1) of a vector: `(∂L/∂c)[1:6]`.
    Rows(Box<Math>, usize, usize),
    /// Vectors stacked: `[a; b]`.
    Stack(Vec<Math>),
    /// The Jacobian `∂y/∂x` of a layer of your own.
    Jacobian(Box<Math>, Box<Math>),
    /// The vector of ones, `𝟏`.
    Ones,
    /// Element-wise exponential.
    Exp(Box<Math>),
    Zero,
}

#[derive(Clone, Copy)]
enum Param {
    Weight,
    Bias,
    /// Every parameter of a layer of your own.
    Theta,
}

/// A function applied to a node.
#[derive(Clone)]
enum Func {
    Activation(&'static ActivationInfo, Vec<f64>),
    /// A layer of your own, by name.
    Layer(String),
}

impl Math {
    /// 1 for sums, 2 for products, 3 for atoms.
    fn precedence(&self) -> u8 {
        match self {
            Math::Sum(_) | Math::Difference(..) => 1,
            Math::Product(_) | Math::Hadamard(..) => 2,
            _ => 3,
        }
    }

    fn text(&self) -> String {
        match self {
            Math::Node(name) => name.clone(),
            Math::Param(param, layer) => format!("{}_{layer}", param.symbol()),
            Math::Grad(x) => format!("∂L/∂{}", x.text()),
            Math::Given(name) => format!("d_{name}"),
            Math::Transpose(x) => match **x {
                Math::Node(_) | Math::Param(..) | Math::Ones => format!("{}ᵀ", x.text()),
                _ => format!("({})ᵀ", x.text()),
            },
            Math::Product(factors) => join(factors, "·", |f| f.operand_text(3)),
            Math::Hadamard(a, b) => format!("{} ⊙ {}", a.operand_text(3), b.operand_text(3)),
            Math::Sum(terms) => join(terms, " + ", |t| t.operand_text(2)),
            Math::Difference(a, b) => format!("{} − {}", a.operand_text(1), b.operand_text(2)),
            Math::Apply(f, x) => f.apply_text(&x.text(), ""),
            Math::Derivative(f, x) => f.apply_text(&x.text(), "′"),
            Math::Rows(x, first, last) => format!("({})[{first}:{last}]", x.text()),
            Math::Stack(parts) => format!("[{}]", join(parts, "; ", Math::text)),
            Math::Jacobian(y, x) => format!("∂{}/∂{}", y.text(), x.text()),
            Math::Ones => "𝟏".to_string(),
            Math::Exp(x) => format!("exp({})", x.text()),
            Math::Zero => "0".to_string(),
        }
    }

    /// The text of an operand, in parentheses if it binds looser than `at`.
    fn operand_text(&self, at: u8) -> String {
        if self.precedence() < at {
            format!("({})", self.text())
        } else {
            self.text()
        }
    }

    fn tex(&self) -> String {
        match self {
            Math::Node(name) => tex_name(name),
            Math::Param(param, layer) => {
                format!("{}_{{\\mathrm{{{}}}}}", param.tex(), tex_escape(layer))
            }
            Math::Grad(x) => format!("\\frac{{\\partial L}}{{\\partial {}}}", x.tex()),
            Math::Given(name) => format!("\\mathtt{{d\\_{}}}", tex_escape(name)),
            Math::Transpose(x) => match **x {
                Math::Node(_) | Math::Param(..) | Math::Ones => format!("{}^{{\\top}}", x.tex()),
                _ => format!("\\left({}\\right)^{{\\top}}", x.tex()),
            },
            Math::Product(factors) => join(factors, " \\, ", |f| f.operand_tex(3)),
            Math::Hadamard(a, b) => {
                format!("{} \\odot {}", a.operand_tex(3), b.operand_tex(3))
            }
            Math::Sum(terms) => join(terms, " + ", |t| t.operand_tex(2)),
            Math::Difference(a, b) => format!("{} - {}", a.operand_tex(1), b.operand_tex(2)),
            Math::Apply(f, x) => f.apply_tex(&x.tex(), ""),
            Math::Derivative(f, x) => f.apply_tex(&x.tex(), "'"),
            Math::Rows(x, first, last) => {
                format!("\\left({}\\right)_{{{first}:{last}}}", x.tex())
            }
            Math::Stack(parts) => format!(
                "\\begin{{bmatrix}} {} \\end{{bmatrix}}",
                join(parts, " \\\\ ", Math::tex)
            ),
            Math::Jacobian(y, x) => {
                format!("\\frac{{\\partial {}}}{{\\partial {}}}", y.tex(), x.tex())
            }
            Math::Ones => "\\mathbf{1}".to_string(),
            Math::Exp(x) => format!("\\exp({})", x.tex()),
            Math::Zero => "0".to_string(),
        }
    }

    fn operand_tex(&self, at: u8) -> String {
        if self.precedence() < at {
            format!("\\left({}\\right)", self.tex())
        } else {
            self.tex()
        }
    }
}

impl Param {
    fn symbol(self) -> &'static str {
        match self {
            Param::Weight => "W",
            Param::Bias => "b",
            Param::Theta => "θ",
        }
    }

    fn tex(self) -> &'static str {
        match self {
            Param::Weight => "W",
            Param::Bias => "b",
            Param::Theta => "\\theta",
        }
    }
}

impl Func {
    /// `relu(x)`, `leaky_relu′(x, 0.2)`, `scale(x; θ_scale)`: `prime` is `""` or `"′"`.
    fn apply_text(&self, x: &str, prime: &str) -> String {
        match self {
            Func::Activation(info, params) => {
                let name = if info.func == "sigmoid" {
                    "σ"
                } else {
                    info.func
                };
                if params.is_empty() {
                    format!("{name}{prime}({x})")
                } else {
                    format!("{name}{prime}({x}, {})", numbers(params))
                }
            }
            Func::Layer(layer) => format!("{layer}{prime}({x}; θ_{layer})"),
        }
    }

    fn apply_tex(&self, x: &str, prime: &str) -> String {
        match self {
            Func::Activation(info, params) => {
                let name = tex_function(info.func);
                if params.is_empty() {
                    format!("{name}{prime}({x})")
                } else {
                    format!("{name}{prime}({x}, {})", numbers(params))
                }
            }
            Func::Layer(layer) => {
                let layer = tex_escape(layer);
                format!("\\mathrm{{{layer}}}{prime}({x};\\ \\theta_{{\\mathrm{{{layer}}}}})")
            }
        }
    }
}

/// An activation's name in LaTeX: `\sigma`, `\tanh`, `\operatorname{relu}`.
fn tex_function(func: &str) -> String {
    match func {
        "sigmoid" => "\\sigma".to_string(),
        "tanh" => "\\tanh".to_string(),
        "exp" => "\\exp".to_string(),
        // `\operatorname` would space the underscore out: `leaky _ relu`.
        _ if func.contains('_') => format!("\\mathrm{{{}}}", tex_escape(func)),
        _ => format!("\\operatorname{{{func}}}"),
    }
}

/// A node's name in LaTeX: a single letter in italics (`x`), longer names upright
/// (`\mathrm{fc1\_out}`).
fn tex_name(name: &str) -> String {
    let mut chars = name.chars();
    match (chars.next(), chars.next()) {
        (Some(c), None) if c.is_ascii_alphabetic() => name.to_string(),
        _ => format!("\\mathrm{{{}}}", tex_escape(name)),
    }
}

fn tex_escape(name: &str) -> String {
    name.replace('_', "\\_")
}

fn join<T>(items: &[T], separator: &str, render: impl Fn(&T) -> String) -> String {
    items.iter().map(render).collect::<Vec<_>>().join(separator)
}

/// Activation parameters as the summary writes them: `0.2`, `1`.
fn numbers(values: &[f64]) -> String {
    join(values, ", ", f64::to_string)
}

/// A shape as LaTeX: `\in \mathbb{R}^{32 \times 16}`.
fn tex_shape(shape: &[usize]) -> String {
    if shape.is_empty() {
        return String::new();
    }
    let dims: Vec<String> = shape.iter().map(usize::to_string).collect();
    format!("\\in \\mathbb{{R}}^{{{}}}", dims.join(" \\times "))
}

// ---------------------------------------------------------------------------------------
// The derivation.

/// One equation: `lhs = rhs`, or `lhs` alone (an input), with a shape and a remark.
struct Line {
    lhs: Math,
    rhs: Option<Math>,
    /// Empty when unknown (the parameters of a layer of your own).
    shape: Vec<usize>,
    note: String,
}

/// A definition the equations use, e.g. `σ′(t) = σ(t)·(1 − σ(t))`.
struct Definition {
    text: String,
    tex: String,
}

/// The forward and backward passes as equations, in the order the code runs them.
struct Derivation {
    name: String,
    /// The outputs' names, whose gradients the caller gives.
    outputs: Vec<String>,
    forward: Vec<Line>,
    backward: Vec<Line>,
    definitions: Vec<Definition>,
}

impl Derivation {
    fn new(model: &Model) -> Self {
        let graph = Graph::new(model);
        let forward = (0..model.nodes.len())
            .map(|id| forward_line(&graph, id))
            .collect();
        let mut backward = Vec::new();
        for id in (0..model.nodes.len()).rev() {
            backward.push(gradient_line(&graph, id));
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
    fn text(&self) -> String {
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
    fn markdown(&self) -> String {
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

fn text_lines(out: &mut String, lines: &[Line]) {
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
            if line.shape.is_empty() {
                String::new()
            } else {
                shape_text(&line.shape)
            }
        })
        .collect();
    let width = |texts: &[String]| texts.iter().map(|t| t.chars().count()).max().unwrap_or(0);
    let (equation_width, shape_width) = (width(&equations), width(&shapes));
    for ((equation, shape), line) in equations.iter().zip(&shapes).zip(lines) {
        let text = format!(
            "  {equation:<equation_width$}  {shape:<shape_width$}  {}",
            line.note
        );
        let _ = writeln!(out, "{}", text.trim_end());
    }
}

fn tex_block(out: &mut String, lines: &[Line]) {
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
            let _ = write!(row, " &&{}", tex_shape(&line.shape));
            if !line.note.is_empty() {
                let _ = write!(row, " &&\\text{{{}}}", line.note);
            }
            row
        })
        .collect();
    // A little room between the rows, for the fractions.
    out.push_str(&rows.join(" \\\\[3pt]\n"));
    out.push_str("\n\\end{aligned}\n```\n");
}

/// `h = relu(fc1_out)`.
fn forward_line(graph: &Graph, id: NodeId) -> Line {
    let model = graph.model;
    let node = &model.nodes[id];
    let mut notes = Vec::new();
    let rhs = match &node.op {
        Op::Input => {
            notes.push("input".to_string());
            None
        }
        Op::Layer { layer, arg, .. } => {
            let decl = &model.layers[*layer];
            let layer_name = decl.name.to_string();
            let x = graph.node(*arg);
            Some(match decl.as_dense() {
                Some(_) => Math::Sum(vec![
                    Math::Product(vec![Math::Param(Param::Weight, layer_name.clone()), x]),
                    Math::Param(Param::Bias, layer_name),
                ]),
                _ => Math::Apply(Func::Layer(layer_name), Box::new(x)),
            })
        }
        Op::Activation { info, params, arg } => Some(Math::Apply(
            Func::Activation(info, params.clone()),
            Box::new(graph.node(*arg)),
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
        Op::Flatten(arg) => Some(Math::Apply(
            Func::Layer("flatten".to_string()),
            Box::new(graph.node(*arg)),
        )),
    };
    if let Some((k, n)) = graph.shared_use(id) {
        notes.push(format!("shared layer, use {k} of {n}"));
    }
    if graph.is_output(id) {
        notes.push("output".to_string());
    }
    Line {
        lhs: graph.node(id),
        rhs,
        shape: node.shape.clone(),
        note: notes.join("; "),
    }
}

/// `∂L/∂h = W_fc2ᵀ·∂L/∂fc2_out + ∂L/∂sum`: one term per child (and the given upstream
/// gradient first, for an output).
fn gradient_line(graph: &Graph, id: NodeId) -> Line {
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
                terms.push(graph.contribution(child, k));
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
    Line {
        lhs: graph.grad(id),
        rhs: Some(rhs),
        shape: node.shape.clone(),
        note: notes.join("; "),
    }
}

/// After a layer's node: its parameter gradients, written once every use has added its term
/// (at the first use, which the backward pass reaches last).
fn parameter_lines(graph: &Graph, id: NodeId) -> Vec<Line> {
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
    let arg = |u: NodeId| match model.nodes[u].op {
        Op::Layer { arg, .. } => arg,
        _ => unreachable!("a use of a layer applies it"),
    };
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
    let line = |param: Param, terms: Vec<Math>, shape: Vec<usize>| Line {
        lhs: Math::Grad(Box::new(Math::Param(param, layer_name.clone()))),
        rhs: Some(sum(terms)),
        shape,
        note: note.clone(),
    };
    match decl.as_dense() {
        Some((input, out)) => vec![
            line(
                Param::Weight,
                uses.iter()
                    .map(|&u| {
                        Math::Product(vec![
                            graph.grad(u),
                            Math::Transpose(Box::new(graph.node(arg(u)))),
                        ])
                    })
                    .collect(),
                vec![out, input],
            ),
            line(
                Param::Bias,
                uses.iter().map(|&u| graph.grad(u)).collect(),
                vec![out],
            ),
        ],
        _ => vec![line(
            Param::Theta,
            uses.iter()
                .map(|&u| {
                    Math::Product(vec![
                        Math::Transpose(Box::new(Math::Jacobian(
                            Box::new(graph.node(u)),
                            Box::new(Math::Param(Param::Theta, layer_name.clone())),
                        ))),
                        graph.grad(u),
                    ])
                })
                .collect(),
            Vec::new(),
        )],
    }
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
    for node in &graph.model.nodes {
        match &node.op {
            Op::Activation { info, params, .. } => {
                if let Some(definition) = derivative_definition(info, params) {
                    add(&mut derivatives, definition);
                }
                if matches!(info.func, "softmax" | "log_softmax") {
                    add(
                        &mut notation,
                        Definition {
                            text: "𝟏: the vector of ones (softmax and log_softmax pass back their \
                               full Jacobian-vector product)"
                                .to_string(),
                            tex: "\\mathbf{1} &: \\text{the vector of ones}".to_string(),
                        },
                    );
                }
            }
            Op::Concat(_) => add(
                &mut notation,
                Definition {
                    text: "(v)[i:j]: rows i to j of v, counting from 1".to_string(),
                    tex: "\\left(v\\right)_{i:j} &: \\text{rows } i \\text{ to } j \\text{ of } v \
                      \\text{, counting from 1}"
                        .to_string(),
                },
            ),
            Op::Layer { layer, .. } if graph.model.layers[*layer].as_dense().is_none() => {
                add(
                    &mut notation,
                    Definition {
                        text: "∂y/∂x, ∂y/∂θ_l: the Jacobians of a layer l of your own, whose \
                               backward multiplies ∂L/∂y by their transposes"
                            .to_string(),
                        tex: "\\frac{\\partial y}{\\partial x}, \\frac{\\partial y}{\\partial \
                              \\theta_l} &: \\text{the Jacobians of a layer } l \\text{ of your \
                              own, whose backward multiplies by their transposes}"
                            .to_string(),
                    },
                );
            }
            _ => {}
        }
    }
    derivatives.extend(notation);
    derivatives
}

/// `σ′(t) = σ(t)·(1 − σ(t))`, or `None` when the equations need no definition (identity, and
/// softmax and log_softmax, whose backward is written out in full).
fn derivative_definition(info: &'static ActivationInfo, params: &[f64]) -> Option<Definition> {
    let f = Func::Activation(info, params.to_vec());
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

// ---------------------------------------------------------------------------------------
// The summary table.

/// The text `summary()` prints for `f32` (`nn::Summary`'s `Display`), computed here from the
/// model. The parameter count of a layer of your own is `?`: only its type knows it.
fn summary_text(model: &Model) -> String {
    let graph = Graph::new(model);
    let rows: Vec<[String; 4]> = model
        .nodes
        .iter()
        .enumerate()
        .map(|(id, node)| {
            let mut op = graph.operation(id);
            let params = match &node.op {
                Op::Layer { shared: true, .. } => {
                    op.push_str(", shared");
                    "0".to_string()
                }
                Op::Layer { layer, .. } => {
                    let decl = &model.layers[*layer];
                    match &decl.kind {
                        LayerKind::Builtin(builtin) => {
                            builtin.param_count(&decl.input_shape).to_string()
                        }
                        LayerKind::Custom(_) => "?".to_string(),
                    }
                }
                _ => "0".to_string(),
            };
            [node.name.to_string(), op, shape_text(&node.shape), params]
        })
        .collect();
    let titles = ["Node", "Operation", "Output shape", "Params"];
    let widths: Vec<usize> = (0..4)
        .map(|column| {
            rows.iter()
                .map(|row| row[column].chars().count())
                .fold(titles[column].len(), usize::max)
        })
        .collect();
    let total_width = widths.iter().sum::<usize>() + 6;
    let row_text = |row: [&str; 4]| {
        format!(
            "{:<w0$}  {:<w1$}  {:<w2$}  {:>w3$}\n",
            row[0],
            row[1],
            row[2],
            row[3],
            w0 = widths[0],
            w1 = widths[1],
            w2 = widths[2],
            w3 = widths[3]
        )
    };
    let mut out = format!("Network: {}\n", model.name);
    out.push_str(&"=".repeat(total_width));
    out.push('\n');
    out.push_str(&row_text(titles));
    out.push_str(&"-".repeat(total_width));
    out.push('\n');
    for row in &rows {
        out.push_str(&row_text([&row[0], &row[1], &row[2], &row[3]]));
    }
    out.push_str(&"=".repeat(total_width));
    out.push('\n');
    let known: usize = rows
        .iter()
        .filter_map(|row| row[3].parse::<usize>().ok())
        .sum();
    let _ = write!(out, "Trainable params: {known}");
    if rows.iter().any(|row| row[3] == "?") {
        out.push_str(" + ? (layers of your own: see PARAM_COUNT)");
    } else {
        // As `nn::Summary` writes the bytes, for the default scalar, `f32`.
        let bytes = known * 4;
        let n = bytes as f64;
        let _ = if bytes < 1024 {
            write!(out, " ({bytes} B)")
        } else if n < 1024.0 * 1024.0 {
            write!(out, " ({:.1} KiB)", n / 1024.0)
        } else {
            write!(out, " ({:.1} MiB)", n / (1024.0 * 1024.0))
        };
    }
    out
}

// ---------------------------------------------------------------------------------------
// Diagrams.

/// Fill colours: inputs, layers, uses of a shared layer, element-wise operations.
const INPUT_FILL: &str = "#dbeafe";
const LAYER_FILL: &str = "#fef3c7";
const SHARED_FILL: &str = "#fed7aa";
const SHARED_STROKE: &str = "#c2410c";
const OP_FILL: &str = "#e5e7eb";

/// The lines of a node's label: name, operation, shape, and its role.
fn label_lines(graph: &Graph, id: NodeId) -> Vec<String> {
    let node = &graph.model.nodes[id];
    let mut lines = vec![
        node.name.to_string(),
        graph.operation(id),
        shape_text(&node.shape),
    ];
    let mut roles = Vec::new();
    if let Some((k, n)) = graph.shared_use(id) {
        roles.push(format!("shared, use {k} of {n}"));
    }
    if graph.is_output(id) {
        roles.push("output".to_string());
    }
    if !roles.is_empty() {
        lines.push(roles.join(", "));
    }
    lines
}

/// The label of the edge from a concatenation's `k`-th part: the rows it fills.
fn edge_label(graph: &Graph, child: NodeId, k: usize) -> Option<String> {
    match graph.contribution(child, k) {
        Math::Rows(_, first, last) => Some(format!("rows {first}:{last}")),
        _ => None,
    }
}

/// The graph in Graphviz DOT.
fn dot(model: &Model) -> String {
    let graph = Graph::new(model);
    let quoted = |text: &str| format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\""));
    let mut out = String::new();
    let _ = writeln!(out, "digraph {} {{", quoted(&model.name.to_string()));
    let _ = writeln!(
        out,
        "  // Generated by nn::network! from the checked graph: each node with its \
         operation and the shape of one sample."
    );
    out.push_str("  rankdir=TB;\n");
    out.push_str(
        "  node [shape=box, style=\"rounded,filled\", fillcolor=\"white\", \
         fontname=\"Helvetica\", fontsize=12];\n",
    );
    out.push_str("  edge [fontname=\"Helvetica\", fontsize=10];\n");
    for (id, node) in model.nodes.iter().enumerate() {
        let label = label_lines(&graph, id).join("\n");
        let mut attributes = vec![format!("label={}", quoted(&label).replace('\n', "\\n"))];
        let fill = match node.op {
            Op::Input => Some(INPUT_FILL),
            Op::Layer { .. } if graph.shared_use(id).is_some() => {
                attributes.push(format!("color=\"{SHARED_STROKE}\", penwidth=2"));
                Some(SHARED_FILL)
            }
            Op::Layer { .. } => Some(LAYER_FILL),
            Op::Binary { .. } | Op::Concat(_) | Op::Flatten(_) => Some(OP_FILL),
            Op::Activation { .. } => None,
        };
        if let Some(fill) = fill {
            attributes.push(format!("fillcolor=\"{fill}\""));
        }
        if graph.is_output(id) {
            attributes.push("peripheries=2".to_string());
        }
        let _ = writeln!(
            out,
            "  {} [{}];",
            quoted(&node.name.to_string()),
            attributes.join(", ")
        );
    }
    for (id, node) in model.nodes.iter().enumerate() {
        for (k, parent) in node.op.parents().into_iter().enumerate() {
            let label = edge_label(&graph, id, k)
                .map(|label| format!(" [label={}]", quoted(&label)))
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "  {} -> {}{label};",
                quoted(&graph.name(parent)),
                quoted(&graph.name(id))
            );
        }
    }
    for (layer, uses) in graph.uses.iter().enumerate() {
        for pair in uses.windows(2) {
            let _ = writeln!(
                out,
                "  {} -> {} [style=dashed, dir=none, constraint=false, color=\"{SHARED_STROKE}\", \
                 label={}];",
                quoted(&graph.name(pair[0])),
                quoted(&graph.name(pair[1])),
                quoted(&format!("same {}", model.layers[layer].name))
            );
        }
    }
    out.push_str("}\n");
    out
}

/// The graph as a Mermaid flowchart.
fn mermaid(model: &Model) -> String {
    let graph = Graph::new(model);
    let ids = mermaid_ids(model);
    let escape = |text: &str| {
        text.replace('"', "#quot;")
            .replace('<', "#lt;")
            .replace('>', "#gt;")
    };
    let mut out = String::from("flowchart TD\n");
    let mut classes: Vec<(&str, Vec<&str>)> = vec![
        ("input", Vec::new()),
        ("layer", Vec::new()),
        ("shared", Vec::new()),
        ("op", Vec::new()),
        ("output", Vec::new()),
    ];
    for (id, node) in model.nodes.iter().enumerate() {
        let label = escape(&label_lines(&graph, id).join("<br/>")).replace("#lt;br/#gt;", "<br/>");
        let (open, close, class) = match node.op {
            Op::Input => ("([", "])", "input"),
            Op::Layer { .. } if graph.shared_use(id).is_some() => ("[", "]", "shared"),
            Op::Layer { .. } => ("[", "]", "layer"),
            Op::Activation { .. } => ("(", ")", ""),
            Op::Binary { .. } | Op::Concat(_) | Op::Flatten(_) => ("{{", "}}", "op"),
        };
        let _ = writeln!(out, "  {}{open}\"{label}\"{close}", ids[id]);
        for (name, members) in &mut classes {
            if *name == class || (*name == "output" && graph.is_output(id)) {
                members.push(&ids[id]);
            }
        }
    }
    for (id, node) in model.nodes.iter().enumerate() {
        for (k, parent) in node.op.parents().into_iter().enumerate() {
            match edge_label(&graph, id, k) {
                Some(label) => {
                    let _ = writeln!(out, "  {} -->|\"{label}\"| {}", ids[parent], ids[id]);
                }
                None => {
                    let _ = writeln!(out, "  {} --> {}", ids[parent], ids[id]);
                }
            }
        }
    }
    for (layer, uses) in graph.uses.iter().enumerate() {
        for pair in uses.windows(2) {
            let _ = writeln!(
                out,
                "  {} -.-|\"same {}\"| {}",
                ids[pair[0]], model.layers[layer].name, ids[pair[1]]
            );
        }
    }
    let styles = [
        ("input", format!("fill:{INPUT_FILL},stroke:#1d4ed8")),
        ("layer", format!("fill:{LAYER_FILL},stroke:#b45309")),
        (
            "shared",
            format!("fill:{SHARED_FILL},stroke:{SHARED_STROKE},stroke-width:3px"),
        ),
        ("op", format!("fill:{OP_FILL},stroke:#4b5563")),
        ("output", "stroke-width:3px".to_string()),
    ];
    for (name, style) in &styles {
        let members = &classes.iter().find(|(n, _)| n == name).expect("a class").1;
        if !members.is_empty() {
            let _ = writeln!(out, "  classDef {name} {style}");
            let _ = writeln!(out, "  class {} {name}", members.join(","));
        }
    }
    out
}

/// Mermaid ids: the node names, except where a name is one of Mermaid's keywords.
fn mermaid_ids(model: &Model) -> Vec<String> {
    const KEYWORDS: &[&str] = &[
        "end",
        "graph",
        "flowchart",
        "subgraph",
        "direction",
        "style",
        "class",
        "classDef",
        "click",
        "linkStyle",
        "default",
        "call",
        "href",
    ];
    let names: Vec<String> = model.nodes.iter().map(|n| n.name.to_string()).collect();
    names
        .iter()
        .map(|name| {
            let mut id = name.clone();
            if KEYWORDS.contains(&name.as_str()) {
                while names.contains(&id) {
                    id = format!("{id}_");
                }
            }
            id
        })
        .collect()
}
