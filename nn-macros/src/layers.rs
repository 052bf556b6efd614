//! The built-in layers of the DSL: their arguments, shape rules, parameter counts and the
//! `nn-core` types the generated code uses. Shapes follow PyTorch: `[C, L]` for 1-d
//! convolutions, `[C, H, W]` for 2-d ones, and every output size is computed here (so the
//! generated code holds concrete numbers and builds on stable Rust).

use crate::model::shape_text;
use crate::parse::{ArgValue, LayerArg, Size};
use proc_macro2::{Literal, TokenStream};
use quote::{ToTokens, quote};
use syn::Ident;

/// Names of the built-in layers, for "did you mean" hints and messages.
pub const NAMES: &[&str] = &[
    "Dense",
    "Conv1d",
    "Conv2d",
    "MaxPool1d",
    "MaxPool2d",
    "AvgPool1d",
    "AvgPool2d",
    "GlobalAvgPool",
    "BatchNorm1d",
    "BatchNorm2d",
    "Dropout",
    "Rnn",
    "Gru",
    "Lstm",
    "LayerNorm",
    "MultiHeadAttention",
    "SelfAttention",
    "Embedding",
    "SinusoidalPositions",
    "LearnedPositions",
];

/// A recurrent cell.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Cell {
    Rnn,
    Gru,
    Lstm,
}

impl Cell {
    /// Gates: rows of `weight_ih_l0` per hidden unit.
    pub fn gates(self) -> usize {
        match self {
            Cell::Rnn => 1,
            Cell::Gru => 3,
            Cell::Lstm => 4,
        }
    }

    /// Initial-state inputs: `h0`, or `h0` and `c0`.
    pub fn state_inputs(self) -> usize {
        if self == Cell::Lstm { 2 } else { 1 }
    }
}

/// A built-in layer, with its arguments checked.
#[derive(Clone)]
pub enum Builtin {
    /// `Dense<OUT>` or `Dense<IN, OUT>`.
    Dense { out: usize, stated_in: Option<Size> },
    /// `Conv2d<OUT_CHANNELS, KERNEL, stride = .., padding = .., dilation = .., bias = ..,
    /// in_channels = ..>`; `Conv1d` likewise with one spatial dimension.
    Conv {
        dims: usize,
        out_channels: usize,
        stated_in: Option<Size>,
        kernel: [usize; 2],
        stride: [usize; 2],
        padding: [usize; 2],
        dilation: [usize; 2],
        bias: bool,
    },
    /// `MaxPool2d<KERNEL, stride = ..>` (stride defaults to the kernel, as PyTorch), and
    /// `AvgPool*`, `*Pool1d`.
    Pool {
        max: bool,
        dims: usize,
        kernel: [usize; 2],
        stride: [usize; 2],
    },
    /// Mean over every spatial position of each channel: `[C, ...]` → `[C]`.
    GlobalAvgPool,
    /// `BatchNorm1d<eps = .., momentum = ..>` on `[C]` or `[C, L]`, `BatchNorm2d` on
    /// `[C, H, W]`.
    BatchNorm {
        dims: usize,
        eps: f64,
        momentum: f64,
    },
    /// `Dropout<P>`: zeroes each element with probability `P` in training.
    Dropout { p: f64 },
    /// `Gru<H, last = ..>` over a sequence `[S, D]`; `Rnn`, `Lstm` likewise. Called as
    /// `gru(x)` or `gru(x, h0)` (`lstm(x, h0, c0)`) with an initial state.
    Recurrent {
        cell: Cell,
        hidden: usize,
        last: bool,
    },
    /// `LayerNorm<eps = ..>` over the last dimension.
    LayerNorm { eps: f64 },
    /// `MultiHeadAttention<HEADS, causal = ..>`, `SelfAttention<causal = ..>` (one head):
    /// self-attention over `[S, D]`.
    Attention { heads: Size, causal: bool },
    /// `Embedding<VOCAB, DIM>`: token ids `[S]` → `[S, DIM]`.
    Embedding { vocab: usize, dim: usize },
    /// `SinusoidalPositions` (fixed) or `LearnedPositions`, added to `[S, D]`.
    Positions { learned: bool },
}

