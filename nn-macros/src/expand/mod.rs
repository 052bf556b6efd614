//! Stage 3: code generation from the checked model. Only `quote!`; no checks.
//!
//! The generated code reads like a hand-written network: one statement per node, named
//! after the node, in execution order forward and in reverse order backward, where each node
//! adds its contribution to its parents' gradients (`d_<node>`).
//!
//! One function per generated item: the structs and their trait impls in [`structs`], the
//! methods and the `Network` impl in [`methods`], the bodies of the passes in [`passes`],
//! the `Network` items about saved state and batch statistics in [`state`].
//! Every path into the `nn` crate goes through [`Expander::nn`]: `krate::path`, from the
//! user's Cargo.toml or `#[nn(crate = path)]`.

mod int8;
mod methods;
mod passes;
mod state;
mod structs;

use crate::model::memory::{self, Memory};
use crate::model::{LayerDecl, LayerKind, Model, Node, NodeId};
use crate::shape::Dim;
use proc_macro2::{Delimiter, Group, Span, TokenStream, TokenTree};
use quote::{ToTokens, format_ident, quote, quote_spanned};
use syn::Ident;
use syn::spanned::Spanned;

/// The generated items; `docs` (attributes) go on the network struct and `items` into its
/// inherent impl: the explanation of the network, from `explain`.
pub fn expand(
    model: &Model,
    nn: &TokenStream,
    docs: TokenStream,
    items: TokenStream,
) -> TokenStream {
    let expander = Expander::new(model, nn.clone(), docs, items);
    let state = expander.state_struct();
    let network_struct = expander.network_struct(&state);
    let grads_struct = expander.grads_struct();
    let tape_struct = expander.tape_struct();
    let workspace_struct = expander.workspace_struct();
    let network_impls = expander.network_impls(&state);
    let grads_impls = expander.grads_impls();
    let tape_impls = expander.tape_impls();
    let workspace_impls = expander.workspace_impls();
    let inherent_impl = expander.inherent_impl();
    let network_trait_impl = expander.network_trait_impl();
    let const_tensors_impl = expander.const_tensors_impl();
    let int8_items = expander.int8_items();
    let state_item = state.item;
    let checks = shape_checks(model);
    // The checks first: see `shape_checks`.
    let tokens = quote! {
        #checks
        #network_struct
        #state_item
        #grads_struct
        #tape_struct
        #workspace_struct
        #network_impls
        #grads_impls
        #tape_impls
        #workspace_impls
        #inherent_impl
        #network_trait_impl
        #const_tensors_impl
        #int8_items
    };
    if model.name == SCALAR {
        rename_scalar(tokens, &model.name)
    } else {
        tokens
    }
}

