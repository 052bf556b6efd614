//! `Dropout<P>`: `nn_core::layers::Dropout` (PyTorch's `nn.Dropout`).

use super::{
    Args, Backward, BuiltinLayer, Forward, InitialState, Misfit, Parameter, Site, Use, bits, n,
};
use crate::math::{Definition, Math, tex_escape};
use crate::shape::{Dim, Shape};
use proc_macro2::TokenStream;
use quote::quote;

/// Inverted dropout: zeroes each element with probability `p` in training.
pub struct Dropout {
    p: f64,
}

/// `Dropout<P>`, `0 ≤ P ≤ 1`.
pub fn parse(args: &mut Args) -> Option<Box<dyn BuiltinLayer>> {
    match args.positional_float("the probability of dropping an element") {
        Some((p, tokens)) if !(0.0..=1.0).contains(&p) => {
            args.error(
                tokens,
                "`Dropout`'s probability must be in [0, 1], e.g. `Dropout<0.5>`",
            );
            None
        }
        Some((p, _)) => Some(Box::new(Dropout { p })),
        None => {
            args.error_on_layer("`Dropout` takes the probability of dropping, e.g. `Dropout<0.5>`");
            None
        }
    }
}

impl BuiltinLayer for Dropout {
    fn name(&self) -> &'static str {
        "Dropout"
    }

    fn output_shape(&self, input: &Shape, _at: &Site) -> Result<Shape, Misfit> {
        Ok(input.clone())
    }

    fn initial_state(&self) -> Option<InitialState> {
        None
    }

    fn parameters(&self, _input: &Shape) -> Vec<Parameter> {
        Vec::new()
    }

    fn has_state(&self) -> bool {
        // The generator of the masks.
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

    fn describe(&self, _input: &Shape, _output: &Shape) -> String {
        format!("Dropout({})", self.p)
    }

    fn type_tokens(
        &self,
        nn: &TokenStream,
        input: &Shape,
        _output: &Shape,
        _with_state: bool,
    ) -> TokenStream {
        let (in_size, p) = (n(input.size()), bits(self.p));
        quote! { #nn::layers::Dropout<T, #in_size, #p> }
    }

    fn forward_equations(&self, at: &Use) -> Forward {
        Forward {
            steps: Vec::new(),
            value: Math::hadamard(self.mask(at), at.x.clone()),
            note: format!(
                "in training; {} = {} in inference",
                at.y.text(),
                at.x.text()
            ),
        }
    }

    fn backward_equations(&self, at: &Use) -> Backward {
        Backward {
            steps: Vec::new(),
            input_gradient: Math::hadamard(self.mask(at), at.dy()),
        }
    }

    fn parameter_gradients(&self, _at: &Use) -> Vec<Math> {
        Vec::new()
    }

    fn definitions(&self, at: &Use) -> Vec<Definition> {
        let (layer, p) = (&at.layer, self.p);
        vec![Definition::new(
            format!(
                "m_{layer}: the mask of `{layer}`, each element 0 with probability {p} and \
                 1/(1 − {p}) otherwise, drawn afresh at each training pass"
            ),
            format!(
                "m_{{\\mathrm{{{}}}}} &: \\text{{each element 0 with probability {p} and }} \
                 1/(1 - {p}) \\text{{ otherwise, drawn at each training pass}}",
                tex_escape(layer)
            ),
        )]
    }
}

impl Dropout {
    /// `m_l`, the layer's mask.
    fn mask(&self, at: &Use) -> Math {
        Math::symbol(
            format!("m_{}", at.layer),
            format!("m_{{\\mathrm{{{}}}}}", tex_escape(&at.layer)),
        )
    }
}