/// Parses the arguments of the built-in layer `kind`; `Err` holds every problem found.
pub fn parse(kind: &Ident, args: &[LayerArg]) -> Result<Builtin, Vec<syn::Error>> {
    let mut reader = Args::new(args);
    let text = kind.to_string();
    let layer = match text.as_str() {
        "Dense" => {
            let count = reader.positional.len();
            let first = reader.positional_size("a size");
            let second = if count >= 2 {
                reader.positional_size("a size")
            } else {
                None
            };
            match (count, first, second) {
                (1, Some(out), _) => Builtin::Dense {
                    out: out.value,
                    stated_in: None,
                },
                (2.., Some(input), Some(out)) => Builtin::Dense {
                    out: out.value,
                    stated_in: Some(input),
                },
                (0, _, _) => {
                    reader.error(
                        kind,
                        "`Dense` takes its output size, `Dense<OUT>`, or both sizes, `Dense<IN, OUT>`",
                    );
                    Builtin::GlobalAvgPool
                }
                // A zero or non-integer size: already reported.
                _ => Builtin::GlobalAvgPool,
            }
        }
        "Conv1d" | "Conv2d" => {
            let dims = if text == "Conv1d" { 1 } else { 2 };
            let out = reader.positional_size("the number of output channels");
            let kernel = reader.positional_pair(dims, "the kernel size");
            let stride = reader.named_pair("stride", dims, 1, false);
            let padding = reader.named_pair("padding", dims, 0, true);
            let dilation = reader.named_pair("dilation", dims, 1, false);
            let bias = reader.named_bool("bias", true);
            let stated_in = reader.named_size("in_channels");
            match (out, kernel) {
                (Some(out), Some(kernel)) => Builtin::Conv {
                    dims,
                    out_channels: out.value,
                    stated_in,
                    kernel,
                    stride,
                    padding,
                    dilation,
                    bias,
                },
                _ => {
                    reader.error(
                        kind,
                        format!("`{text}` takes the output channels and the kernel size, e.g. `{text}<16, 3>`, then named options `stride`, `padding`, `dilation`, `bias`, `in_channels`"),
                    );
                    Builtin::GlobalAvgPool
                }
            }
        }
        "MaxPool1d" | "MaxPool2d" | "AvgPool1d" | "AvgPool2d" => {
            let dims = if text.ends_with("1d") { 1 } else { 2 };
            let kernel = reader.positional_pair(dims, "the kernel size");
            let kernel = kernel.unwrap_or_else(|| {
                reader.error(
                    kind,
                    format!("`{text}` takes its kernel size, e.g. `{text}<2>`"),
                );
                [1, 1]
            });
            let stride = reader.named_pair("stride", dims, 0, false);
            let stride = [0, 1].map(|i| if stride[i] == 0 { kernel[i] } else { stride[i] });
            Builtin::Pool {
                max: text.starts_with("Max"),
                dims,
                kernel,
                stride,
            }
        }
        "GlobalAvgPool" => Builtin::GlobalAvgPool,
        "BatchNorm1d" | "BatchNorm2d" => Builtin::BatchNorm {
            dims: if text == "BatchNorm1d" { 1 } else { 2 },
            eps: reader.named_float("eps", 1e-5, |v| v > 0.0, "a positive number"),
            momentum: reader.named_float(
                "momentum",
                0.1,
                |v| (0.0..=1.0).contains(&v),
                "a number in [0, 1]",
            ),
        },
        "Dropout" => {
            let p = reader.positional_float("the probability of dropping an element");
            match p {
                Some((p, tokens)) if !(0.0..=1.0).contains(&p) => {
                    reader.error(
                        tokens,
                        "`Dropout`'s probability must be in [0, 1], e.g. `Dropout<0.5>`",
                    );
                    Builtin::Dropout { p: 0.0 }
                }
                Some((p, _)) => Builtin::Dropout { p },
                None => {
                    reader.error(
                        kind,
                        "`Dropout` takes the probability of dropping, e.g. `Dropout<0.5>`",
                    );
                    Builtin::Dropout { p: 0.0 }
                }
            }
        }
        "Rnn" | "Gru" | "Lstm" => {
            let cell = match text.as_str() {
                "Rnn" => Cell::Rnn,
                "Gru" => Cell::Gru,
                _ => Cell::Lstm,
            };
            let hidden = reader.positional_size("the hidden size");
            let last = reader.named_bool("last", false);
            match hidden {
                Some(hidden) => Builtin::Recurrent {
                    cell,
                    hidden: hidden.value,
                    last,
                },
                None => {
                    if reader.errors.is_empty() {
                        reader.error(
                            kind,
                            format!("`{text}` takes its hidden size, e.g. `{text}<32>`"),
                        );
                    }
                    Builtin::GlobalAvgPool
                }
            }
        }
        "LayerNorm" => Builtin::LayerNorm {
            eps: reader.named_float("eps", 1e-5, |v| v > 0.0, "a positive number"),
        },
        "MultiHeadAttention" | "SelfAttention" => {
            let heads = if text == "SelfAttention" {
                Some(Size {
                    value: 1,
                    lit: syn::LitInt::new("1", kind.span()),
                })
            } else {
                reader.positional_size("the number of heads")
            };
            let causal = reader.named_bool("causal", false);
            match heads {
                Some(heads) => Builtin::Attention { heads, causal },
                None => {
                    if reader.errors.is_empty() {
                        reader.error(kind, "`MultiHeadAttention` takes its number of heads, e.g. `MultiHeadAttention<4>`");
                    }
                    Builtin::GlobalAvgPool
                }
            }
        }
        "Embedding" => {
            let vocab = reader.positional_size("the vocabulary size");
            let dim = reader.positional_size("the embedding size");
            match (vocab, dim) {
                (Some(vocab), Some(dim)) => Builtin::Embedding {
                    vocab: vocab.value,
                    dim: dim.value,
                },
                _ => {
                    if reader.errors.is_empty() {
                        reader.error(kind, "`Embedding` takes the vocabulary and embedding sizes, e.g. `Embedding<1000, 64>`");
                    }
                    Builtin::GlobalAvgPool
                }
            }
        }
        "SinusoidalPositions" | "LearnedPositions" => Builtin::Positions {
            learned: text == "LearnedPositions",
        },
        _ => unreachable!("only built-in names reach `layers::parse`"),
    };
    reader.finish(kind);
    if reader.errors.is_empty() {
        Ok(layer)
    } else {
        Err(reader.errors)
    }
}

