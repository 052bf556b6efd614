//! Stage 2: the checked model of a network. Resolves names, orders the nodes (statement
//! order is a topological order, since a node may only use nodes defined before it), infers
//! every shape and checks every rule, collecting all errors, each spanned on the token the
//! user must change.

use crate::builtins::{self, ActivationInfo};
use crate::layers::{self, Builtin};
use crate::parse::{Arg, BinOp, Call, Entry, Expr, LayerSpec, NetworkDef, Shape, Size};
use proc_macro2::{Span, TokenStream};
use quote::ToTokens;
use std::collections::{HashMap, HashSet};
use syn::{Attribute, Ident, Type, Visibility};

/// Index of a node in [`Model::nodes`].
pub type NodeId = usize;

/// A checked network: layers, nodes in execution order, inputs and outputs.
pub struct Model {
    pub attrs: Vec<Attribute>,
    pub vis: Visibility,
    pub name: Ident,
    pub layers: Vec<LayerDecl>,
    pub nodes: Vec<Node>,
    pub inputs: Vec<NodeId>,
    pub outputs: Vec<NodeId>,
}

/// A parameterised layer: a field of the network struct.
pub struct LayerDecl {
    pub name: Ident,
    pub kind: LayerKind,
    /// Input features (inferred from the first use; 0 until then).
    pub input: usize,
    /// Input shape (inferred from the first use; empty until then).
    pub input_shape: Vec<usize>,
    /// Output shape (declared for a user's layer; computed at the first use for a built-in).
    pub output: Vec<usize>,
    /// A recurrent layer called with its initial state (`gru(x, h0)`).
    pub with_state: bool,
    /// The node it was first applied to, for error messages.
    first_use: Option<NodeId>,
    /// Its initialisation scheme: `#[init(..)]`, or the default for the activation after it.
    pub init: &'static str,
    /// Whether `#[init(..)]` chose it.
    init_stated: bool,
}

impl LayerDecl {
    /// The layer's operation as the summary shows it: `Dense(16 → 32)`, `Conv2d(1 → 6, 5×5)`,
    /// or a user's type.
    pub fn describe(&self) -> String {
        match &self.kind {
            LayerKind::Builtin(builtin) => builtin.describe(&self.input_shape, &self.output),
            LayerKind::Custom(ty) => ty.to_token_stream().to_string().replace(' ', ""),
        }
    }

    /// The built-in `Dense` layer's (input, output) features, if it is one (applied to each
    /// position of a sequence, its input features are the last dimension).
    pub fn as_dense(&self) -> Option<(usize, usize)> {
        match &self.kind {
            LayerKind::Builtin(Builtin::Dense { out, .. }) => {
                Some((*self.input_shape.last().unwrap_or(&self.input), *out))
            }
            _ => None,
        }
    }
}

/// What a layer is.
pub enum LayerKind {
    Builtin(Builtin),
    /// A user type implementing `nn::Layer`.
    Custom(Box<Type>),
}

/// A node of the graph: a value computed once per forward pass.
pub struct Node {
    /// The user's name for it, or one the macro chose (`fc1_out`).
    pub name: Ident,
    pub op: Op,
    /// Shape of one sample; stored as a vector of `shape.iter().product()` features.
    pub shape: Vec<usize>,
    /// How messages name it: its name if the user gave one, else its expression (`fc1(x)`).
    pub label: String,
    /// The expression that computes it, in terms of its parents' labels: `h + r`.
    pub expr: String,
    /// Where the user declared its shape (inputs), for rustc's errors on the generated code.
    pub span: Span,
}

/// How a node's value is computed from its parents.
pub enum Op {
    Input,
    Layer {
        layer: usize,
        arg: NodeId,
        shared: bool,
    },
    Activation {
        info: &'static ActivationInfo,
        params: Vec<f64>,
        arg: NodeId,
    },
    Binary {
        op: BinOp,
        left: NodeId,
        right: NodeId,
    },
    Concat(Vec<NodeId>),
    /// The same values as a vector: `[C, H, W]` → `[C·H·W]`.
    Flatten(NodeId),
}

