//! The derivation of a network, from the checked model: its forward and backward passes as
//! equations, and a diagram of its graph (issue: "show the work"). Not written yet: both
//! functions generate nothing.

use crate::model::Model;
use proc_macro2::TokenStream;

/// Items added to the network's inherent impl (constants holding the texts).
pub fn items(model: &Model) -> TokenStream {
    let _ = model;
    TokenStream::new()
}

/// `#[doc = ...]` attributes appended to the network struct's documentation.
pub fn struct_docs(model: &Model) -> TokenStream {
    let _ = model;
    TokenStream::new()
}