/// Reads a layer's arguments in order, collecting errors.
struct Args<'a> {
    positional: Vec<&'a ArgValue>,
    named: Vec<(&'a Ident, &'a ArgValue, bool)>,
    next: usize,
    errors: Vec<syn::Error>,
}

impl<'a> Args<'a> {
    fn new(args: &'a [LayerArg]) -> Self {
        let mut reader = Args {
            positional: Vec::new(),
            named: Vec::new(),
            next: 0,
            errors: Vec::new(),
        };
        for arg in args {
            match &arg.name {
                Some(name) => reader.named.push((name, &arg.value, false)),
                None if reader.named.is_empty() => reader.positional.push(&arg.value),
                None => reader.error(
                    arg.value.tokens(),
                    "positional arguments come before named ones",
                ),
            }
        }
        reader
    }

    fn error(&mut self, tokens: impl ToTokens, message: impl std::fmt::Display) {
        self.errors.push(syn::Error::new_spanned(tokens, message));
    }

    fn size(&mut self, value: &ArgValue, what: &str) -> Option<Size> {
        match value {
            ArgValue::Int(size) if size.value > 0 => Some(size.clone()),
            ArgValue::Int(size) => {
                self.error(&size.lit, "a size must be at least 1");
                None
            }
            other => {
                self.error(other.tokens(), format!("expected {what}, an integer"));
                None
            }
        }
    }

    fn positional_size(&mut self, what: &str) -> Option<Size> {
        let value = self.positional.get(self.next).copied()?;
        self.next += 1;
        self.size(value, what)
    }

    fn positional_float(&mut self, what: &str) -> Option<(f64, TokenStream)> {
        let value = self.positional.get(self.next).copied()?;
        self.next += 1;
        match value {
            ArgValue::Float { value, tokens } => Some((*value, tokens.clone())),
            ArgValue::Int(size) => Some((size.value as f64, size.lit.to_token_stream())),
            other => {
                self.error(other.tokens(), format!("expected {what}, a number"));
                None
            }
        }
    }

    /// A size for each of `dims` dimensions: `3` (the same for all) or `(3, 5)`.
    fn pair(
        &mut self,
        value: &ArgValue,
        dims: usize,
        zero_ok: bool,
        what: &str,
    ) -> Option<[usize; 2]> {
        let check = |reader: &mut Self, size: &Size| {
            if size.value == 0 && !zero_ok {
                reader.error(&size.lit, format!("{what} must be at least 1"));
                false
            } else {
                true
            }
        };
        match value {
            ArgValue::Int(size) => check(self, size).then_some([size.value; 2]),
            ArgValue::Pair { sizes, tokens } if sizes.len() == dims => {
                let ok = sizes.iter().all(|s| check(self, s));
                ok.then(|| [sizes[0].value, sizes[dims - 1].value])
            }
            ArgValue::Pair { tokens, .. } => {
                self.error(
                    tokens,
                    format!("{what} needs {dims} value(s), one per spatial dimension"),
                );
                None
            }
            other => {
                self.error(
                    other.tokens(),
                    format!("expected {what}: a size or a pair such as `(3, 5)`"),
                );
                None
            }
        }
    }

