//! The checker: builds the [`Model`] from the syntax tree, resolving names, inferring every
//! shape and checking every rule. Errors are collected, each spanned on the token the user
//! must change, and an error's consequences are not reported again (a layer whose
//! declaration failed is not "unknown" at its calls; a node whose value is unknowable gives
//! no further messages).
//!
//! One file per part: this one walks the two forms of a network (sequential, or a struct of
//! layers and a `forward` block) and names the nodes; [`layers`] declares and applies
//! layers; [`expressions`] lowers the expressions of a `forward` block.

mod attributes;
mod expressions;
mod layers;

use super::{BinOp, LayerDecl, Model, Node, NodeId, Op};
use crate::builtins;
use crate::diagnostics::{Errors, closest, unknown};
use crate::parse::{Arg, Call, Entry, Forward, NetworkDef, ShapeSpec, Size};
use crate::shape::{Check, Relation, Shape};
use proc_macro2::Span;
use quote::{ToTokens, quote};
use std::collections::{HashMap, HashSet};
use syn::Ident;

/// Builds and checks the model.
pub fn build(def: NetworkDef) -> Result<Model, syn::Error> {
    let mut builder = Builder {
        errors: Errors::default(),
        layers: Vec::new(),
        nodes: Vec::new(),
        bindings: HashMap::new(),
        used: HashSet::new(),
        mentioned_layers: HashSet::new(),
        failed_layers: HashSet::new(),
        checks: Vec::new(),
    };
    let (inputs, outputs) = match &def.forward {
        Some(forward) => builder.graph(&def, forward),
        None => builder.sequential(&def),
    };
    builder.check_layers_used();
    builder.choose_default_inits();
    builder.name_intermediate_nodes();
    builder.check_cache_fields();
    let attrs = builder.user_attributes(&def.attrs);
    builder.errors.into_result()?;
    let mut model = Model {
        attrs,
        vis: def.vis,
        name: def.name,
        layers: builder.layers.into_iter().map(|l| l.decl).collect(),
        nodes: builder.nodes,
        inputs,
        outputs,
        checks: builder.checks,
        int8: None,
    };
    if let Some(at) = def.int8 {
        model.int8 = Some(super::int8::plan(&model, at)?);
    }
    Ok(model)
}

struct Builder {
    errors: Errors,
    layers: Vec<Declared>,
    nodes: Vec<Node>,
    /// Names in scope: inputs and `let`s, to their nodes.
    bindings: HashMap<String, NodeId>,
    /// Names read by some expression or returned as outputs.
    used: HashSet<String>,
    /// Layers whose name appears in the `forward` block (or in a sequential network): the
    /// "never used" check must not fire on a layer whose call had another error.
    mentioned_layers: HashSet<String>,
    /// Layers whose declaration had an error: calls to them are not errors again.
    failed_layers: HashSet<String>,
    /// The rules left to rustc (a size is a constant).
    checks: Vec<Check>,
}

/// A node under construction: `None` once an error made its value unknowable (no further
/// errors are reported about it, so one mistake gives one message).
type Lowered = Option<NodeId>;

/// A layer as the checker keeps it: the model's declaration, and what the checks need.
struct Declared {
    decl: LayerDecl,
    /// The node it was first applied to, for messages; `None` until it is applied.
    first_use: Option<NodeId>,
    /// Whether `#[init(..)]` chose its scheme.
    init_stated: bool,
}

impl Builder {
    /// The sequential form: `input: [N]`, then layers and activations in order.
    fn sequential(&mut self, def: &NetworkDef) -> (Vec<NodeId>, Vec<NodeId>) {
        let mut entries = def.entries.iter();
        let Some(Entry::Input { name, shape }) = entries.next() else {
            let hint = "a sequential network starts with its input shape, e.g. `input: [2],` \
                        (or add a `forward(x: [2]) -> y { ... }` block after the struct)";
            match def.entries.first() {
                Some(Entry::Layer { name, .. }) => self.errors.spanned(name, hint),
                Some(Entry::Activation(call)) => self.errors.spanned(&call.tokens, hint),
                _ => self.errors.spanned(&def.name, hint),
            }
            return (Vec::new(), Vec::new());
        };
        let input = self.input(name, shape);
        let mut current: Lowered = input;
        for entry in entries {
            match entry {
                Entry::Input { name, .. } => self.errors.spanned(
                    name,
                    "a sequential network has one input, declared first; for several inputs \
                     write a `forward(a: [..], b: [..]) -> y { ... }` block",
                ),
                Entry::Layer { attrs, name, spec } => {
                    self.mentioned_layers.insert(name.to_string());
                    let layer = self.declare_layer(attrs, name, spec);
                    current = match (layer, current) {
                        (Some(layer), Some(arg)) => {
                            let label = format!("{name}({})", self.nodes[arg].label);
                            self.apply_layer(layer, arg, Some(name.clone()), label, name)
                        }
                        _ => None,
                    };
                }
                Entry::Activation(call) => {
                    current = self.sequential_activation(call, current);
                }
            }
        }
        if !def.entries.iter().any(|e| matches!(e, Entry::Layer { .. })) {
            self.errors.spanned(
                &def.name,
                "this network has no layers: list them after the input, e.g. \
                 `out: Dense<1>, Sigmoid`",
            );
        }
        if let Some(id) = current {
            self.used.insert(self.nodes[id].name.to_string());
        }
        (input.into_iter().collect(), current.into_iter().collect())
    }

