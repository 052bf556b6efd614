//! Reading a built-in layer's arguments, `Conv2d<16, 3, stride = 2>`: positional ones in
//! order, named options by name, every problem collected as an error spanned on the argument.
//!
//! A family's parser asks for what it takes; the options it asks for are, in that order, the
//! options named in the "has no option" message, so no list of them is kept elsewhere.

use crate::diagnostics::{Errors, closest};
use crate::parse::{ArgValue, LayerArg, Size};
use crate::shape::Dim;
use proc_macro2::TokenStream;
use quote::ToTokens;
use syn::Ident;

/// A size written in the declaration, with its tokens, to blame it when the graph disagrees
/// (`Dense<IN, OUT>`'s `IN`, `in_channels = 3`, the number of heads).
#[derive(Clone)]
pub struct Stated {
    pub value: Dim,
    pub tokens: TokenStream,
}

impl From<Size> for Stated {
    fn from(size: Size) -> Self {
        Stated {
            value: size.value,
            tokens: size.tokens,
        }
    }
}

/// A size per spatial dimension, or a word standing for one (`padding = same`).
pub enum PairOrWord {
    Pair([usize; 2]),
    Word(Ident),
}

/// Reads a layer's arguments in order, collecting errors.
pub struct Args<'a> {
    /// The layer's name as written: `Conv2d`.
    pub kind: &'a Ident,
    positional: Vec<&'a ArgValue>,
    named: Vec<(&'a Ident, &'a ArgValue, bool)>,
    next: usize,
    /// The options the parser asked for, in order.
    options: Vec<&'static str>,
    errors: Errors,
}

