//! `Conv1d<OUT_CHANNELS, KERNEL, ..>` and `Conv2d<..>`: `nn_core::layers::{Conv1d, Conv2d}`
//! (PyTorch's `nn.Conv1d`, `nn.Conv2d`) on `[C, L]` and `[C, H, W]`; and `QatConv2d<..>`,
//! `nn_core::quant::QatConv2d`, a `Conv2d` trained with fake-quantized weights (the same
//! arguments, shapes and parameters; its scratch also holds the fake-quantized weights).

use super::args::PairOrWord;
use super::{
    Args, Backward, BuiltinLayer, Forward, InitialState, Misfit, Parameter, Site, Stated, Use,
    axis_name, n, times,
};
use crate::math::{Definition, Func, Index, Math, Operator, ParamName};
use crate::shape::{Dim, Shape};
use proc_macro2::TokenStream;
use quote::quote;

/// A convolution over `dims` spatial dimensions (the second entry of each pair unused for 1).
pub struct Conv {
    dims: usize,
    out_channels: Dim,
    /// `in_channels = ..`, checked against the graph.
    stated_in: Option<Stated>,
    kernel: [usize; 2],
    stride: [usize; 2],
    padding: [usize; 2],
    dilation: [usize; 2],
    bias: bool,
    /// `QatConv2d`: the weights fake-quantized per output channel (2-d only).
    qat: bool,
}

/// `Conv2d<OUT_CHANNELS, KERNEL, stride = .., padding = .., dilation = .., bias = ..,
/// in_channels = ..>`; `Conv1d` likewise with one spatial dimension; `QatConv2d` (`qat`) as
/// `Conv2d`.
pub fn parse(args: &mut Args, dims: usize, qat: bool) -> Option<Box<dyn BuiltinLayer>> {
    let out = args.positional_size("the number of output channels");
    let kernel = args.positional_pair(dims, "the kernel size");
    let stride = args.named_pair("stride", dims, 1, false);
    let padding = args.named_pair_or_word("padding", dims, 0, &["same", "valid"]);
    let dilation = args.named_pair("dilation", dims, 1, false);
    let bias = args.named_bool("bias", true);
    let stated_in = args.named_size("in_channels").map(Stated::from);
    let (Some(out), Some(kernel)) = (out, kernel) else {
        if args.has_errors() {
            return None;
        }
        let text = args.kind.to_string();
        args.error_on_layer(format!(
            "`{text}` takes the output channels and the kernel size, e.g. `{text}<16, 3>`, then \
             named options `stride`, `padding`, `dilation`, `bias`, `in_channels`"
        ));
        return None;
    };
    let padding = match padding {
        PairOrWord::Pair(padding) => padding,
        PairOrWord::Word(word) if word == "valid" => [0; 2],
        PairOrWord::Word(same) => same_padding(args, &same, dims, kernel, stride, dilation)?,
    };
    Some(Box::new(Conv {
        dims,
        out_channels: out.value,
        stated_in,
        kernel,
        stride,
        padding,
        dilation,
        bias,
        qat,
    }))
}

/// PyTorch's `padding='same'`: the padding that keeps every spatial size, `d·(k − 1)/2` on
/// each side. Like PyTorch, only with stride 1; and only where that total is even, since the
/// layer pads both sides alike (PyTorch pads the extra position on one side).
fn same_padding(
    args: &mut Args,
    same: &syn::Ident,
    dims: usize,
    kernel: [usize; 2],
    stride: [usize; 2],
    dilation: [usize; 2],
) -> Option<[usize; 2]> {
    let mut padding = [0; 2];
    for d in 0..dims {
        let total = dilation[d] * (kernel[d] - 1);
        let half = total / 2;
        if stride[d] != 1 {
            args.error(
                same,
                format!(
                    "`padding = same` needs `stride = 1`, as in PyTorch; with a stride, write \
                     the padding: `padding = {half}` keeps the kernel centred"
                ),
            );
            return None;
        }
        if total % 2 == 1 {
            args.error(
                same,
                format!(
                    "`padding = same` with a kernel of {} needs {total} padding positions in \
                     {}, {half} on one side and {} on the other, but this layer pads both sides \
                     alike: use an odd kernel, or write `padding = {half}` (an output one \
                     shorter than its input) or `padding = {}` (one longer)",
                    kernel[d],
                    axis_name(dims, d),
                    half + 1,
                    half + 1
                ),
            );
            return None;
        }
        padding[d] = half;
    }
    Some(padding)
}

