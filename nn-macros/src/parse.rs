//! Stage 1: the typed syntax tree of the DSL. Syntax only: no name resolution, no shapes.
//!
//! ```text
//! network     := attr* vis "struct" Ident "{" entry ("," entry)* ","? "}" forward?
//! entry       := Ident ":" shape                  (sequential input: `input: [2]`)
//!              | attr* Ident ":" layer            (`#[init(he_normal)] hidden: Dense<8>`)
//!              | activation                       (sequential only: `Tanh`, `LeakyRelu(0.2)`)
//! layer       := Ident ("<" arg ("," arg)* ">")?  (built-in: `Dense<OUT>`, `Conv2d<16, 3, stride = 2>`)
//!              | Type "->" shape                  (a type of yours implementing `nn::Layer`)
//! arg         := (Ident "=")? (size | number | bool | "(" size ("," size)* ")")
//! forward     := "forward" "(" Ident ":" shape ("," ...)* ")" "->" outputs "{" stmt* "}"
//! outputs     := output | "(" output ("," output)* ")"      output := Ident (":" shape)?
//! stmt        := "let" Ident "=" expr ";"
//! expr        := Ident | Ident "(" arg ("," arg)* ")" | expr "+" expr | expr "*" expr | "(" expr ")"
//! arg         := expr | number
//! shape       := "[" size ("," size)* "]"         size := integer literal
//! ```

use crate::shape::Dim;
use proc_macro2::{Span, TokenStream};
use quote::ToTokens;
use syn::ext::IdentExt;
use syn::parse::{Parse, ParseStream};
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::{Attribute, Ident, LitInt, Token, Type, Visibility, bracketed, parenthesized};

/// The whole macro input.
pub struct NetworkDef {
    /// The struct's attributes, carried over to the generated struct (without `#[nn(..)]`).
    pub attrs: Vec<Attribute>,
    /// `#[nn(crate = path)]`: the path of the `nn` crate, for crates that re-export it.
    pub krate: Option<syn::Path>,
    /// `#[nn(int8)]`: also generate the int8 network (`NetQ8`), at this attribute.
    pub int8: Option<Span>,
    pub vis: Visibility,
    pub name: Ident,
    pub entries: Vec<Entry>,
    pub forward: Option<Forward>,
}

/// One comma-separated entry of the struct body.
pub enum Entry {
    /// `input: [2]`: the input of a sequential network.
    Input { name: Ident, shape: ShapeSpec },
    /// `name: Dense<8>` or `name: MyLayer<T> -> [8]`, with its attributes
    /// (`#[init(he_normal)]`).
    Layer {
        attrs: Vec<Attribute>,
        name: Ident,
        spec: LayerSpec,
    },
    /// A bare activation in a sequential network: `Tanh`, `LeakyRelu(0.2)`.
    Activation(Call),
}

/// The type of a layer declaration.
pub enum LayerSpec {
    /// `Dense<8>`, `Conv2d<16, 3, stride = 2>`, `Dropout<0.5>`: a built-in layer (or an
    /// unknown name) with its arguments.
    Builtin { kind: Ident, args: Vec<LayerArg> },
    /// `MyLayer<T, 4> -> [4]`: a user type implementing `nn::Layer`, with its output shape.
    Custom { ty: Box<Type>, out: ShapeSpec },
}

/// An argument of a built-in layer: positional (`16`) or named (`stride = 2`).
pub struct LayerArg {
    pub name: Option<Ident>,
    pub value: ArgValue,
}

/// The value of a layer argument, with its tokens for error spans.
pub enum ArgValue {
    Int(Size),
    Float {
        value: f64,
        tokens: TokenStream,
    },
    Bool {
        value: bool,
        tokens: TokenStream,
    },
    /// `(3, 5)`: one size per spatial dimension.
    Pair {
        sizes: Vec<Size>,
        tokens: TokenStream,
    },
    /// A word an option takes: `same` in `padding = same`.
    Word(Ident),
}