    fn sequential_activation(&mut self, call: &Call, current: Lowered) -> Lowered {
        let name = call.func.to_string();
        if name == "Flatten" {
            if let Some(extra) = call.args.first() {
                let tokens = match extra {
                    Arg::Number { tokens, .. } => tokens.clone(),
                    Arg::Expr(expr) => expr.tokens(),
                };
                self.errors.spanned(tokens, "`Flatten` takes no arguments");
                return None;
            }
            let arg = current?;
            let node_name = format!("{}_flat", self.nodes[arg].name);
            let label = format!("flatten({})", self.nodes[arg].label);
            return self.apply_flatten(arg, Some(invented(&node_name, call.func.span())), label);
        }
        let Some(info) = builtins::activation_by_sequential_name(&name) else {
            let message = if let Some(info) = builtins::activation_by_func(&name) {
                format!(
                    "in a sequential network activations are written `{}`",
                    info.sequential[0]
                )
            } else if crate::layers::builtin(&name).is_some() {
                format!("a `{name}` layer needs a name: `my_layer: {name}<..>`")
            } else {
                let names = builtins::ACTIVATIONS
                    .iter()
                    .flat_map(|a| a.sequential.iter().copied());
                unknown("activation", &name, closest(&name, names))
            };
            self.errors.spanned(&call.func, message);
            return None;
        };
        let params = self.activation_params(info, &call.func, &call.args)?;
        let arg = current?;
        let node_name = format!("{}_{}", self.nodes[arg].name, info.func);
        let label = format!("{}({})", info.func, self.nodes[arg].label);
        self.apply_activation(
            info,
            params,
            arg,
            Some(invented(&node_name, call.func.span())),
            label,
            &call.tokens,
        )
    }