    fn positional_pair(&mut self, dims: usize, what: &str) -> Option<[usize; 2]> {
        let value = self.positional.get(self.next).copied()?;
        self.next += 1;
        self.pair(value, dims, false, what)
    }

    fn take_named(&mut self, name: &str) -> Option<&'a ArgValue> {
        let entry = self
            .named
            .iter_mut()
            .find(|(n, _, used)| *n == name && !*used)?;
        entry.2 = true;
        Some(entry.1)
    }

    fn named_pair(&mut self, name: &str, dims: usize, default: usize, zero_ok: bool) -> [usize; 2] {
        match self.take_named(name) {
            Some(value) => self
                .pair(value, dims, zero_ok, &format!("`{name}`"))
                .unwrap_or([default; 2]),
            None => [default; 2],
        }
    }

    fn named_size(&mut self, name: &str) -> Option<Size> {
        let value = self.take_named(name)?;
        self.size(value, &format!("`{name}`"))
    }

    fn named_bool(&mut self, name: &str, default: bool) -> bool {
        match self.take_named(name) {
            Some(ArgValue::Bool { value, .. }) => *value,
            Some(other) => {
                self.error(other.tokens(), format!("`{name}` is `true` or `false`"));
                default
            }
            None => default,
        }
    }

    fn named_float(
        &mut self,
        name: &str,
        default: f64,
        valid: impl Fn(f64) -> bool,
        what: &str,
    ) -> f64 {
        let (value, tokens) = match self.take_named(name) {
            Some(ArgValue::Float { value, tokens }) => (*value, tokens.clone()),
            Some(ArgValue::Int(size)) => (size.value as f64, size.lit.to_token_stream()),
            Some(other) => {
                self.error(other.tokens(), format!("`{name}` is {what}"));
                return default;
            }
            None => return default,
        };
        if valid(value) {
            value
        } else {
            self.error(tokens, format!("`{name}` is {what}"));
            default
        }
    }

    /// Reports arguments nobody read.
    fn finish(&mut self, kind: &Ident) {
        let extra: Vec<TokenStream> = self.positional[self.next.min(self.positional.len())..]
            .iter()
            .map(|value| value.tokens())
            .collect();
        for tokens in extra {
            self.error(
                tokens,
                format!("`{kind}` takes no more positional arguments"),
            );
        }
        let options = options(&kind.to_string());
        for (name, _, used) in self.named.clone() {
            if used {
                continue;
            }
            let text = name.to_string();
            let message = match crate::builtins::closest(&text, options.iter().copied()) {
                Some(hint) => format!("`{kind}` has no option `{name}`; did you mean `{hint}`?"),
                None if options.is_empty() => format!("`{kind}` takes no named options"),
                None => format!(
                    "`{kind}` has no option `{name}`; its options: {}",
                    options.join(", ")
                ),
            };
            self.error(name, message);
        }
    }
}

/// `length`, or `height` / `width`.
fn axis_name(dims: usize, d: usize) -> &'static str {
    match (dims, d) {
        (1, _) => "length",
        (_, 0) => "height",
        _ => "width",
    }
}

/// The named options of a built-in layer.
fn options(kind: &str) -> &'static [&'static str] {
    match kind {
        "Conv1d" | "Conv2d" => &["stride", "padding", "dilation", "bias", "in_channels"],
        "MaxPool1d" | "MaxPool2d" | "AvgPool1d" | "AvgPool2d" => &["stride"],
        "BatchNorm1d" | "BatchNorm2d" => &["eps", "momentum"],
        "Rnn" | "Gru" | "Lstm" => &["last"],
        "LayerNorm" => &["eps"],
        "MultiHeadAttention" | "SelfAttention" => &["causal"],
        _ => &[],
    }
}