impl ArgValue {
    /// Tokens to span an error on.
    pub fn tokens(&self) -> TokenStream {
        match self {
            ArgValue::Int(size) => size.tokens.clone(),
            ArgValue::Word(word) => word.to_token_stream(),
            ArgValue::Float { tokens, .. }
            | ArgValue::Bool { tokens, .. }
            | ArgValue::Pair { tokens, .. } => tokens.clone(),
        }
    }
}

/// A size: an integer literal, a constant (`H`, `sizes::H`) or a const block
/// (`{ 2 * H }`), kept with its tokens for error spans.
#[derive(Clone)]
pub struct Size {
    pub value: Dim,
    pub tokens: TokenStream,
}

/// `[a, b, ...]`, as written.
#[derive(Clone)]
pub struct ShapeSpec {
    pub dims: Vec<Size>,
    pub span: Span,
}

/// `forward(inputs) -> outputs { statements }`.
pub struct Forward {
    pub keyword: Ident,
    pub inputs: Vec<(Ident, ShapeSpec)>,
    pub outputs: Vec<(Ident, Option<ShapeSpec>)>,
    pub statements: Vec<(Ident, Expr)>,
}

/// An expression of a `forward` block.
pub enum Expr {
    /// A node's name.
    Node(Ident),
    /// `f(args)`: a layer, an activation or `concat`.
    Call(Call),
    /// `a + b` or `a * b`.
    Binary {
        op: BinOp,
        left: Box<Expr>,
        right: Box<Expr>,
        tokens: TokenStream,
    },
}

/// `+` or `*`.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum BinOp {
    Add,
    Mul,
}

/// `name(args)`; in a sequential network, `Name` or `Name(numbers)`.
pub struct Call {
    pub func: Ident,
    pub args: Vec<Arg>,
    pub tokens: TokenStream,
}

/// An argument of a call.
pub enum Arg {
    Expr(Expr),
    Number { value: f64, tokens: TokenStream },
}

impl Parse for NetworkDef {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let (nn_attrs, attrs): (Vec<Attribute>, Vec<Attribute>) = input
            .call(Attribute::parse_outer)?
            .into_iter()
            .partition(|attr| attr.path().is_ident("nn"));
        let (krate, int8) = nn_attributes(&nn_attrs)?;
        let vis: Visibility = input.parse()?;
        input.parse::<Token![struct]>()?;
        let name: Ident = input.parse()?;
        if input.peek(Token![<]) {
            return Err(input.error(
                "a network takes no generic parameters: `network!` adds the scalar type \
                 `T` (f32 by default) itself",
            ));
        }
        let body;
        syn::braced!(body in input);
        let entries = Punctuated::<Entry, Token![,]>::parse_terminated(&body)?;
        let forward = if input.is_empty() {
            None
        } else {
            Some(input.parse()?)
        };
        if !input.is_empty() {
            return Err(input.error("unexpected tokens after the `forward` block"));
        }
        Ok(NetworkDef {
            attrs,
            krate,
            int8,
            vis,
            name,
            entries: entries.into_iter().collect(),
            forward,
        })
    }
}

/// The visibility and name of the network (`pub struct Net`), read from input that may not
/// parse further: the fallback struct of a syntax error needs them.
pub fn header(tokens: TokenStream) -> Option<(Visibility, Ident)> {
    let parser = |input: ParseStream| {
        input.call(Attribute::parse_outer)?;
        let vis: Visibility = input.parse()?;
        input.parse::<Token![struct]>()?;
        let name: Ident = input.parse()?;
        input.parse::<TokenStream>()?;
        Ok((vis, name))
    };
    syn::parse::Parser::parse2(parser, tokens).ok()
}