impl Op {
    /// The nodes this one reads.
    pub fn parents(&self) -> Vec<NodeId> {
        match self {
            Op::Input => Vec::new(),
            Op::Layer { arg, .. } | Op::Activation { arg, .. } | Op::Flatten(arg) => vec![*arg],
            Op::Binary { left, right, .. } => vec![*left, *right],
            Op::Concat(parts) => parts.clone(),
        }
    }
}

impl Node {
    /// Number of features of one sample.
    pub fn size(&self) -> usize {
        self.shape.iter().product()
    }
}

/// Formats a shape as the DSL writes it: `[3, 4]`.
pub fn shape_text(shape: &[usize]) -> String {
    let dims: Vec<String> = shape.iter().map(usize::to_string).collect();
    format!("[{}]", dims.join(", "))
}

/// Collects errors (serde's `Ctxt`): checking goes on after an error, so the user sees every
/// mistake in one compile.
#[derive(Default)]
struct Errors(Vec<syn::Error>);

impl Errors {
    fn spanned(&mut self, tokens: impl ToTokens, message: impl std::fmt::Display) {
        self.0.push(syn::Error::new_spanned(tokens, message));
    }

    fn at(&mut self, span: Span, message: impl std::fmt::Display) {
        self.0.push(syn::Error::new(span, message));
    }

    fn into_result(self) -> Result<(), syn::Error> {
        let mut errors = self.0.into_iter();
        match errors.next() {
            None => Ok(()),
            Some(mut first) => {
                first.extend(errors);
                Err(first)
            }
        }
    }
}

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
    };
    let (inputs, outputs) = match &def.forward {
        Some(forward) => builder.graph(&def, forward),
        None => builder.sequential(&def),
    };
    builder.check_layers_used();
    builder.choose_default_inits();
    builder.name_intermediate_nodes();
    builder.errors.into_result()?;
    Ok(Model {
        attrs: def.attrs,
        vis: def.vis,
        name: def.name,
        layers: builder.layers,
        nodes: builder.nodes,
        inputs,
        outputs,
    })
}

struct Builder {
    errors: Errors,
    layers: Vec<LayerDecl>,
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
}

