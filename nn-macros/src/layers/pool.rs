//! Pooling: `MaxPool1d<KERNEL, stride = ..>`, `MaxPool2d`, `AvgPool1d`, `AvgPool2d`
//! (`nn_core::layers::{MaxPool1d, MaxPool2d, AvgPool1d, AvgPool2d}`, PyTorch's modules of
//! those names without padding), and `GlobalAvgPool` (`nn_core::layers::GlobalAvgPool`).

use super::{
    Args, Backward, BuiltinLayer, Forward, InitialState, Misfit, Parameter, Site, Use, axis_name,
    n, times,
};
use crate::math::{Definition, Func, Math};
use crate::shape::{Dim, Shape};
use proc_macro2::TokenStream;
use quote::quote;

/// What a window keeps.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Max,
    Average,
}

/// Pooling over windows of `kernel` positions, `stride` apart, in `dims` spatial dimensions.
pub struct Pool {
    kind: Kind,
    dims: usize,
    kernel: [usize; 2],
    stride: [usize; 2],
}

/// `MaxPool2d<KERNEL, stride = ..>` (the stride defaults to the kernel, as PyTorch's), and
/// the other pooling layers of windows.
pub fn parse(args: &mut Args, kind: Kind, dims: usize) -> Option<Box<dyn BuiltinLayer>> {
    let kernel = args.positional_pair(dims, "the kernel size");
    if kernel.is_none() {
        let text = args.kind.to_string();
        args.error_on_layer(format!("`{text}` takes its kernel size, e.g. `{text}<2>`"));
    }
    let stride = args.named_pair("stride", dims, 0, false);
    let kernel = kernel?;
    let stride = [0, 1].map(|i| if stride[i] == 0 { kernel[i] } else { stride[i] });
    Some(Box::new(Pool {
        kind,
        dims,
        kernel,
        stride,
    }))
}