/// The `nn` attributes of a network: `#[nn(crate = path)]` and `#[nn(int8)]`.
fn nn_attributes(attrs: &[Attribute]) -> syn::Result<(Option<syn::Path>, Option<Span>)> {
    let mut krate = None;
    let mut int8 = None;
    for attr in attrs {
        attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("crate") {
                krate = Some(meta.value()?.parse::<syn::Path>()?);
                Ok(())
            } else if meta.path.is_ident("int8") {
                int8 = Some(meta.path.span());
                Ok(())
            } else {
                Err(meta.error(
                    "a network takes `#[nn(crate = path::to::nn)]`, the path of the `nn` crate \
                     where another crate re-exports it, and `#[nn(int8)]`, which also generates \
                     its int8 network",
                ))
            }
        })?;
    }
    Ok((krate, int8))
}

impl Parse for Entry {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let attrs = input.call(Attribute::parse_outer)?;
        let only_on_layers = |attrs: &[Attribute]| match attrs.first() {
            Some(attr) => Err(syn::Error::new_spanned(
                attr,
                "attributes such as `#[init(he_normal)]` go on layers, `#[init(..)] fc: Dense<8>`",
            )),
            None => Ok(()),
        };
        let named = input.peek2(Token![:]) && !input.peek2(Token![::]);
        if named && input.peek(Ident::peek_any) && !input.peek(Ident) {
            let keyword = Ident::parse_any(input)?;
            return Err(syn::Error::new(
                keyword.span(),
                format!(
                    "`{keyword}` is a Rust keyword, so it cannot name a layer (a field of the \
                     struct): choose another name, e.g. `{keyword}_`"
                ),
            ));
        }
        if !(input.peek(Ident) && named) {
            only_on_layers(&attrs)?;
            return Ok(Entry::Activation(parse_sequential_activation(input)?));
        }
        let name: Ident = input.parse()?;
        input.parse::<Token![:]>()?;
        if input.peek(LitInt) {
            let size: LitInt = input.parse()?;
            return Err(syn::Error::new(
                size.span(),
                format!("a shape is written in brackets: `{name}: [{size}]`"),
            ));
        }
        if input.peek(syn::token::Bracket) {
            only_on_layers(&attrs)?;
            return Ok(Entry::Input {
                name,
                shape: input.parse()?,
            });
        }
        // A type followed by `-> [OUT]` is a layer of the user's; anything else is read as a
        // built-in layer with its arguments (an unknown name is the model's to report).
        let fork = input.fork();
        if fork.parse::<Type>().is_ok() && fork.peek(Token![->]) {
            let ty: Type = input.parse()?;
            input.parse::<Token![->]>()?;
            let out = input.parse()?;
            return Ok(Entry::Layer {
                attrs,
                name,
                spec: LayerSpec::Custom {
                    ty: Box::new(ty),
                    out,
                },
            });
        }
        Ok(Entry::Layer {
            attrs,
            name,
            spec: builtin_spec(input)?,
        })
    }
}

/// `Dense<8>` → kind `Dense`, args `[8]`; `Conv2d<16, 3, stride = 2>`.
fn builtin_spec(input: ParseStream) -> syn::Result<LayerSpec> {
    let kind: Ident = input.parse().map_err(|e| {
        syn::Error::new(
            e.span(),
            "expected a built-in layer such as `Dense<OUT>`, or a layer of your own written \
             `MyLayer<..> -> [OUT]`",
        )
    })?;
    let mut args = Vec::new();
    if input.peek(syn::token::Paren) {
        let content;
        let parens = parenthesized!(content in input);
        let inside: TokenStream = content.parse()?;
        return Err(syn::Error::new(
            parens.span.join(),
            format!("a layer's arguments go in angle brackets: `{kind}<{inside}>`"),
        ));
    }
    if input.peek(Token![<]) {
        input.parse::<Token![<]>()?;
        while !input.peek(Token![>]) {
            let name = if input.peek(Ident) && input.peek2(Token![=]) {
                let name: Ident = input.parse()?;
                input.parse::<Token![=]>()?;
                Some(name)
            } else {
                None
            };
            args.push(LayerArg {
                name,
                value: arg_value(input)?,
            });
            if !input.peek(Token![>]) {
                input.parse::<Token![,]>()?;
            }
        }
        input.parse::<Token![>]>()?;
    }
    Ok(LayerSpec::Builtin { kind, args })
}

