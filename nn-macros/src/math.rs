//! The notation of `explain`: equations as small trees ([`Math`]), rendered as Unicode text
//! (terminals, rustdoc) and as LaTeX (Markdown `math` blocks). The built-in layers write their
//! own equations in it; `explain` arranges them. Imports only [`Shape`].

use crate::shape::{Dim, Shape};

/// An expression of the derivation.
#[derive(Clone)]
pub enum Math {
    /// A node's value: `h`, `fc1_out`.
    Node(String),
    /// A layer's parameter: `W_fc1`, `γ_bn`, `W_ih_gru`, `θ_scale`.
    Param(ParamName, String),
    /// Any other symbol: `ε`, `x̂_bn`, `r_t`, with its LaTeX.
    Symbol(Symbol),
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
    /// `W ⋆ x`: an operator the definitions explain.
    Infix(Box<Math>, Operator, Box<Math>),
    /// `a/b`, element by element.
    Quotient(Box<Math>, Box<Math>),
    /// `√x`, element by element.
    Sqrt(Box<Math>),
    /// `x²`, element by element.
    Square(Box<Math>),
    /// `relu(x)`, `σ(x)`, `to_argmax(x, ∂L/∂y)`, `scale(x; θ_scale)`.
    Apply(Func, Vec<Math>),
    /// `relu′(x)`.
    Derivative(Func, Box<Math>),
    /// `x[t]`: row `t` of a node, its value at time step (or position) `t`.
    Step(Box<Math>, Index),
    /// `Σ_t x`: a sum over an index.
    SumOver(Index, Box<Math>),
    /// `(x_t)_{t=1…S}`: the sequence of an expression over every step.
    Sequence(Box<Math>, Index, Dim),
    /// Rows `first..=last` (from 1) of a vector: `(∂L/∂c)[1:6]`.
    Rows(Box<Math>, Dim, Dim),
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

/// A parameter's symbol, without its layer: `W`, `b`, `γ`, `W_ih`.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct ParamName {
    /// As text: `W`, `γ`.
    pub text: &'static str,
    /// In LaTeX: `W`, `\gamma`.
    pub tex: &'static str,
    /// Which of the layer's weights: `ih` in `W_ih` (PyTorch's `weight_ih_l0`).
    pub index: Option<&'static str>,
}

impl ParamName {
    /// A weight `W`.
    pub const WEIGHT: Self = Self::new("W", "W");
    /// A bias `b`.
    pub const BIAS: Self = Self::new("b", "b");
    /// Every parameter of a layer of your own, `θ`.
    pub const THETA: Self = Self::new("θ", "\\theta");

    /// A symbol with its LaTeX.
    pub const fn new(text: &'static str, tex: &'static str) -> Self {
        ParamName {
            text,
            tex,
            index: None,
        }
    }

    /// The same symbol with an index: `W_ih`.
    pub const fn indexed(self, index: &'static str) -> Self {
        ParamName {
            index: Some(index),
            ..self
        }
    }

    /// This parameter of the layer `layer`, as an expression.
    pub fn of(self, layer: &str) -> Math {
        Math::Param(self, layer.to_string())
    }
}

/// A symbol that is not a node or a parameter, with its LaTeX.
#[derive(Clone)]
pub struct Symbol {
    pub text: String,
    pub tex: String,
}

/// An index of a sum or a sequence: `t`, with its LaTeX.
#[derive(Clone, Copy)]
pub struct Index {
    pub text: &'static str,
    pub tex: &'static str,
}

impl Index {
    /// The time step of a sequence.
    pub const STEP: Self = Index {
        text: "t",
        tex: "t",
    };
    /// The positions of a channel (or of a sequence), for sums per channel (or feature).
    pub const POSITIONS: Self = Index {
        text: "pos",
        tex: "\\mathrm{pos}",
    };
}

/// An infix operator: `⋆`, with its LaTeX.
#[derive(Clone, Copy)]
pub struct Operator {
    pub text: &'static str,
    pub tex: &'static str,
}

/// A function applied to expressions.
#[derive(Clone)]
pub enum Func {
    /// A function by name, with numeric parameters written after the arguments:
    /// `leaky_relu(x, 0.2)`, `σ(x)`.
    Named {
        text: String,
        tex: String,
        params: Vec<f64>,
    },
    /// A layer of your own, by name: `scale(x; θ_scale)`.
    Layer(String),
}

