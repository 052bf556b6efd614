//! `GroupNorm<GROUPS, eps = ..>`: `nn_core::layers::GroupNorm` (PyTorch's `nn.GroupNorm`) on
//! `[C, ...]`, each sample's channels normalised in groups.

use super::norm::{
    BETA, GAMMA, eps, normalized, sample_statistics_backward, scale_and_shift_gradients,
};
use super::{
    Args, Backward, BuiltinLayer, Forward, InitialState, Misfit, Parameter, Site, Stated, Use,
    bits, n,
};
use crate::math::{Definition, Math};
use crate::shape::{Dim, Shape};
use proc_macro2::TokenStream;
use quote::quote;

/// Group normalization of `[C, ...]` in `groups` groups of `C/groups` channels.
pub struct GroupNorm {
    /// The number of groups as written (blamed when it does not divide the channels).
    groups: Stated,
    /// That number (the macro must know it).
    count: usize,
    eps: f64,
}

/// `GroupNorm<GROUPS, eps = ..>`.
pub fn parse(args: &mut Args) -> Option<Box<dyn BuiltinLayer>> {
    let groups = args.positional_size("the number of groups");
    let count = groups
        .as_ref()
        .and_then(|g| args.known(g, "the number of groups"));
    let eps = eps(args);
    let (Some(groups), Some(count)) = (groups, count) else {
        if !args.has_errors() {
            args.error_on_layer("`GroupNorm` takes its number of groups, e.g. `GroupNorm<4>`");
        }
        return None;
    };
    Some(Box::new(GroupNorm {
        groups: groups.into(),
        count,
        eps,
    }))
}

impl BuiltinLayer for GroupNorm {
    fn name(&self) -> &'static str {
        "GroupNorm"
    }

    fn output_shape(&self, input: &Shape, at: &Site) -> Result<Shape, Misfit> {
        let (channels, groups) = (&input.dims()[0], self.count);
        let message = format!(
            "`{}` splits `{}`'s {channels} channels into {groups} groups, but {channels} is not \
             a multiple of {groups}",
            at.layer, at.arg
        );
        at.require_divides(groups, channels, message, Some(&self.groups))?;
        Ok(input.clone())
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
        format!(
            "GroupNorm({} channels, {} groups, eps {})",
            input.dims()[0],
            self.groups.value,
            self.eps
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
        let (g, in_size, eps) = (n(self.count), n(input.size()), bits(self.eps));
        quote! { #nn::layers::GroupNorm<T, #c, #s, #g, #in_size, #eps> }
    }

    fn forward_equations(&self, at: &Use) -> Forward {
        let per_group = at.input.dims()[0].div(self.count);
        let statistics = format!(
            "μ and σ² of each group of {per_group} channels over their positions, in each sample"
        );
        normalized(at, self.eps, &statistics)
    }

    fn backward_equations(&self, at: &Use) -> Backward {
        sample_statistics_backward(at, "group_mean")
    }

    fn parameter_gradients(&self, at: &Use) -> Vec<Math> {
        scale_and_shift_gradients(at, at.input.rank() > 1)
    }

    fn definitions(&self, at: &Use) -> Vec<Definition> {
        let mut definitions = vec![Definition::new(
            "group_mean(v): the mean of v over each group of channels and their positions",
            "\\mathrm{group\\_mean}(v) &: \\text{the mean of } v \\text{ over each group of \
             channels and their positions}",
        )];
        if at.input.rank() > 1 {
            definitions.push(Definition::sum_over_positions());
        }
        definitions
    }
}
