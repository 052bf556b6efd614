//! `MultiHeadAttention<HEADS, causal = ..>` and `SelfAttention<causal = ..>` (one head):
//! `nn_core::layers::MultiHeadAttention` (PyTorch's `nn.MultiheadAttention` used as
//! self-attention, `batch_first`) over a sequence `[S, D]`.

use super::{
    Args, Backward, BuiltinLayer, Forward, InitialState, Misfit, Parameter, Site, Stated, Use, n,
};
use crate::math::{Definition, Equation, Func, Math, ParamName};
use crate::shape::{Dim, Shape};
use proc_macro2::TokenStream;
use quote::{ToTokens, quote};

/// Scaled dot-product self-attention with `heads` heads.
pub struct Attention {
    /// The number of heads as written (blamed when it does not divide the features).
    heads: Stated,
    /// That number (the macro must know it).
    count: usize,
    causal: bool,
}

/// The stacked query, key and value projection, PyTorch's `in_proj_weight`.
const W_IN: ParamName = ParamName::WEIGHT.indexed("in");
/// `in_proj_bias`.
const B_IN: ParamName = ParamName::BIAS.indexed("in");
/// The output projection, `out_proj.weight`.
const W_OUT: ParamName = ParamName::WEIGHT.indexed("out");
/// `out_proj.bias`.
const B_OUT: ParamName = ParamName::BIAS.indexed("out");

/// `MultiHeadAttention<HEADS, causal = ..>`.
pub fn parse_multi_head(args: &mut Args) -> Option<Box<dyn BuiltinLayer>> {
    let heads = args.positional_size("the number of heads");
    let count = heads
        .as_ref()
        .and_then(|h| args.known(h, "the number of heads"));
    let causal = args.named_bool("causal", false);
    let (Some(heads), Some(count)) = (heads, count) else {
        if !args.has_errors() {
            args.error_on_layer(
                "`MultiHeadAttention` takes its number of heads, e.g. `MultiHeadAttention<4>`",
            );
        }
        return None;
    };
    Some(Box::new(Attention {
        heads: heads.into(),
        count,
        causal,
    }))
}

/// `SelfAttention<causal = ..>`: one head.
pub fn parse_single_head(args: &mut Args) -> Option<Box<dyn BuiltinLayer>> {
    let causal = args.named_bool("causal", false);
    let heads = Stated {
        value: Dim::Known(1),
        tokens: args.kind.to_token_stream(),
    };
    Some(Box::new(Attention {
        heads,
        count: 1,
        causal,
    }))
}