/// `16`, `0.5`, `false`, `(3, 5)`.
fn arg_value(input: ParseStream) -> syn::Result<ArgValue> {
    if input.peek(syn::token::Paren) {
        let content;
        let parens = parenthesized!(content in input);
        let sizes = Punctuated::<Size, Token![,]>::parse_terminated_with(&content, Size::parse)?;
        let mut tokens = TokenStream::new();
        parens.surround(&mut tokens, |t| {
            for pair in sizes.pairs() {
                t.extend(pair.value().tokens.clone());
                pair.punct().to_tokens(t);
            }
        });
        let sizes = sizes.into_iter().collect();
        return Ok(ArgValue::Pair { sizes, tokens });
    }
    if input.peek(Token![-]) && input.peek2(LitInt) {
        return Ok(ArgValue::Int(Size::parse(input)?));
    }
    let fork = input.fork();
    if let Ok(word) = fork.parse::<Ident>()
        && (word == "same" || word == "valid")
    {
        input.parse::<Ident>()?;
        return Ok(ArgValue::Word(word));
    }
    if input.peek(Ident) || input.peek(Token![::]) || input.peek(syn::token::Brace) {
        return Ok(ArgValue::Int(Size::parse(input)?));
    }
    let lit: syn::Lit = input.parse().map_err(|e| {
        syn::Error::new(
            e.span(),
            "expected a layer argument: a size `16` (or a constant `H`, `{ 2 * H }`), a pair \
             `(3, 5)`, a number `0.5` or `true`/`false`",
        )
    })?;
    let tokens = lit.to_token_stream();
    Ok(match lit {
        syn::Lit::Int(int) => ArgValue::Int(Size::new(int)?),
        syn::Lit::Float(float) => ArgValue::Float {
            value: float.base10_parse()?,
            tokens,
        },
        syn::Lit::Bool(b) => ArgValue::Bool {
            value: b.value,
            tokens,
        },
        other => {
            return Err(syn::Error::new_spanned(
                other,
                "expected a size `16`, a pair `(3, 5)`, a number `0.5` or `true`/`false`",
            ));
        }
    })
}

/// `Tanh` or `LeakyRelu(0.2)`.
fn parse_sequential_activation(input: ParseStream) -> syn::Result<Call> {
    let func: Ident = input.parse().map_err(|e| {
        syn::Error::new(
            e.span(),
            "expected `name: Layer`, `input: [size]` or an activation such as `Relu`",
        )
    })?;
    if input.peek(Token![<]) {
        return Err(syn::Error::new(
            func.span(),
            format!(
                "a layer needs a name, its field in the struct: `my_layer: {func}<..>` \
                 (activations such as `Relu` need none)"
            ),
        ));
    }
    let mut tokens = func.to_token_stream();
    let mut args = Vec::new();
    if input.peek(syn::token::Paren) {
        let content;
        let parens = parenthesized!(content in input);
        let numbers = Punctuated::<syn::Expr, Token![,]>::parse_terminated(&content)?;
        for number in numbers {
            args.push(number_arg(&number)?);
        }
        parens.surround(&mut tokens, |t| t.extend(args_tokens(&args)));
    }
    Ok(Call { func, args, tokens })
}

fn args_tokens(args: &[Arg]) -> TokenStream {
    let mut tokens = TokenStream::new();
    for arg in args {
        if let Arg::Number { tokens: t, .. } = arg {
            tokens.extend(t.clone());
        }
    }
    tokens
}

