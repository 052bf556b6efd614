//! Normalization: `BatchNorm1d<eps = .., momentum = ..>`, `BatchNorm2d`
//! (`nn_core::layers::BatchNorm`, PyTorch's `nn.BatchNorm1d`, `nn.BatchNorm2d`) and
//! `LayerNorm<eps = ..>` (`nn_core::layers::LayerNorm`, PyTorch's `nn.LayerNorm` over the
//! last dimension).

use super::{
    Args, Backward, BuiltinLayer, Forward, InitialState, Misfit, Parameter, Site, Use, bits, n,
};
use crate::math::{Definition, Equation, Func, Index, Math, ParamName, tex_escape};
use crate::shape::{Dim, Shape};
use proc_macro2::TokenStream;
use quote::quote;

/// γ, the scale of a normalization (PyTorch's `weight`).
pub const GAMMA: ParamName = ParamName::new("γ", "\\gamma");
/// β, the shift of a normalization (PyTorch's `bias`).
pub const BETA: ParamName = ParamName::new("β", "\\beta");

/// The `eps = ..` option: PyTorch's default `1e-5`.
pub fn eps(args: &mut Args) -> f64 {
    args.named_float("eps", 1e-5, |v| v > 0.0, "a positive number")
}

/// Batch normalization of each channel, over `[C]` or `[C, L]` (`dims` 1) or `[C, H, W]`.
pub struct BatchNorm {
    dims: usize,
    eps: f64,
    momentum: f64,
}

/// `BatchNorm1d<eps = .., momentum = ..>`, `BatchNorm2d<..>`.
pub fn parse_batch_norm(args: &mut Args, dims: usize) -> Option<Box<dyn BuiltinLayer>> {
    let eps = eps(args);
    let momentum = args.named_float(
        "momentum",
        0.1,
        |v| (0.0..=1.0).contains(&v),
        "a number in [0, 1]",
    );
    Some(Box::new(BatchNorm {
        dims,
        eps,
        momentum,
    }))
}

impl BuiltinLayer for BatchNorm {
    fn name(&self) -> &'static str {
        if self.dims == 1 {
            "BatchNorm1d"
        } else {
            "BatchNorm2d"
        }
    }

    fn output_shape(&self, input: &Shape, at: &Site) -> Result<Shape, Misfit> {
        match (self.dims, input.dims()) {
            (1, [_] | [_, _]) | (2, [_, _, _]) => Ok(input.clone()),
            (1, _) => Err(at.wrong_rank(self.name(), "[C] or [C, L]", input)),
            _ => Err(at.wrong_rank(self.name(), "[C, H, W]", input)),
        }
    }

    fn initial_state(&self) -> Option<InitialState> {
        None
    }

    fn parameters(&self, input: &Shape) -> Vec<Parameter> {
        let channels = &input.dims()[0];
        vec![
            Parameter::new(GAMMA, [channels]),
            Parameter::new(BETA, [channels]),
        ]
    }

    fn has_state(&self) -> bool {
        true
    }

    fn has_cache(&self, _input: &Shape) -> bool {
        true
    }

    fn scratch_per_sample(&self, _input: &Shape) -> Dim {
        Dim::Known(0)
    }

    fn scratch_per_call(&self, _input: &Shape) -> Dim {
        Dim::Known(0)
    }

    fn describe(&self, input: &Shape, _output: &Shape) -> String {
        format!(
            "{}({}, eps {}, momentum {})",
            self.name(),
            input.dims()[0],
            self.eps,
            self.momentum
        )
    }

    fn type_tokens(
        &self,
        nn: &TokenStream,
        input: &Shape,
        _output: &Shape,
        _with_state: bool,
    ) -> TokenStream {
        let c = n(&input.dims()[0]);
        let s = n(input.dims()[1..].iter().product::<Dim>());
        let in_size = n(input.size());
        let (eps, momentum) = (bits(self.eps), bits(self.momentum));
        quote! { #nn::layers::BatchNorm<T, #c, #s, #in_size, #eps, #momentum> }
    }

    fn forward_equations(&self, at: &Use) -> Forward {
        let statistics = "μ and σ² of each channel over the batch (training; the running \
                          statistics in inference)";
        normalized(at, self.eps, statistics)
    }

    fn backward_equations(&self, at: &Use) -> Backward {
        // `γ` is one number per channel, constant over the values the mean runs over.
        let g = at.dy();
        let mean = |v: Math| Func::apply("batch_mean", vec![v]);
        let x_hat = x_hat(&at.layer);
        let centered = Math::minus(
            Math::minus(g.clone(), mean(g.clone())),
            Math::hadamard(x_hat.clone(), mean(Math::hadamard(g, x_hat))),
        );
        let scale = Math::over(at.param(GAMMA), std_dev(&at.layer));
        Backward {
            steps: Vec::new(),
            input_gradient: Math::hadamard(scale, centered),
        }
    }

    fn parameter_gradients(&self, at: &Use) -> Vec<Math> {
        scale_and_shift_gradients(at, at.input.rank() > 1)
    }

    fn definitions(&self, at: &Use) -> Vec<Definition> {
        let mut definitions = vec![Definition::new(
            "batch_mean(v): for each channel, the mean of v over the batch and the channel's \
             positions, the values its batch statistics are taken over (batch normalization \
             couples the samples of a batch)",
            "\\mathrm{batch\\_mean}(v) &: \\text{for each channel, the mean of } v \\text{ over \
             the batch and the channel's positions}",
        )];
        if at.input.rank() > 1 {
            definitions.push(Definition::sum_over_positions());
        }
        definitions
    }
}

