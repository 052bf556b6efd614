//! The `network!` procedural macro of the `nn` crate, and the derives of its layout traits
//! (`Params`, `ConstZero`, `Zeroable`). Use them through `nn`; their documentation is there.
//!
//! Three stages, as in thiserror and serde_derive: `parse` (tokens to a typed syntax tree),
//! `model` (names, shapes and every rule, all errors collected and spanned), then, side by
//! side from the checked model, `expand` (the code) and `explain` (its equations and
//! diagram, which `network` hands to `expand` to place). The built-in layers
//! (`layers`, one file per family) and the other built-in vocabulary (`builtins`) are
//! the model's; `diagnostics`, `shape` and `math` (the notation of `explain`) are below
//! every stage. Modules import one way only: `parse` → `layers` → `model` → `expand` and
//! `explain`, neither of which imports the other. The derives are in `derive`; `krate`
//! finds the path of the runtime crate for them.

mod builtins;
mod derive;
mod diagnostics;
mod expand;
mod explain;
mod krate;
mod layers;
mod math;
mod model;
mod parse;
mod plan;
mod shape;

use proc_macro::TokenStream;

/// Generates a network's parameter, gradient and tape structs and its forward and backward
/// passes from a declarative description. See the `nn` crate for the language.
#[proc_macro]
pub fn network(input: TokenStream) -> TokenStream {
    let input = proc_macro2::TokenStream::from(input);
    let def = match syn::parse2::<parse::NetworkDef>(input.clone()) {
        Ok(def) => def,
        Err(error) => {
            // The struct still exists, so that code naming it gets no further errors.
            let mut tokens = error.to_compile_error();
            if let Some((vis, name)) = parse::header(input) {
                tokens.extend(expand::fallback(&vis, &name));
            }
            return tokens.into();
        }
    };
    let (vis, name) = (def.vis.clone(), def.name.clone());
    let nn = match krate::path(def.krate.clone()) {
        Ok(path) => path,
        Err(error) => {
            let mut tokens = error.to_compile_error();
            tokens.extend(expand::fallback(&vis, &name));
            return tokens.into();
        }
    };
    match model::build(def) {
        Ok(model) => {
            let explanation = explain::explain(&model);
            expand::expand(&model, &nn, explanation.struct_docs, explanation.items).into()
        }
        Err(errors) => {
            let mut tokens = errors.to_compile_error();
            tokens.extend(expand::fallback(&vis, &name));
            tokens.into()
        }
    }
}

/// Implements `Params<T>` for a `#[repr(C)]` struct of parameters: `LEN` is the sum of its
/// fields' `LEN`s, and the impl is checked instead of trusted.
///
/// ```ignore
/// #[derive(Clone, Params, ConstZero, Zeroable)]
/// #[repr(C)]
/// pub struct Scale<T: Real, const N: usize> {
///     pub s: SMatrix<T, N, 1>,
/// }
/// ```
///
/// - The scalar type is the type parameter bounded by `Real`.
/// - Every field is a parameter (`SMatrix<T, R, C>`, `[T; N]`, `PhantomData`, or a type
///   that derives `Params`) unless marked `#[nn(skip)]`: a field that is not a parameter
///   (running state, a counter) must come after every parameter.
/// - Checked: `#[repr(C)]` (or `transparent`) and the scalar parameter, by the derive; each
///   field's `Params<T>`, by a bound on its type; no padding between or after the
///   parameters and `T`'s alignment, by const assertions evaluated where `LEN` is used.
/// - `#[nn(crate = path::to::nn)]` on the struct names the `nn` crate when it is
///   re-exported by another crate; otherwise it is found in Cargo.toml, renamed or not.
///
/// `Params` needs `Zeroable` and `ConstZero`: derive the three together.
#[proc_macro_derive(Params, attributes(nn))]
pub fn derive_params(input: TokenStream) -> TokenStream {
    derive::derive(input.into(), derive::Derive::Params).into()
}

/// Implements `ConstZero` for a struct: `ZERO` is every field's `ZERO`.
///
/// Every field's type must be `ConstZero` (matrices, arrays, integers, floats,
/// `PhantomData`, `()`, and structs deriving it). `#[nn(crate = path)]` as for `Params`.
#[proc_macro_derive(ConstZero, attributes(nn))]
pub fn derive_const_zero(input: TokenStream) -> TokenStream {
    derive::derive(input.into(), derive::Derive::ConstZero).into()
}

/// Implements `Zeroable` for a struct whose every field is `Zeroable` (checked), so that
/// all-zero bytes are a valid value: `new_boxed()` then builds it zeroed on the heap.
///
/// Its `ConstZero::ZERO` should be that all-zero value: derive `ConstZero` with it.
/// `#[nn(crate = path)]` as for `Params`.
#[proc_macro_derive(Zeroable, attributes(nn))]
pub fn derive_zeroable(input: TokenStream) -> TokenStream {
    derive::derive(input.into(), derive::Derive::Zeroable).into()
}
