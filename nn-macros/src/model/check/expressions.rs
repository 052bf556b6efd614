//! Lowering the expressions of a `forward` block to nodes: names, calls of layers, activations,
//! `concat` and `flatten`, and element-wise sums and products.

use super::{Builder, Lowered, Scope};
use crate::builtins::{self, ActivationInfo};
use crate::diagnostics::{closest, unknown};
use crate::model::{BinOp, NodeId, Op};
use crate::parse::{self, Arg, Call, Expr};
use crate::shape::{Check, Relation, Shape};
use proc_macro2::TokenStream;
use syn::Ident;

impl Builder {
    /// Lowers an expression to nodes; the top node is named `name` if given.
    pub(super) fn lower(&mut self, expr: &Expr, name: Option<&Ident>, scope: &Scope) -> Lowered {
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
                let verb = match op {
                    parse::BinOp::Add => "add",
                    parse::BinOp::Mul => "multiply",
                };
                let message = format!(
                    "cannot {verb} `{}` {} and `{}` {}: element-wise operations need equal shapes",
                    a.label, a.shape, b.label, b.shape
                );
                match a.shape.relation(&b.shape) {
                    Relation::Equal => {}
                    Relation::Different => {
                        self.errors.spanned(tokens, message);
                        return None;
                    }
                    Relation::Unknown => {
                        let condition = a.shape.equal_condition(&b.shape);
                        self.checks.push(Check::new(condition, message, tokens));
                    }
                }
                let (symbol, op) = match op {
                    parse::BinOp::Add => ("+", BinOp::Add),
                    parse::BinOp::Mul => ("*", BinOp::Mul),
                };
                let label = format!("{} {symbol} {}", a.label, b.label);
                let shape = a.shape.clone();
                Some(self.push(name.cloned(), Op::Binary { op, left, right }, shape, label))
            }
            Expr::Call(call) => self.lower_call(call, name, scope),
        }
    }

    pub(super) fn lower_call(
        &mut self,
        call: &Call,
        name: Option<&Ident>,
        scope: &Scope,
    ) -> Lowered {
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
        let hint = closest(&func, candidates);
        let mut message = unknown("layer or activation", &func, hint);
        if builtins::activation_by_sequential_name(&func).is_some()
            || crate::layers::builtin(&func).is_some()
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
    pub(super) fn lower_args(&mut self, args: &[Arg], scope: &Scope) {
        for arg in args {
            if let Arg::Expr(expr) = arg {
                self.lower(expr, None, scope);
            }
        }
    }

    pub(super) fn lower_concat(
        &mut self,
        call: &Call,
        name: Option<&Ident>,
        scope: &Scope,
    ) -> Lowered {
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
            let message = format!(
                "cannot concatenate `{}` {} and `{}` {}: they must agree in every dimension but \
                 the first",
                first.label, first.shape, node.label, node.shape
            );
            // Both shapes with their first size left out.
            let rest = |shape: &Shape| Shape::new(shape.dims()[1..].to_vec());
            let (a, b) = (rest(&first.shape), rest(&node.shape));
            match a.relation(&b) {
                _ if node.shape.rank() != first.shape.rank() => {
                    self.errors.spanned(&call.tokens, message);
                    return None;
                }
                Relation::Equal => {}
                Relation::Different => {
                    self.errors.spanned(&call.tokens, message);
                    return None;
                }
                Relation::Unknown => {
                    let condition = a.equal_condition(&b);
                    self.checks
                        .push(Check::new(condition, message, &call.tokens));
                }
            }
        }
        let shape = first
            .shape
            .with_first(parts.iter().map(|&p| &self.nodes[p].shape.dims()[0]).sum());
        let labels: Vec<&str> = parts
            .iter()
            .map(|&p| self.nodes[p].label.as_str())
            .collect();
        let label = format!("concat({})", labels.join(", "));
        Some(self.push(name.cloned(), Op::Concat(parts), shape, label))
    }

    /// Looks a node up by name, explaining why when it is not in scope.
    pub(super) fn resolve(&mut self, ident: &Ident, scope: &Scope) -> Lowered {
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
                let hint = closest(&text, self.bindings.keys().map(String::as_str));
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

    pub(super) fn activation_params(
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

    /// `flatten(x)`: the same values as a vector.
    pub(super) fn apply_flatten(
        &mut self,
        arg: NodeId,
        name: Option<Ident>,
        label: String,
    ) -> Lowered {
        let size = self.nodes[arg].size();
        Some(self.push(name, Op::Flatten(arg), Shape::new(vec![size]), label))
    }

    pub(super) fn apply_activation(
        &mut self,
        info: &'static ActivationInfo,
        params: Vec<f64>,
        arg: NodeId,
        name: Option<Ident>,
        label: String,
        at: &TokenStream,
    ) -> Lowered {
        let input = &self.nodes[arg];
        if info.needs_vector && input.shape.rank() != 1 {
            let message = format!(
                "`{}` is taken over a vector, but `{}` has shape {}",
                info.func, input.label, input.shape
            );
            self.errors.spanned(at, message);
            return None;
        }
        let shape = input.shape.clone();
        Some(self.push(name, Op::Activation { info, params, arg }, shape, label))
    }
}
