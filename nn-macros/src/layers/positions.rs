//! Positional encodings added to a sequence `[S, D]`: `SinusoidalPositions` (fixed) and
//! `LearnedPositions` (`nn_core::layers::{SinusoidalPositions, LearnedPositions}`).

use super::{Args, Backward, BuiltinLayer, Forward, InitialState, Misfit, Parameter, Site, Use, n};
use crate::math::{Definition, Math, ParamName};
use crate::shape::{Dim, Shape};
use proc_macro2::TokenStream;
use quote::quote;

/// A position vector added to each token: fixed sines and cosines, or `learned`.
pub struct Positions {
    learned: bool,
}

/// The learned positions, `[S, D]` (PyTorch-style `weight`).
const P: ParamName = ParamName::new("P", "P");

/// `SinusoidalPositions` or `LearnedPositions`, without arguments.
pub fn parse(_args: &mut Args, learned: bool) -> Option<Box<dyn BuiltinLayer>> {
    Some(Box::new(Positions { learned }))
}

impl BuiltinLayer for Positions {
    fn name(&self) -> &'static str {
        if self.learned {
            "LearnedPositions"
        } else {
            "SinusoidalPositions"
        }
    }

    fn output_shape(&self, input: &Shape, at: &Site) -> Result<Shape, Misfit> {
        match input.dims() {
            [_, _] => Ok(input.clone()),
            _ => Err(at.wrong_rank(self.name(), "sequence [S, D]", input)),
        }
    }

    fn initial_state(&self) -> Option<InitialState> {
        None
    }

    fn parameters(&self, input: &Shape) -> Vec<Parameter> {
        if self.learned {
            vec![Parameter::new(P, input.clone())]
        } else {
            Vec::new()
        }
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
        self.name().to_string()
    }

    fn type_tokens(
        &self,
        nn: &TokenStream,
        input: &Shape,
        _output: &Shape,
        _with_state: bool,
    ) -> TokenStream {
        let (s, d, in_size) = (n(&input.dims()[0]), n(&input.dims()[1]), n(input.size()));
        if self.learned {
            quote! { #nn::layers::LearnedPositions<T, #s, #d, #in_size> }
        } else {
            quote! { #nn::layers::SinusoidalPositions<T, #s, #d, #in_size> }
        }
    }

    fn forward_equations(&self, at: &Use) -> Forward {
        let positions = if self.learned {
            at.param(P)
        } else {
            Math::symbol("PE", "\\mathrm{PE}")
        };
        Forward {
            steps: Vec::new(),
            value: Math::Sum(vec![at.x.clone(), positions]),
            note: String::new(),
        }
    }

    fn backward_equations(&self, at: &Use) -> Backward {
        Backward {
            steps: Vec::new(),
            input_gradient: at.dy(),
        }
    }

    fn parameter_gradients(&self, at: &Use) -> Vec<Math> {
        if self.learned {
            vec![at.dy()]
        } else {
            Vec::new()
        }
    }

    fn definitions(&self, at: &Use) -> Vec<Definition> {
        if self.learned {
            return Vec::new();
        }
        let features = at.input.last();
        vec![Definition::new(
            format!(
                "PE[t, 2i] = sin(t/10000^(2i/{features})), PE[t, 2i + 1] = \
                 cos(t/10000^(2i/{features})): the fixed sinusoidal positions, t from 0"
            ),
            format!(
                "\\mathrm{{PE}}[t, 2i] &= \\sin\\bigl(t / 10000^{{2i/{features}}}\\bigr), \\quad \
                 \\mathrm{{PE}}[t, 2i + 1] = \\cos\\bigl(t / 10000^{{2i/{features}}}\\bigr)"
            ),
        )]
    }
}