impl Parse for ShapeSpec {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let content;
        let brackets = bracketed!(content in input);
        let sizes = Punctuated::<Size, Token![,]>::parse_terminated_with(&content, Size::parse)?;
        if sizes.is_empty() {
            return Err(syn::Error::new(
                brackets.span.join(),
                "a shape needs at least one size, e.g. `[16]`",
            ));
        }
        let dims = sizes.into_iter().collect();
        Ok(ShapeSpec {
            dims,
            span: brackets.span.join(),
        })
    }
}

impl Size {
    fn new(lit: LitInt) -> syn::Result<Self> {
        let value = Dim::Known(lit.base10_parse::<usize>()?);
        Ok(Size {
            value,
            tokens: lit.to_token_stream(),
        })
    }

    /// A size: an integer literal, a constant's path or a const block. A negative number gets
    /// the message of a zero one, on the sign and the digits.
    fn parse(input: ParseStream) -> syn::Result<Self> {
        if input.peek(Token![-]) {
            let minus: Token![-] = input.parse()?;
            let lit: LitInt = input.parse()?;
            return Err(syn::Error::new_spanned(
                quote::quote!(#minus #lit),
                "a size must be at least 1",
            ));
        }
        if input.peek(syn::token::Brace) {
            let block: syn::ExprBlock = input.parse()?;
            let inner = match block.block.stmts.as_slice() {
                [syn::Stmt::Expr(expr, None)] => expr.to_token_stream(),
                _ => block.block.to_token_stream(),
            };
            let text = inner.to_string();
            return Ok(Size {
                value: Dim::symbolic(inner, text),
                tokens: block.to_token_stream(),
            });
        }
        if input.peek(Ident) || input.peek(Token![::]) {
            let path: syn::Path = input.parse()?;
            let text = path.to_token_stream().to_string().replace(" :: ", "::");
            let tokens = path.to_token_stream();
            return Ok(Size {
                value: Dim::symbolic(tokens.clone(), text),
                tokens,
            });
        }
        let lit: LitInt = input.parse().map_err(|error| {
            syn::Error::new(
                error.span(),
                "expected a size: a number `16`, a constant `H` or a const block `{ 2 * H }`",
            )
        })?;
        Size::new(lit)
    }
}

impl Parse for Forward {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let keyword: Ident = input.parse()?;
        if keyword != "forward" {
            return Err(syn::Error::new(
                keyword.span(),
                "expected `forward(input: [size], ...) -> output { ... }` after the struct",
            ));
        }
        let content;
        parenthesized!(content in input);
        let mut inputs = Vec::new();
        for pair in Punctuated::<InputDecl, Token![,]>::parse_terminated(&content)? {
            inputs.push((pair.name, pair.shape));
        }
        input.parse::<Token![->]>()?;
        let mut outputs = Vec::new();
        if input.peek(syn::token::Paren) {
            let content;
            parenthesized!(content in input);
            for output in Punctuated::<OutputDecl, Token![,]>::parse_terminated(&content)? {
                outputs.push((output.name, output.shape));
            }
        } else {
            let output: OutputDecl = input.parse()?;
            outputs.push((output.name, output.shape));
        }
        let body;
        syn::braced!(body in input);
        let mut statements = Vec::new();
        while !body.is_empty() {
            body.parse::<Token![let]>()?;
            let name: Ident = body.parse()?;
            body.parse::<Token![=]>()?;
            let expr: syn::Expr = body.parse()?;
            if !body.peek(Token![;]) {
                return Err(syn::Error::new_spanned(
                    &expr,
                    format!("expected `;` after this expression: `let {name} = ...;`"),
                ));
            }
            body.parse::<Token![;]>()?;
            statements.push((name, Expr::from_syn(&expr)?));
        }
        Ok(Forward {
            keyword,
            inputs,
            outputs,
            statements,
        })
    }
}

struct InputDecl {
    name: Ident,
    shape: ShapeSpec,
}

impl Parse for InputDecl {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let name = input.parse()?;
        input.parse::<Token![:]>()?;
        let shape = input.parse()?;
        Ok(InputDecl { name, shape })
    }
}

