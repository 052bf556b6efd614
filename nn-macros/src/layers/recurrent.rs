//! Recurrent layers over a sequence `[S, D]`: `Rnn<H, last = ..>`, `Gru<H, ..>`,
//! `Lstm<H, ..>` (`nn_core::layers::{Rnn, Gru, Lstm}`, PyTorch's `nn.RNN`, `nn.GRU`,
//! `nn.LSTM` with one layer and `batch_first`). Called as `gru(x)`, or with an initial state
//! `gru(x, h0)` (`lstm(x, h0, c0)`).

use super::{Args, Backward, BuiltinLayer, Forward, InitialState, Misfit, Parameter, Site, Use, n};
use crate::math::{Definition, Equation, Func, Index, Math, ParamName};
use crate::shape::{Dim, Shape};
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

    /// Rows of `H` in the layer's scratch memory per sample besides the gate gradients of
    /// every step (`Layer::SCRATCH = 2·gates·H·S + k·H`, the most a pass needs: backward's,
    /// which keeps the gates' gradients of every step twice, for the products over all the
    /// steps, and its states and gradients): `h_0` and the carried `∂L/∂h` for an RNN; also
    /// `∂L/∂h_t` with the output's gradient for a GRU; and `c_0`, the carried `∂L/∂c` for
    /// an LSTM.
    fn scratch_hidden_rows(self) -> usize {
        match self {
            Cell::Rnn => 2,
            Cell::Gru => 3,
            Cell::Lstm => 5,
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
    hidden: Dim,
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
            [_, _] if self.last => Ok(Shape::from([&self.hidden])),
            [steps, _] => Ok(Shape::from([steps, &self.hidden])),
            _ => Err(at.wrong_rank(self.name(), "sequence [S, D]", input)),
        }
    }

    fn initial_state(&self) -> Option<InitialState> {
        Some(InitialState {
            count: self.cell.state_inputs(),
            size: self.hidden.clone(),
        })
    }

    fn parameters(&self, input: &Shape) -> Vec<Parameter> {
        let (gh, h) = (self.gates(), &self.hidden);
        vec![
            Parameter::new(W_IH, [&gh, &input.dims()[1]]),
            Parameter::new(W_HH, [&gh, h]),
            Parameter::new(B_IH, [&gh]),
            Parameter::new(B_HH, [&gh]),
        ]
    }

    fn has_state(&self) -> bool {
        false
    }

    fn has_cache(&self, _input: &Shape) -> bool {
        true
    }

    fn scratch_per_sample(&self, input: &Shape) -> Dim {
        let gradients = Dim::Known(2 * self.cell.gates()).mul(&input.dims()[0]);
        let rows = gradients.add(&Dim::Known(self.cell.scratch_hidden_rows()));
        rows.mul(&self.hidden)
    }

    fn scratch_per_call(&self, _input: &Shape) -> Dim {
        Dim::Known(0)
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
        let (cell, hidden, last) = (self.cell, &self.hidden, self.last);
        let (d, h, s) = (n(&input.dims()[1]), n(hidden), n(&input.dims()[0]));
        let state_size = if with_state {
            Dim::Known(cell.state_inputs()).mul(hidden)
        } else {
            Dim::Known(0)
        };
        let packed = n(input.size().add(&state_size));
        let out_size = n(output.size());
        let gh = n(self.gates());
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

    fn forward_equations(&self, at: &Use) -> Forward {
        let (steps, h) = (at.input.dims()[0].clone(), self.hidden.clone());
        let x_t = Math::at_step(sequence(at));
        let (w_ih, b_ih) = (at.param(W_IH), at.param(B_IH));
        let (w_hh, b_hh) = (at.param(W_HH), at.param(B_HH));
        let input_part = Math::Sum(vec![Math::Product(vec![w_ih, x_t]), b_ih]);
        let hidden_part = Math::Sum(vec![
            Math::Product(vec![w_hh, sym("h_{t−1}", "h_{t-1}")]),
            b_hh,
        ]);
        let gates = self.gates();
        let sigmoid = |v: Math| Func::apply("sigmoid", vec![v]);
        let tanh = |v: Math| Func::apply("tanh", vec![v]);
        let mut equations = match self.cell {
            Cell::Rnn => vec![Equation::new(
                sym("h_t", "h_t"),
                tanh(both_parts(input_part, hidden_part)),
                [&h],
            )],
            Cell::Gru => vec![
                Equation::new(sym("gi_t", "g^{i}_{t}"), input_part, [&gates]),
                Equation::new(sym("gh_t", "g^{h}_{t}"), hidden_part, [&gates]),
                Equation::new(
                    sym("r_t", "r_t"),
                    sigmoid(Math::Sum(vec![
                        sym("gi_t[r]", "g^{i}_{t}[r]"),
                        sym("gh_t[r]", "g^{h}_{t}[r]"),
                    ])),
                    [&h],
                ),
                Equation::new(
                    sym("z_t", "z_t"),
                    sigmoid(Math::Sum(vec![
                        sym("gi_t[z]", "g^{i}_{t}[z]"),
                        sym("gh_t[z]", "g^{h}_{t}[z]"),
                    ])),
                    [&h],
                ),
                Equation::new(
                    sym("n_t", "n_t"),
                    tanh(Math::Sum(vec![
                        sym("gi_t[n]", "g^{i}_{t}[n]"),
                        Math::hadamard(sym("r_t", "r_t"), sym("gh_t[n]", "g^{h}_{t}[n]")),
                    ])),
                    [&h],
                ),
                Equation::new(
                    sym("h_t", "h_t"),
                    Math::Sum(vec![
                        Math::hadamard(one_minus(sym("z_t", "z_t")), sym("n_t", "n_t")),
                        Math::hadamard(sym("z_t", "z_t"), sym("h_{t−1}", "h_{t-1}")),
                    ]),
                    [&h],
                ),
            ],
            Cell::Lstm => {
                let a = |gate: &str| sym(format!("α_t[{gate}]"), format!("\\alpha_t[{gate}]"));
                vec![
                    Equation::new(
                        sym("α_t", "\\alpha_t"),
                        both_parts(input_part, hidden_part),
                        [&gates],
                    ),
                    Equation::new(sym("i_t", "i_t"), sigmoid(a("i")), [&h]),
                    Equation::new(sym("f_t", "f_t"), sigmoid(a("f")), [&h]),
                    Equation::new(sym("g_t", "g_t"), tanh(a("g")), [&h]),
                    Equation::new(sym("o_t", "o_t"), sigmoid(a("o")), [&h]),
                    Equation::new(
                        sym("c_t", "c_t"),
                        Math::Sum(vec![
                            Math::hadamard(sym("f_t", "f_t"), sym("c_{t−1}", "c_{t-1}")),
                            Math::hadamard(sym("i_t", "i_t"), sym("g_t", "g_t")),
                        ]),
                        [&h],
                    ),
                    Equation::new(
                        sym("h_t", "h_t"),
                        Math::hadamard(sym("o_t", "o_t"), tanh(sym("c_t", "c_t"))),
                        [&h],
                    ),
                ]
            }
        };
        let from = match (self.cell, at.parts.as_slice()) {
            (Cell::Lstm, [_, h0, c0]) => format!("h_0 = {}, c_0 = {}", h0.text(), c0.text()),
            (Cell::Lstm, _) => "h_0 = c_0 = 0".to_string(),
            (_, [_, h0]) => format!("h_0 = {}", h0.text()),
            _ => "h_0 = 0".to_string(),
        };
        let first = equations.remove(0);
        equations.insert(
            0,
            first.note(format!("{}: for t = 1…{steps}, from {from}", at.layer)),
        );
        let value = if self.last {
            sym(format!("h_{steps}"), format!("h_{{{steps}}}"))
        } else {
            Math::Sequence(Box::new(sym("h_t", "h_t")), Index::STEP, steps)
        };
        Forward {
            steps: equations,
            value,
            note: String::new(),
        }
    }

    fn backward_equations(&self, at: &Use) -> Backward {
        let (steps, h) = (at.input.dims()[0].clone(), self.hidden.clone());
        let gates = self.gates();
        let w_hh = Math::transpose(at.param(W_HH));
        let dh = sym("∂h_t", "\\partial h_t");
        let carried = sym("∂h′_t", "\\partial h'_t");
        // The gradient of `h_t`: the output's (at every step, or at the last one only, where
        // it starts the recursion) and what step `t + 1` sends back.
        let (incoming, from) = if self.last {
            (carried, format!("∂h′_{steps} = ∂L/∂{}", at.y.text()))
        } else {
            let output = Math::at_step(at.dy());
            (Math::Sum(vec![output, carried]), format!("∂h′_{steps} = 0"))
        };
        let from = match self.cell {
            Cell::Lstm => format!("{from}, ∂c′_{steps} = 0"),
            Cell::Rnn | Cell::Gru => from,
        };
        let mut equations = vec![Equation::new(dh.clone(), incoming, [&h]).note(format!(
            "{}, back through time: t = {steps}…1, from {from}",
            at.layer
        ))];
        let back = sym("∂h′_{t−1}", "\\partial h'_{t-1}");
        match self.cell {
            Cell::Rnn => {
                let da = sym("δ_t", "\\delta_t");
                equations.extend([
                    Equation::new(
                        da.clone(),
                        Math::hadamard(dh, one_minus(Math::Square(Box::new(sym("h_t", "h_t"))))),
                        [&h],
                    ),
                    Equation::new(back, Math::Product(vec![w_hh, da]), [&h]).note("to step t − 1"),
                ]);
            }
            Cell::Gru => {
                let (dn, dz) = (sym("∂n_t", "\\partial n_t"), sym("∂z_t", "\\partial z_t"));
                let dgi = |gate: &str| {
                    sym(
                        format!("∂gi_t[{gate}]"),
                        format!("\\partial g^{{i}}_{{t}}[{gate}]"),
                    )
                };
                let (r, z, n) = (sym("r_t", "r_t"), sym("z_t", "z_t"), sym("n_t", "n_t"));
                let dgh = sym("∂gh_t", "\\partial g^{h}_{t}");
                equations.extend([
                    Equation::new(
                        dn.clone(),
                        Math::hadamard(dh.clone(), one_minus(z.clone())),
                        [&h],
                    ),
                    Equation::new(
                        dz.clone(),
                        Math::hadamard(
                            dh.clone(),
                            Math::minus(sym("h_{t−1}", "h_{t-1}"), n.clone()),
                        ),
                        [&h],
                    ),
                    Equation::new(
                        dgi("n"),
                        Math::hadamard(dn, one_minus(Math::Square(Box::new(n)))),
                        [&h],
                    ),
                    Equation::new(
                        dgi("r"),
                        hadamards(vec![
                            dgi("n"),
                            sym("gh_t[n]", "g^{h}_{t}[n]"),
                            r.clone(),
                            one_minus(r.clone()),
                        ]),
                        [&h],
                    ),
                    Equation::new(
                        dgi("z"),
                        hadamards(vec![dz, z.clone(), one_minus(z.clone())]),
                        [&h],
                    ),
                    Equation::new(
                        sym("∂gi_t", "\\partial g^{i}_{t}"),
                        Math::Stack(vec![dgi("r"), dgi("z"), dgi("n")]),
                        [&gates],
                    ),
                    Equation::new(
                        dgh.clone(),
                        Math::Stack(vec![dgi("r"), dgi("z"), Math::hadamard(r, dgi("n"))]),
                        [&gates],
                    ),
                    Equation::new(
                        back,
                        Math::Sum(vec![Math::hadamard(dh, z), Math::Product(vec![w_hh, dgh])]),
                        [&h],
                    )
                    .note("to step t − 1"),
                ]);
            }
            Cell::Lstm => {
                let dc = sym("∂c_t", "\\partial c_t");
                let (i, f, g, o) = (
                    sym("i_t", "i_t"),
                    sym("f_t", "f_t"),
                    sym("g_t", "g_t"),
                    sym("o_t", "o_t"),
                );
                let tanh_c = Func::apply("tanh", vec![sym("c_t", "c_t")]);
                let da = sym("δ_t", "\\delta_t");
                equations.extend([
                    Equation::new(
                        dc.clone(),
                        Math::Sum(vec![
                            sym("∂c′_t", "\\partial c'_t"),
                            hadamards(vec![
                                dh.clone(),
                                o.clone(),
                                one_minus(Math::Square(Box::new(tanh_c.clone()))),
                            ]),
                        ]),
                        [&h],
                    ),
                    Equation::new(
                        da.clone(),
                        Math::Stack(vec![
                            hadamards(vec![dc.clone(), g.clone(), i.clone(), one_minus(i.clone())]),
                            hadamards(vec![
                                dc.clone(),
                                sym("c_{t−1}", "c_{t-1}"),
                                f.clone(),
                                one_minus(f.clone()),
                            ]),
                            hadamards(vec![dc.clone(), i, one_minus(Math::Square(Box::new(g)))]),
                            hadamards(vec![dh, tanh_c, o.clone(), one_minus(o)]),
                        ]),
                        [&gates],
                    ),
                    Equation::new(back, Math::Product(vec![w_hh, da]), [&h]).note("to step t − 1"),
                    Equation::new(
                        sym("∂c′_{t−1}", "\\partial c'_{t-1}"),
                        Math::hadamard(dc, f),
                        [&h],
                    ),
                ]);
            }
        }
        let sequence = Math::Sequence(
            Box::new(Math::Product(vec![
                Math::transpose(at.param(W_IH)),
                self.input_side_delta(),
            ])),
            Index::STEP,
            steps,
        );
        // Called with an initial state, the layer's input is the sequence and the state
        // packed: its gradient is theirs, stacked.
        let input_gradient = match (self.cell, at.parts.len()) {
            (_, 0) => sequence,
            (Cell::Lstm, _) => Math::Stack(vec![
                sequence,
                sym("∂h′_0", "\\partial h'_0"),
                sym("∂c′_0", "\\partial c'_0"),
            ]),
            _ => Math::Stack(vec![sequence, sym("∂h′_0", "\\partial h'_0")]),
        };
        Backward {
            steps: equations,
            input_gradient,
        }
    }

    fn parameter_gradients(&self, at: &Use) -> Vec<Math> {
        let (input_side, hidden_side) = (self.input_side_delta(), self.hidden_side_delta());
        vec![
            Math::sum_over_steps(Math::Product(vec![
                input_side.clone(),
                Math::transpose(Math::at_step(sequence(at))),
            ])),
            Math::sum_over_steps(Math::Product(vec![
                hidden_side.clone(),
                Math::transpose(sym("h_{t−1}", "h_{t-1}")),
            ])),
            Math::sum_over_steps(input_side),
            Math::sum_over_steps(hidden_side),
        ]
    }

    fn definitions(&self, _at: &Use) -> Vec<Definition> {
        let gates = match self.cell {
            Cell::Rnn => None,
            Cell::Gru => Some(Definition::new(
                "gi_t[r], gi_t[z], gi_t[n]: the reset, update and candidate rows of gi_t (H each, \
                 PyTorch's order); likewise for gh_t",
                "g^{i}_{t}[r], g^{i}_{t}[z], g^{i}_{t}[n] &: \\text{the reset, update and candidate \
                 rows of } g^{i}_{t} \\text{ (likewise } g^{h}_{t} \\text{; PyTorch's order)}",
            )),
            Cell::Lstm => Some(Definition::new(
                "α_t[i], α_t[f], α_t[g], α_t[o]: the input, forget, cell and output rows of α_t \
                 (H each, PyTorch's order); δ_t likewise",
                "\\alpha_t[i], \\alpha_t[f], \\alpha_t[g], \\alpha_t[o] &: \\text{the input, forget, \
                 cell and output rows of } \\alpha_t \\text{ (PyTorch's order)}",
            )),
        };
        let carried = match self.cell {
            Cell::Rnn | Cell::Gru => Definition::new(
                "∂h′_t: what step t + 1 sends back to h_t (at t = 0: to the initial state); Σ_t \
                 sums over the steps",
                "\\partial h'_t &: \\text{what step } t + 1 \\text{ sends back to } h_t",
            ),
            Cell::Lstm => Definition::new(
                "∂h′_t, ∂c′_t: what step t + 1 sends back to h_t and c_t (at t = 0: to the initial \
                 state); Σ_t sums over the steps",
                "\\partial h'_t, \\partial c'_t &: \\text{what step } t + 1 \\text{ sends back to } \
                 h_t, c_t",
            ),
        };
        gates.into_iter().chain([carried]).collect()
    }
}

