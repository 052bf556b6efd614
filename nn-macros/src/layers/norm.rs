//! Normalization: `BatchNorm1d<eps = .., momentum = ..>`, `BatchNorm2d`
//! (`nn_core::layers::BatchNorm`, PyTorch's `nn.BatchNorm1d`, `nn.BatchNorm2d`) and
//! `LayerNorm<eps = ..>` (`nn_core::layers::LayerNorm`, PyTorch's `nn.LayerNorm` over the
//! last dimension).

use super::{Args, BuiltinLayer, InitialState, Misfit, Parameter, Site, bits, n};
use crate::math::ParamName;
use crate::shape::Shape;
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
        let channels = input.dims()[0];
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
        let c = n(input.dims()[0]);
        let s = n(input.dims()[1..].iter().product());
        let in_size = n(input.size());
        let (eps, momentum) = (bits(self.eps), bits(self.momentum));
        quote! { #nn::layers::BatchNorm<T, #c, #s, #in_size, #eps, #momentum> }
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
        let rows = n(input.dims()[..input.rank() - 1].iter().product());
        let in_size = n(input.size());
        let eps = bits(self.eps);
        quote! { #nn::layers::LayerNorm<T, #d, #rows, #in_size, #eps> }
    }
}
