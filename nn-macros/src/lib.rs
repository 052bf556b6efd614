//! The `network!` procedural macro of the `nn` crate. Use it through `nn::network!`; its
//! documentation is there.
//!
//! Three stages, as in thiserror and serde_derive: `parse` (tokens to a typed syntax tree),
//! `model` (names, shapes and every rule, all errors collected and spanned), `expand`
//! (code generation from the checked model).

mod builtins;
mod expand;
mod explain;
mod layers;
mod model;
mod parse;
#[allow(dead_code)] // wired into expand by the memory-plan work
mod plan;

use proc_macro::TokenStream;

/// Generates a network's parameter, gradient and tape structs and its forward and backward
/// passes from a declarative description. See the `nn` crate for the language.
#[proc_macro]
pub fn network(input: TokenStream) -> TokenStream {
    let def = syn::parse_macro_input!(input as parse::NetworkDef);
    let (vis, name) = (def.vis.clone(), def.name.clone());
    match model::build(def) {
        Ok(model) => expand::expand(&model).into(),
        Err(errors) => {
            let mut tokens = errors.to_compile_error();
            tokens.extend(expand::fallback(&vis, &name));
            tokens.into()
        }
    }
}