impl Recurrent {
    /// The gates' rows of the stacked weights: `gates · hidden`.
    fn gates(&self) -> Dim {
        Dim::Known(self.cell.gates()).mul(&self.hidden)
    }

    /// What a step passes back through `W_ih`: `∂gi_t` for a GRU, `δ_t` otherwise.
    fn input_side_delta(&self) -> Math {
        match self.cell {
            Cell::Gru => sym("∂gi_t", "\\partial g^{i}_{t}"),
            Cell::Rnn | Cell::Lstm => sym("δ_t", "\\delta_t"),
        }
    }

    /// What a step passes back through `W_hh`: `∂gh_t` for a GRU, `δ_t` otherwise.
    fn hidden_side_delta(&self) -> Math {
        match self.cell {
            Cell::Gru => sym("∂gh_t", "\\partial g^{h}_{t}"),
            Cell::Rnn | Cell::Lstm => sym("δ_t", "\\delta_t"),
        }
    }
}

/// The sequence the layer reads (apart from an initial state packed with it).
fn sequence(at: &Use) -> Math {
    at.parts.first().unwrap_or(&at.x).clone()
}

/// A symbol with its text and LaTeX.
fn sym(text: impl Into<String>, tex: impl Into<String>) -> Math {
    Math::symbol(text, tex)
}

/// `W_ih·x[t] + b_ih + W_hh·h_{t−1} + b_hh`, from the two parts.
fn both_parts(input_part: Math, hidden_part: Math) -> Math {
    match (input_part, hidden_part) {
        (Math::Sum(mut terms), Math::Sum(more)) => {
            terms.extend(more);
            Math::Sum(terms)
        }
        (a, b) => Math::Sum(vec![a, b]),
    }
}

/// `1 − v`.
fn one_minus(v: Math) -> Math {
    Math::minus(sym("1", "1"), v)
}

/// `a ⊙ b ⊙ c …`.
fn hadamards(factors: Vec<Math>) -> Math {
    factors
        .into_iter()
        .reduce(Math::hadamard)
        .expect("at least one factor")
}