/// A node under construction: `None` once an error made its value unknowable (no further
/// errors are reported about it, so one mistake gives one message).
type Lowered = Option<NodeId>;

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
        if def.entries.len() == 1 {
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
            return self.apply_flatten(arg, Some(Ident::new(&node_name, call.func.span())), label);
        }
        let Some(info) = builtins::activation_by_sequential_name(&name) else {
            let message = if let Some(info) = builtins::activation_by_func(&name) {
                format!(
                    "in a sequential network activations are written `{}`",
                    info.sequential[0]
                )
            } else if layers::NAMES.contains(&name.as_str()) {
                format!("a `{name}` layer needs a name: `my_layer: {name}<..>`")
            } else {
                let names = builtins::ACTIVATIONS
                    .iter()
                    .flat_map(|a| a.sequential.iter().copied());
                unknown("activation", &name, builtins::closest(&name, names))
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
            Some(syn::Ident::new(&node_name, call.func.span())),
            label,
            &call.tokens,
        )
    }

    /// The graph form: layers in the struct, then a `forward` block.
    fn graph(
        &mut self,
        def: &NetworkDef,
        forward: &crate::parse::Forward,
    ) -> (Vec<NodeId>, Vec<NodeId>) {
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
                    let hint = builtins::closest(&text, self.bindings.keys().map(String::as_str));
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
                let dims: Vec<usize> = declared.dims.iter().map(|d| d.value).collect();
                if dims != self.nodes[node].shape {
                    self.errors.at(
                        declared.span,
                        format!(
                            "output `{name}` is declared {} but computes {}",
                            shape_text(&dims),
                            shape_text(&self.nodes[node].shape)
                        ),
                    );
                }
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
        (inputs, outputs)
    }

    /// Creates an input node.
    fn input(&mut self, name: &Ident, shape: &Shape) -> Lowered {
        let dims = self.check_shape(shape)?;
        let id = self.push(Some(name.clone()), Op::Input, dims, name.to_string());
        self.nodes[id].span = shape.span;
        self.bindings.insert(name.to_string(), id);
        Some(id)
    }

    fn check_shape(&mut self, shape: &Shape) -> Option<Vec<usize>> {
        let mut ok = true;
        for dim in &shape.dims {
            ok &= self.check_size(dim);
        }
        ok.then(|| shape.dims.iter().map(|d| d.value).collect())
    }

    fn check_size(&mut self, size: &Size) -> bool {
        if size.value == 0 {
            self.errors.spanned(&size.lit, "a size must be at least 1");
        }
        size.value > 0
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
        let taken = self.bindings.contains_key(&text) || self.layers.iter().any(|l| l.name == text);
        if taken {
            self.errors.spanned(
                name,
                format!("the name `{name}` is already used; choose another"),
            );
        }
        !taken
    }

    /// Declares a layer (a struct field); `None` if it is invalid.
    fn declare_layer(
        &mut self,
        attrs: &[syn::Attribute],
        name: &Ident,
        spec: &LayerSpec,
    ) -> Option<usize> {
        let init = self.init_attribute(attrs);
        if !self.check_new_name(name) {
            return None;
        }
        let Some((kind, output)) = self.layer_spec(name, spec) else {
            self.failed_layers.insert(name.to_string());
            return None;
        };
        self.layers.push(LayerDecl {
            name: name.clone(),
            kind,
            input: 0,
            input_shape: Vec::new(),
            output,
            with_state: false,
            first_use: None,
            init: init.unwrap_or(builtins::DEFAULT_INIT),
            init_stated: init.is_some(),
        });
        Some(self.layers.len() - 1)
    }

    /// The scheme of `#[init(scheme)]`, if given (reporting anything else).
    fn init_attribute(&mut self, attrs: &[syn::Attribute]) -> Option<&'static str> {
        let mut scheme = None;
        for attr in attrs {
            if !attr.path().is_ident("init") {
                self.errors.spanned(
                    attr,
                    "unknown attribute on a layer; the one attribute is `#[init(scheme)]`",
                );
                continue;
            }
            let names = builtins::INITS.iter().map(|(name, _)| *name);
            match attr.parse_args::<Ident>() {
                Ok(ident) => match builtins::init_by_name(&ident.to_string()) {
                    Some(variant) => scheme = Some(variant),
                    None => {
                        let hint = builtins::closest(&ident.to_string(), names);
                        let mut message = unknown("initialisation", &ident.to_string(), hint);
                        if hint.is_none() {
                            let all: Vec<&str> = builtins::INITS.iter().map(|(n, _)| *n).collect();
                            message = format!("{message}; one of: {}", all.join(", "));
                        }
                        self.errors.spanned(&ident, message);
                    }
                },
                Err(_) => {
                    let all: Vec<&str> = names.collect();
                    self.errors.spanned(
                        attr,
                        format!(
                            "write `#[init(scheme)]`, a scheme among: {}",
                            all.join(", ")
                        ),
                    );
                }
            }
        }
        scheme
    }

    /// Gives each layer without `#[init(..)]` the default for the activation applied to its
    /// output (He before the ReLU family, Glorot otherwise).
    fn choose_default_inits(&mut self) {
        for node in &self.nodes {
            let Op::Activation { info, arg, .. } = &node.op else {
                continue;
            };
            if let Op::Layer { layer, .. } = self.nodes[*arg].op {
                let decl = &mut self.layers[layer];
                if !decl.init_stated && decl.init == builtins::DEFAULT_INIT {
                    decl.init = info.default_init;
                }
            }
        }
    }

    /// Checks a layer declaration's type and arguments: its kind, and its output shape if
    /// known before it is applied (a user's layer declares it).
    fn layer_spec(&mut self, name: &Ident, spec: &LayerSpec) -> Option<(LayerKind, Vec<usize>)> {
        match spec {
            LayerSpec::Custom { ty, out } => {
                Some((LayerKind::Custom(ty.clone()), self.check_shape(out)?))
            }
            LayerSpec::Builtin { kind, args } => {
                let text = kind.to_string();
                if !layers::NAMES.contains(&text.as_str()) {
                    let hint = builtins::closest(&text, layers::NAMES.iter().copied());
                    let message = if let Some(activation) =
                        builtins::activation_by_sequential_name(&text)
                    {
                        format!(
                            "`{text}` is an activation, not a layer: write it on its own, \
                             `..., {text},` (sequential) or `{}(x)` in a `forward` block",
                            activation.func
                        )
                    } else if hint.is_some() {
                        unknown("layer", &text, hint)
                    } else {
                        format!(
                            "unknown layer `{text}`: the built-in layers are {}; a layer of your \
                             own is declared with its output shape, `{name}: {text}<..> -> [OUT]`",
                            layers::NAMES.join(", ")
                        )
                    };
                    self.errors.spanned(kind, message);
                    return None;
                }
                match layers::parse(kind, args) {
                    Ok(builtin) => Some((LayerKind::Builtin(builtin), Vec::new())),
                    Err(errors) => {
                        self.errors.0.extend(errors);
                        None
                    }
                }
            }
        }
    }

    /// Lowers an expression to nodes; the top node is named `name` if given.
    fn lower(&mut self, expr: &Expr, name: Option<&Ident>, scope: &Scope) -> Lowered {
        match expr {
            // `let y = h;` makes `y` an alias of `h`: no new node.
            Expr::Node(ident) => self.resolve(ident, scope),
            Expr::Binary {
                op,
                left,
                right,
                tokens,
            } => {
                let left = self.lower(left, None, scope);
                let right = self.lower(right, None, scope);
                let (left, right) = (left?, right?);
                let (a, b) = (&self.nodes[left], &self.nodes[right]);
                if a.shape != b.shape {
                    let verb = match op {
                        BinOp::Add => "add",
                        BinOp::Mul => "multiply",
                    };
                    let message = format!(
                        "cannot {verb} `{}` {} and `{}` {}: element-wise operations need equal shapes",
                        a.label,
                        shape_text(&a.shape),
                        b.label,
                        shape_text(&b.shape)
                    );
                    self.errors.spanned(tokens, message);
                    return None;
                }
                let symbol = match op {
                    BinOp::Add => "+",
                    BinOp::Mul => "*",
                };
                let label = format!("{} {symbol} {}", a.label, b.label);
                let shape = a.shape.clone();
                Some(self.push(
                    name.cloned(),
                    Op::Binary {
                        op: *op,
                        left,
                        right,
                    },
                    shape,
                    label,
                ))
            }
            Expr::Call(call) => self.lower_call(call, name, scope),
        }
    }

    fn lower_call(&mut self, call: &Call, name: Option<&Ident>, scope: &Scope) -> Lowered {
        let func = call.func.to_string();
        if func == builtins::CONCAT {
            return self.lower_concat(call, name, scope);
        }
        if func == builtins::FLATTEN {
            let [Arg::Expr(arg)] = call.args.as_slice() else {
                self.errors
                    .spanned(&call.tokens, "`flatten` takes one node: `flatten(x)`");
                return None;
            };
            let arg = self.lower(arg, None, scope)?;
            let label = format!("flatten({})", self.nodes[arg].label);
            return self.apply_flatten(arg, name.cloned(), label);
        }
        if scope.layers.contains_key(&func) || self.failed_layers.contains(&func) {
            self.mentioned_layers.insert(func.clone());
        }
        if self.failed_layers.contains(&func) {
            // Its declaration was reported; still check what it is applied to.
            self.lower_args(&call.args, scope);
            return None;
        }
        if let Some(&layer) = scope.layers.get(&func) {
            return self.lower_layer_call(layer, call, name, scope);
        }
        if let Some(info) = builtins::activation_by_func(&func) {
            let (first, rest) = match call.args.split_first() {
                Some((Arg::Expr(first), rest)) => (first, rest),
                _ => {
                    self.errors.spanned(
                        &call.tokens,
                        format!("`{func}` takes the node to apply it to first: `{func}(x)`"),
                    );
                    return None;
                }
            };
            let arg = self.lower(first, None, scope);
            let params = self.activation_params(info, &call.func, rest);
            let (arg, params) = (arg?, params?);
            let label = format!("{func}({})", self.nodes[arg].label);
            return self.apply_activation(info, params, arg, name.cloned(), label, &call.tokens);
        }
        self.lower_args(&call.args, scope);
        let candidates = scope
            .layers
            .keys()
            .map(String::as_str)
            .chain(builtins::ACTIVATIONS.iter().map(|a| a.func))
            .chain([builtins::CONCAT, builtins::FLATTEN]);
        let hint = builtins::closest(&func, candidates);
        let mut message = unknown("layer or activation", &func, hint);
        if builtins::activation_by_sequential_name(&func).is_some()
            || layers::NAMES.contains(&func.as_str())
        {
            message = format!(
                "`{func}` is not callable here: declare layers in the struct (`fc: {func}<..>`) \
                 and call them by name; activations are lower case, e.g. `relu(x)`"
            );
        }
        self.errors.spanned(&call.func, message);
        None
    }

    /// Lowers the node arguments of a call that failed, for their own errors and so that the
    /// nodes and layers they name count as used.
    fn lower_args(&mut self, args: &[Arg], scope: &Scope) {
        for arg in args {
            if let Arg::Expr(expr) = arg {
                self.lower(expr, None, scope);
            }
        }
    }

    fn lower_concat(&mut self, call: &Call, name: Option<&Ident>, scope: &Scope) -> Lowered {
        let mut parts = Vec::new();
        let mut ok = true;
        for arg in &call.args {
            match arg {
                Arg::Expr(expr) => match self.lower(expr, None, scope) {
                    Some(id) => parts.push(id),
                    None => ok = false,
                },
                Arg::Number { tokens, .. } => {
                    self.errors
                        .spanned(tokens, "`concat` joins nodes, not numbers");
                    ok = false;
                }
            }
        }
        if !ok {
            return None;
        }
        if parts.len() < 2 {
            self.errors.spanned(
                &call.tokens,
                "`concat` joins two or more nodes: `concat(a, b)`",
            );
            return None;
        }
        let first = &self.nodes[parts[0]];
        for &part in &parts[1..] {
            let node = &self.nodes[part];
            if node.shape.len() != first.shape.len() || node.shape[1..] != first.shape[1..] {
                let message = format!(
                    "cannot concatenate `{}` {} and `{}` {}: they must agree in every \
                     dimension but the first",
                    first.label,
                    shape_text(&first.shape),
                    node.label,
                    shape_text(&node.shape)
                );
                self.errors.spanned(&call.tokens, message);
                return None;
            }
        }
        let mut shape = first.shape.clone();
        shape[0] = parts.iter().map(|&p| self.nodes[p].shape[0]).sum();
        let labels: Vec<&str> = parts
            .iter()
            .map(|&p| self.nodes[p].label.as_str())
            .collect();
        let label = format!("concat({})", labels.join(", "));
        Some(self.push(name.cloned(), Op::Concat(parts), shape, label))
    }

    /// Looks a node up by name, explaining why when it is not in scope.
    fn resolve(&mut self, ident: &Ident, scope: &Scope) -> Lowered {
        let text = ident.to_string();
        if let Some(&node) = self.bindings.get(&text) {
            self.used.insert(text);
            return Some(node);
        }
        if scope.statements.contains_key(&text) {
            self.used.insert(text.clone());
        }
        let message = match scope.statements.get(&text) {
            Some(&i) if i == scope.current => format!(
                "`{text}` is used in its own definition: a network is acyclic, so a node can \
                 only use nodes defined before it"
            ),
            Some(&i) if i > scope.current => format!(
                "`{text}` is used before it is defined: move `let {text} = ...;` above this \
                 line (a network is acyclic: a node can only use nodes defined before it)"
            ),
            // Defined earlier but with an error: already reported.
            Some(_) => return None,
            None if scope.layers.contains_key(&text) => {
                self.mentioned_layers.insert(text.clone());
                format!("`{text}` is a layer, not a node: apply it, e.g. `{text}(x)`")
            }
            None => {
                let hint = builtins::closest(&text, self.bindings.keys().map(String::as_str));
                // The suggested node is the one meant: do not also call it unused.
                if let Some(hint) = hint {
                    self.used.insert(hint.to_string());
                }
                unknown("node", &text, hint)
            }
        };
        self.errors.spanned(ident, message);
        None
    }

    fn activation_params(
        &mut self,
        info: &ActivationInfo,
        func: &Ident,
        args: &[Arg],
    ) -> Option<Vec<f64>> {
        if args.len() > info.params.len() {
            let message = match info.params {
                [] if info.func == "relu" => {
                    "`relu` takes no parameters; for a slope on negative inputs write \
                     `leaky_relu(x, slope)`"
                        .to_string()
                }
                [] => format!("`{}` takes no parameters", func),
                params => {
                    let names: Vec<&str> = params.iter().map(|p| p.0).collect();
                    format!(
                        "`{}` takes at most {} parameter(s): {}",
                        func,
                        params.len(),
                        names.join(", ")
                    )
                }
            };
            let extra = &args[info.params.len()];
            match extra {
                Arg::Number { tokens, .. } => self.errors.spanned(tokens, message),
                Arg::Expr(expr) => self.errors.spanned(expr.tokens(), message),
            }
            return None;
        }
        let mut values = Vec::new();
        for (i, &(_, default)) in info.params.iter().enumerate() {
            match args.get(i) {
                None => values.push(default),
                Some(Arg::Number { value, .. }) => values.push(*value),
                Some(Arg::Expr(expr)) => {
                    self.errors.spanned(
                        expr.tokens(),
                        format!("`{}`'s {} is a number, e.g. `0.2`", func, info.params[i].0),
                    );
                    return None;
                }
            }
        }
        Some(values)
    }

    /// `fc1(x)`, or a recurrent layer with its initial state, `gru(x, h0)`.
    fn lower_layer_call(
        &mut self,
        layer: usize,
        call: &Call,
        name: Option<&Ident>,
        scope: &Scope,
    ) -> Lowered {
        let func = &call.func;
        let mut nodes = Vec::new();
        for arg in &call.args {
            match arg {
                Arg::Expr(expr) => nodes.push(self.lower(expr, None, scope)),
                Arg::Number { tokens, .. } => {
                    self.errors.spanned(
                        tokens,
                        format!("a layer takes nodes, not numbers: `{func}(x)`"),
                    );
                    return None;
                }
            }
        }
        let state_inputs = match &self.layers[layer].kind {
            LayerKind::Builtin(Builtin::Recurrent { cell, .. }) => Some(cell.state_inputs()),
            _ => None,
        };
        let nodes: Vec<NodeId> = nodes.into_iter().collect::<Option<_>>()?;
        match (nodes.as_slice(), state_inputs) {
            ([x], _) => {
                let label = format!("{func}({})", self.nodes[*x].label);
                self.apply_layer(layer, *x, name.cloned(), label, &call.tokens)
            }
            ([x, state @ ..], Some(count)) if state.len() == count => {
                self.apply_recurrent_with_state(layer, *x, state, name, call)
            }
            (_, Some(1)) => {
                self.errors.spanned(
                    &call.tokens,
                    format!("`{func}` takes a sequence and optionally its initial state: `{func}(x)` or `{func}(x, h0)`"),
                );
                None
            }
            (_, Some(_)) => {
                self.errors.spanned(
                    &call.tokens,
                    format!("`{func}` takes a sequence and optionally its initial state: `{func}(x)` or `{func}(x, h0, c0)`"),
                );
                None
            }
            (_, None) => {
                self.errors.spanned(
                    &call.tokens,
                    format!("a layer takes one input: `{func}(x)`"),
                );
                None
            }
        }
    }

    /// `gru(x, h0)`: the sequence and the initial state are packed into one input node, in
    /// the order the layer reads them.
    fn apply_recurrent_with_state(
        &mut self,
        layer: usize,
        x: NodeId,
        state: &[NodeId],
        name: Option<&Ident>,
        call: &Call,
    ) -> Lowered {
        let LayerKind::Builtin(Builtin::Recurrent { hidden, .. }) = self.layers[layer].kind else {
            unreachable!("only recurrent layers take an initial state");
        };
        for (&part, arg) in state.iter().zip(&call.args[1..]) {
            let node = &self.nodes[part];
            if node.shape != [hidden] {
                let message = format!(
                    "the initial state of `{}` is a vector [{hidden}], but `{}` has shape {}",
                    call.func,
                    node.label,
                    shape_text(&node.shape)
                );
                let tokens = match arg {
                    Arg::Expr(expr) => expr.tokens(),
                    Arg::Number { tokens, .. } => tokens.clone(),
                };
                self.errors.spanned(tokens, message);
                return None;
            }
        }
        let parts: Vec<NodeId> = std::iter::once(x).chain(state.iter().copied()).collect();
        let labels: Vec<&str> = parts
            .iter()
            .map(|&p| self.nodes[p].label.as_str())
            .collect();
        let label = format!("{}({})", call.func, labels.join(", "));
        let size = parts.iter().map(|&p| self.nodes[p].size()).sum();
        let packed_expr = format!("({})", labels.join(", "));
        let packed = self.push(None, Op::Concat(parts), vec![size], packed_expr);
        self.apply_layer_to(layer, packed, x, true, name.cloned(), label, &call.tokens)
    }

    fn apply_layer(
        &mut self,
        layer: usize,
        arg: NodeId,
        name: Option<Ident>,
        label: String,
        at: impl ToTokens,
    ) -> Lowered {
        self.apply_layer_to(layer, arg, arg, false, name, label, at)
    }

    /// Applies `layer` to the node `arg`, whose shape for the layer's rules is that of
    /// `logical` (the same node, or the sequence part of a packed `(x, h0)`).
    #[allow(clippy::too_many_arguments)]
    fn apply_layer_to(
        &mut self,
        layer: usize,
        arg: NodeId,
        logical: NodeId,
        with_state: bool,
        name: Option<Ident>,
        label: String,
        at: impl ToTokens,
    ) -> Lowered {
        let input = &self.nodes[logical];
        let decl = &self.layers[layer];
        let shared = decl.first_use.is_some();
        if let Some(first) = decl.first_use {
            let fits = match decl.kind {
                LayerKind::Builtin(_) => {
                    decl.input_shape == input.shape && decl.with_state == with_state
                }
                LayerKind::Custom(_) => decl.input == input.size(),
            };
            if !fits {
                let message = format!(
                    "layer `{}` was first applied to `{}` {} and here to `{}` {}; a layer used \
                     twice shares its weights, so its inputs must have the same shape",
                    decl.name,
                    self.nodes[first].label,
                    shape_text(&self.nodes[first].shape),
                    input.label,
                    shape_text(&input.shape)
                );
                self.errors.spanned(at, message);
                return None;
            }
        }
        let output = match &decl.kind {
            LayerKind::Custom(_) => decl.output.clone(),
            LayerKind::Builtin(builtin) => {
                let layer_name = decl.name.to_string();
                let output = match builtin.output_shape(&layer_name, &input.label, &input.shape) {
                    Ok(output) => output,
                    Err((message, blame_argument)) => {
                        match builtin.blamed_argument().filter(|_| blame_argument) {
                            Some(argument) => self.errors.spanned(argument, message),
                            None => self.errors.spanned(at, message),
                        }
                        return None;
                    }
                };
                if let Some((stated, actual)) = builtin.stated_input(&input.shape)
                    && stated.value != actual
                {
                    let message = match builtin {
                        Builtin::Dense { out, .. } => format!(
                            "`{layer_name}` is declared with {} inputs, but its input `{}` has \
                             {actual} features: write `Dense<{actual}, {out}>` or `Dense<{out}>`",
                            stated.value, input.label
                        ),
                        _ => format!(
                            "`{layer_name}` is declared with {} input channels, but its input \
                             `{}` {} has {actual}: write `in_channels = {actual}` or leave it out",
                            stated.value,
                            input.label,
                            shape_text(&input.shape)
                        ),
                    };
                    self.errors.spanned(&stated.lit, message);
                    return None;
                }
                output
            }
        };
        let (size, input_shape) = (self.nodes[arg].size(), input.shape.clone());
        let decl = &mut self.layers[layer];
        decl.input = size;
        decl.input_shape = input_shape;
        decl.with_state = with_state;
        decl.output = output.clone();
        decl.first_use.get_or_insert(arg);
        Some(self.push(name, Op::Layer { layer, arg, shared }, output, label))
    }

    /// `flatten(x)`: the same values as a vector.
    fn apply_flatten(&mut self, arg: NodeId, name: Option<Ident>, label: String) -> Lowered {
        let size = self.nodes[arg].size();
        Some(self.push(name, Op::Flatten(arg), vec![size], label))
    }

    fn apply_activation(
        &mut self,
        info: &'static ActivationInfo,
        params: Vec<f64>,
        arg: NodeId,
        name: Option<Ident>,
        label: String,
        at: &TokenStream,
    ) -> Lowered {
        let input = &self.nodes[arg];
        if info.needs_vector && input.shape.len() != 1 {
            let message = format!(
                "`{}` is taken over a vector, but `{}` has shape {}",
                info.func,
                input.label,
                shape_text(&input.shape)
            );
            self.errors.spanned(at, message);
            return None;
        }
        let shape = input.shape.clone();
        Some(self.push(name, Op::Activation { info, params, arg }, shape, label))
    }

    /// Adds a node. Unnamed nodes get a placeholder name until `name_intermediate_nodes`.
    fn push(&mut self, name: Option<Ident>, op: Op, shape: Vec<usize>, expr: String) -> NodeId {
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
        for layer in &self.layers {
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
        taken.extend(self.layers.iter().map(|l| l.name.to_string()));
        for i in 0..self.nodes.len() {
            if self.nodes[i].name != "_" {
                continue;
            }
            let base = match &self.nodes[i].op {
                Op::Layer { layer, .. } => format!("{}_out", self.layers[*layer].name),
                Op::Activation { info, .. } => format!("{}_out", info.func),
                Op::Binary { op: BinOp::Add, .. } => "sum".to_string(),
                Op::Binary { op: BinOp::Mul, .. } => "product".to_string(),
                Op::Concat(_) => "cat".to_string(),
                Op::Flatten(_) => "flat".to_string(),
                Op::Input => unreachable!("inputs are always named"),
            };
            let mut name = base.clone();
            let mut k = 2;
            while taken.contains(&name) {
                name = format!("{base}_{k}");
                k += 1;
            }
            taken.insert(name.clone());
            self.nodes[i].name = Ident::new(&name, Span::call_site());
        }
    }
}

/// Name lookup context of a `forward` block.
struct Scope<'a> {
    layers: &'a HashMap<String, usize>,
    /// Statement index of each `let` name, to tell "used before defined" from "unknown".
    statements: &'a HashMap<String, usize>,
    /// Index of the statement being lowered.
    current: usize,
}

fn unknown(what: &str, name: &str, hint: Option<&str>) -> String {
    match hint {
        Some(hint) => format!("unknown {what} `{name}`; did you mean `{hint}`?"),
        None => format!("unknown {what} `{name}`"),
    }
}
