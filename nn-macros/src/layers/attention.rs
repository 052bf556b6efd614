//! `MultiHeadAttention<HEADS, causal = ..>` and `SelfAttention<causal = ..>` (one head):
//! `nn_core::layers::MultiHeadAttention` (PyTorch's `nn.MultiheadAttention` used as
//! self-attention, `batch_first`) over a sequence `[S, D]`.

use super::{Args, BuiltinLayer, InitialState, Misfit, Parameter, Site, Stated, n};
use crate::math::ParamName;
use crate::shape::Shape;
use proc_macro2::TokenStream;
use quote::{ToTokens, quote};

/// Scaled dot-product self-attention with `heads` heads.
pub struct Attention {
    /// The number of heads as written (blamed when it does not divide the features).
    heads: Stated,
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
    let causal = args.named_bool("causal", false);
    let Some(heads) = heads else {
        if !args.has_errors() {
            args.error_on_layer(
                "`MultiHeadAttention` takes its number of heads, e.g. `MultiHeadAttention<4>`",
            );
        }
        return None;
    };
    Some(Box::new(Attention {
        heads: heads.into(),
        causal,
    }))
}

/// `SelfAttention<causal = ..>`: one head.
pub fn parse_single_head(args: &mut Args) -> Option<Box<dyn BuiltinLayer>> {
    let causal = args.named_bool("causal", false);
    let heads = Stated {
        value: 1,
        tokens: args.kind.to_token_stream(),
    };
    Some(Box::new(Attention { heads, causal }))
}

impl BuiltinLayer for Attention {
    fn name(&self) -> &'static str {
        "MultiHeadAttention"
    }

    fn output_shape(&self, input: &Shape, at: &Site) -> Result<Shape, Misfit> {
        let heads = self.heads.value;
        match input.dims() {
            [_, d] if d % heads == 0 => Ok(input.clone()),
            [_, d] => Err(Misfit::at_argument(
                format!(
                    "`{}` splits `{}`'s {d} features into {heads} heads, but {d} is not a \
                     multiple of {heads}",
                    at.layer, at.arg
                ),
                &self.heads,
            )),
            _ => Err(at.wrong_rank(self.name(), "sequence [S, D]", input)),
        }
    }

    fn initial_state(&self) -> Option<InitialState> {
        None
    }

    fn parameters(&self, input: &Shape) -> Vec<Parameter> {
        let d = input.last();
        vec![
            Parameter::new(W_IN, [3 * d, d]),
            Parameter::new(B_IN, [3 * d]),
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

    fn describe(&self, _input: &Shape, _output: &Shape) -> String {
        format!(
            "MultiHeadAttention({} heads{})",
            self.heads.value,
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
        let (steps, d) = (input.dims()[0], input.dims()[1]);
        let (s, d, h, d3) = (n(steps), n(d), n(self.heads.value), n(3 * d));
        let (in_size, causal) = (n(input.size()), self.causal);
        quote! { #nn::layers::MultiHeadAttention<T, #d, #h, #s, #in_size, #d3, #causal> }
    }
}
