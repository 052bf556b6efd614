//! The bodies of the passes, in the memory the plan gives each value
//! ([`crate::model::memory`]): `forward_in` and `forward_train` (one statement per node, in
//! order), `backward` and `backward_params` (one per node, in reverse order, each adding its
//! contribution into its parents' gradients).
//!
//! A value in a slot is a local named after its node, a view of the slot
//! (`let h: &mut SMatrix<T, 32, B> = nn::memory::view_mut(&mut tape.slot1);`); a saved value,
//! an output or an input's gradient is a field of the tape or workspace (`tape.h`); an input
//! the forward pass does not save is the caller's reference. The identifiers the macro
//! invents (`tape`, `workspace`, `grads`, the gradients `d_h`) have mixed-site hygiene, so no
//! name of the user's can capture them.

use super::{Expander, Fields, cache_name, invented, local, size};
use crate::builtins::{ActivationInfo, Reads};
use crate::model::memory::Placement;
use crate::model::{BinOp, LayerKind, Node, NodeId, Op};
use crate::shape::Dim;
use proc_macro2::{Literal, TokenStream};
use quote::{format_ident, quote, quote_spanned};
use std::cell::RefCell;
use syn::Ident;

/// The `bool` local of the training forward pass that says whether it copies the inputs the
/// backward pass reads into the tape: `false` when the caller passes the same inputs to the
/// backward pass (`forward_train_borrowing`).
pub(super) const COPY_INPUT: &str = "copy_input";

/// Which pass a body is for.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Pass {
    /// Inference, in the workspace.
    Infer,
    /// The training forward pass, in the tape.
    Train,
}

/// Where a value is.
enum Place {
    /// The caller's reference: an input the pass does not copy.
    Param(Ident),
    /// A field of the tape or workspace: `tape.h`, `tape.output.0`.
    Field(TokenStream),
    /// A view of a slot, bound to a local named after the value.
    Slot(Ident),
}

