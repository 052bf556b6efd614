//! The derivation of a network, shown: its forward and backward passes as equations, and a
//! diagram of its graph, generated from the same checked [`Model`] as the code (so they cannot
//! drift apart from it).
//!
//! [`derivation`] walks the model once and writes every equation in the notation of
//! [`crate::math`], in the order the generated code runs: forward in node order; backward in
//! reverse node order, where a node's gradient is the sum of one term per child (the
//! contribution each child's backward statement adds into `d_<node>`) and a layer's parameter
//! gradient the sum of one term per use. The equations of a built-in layer are its own
//! ([`crate::layers::BuiltinLayer`]). They are rendered twice, as LaTeX (Markdown `math`
//! blocks, which GitHub renders) and as Unicode text (terminals, rustdoc). [`diagrams`]
//! writes the graph in Graphviz DOT and as a Mermaid flowchart; [`summary`] the text that the
//! generated `summary()` prints.

mod derivation;
mod diagrams;
mod graph;
mod summary;

use crate::model::Model;
use derivation::Derivation;
use diagrams::{dot, mermaid};
use proc_macro2::TokenStream;
use quote::quote;
use std::fmt::Write as _;
use summary::summary_text;

/// The explanation of a network, for `expand` to place.
pub struct Explanation {
    /// `#[doc]` attributes for the network struct: the summary, the equations, the diagram.
    pub struct_docs: TokenStream,
    /// Items of its inherent impl: `EQUATIONS`, `EQUATIONS_TEXT`, `DOT`, `MERMAID`, ...
    pub items: TokenStream,
}

/// Explains the checked network.
pub fn explain(model: &Model) -> Explanation {
    Explanation {
        struct_docs: struct_docs(model),
        items: items(model),
    }
}

/// Items added to the network's inherent impl: the equations and the diagram as constants.
fn items(model: &Model) -> TokenStream {
    let name = model.name.to_string();
    let derivation = Derivation::new(model);
    let equations = derivation.markdown();
    let equations_text = derivation.text();
    let dot = dot(model);
    let mermaid = mermaid(model);
    let summary = summary_text(model);
    let equations_doc = format!(
        " The forward and backward passes of `{name}` as equations, node by node in the \
         order the generated code runs them, with every shape: Markdown, with the math in \
         LaTeX `math` blocks (as GitHub renders them). Derived by `nn::network!` from the \
         checked graph that generates the code."
    );
    let text_doc = format!(
        " The equations of [`{name}::EQUATIONS`] as plain Unicode text, for a terminal \
         (`println!(\"{{}}\", {name}::<f32>::EQUATIONS_TEXT)`); the network's documentation \
         shows them too."
    );
    let dot_doc = format!(
        " The graph of `{name}` in Graphviz DOT: one box per node (its name, operation and \
         shape), edges in data order, the uses of a shared layer highlighted and joined by a \
         dashed line. Render it with `dot -Tsvg` (or the `layout-rs` crate)."
    );
    let mermaid_doc = format!(
        " The graph of `{name}` as a Mermaid flowchart (the same as [`{name}::DOT`]), which \
         GitHub renders in a `mermaid` code block."
    );
    // Each text is wrapped in a block with an inner `const`, so that rustdoc does not print
    // the whole string after the constant's name (as it does for a literal).
    quote! {
        #[doc = #equations_doc]
        pub const EQUATIONS: &'static str = { const TEXT: &str = #equations; TEXT };

        #[doc = #text_doc]
        pub const EQUATIONS_TEXT: &'static str = { const TEXT: &str = #equations_text; TEXT };

        #[doc = #dot_doc]
        pub const DOT: &'static str = { const TEXT: &str = #dot; TEXT };

        #[doc = #mermaid_doc]
        pub const MERMAID: &'static str = { const TEXT: &str = #mermaid; TEXT };

        /// The summary table as the network's documentation shows it: computed by the macro,
        /// it is what `summary()` prints, except that the parameter count of a layer of your
        /// own is `?` (the macro does not know it). For tests.
        #[doc(hidden)]
        pub const SUMMARY_TEXT: &'static str = { const TEXT: &str = #summary; TEXT };
    }
}

/// `#[doc = ...]` attributes appended to the network struct's documentation: the summary
/// table, the equations and the diagram.
fn struct_docs(model: &Model) -> TokenStream {
    let name = model.name.to_string();
    let derivation = Derivation::new(model);
    let mut doc = String::new();
    let block = |doc: &mut String, lang: &str, body: &str| {
        let _ = writeln!(doc, "```{lang}");
        doc.push_str(body.trim_end());
        doc.push_str("\n```\n");
    };
    let _ = writeln!(
        doc,
        "\n# Summary\n\nWhat [`{name}::summary`] prints (for `f32`): each node's operation, \
         output shape (of one sample) and parameter count.\n"
    );
    block(&mut doc, "text", &summary_text(model));
    let _ = writeln!(
        doc,
        "\n# Derivation\n\nThe forward and backward passes as the macro derived them, node by \
         node in the order the generated code runs them (also in [`{name}::EQUATIONS`], as \
         Markdown with LaTeX math, and in [`{name}::EQUATIONS_TEXT`]).\n"
    );
    block(&mut doc, "text", &derivation.text());
    let _ = writeln!(
        doc,
        "\n# Graph\n\nAs a Mermaid flowchart ([`{name}::MERMAID`]):\n"
    );
    block(&mut doc, "mermaid", &mermaid(model));
    let _ = writeln!(
        doc,
        "\nIn Graphviz DOT ([`{name}::DOT`]; render it with `dot -Tsvg`):\n"
    );
    block(&mut doc, "dot", &dot(model));
    doc.lines()
        .map(|line| {
            let line = if line.is_empty() {
                String::new()
            } else {
                format!(" {line}")
            };
            quote! { #[doc = #line] }
        })
        .collect()
}
