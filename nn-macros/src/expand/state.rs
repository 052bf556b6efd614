//! The `Network` items about saved state and batch statistics (issue 13): generated from the
//! layers' `Layer::BATCH_STATISTICS`, `Layer::STATE_TENSORS`, `Layer::state_value` and
//! `Layer::set_state_value`. The trait has defaults for a network without state, so only a
//! network with stateful layers gets the three state methods.

use super::{Expander, local};
use proc_macro2::TokenStream;
use quote::quote;

impl Expander<'_> {
    /// `BATCH_STATISTICS`, and `visit_state_tensors`, `state_value`, `set_state_value` over
    /// the stateful layers, in order: items of `impl nn::Network<T>`.
    pub(super) fn state_items(&self) -> TokenStream {
        let nn = &self.nn;
        let layer_traits = self.layers.iter().map(|l| &l.as_layer);
        let batch_statistics = quote! {
            const BATCH_STATISTICS: bool = false #( || #layer_traits::BATCH_STATISTICS )*;
        };
        let (names, traits): (Vec<_>, Vec<_>) = self
            .stateful()
            .map(|(layer, code)| (&layer.name, &code.as_layer))
            .unzip();
        if names.is_empty() {
            return batch_statistics;
        }
        let names_text = names.iter().map(|n| n.to_string());
        let (visit, offset, info) = (local("visit"), local("offset"), local("info"));
        let (tensor, element, value, count) = (
            local("tensor"),
            local("element"),
            local("value"),
            local("count"),
        );
        quote! {
            #batch_statistics

            fn visit_state_tensors(#visit: &mut dyn FnMut(#nn::NamedTensor)) {
                let mut #offset = 0;
                #(
                    for #info in #traits::STATE_TENSORS {
                        #visit(#nn::NamedTensor { layer: #names_text, info: #info, offset: #offset });
                        #offset += #info.len();
                    }
                )*
                let _ = #offset;
            }

            fn state_value(&self, #tensor: usize, #element: usize) -> #nn::StateValue<T> {
                let mut #tensor = #tensor;
                #(
                    let #count = #traits::STATE_TENSORS.len();
                    if #tensor < #count {
                        return #traits::state_value(&self.state.#names, #tensor, #element);
                    }
                    #tensor -= #count;
                )*
                let _ = (#tensor, #element);
                #nn::StateValue::Real(<T as #nn::Real>::ZERO)
            }

            fn set_state_value(&mut self, #tensor: usize, #element: usize, #value: #nn::StateValue<T>) {
                let mut #tensor = #tensor;
                #(
                    let #count = #traits::STATE_TENSORS.len();
                    if #tensor < #count {
                        return #traits::set_state_value(&mut self.state.#names, #tensor, #element, #value);
                    }
                    #tensor -= #count;
                )*
                let _ = (#tensor, #element, #value);
            }
        }
    }
}