impl BuiltinLayer for Pool {
    fn name(&self) -> &'static str {
        match (self.kind, self.dims) {
            (Kind::Max, 1) => "MaxPool1d",
            (Kind::Max, _) => "MaxPool2d",
            (Kind::Average, 1) => "AvgPool1d",
            (Kind::Average, _) => "AvgPool2d",
        }
    }

    fn output_shape(&self, input: &Shape, at: &Site) -> Result<Shape, Misfit> {
        let dims = self.dims;
        if input.rank() != dims + 1 {
            let wanted = if dims == 1 { "[C, L]" } else { "[C, H, W]" };
            return Err(at.wrong_rank(self.name(), wanted, input));
        }
        let mut out = vec![input.dims()[0].clone()];
        for d in 0..dims {
            let (size, kernel) = (&input.dims()[1 + d], self.kernel[d]);
            let message = format!(
                "`{}`'s window of {kernel} is larger than `{}`'s {size} positions in {}; use a \
                 smaller window",
                at.layer,
                at.arg,
                axis_name(dims, d)
            );
            at.require_at_most(&Dim::Known(kernel), size, message)?;
            out.push(size.sub(kernel).div(self.stride[d]).add(&Dim::Known(1)));
        }
        Ok(Shape::new(out))
    }

    fn initial_state(&self) -> Option<InitialState> {
        None
    }

    fn parameters(&self, _input: &Shape) -> Vec<Parameter> {
        Vec::new()
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
        let d = self.dims;
        let mut text = format!("{}({}", self.name(), times(&self.kernel[..d]));
        if self.stride[..d] != self.kernel[..d] {
            text += &format!(", stride {}", times(&self.stride[..d]));
        }
        text + ")"
    }

    fn type_tokens(
        &self,
        nn: &TokenStream,
        input: &Shape,
        output: &Shape,
        _with_state: bool,
    ) -> TokenStream {
        let (in_size, out_size) = (n(input.size()), n(output.size()));
        let (kernel, stride) = (self.kernel, self.stride);
        let c = n(&input.dims()[0]);
        let geometry = if self.dims == 1 {
            let (l, k, s) = (n(&input.dims()[1]), n(kernel[0]), n(stride[0]));
            quote! { #nn::layers::PoolGeometry1dOf<#c, #l, #k, #s> }
        } else {
            let (h, w) = (n(&input.dims()[1]), n(&input.dims()[2]));
            let (kh, kw, sh, sw) = (n(kernel[0]), n(kernel[1]), n(stride[0]), n(stride[1]));
            quote! { #nn::layers::PoolGeometry2dOf<#c, #h, #w, #kh, #kw, #sh, #sw> }
        };
        let ty = syn::Ident::new(self.name(), proc_macro2::Span::call_site());
        quote! { #nn::layers::#ty<T, #in_size, #out_size, #geometry> }
    }

    fn forward_equations(&self, at: &Use) -> Forward {
        let d = self.dims;
        let function = match self.kind {
            Kind::Max => "maxpool",
            Kind::Average => "avgpool",
        };
        Forward {
            steps: Vec::new(),
            value: Func::apply(function, vec![at.x.clone()]),
            note: format!(
                "k = {}, s = {}",
                times(&self.kernel[..d]),
                times(&self.stride[..d])
            ),
        }
    }

    fn backward_equations(&self, at: &Use) -> Backward {
        let input_gradient = match self.kind {
            Kind::Max => Func::apply("to_argmax", vec![at.x.clone(), at.dy()]),
            Kind::Average => Func::apply("spread", vec![at.dy()]),
        };
        Backward {
            steps: Vec::new(),
            input_gradient,
        }
    }

    fn parameter_gradients(&self, _at: &Use) -> Vec<Math> {
        Vec::new()
    }

    fn definitions(&self, _at: &Use) -> Vec<Definition> {
        // The indices of one dimension, or of two: of an output (its window), of a position
        // in the window, and the input position they meet at.
        let (out, window, tap, input, size) = if self.dims == 1 {
            ("i", "i", "u", "s·i + u", "k")
        } else {
            ("i, j", "(i, j)", "{u,v}", "s·i + u, s·j + v", "(k_h·k_w)")
        };
        let (tex_out, tex_tap, tex_input, tex_size) = if self.dims == 1 {
            ("i", "u", "s i + u", "k")
        } else {
            ("i, j", "u, v", "s i + u,\\ s j + v", "k_h k_w")
        };
        match self.kind {
            Kind::Max => vec![
                Definition::new(
                    format!(
                        "maxpool(x)[c, {out}] = max_{tap} x[c, {input}]: the maximum of each \
                         window of k positions, s apart"
                    ),
                    format!(
                        "\\operatorname{{maxpool}}(x)[c, {tex_out}] &= \\max_{{{tex_tap}}} \
                         x[c,\\ {tex_input}]"
                    ),
                ),
                Definition::new(
                    format!(
                        "to_argmax(x, g)[c, m] = Σ g[c, {out}] over the windows {window} whose \
                         maximum is x[c, m]: each output's gradient routed to its window's \
                         arg-max (the first on ties, as PyTorch), summed where windows overlap"
                    ),
                    format!(
                        "\\mathrm{{to\\_argmax}}(x, g)[c, m] &= \\textstyle\\sum_{{{tex_out} \\,:\\, \
                         m = \\operatorname{{argmax}} \\text{{ of window }} ({tex_out})}} \
                         g[c, {tex_out}]"
                    ),
                ),
            ],
            Kind::Average => vec![
                Definition::new(
                    format!(
                        "avgpool(x)[c, {out}] = 1/{size}·Σ_{tap} x[c, {input}]: the mean of each \
                         window of k positions, s apart"
                    ),
                    format!(
                        "\\operatorname{{avgpool}}(x)[c, {tex_out}] &= \\frac{{1}}{{{tex_size}}} \
                         \\textstyle\\sum_{{{tex_tap}}} x[c,\\ {tex_input}]"
                    ),
                ),
                Definition::new(
                    format!(
                        "spread(g)[c, m] = 1/{size}·Σ g[c, {out}] over the windows {window} that \
                         contain m: each output's gradient shared equally by its window, summed \
                         where windows overlap"
                    ),
                    format!(
                        "\\operatorname{{spread}}(g)[c, m] &= \\frac{{1}}{{{tex_size}}} \
                         \\textstyle\\sum_{{{tex_out} \\,:\\, m \\in \\text{{window }} \
                         ({tex_out})}} g[c, {tex_out}]"
                    ),
                ),
            ],
        }
    }
}

/// The mean of each channel over all its positions: `[C, ...]` → `[C]`.
pub struct GlobalAvgPool;

/// `GlobalAvgPool`, without arguments.
pub fn parse_global(_args: &mut Args) -> Option<Box<dyn BuiltinLayer>> {
    Some(Box::new(GlobalAvgPool))
}

impl BuiltinLayer for GlobalAvgPool {
    fn name(&self) -> &'static str {
        "GlobalAvgPool"
    }

    fn output_shape(&self, input: &Shape, at: &Site) -> Result<Shape, Misfit> {
        match input.dims() {
            [channels, _, ..] => Ok(Shape::new(vec![channels.clone()])),
            _ => Err(at.wrong_rank(self.name(), "[C, L] or [C, H, W]", input)),
        }
    }

    fn initial_state(&self) -> Option<InitialState> {
        None
    }

    fn parameters(&self, _input: &Shape) -> Vec<Parameter> {
        Vec::new()
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

    fn describe(&self, input: &Shape, output: &Shape) -> String {
        format!("GlobalAvgPool({input} → {output})")
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
        quote! { #nn::layers::GlobalAvgPool<T, #c, #s, #in_size> }
    }

    // Over `S` positions, with `x` read as a `C × S` matrix (channel by row):
    // `y = x·𝟏/S`, `∂L/∂x = ∂L/∂y·𝟏ᵀ/S`.

    fn forward_equations(&self, at: &Use) -> Forward {
        Forward {
            steps: Vec::new(),
            value: self.over_positions(at, Math::Product(vec![at.x.clone(), Math::Ones])),
            note: format!("{} as a matrix, a row per channel", at.x.text()),
        }
    }

    fn backward_equations(&self, at: &Use) -> Backward {
        let spread = Math::Product(vec![at.dy(), Math::transpose(Math::Ones)]);
        Backward {
            steps: Vec::new(),
            input_gradient: self.over_positions(at, spread),
        }
    }

    fn parameter_gradients(&self, _at: &Use) -> Vec<Math> {
        Vec::new()
    }

    fn definitions(&self, _at: &Use) -> Vec<Definition> {
        vec![Definition::ones()]
    }
}

impl GlobalAvgPool {
    /// `v/S`, `S` the number of positions of a channel of the input.
    fn over_positions(&self, at: &Use, v: Math) -> Math {
        let positions: Dim = at.input.dims()[1..].iter().product();
        let count = positions.to_string();
        Math::over(v, Math::symbol(count.clone(), count))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// PyTorch's `nn.MaxPool2d` / `nn.AvgPool2d` output size (no padding, no ceil mode).
    fn pytorch(size: usize, k: usize, s: usize) -> usize {
        (size - k) / s + 1
    }

    #[test]
    fn output_sizes_are_pytorchs() {
        for kind in [Kind::Max, Kind::Average] {
            for (h, w, k, s) in [(28, 28, 2, 2), (10, 10, 2, 2), (7, 9, 3, 2), (5, 4, 2, 1)] {
                let pool = Pool {
                    kind,
                    dims: 2,
                    kernel: [k, k],
                    stride: [s, s],
                };
                let input = Shape::new(vec![Dim::Known(6), Dim::Known(h), Dim::Known(w)]);
                let out = pool
                    .output_shape(&input, &Site::new("p", "x"))
                    .unwrap_or_else(|misfit| panic!("{}", misfit.message));
                assert_eq!(
                    out.dims().iter().map(Dim::known).collect::<Vec<_>>(),
                    [Some(6), Some(pytorch(h, k, s)), Some(pytorch(w, k, s))]
                );
            }
        }
    }

    #[test]
    fn a_window_larger_than_the_input_is_refused() {
        let pool = Pool {
            kind: Kind::Max,
            dims: 1,
            kernel: [5, 1],
            stride: [5, 1],
        };
        let input = Shape::new(vec![Dim::Known(2), Dim::Known(4)]);
        assert!(pool.output_shape(&input, &Site::new("p", "x")).is_err());
    }
}