impl Func {
    /// A function without parameters: `relu`, `σ`, `maxpool`.
    pub fn named(name: &str) -> Self {
        Func::with_params(name, Vec::new())
    }

    /// A function with numeric parameters: `leaky_relu(·, 0.2)`. Its text is its name, but
    /// `σ` for `sigmoid`; its LaTeX name is [`tex_function`]'s.
    pub fn with_params(name: &str, params: Vec<f64>) -> Self {
        Func::Named {
            text: if name == "sigmoid" { "σ" } else { name }.to_string(),
            tex: tex_function(name),
            params,
        }
    }

    /// `name(args)` as an expression.
    pub fn apply(name: &str, args: Vec<Math>) -> Math {
        Math::Apply(Func::named(name), args)
    }
}

impl Math {
    /// `∂L/∂x`.
    pub fn grad(x: Math) -> Math {
        Math::Grad(Box::new(x))
    }

    /// A symbol with its text and LaTeX.
    pub fn symbol(text: impl Into<String>, tex: impl Into<String>) -> Math {
        Math::Symbol(Symbol {
            text: text.into(),
            tex: tex.into(),
        })
    }

    /// `xᵀ`.
    pub fn transpose(x: Math) -> Math {
        Math::Transpose(Box::new(x))
    }

    /// `a ⊙ b`.
    pub fn hadamard(a: Math, b: Math) -> Math {
        Math::Hadamard(Box::new(a), Box::new(b))
    }

    /// `a − b`.
    pub fn minus(a: Math, b: Math) -> Math {
        Math::Difference(Box::new(a), Box::new(b))
    }

    /// `a/b`.
    pub fn over(a: Math, b: Math) -> Math {
        Math::Quotient(Box::new(a), Box::new(b))
    }

    /// `x[t]`.
    pub fn at_step(x: Math) -> Math {
        Math::Step(Box::new(x), Index::STEP)
    }

    /// `Σ_t x`.
    pub fn sum_over_steps(x: Math) -> Math {
        Math::SumOver(Index::STEP, Box::new(x))
    }

    /// 1 for sums, 2 for products, 3 for atoms.
    fn precedence(&self) -> u8 {
        match self {
            Math::Sum(_) | Math::Difference(..) | Math::SumOver(..) => 1,
            Math::Product(_) | Math::Hadamard(..) | Math::Quotient(..) | Math::Infix(..) => 2,
            _ => 3,
        }
    }

    /// As Unicode text: `∂L/∂h = W_fc2ᵀ·∂L/∂fc2_out + ∂L/∂sum`.
    pub fn text(&self) -> String {
        match self {
            Math::Node(name) => name.clone(),
            Math::Param(param, layer) => match param.index {
                None => format!("{}_{layer}", param.text),
                Some(index) => format!("{}_{index}_{layer}", param.text),
            },
            Math::Symbol(symbol) => symbol.text.clone(),
            Math::Grad(x) => format!("∂L/∂{}", x.text()),
            Math::Given(name) => format!("d_{name}"),
            Math::Transpose(x) if x.is_atom() => format!("{}ᵀ", x.text()),
            Math::Transpose(x) => format!("({})ᵀ", x.text()),
            Math::Product(factors) => join(factors, "·", |f| f.operand_text(3)),
            // A product of several: `a ⊙ b ⊙ c`, left to right.
            Math::Hadamard(a, b) if matches!(**a, Math::Hadamard(..)) => {
                format!("{} ⊙ {}", a.text(), b.operand_text(3))
            }
            Math::Hadamard(a, b) => format!("{} ⊙ {}", a.operand_text(3), b.operand_text(3)),
            Math::Sum(terms) => join(terms, " + ", |t| t.operand_text(2)),
            Math::Difference(a, b) => format!("{} − {}", a.operand_text(1), b.operand_text(2)),
            Math::Infix(a, op, b) => {
                format!("{} {} {}", a.operand_text(3), op.text, b.operand_text(3))
            }
            Math::Quotient(a, b) => format!("{}/{}", a.operand_text(3), b.operand_text(3)),
            Math::Sqrt(x) => format!("√{}", x.operand_text(4)),
            Math::Square(x) if x.is_atom() => format!("{}²", x.text()),
            Math::Square(x) => format!("({})²", x.text()),
            Math::Apply(f, args) => f.apply_text(&join(args, ", ", Math::text), ""),
            Math::Derivative(f, x) => f.apply_text(&x.text(), "′"),
            Math::Step(x, index) => format!("{}[{}]", x.operand_text(4), index.text),
            Math::SumOver(index, x) => format!("Σ_{} {}", index.text, x.operand_text(2)),
            Math::Sequence(x, index, last) => {
                format!("({})_{{{}=1…{last}}}", x.text(), index.text)
            }
            Math::Rows(x, first, last) => format!("({})[{first}:{last}]", x.text()),
            Math::Stack(parts) => format!("[{}]", join(parts, "; ", Math::text)),
            Math::Jacobian(y, x) => format!("∂{}/∂{}", y.text(), x.text()),
            Math::Ones => "𝟏".to_string(),
            Math::Exp(x) => format!("exp({})", x.text()),
            Math::Zero => "0".to_string(),
        }
    }

