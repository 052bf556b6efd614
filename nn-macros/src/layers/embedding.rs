//! `Embedding<VOCAB, DIM>`: `nn_core::layers::Embedding` (PyTorch's `nn.Embedding`), token
//! ids `[S]` → `[S, DIM]`.

use super::{Args, Backward, BuiltinLayer, Forward, InitialState, Misfit, Parameter, Site, Use, n};
use crate::math::{Definition, Func, Math, ParamName};
use crate::shape::{Dim, Shape};
use proc_macro2::TokenStream;
use quote::quote;

/// A table of `vocab` vectors of `dim` features.
pub struct Embedding {
    vocab: Dim,
    dim: Dim,
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
            [steps] => Ok(Shape::from([steps, &self.dim])),
            _ => Err(at.wrong_rank(self.name(), "sequence of token ids [S]", input)),
        }
    }

    fn initial_state(&self) -> Option<InitialState> {
        None
    }

    fn parameters(&self, _input: &Shape) -> Vec<Parameter> {
        vec![Parameter::new(ParamName::WEIGHT, [&self.vocab, &self.dim])]
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
        let (v, d, s) = (n(&self.vocab), n(&self.dim), n(&input.dims()[0]));
        let out_size = n(output.size());
        quote! { #nn::layers::Embedding<T, #v, #d, #s, #out_size> }
    }

    // With `onehot(x)` the `S × V` matrix of the ids, a lookup is a product, and so is its
    // gradient; the ids themselves have none (as in PyTorch, where they are integers).

    fn forward_equations(&self, at: &Use) -> Forward {
        Forward {
            steps: Vec::new(),
            value: Math::Product(vec![onehot(at), at.param(ParamName::WEIGHT)]),
            note: String::new(),
        }
    }

    fn backward_equations(&self, _at: &Use) -> Backward {
        Backward {
            steps: Vec::new(),
            input_gradient: Math::Zero,
        }
    }

    fn parameter_gradients(&self, at: &Use) -> Vec<Math> {
        vec![Math::Product(vec![Math::transpose(onehot(at)), at.dy()])]
    }

    fn definitions(&self, _at: &Use) -> Vec<Definition> {
        vec![Definition::new(
            format!(
                "onehot(x): the matrix with a row per token, 1 in the column of its id (of {}) \
                 and 0 elsewhere, so that onehot(x)·W picks the rows of W; token ids have no \
                 gradient",
                self.vocab
            ),
            format!(
                "\\operatorname{{onehot}}(x)[t, v] &= \\begin{{cases}} 1 & v = x_t \\\\ 0 & \
                 \\text{{otherwise}} \\end{{cases}}, \\quad v < {} \\quad \\text{{(ids have no \
                 gradient)}}",
                self.vocab
            ),
        )]
    }
}

/// `onehot(x)`.
fn onehot(at: &Use) -> Math {
    Func::apply("onehot", vec![at.x.clone()])
}