/// The shape rules the macro could not decide, as const assertions that rustc evaluates
/// (`cargo check` too: the items are not generic), each spanned on the token to change and
/// with the message the macro would have given. Each is the length of an array in a struct's
/// field, inside an anonymous constant: rustc checks a struct's fields before the functions'
/// bodies, so the failed rule is the first message, before the type errors of the passes it
/// makes (a bare `const _: () = assert!(..)` is evaluated after them).
fn shape_checks(model: &Model) -> TokenStream {
    model
        .checks
        .iter()
        .map(|check| {
            let (condition, message) = (&check.condition, &check.message);
            // The assertion runs from the first blamed token to the last, so that rustc
            // underlines them all.
            let mut arguments = Group::new(Delimiter::Parenthesis, quote!(#condition, #message));
            arguments.set_span(check.end);
            quote_spanned! {check.span=>
                const _: () = {
                    #[allow(dead_code)]
                    struct NnShapeCheck([(); { ::core::assert! #arguments; 0 }]);
                };
            }
        })
        .collect()
}

/// The scalar type's parameter in the generated code (and the name the DSL gives it).
const SCALAR: &str = "T";

/// What a network named `T` is called until [`rename_scalar`]: in `impl<T> T<T>` (ours, or a
/// derive's) the parameter would shadow the network.
const PLACEHOLDER: &str = "NetworkNamedT";

/// The generated code of a network named `T`, its scalar parameter renamed `Scalar`: every
/// `T` (the generated code's, and the user's in a layer type, which can only mean the scalar)
/// becomes `Scalar`, then the placeholder becomes the network's name again.
fn rename_scalar(tokens: TokenStream, name: &Ident) -> TokenStream {
    tokens
        .into_iter()
        .map(|token| match token {
            TokenTree::Ident(ident) if ident == SCALAR => {
                TokenTree::Ident(Ident::new("Scalar", ident.span()))
            }
            TokenTree::Ident(ident) if ident == PLACEHOLDER => TokenTree::Ident(name.clone()),
            TokenTree::Group(group) => {
                let mut renamed =
                    Group::new(group.delimiter(), rename_scalar(group.stream(), name));
                renamed.set_span(group.span());
                TokenTree::Group(renamed)
            }
            other => other,
        })
        .collect()
}

/// Minimal items in place of the network when the model has errors, so that the user sees
/// the model's errors and not a cascade of "cannot find type" ones: the three structs, with
/// their `ZERO` constants. (The passes are not stubbed: a call to `forward` still reports
/// that the method is missing.)
pub fn fallback(vis: &syn::Visibility, name: &Ident) -> TokenStream {
    let grads = format_ident!("{}Grads", name);
    let tape = format_ident!("{}Tape", name);
    // Parameters named unlike `T` and `B`, so that a network of either name works too.
    quote! {
        #vis struct #name<Scalar = f32>(::core::marker::PhantomData<Scalar>);
        impl<Scalar> #name<Scalar> {
            pub const ZERO: Self = Self(::core::marker::PhantomData);
            pub const PARAM_COUNT: usize = 0;
        }
        #vis struct #grads<Scalar = f32>(::core::marker::PhantomData<Scalar>);
        impl<Scalar> #grads<Scalar> {
            pub const ZERO: Self = Self(::core::marker::PhantomData);
        }
        #vis struct #tape<Scalar = f32, const BATCH: usize = 1>(
            ::core::marker::PhantomData<Scalar>,
        );
        impl<Scalar, const BATCH: usize> #tape<Scalar, BATCH> {
            pub const ZERO: Self = Self(::core::marker::PhantomData);
        }
    }
}

/// The model, with what every item needs computed once: the crate path, the names of the
/// generated types and each layer's type.
struct Expander<'a> {
    model: &'a Model,
    /// Documentation of the network struct, and items of its inherent impl, from `explain`.
    docs: TokenStream,
    items: TokenStream,
    /// The path of the `nn` crate (`::nn`, `::neural` for a renamed dependency, or the
    /// user's `#[nn(crate = path)]`).
    nn: TokenStream,
    /// The network's name, or for a network named `T` a placeholder (see [`rename_scalar`]).
    network: Ident,
    /// `NetGrads`, `NetTape`, `NetWorkspace`, `NetState`.
    grads: Ident,
    tape: Ident,
    workspace: Ident,
    state: Ident,
    /// Where every value lives.
    memory: Memory,
    /// The tape's and workspace's own fields.
    fields: Fields,
    /// Per layer, in declaration order.
    layers: Vec<LayerCode>,
}

/// The names of the tape's and workspace's own fields (chosen apart from the nodes' names,
/// which name the saved values).
struct Fields {
    /// The outputs (one matrix, or a tuple).
    output: Ident,
    /// `∂L/∂output`, which the backward pass starts from.
    d_output: Ident,
    /// `∂L/∂input`, which the backward pass leaves.
    d_input: Ident,
    /// The slots, `slot0`, `slot1`, ...
    slots: Vec<Ident>,
    /// The layers' scratch that does not grow with the batch, `scratch`.
    call_scratch: Ident,
}

/// A layer's types in the generated code.
struct LayerCode {
    /// Its type: `::nn::layers::Dense<T, 16, 32>`, or the user's.
    ty: TokenStream,
    /// `<Type as ::nn::Layer<T, IN, OUT>>`, to call its trait items unambiguously.
    as_layer: TokenStream,
    /// Where rustc should point if a trait bound fails: the user's type for a layer of
    /// theirs.
    span: Span,
}

