//! Declaring layers (the struct's fields) and applying them to nodes.

use super::{Builder, Declared, Lowered, Scope};
use crate::builtins;
use crate::diagnostics::{closest, unknown};
use crate::layers::{self, Site};
use crate::model::{LayerDecl, LayerKind, NodeId, Op};
use crate::parse::{Arg, ArgValue, Call, LayerSpec};
use crate::shape::{Check, Dim, Shape};
use quote::ToTokens;
use syn::Ident;

impl Builder {
    /// Declares a layer (a struct field); `None` if it is invalid.
    pub(super) fn declare_layer(
        &mut self,
        attrs: &[syn::Attribute],
        name: &Ident,
        spec: &LayerSpec,
    ) -> Option<usize> {
        let init = self.init_attribute(attrs);
        if !self.check_new_name(name) {
            return None;
        }
        let text = name.to_string();
        if builtins::activation_by_func(&text).is_some()
            || [builtins::CONCAT, builtins::FLATTEN].contains(&text.as_str())
        {
            // `relu(x)` in a `forward` block would call the layer, not the activation.
            self.errors.spanned(
                name,
                format!(
                    "`{text}` is a built-in function of the `forward` block, so it cannot name \
                     a layer: choose another name, e.g. `{text}_layer`"
                ),
            );
            self.failed_layers.insert(text);
            return None;
        }
        let Some((kind, output)) = self.layer_spec(name, spec) else {
            self.failed_layers.insert(name.to_string());
            return None;
        };
        self.layers.push(Declared {
            decl: LayerDecl {
                name: name.clone(),
                kind,
                input: Dim::Known(0),
                input_shape: Shape::default(),
                output,
                with_state: false,
                init: init.unwrap_or(builtins::DEFAULT_INIT),
            },
            first_use: None,
            init_stated: init.is_some(),
        });
        Some(self.layers.len() - 1)
    }

    /// The scheme of `#[init(scheme)]`, if given (reporting anything else).
    pub(super) fn init_attribute(&mut self, attrs: &[syn::Attribute]) -> Option<&'static str> {
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
                        let hint = closest(&ident.to_string(), names);
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
    pub(super) fn choose_default_inits(&mut self) {
        for node in &self.nodes {
            let Op::Activation { info, arg, .. } = &node.op else {
                continue;
            };
            if let Op::Layer { layer, .. } = self.nodes[*arg].op {
                let declared = &mut self.layers[layer];
                if !declared.init_stated && declared.decl.init == builtins::DEFAULT_INIT {
                    declared.decl.init = info.default_init;
                }
            }
        }
    }

