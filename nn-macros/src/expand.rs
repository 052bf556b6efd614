//! Stage 3: code generation from the checked model. Only `quote!`; no checks.
//!
//! The generated code reads like a hand-written network: one statement per node, named
//! after the node, in execution order forward and in reverse order backward, where each node
//! adds its contribution to its parents' gradients (`d_<node>`).

use crate::builtins::ActivationInfo;
use crate::model::{LayerDecl, LayerKind, Model, Node, NodeId, Op, shape_text};
use crate::parse::BinOp;
use proc_macro2::{Literal, TokenStream};
use quote::{ToTokens, format_ident, quote, quote_spanned};
use syn::Ident;
use syn::spanned::Spanned;

/// The generated items.
pub fn expand(model: &Model) -> TokenStream {
    let Model {
        attrs, vis, name, ..
    } = model;
    let grads = format_ident!("{}Grads", name);
    let tape = format_ident!("{}Tape", name);
    let state = format_ident!("{}State", name);

    let layer_fields: Vec<TokenStream> = model
        .layers
        .iter()
        .map(|layer| {
            let field = &layer.name;
            let ty = layer_type(model, layer);
            let doc = match layer.as_dense() {
                Some((input, out)) => format!(
                    " `{field}`: dense layer, {input} → {out} (`weight` `[{out}, {input}]`, \
                     `bias` `[{out}]`)."
                ),
                None => format!(
                    " `{field}`: {}, {} → {}.",
                    layer.describe(),
                    shape_text(&layer.input_shape),
                    shape_text(&layer.output)
                ),
            };
            quote! { #[doc = #doc] pub #field: #ty, }
        })
        .collect();
    let layer_names: Vec<&Ident> = model.layers.iter().map(|l| &l.name).collect();
    let layer_types: Vec<TokenStream> = model.layers.iter().map(|l| layer_type(model, l)).collect();

    // Layers with (possibly) non-trivial state: a field each in `NetState`.
    let stateful: Vec<&LayerDecl> = model.layers.iter().filter(|l| has_state(l)).collect();
    let state_names: Vec<&Ident> = stateful.iter().map(|l| &l.name).collect();
    let state_traits: Vec<TokenStream> = stateful.iter().map(|l| layer_trait(model, l)).collect();
    let state_types: Vec<TokenStream> = stateful
        .iter()
        .map(|l| {
            let layer = layer_trait(model, l);
            quote! { #layer::State }
        })
        .collect();
    let (state_field, state_zero, state_item) = if stateful.is_empty() {
        (quote! {}, quote! {}, quote! {})
    } else {
        let doc = format!(
            " Non-trainable state of [`{name}`]'s layers (running statistics, generators): \
             updated by `forward_train`, read by `forward`; not part of the parameters."
        );
        (
            quote! {
                /// Non-trainable state of the layers (not part of the parameter slice).
                pub state: #state<T>,
            },
            quote! { state: ::nn::ConstZero::ZERO, },
            quote! {
                #[doc = #doc]
                #[derive(Clone, Debug, PartialEq)]
                #[repr(C)]
                #vis struct #state<T: ::nn::Real = f32> {
                    #( pub #state_names: #state_types, )*
                }

                impl<T: ::nn::Real> ::nn::ConstZero for #state<T> {
                    const ZERO: Self = Self { #( #state_names: ::nn::ConstZero::ZERO, )* };
                }

                // SAFETY: repr(C); every field is a layer's `State`, which is `Zeroable`.
                unsafe impl<T: ::nn::Real> ::nn::Zeroable for #state<T> {}
            },
        )
    };

    // Tape: every node's value, then the cache of every application of a layer that has one.
    let mut tape_names: Vec<Ident> = model.nodes.iter().map(|n| n.name.clone()).collect();
    let mut tape_types: Vec<TokenStream> = model.nodes.iter().map(matrix).collect();
    let mut tape_docs: Vec<String> = model
        .nodes
        .iter()
        .map(|n| match n.op {
            Op::Input => format!(" Input `{}`, {}.", n.name, shape_text(&n.shape)),
            _ => format!(" `{} = {}`, {}.", n.name, n.expr, shape_text(&n.shape)),
        })
        .collect();
    for node in &model.nodes {
        if let Op::Layer { layer, .. } = node.op
            && has_cache(&model.layers[layer])
        {
            let layer = layer_trait(model, &model.layers[layer]);
            tape_names.push(cache_name(node));
            tape_types.push(quote! { #layer::Cache<B> });
            tape_docs.push(format!(
                " What `{}` keeps for its backward pass.",
                node.expr
            ));
        }
    }

    let input_params = signature(model, &model.inputs, "");
    let output_params = signature(model, &model.outputs, "d_");
    let input_type = value_type(model, &model.inputs);
    let output_type = value_type(model, &model.outputs);
    let input_fields = tuple_fields("input", model.inputs.len());
    let output_fields = tuple_fields("d_output", model.outputs.len());

    let infer_body = forward_body(model, Mode::Infer);
    let train_body = forward_body(model, Mode::Train);
    let full_backward = backward_body(model, false);
    let params_backward = backward_body(model, true);
    let summary = summary(model);
    let layer_names_text: Vec<String> = model.layers.iter().map(|l| l.name.to_string()).collect();
    let layer_traits: Vec<TokenStream> =
        model.layers.iter().map(|l| layer_trait(model, l)).collect();
    let layer_inits: Vec<Ident> = model
        .layers
        .iter()
        .map(|l| format_ident!("{}", l.init))
        .collect();
    let explain_items = crate::explain::items(model);
    let explain_docs = crate::explain::struct_docs(model);

    // ---- BEGIN io13 (issue 13): batch statistics and saved state tensors --------------
    // Items of `impl Network` generated from the layers' `Layer::BATCH_STATISTICS`,
    // `Layer::STATE_TENSORS`, `Layer::state_value` and `Layer::set_state_value`; the trait
    // has defaults for a network without state.
    let state_names_text: Vec<String> = state_names.iter().map(|n| n.to_string()).collect();
    let state_tensor_items = if stateful.is_empty() {
        quote! {}
    } else {
        quote! {
            fn visit_state_tensors(visit: &mut dyn FnMut(::nn::NamedTensor)) {
                let mut offset = 0;
                #(
                    for info in #state_traits::STATE_TENSORS {
                        visit(::nn::NamedTensor { layer: #state_names_text, info, offset });
                        offset += info.len();
                    }
                )*
                let _ = offset;
            }

            fn state_value(&self, tensor: usize, element: usize) -> ::nn::StateValue<T> {
                let mut tensor = tensor;
                #(
                    let count = #state_traits::STATE_TENSORS.len();
                    if tensor < count {
                        return #state_traits::state_value(&self.state.#state_names, tensor, element);
                    }
                    tensor -= count;
                )*
                let _ = (tensor, element);
                ::nn::StateValue::Real(<T as ::nn::Real>::ZERO)
            }

            fn set_state_value(&mut self, tensor: usize, element: usize, value: ::nn::StateValue<T>) {
                let mut tensor = tensor;
                #(
                    let count = #state_traits::STATE_TENSORS.len();
                    if tensor < count {
                        return #state_traits::set_state_value(&mut self.state.#state_names, tensor, element, value);
                    }
                    tensor -= count;
                )*
                let _ = (tensor, element, value);
            }
        }
    };
    let network_io13_items = quote! {
        const BATCH_STATISTICS: bool = false #( || #layer_traits::BATCH_STATISTICS )*;
        #state_tensor_items
    };
    // ---- END io13 -------------------------------------------------------------------

    let name_text = name.to_string();
    let struct_doc = format!(
        " Generated by `nn::network!`: parameters of `{name_text}` (see \
         [`{name_text}::summary`]), gradients in [`{grads}`], tape in [`{tape}`]."
    );
    let grads_doc = format!(" Gradients of [`{name_text}`]: one field per layer, with its shape.");
    let tape_doc = format!(
        " What [`{name_text}::forward_train`] records for [`{name_text}::backward`]: every \
         node's value for a batch of `B` samples, one per column."
    );

    quote! {
        #(#attrs)*
        #[doc = ""]
        #[doc = #struct_doc]
        #explain_docs
        #[derive(Clone, Debug, PartialEq)]
        #[repr(C)]
        #vis struct #name<T: ::nn::Real = f32> {
            #(#layer_fields)*
            #state_field
        }

        #state_item

        #[doc = #grads_doc]
        #[derive(Clone, Debug, PartialEq)]
        #[repr(C)]
        #vis struct #grads<T: ::nn::Real = f32> {
            #(#layer_fields)*
        }

        #[doc = #tape_doc]
        #[derive(Clone, Debug, PartialEq)]
        #[repr(C)]
        #vis struct #tape<T: ::nn::Real, const B: usize> {
            #( #[doc = #tape_docs] pub #tape_names: #tape_types, )*
        }

        impl<T: ::nn::Real> ::nn::ConstZero for #name<T> {
            const ZERO: Self = Self { #( #layer_names: ::nn::ConstZero::ZERO, )* #state_zero };
        }

        // SAFETY: repr(C); layers (`Params`, hence `Zeroable`) and a `Zeroable` state.
        unsafe impl<T: ::nn::Real> ::nn::Zeroable for #name<T> {}

        // SAFETY: repr(C); the layers come first, each `Params<T>` (scalars of `T` only), and
        // the state, not part of the parameters, last.
        unsafe impl<T: ::nn::Real> ::nn::Params<T> for #name<T> {
            const LEN: usize = 0 #( + <#layer_types as ::nn::Params<T>>::LEN )*;
        }

        impl<T: ::nn::Real> ::nn::ConstZero for #grads<T> {
            const ZERO: Self = Self { #( #layer_names: ::nn::ConstZero::ZERO, )* };
        }

        // SAFETY: repr(C); layers only, each `Params<T>`.
        unsafe impl<T: ::nn::Real> ::nn::Zeroable for #grads<T> {}

        // SAFETY: as for the network: the same layer fields, and no state.
        unsafe impl<T: ::nn::Real> ::nn::Params<T> for #grads<T> {
            const LEN: usize = 0 #( + <#layer_types as ::nn::Params<T>>::LEN )*;
        }

        impl<T: ::nn::Real, const B: usize> ::nn::ConstZero for #tape<T, B> {
            const ZERO: Self = Self { #( #tape_names: ::nn::ConstZero::ZERO, )* };
        }

        // SAFETY: repr(C); static matrices of `T` and layer caches, all `Zeroable`.
        unsafe impl<T: ::nn::Real, const B: usize> ::nn::Zeroable for #tape<T, B> {}

        impl<T: ::nn::Real> #name<T> {
            /// Number of trainable scalars.
            pub const PARAM_COUNT: usize = <Self as ::nn::Params<T>>::LEN;

            /// Every parameter zero: usable in `const` and `static` items.
            pub const ZERO: Self = <Self as ::nn::ConstZero>::ZERO;

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
                ::core::mem::size_of::<#tape<T, B>>()
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
                tape: &mut #tape<T, B>,
            ) -> #output_type {
                #train_body
            }

            /// Backward pass over the batch recorded in `tape`: given `∂L/∂output`, *adds*
            /// `∂L/∂θ` to `grads` and returns `∂L/∂input`.
            pub fn backward<const B: usize>(
                &self,
                tape: &#tape<T, B>,
                #output_params
                grads: &mut #grads<T>,
            ) -> #input_type {
                #full_backward
            }

            /// Initialises every layer in place from `rng`: by its `#[init(..)]` scheme, or He
            /// (Kaiming) uniform before the ReLU family and Glorot (Xavier) uniform otherwise;
            /// biases to zero.
            pub fn init<R: ::nn::rand_core::Rng + ?Sized>(&mut self, rng: &mut R) {
                #( #layer_traits::init(&mut self.#layer_names, ::nn::init::Init::#layer_inits, rng); )*
                #( #state_traits::init_state(&mut self.state.#state_names, rng); )*
            }

            /// Calls `visit` with every tensor (`fc1.weight`, ...) in parameter-slice order.
            pub fn visit_tensors(visit: &mut dyn FnMut(::nn::NamedTensor)) {
                let mut offset = 0;
                #(
                    for info in #layer_traits::TENSORS {
                        visit(::nn::NamedTensor { layer: #layer_names_text, info, offset });
                        offset += info.len();
                    }
                )*
                let _ = offset;
            }

            /// The backward pass for training: *adds* `∂L/∂θ` to `grads` like `backward`, but
            /// computes no gradient for the inputs, so the first layers skip their `∂L/∂x`
            /// products.
            pub fn backward_params<const B: usize>(
                &self,
                tape: &#tape<T, B>,
                #output_params
                grads: &mut #grads<T>,
            ) {
                #params_backward
            }

            /// Each node's operation, output shape and parameter count, like Keras'
            /// `model.summary()`; print it with `{}`.
            pub fn summary() -> #summary

            #explain_items
        }

        impl<T: ::nn::Real> ::nn::Network<T> for #name<T> {
            type Grads = #grads<T>;
            type Input<const B: usize> = #input_type;
            type Output<const B: usize> = #output_type;
            type Tape<const B: usize> = #tape<T, B>;

            fn forward<const B: usize>(&self, input: &Self::Input<B>) -> Self::Output<B> {
                #name::forward(self, #input_fields)
            }

            fn forward_train<const B: usize>(
                &mut self,
                input: &Self::Input<B>,
                tape: &mut Self::Tape<B>,
            ) -> Self::Output<B> {
                #name::forward_train(self, #input_fields tape)
            }

            fn backward<const B: usize>(
                &self,
                tape: &Self::Tape<B>,
                d_output: &Self::Output<B>,
                grads: &mut Self::Grads,
            ) -> Self::Input<B> {
                #name::backward(self, tape, #output_fields grads)
            }

            fn backward_params<const B: usize>(
                &self,
                tape: &Self::Tape<B>,
                d_output: &Self::Output<B>,
                grads: &mut Self::Grads,
            ) {
                #name::backward_params(self, tape, #output_fields grads)
            }

            fn summary() -> impl ::core::fmt::Display {
                #name::<T>::summary()
            }

            fn visit_tensors(visit: &mut dyn FnMut(::nn::NamedTensor)) {
                #name::<T>::visit_tensors(visit)
            }

            fn init<R: ::nn::rand_core::Rng + ?Sized>(&mut self, rng: &mut R) {
                #name::init(self, rng)
            }

            // io13 (issue 13): batch statistics and saved state tensors.
            #network_io13_items
        }
    }
}