impl<'a> Expander<'a> {
    fn new(model: &'a Model, nn: TokenStream, docs: TokenStream, items: TokenStream) -> Self {
        let memory = memory::plan(model);
        let slots = memory
            .infer
            .slot_sizes
            .len()
            .max(memory.train.slot_sizes.len());
        let fields = Fields::new(model, slots);
        let layers = model
            .layers
            .iter()
            .map(|layer| LayerCode::new(&nn, layer))
            .collect();
        let network = if model.name == SCALAR {
            Ident::new(PLACEHOLDER, model.name.span())
        } else {
            model.name.clone()
        };
        Expander {
            model,
            network,
            docs,
            items,
            grads: format_ident!("{}Grads", model.name),
            tape: format_ident!("{}Tape", model.name),
            workspace: format_ident!("{}Workspace", model.name),
            state: format_ident!("{}State", model.name),
            fields,
            memory,
            nn,
            layers,
        }
    }

    /// The layers with (possibly) non-trivial state, each a field of `NetState`.
    fn stateful(&self) -> impl Iterator<Item = (&'a LayerDecl, &LayerCode)> {
        self.model
            .layers
            .iter()
            .zip(&self.layers)
            .filter(|(layer, _)| layer.has_state())
    }

    /// `::nn::SMatrix<T, ROWS, { B }>`: a node's values for a batch.
    fn matrix(&self, node: &Node) -> TokenStream {
        let nn = &self.nn;
        let size = size(node.size());
        quote! { #nn::SMatrix<T, #size, { B }> }
    }

    /// `x: &SMatrix<T, 16, B>, ` for each node (inputs), or `d_y: &..., ` (upstream
    /// gradients).
    fn signature(&self, ids: &[NodeId], prefix: &str) -> TokenStream {
        ids.iter()
            .map(|&id| {
                let node = &self.model.nodes[id];
                let name = if prefix.is_empty() {
                    node.name.clone()
                } else {
                    invented(&format_ident!("{}{}", prefix, node.name))
                };
                let ty = self.matrix(node);
                // Spanned on the declared shape, so that rustc's "expected `2`, found `3`" on
                // a call points there too.
                quote_spanned! {node.span=> #name: &#ty, }
            })
            .collect()
    }

    /// The matrix type, or a tuple of them.
    fn value_type(&self, ids: &[NodeId]) -> TokenStream {
        let types: Vec<TokenStream> = ids
            .iter()
            .map(|&id| self.matrix(&self.model.nodes[id]))
            .collect();
        returned(types)
    }
}

impl LayerCode {
    fn new(nn: &TokenStream, layer: &LayerDecl) -> Self {
        let (ty, span) = match &layer.kind {
            LayerKind::Builtin(builtin) => (
                builtin.type_tokens(nn, &layer.input_shape, &layer.output, layer.with_state),
                Span::call_site(),
            ),
            LayerKind::Custom(ty) => (ty.to_token_stream(), ty.span()),
        };
        let input = size(&layer.input);
        let output = size(layer.output.size());
        let as_layer = quote! { <#ty as #nn::Layer<T, #input, #output>> };
        LayerCode { ty, as_layer, span }
    }
}

/// The tape field of the cache of the layer application computing `node`.
fn cache_name(node: &Node) -> Ident {
    format_ident!("{}_cache", node.name)
}

/// `ident` as a name the macro invents for a local or a parameter (`d_y`), at its place but
/// resolved at `Span::mixed_site()`: like a `macro_rules!` local, it neither collides with nor
/// captures the user's names (a node called `tape`, a constant in a layer's type).
fn invented(ident: &Ident) -> Ident {
    Ident::new(
        &ident.to_string(),
        ident.span().resolved_at(Span::mixed_site()),
    )
}

/// A local or parameter of the generated code (`tape`, `grads`, `rng`), hygienic as
/// [`invented`] names are.
fn local(name: &str) -> Ident {
    Ident::new(name, Span::mixed_site())
}

/// A size as a const generic argument: an unsuffixed literal (`16`, not `16usize`), for
/// readable generated code, or a constant's expression in braces (`{ H }`).
fn size(n: impl Into<Dim>) -> TokenStream {
    n.into().generic()
}

/// Returns `name`, or a tuple of names.
fn returned(names: Vec<TokenStream>) -> TokenStream {
    match names.as_slice() {
        [one] => one.clone(),
        many => quote! { ( #(#many),* ) },
    }
}