/// Layer normalization over the last dimension of `[D]` or `[S, D]`.
pub struct LayerNorm {
    eps: f64,
}

/// `LayerNorm<eps = ..>`.
pub fn parse_layer_norm(args: &mut Args) -> Option<Box<dyn BuiltinLayer>> {
    Some(Box::new(LayerNorm { eps: eps(args) }))
}

impl BuiltinLayer for LayerNorm {
    fn name(&self) -> &'static str {
        "LayerNorm"
    }

    fn output_shape(&self, input: &Shape, at: &Site) -> Result<Shape, Misfit> {
        match input.dims() {
            [_] | [_, _] => Ok(input.clone()),
            _ => Err(at.wrong_rank(self.name(), "[D] or [S, D]", input)),
        }
    }

    fn initial_state(&self) -> Option<InitialState> {
        None
    }

    fn parameters(&self, input: &Shape) -> Vec<Parameter> {
        vec![
            Parameter::new(GAMMA, [input.last()]),
            Parameter::new(BETA, [input.last()]),
        ]
    }

    fn has_state(&self) -> bool {
        false
    }

    fn has_cache(&self, _input: &Shape) -> bool {
        true
    }

    fn scratch_per_sample(&self, _input: &Shape) -> Dim {
        Dim::Known(0)
    }

    fn scratch_per_call(&self, _input: &Shape) -> Dim {
        Dim::Known(0)
    }

    fn describe(&self, input: &Shape, _output: &Shape) -> String {
        format!("LayerNorm({}, eps {})", input.last(), self.eps)
    }

    fn type_tokens(
        &self,
        nn: &TokenStream,
        input: &Shape,
        _output: &Shape,
        _with_state: bool,
    ) -> TokenStream {
        let d = n(input.last());
        let rows = n(input.dims()[..input.rank() - 1].iter().product::<Dim>());
        let in_size = n(input.size());
        let eps = bits(self.eps);
        quote! { #nn::layers::LayerNorm<T, #d, #rows, #in_size, #eps> }
    }

    fn forward_equations(&self, at: &Use) -> Forward {
        let statistics = if at.input.rank() == 1 {
            "μ and σ² over the features"
        } else {
            "μ and σ² of each row (position) over its features"
        };
        normalized(at, self.eps, statistics)
    }

    fn backward_equations(&self, at: &Use) -> Backward {
        sample_statistics_backward(at, "row_mean")
    }

    fn parameter_gradients(&self, at: &Use) -> Vec<Math> {
        scale_and_shift_gradients(at, at.input.rank() > 1)
    }

    fn definitions(&self, at: &Use) -> Vec<Definition> {
        let mut definitions = vec![Definition::new(
            "row_mean(v): the mean of v over the features of each row (position)",
            "\\mathrm{row\\_mean}(v) &: \\text{the mean of } v \\text{ over the features of each \
             row}",
        )];
        if at.input.rank() > 1 {
            definitions.push(Definition::sum_over_positions());
        }
        definitions
    }
}