    /// Checks a layer declaration's type and arguments: its kind, and its output shape if
    /// known before it is applied (a user's layer declares it).
    pub(super) fn layer_spec(
        &mut self,
        name: &Ident,
        spec: &LayerSpec,
    ) -> Option<(LayerKind, Shape)> {
        match spec {
            LayerSpec::Custom { ty, out } => {
                Some((LayerKind::Custom(ty.clone()), self.check_shape(out)?))
            }
            LayerSpec::Builtin { kind, args } => {
                // A constant is at least 1 (the layer's reader reports a literal 0, which an
                // option such as `padding` may take).
                for arg in args {
                    if let ArgValue::Int(size) = &arg.value
                        && size.value.known().is_none()
                    {
                        self.check_size(size);
                    }
                }
                let text = kind.to_string();
                let Some(builtin) = layers::builtin(&text) else {
                    let hint = closest(&text, layers::names());
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
                            layers::names().collect::<Vec<_>>().join(", ")
                        )
                    };
                    self.errors.spanned(kind, message);
                    return None;
                };
                match builtin.parse(kind, args) {
                    Ok(builtin) => Some((LayerKind::Builtin(builtin), Shape::default())),
                    Err(errors) => {
                        self.errors.extend(errors);
                        None
                    }
                }
            }
        }
    }

    /// `fc1(x)`, or a recurrent layer with its initial state, `gru(x, h0)`.
    pub(super) fn lower_layer_call(
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
        let initial_state = match &self.layers[layer].decl.kind {
            LayerKind::Builtin(builtin) => builtin.initial_state(),
            LayerKind::Custom(_) => None,
        };
        let nodes: Vec<NodeId> = nodes.into_iter().collect::<Option<_>>()?;
        match (
            nodes.as_slice(),
            initial_state.map(|state| (state.count, state.size)),
        ) {
            ([x], _) => {
                let label = format!("{func}({})", self.nodes[*x].label);
                self.apply_layer(layer, *x, name.cloned(), label, &call.tokens)
            }
            ([x, state @ ..], Some((count, size))) if state.len() == count => {
                self.apply_recurrent_with_state(layer, *x, state, size, name, call)
            }
            (_, Some((1, _))) => {
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

    /// `gru(x, h0)`: the sequence and the initial state (vectors of `hidden`, checked) are
    /// packed into one input node, in the order the layer reads them.
    pub(super) fn apply_recurrent_with_state(
        &mut self,
        layer: usize,
        x: NodeId,
        state: &[NodeId],
        hidden: Dim,
        name: Option<&Ident>,
        call: &Call,
    ) -> Lowered {
        for (&part, arg) in state.iter().zip(&call.args[1..]) {
            let node = &self.nodes[part];
            let wanted = Shape::new(vec![hidden.clone()]);
            let message = format!(
                "the initial state of `{}` is a vector [{hidden}], but `{}` has shape {}",
                call.func, node.label, node.shape
            );
            let tokens = match arg {
                Arg::Expr(expr) => expr.tokens(),
                Arg::Number { tokens, .. } => tokens.clone(),
            };
            let shape = node.shape.clone();
            if !self.require_equal_shapes(&shape, &wanted, message, tokens) {
                return None;
            }
        }
        let parts: Vec<NodeId> = std::iter::once(x).chain(state.iter().copied()).collect();
        let labels: Vec<&str> = parts
            .iter()
            .map(|&p| self.nodes[p].label.as_str())
            .collect();
        let label = format!("{}({})", call.func, labels.join(", "));
        let size = parts
            .iter()
            .fold(Dim::Known(0), |sum, &p| sum.add(&self.nodes[p].size()));
        let packed_expr = format!("({})", labels.join(", "));
        let packed = self.push(None, Op::Concat(parts), Shape::new(vec![size]), packed_expr);
        self.apply_layer_to(layer, packed, x, true, name.cloned(), label, &call.tokens)
    }

    pub(super) fn apply_layer(
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
    pub(super) fn apply_layer_to(
        &mut self,
        layer: usize,
        arg: NodeId,
        logical: NodeId,
        with_state: bool,
        name: Option<Ident>,
        label: String,
        at: impl ToTokens,
    ) -> Lowered {
        let at = at.into_token_stream();
        let input = &self.nodes[logical];
        let Declared {
            decl, first_use, ..
        } = &self.layers[layer];
        let shared = first_use.is_some();
        if let Some(first) = *first_use {
            let (before, here) = match decl.kind {
                LayerKind::Builtin(_) => (decl.input_shape.clone(), input.shape.clone()),
                LayerKind::Custom(_) => (
                    Shape::new(vec![decl.input.clone()]),
                    Shape::new(vec![self.nodes[arg].size()]),
                ),
            };
            let message = format!(
                "layer `{}` was first applied to `{}` {} and here to `{}` {}; a layer used twice \
                 shares its weights, so its inputs must have the same shape",
                decl.name,
                self.nodes[first].label,
                self.nodes[first].shape,
                input.label,
                input.shape
            );
            if decl.with_state != with_state {
                self.errors.spanned(at, message);
                return None;
            }
            if !self.require_equal_shapes(&before, &here, message, &at) {
                return None;
            }
        }
        let (input, decl) = (&self.nodes[logical], &self.layers[layer].decl);
        let output = match &decl.kind {
            LayerKind::Custom(_) => decl.output.clone(),
            LayerKind::Builtin(builtin) => {
                let layer_name = decl.name.to_string();
                let site = Site::new(&layer_name, &input.label);
                let output = builtin.output_shape(&input.shape, &site);
                for deferred in site.deferred.into_inner() {
                    let blame = deferred.blame.unwrap_or_else(|| at.clone());
                    let check = Check::new(deferred.condition, deferred.message, blame);
                    self.checks.push(check);
                }
                match output {
                    Ok(output) => output,
                    Err(misfit) => {
                        match misfit.blame {
                            Some(argument) => self.errors.spanned(argument, misfit.message),
                            None => self.errors.spanned(at, misfit.message),
                        }
                        return None;
                    }
                }
            }
        };
        let (size, input_shape) = (self.nodes[arg].size(), input.shape.clone());
        let Declared {
            decl, first_use, ..
        } = &mut self.layers[layer];
        decl.input = size;
        decl.input_shape = input_shape;
        decl.with_state = with_state;
        decl.output = output.clone();
        first_use.get_or_insert(arg);
        Some(self.push(name, Op::Layer { layer, arg, shared }, output, label))
    }
}