impl Place {
    /// The value as `&SMatrix`.
    fn read(&self) -> TokenStream {
        match self {
            Place::Param(name) | Place::Slot(name) => quote! { #name },
            Place::Field(field) => quote! { &#field },
        }
    }

    /// The value as `&mut SMatrix`.
    fn write(&self) -> TokenStream {
        match self {
            Place::Slot(name) => quote! { #name },
            Place::Field(field) => quote! { &mut #field },
            Place::Param(_) => unreachable!("a pass never writes its inputs"),
        }
    }
}

impl Expander<'_> {
    /// An activation's value: `::nn::activations::Relu`, `LeakyRelu { alpha: 0.2 }`.
    fn activation_value(&self, info: &ActivationInfo, params: &[f64]) -> TokenStream {
        let nn = &self.nn;
        let ty = format_ident!("{}", info.ty);
        if info.params.is_empty() {
            return quote! { #nn::activations::#ty };
        }
        let fields = info.params.iter().zip(params).map(|(&(field, _), &value)| {
            let field = format_ident!("{}", field);
            let value = Literal::f64_unsuffixed(value);
            quote! { #field: #value }
        });
        quote! { #nn::activations::#ty { #(#fields),* } }
    }

    /// The storage a pass works in: `workspace` or `tape`.
    fn storage(pass: Pass) -> Ident {
        match pass {
            Pass::Infer => local("workspace"),
            Pass::Train => local("tape"),
        }
    }

    fn placement(&self, pass: Pass) -> &Placement {
        match pass {
            Pass::Infer => &self.memory.infer,
            Pass::Train => &self.memory.train,
        }
    }

    /// `storage.output`, or `storage.output.k` for the `k`-th of several outputs.
    fn output_field(&self, storage: &Ident, id: NodeId) -> TokenStream {
        let field = &self.fields.output;
        tuple_element(quote! { #storage.#field }, &self.model.outputs, id)
    }

    /// Where node `id`'s value is during `pass` (in the backward pass: [`Pass::Train`]).
    fn value_place(&self, pass: Pass, id: NodeId) -> Place {
        let node = &self.model.nodes[id];
        let storage = Self::storage(pass);
        let name = &node.name;
        if self.model.outputs.contains(&id) {
            return Place::Field(self.output_field(&storage, id));
        }
        let saved = pass == Pass::Train && self.memory.saved[id];
        match (&node.op, saved) {
            (_, true) => Place::Field(quote! { #storage.#name }),
            (Op::Input, false) => Place::Param(name.clone()),
            (_, false) => Place::Slot(name.clone()),
        }
    }

    /// `&mut #storage.slotK` viewed as `size × B`, bound to `binding`.
    fn bind_slot(&self, storage: &Ident, slot: usize, binding: &Ident, rows: Dim) -> TokenStream {
        let nn = &self.nn;
        let slot = &self.fields.slots[slot];
        let rows = size(rows);
        quote! {
            let #binding: &mut #nn::SMatrix<T, #rows, { B }> = #nn::memory::view_mut(&mut #storage.#slot);
        }
    }

    /// The scratch argument of the layer application computing `id`: a view of its slot as
    /// a slice, the shared buffer of scratch that does not grow with the batch, or an empty
    /// slice.
    fn scratch(
        &self,
        storage: &Ident,
        slot: Option<usize>,
        node: &Node,
    ) -> (TokenStream, TokenStream) {
        let Op::Layer { layer, .. } = node.op else {
            unreachable!("only layers have scratch memory");
        };
        if self.model.layers[layer].scratch_per_call().known() != Some(0) {
            assert!(
                slot.is_none(),
                "a built-in layer has scratch per sample or per call, not both"
            );
            let call_scratch = &self.fields.call_scratch;
            return (quote! {}, quote! { #storage.#call_scratch.as_mut_slice() });
        }
        let Some(slot) = slot else {
            return (quote! {}, quote! { &mut [] });
        };
        let binding = invented(&format_ident!("{}_scratch", node.name));
        let rows = self.model.layers[layer].scratch_per_sample();
        let bind = self.bind_slot(storage, slot, &binding, rows);
        (bind, quote! { #binding.as_mut_slice() })
    }

    /// Compile-time checks that the macro's facts about the layers and activations it calls
    /// are the runtime's: each layer's scratch memory, each activation's `READS`.
    fn agreement_checks(&self) -> TokenStream {
        let nn = &self.nn;
        let mut checks = TokenStream::new();
        for (decl, code) in self.model.layers.iter().zip(&self.layers) {
            let layer = &code.as_layer;
            let scratch = size(decl.scratch_per_sample());
            let per_call = size(decl.scratch_per_call());
            let message = match decl.kind {
                LayerKind::Builtin(_) => {
                    "the network! macro and the layer disagree on its scratch memory"
                }
                LayerKind::Custom(_) => {
                    "a layer of your own gets no scratch memory: its `Layer::SCRATCH` and \
                     `Layer::SCRATCH_PER_CALL` must be 0"
                }
            };
            checks.extend(quote_spanned! {code.span=>
                const { assert!(#layer::SCRATCH == #scratch && #layer::SCRATCH_PER_CALL == #per_call, #message) };
            });
        }
        let mut seen = Vec::new();
        for node in &self.model.nodes {
            if let Op::Activation { info, .. } = &node.op
                && !seen.contains(&info.ty)
            {
                seen.push(info.ty);
                let ty = format_ident!("{}", info.ty);
                let reads = format_ident!("{}", info.reads.variant());
                checks.extend(quote! {
                    const {
                        assert!(
                            matches!(
                                <#nn::activations::#ty as #nn::Activation<T>>::READS,
                                #nn::activations::Reads::#reads
                            ),
                            "the network! macro and the activation disagree on what its backward pass reads"
                        )
                    };
                });
            }
        }
        checks
    }

    /// The body of `forward_in` (`Pass::Infer`) or `forward_train`, returning references to
    /// the outputs. The training pass copies an input the backward pass reads into the tape
    /// when the local `bool` [`COPY_INPUT`] is true; either way it reads the caller's
    /// reference.
    pub(super) fn forward_body(&self, pass: Pass) -> TokenStream {
        let model = self.model;
        let storage = Self::storage(pass);
        let placement = self.placement(pass);
        let mut body = self.agreement_checks();
        for (id, node) in model.nodes.iter().enumerate() {
            let place = self.value_place(pass, id);
            match (&node.op, &place) {
                (Op::Input, Place::Field(field)) if !model.outputs.contains(&id) => {
                    // Split over a pool's threads when large (a region's threads wait).
                    let (name, nn) = (&node.name, &self.nn);
                    let copy_input = local(COPY_INPUT);
                    body.extend(quote! {
                        if #copy_input {
                            #nn::parallel::copy(#field.as_mut_slice(), #name.as_slice());
                        }
                    });
                }
                (_, Place::Slot(binding)) => {
                    let slot = placement.value_slot[id].expect("a value in a slot has one");
                    body.extend(self.bind_slot(&storage, slot, binding, node.size()));
                }
                _ => {}
            }
            body.extend(self.forward_statement(pass, id, &place));
        }
        let outputs = model
            .outputs
            .iter()
            .map(|&id| {
                let field = self.output_field(&storage, id);
                quote! { &#field }
            })
            .collect();
        body.extend(super::returned(outputs));
        body
    }

    /// The statement computing node `id` from its parents into `out`.
    fn forward_statement(&self, pass: Pass, id: NodeId, out: &Place) -> TokenStream {
        let (model, nn) = (self.model, &self.nn);
        let node = &model.nodes[id];
        let storage = Self::storage(pass);
        // An input is read through the caller's reference, whether or not the tape keeps a
        // copy for the backward pass.
        let arg = |parent: NodeId| match model.nodes[parent].op {
            Op::Input if !model.outputs.contains(&parent) => {
                Place::Param(model.nodes[parent].name.clone()).read()
            }
            _ => self.value_place(pass, parent).read(),
        };
        if matches!(node.op, Op::Input) && !model.outputs.contains(&id) {
            return quote! {};
        }
        let out_ref = out.write();
        match &node.op {
            Op::Input if model.outputs.contains(&id) => {
                let name = &node.name;
                quote! { #out_ref.copy_from(#name); }
            }
            Op::Input => quote! {},
            Op::Layer { layer, arg: a, .. } => {
                let decl = &model.layers[*layer];
                let code = &self.layers[*layer];
                let (field, x, layer, span) = (&decl.name, arg(*a), &code.as_layer, code.span);
                let (bind, scratch) =
                    self.scratch(&storage, self.placement(pass).scratch_slot[id], node);
                match pass {
                    Pass::Infer => {
                        let state = if decl.has_state() {
                            quote! { &self.state.#field }
                        } else {
                            quote! { &() }
                        };
                        quote_spanned! {span=>
                            #bind
                            #layer::forward(&self.#field, #state, #x, #out_ref, #scratch);
                        }
                    }
                    Pass::Train => {
                        let state = if decl.has_state() {
                            quote! { &mut self.state.#field }
                        } else {
                            quote! { &mut () }
                        };
                        let cache = if decl.has_cache() {
                            let cache = cache_name(node);
                            quote! { &mut #storage.#cache }
                        } else {
                            quote! { &mut () }
                        };
                        quote_spanned! {span=>
                            #bind
                            #layer::forward_train(&self.#field, #state, #x, #out_ref, #cache, #scratch);
                        }
                    }
                }
            }
            Op::Activation {
                info,
                params,
                arg: a,
            } => {
                let activation = self.activation_value(info, params);
                let x = arg(*a);
                quote! { #nn::Activation::forward(&#activation, #x, #out_ref); }
            }
            Op::Binary { op, left, right } => {
                let (a, b) = (arg(*left), arg(*right));
                match op {
                    BinOp::Add => quote! { #nn::ops::add(#a, #b, #out_ref); },
                    BinOp::Mul => quote! { #nn::ops::mul(#a, #b, #out_ref); },
                }
            }
            Op::Flatten(a) => {
                let x = arg(*a);
                quote! { #nn::ops::copy(#x, #out_ref); }
            }
            Op::Concat(parts) => {
                let mut offset = Dim::Known(0);
                let mut copies = TokenStream::new();
                for &part in parts {
                    let part_size = model.nodes[part].size();
                    let x = arg(part);
                    let start = offset.expr();
                    copies.extend(quote! { #nn::ops::copy_rows(#x, #out_ref, #start); });
                    offset = offset.add(&part_size);
                }
                copies
            }
        }
    }

    /// The body of the `Network` trait's `backward`, or, with `params_only`, of
    /// `backward_params` (the same chain rule without the gradients no parameter needs: those
    /// of the inputs, and of nodes computed from the inputs without a layer, so a layer fed
    /// by the input skips its `∂L/∂x` product). It reads `∂L/∂output` from the tape's
    /// `d_output` and, in `backward`, leaves `∂L/∂input` in its `d_input`. With
    /// `grads_store`, the name of a local `Store`: each layer's first application in the
    /// backward order adds to its parameters' gradients or writes over them as it says (the
    /// others add); without, every layer adds. With `inputs`, the name of a local
    /// `Option<&Input>`: the inputs the pass reads are those it holds, or, for `None`, the
    /// tape's copies (see [`COPY_INPUT`]).
    pub(super) fn backward_body(
        &self,
        params_only: bool,
        grads_store: Option<&Ident>,
        inputs: Option<&Ident>,
    ) -> TokenStream {
        let model = self.model;
        let mut backward = Backward::new(self, params_only);
        if inputs.is_some() {
            backward.borrow_inputs();
        }
        let mut layer_reached = vec![false; model.layers.len()];
        let tape = Self::storage(Pass::Train);
        let mut body = TokenStream::new();
        let mut declared = vec![false; model.nodes.len()];
        for &id in &model.outputs {
            declared[id] = true;
        }
        if !params_only {
            let d_input = &self.fields.d_input;
            for &id in &model.inputs {
                if !model.outputs.contains(&id) {
                    let field = tuple_element(quote! { #tape.#d_input }, &model.inputs, id);
                    body.extend(quote! { #field.as_mut_slice().fill(T::ZERO); });
                    declared[id] = true;
                }
            }
        }
        for (id, node) in model.nodes.iter().enumerate().rev() {
            if !backward.needs[id] {
                continue;
            }
            // A node with one parent that is the first to contribute to its parent's gradient
            // (the slot is declared here) overwrites it: no zeroing pass before it.
            let overwrites = matches!(
                node.op,
                Op::Activation { .. } | Op::Layer { .. } | Op::Flatten(_)
            );
            let mut overwrite = false;
            for parent in node.op.parents() {
                if backward.needs[parent] && !declared[parent] {
                    declared[parent] = true;
                    let slot = self.memory.train.grad_slot[parent]
                        .expect("a gradient that is not an input's or an output's has a slot");
                    let d = backward.grad_binding(parent);
                    body.extend(self.bind_slot(&tape, slot, &d, model.nodes[parent].size()));
                    if overwrites {
                        overwrite = true;
                    } else {
                        body.extend(quote! { #d.as_mut_slice().fill(T::ZERO); });
                    }
                }
            }
            // The store of the layer's parameters' gradients: `grads_store` where the layer is
            // reached first.
            let mut layer_grads_store = None;
            if let Op::Layer { layer, .. } = node.op
                && !std::mem::replace(&mut layer_reached[layer], true)
            {
                layer_grads_store = grads_store;
            }
            body.extend(backward.statement(id, overwrite, layer_grads_store));
        }
        let mut start = self.agreement_checks();
        if let Some(inputs) = inputs {
            start.extend(self.bind_inputs(inputs, &backward));
        }
        start.extend(body);
        start
    }
}

impl Expander<'_> {
    /// For each input the backward pass has read through a local (`Backward::borrowed`), the
    /// local, named after it: the caller's input from the `Option<&Input>` named `inputs`, or
    /// the tape's copy. (`let _ = inputs;` when it reads none: a pass of the parameters'
    /// gradients may need no input, and the caller's code must compile without warnings.)
    fn bind_inputs(&self, inputs: &Ident, backward: &Backward<'_, '_>) -> TokenStream {
        let model = self.model;
        let given = local("given");
        let mut bindings = TokenStream::new();
        let read = backward.read.borrow();
        for &id in &model.inputs {
            if !read[id] {
                continue;
            }
            let Place::Field(field) = self.value_place(Pass::Train, id) else {
                unreachable!("a borrowed input is saved by the forward pass");
            };
            let node = &model.nodes[id];
            let (name, matrix) = (&node.name, self.matrix(node));
            let element = if model.inputs.len() == 1 {
                quote! { #given }
            } else {
                let element = tuple_element(quote! { #given }, &model.inputs, id);
                quote! { &#element }
            };
            bindings.extend(quote! {
                let #name: &#matrix = match #inputs {
                    ::core::option::Option::Some(#given) => #element,
                    ::core::option::Option::None => &#field,
                };
            });
        }
        if bindings.is_empty() {
            bindings.extend(quote! { let _ = #inputs; });
        }
        bindings
    }
}

/// `base`, or `base.k` where `id` is the `k`-th of several `ids`.
fn tuple_element(base: TokenStream, ids: &[NodeId], id: NodeId) -> TokenStream {
    if ids.len() == 1 {
        return base;
    }
    let k = syn::Index::from(ids.iter().position(|&i| i == id).expect("one of the ids"));
    quote! { #base.#k }
}

/// What a backward body needs to know of each node.
struct Backward<'e, 'a> {
    expander: &'e Expander<'a>,
    /// Whether a node's gradient is wanted: always for `backward`; for `backward_params`,
    /// when a layer's parameters are upstream of the node.
    needs: Vec<bool>,
    /// Whether an input is read through a local of its name (`Expander::bind_inputs`)
    /// rather than from the tape.
    borrowed: Vec<bool>,
    /// Which of those the statements generated so far read (only they get a local).
    read: RefCell<Vec<bool>>,
}

impl<'e, 'a> Backward<'e, 'a> {
    fn new(expander: &'e Expander<'a>, params_only: bool) -> Self {
        let model = expander.model;
        let mut after_layer = vec![false; model.nodes.len()];
        for (id, node) in model.nodes.iter().enumerate() {
            after_layer[id] = matches!(node.op, Op::Layer { .. })
                || node.op.parents().iter().any(|&p| after_layer[p]);
        }
        let needs = after_layer.into_iter().map(|a| a || !params_only).collect();
        Backward {
            expander,
            needs,
            borrowed: vec![false; model.nodes.len()],
            read: RefCell::new(vec![false; model.nodes.len()]),
        }
    }

    /// Reads the inputs saved by the forward pass through locals named after them, not
    /// from the tape (the pass is given the inputs: `Expander::bind_inputs`).
    fn borrow_inputs(&mut self) {
        let model = self.expander.model;
        for &id in &model.inputs {
            let saved = matches!(self.expander.value_place(Pass::Train, id), Place::Field(_));
            self.borrowed[id] = saved && !model.outputs.contains(&id);
        }
    }

    /// `d_<node>`, the local bound to a gradient's slot.
    fn grad_binding(&self, id: NodeId) -> Ident {
        invented(&format_ident!("d_{}", self.expander.model.nodes[id].name))
    }

    /// Where node `id`'s gradient is: the tape's `d_output` for an output, its `d_input` for
    /// an input, else a slot.
    fn grad_place(&self, id: NodeId) -> Place {
        let model = self.expander.model;
        let tape = Expander::storage(Pass::Train);
        let fields = &self.expander.fields;
        if model.outputs.contains(&id) {
            let d_output = &fields.d_output;
            return Place::Field(tuple_element(
                quote! { #tape.#d_output },
                &model.outputs,
                id,
            ));
        }
        if matches!(model.nodes[id].op, Op::Input) {
            let d_input = &fields.d_input;
            return Place::Field(tuple_element(quote! { #tape.#d_input }, &model.inputs, id));
        }
        Place::Slot(self.grad_binding(id))
    }

    /// A value the backward pass reads: saved by the forward pass.
    fn value(&self, id: NodeId) -> TokenStream {
        if self.borrowed[id] {
            self.read.borrow_mut()[id] = true;
            return Place::Param(self.expander.model.nodes[id].name.clone()).read();
        }
        self.expander.value_place(Pass::Train, id).read()
    }

    /// The statement adding node `id`'s contribution to its parents' gradients (and, for a
    /// layer, to its parameters' gradients); with `overwrite`, the statement of an
    /// activation, a layer or a flatten writing it (its input's gradient was not zeroed). A
    /// layer stores its parameters' gradients as the local `Store` named `grads_store` says,
    /// or adds to them.
    fn statement(&self, id: NodeId, overwrite: bool, grads_store: Option<&Ident>) -> TokenStream {
        let (model, nn) = (self.expander.model, &self.expander.nn);
        let node = &model.nodes[id];
        let needs = &self.needs;
        let d_out = self.grad_place(id).read();
        let d = |parent: NodeId| self.grad_place(parent).write();
        match &node.op {
            Op::Input => quote! {},
            Op::Layer { layer, arg, .. } => {
                let decl = &model.layers[*layer];
                let code = &self.expander.layers[*layer];
                let (field, layer, span) = (&decl.name, &code.as_layer, code.span);
                let x = self.value(*arg);
                let tape = Expander::storage(Pass::Train);
                let cache = if decl.has_cache() {
                    let cache = cache_name(node);
                    quote! { &#tape.#cache }
                } else {
                    quote! { &() }
                };
                let slot = self.expander.memory.train.backward_scratch_slot[id];
                let (bind, scratch) = self.expander.scratch(&tape, slot, node);
                let grads = local("grads");
                let d_x = if needs[*arg] {
                    let d_x = d(*arg);
                    quote! { Some(#d_x) }
                } else {
                    quote! { None }
                };
                if !overwrite && grads_store.is_none() {
                    return quote_spanned! {span=>
                        #bind
                        #layer::backward(&self.#field, #x, #cache, #d_out, #d_x, &mut #grads.#field, #scratch);
                    };
                }
                let dx_store = if overwrite {
                    quote! { #nn::Store::Overwrite }
                } else {
                    quote! { #nn::Store::Add }
                };
                let grads_store = match grads_store {
                    Some(store) => quote! { #store },
                    None => quote! { #nn::Store::Add },
                };
                quote_spanned! {span=>
                    #bind
                    #layer::backward_with(&self.#field, #x, #cache, #d_out, #d_x, #dx_store, &mut #grads.#field, #grads_store, #scratch);
                }
            }
            Op::Activation { info, params, arg } if needs[*arg] => {
                let activation = self.expander.activation_value(info, params);
                let value = match info.reads {
                    Reads::Input => self.value(*arg),
                    Reads::Output => self.value(id),
                    Reads::Nothing => d_out.clone(),
                };
                let d_x = d(*arg);
                if overwrite {
                    quote! { #nn::Activation::backward_overwrite(&#activation, #value, #d_out, #d_x); }
                } else {
                    quote! { #nn::Activation::backward(&#activation, #value, #d_out, #d_x); }
                }
            }
            Op::Activation { .. } => quote! {},
            Op::Binary {
                op: BinOp::Add,
                left,
                right,
            } => {
                let mut statements = TokenStream::new();
                for part in [*left, *right].into_iter().filter(|&p| needs[p]) {
                    let d_part = d(part);
                    statements.extend(quote! { #nn::ops::acc(#d_out, #d_part); });
                }
                statements
            }
            Op::Binary {
                op: BinOp::Mul,
                left,
                right,
            } => {
                let mut statements = TokenStream::new();
                for (part, other) in [(*left, *right), (*right, *left)] {
                    if needs[part] {
                        let (d_part, other) = (d(part), self.value(other));
                        statements.extend(quote! { #nn::ops::mul_acc(#d_out, #other, #d_part); });
                    }
                }
                statements
            }
            Op::Flatten(a) if needs[*a] => {
                let d_x = d(*a);
                if overwrite {
                    quote! { #nn::ops::acc_overwrite(#d_out, #d_x); }
                } else {
                    quote! { #nn::ops::acc(#d_out, #d_x); }
                }
            }
            Op::Flatten(_) => quote! {},
            Op::Concat(parts) => {
                let mut offset = Dim::Known(0);
                let mut slices = TokenStream::new();
                for &part in parts {
                    let part_size = model.nodes[part].size();
                    if needs[part] {
                        let (d_part, start) = (d(part), offset.expr());
                        slices.extend(quote! { #nn::ops::acc_rows(#d_out, #d_part, #start); });
                    }
                    offset = offset.add(&part_size);
                }
                slices
            }
        }
    }
}

/// The names of the tape's and workspace's own fields, chosen apart from the nodes' names.
impl Fields {
    pub(super) fn new(model: &crate::model::Model, slots: usize) -> Self {
        let mut taken: Vec<String> = model.nodes.iter().map(|n| n.name.to_string()).collect();
        taken.extend(model.nodes.iter().map(|n| cache_name(n).to_string()));
        let mut fresh = |base: &str| {
            let mut name = base.to_string();
            let mut k = 2;
            while taken.contains(&name) {
                name = format!("{base}_{k}");
                k += 1;
            }
            taken.push(name.clone());
            format_ident!("{}", name)
        };
        let output = fresh("output");
        let d_output = fresh("d_output");
        let d_input = fresh("d_input");
        let slots = (0..slots).map(|k| fresh(&format!("slot{k}"))).collect();
        let call_scratch = fresh("scratch");
        Fields {
            output,
            d_output,
            d_input,
            slots,
            call_scratch,
        }
    }
}
