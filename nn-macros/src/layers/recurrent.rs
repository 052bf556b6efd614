//! Recurrent layers over a sequence `[S, D]`: `Rnn<H, last = ..>`, `Gru<H, ..>`,
//! `Lstm<H, ..>` (`nn_core::layers::{Rnn, Gru, Lstm}`, PyTorch's `nn.RNN`, `nn.GRU`,
//! `nn.LSTM` with one layer and `batch_first`). Called as `gru(x)`, or with an initial state
//! `gru(x, h0)` (`lstm(x, h0, c0)`).

use super::{Args, BuiltinLayer, InitialState, Misfit, Parameter, Site, n};
use crate::math::ParamName;
use crate::shape::Shape;
use proc_macro2::TokenStream;
use quote::quote;

/// A recurrent cell.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Cell {
    Rnn,
    Gru,
    Lstm,
}

impl Cell {
    /// Gates: rows of `weight_ih_l0` per hidden unit.
    fn gates(self) -> usize {
        match self {
            Cell::Rnn => 1,
            Cell::Gru => 3,
            Cell::Lstm => 4,
        }
    }

    /// Initial-state inputs: `h0`, or `h0` and `c0`.
    fn state_inputs(self) -> usize {
        match self {
            Cell::Rnn | Cell::Gru => 1,
            Cell::Lstm => 2,
        }
    }
}

/// A recurrent layer of `hidden` units, returning every hidden state or, with `last`, the
/// last one.
pub struct Recurrent {
    cell: Cell,
    hidden: usize,
    last: bool,
}

/// The input-to-hidden weights, PyTorch's `weight_ih_l0`: the gates' stacked.
const W_IH: ParamName = ParamName::WEIGHT.indexed("ih");
/// The hidden-to-hidden weights, `weight_hh_l0`.
const W_HH: ParamName = ParamName::WEIGHT.indexed("hh");
/// `bias_ih_l0`.
const B_IH: ParamName = ParamName::BIAS.indexed("ih");
/// `bias_hh_l0`.
const B_HH: ParamName = ParamName::BIAS.indexed("hh");

/// `Gru<H, last = ..>`, and likewise for the other cells.
pub fn parse(args: &mut Args, cell: Cell) -> Option<Box<dyn BuiltinLayer>> {
    let hidden = args.positional_size("the hidden size");
    let last = args.named_bool("last", false);
    let Some(hidden) = hidden else {
        if !args.has_errors() {
            let text = args.kind.to_string();
            args.error_on_layer(format!("`{text}` takes its hidden size, e.g. `{text}<32>`"));
        }
        return None;
    };
    Some(Box::new(Recurrent {
        cell,
        hidden: hidden.value,
        last,
    }))
}

impl BuiltinLayer for Recurrent {
    fn name(&self) -> &'static str {
        match self.cell {
            Cell::Rnn => "Rnn",
            Cell::Gru => "Gru",
            Cell::Lstm => "Lstm",
        }
    }

    fn output_shape(&self, input: &Shape, at: &Site) -> Result<Shape, Misfit> {
        match input.dims() {
            [_, _] if self.last => Ok(Shape::from([self.hidden])),
            [steps, _] => Ok(Shape::from([*steps, self.hidden])),
            _ => Err(at.wrong_rank(self.name(), "sequence [S, D]", input)),
        }
    }

    fn initial_state(&self) -> Option<InitialState> {
        Some(InitialState {
            count: self.cell.state_inputs(),
            size: self.hidden,
        })
    }

    fn parameters(&self, input: &Shape) -> Vec<Parameter> {
        let (gh, h) = (self.cell.gates() * self.hidden, self.hidden);
        vec![
            Parameter::new(W_IH, [gh, input.dims()[1]]),
            Parameter::new(W_HH, [gh, h]),
            Parameter::new(B_IH, [gh]),
            Parameter::new(B_HH, [gh]),
        ]
    }

    fn has_state(&self) -> bool {
        false
    }

    fn has_cache(&self, _input: &Shape) -> bool {
        true
    }

    fn describe(&self, input: &Shape, _output: &Shape) -> String {
        format!(
            "{}({} → {}{})",
            self.name(),
            input.last(),
            self.hidden,
            if self.last { ", last" } else { "" }
        )
    }

    fn type_tokens(
        &self,
        nn: &TokenStream,
        input: &Shape,
        output: &Shape,
        with_state: bool,
    ) -> TokenStream {
        let (cell, hidden, last) = (self.cell, self.hidden, self.last);
        let (d, h, s) = (n(input.dims()[1]), n(hidden), n(input.dims()[0]));
        let state_size = if with_state {
            cell.state_inputs() * hidden
        } else {
            0
        };
        let packed = n(input.size() + state_size);
        let out_size = n(output.size());
        let gh = n(cell.gates() * hidden);
        let init = with_state;
        match cell {
            Cell::Rnn => {
                quote! { #nn::layers::Rnn<T, #d, #h, #s, #packed, #out_size, #last, #init> }
            }
            Cell::Gru => {
                quote! { #nn::layers::Gru<T, #d, #h, #gh, #s, #packed, #out_size, #last, #init> }
            }
            Cell::Lstm => {
                quote! { #nn::layers::Lstm<T, #d, #h, #gh, #s, #packed, #out_size, #last, #init> }
            }
        }
    }
}
