//! The network's methods (constants, passes, initialisation, tensors, summary, derivation)
//! and its `nn::Network` impl.

use super::passes::Mode;
use super::{Expander, local, size};
use crate::model::Op;
use proc_macro2::TokenStream;
use quote::{format_ident, quote};
use syn::Ident;

impl Expander<'_> {
    /// `impl Net<T> { ... }`.
    pub(super) fn inherent_impl(&self) -> TokenStream {
        let Self {
            model,
            nn,
            grads,
            tape,
            ..
        } = self;
        let name = &self.network;
        let (tape_arg, grads_arg, rng, visit) =
            (local("tape"), local("grads"), local("rng"), local("visit"));
        let input_params = self.signature(&model.inputs, "");
        let output_params = self.signature(&model.outputs, "d_");
        let input_type = self.value_type(&model.inputs);
        let output_type = self.value_type(&model.outputs);
        let infer_body = self.forward_body(Mode::Infer);
        let train_body = self.forward_body(Mode::Train);
        let full_backward = self.backward_body(false);
        let params_backward = self.backward_body(true);
        let init = self.init_body();
        let visit_tensors = self.visit_tensors_body();
        let summary = self.summary();
        let explain_items = &self.items;
        quote! {
            impl<T: #nn::Real> #name<T> {
                /// Number of trainable scalars.
                pub const PARAM_COUNT: usize = <Self as #nn::Params<T>>::LEN;

                /// Every parameter zero: usable in `const` and `static` items.
                pub const ZERO: Self = <Self as #nn::ConstZero>::ZERO;

                /// Bytes of the trainable parameters.
                pub const PARAM_BYTES: usize = Self::PARAM_COUNT * ::core::mem::size_of::<T>();

                /// Bytes of a gradient struct (and of each optimizer buffer of the same shape:
                /// SGD's momentum, Adam's two moments).
                pub const GRAD_BYTES: usize = ::core::mem::size_of::<#grads<T>>();

                /// Bytes of the whole network value: parameters and layer state.
                pub const BYTES: usize = ::core::mem::size_of::<Self>();

                /// Bytes of the tape for a batch of `B` samples (what training needs besides the
                /// network, its gradients and the optimizer's state).
                pub const fn tape_bytes<const B: usize>() -> usize {
                    ::core::mem::size_of::<#tape<T, { B }>>()
                }

                /// Inference on a batch of `B` samples (one per column), keeping nothing.
                pub fn forward<const B: usize>(&self, #input_params) -> #output_type {
                    #infer_body
                }

                /// Training forward pass: computes the outputs, records every node in `tape`, and
                /// updates the layers' state.
                pub fn forward_train<const B: usize>(
                    &mut self,
                    #input_params
                    #tape_arg: &mut #tape<T, { B }>,
                ) -> #output_type {
                    #train_body
                }

                /// Backward pass over the batch recorded in `tape`: given `∂L/∂output`, *adds*
                /// `∂L/∂θ` to `grads` and returns `∂L/∂input`.
                pub fn backward<const B: usize>(
                    &self,
                    #tape_arg: &#tape<T, { B }>,
                    #output_params
                    #grads_arg: &mut #grads<T>,
                ) -> #input_type {
                    #full_backward
                }

                /// Initialises every layer in place from `rng`: by its `#[init(..)]` scheme, or He
                /// (Kaiming) uniform before the ReLU family and Glorot (Xavier) uniform otherwise;
                /// biases to zero.
                pub fn init<R: #nn::rand_core::Rng + ?Sized>(&mut self, #rng: &mut R) {
                    #init
                }

                /// Calls `visit` with every tensor (`fc1.weight`, ...) in parameter-slice order.
                pub fn visit_tensors(#visit: &mut dyn FnMut(#nn::NamedTensor)) {
                    #visit_tensors
                }

                /// The backward pass for training: *adds* `∂L/∂θ` to `grads` like `backward`, but
                /// computes no gradient for the inputs, so the first layers skip their `∂L/∂x`
                /// products.
                pub fn backward_params<const B: usize>(
                    &self,
                    #tape_arg: &#tape<T, { B }>,
                    #output_params
                    #grads_arg: &mut #grads<T>,
                ) {
                    #params_backward
                }

                /// Each node's operation, output shape and parameter count, like Keras'
                /// `model.summary()`; print it with `{}`.
                pub fn summary() -> #summary

                #explain_items
            }
        }
    }

    /// The body of `init`: each layer by its scheme, then each state.
    fn init_body(&self) -> TokenStream {
        let nn = &self.nn;
        let rng = local("rng");
        let layer_traits = self.layers.iter().map(|l| &l.as_layer);
        let layer_names = self.model.layers.iter().map(|l| &l.name);
        let layer_inits = self
            .model
            .layers
            .iter()
            .map(|l| format_ident!("{}", l.init));
        let (state_names, state_traits): (Vec<&Ident>, Vec<&TokenStream>) = self
            .stateful()
            .map(|(layer, code)| (&layer.name, &code.as_layer))
            .unzip();
        quote! {
            #( #layer_traits::init(&mut self.#layer_names, #nn::init::Init::#layer_inits, #rng); )*
            #( #state_traits::init_state(&mut self.state.#state_names, #rng); )*
        }
    }

    /// The body of `visit_tensors`: every layer's tensors, with their offsets.
    fn visit_tensors_body(&self) -> TokenStream {
        let nn = &self.nn;
        let (visit, offset, info) = (local("visit"), local("offset"), local("info"));
        let layer_traits = self.layers.iter().map(|l| &l.as_layer);
        let layer_names = self.model.layers.iter().map(|l| l.name.to_string());
        quote! {
            let mut #offset = 0;
            #(
                for #info in #layer_traits::TENSORS {
                    #visit(#nn::NamedTensor { layer: #layer_names, info: #info, offset: #offset });
                    #offset += #info.len();
                }
            )*
            let _ = #offset;
        }
    }

    /// The body of `summary()`, with its return type.
    fn summary(&self) -> TokenStream {
        let (model, nn) = (self.model, &self.nn);
        let rows: Vec<TokenStream> = model
            .nodes
            .iter()
            .map(|node| {
                let (op, params) = match &node.op {
                    Op::Input => ("input".to_string(), quote! { 0 }),
                    Op::Layer { layer, shared, .. } => {
                        let decl = &model.layers[*layer];
                        let kind = decl.describe();
                        if *shared {
                            (format!("{}: {kind}, shared", decl.name), quote! { 0 })
                        } else {
                            let ty = &self.layers[*layer].ty;
                            (
                                format!("{}: {kind}", decl.name),
                                quote! { <#ty as #nn::Params<T>>::LEN },
                            )
                        }
                    }
                    Op::Activation { info, params, .. } => {
                        let op = if params.is_empty() {
                            info.func.to_string()
                        } else {
                            let values: Vec<String> = params.iter().map(f64::to_string).collect();
                            format!("{}({})", info.func, values.join(", "))
                        };
                        (op, quote! { 0 })
                    }
                    Op::Binary { .. } | Op::Concat(_) | Op::Flatten(_) => {
                        (node.expr.clone(), quote! { 0 })
                    }
                };
                let name = node.name.to_string();
                let shape = node.shape.to_string();
                quote! { #nn::SummaryRow { node: #name, op: #op, shape: #shape, params: #params } }
            })
            .collect();
        let count = size(rows.len());
        let name = model.name.to_string();
        quote! {
            #nn::Summary<#count> {
                #nn::Summary {
                    name: #name,
                    rows: [ #(#rows),* ],
                    scalar_bytes: ::core::mem::size_of::<T>(),
                }
            }
        }
    }

    /// `impl nn::Network<T> for Net<T>`, forwarding to the inherent methods.
    pub(super) fn network_trait_impl(&self) -> TokenStream {
        let Self {
            model,
            nn,
            grads,
            tape,
            ..
        } = self;
        let name = &self.network;
        let input_type = self.value_type(&model.inputs);
        let output_type = self.value_type(&model.outputs);
        let (input, d_output) = (local("input"), local("d_output"));
        let (tape_arg, grads_arg, rng, visit) =
            (local("tape"), local("grads"), local("rng"), local("visit"));
        let input_fields = tuple_fields(&input, model.inputs.len());
        let output_fields = tuple_fields(&d_output, model.outputs.len());
        let state_items = self.state_items();
        quote! {
            impl<T: #nn::Real> #nn::Network<T> for #name<T> {
                type Grads = #grads<T>;
                type Input<const B: usize> = #input_type;
                type Output<const B: usize> = #output_type;
                type Tape<const B: usize> = #tape<T, { B }>;

                fn forward<const B: usize>(&self, #input: &Self::Input<{ B }>) -> Self::Output<{ B }> {
                    #name::forward(self, #input_fields)
                }

                fn forward_train<const B: usize>(
                    &mut self,
                    #input: &Self::Input<{ B }>,
                    #tape_arg: &mut Self::Tape<{ B }>,
                ) -> Self::Output<{ B }> {
                    #name::forward_train(self, #input_fields #tape_arg)
                }

                fn backward<const B: usize>(
                    &self,
                    #tape_arg: &Self::Tape<{ B }>,
                    #d_output: &Self::Output<{ B }>,
                    #grads_arg: &mut Self::Grads,
                ) -> Self::Input<{ B }> {
                    #name::backward(self, #tape_arg, #output_fields #grads_arg)
                }

                fn backward_params<const B: usize>(
                    &self,
                    #tape_arg: &Self::Tape<{ B }>,
                    #d_output: &Self::Output<{ B }>,
                    #grads_arg: &mut Self::Grads,
                ) {
                    #name::backward_params(self, #tape_arg, #output_fields #grads_arg)
                }

                fn summary() -> impl ::core::fmt::Display {
                    #name::<T>::summary()
                }

                fn visit_tensors(#visit: &mut dyn FnMut(#nn::NamedTensor)) {
                    #name::<T>::visit_tensors(#visit)
                }

                fn init<R: #nn::rand_core::Rng + ?Sized>(&mut self, #rng: &mut R) {
                    #name::init(self, #rng)
                }

                #state_items
            }
        }
    }
}

