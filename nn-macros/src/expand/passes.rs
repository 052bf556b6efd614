//! The bodies of the passes: `forward` and `forward_train` (one statement per node, in
//! order), `backward` and `backward_params` (one per node, in reverse order, each adding its
//! contribution into its parents' gradients).

use super::{Expander, cache_name, invented, local, returned, size};
use crate::builtins::ActivationInfo;
use crate::model::{BinOp, Node, NodeId, Op};
use crate::shape::Dim;
use proc_macro2::{Literal, TokenStream};
use quote::{ToTokens, format_ident, quote, quote_spanned};

#[derive(Clone, Copy, PartialEq)]
pub(super) enum Mode {
    /// Node values are locals (`h`), inputs are the `&` parameters.
    Infer,
    /// Node values live in the tape (`tape.h`).
    Train,
}

/// Where a node's value is, as a place expression.
fn place(node: &Node, mode: Mode) -> TokenStream {
    let name = &node.name;
    match mode {
        Mode::Infer => quote! { #name },
        Mode::Train => {
            let tape = local("tape");
            quote! { #tape.#name }
        }
    }
}

/// A `&` reference to a node's value.
fn value_ref(node: &Node, mode: Mode) -> TokenStream {
    if mode == Mode::Infer && matches!(node.op, Op::Input) {
        let name = &node.name;
        return quote! { #name };
    }
    let place = place(node, mode);
    quote! { &#place }
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

    /// The body of `forward` (`Mode::Infer`) or `forward_train`.
    pub(super) fn forward_body(&self, mode: Mode) -> TokenStream {
        let model = self.model;
        let mut body = TokenStream::new();
        for node in &model.nodes {
            match mode {
                Mode::Infer if !matches!(node.op, Op::Input) => {
                    let name = &node.name;
                    let ty = self.matrix(node);
                    body.extend(quote! { let mut #name = <#ty>::zeros(); });
                }
                Mode::Train if matches!(node.op, Op::Input) => {
                    let (name, tape) = (&node.name, local("tape"));
                    body.extend(quote! { #tape.#name.copy_from(#name); });
                }
                _ => {}
            }
            body.extend(self.forward_statement(node, mode));
        }
        let outputs = model
            .outputs
            .iter()
            .map(|&id| {
                let node = &model.nodes[id];
                match (mode, &node.op) {
                    (Mode::Infer, Op::Input) => {
                        let name = &node.name;
                        quote! { *#name }
                    }
                    _ => place(node, mode),
                }
            })
            .collect();
        body.extend(returned(outputs));
        body
    }

    /// The statement computing `node` from its parents.
    fn forward_statement(&self, node: &Node, mode: Mode) -> TokenStream {
        let (model, nn) = (self.model, &self.nn);
        let tape = local("tape");
        let out = place(node, mode);
        let arg = |id: NodeId| value_ref(&model.nodes[id], mode);
        match &node.op {
            Op::Input => quote! {},
            Op::Layer { layer, arg: a, .. } => {
                let decl = &model.layers[*layer];
                let code = &self.layers[*layer];
                let (field, x, layer, span) = (&decl.name, arg(*a), &code.as_layer, code.span);
                match (mode, decl.has_state()) {
                    (Mode::Infer, false) => quote_spanned! {span=>
                        #layer::forward(&self.#field, &(), #x, &mut #out);
                    },
                    (Mode::Infer, true) => quote_spanned! {span=>
                        #layer::forward(&self.#field, &self.state.#field, #x, &mut #out);
                    },
                    (Mode::Train, stateful) => {
                        let state = if stateful {
                            quote! { &mut self.state.#field }
                        } else {
                            quote! { &mut () }
                        };
                        let cache = if decl.has_cache() {
                            let cache = cache_name(node);
                            quote! { &mut #tape.#cache }
                        } else {
                            quote! { &mut () }
                        };
                        quote_spanned! {span=>
                            #layer::forward_train(&self.#field, #state, #x, &mut #out, #cache);
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
                quote! { #nn::Activation::forward(&#activation, #x, &mut #out); }
            }
            Op::Binary { op, left, right } => {
                let (a, b) = (arg(*left), arg(*right));
                match op {
                    BinOp::Add => quote! { #nn::ops::add(#a, #b, &mut #out); },
                    BinOp::Mul => quote! { #nn::ops::mul(#a, #b, &mut #out); },
                }
            }
            Op::Flatten(a) => {
                let x = arg(*a);
                quote! { #out.copy_from(#x); }
            }
            Op::Concat(parts) => {
                let mut offset = Dim::Known(0);
                let mut copies = TokenStream::new();
                for &part in parts {
                    let part_size = model.nodes[part].size();
                    let (rows, start) = (size(&part_size), offset.expr());
                    let x = arg(part);
                    copies.extend(quote! { #out.fixed_rows_mut::<#rows>(#start).copy_from(#x); });
                    offset = offset.add(&part_size);
                }
                copies
            }
        }
    }

    /// The body of `backward`, or, with `params_only`, of `backward_params`: the same chain
    /// rule without the gradients no parameter needs (those of the inputs, and of nodes
    /// computed from the inputs without a layer), so a layer fed by the input skips its
    /// `∂L/∂x` product.
    pub(super) fn backward_body(&self, params_only: bool) -> TokenStream {
        let model = self.model;
        let backward = Backward::new(self, params_only);
        let mut body = TokenStream::new();
        let mut declared = vec![false; model.nodes.len()];
        for &id in &model.outputs {
            declared[id] = true;
            let d = backward.grad(id);
            if !backward.needs[id] {
                body.extend(quote! { let _ = #d; });
            } else if backward.has_children[id] {
                body.extend(quote! { let mut #d = *#d; });
            }
        }
        for (id, node) in model.nodes.iter().enumerate().rev() {
            if !backward.needs[id] {
                continue;
            }
            for parent in node.op.parents() {
                if backward.needs[parent] && !declared[parent] {
                    declared[parent] = true;
                    let d = backward.grad(parent);
                    let ty = self.matrix(&model.nodes[parent]);
                    body.extend(quote! { let mut #d = <#ty>::zeros(); });
                }
            }
            body.extend(backward.statement(id));
        }
        if params_only {
            return body;
        }
        // An input returned as an output with no other use still has a borrowed gradient.
        let d_inputs = model.inputs.iter().map(|&id| {
            let d = backward.grad(id);
            if backward.borrowed(id) {
                quote! { *#d }
            } else {
                d.into_token_stream()
            }
        });
        body.extend(returned(d_inputs.collect()));
        body
    }
}

/// What a backward body needs to know of each node.
struct Backward<'e, 'a> {
    expander: &'e Expander<'a>,
    /// Whether a node's gradient is wanted: always for `backward`; for `backward_params`,
    /// when a layer's parameters are upstream of the node.
    needs: Vec<bool>,
    /// Whether a node feeds another.
    has_children: Vec<bool>,
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
        let mut has_children = vec![false; model.nodes.len()];
        for node in &model.nodes {
            for parent in node.op.parents() {
                has_children[parent] = true;
            }
        }
        Backward {
            expander,
            needs,
            has_children,
        }
    }

    /// `d_<node>`.
    fn grad(&self, id: NodeId) -> syn::Ident {
        invented(&format_ident!("d_{}", self.expander.model.nodes[id].name))
    }

    /// `&tape.<node>`.
    fn value(&self, id: NodeId) -> TokenStream {
        let (name, tape) = (&self.expander.model.nodes[id].name, local("tape"));
        quote! { &#tape.#name }
    }

    /// An output's gradient is the upstream `d_<output>` parameter, a reference; it is
    /// copied into a local only when the output also feeds other nodes, whose gradients add
    /// to it.
    fn borrowed(&self, id: NodeId) -> bool {
        self.expander.model.outputs.contains(&id) && !self.has_children[id]
    }

    fn grad_ref(&self, id: NodeId) -> TokenStream {
        let d = self.grad(id);
        if self.borrowed(id) {
            quote! { #d }
        } else {
            quote! { &#d }
        }
    }

    /// The statement adding node `id`'s contribution to its parents' gradients (and, for a
    /// layer, to its parameters' gradients).
    fn statement(&self, id: NodeId) -> TokenStream {
        let (model, nn) = (self.expander.model, &self.expander.nn);
        let node = &model.nodes[id];
        let needs = &self.needs;
        let (tape, grads) = (local("tape"), local("grads"));
        let d_out = self.grad_ref(id);
        match &node.op {
            Op::Input => quote! {},
            Op::Layer { layer, arg, .. } => {
                let decl = &model.layers[*layer];
                let code = &self.expander.layers[*layer];
                let (field, layer, span) = (&decl.name, &code.as_layer, code.span);
                let (x, y, d_x) = (self.value(*arg), self.value(id), self.grad(*arg));
                let cache = if decl.has_cache() {
                    let cache = cache_name(node);
                    quote! { &#tape.#cache }
                } else {
                    quote! { &() }
                };
                if needs[*arg] {
                    quote_spanned! {span=>
                        #layer::backward(&self.#field, #x, #y, #cache, #d_out, &mut #d_x, &mut #grads.#field);
                    }
                } else {
                    quote_spanned! {span=>
                        #layer::backward_params(&self.#field, #x, #y, #cache, #d_out, &mut #grads.#field);
                    }
                }
            }
            Op::Activation { info, params, arg } if needs[*arg] => {
                let activation = self.expander.activation_value(info, params);
                let (x, y, d_x) = (self.value(*arg), self.value(id), self.grad(*arg));
                quote! { #nn::Activation::backward(&#activation, #x, #y, #d_out, &mut #d_x); }
            }
            Op::Activation { .. } => quote! {},
            Op::Binary {
                op: BinOp::Add,
                left,
                right,
            } => {
                let mut statements = TokenStream::new();
                for part in [*left, *right].into_iter().filter(|&p| needs[p]) {
                    let d_part = self.grad(part);
                    statements.extend(quote! { #d_part += #d_out; });
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
                        let (d_part, other) = (self.grad(part), self.value(other));
                        statements
                            .extend(quote! { #nn::ops::mul_acc(#d_out, #other, &mut #d_part); });
                    }
                }
                statements
            }
            Op::Flatten(a) if needs[*a] => {
                let d_x = self.grad(*a);
                quote! { #d_x += #d_out; }
            }
            Op::Flatten(_) => quote! {},
            Op::Concat(parts) => {
                let mut offset = Dim::Known(0);
                let mut slices = TokenStream::new();
                for &part in parts {
                    let part_size = model.nodes[part].size();
                    let (rows, start) = (size(&part_size), offset.expr());
                    if needs[part] {
                        let d_part = self.grad(part);
                        slices.extend(quote! { #d_part += #d_out.fixed_rows::<#rows>(#start); });
                    }
                    offset = offset.add(&part_size);
                }
                slices
            }
        }
    }
}
