//! The path generated code writes before the runtime's items (`::nn::Params`, `::nn::Real`,
//! ...), whatever the user's Cargo.toml calls the crate.
//!
//! Two packages re-export everything generated code names at their root: the facade
//! `typed-nn` (library `nn`) and the runtime `typed-nn-core` (library `nn_core`). A
//! dependency may be renamed (`neural = { package = "typed-nn", .. }` makes the crate
//! `neural`), so the name is read from the Cargo.toml of the crate being compiled, as
//! `proc-macro-crate` finds it:
//!
//! 1. an explicit `#[nn(crate = path)]` wins (for a crate that re-exports `nn`);
//! 2. else `typed-nn` under the name the Cargo.toml gives it;
//! 3. else `typed-nn-core` likewise (its own layers derive `Params` inside it, as
//!    `::nn_core`, which `extern crate self as nn_core;` in its `lib.rs` makes valid);
//! 4. else a spanned error saying what to add.
//!
//! One case cannot be told apart: a dependency renamed to its package name written with
//! underscores (`typed_nn = { package = "typed-nn", .. }`) reads like the plain one, whose
//! crate is `nn`; `#[nn(crate = typed_nn)]` names it.

use proc_macro_crate::{Error, FoundCrate, crate_name};
use proc_macro2::{Span, TokenStream};
use quote::{ToTokens, quote};

/// A package whose library root re-exports everything generated code names.
struct Runtime {
    /// The package name, as in Cargo.toml.
    package: &'static str,
    /// The library's crate name, which a dependency that is not renamed goes by.
    lib: &'static str,
}

/// The facade, `typed-nn`: what users depend on.
const FACADE: Runtime = Runtime {
    package: "typed-nn",
    lib: "nn",
};

/// The runtime, `typed-nn-core`: the facade re-exports it; its own layers use the derives.
const CORE: Runtime = Runtime {
    package: "typed-nn-core",
    lib: "nn_core",
};