    /// The graph form: layers in the struct, then a `forward` block.
    fn graph(&mut self, def: &NetworkDef, forward: &Forward) -> (Vec<NodeId>, Vec<NodeId>) {
        let mut layer_index = HashMap::new();
        for entry in &def.entries {
            match entry {
                Entry::Layer { attrs, name, spec } => {
                    if let Some(layer) = self.declare_layer(attrs, name, spec) {
                        layer_index.insert(name.to_string(), layer);
                    }
                }
                Entry::Input { name, .. } => self.errors.spanned(
                    name,
                    "with a `forward` block, inputs are declared there: \
                     `forward(x: [..]) -> y { ... }`; the struct lists only layers",
                ),
                Entry::Activation(call) => self.errors.spanned(
                    &call.func,
                    "with a `forward` block, the struct lists only layers; apply activations \
                     in the block, e.g. `let h = relu(fc1(x));`",
                ),
            }
        }
        if forward.inputs.is_empty() {
            self.errors.spanned(
                &forward.keyword,
                "a network needs at least one input: `forward(x: [16])`",
            );
        }
        let mut inputs = Vec::new();
        for (name, shape) in &forward.inputs {
            if self.check_new_name(name) {
                inputs.extend(self.input(name, shape));
            }
        }
        let statement_index: HashMap<String, usize> = forward
            .statements
            .iter()
            .enumerate()
            .map(|(i, (name, _))| (name.to_string(), i))
            .collect();
        let mut scope = Scope {
            layers: &layer_index,
            statements: &statement_index,
            current: 0,
        };
        for (i, (name, expr)) in forward.statements.iter().enumerate() {
            scope.current = i;
            let node = self.lower(expr, Some(name), &scope);
            if self.check_new_name(name)
                && let Some(node) = node
            {
                self.bindings.insert(name.to_string(), node);
            }
        }
        let mut outputs = Vec::new();
        if forward.outputs.is_empty() {
            self.errors.spanned(
                &forward.keyword,
                "a network needs at least one output: `-> y`",
            );
        }
        for (name, declared) in &forward.outputs {
            let Some(&node) = self.bindings.get(&name.to_string()) else {
                if !statement_index.contains_key(&name.to_string()) {
                    let text = name.to_string();
                    let hint = closest(&text, self.bindings.keys().map(String::as_str));
                    let message = match hint {
                        Some(hint) => {
                            let hint = hint.to_string();
                            self.used.insert(hint.clone());
                            format!("cannot find node `{text}` to return; did you mean `{hint}`?")
                        }
                        None => format!(
                            "cannot find node `{text}` to return: define it with \
                             `let {text} = ...;`"
                        ),
                    };
                    self.errors.spanned(name, message);
                }
                continue;
            };
            self.used.insert(name.to_string());
            if outputs.contains(&node) {
                self.errors
                    .spanned(name, format!("`{name}` is returned twice"));
            }
            if let Some(declared) = declared {
                let dims = Shape::new(declared.dims.iter().map(|d| d.value.clone()).collect());
                let computed = &self.nodes[node].shape;
                let message = format!("output `{name}` is declared {dims} but computes {computed}");
                let computed = computed.clone();
                // The brackets, as the span of the declared shape.
                let at = quote::quote_spanned!(declared.span=> [_]);
                self.require_equal_shapes(&dims, &computed, message, at);
            }
            outputs.push(node);
        }
        let names = forward.inputs.iter().map(|(n, _)| n);
        for name in names.chain(forward.statements.iter().map(|(n, _)| n)) {
            if self.bindings.contains_key(&name.to_string())
                && !self.used.contains(&name.to_string())
            {
                self.errors.spanned(
                    name,
                    format!("node `{name}` is never used: use it, return it, or remove it"),
                );
            }
        }
        // Last, and alone: a network without layers does not compile (its struct would have
        // no field of the scalar type), but another mistake is the one to show first.
        if self.errors.is_empty() && !def.entries.iter().any(|e| matches!(e, Entry::Layer { .. })) {
            self.errors.spanned(
                &def.name,
                "this network has no layers: declare them in the struct, e.g. \
                 `fc: Dense<10>,`, and apply them in the `forward` block, `fc(x)`",
            );
        }
        (inputs, outputs)
    }

    /// Creates an input node.
    fn input(&mut self, name: &Ident, shape: &ShapeSpec) -> Lowered {
        let dims = self.check_shape(shape)?;
        let id = self.push(Some(name.clone()), Op::Input, dims, name.to_string());
        self.nodes[id].span = shape.span;
        self.bindings.insert(name.to_string(), id);
        Some(id)
    }

    fn check_shape(&mut self, shape: &ShapeSpec) -> Option<Shape> {
        let mut ok = true;
        for dim in &shape.dims {
            ok &= self.check_size(dim);
        }
        ok.then(|| Shape::new(shape.dims.iter().map(|d| d.value.clone()).collect()))
    }

    /// A rule that two shapes of the same rank are equal: reported (on `at`) if the macro
    /// knows they differ, a const assertion with the same message if it cannot tell. False if
    /// they are known to differ.
    fn require_equal_shapes(
        &mut self,
        a: &Shape,
        b: &Shape,
        message: String,
        at: impl ToTokens,
    ) -> bool {
        match a.relation(b) {
            Relation::Equal => true,
            Relation::Different => {
                self.errors.spanned(at, message);
                false
            }
            Relation::Unknown => {
                self.checks
                    .push(Check::new(a.equal_condition(b), message, at));
                true
            }
        }
    }