impl Expander<'_> {
    /// `impl nn::io::flat_const::ConstTensors for Net<T>`: the tensors of `visit_tensors` and
    /// `visit_state_tensors` as constants, layer by layer, with where each stateful layer's
    /// state is in the network, for weights built at compile time (`nn::include_flat!`).
    pub(super) fn const_tensors_impl(&self) -> TokenStream {
        let nn = &self.nn;
        let name = &self.network;
        let layer_traits = self.layers.iter().map(|l| &l.as_layer);
        let layer_names = self.model.layers.iter().map(|l| l.name.to_string());
        let (state_names, state_traits): (Vec<_>, Vec<_>) = self
            .stateful()
            .map(|(layer, code)| (&layer.name, &code.as_layer))
            .unzip();
        let state = if state_names.is_empty() {
            quote! {}
        } else {
            let texts = state_names.iter().map(|n| n.to_string());
            quote! {
                const STATE: &'static [#nn::io::flat_const::LayerState] = &[
                    #( #nn::io::flat_const::LayerState::new(
                        #texts,
                        #state_traits::STATE_TENSORS,
                        ::core::mem::offset_of!(#name<T>, state.#state_names),
                        #state_traits::STATE_OFFSETS,
                    ), )*
                ];
            }
        };
        quote! {
            // SAFETY: each `STATE` entry is a layer's `State`, at its offset in the network,
            // with the `StateOffsets` of that `State` type: empty (`NONE`), or made by its
            // unsafe constructor, which promises that every bit pattern of it is valid.
            unsafe impl<T: #nn::Real> #nn::io::flat_const::ConstTensors for #name<T> {
                const LAYERS: &'static [#nn::io::flat_const::LayerTensors] = &[
                    #( #nn::io::flat_const::LayerTensors {
                        layer: #layer_names,
                        tensors: #layer_traits::TENSORS,
                    }, )*
                ];
                #state
            }
        }
    }
}

/// `input, ` or `&input.0, &input.1, `.
fn tuple_fields(name: &Ident, count: usize) -> TokenStream {
    if count == 1 {
        return quote! { #name, };
    }
    (0..count)
        .map(|i| {
            let index = syn::Index::from(i);
            quote! { &#name.#index, }
        })
        .collect()
}
