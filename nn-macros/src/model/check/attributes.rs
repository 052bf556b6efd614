//! The user's attributes on the network struct, carried over to the generated struct. The
//! macro derives `Clone`, `Debug` and `PartialEq` itself, so the same derives written by the
//! user are dropped (a second impl would conflict); serde's derives cannot serialize the
//! layers' fields and are refused with the way that works.

use super::Builder;
use syn::punctuated::Punctuated;
use syn::{Attribute, Path, Token};

/// Derives the generated network struct always has.
const GENERATED_DERIVES: &[&str] = &["Clone", "Debug", "PartialEq"];

/// serde's derives, and why the network does not take them.
const SERDE_DERIVES: &[&str] = &["Serialize", "Deserialize"];

impl Builder {
    /// The attributes to put on the generated struct: `attrs` with the derives it already
    /// has removed; serde's derives reported.
    pub(super) fn user_attributes(&mut self, attrs: &[Attribute]) -> Vec<Attribute> {
        let mut kept = Vec::new();
        for attr in attrs {
            if !attr.path().is_ident("derive") {
                kept.push(attr.clone());
                continue;
            }
            let Ok(paths) = attr.parse_args_with(Punctuated::<Path, Token![,]>::parse_terminated)
            else {
                // Malformed: rustc reports it as it would without the macro.
                kept.push(attr.clone());
                continue;
            };
            let mut rest: Punctuated<Path, Token![,]> = Punctuated::new();
            for path in paths {
                let name = path
                    .segments
                    .last()
                    .map(|segment| segment.ident.to_string())
                    .unwrap_or_default();
                if GENERATED_DERIVES.contains(&name.as_str()) {
                    continue;
                }
                if SERDE_DERIVES.contains(&name.as_str()) {
                    self.errors.spanned(
                        &path,
                        format!(
                            "a network cannot derive `{name}`: its layers are not serde types. \
                             Its weights serialize with `nn::io::serde` (feature `serde`): \
                             `#[serde(with = \"nn::io::serde\")]` on a field holding the \
                             network, or `nn::io::serde::Weights::new(&net)`"
                        ),
                    );
                    continue;
                }
                rest.push(path);
            }
            if !rest.is_empty() {
                kept.push(syn::parse_quote! { #[derive(#rest)] });
            }
        }
        kept
    }
}