impl<'a> Args<'a> {
    /// The arguments of `kind<args>`; a positional argument after a named one is an error.
    pub fn new(kind: &'a Ident, args: &'a [LayerArg]) -> Self {
        let mut reader = Args {
            kind,
            positional: Vec::new(),
            named: Vec::new(),
            next: 0,
            options: Vec::new(),
            errors: Errors::default(),
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

    /// Reports a problem with `tokens`.
    pub fn error(&mut self, tokens: impl ToTokens, message: impl std::fmt::Display) {
        self.errors.spanned(tokens, message);
    }

    /// Reports a problem with the layer as a whole (its name is spanned).
    pub fn error_on_layer(&mut self, message: impl std::fmt::Display) {
        self.errors.spanned(self.kind, message);
    }

    /// Whether a problem was reported.
    pub fn has_errors(&self) -> bool {
        !self.errors.is_empty()
    }

    /// Number of positional arguments written.
    pub fn positional_count(&self) -> usize {
        self.positional.len()
    }

    fn size(&mut self, value: &ArgValue, what: &str) -> Option<Size> {
        match value {
            ArgValue::Int(size) if size.value.known() == Some(0) => {
                self.error(&size.tokens, "a size must be at least 1");
                None
            }
            ArgValue::Int(size) => Some(size.clone()),
            other => {
                self.error(other.tokens(), format!("expected {what}, an integer"));
                None
            }
        }
    }

    /// The next positional argument, a size of at least 1 (`what` names it in messages);
    /// `None` if there is none or it is not one (reported).
    pub fn positional_size(&mut self, what: &str) -> Option<Size> {
        let value = self.positional.get(self.next).copied()?;
        self.next += 1;
        self.size(value, what)
    }

    /// The next positional argument, a number, with its tokens.
    pub fn positional_float(&mut self, what: &str) -> Option<(f64, TokenStream)> {
        let value = self.positional.get(self.next).copied()?;
        self.next += 1;
        match value {
            ArgValue::Float { value, tokens } => Some((*value, tokens.clone())),
            ArgValue::Int(size) => {
                let n = self.known(size, what)?;
                Some((n as f64, size.tokens.clone()))
            }
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
            let n = reader.known(size, what)?;
            if n == 0 && !zero_ok {
                reader.error(&size.tokens, format!("{what} must be at least 1"));
                None
            } else {
                Some(n)
            }
        };
        match value {
            ArgValue::Int(size) => check(self, size).map(|n| [n; 2]),
            ArgValue::Pair { sizes, .. } if sizes.len() == dims => {
                let values: Vec<Option<usize>> = sizes.iter().map(|s| check(self, s)).collect();
                let values: Option<Vec<usize>> = values.into_iter().collect();
                values.map(|v| [v[0], v[dims - 1]])
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

    /// The number a size must be where the macro computes with it (a kernel, a stride, a
    /// number of heads), or an error if it is a constant.
    pub fn known(&mut self, size: &Size, what: &str) -> Option<usize> {
        if let Some(n) = size.value.known() {
            return Some(n);
        }
        self.error(
            &size.tokens,
            format!(
                "{what} must be a number: constants are allowed as channel, feature and \
                 sequence sizes, not here"
            ),
        );
        None
    }

    /// The next positional argument, a size per spatial dimension (`3` or `(3, 5)`).
    pub fn positional_pair(&mut self, dims: usize, what: &str) -> Option<[usize; 2]> {
        let value = self.positional.get(self.next).copied()?;
        self.next += 1;
        self.pair(value, dims, false, what)
    }

    fn take_named(&mut self, name: &'static str) -> Option<&'a ArgValue> {
        if !self.options.contains(&name) {
            self.options.push(name);
        }
        let entry = self
            .named
            .iter_mut()
            .find(|(n, _, used)| *n == name && !*used)?;
        entry.2 = true;
        Some(entry.1)
    }

    /// The option `name = 3` or `name = (3, 5)`, or `default` in every dimension.
    pub fn named_pair(
        &mut self,
        name: &'static str,
        dims: usize,
        default: usize,
        zero_ok: bool,
    ) -> [usize; 2] {
        match self.take_named(name) {
            Some(value) => self
                .pair(value, dims, zero_ok, &format!("`{name}`"))
                .unwrap_or([default; 2]),
            None => [default; 2],
        }
    }

    /// The option `name = 3`, `name = (3, 5)` or `name = word` for one of `words` (`padding =
    /// same`), or `default` in every dimension.
    pub fn named_pair_or_word(
        &mut self,
        name: &'static str,
        dims: usize,
        default: usize,
        words: &[&str],
    ) -> PairOrWord {
        match self.take_named(name) {
            Some(ArgValue::Word(word)) if words.iter().any(|w| word == w) => {
                PairOrWord::Word(word.clone())
            }
            Some(ArgValue::Word(word)) => {
                let words: Vec<String> = words.iter().map(|w| format!("`{w}`")).collect();
                self.error(
                    word,
                    format!("`{name}` is a size, a pair or one of {}", words.join(", ")),
                );
                PairOrWord::Pair([default; 2])
            }
            Some(value) => PairOrWord::Pair(
                self.pair(value, dims, true, &format!("`{name}`"))
                    .unwrap_or([default; 2]),
            ),
            None => PairOrWord::Pair([default; 2]),
        }
    }

    /// The option `name = 3`, if written.
    pub fn named_size(&mut self, name: &'static str) -> Option<Size> {
        let value = self.take_named(name)?;
        self.size(value, &format!("`{name}`"))
    }

    /// The option `name = true`, or `default`.
    pub fn named_bool(&mut self, name: &'static str, default: bool) -> bool {
        match self.take_named(name) {
            Some(ArgValue::Bool { value, .. }) => *value,
            Some(other) => {
                self.error(other.tokens(), format!("`{name}` is `true` or `false`"));
                default
            }
            None => default,
        }
    }

    /// The option `name = 0.5`, or `default`; `what` describes the valid values.
    pub fn named_float(
        &mut self,
        name: &'static str,
        default: f64,
        valid: impl Fn(f64) -> bool,
        what: &str,
    ) -> f64 {
        let (value, tokens) = match self.take_named(name) {
            Some(ArgValue::Float { value, tokens }) => (*value, tokens.clone()),
            Some(ArgValue::Int(size)) => match self.known(size, &format!("`{name}`")) {
                Some(n) => (n as f64, size.tokens.clone()),
                None => return default,
            },
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

    /// Reports the arguments nobody read, and returns every problem found.
    pub fn finish(mut self) -> Errors {
        let kind = self.kind;
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
        let options = std::mem::take(&mut self.options);
        for (name, _, used) in self.named.clone() {
            if used {
                continue;
            }
            let text = name.to_string();
            let message = match closest(&text, options.iter().copied()) {
                Some(hint) => format!("`{kind}` has no option `{name}`; did you mean `{hint}`?"),
                None if options.is_empty() => format!("`{kind}` takes no named options"),
                None => format!(
                    "`{kind}` has no option `{name}`; its options: {}",
                    options.join(", ")
                ),
            };
            self.error(name, message);
        }
        self.errors
    }
}
