//! `Dense<OUT>`, `Dense<IN, OUT>`: `nn_core::layers::Dense` (PyTorch's `nn.Linear`), on a
//! vector, or on every position of a sequence `[S, D]` through `PositionWise`.

use super::{
    Args, Backward, BuiltinLayer, Forward, InitialState, Misfit, Parameter, Site, Stated, Use, n,
};
use crate::math::{Definition, Math, ParamName};
use crate::shape::{Dim, Shape};
use proc_macro2::TokenStream;
use quote::quote;

/// A fully connected layer of `out` features.
pub struct Dense {
    out: Dim,
    /// `IN` of `Dense<IN, OUT>`, checked against the graph.
    stated_in: Option<Stated>,
}

/// `nn_core::kernels::DEPTH_HALVES_MIN_DEPTH`: a dense layer on at least this many inputs
/// has `OUT` scalars of scratch per sample (the generated code asserts that the layer's
/// `SCRATCH` agrees).
const DEPTH_HALVES_MIN_DEPTH: usize = 512;

impl Dense {
    /// The scratch of one sample for `features` inputs: `OUT` from
    /// [`DEPTH_HALVES_MIN_DEPTH`] on, else none.
    fn depth_halves_scratch(&self, features: &Dim) -> Dim {
        match features.known() {
            Some(k) if k >= DEPTH_HALVES_MIN_DEPTH => self.out.clone(),
            Some(_) => Dim::Known(0),
            None => {
                let (k, out) = (features.expr(), self.out.expr());
                Dim::symbolic(
                    quote! { if #k >= #DEPTH_HALVES_MIN_DEPTH { #out } else { 0 } },
                    format!("({features} ≥ {DEPTH_HALVES_MIN_DEPTH} ? {} : 0)", self.out),
                )
            }
        }
    }
}

/// `Dense<OUT>` or `Dense<IN, OUT>`.
pub fn parse(args: &mut Args) -> Option<Box<dyn BuiltinLayer>> {
    let count = args.positional_count();
    let first = args.positional_size("a size");
    let second = if count >= 2 {
        args.positional_size("a size")
    } else {
        None
    };
    let (out, stated_in) = match (count, first, second) {
        (1, Some(out), _) => (out, None),
        (2.., Some(input), Some(out)) => (out, Some(input.into())),
        (0, _, _) => {
            args.error_on_layer(
                "`Dense` takes its output size, `Dense<OUT>`, or both sizes, `Dense<IN, OUT>`",
            );
            return None;
        }
        // A zero or non-integer size: already reported.
        _ => return None,
    };
    Some(Box::new(Dense {
        out: out.value,
        stated_in,
    }))
}

impl BuiltinLayer for Dense {
    fn name(&self) -> &'static str {
        "Dense"
    }

    fn output_shape(&self, input: &Shape, at: &Site) -> Result<Shape, Misfit> {
        let out = &self.out;
        let output = match input.dims() {
            [_] => Shape::new(vec![out.clone()]),
            // PyTorch's `nn.Linear` on `(N, S, D)`: the same layer at every position.
            [steps, _] => Shape::new(vec![steps.clone(), out.clone()]),
            _ => {
                let Site { layer, arg, .. } = at;
                return Err(Misfit::at_call(format!(
                    "`{layer}` is a Dense layer and needs a vector (or a sequence [S, D], taken \
                     position by position), but `{arg}` has shape {input}; \
                     flatten it first: `Flatten,` before it in a sequential network, \
                     `{layer}(flatten({arg}))` in a `forward` block"
                )));
            }
        };
        if let Some(stated) = &self.stated_in {
            let (layer, actual) = (at.layer, input.last());
            let message = format!(
                "`{layer}` is declared with {} inputs, but its input `{}` has {actual} \
                 features: write `Dense<{actual}, {out}>` or `Dense<{out}>`",
                stated.value, at.arg
            );
            at.require_equal(&stated.value, actual, message, Some(stated))?;
        }
        Ok(output)
    }

    fn initial_state(&self) -> Option<InitialState> {
        None
    }

