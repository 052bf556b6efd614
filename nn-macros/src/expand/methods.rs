//! The network's methods (constants, passes, initialisation, tensors, summary, derivation)
//! and its `nn::Network` impl.

use super::passes::Pass;
use super::{Expander, invented, local, size};
use crate::model::NodeId;
use crate::model::Op;
use proc_macro2::TokenStream;
use quote::{format_ident, quote};
use syn::Ident;

/// The passes of a network of built-in layers with at most this many parameters get copies
/// compiled for AVX-512 and for AVX2 ([`WIDE_TIERS`]), which they run on a CPU that has the
/// features (one check per pass): the small layers' loops, which the kernels inline rather
/// than call (a call would cost more than the wider vectors save), and the activations' and
/// additions' loops then run on 16 or 8 `f32` lanes instead of SSE2's 4. Larger networks
/// spend their time in the kernels, which choose their own code; copies would only multiply
/// the passes' machine code.
const WIDE_COPY_MAX_PARAMS: usize = 16 * 1024;

/// The tiers the small networks' passes are copied for, widest first: the copy's name
/// suffix, its `target_feature`s, and the runtime's check (`nn::__avx512_passes`, …). No
/// fused multiply-adds either way (Rust fuses none): the copies give the baseline's bits.
const WIDE_TIERS: [(&str, &str, &str); 2] = [
    ("avx512", "avx512f", "__avx512_passes"),
    ("avx2", "avx2,fma", "__avx2_passes"),
];