    /// Reports a size of 0, or has rustc check a constant's.
    fn check_size(&mut self, size: &Size) -> bool {
        const MESSAGE: &str = "a size must be at least 1";
        match size.value.known() {
            Some(0) => {
                self.errors.spanned(&size.tokens, MESSAGE);
                false
            }
            Some(_) => true,
            None => {
                let value = size.value.expr();
                let check = Check::new(quote!(#value >= 1), MESSAGE.to_string(), &size.tokens);
                self.checks.push(check);
                true
            }
        }
    }

    /// Reports a name already taken by a layer, input or node; true if the name is new.
    fn check_new_name(&mut self, name: &Ident) -> bool {
        let text = name.to_string();
        if text == "T" || text == "B" || text == "state" {
            let what = if text == "state" {
                "the network's field for its layers' state"
            } else {
                "the scalar type and the batch size"
            };
            self.errors.spanned(
                name,
                format!("`{text}` is reserved ({what}); choose another name"),
            );
            return false;
        }
        let taken =
            self.bindings.contains_key(&text) || self.layers.iter().any(|l| l.decl.name == text);
        if taken {
            self.errors.spanned(
                name,
                format!("the name `{name}` is already used; choose another"),
            );
        }
        !taken
    }

    /// Adds a node. Unnamed nodes get a placeholder name until `name_intermediate_nodes`.
    fn push(&mut self, name: Option<Ident>, op: Op, shape: Shape, expr: String) -> NodeId {
        let label = name.as_ref().map_or_else(|| expr.clone(), Ident::to_string);
        let name = name.unwrap_or_else(|| Ident::new("_", Span::call_site()));
        self.nodes.push(Node {
            name,
            op,
            shape,
            label,
            expr,
            span: Span::call_site(),
        });
        self.nodes.len() - 1
    }

    fn check_layers_used(&mut self) {
        for Declared { decl: layer, .. } in &self.layers {
            if !self.mentioned_layers.contains(&layer.name.to_string()) {
                self.errors.spanned(
                    &layer.name,
                    format!(
                        "layer `{}` is never used: apply it in `forward`, or remove it",
                        layer.name
                    ),
                );
            }
        }
    }

    /// Names the nodes the user did not name after what computes them (`fc1_out`,
    /// `relu_out`, `sum`, `product`, `cat`), avoiding every name in use.
    fn name_intermediate_nodes(&mut self) {
        let mut taken: HashSet<String> = self.nodes.iter().map(|n| n.name.to_string()).collect();
        taken.extend(self.layers.iter().map(|l| l.decl.name.to_string()));
        for i in 0..self.nodes.len() {
            if self.nodes[i].name != "_" {
                continue;
            }
            let base = match &self.nodes[i].op {
                Op::Layer { layer, .. } => format!("{}_out", self.layers[*layer].decl.name),
                Op::Activation { info, .. } => format!("{}_out", info.func),
                Op::Binary { op: BinOp::Add, .. } => "sum".to_string(),
                Op::Binary { op: BinOp::Mul, .. } => "product".to_string(),
                Op::Concat(_) => "cat".to_string(),
                Op::Flatten(_) => "flat".to_string(),
                Op::Input => unreachable!("inputs are always named"),
            };
            let mut name = base.clone();
            let mut k = 2;
            let cached = self.has_cache(i);
            while taken.contains(&name) || (cached && taken.contains(&format!("{name}_cache"))) {
                name = format!("{base}_{k}");
                k += 1;
            }
            taken.insert(name.clone());
            self.nodes[i].name = invented(&name, Span::call_site());
        }
    }

    /// Whether node `i` is a layer's application with a cache, kept in the tape's field
    /// `<node>_cache`.
    fn has_cache(&self, i: NodeId) -> bool {
        match self.nodes[i].op {
            Op::Layer { layer, .. } => self.layers[layer].decl.has_cache(),
            _ => false,
        }
    }

    /// Reports a node named like the tape's field for another node's cache (`h_cache`).
    fn check_cache_fields(&mut self) {
        for i in 0..self.nodes.len() {
            if !self.has_cache(i) {
                continue;
            }
            let field = format!("{}_cache", self.nodes[i].name);
            if let Some(node) = self.nodes.iter().find(|n| n.name == field) {
                let message = format!(
                    "the name `{field}` is taken: the tape keeps the cache of `{}` under it; \
                     choose another",
                    self.nodes[i].label
                );
                self.errors.spanned(&node.name, message);
            }
        }
    }
}

/// A node name the macro chose (`fc1_relu`, `sum`), placed at `span` but resolved at
/// `Span::mixed_site()`: as a local of the generated passes it neither collides with nor
/// captures the user's names. (Fields ignore this hygiene: `tape.sum` works.)
fn invented(name: &str, span: Span) -> Ident {
    Ident::new(name, span.resolved_at(Span::mixed_site()))
}

/// Name lookup context of a `forward` block.
struct Scope<'a> {
    layers: &'a HashMap<String, usize>,
    /// Statement index of each `let` name, to tell "used before defined" from "unknown".
    statements: &'a HashMap<String, usize>,
    /// Index of the statement being lowered.
    current: usize,
}