/// The path of the runtime crate for code generated into the crate being compiled: `explicit`
/// if given (the user's `#[nn(crate = path)]`), else `::name` with the name that crate's
/// Cargo.toml gives `typed-nn`, or failing that `typed-nn-core` (`::nn`, `::neural` for a
/// renamed dependency, `::nn_core` inside the runtime itself).
///
/// Every item generated code names is then `#path::Item` (`Params`, `ConstZero`, `Real`,
/// `SMatrix`, ...): both crates re-export them at their root.
///
/// The error, at the macro's call site, says which dependency to add, or why Cargo.toml
/// could not be read.
pub fn path(explicit: Option<syn::Path>) -> syn::Result<TokenStream> {
    if let Some(path) = explicit {
        return Ok(path.into_token_stream());
    }
    let name = resolve(crate_name(FACADE.package), crate_name(CORE.package))
        .map_err(|message| syn::Error::new(Span::call_site(), message))?;
    let ident = syn::Ident::new(&name, Span::call_site());
    Ok(quote!(::#ident))
}

/// The crate name from the two Cargo.toml look-ups (facade first), or the error message.
fn resolve(
    facade: Result<FoundCrate, Error>,
    core: Result<FoundCrate, Error>,
) -> Result<String, String> {
    match (facade, core) {
        (Ok(found), _) => Ok(crate_ident(&FACADE, found)),
        (Err(_), Ok(found)) => Ok(crate_ident(&CORE, found)),
        (Err(Error::CrateNotFound { path, .. }), Err(Error::CrateNotFound { .. })) => Err(format!(
            "cannot find the `{}` crate: add it to [dependencies] in `{}` (under any name), \
             or name its path with `#[nn(crate = path::to::nn)]`",
            FACADE.package,
            path.display()
        )),
        (Err(Error::CrateNotFound { .. }), Err(error)) | (Err(error), _) => Err(format!(
            "cannot find the `{}` crate: {error} Name its path with `#[nn(crate = path::to::nn)]`",
            FACADE.package
        )),
    }
}

/// The name by which code refers to `runtime`, from what proc-macro-crate found.
///
/// proc-macro-crate reports a dependency by its key in Cargo.toml (`-` written `_`), and the
/// package itself as `Itself` (or, in its integration tests, by its package name): a key that
/// is the package name means no rename, and the crate then goes by its library name.
fn crate_ident(runtime: &Runtime, found: FoundCrate) -> String {
    match found {
        FoundCrate::Itself => runtime.lib.to_owned(),
        FoundCrate::Name(name) if name == runtime.package.replace('-', "_") => {
            runtime.lib.to_owned()
        }
        FoundCrate::Name(name) => name,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn not_found(package: &str) -> Result<FoundCrate, Error> {
        Err(Error::CrateNotFound {
            crate_name: package.to_owned(),
            path: PathBuf::from("/project/Cargo.toml"),
        })
    }

    fn name(name: &str) -> Result<FoundCrate, Error> {
        Ok(FoundCrate::Name(name.to_owned()))
    }

    #[test]
    fn a_plain_dependency_goes_by_its_library_name() {
        // `typed-nn = "0.1"`: the crate is `nn`, not `typed_nn`.
        assert_eq!(
            resolve(name("typed_nn"), not_found("typed-nn-core")),
            Ok("nn".into())
        );
        assert_eq!(
            resolve(not_found("typed-nn"), name("typed_nn_core")),
            Ok("nn_core".into())
        );
    }

    #[test]
    fn a_renamed_dependency_goes_by_its_key() {
        // `neural = { package = "typed-nn", .. }`, or `nn = { package = "typed-nn", .. }`.
        assert_eq!(resolve(name("neural"), not_found("")), Ok("neural".into()));
        assert_eq!(resolve(name("nn"), not_found("")), Ok("nn".into()));
        assert_eq!(
            resolve(not_found(""), name("core_rt")),
            Ok("core_rt".into())
        );
    }

    #[test]
    fn the_facade_wins_over_the_core() {
        // The facade's own Cargo.toml lists `nn-core = { package = "typed-nn-core", .. }`.
        assert_eq!(
            resolve(Ok(FoundCrate::Itself), name("nn_core")),
            Ok("nn".into())
        );
        assert_eq!(
            resolve(name("neural"), name("nn_core")),
            Ok("neural".into())
        );
    }

    #[test]
    fn inside_a_package_its_library_name() {
        // The library itself (`extern crate self as ..`), its examples and doctests ...
        assert_eq!(
            resolve(Ok(FoundCrate::Itself), not_found("")),
            Ok("nn".into())
        );
        assert_eq!(
            resolve(not_found(""), Ok(FoundCrate::Itself)),
            Ok("nn_core".into())
        );
        // ... and its integration tests, which proc-macro-crate reports by package name.
        assert_eq!(
            resolve(not_found(""), name("typed_nn_core")),
            Ok("nn_core".into())
        );
    }

    #[test]
    fn neither_package_is_an_error_that_says_what_to_add() {
        let message = resolve(not_found("typed-nn"), not_found("typed-nn-core")).unwrap_err();
        assert_eq!(
            message,
            "cannot find the `typed-nn` crate: add it to [dependencies] in \
             `/project/Cargo.toml` (under any name), or name its path with \
             `#[nn(crate = path::to::nn)]`"
        );
    }

    #[test]
    fn an_unreadable_manifest_is_reported() {
        let message = resolve(Err(Error::CargoManifestDirNotSet), not_found("")).unwrap_err();
        assert!(
            message.contains("`CARGO_MANIFEST_DIR` env variable not set."),
            "{message}"
        );
        assert!(message.contains("#[nn(crate = path::to::nn)]"), "{message}");
    }

    #[test]
    fn an_explicit_path_is_used_as_written() {
        let path: syn::Path = syn::parse_quote!(my_framework::nn);
        let tokens = super::path(Some(path)).unwrap();
        assert_eq!(tokens.to_string(), "my_framework :: nn");
    }
}