    /// The text of an operand, in parentheses if it binds looser than `at` (4: anything but
    /// a name).
    fn operand_text(&self, at: u8) -> String {
        if self.precedence() < at && !(at == 4 && self.is_name()) {
            format!("({})", self.text())
        } else {
            self.text()
        }
    }

    /// A single name, which takes a subscript or a power without parentheses.
    fn is_name(&self) -> bool {
        matches!(
            self,
            Math::Node(_) | Math::Param(..) | Math::Symbol(_) | Math::Ones
        )
    }

    /// A name, or a name with a subscript or arguments: transposed without parentheses.
    fn is_atom(&self) -> bool {
        self.is_name() || matches!(self, Math::Step(..) | Math::Apply(..))
    }

    /// As LaTeX.
    pub fn tex(&self) -> String {
        match self {
            Math::Node(name) => tex_name(name),
            Math::Param(param, layer) => match param.index {
                None => format!("{}_{{\\mathrm{{{}}}}}", param.tex, tex_escape(layer)),
                Some(index) => format!(
                    "{}_{{\\mathrm{{{index}}},\\,\\mathrm{{{}}}}}",
                    param.tex,
                    tex_escape(layer)
                ),
            },
            Math::Symbol(symbol) => symbol.tex.clone(),
            Math::Grad(x) => format!("\\frac{{\\partial L}}{{\\partial {}}}", x.tex()),
            Math::Given(name) => format!("\\mathtt{{d\\_{}}}", tex_escape(name)),
            Math::Transpose(x) if x.is_atom() => format!("{}^{{\\top}}", x.tex()),
            Math::Transpose(x) => format!("\\left({}\\right)^{{\\top}}", x.tex()),
            Math::Product(factors) => join(factors, " \\, ", |f| f.operand_tex(3)),
            Math::Hadamard(a, b) if matches!(**a, Math::Hadamard(..)) => {
                format!("{} \\odot {}", a.tex(), b.operand_tex(3))
            }
            Math::Hadamard(a, b) => {
                format!("{} \\odot {}", a.operand_tex(3), b.operand_tex(3))
            }
            Math::Sum(terms) => join(terms, " + ", |t| t.operand_tex(2)),
            Math::Difference(a, b) => format!("{} - {}", a.operand_tex(1), b.operand_tex(2)),
            Math::Infix(a, op, b) => {
                format!("{} {} {}", a.operand_tex(3), op.tex, b.operand_tex(3))
            }
            Math::Quotient(a, b) => format!("\\frac{{{}}}{{{}}}", a.tex(), b.tex()),
            Math::Sqrt(x) => format!("\\sqrt{{{}}}", x.tex()),
            Math::Square(x) if x.is_atom() => format!("{}^{{2}}", x.tex()),
            Math::Square(x) => format!("\\left({}\\right)^{{2}}", x.tex()),
            Math::Apply(f, args) => f.apply_tex(&join(args, ", ", Math::tex), ""),
            Math::Derivative(f, x) => f.apply_tex(&x.tex(), "'"),
            Math::Step(x, index) => format!("{}[{}]", x.operand_tex(4), index.tex),
            Math::SumOver(index, x) => {
                format!("\\sum_{{{}}} {}", index.tex, x.operand_tex(2))
            }
            Math::Sequence(x, index, last) => {
                format!("\\left({}\\right)_{{{}=1}}^{{{last}}}", x.tex(), index.tex)
            }
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
        if self.precedence() < at && !(at == 4 && self.is_name()) {
            format!("\\left({}\\right)", self.tex())
        } else {
            self.tex()
        }
    }
}

impl Func {
    /// `relu(x)`, `leaky_relu′(x, 0.2)`, `scale(x; θ_scale)`: `prime` is `""` or `"′"`.
    pub fn apply_text(&self, x: &str, prime: &str) -> String {
        match self {
            Func::Named { text, params, .. } => {
                if params.is_empty() {
                    format!("{text}{prime}({x})")
                } else {
                    format!("{text}{prime}({x}, {})", numbers(params))
                }
            }
            Func::Layer(layer) => format!("{layer}{prime}({x}; θ_{layer})"),
        }
    }

