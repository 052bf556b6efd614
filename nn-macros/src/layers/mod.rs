//! The built-in layers of the DSL, one file per family as in `nn-core/src/layers/`: each
//! reads its arguments, gives its output shape (computed here, so the generated code holds
//! concrete numbers and builds on stable Rust), its parameters, whether it keeps state or a
//! cache, how the summary describes it, the `nn-core` type the code uses, and its equations.
//! Shapes follow PyTorch: `[C, L]` for 1-d convolutions, `[C, H, W]` for 2-d ones, `[S, D]`
//! for sequences.
//!
//! Every fact about a built-in layer is a method of [`BuiltinLayer`] without a default (the
//! parameter count is derived from the parameters), so a new family answers every question
//! or does not compile; [`BUILTINS`] is the one table of the DSL's names. Adding a built-in
//! layer: its file in `nn-core/src/layers/`, its file here implementing [`BuiltinLayer`], its
//! line in [`BUILTINS`], and a use of it in `tests/param_counts.rs` (see the test below).

mod args;
mod attention;
mod conv;
mod dense;
mod dropout;
mod embedding;
mod group_norm;
mod norm;
mod pool;
mod positions;
mod recurrent;

use args::{Args, Stated};

use crate::diagnostics::article;
use crate::math::{Definition, Equation, Math, ParamName};
use crate::parse::LayerArg;
use crate::shape::{Dim, Relation, Shape};
use proc_macro2::{Literal, TokenStream};
use std::cell::RefCell;
use syn::Ident;

/// A built-in layer, with its arguments checked: everything the checker, the code generator
/// and `explain` need to know of it. The input shape is that of the layer's (first) use.
pub trait BuiltinLayer {
    /// The layer's kind as messages and the summary name it: `Conv2d`.
    fn name(&self) -> &'static str;

    /// The output shape for an input of shape `input`, or why the input does not fit (also
    /// when the declaration states another input size than the graph gives).
    fn output_shape(&self, input: &Shape, at: &Site) -> Result<Shape, Misfit>;

    /// The initial state the layer may be called with (`gru(x, h0)`), if any.
    fn initial_state(&self) -> Option<InitialState>;

    /// The trainable parameters, in the order of the layer's parameter slice, with
    /// PyTorch's shapes.
    fn parameters(&self, input: &Shape) -> Vec<Parameter>;

    /// Whether the layer keeps state across passes (a field of the network's `state`).
    fn has_state(&self) -> bool;

    /// Whether the layer keeps a cache in the tape (possibly `()`, so that the layer's
    /// implementation may choose), for an input of shape `input`.
    fn has_cache(&self, input: &Shape) -> bool;

    /// Scalars of scratch memory per sample the layer's passes use (its `Layer::SCRATCH`,
    /// which the generated code asserts equal), for an input of shape `input`: symbolic when
    /// it depends on a symbolic size.
    fn scratch_per_sample(&self, input: &Shape) -> Dim;

    /// Scalars of scratch memory the layer's passes use whatever the batch (its
    /// `Layer::SCRATCH_PER_CALL`, asserted equal): one buffer of the workspace and of the tape,
    /// shared by every layer. A layer has scratch of one kind or the other, not both.
    fn scratch_per_call(&self, input: &Shape) -> Dim;

    /// The operation as the summary shows it: `Conv2d(1 → 6, 5×5, stride 2×2)`.
    fn describe(&self, input: &Shape, output: &Shape) -> String;

    /// The `nn-core` type of the layer (`nn` is the path of the `nn` crate), for an input and
    /// output of these shapes; `with_state`: called with an initial state.
    fn type_tokens(
        &self,
        nn: &TokenStream,
        input: &Shape,
        output: &Shape,
        with_state: bool,
    ) -> TokenStream;

    /// The forward pass of one use, for `explain`: the intermediate equations, then the
    /// output's value.
    fn forward_equations(&self, at: &Use) -> Forward;