struct OutputDecl {
    name: Ident,
    shape: Option<ShapeSpec>,
}

impl Parse for OutputDecl {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let name = input.parse()?;
        let shape = if input.peek(Token![:]) {
            input.parse::<Token![:]>()?;
            Some(input.parse()?)
        } else {
            None
        };
        Ok(OutputDecl { name, shape })
    }
}

const EXPR_HELP: &str = "a `forward` block is built from node names, layer calls `fc1(x)`, \
                         activations `relu(x)`, `concat(a, b)`, `a + b` and `a * b`";

impl Expr {
    fn from_syn(expr: &syn::Expr) -> syn::Result<Self> {
        match expr {
            syn::Expr::Path(path) if path.qself.is_none() && path.attrs.is_empty() => {
                match path.path.get_ident() {
                    Some(ident) => Ok(Expr::Node(ident.clone())),
                    None => Err(syn::Error::new_spanned(expr, EXPR_HELP)),
                }
            }
            syn::Expr::Paren(paren) => Expr::from_syn(&paren.expr),
            syn::Expr::Binary(binary) => {
                let op = match binary.op {
                    syn::BinOp::Add(_) => BinOp::Add,
                    syn::BinOp::Mul(_) => BinOp::Mul,
                    _ => {
                        return Err(syn::Error::new_spanned(
                            binary.op,
                            "only `+` (element-wise sum) and `*` (element-wise product) \
                             combine nodes",
                        ));
                    }
                };
                Ok(Expr::Binary {
                    op,
                    left: Box::new(Expr::from_syn(&binary.left)?),
                    right: Box::new(Expr::from_syn(&binary.right)?),
                    tokens: expr.to_token_stream(),
                })
            }
            syn::Expr::Call(call) => {
                let func = match &*call.func {
                    syn::Expr::Path(path) if path.qself.is_none() => path.path.get_ident(),
                    _ => None,
                };
                let Some(func) = func else {
                    return Err(syn::Error::new_spanned(&call.func, EXPR_HELP));
                };
                let args = call
                    .args
                    .iter()
                    .map(|arg| match arg {
                        syn::Expr::Lit(_) | syn::Expr::Unary(_) => number_arg(arg),
                        _ => Ok(Arg::Expr(Expr::from_syn(arg)?)),
                    })
                    .collect::<syn::Result<_>>()?;
                Ok(Expr::Call(Call {
                    func: func.clone(),
                    args,
                    tokens: expr.to_token_stream(),
                }))
            }
            _ => Err(syn::Error::new_spanned(expr, EXPR_HELP)),
        }
    }

    /// The expression's tokens, to span an error on all of it.
    pub fn tokens(&self) -> TokenStream {
        match self {
            Expr::Node(ident) => ident.to_token_stream(),
            Expr::Call(call) => call.tokens.clone(),
            Expr::Binary { tokens, .. } => tokens.clone(),
        }
    }
}

/// A numeric literal argument, optionally negated: `0.2`, `-1.5`, `3`.
fn number_arg(expr: &syn::Expr) -> syn::Result<Arg> {
    let (negative, lit) = match expr {
        syn::Expr::Unary(syn::ExprUnary {
            op: syn::UnOp::Neg(_),
            expr: inner,
            ..
        }) => (true, &**inner),
        other => (false, other),
    };
    let value = match lit {
        syn::Expr::Lit(syn::ExprLit {
            lit: syn::Lit::Float(f),
            ..
        }) => f.base10_parse::<f64>()?,
        syn::Expr::Lit(syn::ExprLit {
            lit: syn::Lit::Int(i),
            ..
        }) => i.base10_parse::<f64>()?,
        _ => {
            return Err(syn::Error::new_spanned(
                expr,
                "expected a number, e.g. `0.2`",
            ));
        }
    };
    Ok(Arg::Number {
        value: if negative { -value } else { value },
        tokens: expr.to_token_stream(),
    })
}