impl BuiltinLayer for Attention {
    fn name(&self) -> &'static str {
        "MultiHeadAttention"
    }

    fn output_shape(&self, input: &Shape, at: &Site) -> Result<Shape, Misfit> {
        let heads = self.count;
        match input.dims() {
            [_, d] => {
                let message = format!(
                    "`{}` splits `{}`'s {d} features into {heads} heads, but {d} is not a \
                     multiple of {heads}",
                    at.layer, at.arg
                );
                at.require_divides(heads, d, message, Some(&self.heads))?;
                Ok(input.clone())
            }
            _ => Err(at.wrong_rank(self.name(), "sequence [S, D]", input)),
        }
    }

    fn initial_state(&self) -> Option<InitialState> {
        None
    }

    fn parameters(&self, input: &Shape) -> Vec<Parameter> {
        let d = input.last();
        let d3 = Dim::Known(3).mul(d);
        vec![
            Parameter::new(W_IN, [&d3, d]),
            Parameter::new(B_IN, [&d3]),
            Parameter::new(W_OUT, [d, d]),
            Parameter::new(B_OUT, [d]),
        ]
    }

    fn has_state(&self) -> bool {
        false
    }

    fn has_cache(&self, _input: &Shape) -> bool {
        true
    }

    /// `S·(4D + S)`, `nn_core`'s `MultiHeadAttention::SCRATCH`: a sample's `[Q; K; V]` and
    /// `O` (their gradients in backward), the batch's side by side for the projections'
    /// products, and one head's `S × S` attention weights (or their gradient) after them.
    fn scratch_per_sample(&self, input: &Shape) -> Dim {
        let (steps, d) = (&input.dims()[0], &input.dims()[1]);
        steps.mul(&Dim::Known(4).mul(d).add(steps))
    }

    fn scratch_per_call(&self, _input: &Shape) -> Dim {
        Dim::Known(0)
    }

    fn describe(&self, _input: &Shape, _output: &Shape) -> String {
        format!(
            "MultiHeadAttention({} heads{})",
            self.count,
            if self.causal { ", causal" } else { "" }
        )
    }

    fn type_tokens(
        &self,
        nn: &TokenStream,
        input: &Shape,
        _output: &Shape,
        _with_state: bool,
    ) -> TokenStream {
        let (steps, d) = (&input.dims()[0], &input.dims()[1]);
        let (s, h, d3) = (n(steps), n(self.count), n(Dim::Known(3).mul(d)));
        let d = n(d);
        let (in_size, causal) = (n(input.size()), self.causal);
        quote! { #nn::layers::MultiHeadAttention<T, #d, #h, #s, #in_size, #d3, #causal> }
    }

    // A sample is a matrix whose rows are the positions, as PyTorch's `batch_first` layout
    // reads it; head `h` uses `E = D/H` columns of each of `Q`, `K` and `V`.

    fn forward_equations(&self, at: &Use) -> Forward {
        let (steps, d) = (at.input.dims()[0].clone(), at.input.dims()[1].clone());
        let (heads, e) = (self.count, d.div(self.count));
        let d3 = Dim::Known(3).mul(&d);
        let masked = if self.causal {
            "; causal: −∞ above the diagonal"
        } else {
            ""
        };
        let equations = vec![
            Equation::new(
                qkv(),
                Math::Sum(vec![
                    Math::Product(vec![at.x.clone(), Math::transpose(at.param(W_IN))]),
                    Math::Product(vec![Math::Ones, Math::transpose(at.param(B_IN))]),
                ]),
                [&steps, &d3],
            )
            .note(match heads {
                1 => format!("{}: queries, keys and values, one head", at.layer),
                _ => format!(
                    "{}: queries, keys and values, {heads} heads of E = {e} columns each",
                    at.layer
                ),
            }),
            Equation::new(
                sym("A_h", "A_h"),
                Math::over(
                    Math::Product(vec![sym("Q_h", "Q_h"), Math::transpose(sym("K_h", "K_h"))]),
                    root(&e),
                ),
                [&steps, &steps],
            )
            .note(format!("{}{masked}", for_each_head(heads))),
            Equation::new(
                sym("P_h", "P_h"),
                Func::apply("softmax", vec![sym("A_h", "A_h")]),
                [&steps, &steps],
            )
            .note("row by row"),
            Equation::new(
                sym("O_h", "O_h"),
                Math::Product(vec![sym("P_h", "P_h"), sym("V_h", "V_h")]),
                [&steps, &e],
            ),
            Equation::new(sym("O", "O"), heads_side_by_side(heads), [&steps, &d])
                .note("the heads side by side"),
        ];
        Forward {
            steps: equations,
            value: Math::Sum(vec![
                Math::Product(vec![sym("O", "O"), Math::transpose(at.param(W_OUT))]),
                Math::Product(vec![Math::Ones, Math::transpose(at.param(B_OUT))]),
            ]),
            note: String::new(),
        }
    }

    fn backward_equations(&self, at: &Use) -> Backward {
        let (steps, d) = (at.input.dims()[0].clone(), at.input.dims()[1].clone());
        let (heads, e) = (self.count, d.div(self.count));
        let d3 = Dim::Known(3).mul(&d);
        let (p, dp) = (sym("P_h", "P_h"), sym("∂P_h", "\\partial P_h"));
        let d_qkv = sym(
            "∂[Q K V]",
            "\\partial \\begin{bmatrix} Q & K & V \\end{bmatrix}",
        );
        let equations = vec![
            Equation::new(
                sym("∂O", "\\partial O"),
                Math::Product(vec![at.dy(), at.param(W_OUT)]),
                [&steps, &d],
            )
            .note(at.layer.clone()),
            Equation::new(
                dp.clone(),
                Math::Product(vec![
                    sym("∂O_h", "\\partial O_h"),
                    Math::transpose(sym("V_h", "V_h")),
                ]),
                [&steps, &steps],
            )
            .note(for_each_head(heads)),
            Equation::new(
                sym("∂V_h", "\\partial V_h"),
                Math::Product(vec![
                    Math::transpose(p.clone()),
                    sym("∂O_h", "\\partial O_h"),
                ]),
                [&steps, &e],
            ),
            Equation::new(
                sym("∂A_h", "\\partial A_h"),
                Math::hadamard(
                    p.clone(),
                    Math::minus(
                        dp.clone(),
                        Math::Product(vec![
                            Func::apply("rowsum", vec![Math::hadamard(p, dp)]),
                            Math::transpose(Math::Ones),
                        ]),
                    ),
                ),
                [&steps, &steps],
            )
            .note("softmax's vector-Jacobian product, row by row"),
            Equation::new(
                sym("∂Q_h", "\\partial Q_h"),
                Math::over(
                    Math::Product(vec![sym("∂A_h", "\\partial A_h"), sym("K_h", "K_h")]),
                    root(&e),
                ),
                [&steps, &e],
            ),
            Equation::new(
                sym("∂K_h", "\\partial K_h"),
                Math::over(
                    Math::Product(vec![
                        Math::transpose(sym("∂A_h", "\\partial A_h")),
                        sym("Q_h", "Q_h"),
                    ]),
                    root(&e),
                ),
                [&steps, &e],
            ),
            Equation::new(
                d_qkv.clone(),
                sym(
                    "[∂Q ∂K ∂V]",
                    "\\begin{bmatrix} \\partial Q & \\partial K & \\partial V \\end{bmatrix}",
                ),
                [&steps, &d3],
            )
            .note("each the heads' side by side"),
        ];
        Backward {
            steps: equations,
            input_gradient: Math::Product(vec![d_qkv, at.param(W_IN)]),
        }
    }

    fn parameter_gradients(&self, at: &Use) -> Vec<Math> {
        let d_qkv = sym(
            "∂[Q K V]",
            "\\partial \\begin{bmatrix} Q & K & V \\end{bmatrix}",
        );
        vec![
            Math::Product(vec![Math::transpose(d_qkv.clone()), at.x.clone()]),
            Math::Product(vec![Math::transpose(d_qkv), Math::Ones]),
            Math::Product(vec![Math::transpose(at.dy()), sym("O", "O")]),
            Math::Product(vec![Math::transpose(at.dy()), Math::Ones]),
        ]
    }

    fn definitions(&self, _at: &Use) -> Vec<Definition> {
        let mut definitions = vec![
            Definition::new(
                "Q_h, K_h, V_h: the columns of head h in Q, K and V (likewise O_h, ∂O_h of O, \
                 ∂O); softmax and rowsum act on each row",
                "Q_h, K_h, V_h &: \\text{the columns of head } h \\text{ in } Q, K, V \\text{; \
                 softmax and rowsum act on each row}",
            ),
            Definition::ones(),
        ];
        if self.causal {
            definitions.push(Definition::new(
                "causal: A_h[s, t] = −∞ for t > s, so that a position attends to itself and to \
                 earlier ones only",
                "\\text{causal} &: A_h[s, t] = -\\infty \\text{ for } t > s",
            ));
        }
        definitions
    }
}