impl Conv {
    /// The output's size along spatial axis `d` (PyTorch's formula), for an input that fits.
    fn output_size(&self, input: &Shape, d: usize) -> Dim {
        let span = self.dilation[d] * (self.kernel[d] - 1) + 1;
        let padded = input.dims()[1 + d].add(&Dim::Known(2 * self.padding[d]));
        if padded.known().is_some_and(|padded| padded < span) {
            // Reported by `output_shape`.
            return Dim::Known(0);
        }
        padded.sub(span).div(self.stride[d]).add(&Dim::Known(1))
    }
}

impl Conv {
    /// The weight the passes compute with: `W`, or `fq(W)` for `QatConv2d` (whose weight
    /// gradient passes straight through `fq`).
    fn used_weight(&self, at: &Use) -> Math {
        let w = at.param(ParamName::WEIGHT);
        if self.qat {
            Math::Apply(Func::named("fq"), vec![w])
        } else {
            w
        }
    }
}

impl BuiltinLayer for Conv {
    fn name(&self) -> &'static str {
        match (self.dims, self.qat) {
            (1, _) => "Conv1d",
            (_, false) => "Conv2d",
            (_, true) => "QatConv2d",
        }
    }

    fn output_shape(&self, input: &Shape, at: &Site) -> Result<Shape, Misfit> {
        let dims = self.dims;
        if input.rank() != dims + 1 {
            let wanted = if dims == 1 { "[C, L]" } else { "[C, H, W]" };
            return Err(at.wrong_rank(self.name(), wanted, input));
        }
        let mut out = vec![self.out_channels.clone()];
        for d in 0..dims {
            let size = &input.dims()[1 + d];
            let (kernel, dilation) = (self.kernel[d], self.dilation[d]);
            let span = dilation * (kernel - 1) + 1;
            let padded = size.add(&Dim::Known(2 * self.padding[d]));
            let (layer, arg, axis) = (at.layer, at.arg, axis_name(dims, d));
            let message = format!(
                "`{layer}`'s kernel spans {span} positions in {axis} (kernel {kernel}, \
                 dilation {dilation}), more than `{arg}`'s {size} (padded: {padded}); use a \
                 smaller kernel or add `padding`"
            );
            at.require_at_most(&Dim::Known(span), &padded, message)?;
            out.push(self.output_size(input, d));
        }
        if let Some(stated) = &self.stated_in {
            let actual = &input.dims()[0];
            let message = format!(
                "`{}` is declared with {} input channels, but its input `{}` {input} has \
                 {actual}: write `in_channels = {actual}` or leave it out",
                at.layer, stated.value, at.arg
            );
            at.require_equal(&stated.value, actual, message, Some(stated))?;
        }
        Ok(Shape::new(out))
    }

    fn initial_state(&self) -> Option<InitialState> {
        None
    }

    fn parameters(&self, input: &Shape) -> Vec<Parameter> {
        let mut weight = vec![self.out_channels.clone(), input.dims()[0].clone()];
        weight.extend(self.kernel[..self.dims].iter().map(Dim::from));
        let mut parameters = vec![Parameter::new(ParamName::WEIGHT, Shape::new(weight))];
        if self.bias {
            parameters.push(Parameter::new(ParamName::BIAS, [self.out_channels.clone()]));
        }
        parameters
    }

    fn has_state(&self) -> bool {
        false
    }

    fn has_cache(&self, _input: &Shape) -> bool {
        true
    }

    /// None per sample: one im2col tile serves every sample (see `scratch_per_call`).
    fn scratch_per_sample(&self, _input: &Shape) -> Dim {
        Dim::Known(0)
    }

    /// One sample's im2col tile, `CI·KH·KW × OH·OW` (every tap at every output
    /// position), reused sample after sample, and a `CO × CI·KH·KW` matrix (the weight
    /// gradient's transpose summed over the batch, for `Conv2d`; the fake-quantized weights,
    /// for `QatConv2d`): nn_core's `SCRATCH_PER_CALL`.
    fn scratch_per_call(&self, input: &Shape) -> Dim {
        let taps: usize = self.kernel[..self.dims].iter().product();
        let k = input.dims()[0].mul(&Dim::Known(taps));
        let tile = (0..self.dims).fold(k.clone(), |size, d| size.mul(&self.output_size(input, d)));
        tile.add(&self.out_channels.mul(&k))
    }

    fn describe(&self, input: &Shape, _output: &Shape) -> String {
        let d = self.dims;
        let mut text = format!(
            "{}({} → {}, {}",
            self.name(),
            input.dims()[0],
            self.out_channels,
            times(&self.kernel[..d])
        );
        if self.stride[..d].iter().any(|&s| s != 1) {
            text += &format!(", stride {}", times(&self.stride[..d]));
        }
        if self.padding[..d].iter().any(|&p| p != 0) {
            text += &format!(", padding {}", times(&self.padding[..d]));
        }
        if self.dilation[..d].iter().any(|&p| p != 1) {
            text += &format!(", dilation {}", times(&self.dilation[..d]));
        }
        if !self.bias {
            text += ", no bias";
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
        let (kernel, stride, padding, dilation) =
            (self.kernel, self.stride, self.padding, self.dilation);
        let co = n(&self.out_channels);
        let taps = kernel[..self.dims].iter().product::<usize>();
        let k = n(input.dims()[0].mul(&Dim::Known(taps)));
        let nb = n(if self.bias {
            self.out_channels.clone()
        } else {
            Dim::Known(0)
        });
        let ci = n(&input.dims()[0]);
        if self.dims == 1 {
            let (l, kl, s, p, d) = (
                n(&input.dims()[1]),
                n(kernel[0]),
                n(stride[0]),
                n(padding[0]),
                n(dilation[0]),
            );
            quote! {
                #nn::layers::Conv1d<T, #co, #k, #nb, #in_size, #out_size,
                    #nn::layers::Geometry1d<#ci, #l, #kl, #s, #p, #d>>
            }
        } else {
            let (h, w) = (n(&input.dims()[1]), n(&input.dims()[2]));
            let (kh, kw) = (n(kernel[0]), n(kernel[1]));
            let (sh, sw) = (n(stride[0]), n(stride[1]));
            let (ph, pw) = (n(padding[0]), n(padding[1]));
            let (dh, dw) = (n(dilation[0]), n(dilation[1]));
            let layer = if self.qat {
                quote!(#nn::quant::QatConv2d)
            } else {
                quote!(#nn::layers::Conv2d)
            };
            quote! {
                #layer<T, #co, #k, #nb, #in_size, #out_size,
                    #nn::layers::Geometry2d<#ci, #h, #w, #kh, #kw, #sh, #sw, #ph, #pw, #dh, #dw>>
            }
        }
    }

    fn forward_equations(&self, at: &Use) -> Forward {
        let w = self.used_weight(at);
        let correlation = Math::Infix(Box::new(w), CORRELATION, Box::new(at.x.clone()));
        let value = if self.bias {
            Math::Sum(vec![correlation, at.param(ParamName::BIAS)])
        } else {
            correlation
        };
        let d = self.dims;
        Forward {
            steps: Vec::new(),
            value,
            note: format!(
                "s = {}, p = {}, d = {}",
                times(&self.stride[..d]),
                times(&self.padding[..d]),
                times(&self.dilation[..d])
            ),
        }
    }

    fn backward_equations(&self, at: &Use) -> Backward {
        let w = self.used_weight(at);
        Backward {
            steps: Vec::new(),
            input_gradient: Math::Infix(Box::new(w), TRANSPOSED, Box::new(at.dy())),
        }
    }

    fn parameter_gradients(&self, at: &Use) -> Vec<Math> {
        let mut gradients = vec![Math::Apply(
            Func::named("corr"),
            vec![at.x.clone(), at.dy()],
        )];
        if self.bias {
            gradients.push(Math::SumOver(Index::POSITIONS, Box::new(at.dy())));
        }
        gradients
    }

    fn definitions(&self, _at: &Use) -> Vec<Definition> {
        // The indices of one dimension, or of two: of an output position, of a kernel tap,
        // and the input position they meet at.
        let (out, sum_out, tap, sum_tap, input, meet) = if self.dims == 1 {
            ("i", "i", "u", "c,u", "s·i + d·u − p", "s·i + d·u − p")
        } else {
            (
                "i, j",
                "{i,j}",
                "u, v",
                "{c,u,v}",
                "s·i + d·u − p, s·j + d·v − p",
                "(s·i + d·u − p, s·j + d·v − p)",
            )
        };
        let sum_tap = if self.dims == 1 {
            format!("{{{sum_tap}}}")
        } else {
            sum_tap.to_string()
        };
        let (tex_out, tex_tap, tex_input) = if self.dims == 1 {
            ("i", "u", "s i + d u - p")
        } else {
            ("i, j", "u, v", "s i + d u - p,\\ s j + d v - p")
        };
        let mut definitions = vec![
            Definition::new(
                format!(
                    "(W ⋆ x)[o, {out}] = Σ_{sum_tap} W[o, c, {tap}]·x[c, {input}]: \
                     cross-correlation (PyTorch's convolution), x zero outside its bounds; stride \
                     s, padding p and dilation d as the layer's line says"
                ),
                format!(
                    "(W \\star x)[o, {tex_out}] &= \\textstyle\\sum_{{c, {tex_tap}}} W[o, c, \
                     {tex_tap}]\\, x[c,\\ {tex_input}] \\quad \\text{{(cross-correlation; }} x \
                     \\text{{ zero outside its bounds)}}"
                ),
            ),
            Definition::new(
                format!(
                    "(W ⋆ᵀ g)[c, m] = Σ W[o, c, {tap}]·g[o, {out}] over every (o, {out}, {tap}) \
                     with {meet} = m: the transposed correlation, which sends each output's \
                     gradient back to the inputs it read"
                ),
                format!(
                    "(W \\star^{{\\top}} g)[c, m] &= \\textstyle\\sum_{{o, {tex_out}, {tex_tap} \
                     \\,:\\, ({tex_input}) = m}} W[o, c, {tex_tap}]\\, g[o, {tex_out}]"
                ),
            ),
            Definition::new(
                format!(
                    "corr(x, g)[o, c, {tap}] = Σ_{sum_out} g[o, {out}]·x[c, {input}]: the input \
                     correlated with the output's gradient, the gradient of the weights"
                ),
                format!(
                    "\\operatorname{{corr}}(x, g)[o, c, {tex_tap}] &= \\textstyle\\sum_{{{tex_out}}} \
                     g[o, {tex_out}]\\, x[c,\\ {tex_input}]"
                ),
            ),
        ];
        if self.bias {
            definitions.push(Definition::sum_over_positions());
        }
        if self.qat {
            definitions.push(Definition::new(
                "fq(W)[o, ·] = S[o]·clamp(round(W[o, ·]/S[o]), −127, 127), S[o] = max|W[o, ·]|/127: \
                 the weights fake-quantized per output channel as the int8 layer holds them; \
                 their gradient passes straight through (∂fq(W)/∂W taken as 1)",
                "\\operatorname{fq}(W)[o] &= S_o \\operatorname{clamp}(\\operatorname{round}(W[o] / S_o), \
                 -127, 127), \\quad S_o = \\max |W[o]| / 127 \\quad \\text{(straight-through \
                 gradient)}",
            ));
        }
        definitions
    }
}

/// `W ⋆ x`: cross-correlation, PyTorch's convolution.
const CORRELATION: Operator = Operator {
    text: "⋆",
    tex: "\\star",
};

/// `W ⋆ᵀ g`: the transposed correlation.
const TRANSPOSED: Operator = Operator {
    text: "⋆ᵀ",
    tex: "\\star^{\\top}",
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layers::Site;

    fn conv2d(kernel: usize, stride: usize, padding: usize, dilation: usize) -> Conv {
        Conv {
            dims: 2,
            out_channels: Dim::Known(8),
            stated_in: None,
            kernel: [kernel, kernel],
            stride: [stride, stride],
            padding: [padding, padding],
            dilation: [dilation, dilation],
            bias: true,
            qat: false,
        }
    }

    /// PyTorch's `nn.Conv2d` output size, from its documentation.
    fn pytorch(size: usize, k: usize, s: usize, p: usize, d: usize) -> usize {
        (size + 2 * p - d * (k - 1) - 1) / s + 1
    }

    #[test]
    fn output_sizes_are_pytorchs() {
        for (size, k, s, p, d) in [
            (28, 5, 1, 2, 1),
            (28, 5, 1, 0, 1),
            (32, 3, 1, 1, 1),
            (32, 3, 2, 1, 1),
            (9, 3, 2, 0, 1),
            (10, 3, 3, 1, 2),
            (7, 7, 1, 0, 1),
            (5, 2, 1, 0, 3),
        ] {
            let conv = conv2d(k, s, p, d);
            let input = Shape::new(vec![Dim::Known(3), Dim::Known(size), Dim::Known(size)]);
            let out = conv
                .output_shape(&input, &Site::new("c", "x"))
                .unwrap_or_else(|misfit| panic!("{}", misfit.message));
            let want = pytorch(size, k, s, p, d);
            assert_eq!(
                out.dims().iter().map(Dim::known).collect::<Vec<_>>(),
                [Some(8), Some(want), Some(want)],
                "size {size}, kernel {k}, stride {s}, padding {p}, dilation {d}"
            );
            // One im2col tile, whatever the batch (every tap at every output position), and
            // the 8 × 3·k·k weight gradient's transpose.
            assert_eq!(conv.scratch_per_sample(&input).known(), Some(0));
            assert_eq!(
                conv.scratch_per_call(&input).known(),
                Some(3 * k * k * want * want + 8 * 3 * k * k)
            );
        }
    }

    #[test]
    fn a_qat_convolution_is_a_conv2d_whose_scratch_also_holds_its_weights() {
        let conv = conv2d(3, 2, 1, 1);
        let qat = Conv {
            qat: true,
            ..conv2d(3, 2, 1, 1)
        };
        let input = Shape::new(vec![Dim::Known(3), Dim::Known(10), Dim::Known(10)]);
        let at = Site::new("c", "x");
        let out = qat
            .output_shape(&input, &at)
            .unwrap_or_else(|m| panic!("{}", m.message));
        let known = |shape: &Shape| shape.dims().iter().map(Dim::known).collect::<Vec<_>>();
        assert_eq!(known(&out), [Some(8), Some(5), Some(5)]);
        assert_eq!(qat.param_count(&input).known(), Some(8 * 27 + 8));
        // The im2col tile (27 taps at 5×5 positions) and fq(W) (8 × 27); a Conv2d holds the
        // weight gradient's transpose in the same room.
        assert_eq!(qat.scratch_per_call(&input).known(), Some(27 * 25 + 8 * 27));
        assert_eq!(
            conv.scratch_per_call(&input).known(),
            Some(27 * 25 + 8 * 27)
        );
        assert_eq!(qat.name(), "QatConv2d");
        let ty = qat
            .type_tokens(&quote!(nn), &input, &out, false)
            .to_string();
        assert!(
            ty.starts_with("nn :: quant :: QatConv2d < T , 8 , 27 , 8 , 300 , 200"),
            "{ty}"
        );
    }

    #[test]
    fn a_kernel_wider_than_the_padded_input_is_refused() {
        let input = Shape::new(vec![Dim::Known(1), Dim::Known(4), Dim::Known(4)]);
        // Span 2·(3 − 1) + 1 = 5 > 4.
        let misfit = conv2d(3, 1, 0, 2).output_shape(&input, &Site::new("c", "x"));
        assert!(misfit.is_err());
        // With padding 1 the padded input is 6: one output position.
        let out = conv2d(3, 1, 1, 2)
            .output_shape(&input, &Site::new("c", "x"))
            .unwrap_or_else(|misfit| panic!("{}", misfit.message));
        assert_eq!(out.dims()[1].known(), Some(2));
    }

    #[test]
    fn a_named_size_gives_an_expression_not_a_number() {
        let h = Dim::symbolic(quote!(H), "H".into());
        let input = Shape::new(vec![Dim::Known(1), h.clone(), h]);
        let out = conv2d(3, 2, 1, 1)
            .output_shape(&input, &Site::new("c", "x"))
            .unwrap_or_else(|misfit| panic!("{}", misfit.message));
        assert_eq!(out.dims()[1].known(), None);
        let text = out.dims()[1].expr().to_string();
        assert!(text.contains('H'), "{text}");
    }
}