impl Expander<'_> {
    /// `impl Net<T> { ... }`.
    pub(super) fn inherent_impl(&self) -> TokenStream {
        let Self {
            model,
            nn,
            grads,
            tape,
            workspace,
            ..
        } = self;
        let name = &self.network;
        let (rng, visit) = (local("rng"), local("visit"));
        let input_params = self.signature(&model.inputs, "");
        let output_params = self.signature(&model.outputs, "d_");
        let output_type = self.output_type();
        let (workspace_arg, tape_arg, grads_arg) =
            (local("workspace"), local("tape"), local("grads"));
        let lifetime = syn::Lifetime::new("'m", proc_macro2::Span::mixed_site());
        let output_refs = self.reference_type(&model.outputs, &lifetime);
        let input_refs = self.reference_type(&model.inputs, &lifetime);
        let input_names: Vec<&Ident> = model
            .inputs
            .iter()
            .map(|&id| &model.nodes[id].name)
            .collect();
        let infer_body = self.forward_body(Pass::Infer);
        let train_body = self.forward_body(Pass::Train);
        let d_output = &self.fields.d_output;
        let d_input = &self.fields.d_input;
        let copy_d_outputs: TokenStream = model
            .outputs
            .iter()
            .enumerate()
            .map(|(k, &id)| {
                let param = invented(&format_ident!("d_{}", model.nodes[id].name));
                let field = if model.outputs.len() == 1 {
                    quote! { #tape_arg.#d_output }
                } else {
                    let k = syn::Index::from(k);
                    quote! { #tape_arg.#d_output.#k }
                };
                quote! { #field.copy_from(#param); }
            })
            .collect();
        let d_input_refs = super::returned(
            (0..model.inputs.len())
                .map(|k| {
                    if model.inputs.len() == 1 {
                        quote! { &#tape_arg.#d_input }
                    } else {
                        let k = syn::Index::from(k);
                        quote! { &#tape_arg.#d_input.#k }
                    }
                })
                .collect(),
        );
        let outputs = local("outputs");
        let copy_outputs = if model.outputs.len() == 1 {
            quote! { *#outputs }
        } else {
            let k = (0..model.outputs.len()).map(syn::Index::from);
            quote! { ( #( *#outputs.#k ),* ) }
        };
        let in_dispatch = self.wide_dispatch("__nn_forward_in", true, |copy| {
            quote! { self.#copy(#(#input_names,)* #workspace_arg) }
        });
        let in_copy = self.wide_copies("__nn_forward_in", |copy| {
            quote! {
                fn #copy<#lifetime, const B: usize>(
                    &self,
                    #input_params
                    #workspace_arg: &#lifetime mut #workspace<T, { B }>,
                ) -> #output_refs {
                    #infer_body
                }
            }
        });
        let copy_input = local(super::passes::COPY_INPUT);
        let train_dispatch = self.wide_dispatch("__nn_forward_train", true, |copy| {
            quote! { self.#copy(#(#input_names,)* #tape_arg, #copy_input) }
        });
        // A network without layer state runs its training pass from `&self`
        // (`forward_train_shared`); `forward_train` calls that.
        let stateless = self.stateful().next().is_none();
        let train_receiver = if stateless {
            quote! { &self }
        } else {
            quote! { &mut self }
        };
        let train_copy = self.wide_copies("__nn_forward_train", |copy| {
            quote! {
                fn #copy<#lifetime, const B: usize>(
                    #train_receiver,
                    #input_params
                    #tape_arg: &#lifetime mut #tape<T, { B }>,
                    #copy_input: bool,
                ) -> #output_refs {
                    #train_body
                }
            }
        });
        // The training pass, copying the inputs the backward pass reads into the tape or
        // not (`Network::forward_train_borrowing`).
        let train_with = quote! {
            #[doc(hidden)]
            #[inline]
            fn __nn_forward_train_with<#lifetime, const B: usize>(
                #train_receiver,
                #input_params
                #tape_arg: &#lifetime mut #tape<T, { B }>,
                #copy_input: bool,
            ) -> #output_refs {
                #train_dispatch
                #train_body
            }
        };
        // Without layer state, the pass is `forward_train_shared` (from `&self`), which
        // `forward_train` calls.
        let (train_doc, train_pass, shared_train) = if stateless {
            (
                " Training forward pass: computes the outputs in `tape` and keeps there what \
                 the backward pass reads (this network's layers have no state to update: \
                 [`Self::forward_train_shared`]). Returns the outputs.",
                quote! { self.forward_train_shared(#(#input_names,)* #tape_arg) },
                quote! {
                    /// [`Self::forward_train`] from a shared reference: the network's layers
                    /// have no state, so the training pass changes nothing in it, and several
                    /// threads may run it at once, each on its own tape.
                    pub fn forward_train_shared<#lifetime, const B: usize>(
                        &self,
                        #input_params
                        #tape_arg: &#lifetime mut #tape<T, { B }>,
                    ) -> #output_refs {
                        self.__nn_forward_train_with(#(#input_names,)* #tape_arg, true)
                    }
                },
            )
        } else {
            (
                " Training forward pass: computes the outputs in `tape`, keeps there what the \
                 backward pass reads, and updates the layers' state. Returns the outputs.",
                quote! { self.__nn_forward_train_with(#(#input_names,)* #tape_arg, true) },
                TokenStream::new(),
            )
        };
        let forward_train = quote! {
            #[doc = #train_doc]
            pub fn forward_train<#lifetime, const B: usize>(
                &mut self,
                #input_params
                #tape_arg: &#lifetime mut #tape<T, { B }>,
            ) -> #output_refs {
                #train_pass
            }

            #shared_train
        };
        let init = self.init_body();
        let visit_tensors = self.visit_tensors_body();
        let summary = self.summary();
        let memory_constants = self.memory_constants();
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
                /// SGD's momentum, Adam's two moments). On x86-64 the generated structs are
                /// cache-line aligned, and this and the sizes below are rounded up to 64.
                pub const GRAD_BYTES: usize = ::core::mem::size_of::<#grads<T>>();

                /// Bytes of the whole network value: parameters and layer state (rounded up to
                /// 64 on x86-64).
                pub const BYTES: usize = ::core::mem::size_of::<Self>();

                /// Bytes of the tape for a batch of `B` samples: all the memory training needs
                /// besides the network, its gradients and the optimizer's state (rounded up to
                /// 64 on x86-64).
                pub const fn tape_bytes<const B: usize>() -> usize {
                    ::core::mem::size_of::<#tape<T, { B }>>()
                }

                /// Bytes of the workspace for a batch of `B` samples: all the memory inference
                /// needs besides the network and the inputs (rounded up to 64 on x86-64).
                pub const fn workspace_bytes<const B: usize>() -> usize {
                    ::core::mem::size_of::<#workspace<T, { B }>>()
                }

                #memory_constants

                /// Inference on a batch of `B` samples (one per column) in `workspace`, the
                /// memory the plan gives every intermediate value: nothing batch-sized on the
                /// stack, whatever the network's size. Returns the outputs, which live in the
                /// workspace.
                pub fn forward_in<#lifetime, const B: usize>(
                    &self,
                    #input_params
                    #workspace_arg: &#lifetime mut #workspace<T, { B }>,
                ) -> #output_refs {
                    #in_dispatch
                    #infer_body
                }

                #in_copy

                /// Inference on a batch of `B` samples, for small networks: [`Self::forward_in`]
                /// in a workspace on the stack (of [`Self::workspace_bytes`]), the outputs
                /// copied out. A big network or batch wants `forward_in` with a workspace from
                /// `new_boxed()`.
                pub fn forward<const B: usize>(&self, #input_params) -> #output_type {
                    let mut #workspace_arg = <#workspace<T, { B }> as #nn::ConstZero>::ZERO;
                    let #outputs = self.forward_in(#(#input_names,)* &mut #workspace_arg);
                    #copy_outputs
                }

                #forward_train

                #train_with

                #train_copy

                /// Backward pass over the batch recorded in `tape`: given `∂L/∂output`, *adds*
                /// `∂L/∂θ` to `grads` and returns `∂L/∂input`, which lives in the tape.
                pub fn backward<#lifetime, const B: usize>(
                    &self,
                    #tape_arg: &#lifetime mut #tape<T, { B }>,
                    #output_params
                    #grads_arg: &mut #grads<T>,
                ) -> #input_refs {
                    #copy_d_outputs
                    <Self as #nn::Network<T>>::backward(self, #tape_arg, #grads_arg);
                    #d_input_refs
                }

                /// The backward pass for training: *adds* `∂L/∂θ` to `grads` like `backward`, but
                /// computes no gradient for the inputs, so the first layers skip their `∂L/∂x`
                /// products.
                pub fn backward_params<const B: usize>(
                    &self,
                    #tape_arg: &mut #tape<T, { B }>,
                    #output_params
                    #grads_arg: &mut #grads<T>,
                ) {
                    #copy_d_outputs
                    <Self as #nn::Network<T>>::backward_params(self, #tape_arg, #grads_arg);
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

                /// Each node's operation, output shape and parameter count, like Keras'
                /// `model.summary()`, and the memory plan; print it with `{}`.
                pub fn summary() -> #summary

                #explain_items
            }
        }
    }

    /// Whether the passes get copies compiled for AVX-512 and AVX2 ([`WIDE_COPY_MAX_PARAMS`]):
    /// a network of built-in layers with at most that many parameters.
    fn wide_copies_wanted(&self) -> bool {
        let mut total = 0usize;
        for layer in &self.model.layers {
            match layer.param_count().and_then(|count| count.known()) {
                Some(count) => total += count,
                None => return false,
            }
        }
        total <= WIDE_COPY_MAX_PARAMS
    }

    /// The start of a pass that has copies for wider vectors ([`WIDE_TIERS`]): on a CPU with
    /// a tier's features, the call `call(copy)` of that tier's copy (`pass_avx512`, …),
    /// returned; nothing for a network without copies.
    fn wide_dispatch(
        &self,
        pass: &str,
        returns: bool,
        call: impl Fn(&Ident) -> TokenStream,
    ) -> TokenStream {
        if !self.wide_copies_wanted() {
            return TokenStream::new();
        }
        let nn = &self.nn;
        let mut dispatch = TokenStream::new();
        for (suffix, _features, check) in WIDE_TIERS {
            let call = call(&format_ident!("{pass}_{suffix}"));
            let check = format_ident!("{check}");
            let run = if returns {
                quote! { return unsafe { #call }; }
            } else {
                quote! {
                    unsafe { #call };
                    return;
                }
            };
            // SAFETY (of the generated `unsafe`): the check is true only on a CPU with the
            // tier's features, the only ones the copy is compiled for.
            dispatch.extend(quote! {
                #[cfg(target_arch = "x86_64")]
                if #nn::#check() {
                    #run
                }
            });
        }
        dispatch
    }

    /// A pass's copies for wider vectors ([`WIDE_TIERS`]): `item(copy)` is a method named
    /// `copy` with the pass's body, compiled for each tier's features; nothing for a network
    /// without copies ([`Self::wide_copies_wanted`]).
    fn wide_copies(&self, pass: &str, item: impl Fn(&Ident) -> TokenStream) -> TokenStream {
        if !self.wide_copies_wanted() {
            return TokenStream::new();
        }
        let mut copies = TokenStream::new();
        for (suffix, features, _) in WIDE_TIERS {
            let item = item(&format_ident!("{pass}_{suffix}"));
            copies.extend(quote! {
                #[cfg(target_arch = "x86_64")]
                #[target_feature(enable = #features)]
                #[doc(hidden)]
                #item
            });
        }
        copies
    }

    /// `&'m SMatrix<..>`, or a tuple of them, for the nodes `ids`.
    fn reference_type(&self, ids: &[NodeId], lifetime: &syn::Lifetime) -> TokenStream {
        let types: Vec<TokenStream> = ids
            .iter()
            .map(|&id| {
                let matrix = self.matrix(&self.model.nodes[id]);
                quote! { &#lifetime #matrix }
            })
            .collect();
        super::returned(types)
    }

    /// The plan's sizes as constants: scalars per sample of the workspace and of the tape,
    /// and the lower bounds.
    fn memory_constants(&self) -> TokenStream {
        let plan = self.memory.per_sample(self.model);
        let workspace = size(plan.workspace);
        let workspace_bound = size(plan.workspace_lower_bound);
        let saved = size(plan.tape_saved);
        let ends = size(plan.tape_ends);
        let work = size(plan.tape_work);
        let work_bound = size(plan.tape_work_lower_bound);
        let per_call = size(crate::model::LayerDecl::call_scratch(&self.model.layers));
        quote! {
            /// Scalars of the workspace and of the tape that do not grow with the batch: the
            /// layers' shared working memory (a convolution's im2col tile).
            pub const SCRATCH_PER_CALL: usize = #per_call;

            /// Scalars per sample of the workspace: the outputs and the slots of the plan.
            pub const WORKSPACE_PER_SAMPLE: usize = #workspace;

            /// Scalars per sample the most values live at one step of inference need: no plan
            /// can make the workspace smaller.
            pub const WORKSPACE_LOWER_BOUND: usize = #workspace_bound;

            /// Scalars per sample the tape keeps for the backward pass (the saved values that
            /// are not outputs).
            pub const TAPE_SAVED_PER_SAMPLE: usize = #saved;

            /// Scalars per sample of the tape's outputs, their gradients and the inputs'
            /// gradients.
            pub const TAPE_ENDS_PER_SAMPLE: usize = #ends;

            /// Scalars per sample of the tape's slots, shared by the other values of the
            /// forward pass and the gradients of the backward pass.
            pub const TAPE_WORK_PER_SAMPLE: usize = #work;

            /// Scalars per sample the most of those values live at one step need: no plan can
            /// make the slots smaller.
            pub const TAPE_WORK_LOWER_BOUND: usize = #work_bound;
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
                memory: #nn::MemoryPlan {
                    workspace: Self::WORKSPACE_PER_SAMPLE,
                    workspace_lower_bound: Self::WORKSPACE_LOWER_BOUND,
                    tape_saved: Self::TAPE_SAVED_PER_SAMPLE,
                    tape_ends: Self::TAPE_ENDS_PER_SAMPLE,
                    tape_work: Self::TAPE_WORK_PER_SAMPLE,
                    tape_work_lower_bound: Self::TAPE_WORK_LOWER_BOUND,
                    scratch_per_call: Self::SCRATCH_PER_CALL,
                },
                }
            }
        }
    }

    /// `impl nn::Network<T> for Net<T>`: the backward passes, and the others forwarding to
    /// the inherent methods.
    pub(super) fn network_trait_impl(&self) -> TokenStream {
        let Self {
            model,
            nn,
            grads,
            tape,
            workspace,
            ..
        } = self;
        let name = &self.network;
        let input_type = self.input_type();
        let output_type = self.output_type();
        let input = local("input");
        let input_fields = tuple_fields(&input, model.inputs.len());
        let (workspace_arg, tape_arg, grads_arg) =
            (local("workspace"), local("tape"), local("grads"));
        let (rng, visit) = (local("rng"), local("visit"));
        let grads_store = local("grads_store");
        let given_inputs = local("inputs");
        let full_backward = self.backward_body(false, None, None);
        let params_backward = self.backward_body(true, Some(&grads_store), Some(&given_inputs));
        let state_items = self.state_items();
        let stateless = self.stateful().next().is_none();
        let shared_train_items = if stateless {
            quote! {
                const HAS_STATE: bool = false;

                fn forward_train_shared<const B: usize>(
                    &self,
                    #input: &Self::Input<{ B }>,
                    #tape_arg: &mut Self::Tape<{ B }>,
                ) {
                    #name::forward_train_shared(self, #input_fields #tape_arg);
                }
            }
        } else {
            quote! { const HAS_STATE: bool = true; }
        };
        let full_dispatch = self.wide_dispatch("__nn_backward", false, |copy| {
            quote! { #name::#copy(self, #tape_arg, #grads_arg) }
        });
        let params_dispatch = self.wide_dispatch("__nn_backward_params", false, |copy| {
            quote! { #name::#copy(self, #given_inputs, #tape_arg, #grads_arg, #grads_store) }
        });
        let full_copy = self.wide_copies("__nn_backward", |copy| {
            quote! {
                fn #copy<const B: usize>(
                    &self,
                    #tape_arg: &mut #tape<T, { B }>,
                    #grads_arg: &mut #grads<T>,
                ) {
                    #full_backward
                }
            }
        });
        let params_copy = self.wide_copies("__nn_backward_params", |copy| {
            quote! {
                fn #copy<const B: usize>(
                    &self,
                    #given_inputs: ::core::option::Option<&#input_type>,
                    #tape_arg: &mut #tape<T, { B }>,
                    #grads_arg: &mut #grads<T>,
                    #grads_store: #nn::Store,
                ) {
                    #params_backward
                }
            }
        });
        let copies = if self.wide_copies_wanted() {
            quote! {
                impl<T: #nn::Real> #name<T> {
                    #full_copy
                    #params_copy
                }
            }
        } else {
            TokenStream::new()
        };
        quote! {
            #copies

            impl<T: #nn::Real> #name<T> {
                /// `backward_params` and `backward_params_overwrite`: each layer's parameter
                /// gradients added to, or written over, where the layer is reached first; the
                /// inputs read from the tape, or those given (after `forward_train_borrowing`).
                #[doc(hidden)]
                #[inline]
                fn __nn_backward_params_with<const B: usize>(
                    &self,
                    #given_inputs: ::core::option::Option<&#input_type>,
                    #tape_arg: &mut #tape<T, { B }>,
                    #grads_arg: &mut #grads<T>,
                    #grads_store: #nn::Store,
                ) {
                    #params_dispatch
                    #params_backward
                }
            }

            impl<T: #nn::Real> #nn::Network<T> for #name<T> {
                type Grads = #grads<T>;
                type Input<const B: usize> = #input_type;
                type Output<const B: usize> = #output_type;
                type Tape<const B: usize> = #tape<T, { B }>;
                type Workspace<const B: usize> = #workspace<T, { B }>;

                fn forward<const B: usize>(&self, #input: &Self::Input<{ B }>) -> Self::Output<{ B }> {
                    #name::forward(self, #input_fields)
                }

                fn forward_in<const B: usize>(
                    &self,
                    #input: &Self::Input<{ B }>,
                    #workspace_arg: &mut Self::Workspace<{ B }>,
                ) {
                    #name::forward_in(self, #input_fields #workspace_arg);
                }

                fn forward_train<const B: usize>(
                    &mut self,
                    #input: &Self::Input<{ B }>,
                    #tape_arg: &mut Self::Tape<{ B }>,
                ) {
                    #name::forward_train(self, #input_fields #tape_arg);
                }

                fn forward_train_borrowing<const B: usize>(
                    &mut self,
                    #input: &Self::Input<{ B }>,
                    #tape_arg: &mut Self::Tape<{ B }>,
                ) {
                    #name::__nn_forward_train_with(self, #input_fields #tape_arg, false);
                }

                #shared_train_items

                fn backward<const B: usize>(
                    &self,
                    #tape_arg: &mut Self::Tape<{ B }>,
                    #grads_arg: &mut Self::Grads,
                ) {
                    #full_dispatch
                    #full_backward
                }

                fn backward_params<const B: usize>(
                    &self,
                    #tape_arg: &mut Self::Tape<{ B }>,
                    #grads_arg: &mut Self::Grads,
                ) {
                    #name::__nn_backward_params_with(self, ::core::option::Option::None, #tape_arg, #grads_arg, #nn::Store::Add);
                }

                fn backward_params_overwrite<const B: usize>(
                    &self,
                    #tape_arg: &mut Self::Tape<{ B }>,
                    #grads_arg: &mut Self::Grads,
                ) {
                    #name::__nn_backward_params_with(self, ::core::option::Option::None, #tape_arg, #grads_arg, #nn::Store::Overwrite);
                }

                fn backward_params_overwrite_borrowing<const B: usize>(
                    &self,
                    #input: &Self::Input<{ B }>,
                    #tape_arg: &mut Self::Tape<{ B }>,
                    #grads_arg: &mut Self::Grads,
                ) {
                    #name::__nn_backward_params_with(
                        self,
                        ::core::option::Option::Some(#input),
                        #tape_arg,
                        #grads_arg,
                        #nn::Store::Overwrite,
                    );
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