impl Builtin {
    /// The DSL name, as written: `Conv2d`.
    pub fn name(&self) -> &'static str {
        match self {
            Builtin::Dense { .. } => "Dense",
            Builtin::Conv { dims: 1, .. } => "Conv1d",
            Builtin::Conv { .. } => "Conv2d",
            Builtin::Pool {
                max: true, dims: 1, ..
            } => "MaxPool1d",
            Builtin::Pool { max: true, .. } => "MaxPool2d",
            Builtin::Pool { dims: 1, .. } => "AvgPool1d",
            Builtin::Pool { .. } => "AvgPool2d",
            Builtin::GlobalAvgPool => "GlobalAvgPool",
            Builtin::BatchNorm { dims: 1, .. } => "BatchNorm1d",
            Builtin::BatchNorm { .. } => "BatchNorm2d",
            Builtin::Dropout { .. } => "Dropout",
            Builtin::Recurrent {
                cell: Cell::Rnn, ..
            } => "Rnn",
            Builtin::Recurrent {
                cell: Cell::Gru, ..
            } => "Gru",
            Builtin::Recurrent {
                cell: Cell::Lstm, ..
            } => "Lstm",
            Builtin::LayerNorm { .. } => "LayerNorm",
            Builtin::Attention { .. } => "MultiHeadAttention",
            Builtin::Embedding { .. } => "Embedding",
            Builtin::Positions { learned: false } => "SinusoidalPositions",
            Builtin::Positions { learned: true } => "LearnedPositions",
        }
    }

    /// Whether the layer keeps state across passes (a field of the network's `state`).
    pub fn has_state(&self) -> bool {
        matches!(self, Builtin::BatchNorm { .. } | Builtin::Dropout { .. })
    }

    /// Whether the layer keeps a cache in the tape (possibly `()`) for an input of shape
    /// `input`; every layer but a plain `Dense` is given a field, so that a layer's
    /// implementation may choose.
    pub fn has_cache(&self, input: &[usize]) -> bool {
        !matches!(self, Builtin::Dense { .. }) || input.len() > 1
    }

    /// The declaration's argument to blame when the input does not suit the layer's
    /// arguments (the number of heads), rather than the call.
    pub fn blamed_argument(&self) -> Option<TokenStream> {
        match self {
            Builtin::Attention { heads, .. } => Some(heads.lit.to_token_stream()),
            _ => None,
        }
    }

    /// The output shape for an input of shape `input`, or a message explaining why the input
    /// does not fit (`layer` names the layer, `arg` the input node), with whether to blame
    /// the declaration's argument ([`Builtin::blamed_argument`]) rather than the call.
    pub fn output_shape(
        &self,
        layer: &str,
        arg: &str,
        input: &[usize],
    ) -> Result<Vec<usize>, (String, bool)> {
        self.output_shape_or_message(layer, arg, input)
            .map_err(|message| {
                let blame = matches!(self, Builtin::Attention { .. }) && input.len() == 2;
                (message, blame)
            })
    }

    fn output_shape_or_message(
        &self,
        layer: &str,
        arg: &str,
        input: &[usize],
    ) -> Result<Vec<usize>, String> {
        let name = self.name();
        let article = if name.starts_with(['A', 'E', 'I', 'O', 'U']) {
            "an"
        } else {
            "a"
        };
        let wrong_rank = |wanted: &str| {
            format!(
                "`{layer}` is {article} {name} layer and needs a {wanted} input, but `{arg}` has \
                 shape {}",
                shape_text(input)
            )
        };
        match *self {
            Builtin::Dense { out, .. } => match input {
                [_] => Ok(vec![out]),
                // PyTorch's `nn.Linear` on `(N, S, D)`: the same layer at every position.
                [steps, _] => Ok(vec![*steps, out]),
                _ => Err(format!(
                    "`{layer}` is a Dense layer and needs a vector (or a sequence [S, D], taken \
                     position by position), but `{arg}` has shape {}; \
                     flatten it first: `Flatten,` before it in a sequential network, \
                     `{layer}(flatten({arg}))` in a `forward` block",
                    shape_text(input)
                )),
            },
            Builtin::Conv {
                dims,
                out_channels,
                kernel,
                stride,
                padding,
                dilation,
                ..
            } => {
                if input.len() != dims + 1 {
                    return Err(wrong_rank(if dims == 1 { "[C, L]" } else { "[C, H, W]" }));
                }
                let mut out = vec![out_channels];
                for d in 0..dims {
                    let size = input[1 + d];
                    let span = dilation[d] * (kernel[d] - 1) + 1;
                    let padded = size + 2 * padding[d];
                    if span > padded {
                        let axis = axis_name(dims, d);
                        return Err(format!(
                            "`{layer}`'s kernel spans {span} positions in {axis} (kernel {}, \
                             dilation {}), more than `{arg}`'s {size} (padded: {padded}); use a \
                             smaller kernel or add `padding`",
                            kernel[d], dilation[d]
                        ));
                    }
                    out.push((padded - span) / stride[d] + 1);
                }
                Ok(out)
            }
            Builtin::Pool {
                dims,
                kernel,
                stride,
                ..
            } => {
                if input.len() != dims + 1 {
                    return Err(wrong_rank(if dims == 1 { "[C, L]" } else { "[C, H, W]" }));
                }
                let mut out = vec![input[0]];
                for d in 0..dims {
                    let size = input[1 + d];
                    if kernel[d] > size {
                        return Err(format!(
                            "`{layer}`'s window of {} is larger than `{arg}`'s {size} positions in \
                             {}; use a smaller window",
                            kernel[d],
                            axis_name(dims, d)
                        ));
                    }
                    out.push((size - kernel[d]) / stride[d] + 1);
                }
                Ok(out)
            }
            Builtin::GlobalAvgPool => match input {
                [_, _, ..] => Ok(vec![input[0]]),
                _ => Err(wrong_rank("[C, L] or [C, H, W]")),
            },
            Builtin::BatchNorm { dims: 1, .. } => match input {
                [_] | [_, _] => Ok(input.to_vec()),
                _ => Err(wrong_rank("[C] or [C, L]")),
            },
            Builtin::BatchNorm { .. } => match input {
                [_, _, _] => Ok(input.to_vec()),
                _ => Err(wrong_rank("[C, H, W]")),
            },
            Builtin::Dropout { .. } => Ok(input.to_vec()),
            Builtin::Recurrent { hidden, last, .. } => match input {
                [steps, _] => Ok(if last {
                    vec![hidden]
                } else {
                    vec![*steps, hidden]
                }),
                _ => Err(wrong_rank("sequence [S, D]")),
            },
            Builtin::LayerNorm { .. } => match input {
                [_] | [_, _] => Ok(input.to_vec()),
                _ => Err(wrong_rank("[D] or [S, D]")),
            },
            Builtin::Attention { ref heads, .. } => match input {
                [_, d] if d % heads.value == 0 => Ok(input.to_vec()),
                [_, d] => Err(format!(
                    "`{layer}` splits `{arg}`'s {d} features into {} heads, but {d} is not a \
                     multiple of {}",
                    heads.value, heads.value
                )),
                _ => Err(wrong_rank("sequence [S, D]")),
            },
            Builtin::Embedding { dim, .. } => match input {
                [steps] => Ok(vec![*steps, dim]),
                _ => Err(wrong_rank("sequence of token ids [S]")),
            },
            Builtin::Positions { .. } => match input {
                [_, _] => Ok(input.to_vec()),
                _ => Err(wrong_rank("sequence [S, D]")),
            },
        }
    }

    /// The input channels a layer states (`Dense<IN, OUT>`, `in_channels = ..`), to check
    /// against the graph: the stated size and the actual one.
    pub fn stated_input(&self, input: &[usize]) -> Option<(&Size, usize)> {
        match self {
            Builtin::Dense {
                stated_in: Some(s), ..
            } => Some((s, input[input.len() - 1])),
            Builtin::Conv {
                stated_in: Some(s), ..
            } => Some((s, input[0])),
            _ => None,
        }
    }

    /// Trainable scalars for this input shape.
    pub fn param_count(&self, input: &[usize]) -> usize {
        match *self {
            Builtin::Dense { out, .. } => out * input[input.len() - 1] + out,
            Builtin::Conv {
                dims,
                out_channels,
                kernel,
                bias,
                ..
            } => {
                let k: usize = input[0] * kernel[..dims].iter().product::<usize>();
                out_channels * k + if bias { out_channels } else { 0 }
            }
            Builtin::BatchNorm { .. } => 2 * input[0],
            Builtin::Recurrent { cell, hidden, .. } => {
                let gh = cell.gates() * hidden;
                gh * input[1] + gh * hidden + 2 * gh
            }
            Builtin::LayerNorm { .. } => 2 * input[input.len() - 1],
            Builtin::Attention { .. } => {
                let d = input[1];
                3 * d * d + 3 * d + d * d + d
            }
            Builtin::Embedding { vocab, dim } => vocab * dim,
            Builtin::Positions { learned: true } => input.iter().product(),
            _ => 0,
        }
    }

    /// The operation as the summary shows it: `Conv2d(1 → 6, 5×5, stride 2)`.
    pub fn describe(&self, input: &[usize], output: &[usize]) -> String {
        let dims = |v: &[usize]| v.iter().map(usize::to_string).collect::<Vec<_>>().join("×");
        match *self {
            Builtin::Dense { out, .. } if input.len() == 2 => {
                format!("Dense({} → {out}), per position", input[1])
            }
            Builtin::Dense { out, .. } => format!("Dense({} → {out})", input[0]),
            Builtin::Conv {
                dims: d,
                out_channels,
                kernel,
                stride,
                padding,
                dilation,
                bias,
                ..
            } => {
                let mut text = format!(
                    "{}({} → {out_channels}, {}",
                    self.name(),
                    input[0],
                    dims(&kernel[..d])
                );
                if stride[..d].iter().any(|&s| s != 1) {
                    text += &format!(", stride {}", dims(&stride[..d]));
                }
                if padding[..d].iter().any(|&p| p != 0) {
                    text += &format!(", padding {}", dims(&padding[..d]));
                }
                if dilation[..d].iter().any(|&p| p != 1) {
                    text += &format!(", dilation {}", dims(&dilation[..d]));
                }
                if !bias {
                    text += ", no bias";
                }
                text + ")"
            }
            Builtin::Pool {
                dims: d,
                kernel,
                stride,
                ..
            } => {
                let mut text = format!("{}({}", self.name(), dims(&kernel[..d]));
                if stride[..d] != kernel[..d] {
                    text += &format!(", stride {}", dims(&stride[..d]));
                }
                text + ")"
            }
            Builtin::GlobalAvgPool => format!(
                "GlobalAvgPool({} → {})",
                shape_text(input),
                shape_text(output)
            ),
            Builtin::BatchNorm { eps, momentum, .. } => {
                format!(
                    "{}({}, eps {eps}, momentum {momentum})",
                    self.name(),
                    input[0]
                )
            }
            Builtin::Dropout { p } => format!("Dropout({p})"),
            Builtin::Recurrent { hidden, last, .. } => format!(
                "{}({} → {hidden}{})",
                self.name(),
                input[input.len() - 1],
                if last { ", last" } else { "" }
            ),
            Builtin::LayerNorm { eps } => {
                format!("LayerNorm({}, eps {eps})", input[input.len() - 1])
            }
            Builtin::Attention { ref heads, causal } => format!(
                "MultiHeadAttention({} heads{})",
                heads.value,
                if causal { ", causal" } else { "" }
            ),
            Builtin::Embedding { vocab, dim } => format!("Embedding({vocab} × {dim})"),
            Builtin::Positions { .. } => self.name().to_string(),
        }
    }

    /// The `nn-core` type of the layer, for an input and output of these shapes;
    /// `with_state`: a recurrent layer called with an initial state.
    pub fn type_tokens(&self, input: &[usize], output: &[usize], with_state: bool) -> TokenStream {
        let n = |v: usize| Literal::usize_unsuffixed(v);
        let bits = |v: f64| Literal::u64_unsuffixed(v.to_bits());
        let (in_size, out_size) = (n(input.iter().product()), n(output.iter().product()));
        match *self {
            Builtin::Dense { out, .. } if input.len() == 2 => {
                let (s, d, o) = (n(input[0]), n(input[1]), n(out));
                quote! {
                    ::nn::layers::PositionWise<T, ::nn::layers::Dense<T, #d, #o>, #d, #o, #s,
                        #in_size, #out_size>
                }
            }
            Builtin::Dense { .. } => quote! { ::nn::layers::Dense<T, #in_size, #out_size> },
            Builtin::Conv {
                dims,
                out_channels,
                kernel,
                stride,
                padding,
                dilation,
                bias,
                ..
            } => {
                let co = n(out_channels);
                let k = n(input[0] * kernel[..dims].iter().product::<usize>());
                let nb = n(if bias { out_channels } else { 0 });
                let ci = n(input[0]);
                if dims == 1 {
                    let (l, kl, s, p, d) = (
                        n(input[1]),
                        n(kernel[0]),
                        n(stride[0]),
                        n(padding[0]),
                        n(dilation[0]),
                    );
                    quote! {
                        ::nn::layers::Conv1d<T, #co, #k, #nb, #in_size, #out_size,
                            ::nn::layers::Geometry1d<#ci, #l, #kl, #s, #p, #d>>
                    }
                } else {
                    let (h, w) = (n(input[1]), n(input[2]));
                    let (kh, kw) = (n(kernel[0]), n(kernel[1]));
                    let (sh, sw) = (n(stride[0]), n(stride[1]));
                    let (ph, pw) = (n(padding[0]), n(padding[1]));
                    let (dh, dw) = (n(dilation[0]), n(dilation[1]));
                    quote! {
                        ::nn::layers::Conv2d<T, #co, #k, #nb, #in_size, #out_size,
                            ::nn::layers::Geometry2d<#ci, #h, #w, #kh, #kw, #sh, #sw, #ph, #pw, #dh, #dw>>
                    }
                }
            }
            Builtin::Pool {
                max,
                dims,
                kernel,
                stride,
            } => {
                let c = n(input[0]);
                let geometry = if dims == 1 {
                    let (l, k, s) = (n(input[1]), n(kernel[0]), n(stride[0]));
                    quote! { ::nn::layers::PoolGeometry1dOf<#c, #l, #k, #s> }
                } else {
                    let (h, w) = (n(input[1]), n(input[2]));
                    let (kh, kw, sh, sw) = (n(kernel[0]), n(kernel[1]), n(stride[0]), n(stride[1]));
                    quote! { ::nn::layers::PoolGeometry2dOf<#c, #h, #w, #kh, #kw, #sh, #sw> }
                };
                let ty = match (max, dims) {
                    (true, 1) => quote! { MaxPool1d },
                    (true, _) => quote! { MaxPool2d },
                    (false, 1) => quote! { AvgPool1d },
                    (false, _) => quote! { AvgPool2d },
                };
                quote! { ::nn::layers::#ty<T, #in_size, #out_size, #geometry> }
            }
            Builtin::GlobalAvgPool => {
                let c = n(input[0]);
                let s = n(input[1..].iter().product());
                quote! { ::nn::layers::GlobalAvgPool<T, #c, #s, #in_size> }
            }
            Builtin::BatchNorm { eps, momentum, .. } => {
                let c = n(input[0]);
                let s = n(input[1..].iter().product());
                let (eps, momentum) = (bits(eps), bits(momentum));
                quote! { ::nn::layers::BatchNorm<T, #c, #s, #in_size, #eps, #momentum> }
            }
            Builtin::Dropout { p } => {
                let p = bits(p);
                quote! { ::nn::layers::Dropout<T, #in_size, #p> }
            }
            Builtin::Recurrent { cell, hidden, last } => {
                let (d, h, s) = (n(input[1]), n(hidden), n(input[0]));
                let packed = n(input.iter().product::<usize>()
                    + if with_state {
                        cell.state_inputs() * hidden
                    } else {
                        0
                    });
                let gh = n(cell.gates() * hidden);
                let init = with_state;
                match cell {
                    Cell::Rnn => {
                        quote! { ::nn::layers::Rnn<T, #d, #h, #s, #packed, #out_size, #last, #init> }
                    }
                    Cell::Gru => {
                        quote! { ::nn::layers::Gru<T, #d, #h, #gh, #s, #packed, #out_size, #last, #init> }
                    }
                    Cell::Lstm => {
                        quote! { ::nn::layers::Lstm<T, #d, #h, #gh, #s, #packed, #out_size, #last, #init> }
                    }
                }
            }
            Builtin::LayerNorm { eps } => {
                let d = n(input[input.len() - 1]);
                let rows = n(input[..input.len() - 1].iter().product());
                let eps = bits(eps);
                quote! { ::nn::layers::LayerNorm<T, #d, #rows, #in_size, #eps> }
            }
            Builtin::Attention { ref heads, causal } => {
                let (s, d, h, d3) = (n(input[0]), n(input[1]), n(heads.value), n(3 * input[1]));
                quote! { ::nn::layers::MultiHeadAttention<T, #d, #h, #s, #in_size, #d3, #causal> }
            }
            Builtin::Embedding { vocab, dim } => {
                let (v, d, s) = (n(vocab), n(dim), n(input[0]));
                quote! { ::nn::layers::Embedding<T, #v, #d, #s, #out_size> }
            }
            Builtin::Positions { learned } => {
                let (s, d) = (n(input[0]), n(input[1]));
                if learned {
                    quote! { ::nn::layers::LearnedPositions<T, #s, #d, #in_size> }
                } else {
                    quote! { ::nn::layers::SinusoidalPositions<T, #s, #d, #in_size> }
                }
            }
        }
    }
}