    /// The backward pass of one use, for `explain`: the intermediate equations (run after
    /// `∂L/∂y` is complete), then the term the use adds to the gradient of its input.
    fn backward_equations(&self, at: &Use) -> Backward;

    /// The term one use adds to each parameter's gradient, in the order of
    /// [`BuiltinLayer::parameters`].
    fn parameter_gradients(&self, at: &Use) -> Vec<Math>;

    /// The definitions the equations of a use need, for the derivation's "where" section.
    fn definitions(&self, at: &Use) -> Vec<Definition>;

    /// Number of trainable scalars: the sizes of the parameters.
    fn param_count(&self, input: &Shape) -> Dim {
        self.parameters(input)
            .iter()
            .fold(Dim::Known(0), |count, p| count.add(&p.shape.size()))
    }
}

/// A parameter tensor of a built-in layer: its symbol in the equations and PyTorch's shape.
pub struct Parameter {
    pub name: ParamName,
    pub shape: Shape,
}

impl Parameter {
    fn new(name: ParamName, shape: impl Into<Shape>) -> Self {
        Parameter {
            name,
            shape: shape.into(),
        }
    }
}

/// One use of a layer, as the equations name it.
pub struct Use<'a> {
    /// The layer's name, which its parameters carry: `fc1` in `W_fc1`.
    pub layer: String,
    /// The node the layer reads.
    pub x: Math,
    /// For a recurrent layer called with an initial state, the nodes packed into `x`: the
    /// sequence, then the state (`h0`, or `h0` and `c0`); otherwise empty.
    pub parts: Vec<Math>,
    /// The node the use computes.
    pub y: Math,
    /// The shape of the input as the layer's rules see it (the sequence's, when packed).
    pub input: &'a Shape,
}

impl Use<'_> {
    /// `∂L/∂y`.
    fn dy(&self) -> Math {
        Math::grad(self.y.clone())
    }

    /// This layer's parameter `name`: `W_fc1`.
    fn param(&self, name: ParamName) -> Math {
        name.of(&self.layer)
    }
}

/// The forward equations of a use: `steps` (each with its shape), then `y = value`.
pub struct Forward {
    pub steps: Vec<Equation>,
    pub value: Math,
    /// A remark on the output's line (a convolution's stride, padding and dilation).
    pub note: String,
}

/// The backward equations of a use: `steps`, then the term added to `∂L/∂x`.
pub struct Backward {
    pub steps: Vec<Equation>,
    pub input_gradient: Math,
}

/// The initial state a recurrent layer may be called with: `count` vectors of `size`
/// (`h0`, or `h0` and `c0`).
pub struct InitialState {
    pub count: usize,
    pub size: Dim,
}

/// Where a layer is applied, for messages: the layer's name and its input's label; and the
/// rules about it the macro could not decide (a size is a constant), for rustc to check.
pub struct Site<'a> {
    pub layer: &'a str,
    pub arg: &'a str,
    pub deferred: RefCell<Vec<Deferred>>,
}

/// A rule of a layer's use left to rustc: its condition, the message if it fails, and the
/// argument of the declaration to blame (`None`: the call).
pub struct Deferred {
    pub condition: TokenStream,
    pub message: String,
    pub blame: Option<TokenStream>,
}

impl<'a> Site<'a> {
    /// Applying `layer` to the node labelled `arg`.
    pub fn new(layer: &'a str, arg: &'a str) -> Self {
        Site {
            layer,
            arg,
            deferred: RefCell::new(Vec::new()),
        }
    }

    /// A rule: `Err` if the macro knows it fails (`holds` is `Some(false)`), recorded for
    /// rustc as `condition` if it cannot tell (`None`), with the same message either way.
    fn require(
        &self,
        holds: Option<bool>,
        condition: TokenStream,
        message: String,
        blame: Option<&Stated>,
    ) -> Result<(), Misfit> {
        match holds {
            Some(true) => Ok(()),
            Some(false) => Err(Misfit {
                message,
                blame: blame.map(|stated| stated.tokens.clone()),
            }),
            None => {
                self.deferred.borrow_mut().push(Deferred {
                    condition,
                    message,
                    blame: blame.map(|stated| stated.tokens.clone()),
                });
                Ok(())
            }
        }
    }

