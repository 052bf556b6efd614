//! `#[nn(int8)]`: the int8 network `NetQ8`, one field per layer of the checked model's
//! [`Int8Layer`] plan (`nn::quant::DenseQ8`, `Conv2dQ8`, `MaxPool2dQ8`), with post-training
//! quantization from the `f32` network, a straight-line integer `forward_in` (in the
//! generated `NetQ8Workspace`, two ping-pong buffers) and `forward`, and its weight
//! file's reader (a `const fn`) and writer. Flatten and Dropout have no field: the one
//! passes the same bytes on, the other is the identity in inference.

use super::{Expander, size};
use crate::model::{Int8Kind, Int8Layer};
use proc_macro2::{Group, Literal, TokenStream, TokenTree};
use quote::{format_ident, quote};

/// `tokens` with every identifier `T` replaced by `f32`: a layer's type in the `f32` network.
fn with_f32(tokens: TokenStream) -> TokenStream {
    tokens
        .into_iter()
        .map(|tree| match tree {
            TokenTree::Ident(ident) if ident == "T" => {
                TokenTree::Ident(proc_macro2::Ident::new("f32", ident.span()))
            }
            TokenTree::Group(group) => {
                let mut new = Group::new(group.delimiter(), with_f32(group.stream()));
                new.set_span(group.span());
                TokenTree::Group(new)
            }
            other => other,
        })
        .collect()
}

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
                match l.kind {
                    Int8Kind::Dense => quote! { #nn::quant::DenseQ8<#input, #output> },
                    Int8Kind::Conv2d | Int8Kind::MaxPool2d => {
                        let ty = with_f32(self.layers[l.layer].ty.clone());
                        quote! { <#ty as #nn::quant::Int8Form>::Q8 }
                    }
                }
            })
            .collect();
        let quantizing: Vec<&Int8Layer> = plan.iter().filter(|l| l.quantizes()).collect();
        let input_node = &model.nodes[model.inputs[0]];
        let input_size = size(input_node.size());
        let output_size = size(model.nodes[model.outputs[0]].size());
        let nodes = Literal::usize_unsuffixed(quantizing.len() + 1);
        // The nodes the int8 network quantizes, in order: the input, each Dense or Conv2d
        // layer's output (after its ReLU). The tape keeps each of them, or its flattened copy:
        // the input and the hidden ones are read by the next layer's backward pass (saved, a
        // field named after the node), the last may be the output.
        let field = |id| {
            if model.outputs.contains(&id) {
                let field = &self.fields.output;
                Some(quote! { #field })
            } else if self.memory.saved[id] {
                let name = &model.nodes[id].name;
                Some(quote! { #name })
            } else {
                None
            }
        };
        let observed = std::iter::once(field(model.inputs[0]).expect("the input is saved")).chain(
            quantizing.iter().map(|l| {
                l.same_values
                    .iter()
                    .find_map(|&id| field(id))
                    .expect("a layer's output is read by the next layer, or is the output")
            }),
        );
        let indices = (0..=quantizing.len()).map(Literal::usize_unsuffixed);
        let mut at = 0;
        let quantized = plan.iter().map(|l| {
            let name = &model.layers[l.layer].name;
            let relu = l.relu;
            let (input, output) = (
                Literal::usize_unsuffixed(at),
                Literal::usize_unsuffixed(at + 1),
            );
            match l.kind {
                Int8Kind::Dense => {
                    at += 1;
                    quote! {
                        #name: #nn::quant::DenseQ8::quantize(
                            &net.#name, params[#input], params[#output], #relu)?,
                    }
                }
                Int8Kind::Conv2d => {
                    at += 1;
                    quote! {
                        #name: #nn::quant::Conv2dQ8::quantize(
                            &net.#name, params[#input], params[#output], #relu)?,
                    }
                }
                Int8Kind::MaxPool2d => quote! { #name: #nn::quant::MaxPool2dQ8::new(), },
            }
        });
        let quantized: Vec<TokenStream> = quantized.collect();
        let first = &model.layers[quantizing[0].layer].name;
        let last = &model.layers[quantizing[quantizing.len() - 1].layer].name;
        let read = plan.iter().map(|l| {
            let name = &model.layers[l.layer].name;
            let text = name.to_string();
            let (input, output) = sizes(l);
            match l.kind {
                Int8Kind::Dense => quote! { let #name = file.dense::<#input, #output>(#text); },
                Int8Kind::Conv2d => quote! { let #name = file.conv2d(#text); },
                Int8Kind::MaxPool2d => quote! { let #name = file.max_pool2d(); },
            }
        });
        let write = plan.iter().map(|l| {
            let name = &model.layers[l.layer].name;
            let text = name.to_string();
            match l.kind {
                Int8Kind::Dense => {
                    quote! { #nn::quant::file::write_dense(#text, &self.#name, sink); }
                }
                Int8Kind::Conv2d => {
                    quote! { #nn::quant::file::write_conv2d(#text, &self.#name, sink); }
                }
                Int8Kind::MaxPool2d => quote! {},
            }
        });
        let count = Literal::u32_unsuffixed(quantizing.len() as u32);
        // `forward_in`: each layer reads the buffer the previous one wrote (the input, for the
        // first) and writes into the other, `a` for the first layer, `b` for the second, ...
        let workspace = format_ident!("{}Q8Workspace", model.name);
        let output_sizes: Vec<TokenStream> = plan.iter().map(|l| sizes(l).1).collect();
        let output_sizes_again = &output_sizes;
        // Hygienic locals (`Span::mixed_site()`): a user's `a` or `x` in scope is not captured.
        let (a, b, x, max, ws) = (
            super::local("a"),
            super::local("b"),
            super::local("x"),
            super::local("max"),
            super::local("workspace"),
        );
        let buffer = |i: usize| {
            if i.is_multiple_of(2) {
                quote! { #a }
            } else {
                quote! { #b }
            }
        };
        let steps = names.iter().enumerate().map(|(i, name)| {
            let input = if i == 0 {
                quote! { #x }
            } else {
                let from = buffer(i - 1);
                quote! { #nn::quant::prefix(&*#from) }
            };
            let to = buffer(i);
            quote! { self.#name.forward_into(#input, #nn::quant::prefix_mut(&mut *#to)); }
        });
        let result = buffer(names.len() - 1);
        let second = if names.len() > 1 {
            quote! { #b }
        } else {
            quote! { _ }
        };
        let workspace_doc = format!(
            " The working memory of [`{q8}::forward_in`]: two buffers, each as large as the \
             largest activation ([`{q8}::ACTIVATION_BYTES`]); each layer reads its input from \
             the front of one and writes its output to the front of the other. `ZERO` for a \
             `static`."
        );
        let doc = format!(
            " [`{network}`] in int8 (`#[nn(int8)]`): `i8` weights per output channel, `i8` \
             activations, `i32` accumulators (TensorFlow Lite's scheme, `nn::quant`). Built by \
             [`{q8}::quantize`] from the `f32` network and calibration ranges, or in a `const` \
             by [`{q8}::from_file`]."
        );
        quote! {
            #[doc = #workspace_doc]
            #[derive(Clone, Debug, PartialEq)]
            #vis struct #workspace {
                /// The two buffers.
                pub buffers: [[i8; #q8::ACTIVATION_BYTES]; 2],
            }

            impl #workspace {
                /// A zeroed workspace, usable as a `static`'s value.
                pub const ZERO: Self = Self {
                    buffers: [[0; #q8::ACTIVATION_BYTES]; 2],
                };
            }

            impl #nn::ConstZero for #workspace {
                const ZERO: Self = Self::ZERO;
            }

            // SAFETY: bytes, whose all-zero value is valid.
            unsafe impl #nn::Zeroable for #workspace {}

            #[doc = #doc]
            #[derive(Clone, Copy, Debug, PartialEq)]
            #vis struct #q8 {
                #( #[doc = concat!(" `", #name_strings, "` in int8.")] pub #names: #types, )*
            }

            impl #q8 {
                /// The nodes it quantizes: the input, then each Dense or Conv2d layer's output
                /// (after its ReLU; max pooling keeps the scale). [`quantize`](Self::quantize)
                /// takes a range for each, in this order.
                pub const NODES: usize = #nodes;

                /// Widens `ranges` (one per node, see [`NODES`](Self::NODES); start from
                /// `Range::EMPTY`) to the values the tape of a training forward pass holds:
                /// calibration over the batches of your data. (A Dropout layer drops values
                /// in a training pass: the nodes after it see them dropped and rescaled.)
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

                /// Bytes of the largest activation (a layer's output): the size of each of
                /// the two buffers of the workspace.
                pub const ACTIVATION_BYTES: usize = {
                    let mut #max = 0;
                    #( if #output_sizes > #max { #max = #output_sizes_again; } )*
                    #max
                };

                /// Bytes of the workspace of [`forward_in`](Self::forward_in): all the memory
                /// inference needs besides the network and the input.
                pub const WORKSPACE_BYTES: usize = ::core::mem::size_of::<#workspace>();

                /// The int8 pass in `workspace`: quantized input, quantized output (which
                /// lives in the workspace); integers only. Each layer writes its output into
                /// the workspace buffer its input is not in: nothing activation-sized on the
                /// stack.
                pub fn forward_in<'a>(
                    &self,
                    #x: &[i8; #input_size],
                    #ws: &'a mut #workspace,
                ) -> &'a [i8; #output_size] {
                    let [#a, #second] = &mut #ws.buffers;
                    #( #steps )*
                    #nn::quant::prefix(&*#result)
                }

                /// The int8 pass: quantized input, quantized output; integers only. Each
                /// layer's output is a value on the stack (`forward_into` a local array), and
                /// they all stay there until the end: for a CNN, the sum of its activations.
                /// [`forward_in`](Self::forward_in) needs only the workspace, two buffers of
                /// the largest. (Equal byte for byte; for a small network such as the sine
                /// model, this is a few instructions faster: no workspace to zero.)
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
                    #( #write )*
                }
            }
        }
    }
}