/// `[Q K V]`, the projections of the input.
fn qkv() -> Math {
    sym("[Q K V]", "\\begin{bmatrix} Q & K & V \\end{bmatrix}")
}

/// `for each head h = 1…4`, or nothing for one head.
fn for_each_head(heads: usize) -> String {
    match heads {
        1 => "the one head, h = 1".to_string(),
        _ => format!("for each head h = 1…{heads}"),
    }
}

/// `[O_1 O_2]`, `[O_1 … O_4]`, or `O_1` for one head.
fn heads_side_by_side(heads: usize) -> Math {
    match heads {
        1 => sym("O_1", "O_1"),
        2 => sym("[O_1 O_2]", "\\begin{bmatrix} O_1 & O_2 \\end{bmatrix}"),
        _ => sym(
            format!("[O_1 … O_{heads}]"),
            format!("\\begin{{bmatrix}} O_1 & \\cdots & O_{{{heads}}} \\end{{bmatrix}}"),
        ),
    }
}

/// `√E`, for a head size `E`.
fn root(e: &Dim) -> Math {
    Math::Sqrt(Box::new(sym(e.to_string(), e.to_string())))
}

/// A symbol with its text and LaTeX.
fn sym(text: impl Into<String>, tex: impl Into<String>) -> Math {
    Math::symbol(text, tex)
}