    fn parameters(&self, input: &Shape) -> Vec<Parameter> {
        vec![
            Parameter::new(ParamName::WEIGHT, [self.out.clone(), input.last().clone()]),
            Parameter::new(ParamName::BIAS, [self.out.clone()]),
        ]
    }

    fn has_state(&self) -> bool {
        false
    }

    fn has_cache(&self, input: &Shape) -> bool {
        // `PositionWise` keeps one; a plain `Dense` has none.
        input.rank() > 1
    }

    // `nn_core::layers::Dense::SCRATCH`: `OUT` per sample on 512 inputs or more (its forward
    // product in two halves of its depth); on a sequence, `PositionWise` runs it on one
    // position at a time, so that is per call.
    fn scratch_per_sample(&self, input: &Shape) -> Dim {
        match input.rank() {
            1 => self.depth_halves_scratch(input.last()),
            _ => Dim::Known(0),
        }
    }

    fn scratch_per_call(&self, input: &Shape) -> Dim {
        match input.rank() {
            1 => Dim::Known(0),
            _ => self.depth_halves_scratch(input.last()),
        }
    }

    fn describe(&self, input: &Shape, _output: &Shape) -> String {
        match input.dims() {
            [_, features] => format!("Dense({features} → {}), per position", self.out),
            _ => format!("Dense({} → {})", input.dims()[0], self.out),
        }
    }

    fn type_tokens(
        &self,
        nn: &TokenStream,
        input: &Shape,
        output: &Shape,
        _with_state: bool,
    ) -> TokenStream {
        let (in_size, out_size) = (n(input.size()), n(output.size()));
        match input.dims() {
            [steps, features] => {
                let (s, d, o) = (n(steps), n(features), n(&self.out));
                quote! {
                    #nn::layers::PositionWise<T, #nn::layers::Dense<T, #d, #o>, #d, #o, #s,
                        #in_size, #out_size>
                }
            }
            _ => quote! { #nn::layers::Dense<T, #in_size, #out_size> },
        }
    }

    // On a vector, `y = W·x + b`. On a sequence `[S, D]` (a sample is a matrix whose rows are
    // the positions, as PyTorch's `nn.Linear` sees it) the same, row by row: `y = x·Wᵀ + 𝟏·bᵀ`.

    fn forward_equations(&self, at: &Use) -> Forward {
        let (w, b) = (at.param(ParamName::WEIGHT), at.param(ParamName::BIAS));
        let value = if at.input.rank() == 1 {
            Math::Sum(vec![Math::Product(vec![w, at.x.clone()]), b])
        } else {
            Math::Sum(vec![
                Math::Product(vec![at.x.clone(), Math::transpose(w)]),
                Math::Product(vec![Math::Ones, Math::transpose(b)]),
            ])
        };
        let note = if at.input.rank() == 1 {
            String::new()
        } else {
            "each row (position) of the sequence".to_string()
        };
        Forward {
            steps: Vec::new(),
            value,
            note,
        }
    }

    fn backward_equations(&self, at: &Use) -> Backward {
        let w = at.param(ParamName::WEIGHT);
        let input_gradient = if at.input.rank() == 1 {
            Math::Product(vec![Math::transpose(w), at.dy()])
        } else {
            Math::Product(vec![at.dy(), w])
        };
        Backward {
            steps: Vec::new(),
            input_gradient,
        }
    }

    fn parameter_gradients(&self, at: &Use) -> Vec<Math> {
        if at.input.rank() == 1 {
            vec![
                Math::Product(vec![at.dy(), Math::transpose(at.x.clone())]),
                at.dy(),
            ]
        } else {
            vec![
                Math::Product(vec![Math::transpose(at.dy()), at.x.clone()]),
                Math::Product(vec![Math::transpose(at.dy()), Math::Ones]),
            ]
        }
    }

    fn definitions(&self, at: &Use) -> Vec<Definition> {
        if at.input.rank() == 1 {
            Vec::new()
        } else {
            vec![Definition::ones()]
        }
    }
}