    /// The rule `a == b`.
    fn require_equal(
        &self,
        a: &Dim,
        b: &Dim,
        message: String,
        blame: Option<&Stated>,
    ) -> Result<(), Misfit> {
        let holds = match a.relation(b) {
            Relation::Equal => Some(true),
            Relation::Different => Some(false),
            Relation::Unknown => None,
        };
        let (x, y) = (a.expr(), b.expr());
        self.require(holds, quote::quote!(#x == #y), message, blame)
    }

    /// The rule `a <= b`.
    fn require_at_most(&self, a: &Dim, b: &Dim, message: String) -> Result<(), Misfit> {
        let holds = match (a.known(), b.known()) {
            (Some(a), Some(b)) => Some(a <= b),
            _ => None,
        };
        let (x, y) = (a.expr(), b.expr());
        self.require(holds, quote::quote!(#x <= #y), message, None)
    }

    /// The rule `k` divides `a`.
    fn require_divides(
        &self,
        k: usize,
        a: &Dim,
        message: String,
        blame: Option<&Stated>,
    ) -> Result<(), Misfit> {
        let holds = a.known().map(|a| a.is_multiple_of(k));
        let x = a.expr();
        self.require(holds, quote::quote!(#x % #k == 0), message, blame)
    }

    /// The input has the wrong number of dimensions: `wanted` describes the right ones.
    fn wrong_rank(&self, kind: &str, wanted: &str, input: &Shape) -> Misfit {
        let Site { layer, arg, .. } = self;
        Misfit::at_call(format!(
            "`{layer}` is {} {kind} layer and needs a {wanted} input, but `{arg}` has shape \
             {input}",
            article(kind)
        ))
    }
}

/// Why an input does not fit a layer, and what to blame.
pub struct Misfit {
    pub message: String,
    /// The argument of the declaration to span the error on; `None`: the call.
    pub blame: Option<TokenStream>,
}

impl Misfit {
    fn at_call(message: String) -> Self {
        Misfit {
            message,
            blame: None,
        }
    }
}

/// A name of the DSL for a built-in layer, and how to read its arguments.
pub struct Builtin {
    /// As written: `Conv2d`.
    pub name: &'static str,
    /// Reads the arguments, reporting problems to `args`; `None` if they are unusable.
    parse: fn(&mut Args) -> Option<Box<dyn BuiltinLayer>>,
}

/// Every built-in layer, in the order messages list them.
pub const BUILTINS: &[Builtin] = &[
    Builtin {
        name: "Dense",
        parse: dense::parse,
    },
    Builtin {
        name: "Conv1d",
        parse: |args| conv::parse(args, 1, false),
    },
    Builtin {
        name: "Conv2d",
        parse: |args| conv::parse(args, 2, false),
    },
    Builtin {
        name: "MaxPool1d",
        parse: |args| pool::parse(args, pool::Kind::Max, 1),
    },
    Builtin {
        name: "MaxPool2d",
        parse: |args| pool::parse(args, pool::Kind::Max, 2),
    },
    Builtin {
        name: "AvgPool1d",
        parse: |args| pool::parse(args, pool::Kind::Average, 1),
    },
    Builtin {
        name: "AvgPool2d",
        parse: |args| pool::parse(args, pool::Kind::Average, 2),
    },
    Builtin {
        name: "GlobalAvgPool",
        parse: pool::parse_global,
    },
    Builtin {
        name: "BatchNorm1d",
        parse: |args| norm::parse_batch_norm(args, 1),
    },
    Builtin {
        name: "BatchNorm2d",
        parse: |args| norm::parse_batch_norm(args, 2),
    },
    Builtin {
        name: "Dropout",
        parse: dropout::parse,
    },
    Builtin {
        name: "Rnn",
        parse: |args| recurrent::parse(args, recurrent::Cell::Rnn),
    },
    Builtin {
        name: "Gru",
        parse: |args| recurrent::parse(args, recurrent::Cell::Gru),
    },
    Builtin {
        name: "Lstm",
        parse: |args| recurrent::parse(args, recurrent::Cell::Lstm),
    },
    Builtin {
        name: "LayerNorm",
        parse: norm::parse_layer_norm,
    },
    Builtin {
        name: "GroupNorm",
        parse: group_norm::parse,
    },
    Builtin {
        name: "MultiHeadAttention",
        parse: attention::parse_multi_head,
    },
    Builtin {
        name: "SelfAttention",
        parse: attention::parse_single_head,
    },
    Builtin {
        name: "Embedding",
        parse: embedding::parse,
    },
    Builtin {
        name: "SinusoidalPositions",
        parse: |args| positions::parse(args, false),
    },
    Builtin {
        name: "LearnedPositions",
        parse: |args| positions::parse(args, true),
    },
    Builtin {
        name: "QatConv2d",
        parse: |args| conv::parse(args, 2, true),
    },
];

/// The built-in layer called `name`.
pub fn builtin(name: &str) -> Option<&'static Builtin> {
    BUILTINS.iter().find(|builtin| builtin.name == name)
}

/// The names of the built-in layers, in order.
pub fn names() -> impl Iterator<Item = &'static str> + Clone {
    BUILTINS.iter().map(|builtin| builtin.name)
}

impl Builtin {
    /// Reads the arguments of `kind<args>` (`kind` is this built-in's name as written);
    /// `Err` holds every problem found.
    pub fn parse(
        &self,
        kind: &Ident,
        args: &[LayerArg],
    ) -> Result<Box<dyn BuiltinLayer>, Vec<syn::Error>> {
        let mut reader = Args::new(kind, args);
        let layer = (self.parse)(&mut reader);
        let errors = reader.finish();
        match (layer, errors.is_empty()) {
            (Some(layer), true) => Ok(layer),
            (_, false) => Err(errors.into_vec()),
            (None, true) => panic!("`{kind}` refused its arguments without saying why"),
        }
    }
}

/// A size as a const generic argument: an unsuffixed literal (`16`, not `16usize`), for
/// readable generated code, or a constant's expression in braces (`{ H }`).
fn n(value: impl Into<Dim>) -> TokenStream {
    value.into().generic()
}

/// A hyper-parameter as the `u64` const generic holding its `f64::to_bits`.
fn bits(value: f64) -> Literal {
    Literal::u64_unsuffixed(value.to_bits())
}

/// Sizes as the summary writes a kernel or a stride: `5×5`.
fn times(sizes: &[usize]) -> String {
    sizes
        .iter()
        .map(usize::to_string)
        .collect::<Vec<_>>()
        .join("×")
}

/// `length`, or `height` / `width`: the spatial axis `d` of a `dims`-d layer.
fn axis_name(dims: usize, d: usize) -> &'static str {
    match (dims, d) {
        (1, _) => "length",
        (_, 0) => "height",
        _ => "width",
    }
}

#[cfg(test)]
mod tests {
    /// `tests/param_counts.rs` checks the parameter count of every layer it uses against
    /// `nn-core`'s `Params::LEN`: every built-in layer must be among them.
    #[test]
    fn every_builtin_has_its_parameter_count_checked() {
        let networks = include_str!("../../../tests/param_counts.rs");
        for name in super::names() {
            assert!(
                networks.contains(&format!(": {name}<"))
                    || networks.contains(&format!(": {name},")),
                "add a `{name}` layer to a network of tests/param_counts.rs"
            );
        }
    }
}
