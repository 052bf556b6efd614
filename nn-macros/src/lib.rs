//! The `network!` procedural macro of the `nn` crate. Use it through `nn::network!`; its
//! documentation is there.
//!
//! Three stages, as in thiserror and serde_derive: `parse` (tokens to a typed syntax tree),
//! `model` (names, shapes and every rule, all errors collected and spanned), then, side by
//! side from the checked model, `expand` (the code) and `explain` (its equations and
//! diagram, which `network` hands to `expand` to place). The built-in layers
//! (`layers`, one file per family) and the other built-in vocabulary (`builtins`) are
//! the model's; `diagnostics`, `shape` and `math` (the notation of `explain`) are below
//! every stage. Modules import one way only: `parse` → `layers` → `model` → `expand` and
//! `explain`, neither of which imports the other.

mod builtins;
mod diagnostics;
mod expand;
mod explain;
mod layers;
mod math;
mod model;
mod parse;
mod shape;

use proc_macro::TokenStream;

/// Generates a network's parameter, gradient and tape structs and its forward and backward
/// passes from a declarative description. See the `nn` crate for the language.
#[proc_macro]
pub fn network(input: TokenStream) -> TokenStream {
    let def = syn::parse_macro_input!(input as parse::NetworkDef);
    let (vis, name) = (def.vis.clone(), def.name.clone());
    match model::build(def) {
        Ok(model) => {
            let explanation = explain::explain(&model);
            expand::expand(&model, explanation.struct_docs, explanation.items).into()
        }
        Err(errors) => {
            let mut tokens = errors.to_compile_error();
            tokens.extend(expand::fallback(&vis, &name));
            tokens.into()
        }
    }
}
