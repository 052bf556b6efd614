//! `#[derive(Params)]`, `#[derive(ConstZero)]` and `#[derive(Zeroable)]`: the runtime's
//! layout traits for a struct of parameters, so that no layer and no user writes an
//! `unsafe impl` or counts `LEN` by hand.
//!
//! Two stages, as `network!`: [`input`] reads the struct and checks what the macro can see
//! (a struct, `#[repr(C)]`, a scalar type parameter, the `#[nn(..)]` attributes), [`expand`]
//! emits the impls with what only the compiler can check: each field's trait, as a bound on
//! the field's type (an error there names the field), and the layout, as const assertions.

mod expand;
mod input;

use proc_macro2::TokenStream;

/// Which derive is expanding (the checks and messages differ).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Derive {
    /// `#[derive(Params)]`.
    Params,
    /// `#[derive(ConstZero)]`.
    ConstZero,
    /// `#[derive(Zeroable)]`.
    Zeroable,
}

impl Derive {
    /// The error for an enum or a union.
    fn needs_struct(self) -> &'static str {
        match self {
            Derive::Params => {
                "#[derive(Params)] needs a struct: the parameters are the struct's fields, read \
                 as one slice in declaration order"
            }
            Derive::ConstZero => {
                "#[derive(ConstZero)] needs a struct: its zero is every field's zero, and an \
                 enum has no one zero value"
            }
            Derive::Zeroable => {
                "#[derive(Zeroable)] needs a struct: all-zero bytes are a valid struct of \
                 zeroable fields, not necessarily a valid enum or union"
            }
        }
    }
}

/// Expands `derive` on `input` (a struct item), or returns its errors.
pub fn derive(input: TokenStream, derive: Derive) -> TokenStream {
    let input = match syn::parse2::<syn::DeriveInput>(input) {
        Ok(input) => input,
        Err(error) => return error.to_compile_error(),
    };
    let checked = input::check(input, derive);
    let mut errors = checked.errors;
    let Some(input) = checked.input else {
        return compile_errors(errors);
    };
    let krate = match crate::krate::path(input.krate.clone()) {
        Ok(krate) => krate,
        Err(error) => {
            errors.push(error);
            return compile_errors(errors);
        }
    };
    if errors.is_empty() {
        match derive {
            Derive::Params => expand::params(&input, &krate),
            Derive::ConstZero => expand::const_zero(&input, &krate),
            Derive::Zeroable => expand::zeroable(&input, &krate),
        }
    } else {
        // The errors, and where it can be built an impl without the checks, so that code
        // using the trait does not add follow-on errors (thiserror's fallback).
        let mut tokens = compile_errors(errors);
        if derive == Derive::Params {
            tokens.extend(expand::params_fallback(&input, &krate));
        }
        tokens
    }
}

fn compile_errors(errors: Vec<syn::Error>) -> TokenStream {
    errors
        .into_iter()
        .map(|error| error.to_compile_error())
        .collect()
}