/// Minimal items in place of the network when the model has errors, so that the user sees
/// the model's errors and not a cascade of "cannot find type" ones: the three structs, with
/// their `ZERO` constants. (The passes are not stubbed: a call to `forward` still reports
/// that the method is missing.)
pub fn fallback(vis: &syn::Visibility, name: &Ident) -> TokenStream {
    let grads = format_ident!("{}Grads", name);
    let tape = format_ident!("{}Tape", name);
    quote! {
        #vis struct #name<T = f32>(::core::marker::PhantomData<T>);
        impl<T> #name<T> {
            pub const ZERO: Self = Self(::core::marker::PhantomData);
            pub const PARAM_COUNT: usize = 0;
        }
        #vis struct #grads<T = f32>(::core::marker::PhantomData<T>);
        impl<T> #grads<T> {
            pub const ZERO: Self = Self(::core::marker::PhantomData);
        }
        #vis struct #tape<T = f32, const B: usize = 1>(::core::marker::PhantomData<T>);
        impl<T, const B: usize> #tape<T, B> {
            pub const ZERO: Self = Self(::core::marker::PhantomData);
        }
    }
}

/// Whether a layer may have state (a field in `NetState`): built-in layers are known, a
/// user's layer is assumed to.
fn has_state(layer: &LayerDecl) -> bool {
    match &layer.kind {
        LayerKind::Builtin(builtin) => builtin.has_state(),
        LayerKind::Custom(_) => true,
    }
}

