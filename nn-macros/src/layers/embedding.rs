//! `Embedding<VOCAB, DIM>`: `nn_core::layers::Embedding` (PyTorch's `nn.Embedding`), token
//! ids `[S]` → `[S, DIM]`.

use super::{Args, BuiltinLayer, InitialState, Misfit, Parameter, Site, n};
use crate::math::ParamName;
use crate::shape::Shape;
use proc_macro2::TokenStream;
use quote::quote;

/// A table of `vocab` vectors of `dim` features.
pub struct Embedding {
    vocab: usize,
    dim: usize,
}

/// `Embedding<VOCAB, DIM>`.
pub fn parse(args: &mut Args) -> Option<Box<dyn BuiltinLayer>> {
    let vocab = args.positional_size("the vocabulary size");
    let dim = args.positional_size("the embedding size");
    let (Some(vocab), Some(dim)) = (vocab, dim) else {
        if !args.has_errors() {
            args.error_on_layer(
                "`Embedding` takes the vocabulary and embedding sizes, e.g. `Embedding<1000, 64>`",
            );
        }
        return None;
    };
    Some(Box::new(Embedding {
        vocab: vocab.value,
        dim: dim.value,
    }))
}

impl BuiltinLayer for Embedding {
    fn name(&self) -> &'static str {
        "Embedding"
    }

    fn output_shape(&self, input: &Shape, at: &Site) -> Result<Shape, Misfit> {
        match input.dims() {
            [steps] => Ok(Shape::from([*steps, self.dim])),
            _ => Err(at.wrong_rank(self.name(), "sequence of token ids [S]", input)),
        }
    }

    fn initial_state(&self) -> Option<InitialState> {
        None
    }

    fn parameters(&self, _input: &Shape) -> Vec<Parameter> {
        vec![Parameter::new(ParamName::WEIGHT, [self.vocab, self.dim])]
    }

    fn has_state(&self) -> bool {
        false
    }

    fn has_cache(&self, _input: &Shape) -> bool {
        true
    }

    fn describe(&self, _input: &Shape, _output: &Shape) -> String {
        format!("Embedding({} × {})", self.vocab, self.dim)
    }

    fn type_tokens(
        &self,
        nn: &TokenStream,
        input: &Shape,
        output: &Shape,
        _with_state: bool,
    ) -> TokenStream {
        let (v, d, s) = (n(self.vocab), n(self.dim), n(input.dims()[0]));
        let out_size = n(output.size());
        quote! { #nn::layers::Embedding<T, #v, #d, #s, #out_size> }
    }
}
