//! `#[nn(int8)]`: the int8 network `NetQ8`, one `nn::quant::DenseQ8` field per layer of the
//! checked model's [`Int8Layer`] plan, with post-training quantization from the `f32`
//! network, a straight-line integer `forward`, and its weight file's reader (a `const fn`)
//! and writer.

use super::{Expander, size};
use crate::model::Int8Layer;
use proc_macro2::{Literal, TokenStream};
use quote::{format_ident, quote};

impl Expander<'_> {
    /// The int8 network's struct and inherent impl, or nothing without `#[nn(int8)]`.
    pub(super) fn int8_items(&self) -> TokenStream {
        let Some(plan) = &self.model.int8 else {
            return TokenStream::new();
        };
        let model = self.model;
        let (nn, network, tape) = (&self.nn, &self.network, &self.tape);
        let vis = &model.vis;
        let q8 = format_ident!("{}Q8", model.name);
        let names: Vec<_> = plan.iter().map(|l| &model.layers[l.layer].name).collect();
        let name_strings: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let sizes = |l: &Int8Layer| {
            let decl = &model.layers[l.layer];
            (size(&decl.input), size(decl.output.size()))
        };
        let types: Vec<TokenStream> = plan
            .iter()
            .map(|l| {
                let (input, output) = sizes(l);
                quote! { #nn::quant::DenseQ8<#input, #output> }
            })
            .collect();
        let input_node = &model.nodes[model.inputs[0]];
        let input_size = size(input_node.size());
        let output_size = size(model.nodes[model.outputs[0]].size());
        let nodes = Literal::usize_unsuffixed(plan.len() + 1);
        // The nodes the int8 network quantizes, in order: the input, each layer's output. The
        // tape keeps each of them: the input and the hidden ones are read by the next layer's
        // backward pass (saved, a field named after the node), the last is the output.
        let observed = std::iter::once(model.inputs[0])
            .chain(plan.iter().map(|l| l.node))
            .map(|id| {
                if model.outputs.contains(&id) {
                    let field = &self.fields.output;
                    quote! { #field }
                } else {
                    debug_assert!(self.memory.saved[id], "a layer's input is saved");
                    let name = &model.nodes[id].name;
                    quote! { #name }
                }
            });
        let indices = (0..=plan.len()).map(Literal::usize_unsuffixed);
        let quantized = plan.iter().enumerate().map(|(i, l)| {
            let name = &model.layers[l.layer].name;
            let (at, next) = (
                Literal::usize_unsuffixed(i),
                Literal::usize_unsuffixed(i + 1),
            );
            let relu = l.relu;
            quote! {
                #name: #nn::quant::DenseQ8::quantize(&net.#name, params[#at], params[#next], #relu)?,
            }
        });
        let first = names[0];
        let last = names[names.len() - 1];
        let read = plan.iter().map(|l| {
            let name = &model.layers[l.layer].name;
            let text = name.to_string();
            let (input, output) = sizes(l);
            quote! { let #name = file.dense::<#input, #output>(#text); }
        });
        let count = Literal::u32_unsuffixed(plan.len() as u32);
        let doc = format!(
            " [`{network}`] in int8 (`#[nn(int8)]`): `i8` weights per output channel, `i8` \
             activations, `i32` accumulators (TensorFlow Lite's scheme, `nn::quant`). Built by \
             [`{q8}::quantize`] from the `f32` network and calibration ranges, or in a `const` \
             by [`{q8}::from_file`]."
        );
        quote! {
            #[doc = #doc]
            #[derive(Clone, Copy, Debug, PartialEq)]
            #vis struct #q8 {
                #( #[doc = concat!(" `", #name_strings, "` in int8.")] pub #names: #types, )*
            }

            impl #q8 {
                /// The nodes it quantizes: the input, then each layer's output (after its
                /// ReLU). [`quantize`](Self::quantize) takes a range for each, in this order.
                pub const NODES: usize = #nodes;

                /// Widens `ranges` (one per node, see [`NODES`](Self::NODES); start from
                /// `Range::EMPTY`) to the values the tape of a training forward pass holds:
                /// calibration over the batches of your data.
                pub fn observe<const B: usize>(
                    ranges: &mut [#nn::quant::Range; #nodes],
                    tape: &#tape<f32, { B }>,
                ) {
                    #( ranges[#indices].observe(tape.#observed.as_slice()); )*
                }

                /// Post-training quantization of `net`, each node's scale and zero point from
                /// its calibration range.
                pub fn quantize(
                    net: &#network<f32>,
                    ranges: &[#nn::quant::Range; #nodes],
                ) -> ::core::result::Result<Self, #nn::quant::QuantError> {
                    let params = ranges.map(#nn::quant::QuantParams::from_range);
                    ::core::result::Result::Ok(Self { #( #quantized )* })
                }

                /// The int8 pass: quantized input, quantized output; integers only.
                pub fn forward(&self, x: &[i8; #input_size]) -> [i8; #output_size] {
                    let y = x;
                    #( let y = &self.#names.forward(y); )*
                    *y
                }

                /// `x` quantized with the input's scale and zero point.
                pub fn quantize_input(&self, x: &[f32; #input_size]) -> [i8; #input_size] {
                    ::core::array::from_fn(|i| self.#first.input.quantize(x[i]))
                }

                /// `y` dequantized with the output's scale and zero point.
                pub fn dequantize_output(&self, y: &[i8; #output_size]) -> [f32; #output_size] {
                    ::core::array::from_fn(|i| self.#last.output.dequantize(y[i]))
                }

                /// The network on real numbers: the input quantized, the int8 pass, the
                /// output dequantized.
                pub fn forward_f32(&self, x: &[f32; #input_size]) -> [f32; #output_size] {
                    self.dequantize_output(&self.forward(&self.quantize_input(x)))
                }

                /// The network from an int8 weight file (`nn::quant::file`), in a `const`:
                /// `static NET: NetQ8 = NetQ8::from_file(include_bytes!("net.q8"));`. A file
                /// that does not fit fails there, naming the layer.
                pub const fn from_file(bytes: &[u8]) -> Self {
                    let mut file = #nn::quant::file::Reader::new(bytes);
                    #( #read )*
                    file.finish();
                    Self { #( #names, )* }
                }

                /// Writes the int8 weight file that [`from_file`](Self::from_file) reads,
                /// piece by piece, to `sink`.
                pub fn write_file(&self, sink: &mut dyn FnMut(&[u8])) {
                    #nn::quant::file::write_header(#count, sink);
                    #( #nn::quant::file::write_dense(#name_strings, &self.#names, sink); )*
                }
            }
        }
    }
}