    /// As [`Func::apply_text`], in LaTeX: `prime` is `""` or `"'"`.
    pub fn apply_tex(&self, x: &str, prime: &str) -> String {
        match self {
            Func::Named { tex, params, .. } => {
                if params.is_empty() {
                    format!("{tex}{prime}({x})")
                } else {
                    format!("{tex}{prime}({x}, {})", numbers(params))
                }
            }
            Func::Layer(layer) => {
                let layer = tex_escape(layer);
                format!("\\mathrm{{{layer}}}{prime}({x};\\ \\theta_{{\\mathrm{{{layer}}}}})")
            }
        }
    }
}

/// A function's name in LaTeX: `\sigma`, `\tanh`, `\operatorname{relu}`.
pub fn tex_function(func: &str) -> String {
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

/// Underscores escaped for LaTeX: `fc1\_out`.
pub fn tex_escape(name: &str) -> String {
    name.replace('_', "\\_")
}

/// Items rendered and joined by `separator`.
pub fn join<T>(items: &[T], separator: &str, render: impl Fn(&T) -> String) -> String {
    items.iter().map(render).collect::<Vec<_>>().join(separator)
}

/// Numeric parameters as the summary writes them: `0.2`, `1`.
pub fn numbers(values: &[f64]) -> String {
    join(values, ", ", f64::to_string)
}

/// A shape as LaTeX: `\in \mathbb{R}^{32 \times 16}`.
pub fn tex_shape(shape: &Shape) -> String {
    let dims: Vec<String> = shape.dims().iter().map(Dim::to_string).collect();
    format!("\\in \\mathbb{{R}}^{{{}}}", dims.join(" \\times "))
}

/// One line of the derivation: `lhs = rhs`, or `lhs` alone (an input), with the shape of one
/// sample of it and a remark.
pub struct Equation {
    pub lhs: Math,
    pub rhs: Option<Math>,
    /// `None` when unknown (the parameters of a layer of your own).
    pub shape: Option<Shape>,
    pub note: String,
}

impl Equation {
    /// `lhs = rhs`, of this shape, without a remark.
    pub fn new(lhs: Math, rhs: Math, shape: impl Into<Shape>) -> Self {
        Equation {
            lhs,
            rhs: Some(rhs),
            shape: Some(shape.into()),
            note: String::new(),
        }
    }

    /// The same equation with a remark.
    pub fn note(self, note: impl Into<String>) -> Self {
        Equation {
            note: note.into(),
            ..self
        }
    }
}

/// A definition the equations use, e.g. `σ′(t) = σ(t)·(1 − σ(t))`, as text and as a row of
/// a LaTeX `aligned` block (`lhs &= rhs`).
#[derive(Clone, PartialEq, Eq)]
pub struct Definition {
    pub text: String,
    pub tex: String,
}

impl Definition {
    /// A definition with its text and LaTeX.
    pub fn new(text: impl Into<String>, tex: impl Into<String>) -> Self {
        Definition {
            text: text.into(),
            tex: tex.into(),
        }
    }

    /// `𝟏`, a vector of ones.
    pub fn ones() -> Self {
        Definition::new(
            "𝟏: a vector of ones (as long as the product needs)",
            "\\mathbf{1} &: \\text{a vector of ones}",
        )
    }

    /// `Σ_pos`, a sum over positions.
    pub fn sum_over_positions() -> Self {
        Definition::new(
            "Σ_pos v: the sum of v over the positions, for each channel (or feature); parameter \
             gradients are summed over the batch too",
            "\\textstyle\\sum_{\\mathrm{pos}} v &: \\text{the sum of } v \\text{ over the positions, \
             for each channel (or feature)}",
        )
    }
}