/// `x̂_l`, the layer's input normalized.
fn x_hat(layer: &str) -> Math {
    Math::symbol(
        format!("x̂_{layer}"),
        format!("\\hat{{x}}_{{\\mathrm{{{}}}}}", tex_escape(layer)),
    )
}

/// `√(σ²_l + ε)`.
fn std_dev(layer: &str) -> Math {
    let variance = Math::symbol(
        format!("σ²_{layer}"),
        format!("\\sigma^2_{{\\mathrm{{{}}}}}", tex_escape(layer)),
    );
    Math::Sqrt(Box::new(Math::Sum(vec![
        variance,
        Math::symbol("ε", "\\varepsilon"),
    ])))
}

/// `x̂_l = (x − μ_l)/√(σ²_l + ε)`, then `y = γ_l ⊙ x̂_l + β_l`: the forward pass of a
/// normalization whose statistics `statistics` describes.
pub fn normalized(at: &Use, eps: f64, statistics: &str) -> Forward {
    let mean = Math::symbol(
        format!("μ_{}", at.layer),
        format!("\\mu_{{\\mathrm{{{}}}}}", tex_escape(&at.layer)),
    );
    let x_hat = x_hat(&at.layer);
    let normalize = Equation::new(
        x_hat.clone(),
        Math::over(Math::minus(at.x.clone(), mean), std_dev(&at.layer)),
        at.input.clone(),
    )
    .note(format!("{}: {statistics}; ε = {eps}", at.layer));
    Forward {
        steps: vec![normalize],
        value: Math::Sum(vec![Math::hadamard(at.param(GAMMA), x_hat), at.param(BETA)]),
        note: String::new(),
    }
}

/// The input gradient of a normalization whose statistics are each sample's own, taken by
/// the function `mean` over values that `γ` varies along (so it multiplies `∂L/∂y` first):
/// `g_l = γ_l ⊙ ∂L/∂y`, then `(g_l − mean(g_l) − x̂_l ⊙ mean(g_l ⊙ x̂_l))/√(σ²_l + ε)`.
pub fn sample_statistics_backward(at: &Use, mean: &str) -> Backward {
    let g = Math::symbol(
        format!("g_{}", at.layer),
        format!("g_{{\\mathrm{{{}}}}}", tex_escape(&at.layer)),
    );
    let mean = |v: Math| Func::apply(mean, vec![v]);
    let x_hat = x_hat(&at.layer);
    let centered = Math::minus(
        Math::minus(g.clone(), mean(g.clone())),
        Math::hadamard(x_hat.clone(), mean(Math::hadamard(g.clone(), x_hat))),
    );
    Backward {
        steps: vec![Equation::new(
            g,
            Math::hadamard(at.param(GAMMA), at.dy()),
            at.input.clone(),
        )],
        input_gradient: Math::over(centered, std_dev(&at.layer)),
    }
}

/// `∂L/∂γ_l = Σ_pos ∂L/∂y ⊙ x̂_l` and `∂L/∂β_l = Σ_pos ∂L/∂y` (without the sums when the
/// input has no positions).
pub fn scale_and_shift_gradients(at: &Use, positions: bool) -> Vec<Math> {
    let sum = |v: Math| {
        if positions {
            Math::SumOver(Index::POSITIONS, Box::new(v))
        } else {
            v
        }
    };
    vec![sum(Math::hadamard(at.dy(), x_hat(&at.layer))), sum(at.dy())]
}