/// Whether a layer may keep a cache in the tape for its backward pass.
fn has_cache(layer: &LayerDecl) -> bool {
    match &layer.kind {
        LayerKind::Builtin(builtin) => builtin.has_cache(&layer.input_shape),
        LayerKind::Custom(_) => true,
    }
}

/// The tape field of the cache of the layer application computing `node`.
fn cache_name(node: &Node) -> Ident {
    format_ident!("{}_cache", node.name)
}

/// Where rustc should point if a layer's trait bound fails: the user's type for a custom
/// layer.
fn layer_span(layer: &LayerDecl) -> proc_macro2::Span {
    match &layer.kind {
        LayerKind::Custom(ty) => ty.span(),
        LayerKind::Builtin(_) => proc_macro2::Span::call_site(),
    }
}

/// `<Type as ::nn::Layer<T, IN, OUT>>`, to call a layer's trait items unambiguously.
fn layer_trait(model: &Model, layer: &crate::model::LayerDecl) -> TokenStream {
    let ty = layer_type(model, layer);
    let input = size(layer.input);
    let output = size(layer.output.iter().product());
    quote! { <#ty as ::nn::Layer<T, #input, #output>> }
}

fn layer_type(model: &Model, layer: &crate::model::LayerDecl) -> TokenStream {
    let _ = model;
    match &layer.kind {
        LayerKind::Builtin(builtin) => {
            builtin.type_tokens(&layer.input_shape, &layer.output, layer.with_state)
        }
        LayerKind::Custom(ty) => ty.to_token_stream(),
    }
}

/// A size as an unsuffixed literal (`16`, not `16usize`), for readable generated code.
fn size(n: usize) -> Literal {
    Literal::usize_unsuffixed(n)
}

fn matrix(node: &Node) -> TokenStream {
    let size = size(node.size());
    quote! { ::nn::SMatrix<T, #size, B> }
}

/// `x: &SMatrix<T, 16, B>, ` for each node (inputs), or `d_y: &..., ` (upstream gradients).
fn signature(model: &Model, ids: &[NodeId], prefix: &str) -> TokenStream {
    ids.iter()
        .map(|&id| {
            let node = &model.nodes[id];
            let name = format_ident!("{}{}", prefix, node.name);
            let ty = matrix(node);
            // Spanned on the declared shape, so that rustc's "expected `2`, found `3`" on a
            // call points there too.
            quote_spanned! {node.span=> #name: &#ty, }
        })
        .collect()
}

/// The matrix type, or a tuple of them.
fn value_type(model: &Model, ids: &[NodeId]) -> TokenStream {
    let types: Vec<TokenStream> = ids.iter().map(|&id| matrix(&model.nodes[id])).collect();
    match types.as_slice() {
        [one] => one.clone(),
        many => quote! { ( #(#many),* ) },
    }
}

/// `input, ` or `&input.0, &input.1, `.
fn tuple_fields(name: &str, count: usize) -> TokenStream {
    let name = format_ident!("{}", name);
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

/// Returns `name`, or a tuple of names.
fn returned(names: Vec<TokenStream>) -> TokenStream {
    match names.as_slice() {
        [one] => one.clone(),
        many => quote! { ( #(#many),* ) },
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    /// Node values are locals (`h`), inputs are the `&` parameters.
    Infer,
    /// Node values live in the tape (`tape.h`).
    Train,
}

/// Where a node's value is, as a place expression.
fn place(node: &Node, mode: Mode) -> TokenStream {
    let name = &node.name;
    match mode {
        Mode::Infer => quote! { #name },
        Mode::Train => quote! { tape.#name },
    }
}

/// A `&` reference to a node's value.
fn value_ref(node: &Node, mode: Mode) -> TokenStream {
    if mode == Mode::Infer && matches!(node.op, Op::Input) {
        let name = &node.name;
        return quote! { #name };
    }
    let place = place(node, mode);
    quote! { &#place }
}

fn activation_value(info: &ActivationInfo, params: &[f64]) -> TokenStream {
    let ty = format_ident!("{}", info.ty);
    if info.params.is_empty() {
        return quote! { ::nn::activations::#ty };
    }
    let fields = info.params.iter().zip(params).map(|(&(field, _), &value)| {
        let field = format_ident!("{}", field);
        let value = Literal::f64_unsuffixed(value);
        quote! { #field: #value }
    });
    quote! { ::nn::activations::#ty { #(#fields),* } }
}

fn forward_body(model: &Model, mode: Mode) -> TokenStream {
    let mut body = TokenStream::new();
    for node in &model.nodes {
        let out = place(node, mode);
        match mode {
            Mode::Infer if !matches!(node.op, Op::Input) => {
                let name = &node.name;
                let ty = matrix(node);
                body.extend(quote! { let mut #name = <#ty>::zeros(); });
            }
            Mode::Train if matches!(node.op, Op::Input) => {
                let name = &node.name;
                body.extend(quote! { tape.#name.copy_from(#name); });
            }
            _ => {}
        }
        let arg = |id: NodeId| value_ref(&model.nodes[id], mode);
        let statement = match &node.op {
            Op::Input => quote! {},
            Op::Layer { layer, arg: a, .. } => {
                let decl = &model.layers[*layer];
                let field = &decl.name;
                let x = arg(*a);
                let layer = layer_trait(model, decl);
                let span = layer_span(decl);
                match (mode, has_state(decl)) {
                    (Mode::Infer, false) => quote_spanned! {span=>
                        #layer::forward(&self.#field, &(), #x, &mut #out);
                    },
                    (Mode::Infer, true) => quote_spanned! {span=>
                        #layer::forward(&self.#field, &self.state.#field, #x, &mut #out);
                    },
                    (Mode::Train, stateful) => {
                        let state = if stateful {
                            quote! { &mut self.state.#field }
                        } else {
                            quote! { &mut () }
                        };
                        let cache = if has_cache(decl) {
                            let cache = cache_name(node);
                            quote! { &mut tape.#cache }
                        } else {
                            quote! { &mut () }
                        };
                        quote_spanned! {span=>
                            #layer::forward_train(&self.#field, #state, #x, &mut #out, #cache);
                        }
                    }
                }
            }
            Op::Activation {
                info,
                params,
                arg: a,
            } => {
                let activation = activation_value(info, params);
                let x = arg(*a);
                quote! { ::nn::Activation::forward(&#activation, #x, &mut #out); }
            }
            Op::Binary { op, left, right } => {
                let (a, b) = (arg(*left), arg(*right));
                match op {
                    BinOp::Add => quote! { ::nn::ops::add(#a, #b, &mut #out); },
                    BinOp::Mul => quote! { ::nn::ops::mul(#a, #b, &mut #out); },
                }
            }
            Op::Flatten(a) => {
                let x = arg(*a);
                quote! { #out.copy_from(#x); }
            }
            Op::Concat(parts) => {
                let mut offset = 0;
                let mut copies = TokenStream::new();
                for &part in parts {
                    let part_size = model.nodes[part].size();
                    let (rows, start) = (size(part_size), size(offset));
                    let x = arg(part);
                    copies.extend(quote! { #out.fixed_rows_mut::<#rows>(#start).copy_from(#x); });
                    offset += part_size;
                }
                copies
            }
        };
        body.extend(statement);
    }
    let outputs = model
        .outputs
        .iter()
        .map(|&id| {
            let node = &model.nodes[id];
            match (mode, &node.op) {
                (Mode::Infer, Op::Input) => {
                    let name = &node.name;
                    quote! { *#name }
                }
                _ => place(node, mode),
            }
        })
        .collect();
    body.extend(returned(outputs));
    body
}

/// The body of `backward`, or, with `params_only`, of `backward_params`: the same chain rule
/// without the gradients no parameter needs (those of the inputs, and of nodes computed from
/// the inputs without a layer), so a layer fed by the input skips its `∂L/∂x` product.
fn backward_body(model: &Model, params_only: bool) -> TokenStream {
    let grad = |id: NodeId| format_ident!("d_{}", model.nodes[id].name);
    // Whether a node's gradient is wanted: always for `backward`; for `backward_params`, when
    // a layer's parameters are upstream of the node.
    let needs: Vec<bool> = {
        let mut after_layer = vec![false; model.nodes.len()];
        for (id, node) in model.nodes.iter().enumerate() {
            after_layer[id] = matches!(node.op, Op::Layer { .. })
                || node.op.parents().iter().any(|&p| after_layer[p]);
        }
        after_layer.into_iter().map(|a| a || !params_only).collect()
    };
    let value = |id: NodeId| {
        let name = &model.nodes[id].name;
        quote! { &tape.#name }
    };
    let has_children: Vec<bool> = {
        let mut flags = vec![false; model.nodes.len()];
        for node in &model.nodes {
            for parent in node.op.parents() {
                flags[parent] = true;
            }
        }
        flags
    };
    // An output's gradient is the upstream `d_<output>` parameter, a reference; it is copied
    // into a local only when the output also feeds other nodes, whose gradients add to it.
    let borrowed = |id: NodeId| model.outputs.contains(&id) && !has_children[id];
    let grad_ref = |id: NodeId| {
        let d = grad(id);
        if borrowed(id) {
            quote! { #d }
        } else {
            quote! { &#d }
        }
    };
    let mut declared = vec![false; model.nodes.len()];
    let mut body = TokenStream::new();
    for &id in &model.outputs {
        declared[id] = true;
        let d = grad(id);
        if !needs[id] {
            body.extend(quote! { let _ = #d; });
        } else if has_children[id] {
            body.extend(quote! { let mut #d = *#d; });
        }
    }
    for (id, node) in model.nodes.iter().enumerate().rev() {
        if !needs[id] {
            continue;
        }
        for parent in node.op.parents() {
            if needs[parent] && !declared[parent] {
                declared[parent] = true;
                let d = grad(parent);
                let ty = matrix(&model.nodes[parent]);
                body.extend(quote! { let mut #d = <#ty>::zeros(); });
            }
        }
        let d_out = grad_ref(id);
        let statement = match &node.op {
            Op::Input => quote! {},
            Op::Layer { layer, arg, .. } => {
                let decl = &model.layers[*layer];
                let field = &decl.name;
                let (x, y, d_x) = (value(*arg), value(id), grad(*arg));
                let layer = layer_trait(model, decl);
                let cache = if has_cache(decl) {
                    let cache = cache_name(node);
                    quote! { &tape.#cache }
                } else {
                    quote! { &() }
                };
                if needs[*arg] {
                    quote_spanned! {layer_span(decl)=>
                        #layer::backward(&self.#field, #x, #y, #cache, #d_out, &mut #d_x, &mut grads.#field);
                    }
                } else {
                    quote_spanned! {layer_span(decl)=>
                        #layer::backward_params(&self.#field, #x, #y, #cache, #d_out, &mut grads.#field);
                    }
                }
            }
            Op::Activation { info, params, arg } if needs[*arg] => {
                let activation = activation_value(info, params);
                let (x, y, d_x) = (value(*arg), value(id), grad(*arg));
                quote! { ::nn::Activation::backward(&#activation, #x, #y, #d_out, &mut #d_x); }
            }
            Op::Activation { .. } => quote! {},
            Op::Binary {
                op: BinOp::Add,
                left,
                right,
            } => {
                let mut statements = TokenStream::new();
                for part in [*left, *right].into_iter().filter(|&p| needs[p]) {
                    let d_part = grad(part);
                    statements.extend(quote! { #d_part += #d_out; });
                }
                statements
            }
            Op::Binary {
                op: BinOp::Mul,
                left,
                right,
            } => {
                let mut statements = TokenStream::new();
                for (part, other) in [(*left, *right), (*right, *left)] {
                    if needs[part] {
                        let (d_part, other) = (grad(part), value(other));
                        statements
                            .extend(quote! { ::nn::ops::mul_acc(#d_out, #other, &mut #d_part); });
                    }
                }
                statements
            }
            Op::Flatten(a) if needs[*a] => {
                let d_x = grad(*a);
                quote! { #d_x += #d_out; }
            }
            Op::Flatten(_) => quote! {},
            Op::Concat(parts) => {
                let mut offset = 0;
                let mut slices = TokenStream::new();
                for &part in parts {
                    let part_size = model.nodes[part].size();
                    let (rows, start) = (size(part_size), size(offset));
                    if needs[part] {
                        let d_part = grad(part);
                        slices.extend(quote! { #d_part += #d_out.fixed_rows::<#rows>(#start); });
                    }
                    offset += part_size;
                }
                slices
            }
        };
        body.extend(statement);
    }
    if params_only {
        return body;
    }
    // An input returned as an output with no other use still has a borrowed gradient.
    let d_inputs = model.inputs.iter().map(|&id| {
        let d = grad(id);
        if borrowed(id) {
            quote! { *#d }
        } else {
            d.into_token_stream()
        }
    });
    body.extend(returned(d_inputs.collect()));
    body
}

/// The body of `summary()`, with its return type.
fn summary(model: &Model) -> TokenStream {
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
                        let ty = layer_type(model, decl);
                        (
                            format!("{}: {kind}", decl.name),
                            quote! { <#ty as ::nn::Params<T>>::LEN },
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
            let shape = shape_text(&node.shape);
            quote! { ::nn::SummaryRow { node: #name, op: #op, shape: #shape, params: #params } }
        })
        .collect();
    let count = size(rows.len());
    let name = model.name.to_string();
    quote! {
        ::nn::Summary<#count> {
            ::nn::Summary {
                name: #name,
                rows: [ #(#rows),* ],
                scalar_bytes: ::core::mem::size_of::<T>(),
            }
        }
    }
}
