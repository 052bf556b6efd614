//! The shape of one sample of a node, a layer's input or a parameter: `[C, H, W]`, and its
//! sizes, [`Dim`]s.
//!
//! A size is a number the macro knows (a literal in the DSL, or computed from literals), or
//! one it cannot evaluate: a user's constant (`H`, `sizes::H`), a const block (`{ 2 * H }`),
//! or arithmetic on them (a convolution's output size). The generated code writes a symbolic
//! size in type position (`SMatrix<T, { 2 * H }, { B }>`: stable Rust, since the constants
//! are not generic), and every rule the macro cannot decide becomes a const assertion
//! ([`Check`]).

use proc_macro2::{Literal, Span, TokenStream};
use quote::{ToTokens, quote};
use std::fmt;

/// A size: a number, or a const expression of type `usize`.
#[derive(Clone, Debug)]
pub enum Dim {
    Known(usize),
    Symbolic(Symbol),
}

/// A size the macro cannot evaluate: `base + offset`, where `base` is a const expression as
/// the user wrote it or as the macro built it (`(H + 4 - 5) / 2`). Keeping the constant
/// offset apart folds `H + 2 - 3 + 1` to `H`, so a convolution with `padding = same` keeps
/// the very size it was given.
#[derive(Clone, Debug)]
pub struct Symbol {
    /// The expression, parenthesised if it is not a single token.
    base: TokenStream,
    /// How messages write it: `H`, `2 * H`.
    text: String,
    offset: i128,
}

/// Whether two sizes are equal, as far as the macro can tell.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Relation {
    Equal,
    Different,
    /// One of them is symbolic: rustc decides (a const assertion).
    Unknown,
}

impl Dim {
    /// The symbolic size written `tokens` (a path or a const block), shown as `text`.
    pub fn symbolic(tokens: TokenStream, text: String) -> Self {
        let single = tokens.clone().into_iter().count() == 1;
        let base = if single { tokens } else { quote!((#tokens)) };
        Dim::Symbolic(Symbol {
            base,
            text,
            offset: 0,
        })
    }

    /// The number, if the macro knows it.
    pub fn known(&self) -> Option<usize> {
        match self {
            Dim::Known(n) => Some(*n),
            Dim::Symbolic(_) => None,
        }
    }

    /// The size as a `usize` expression: `16`, `H`, `(H - 1)`.
    pub fn expr(&self) -> TokenStream {
        match self {
            Dim::Known(n) => Literal::usize_unsuffixed(*n).into_token_stream(),
            Dim::Symbolic(symbol) => symbol.expr(),
        }
    }

    /// The size as a const generic argument: `16`, `{ H }`.
    pub fn generic(&self) -> TokenStream {
        match self {
            Dim::Known(n) => Literal::usize_unsuffixed(*n).into_token_stream(),
            Dim::Symbolic(symbol) => {
                let expr = symbol.expr();
                quote!({ #expr })
            }
        }
    }

    /// `self + other`.
    pub fn add(&self, other: &Dim) -> Dim {
        match (self, other) {
            (Dim::Known(a), Dim::Known(b)) => Dim::Known(a + b),
            (Dim::Symbolic(s), Dim::Known(k)) | (Dim::Known(k), Dim::Symbolic(s)) => {
                Dim::Symbolic(s.shifted(*k as i128))
            }
            (a, b) => Dim::composite(a, "+", b),
        }
    }

    /// `self - k`: the caller knows it is not negative, or has asserted it. A symbolic one is
    /// emitted as a saturating subtraction, so that when the assertion fails it is the only
    /// error (not also an overflow in every type that holds the size).
    pub fn sub(&self, k: usize) -> Dim {
        match self {
            Dim::Known(a) => Dim::Known(a - k),
            Dim::Symbolic(s) => Dim::Symbolic(s.shifted(-(k as i128))),
        }
    }

    /// `self · other`.
    pub fn mul(&self, other: &Dim) -> Dim {
        match (self, other) {
            (Dim::Known(a), Dim::Known(b)) => Dim::Known(a * b),
            (Dim::Known(1), x) | (x, Dim::Known(1)) => x.clone(),
            (a, b) => Dim::composite(a, "*", b),
        }
    }

    /// `⌊self / k⌋`.
    pub fn div(&self, k: usize) -> Dim {
        match self {
            Dim::Known(a) => Dim::Known(a / k),
            _ if k == 1 => self.clone(),
            a => Dim::composite(a, "/", &Dim::Known(k)),
        }
    }

    /// The larger of `self` and `other` (a slot of the memory plan holds its largest value).
    pub fn max(&self, other: &Dim) -> Dim {
        match (self, other) {
            (Dim::Known(a), Dim::Known(b)) => Dim::Known(*a.max(b)),
            (Dim::Known(0), x) | (x, Dim::Known(0)) => x.clone(),
            (a, b) if a.relation(b) == Relation::Equal => a.clone(),
            (a, b) => {
                let (x, y) = (a.expr(), b.expr());
                Dim::Symbolic(Symbol {
                    base: quote!((if #x > #y { #x } else { #y })),
                    text: format!("max({a}, {b})"),
                    offset: 0,
                })
            }
        }
    }

    /// `a op b` as one new symbol.
    fn composite(a: &Dim, op: &str, b: &Dim) -> Dim {
        let (x, y) = (a.expr(), b.expr());
        let operator: TokenStream = op.parse().expect("an operator");
        let text = format!("{} {op} {}", a.operand_text(), b.operand_text());
        Dim::Symbolic(Symbol {
            base: quote!((#x #operator #y)),
            text,
            offset: 0,
        })
    }

    /// The text, parenthesised when it is a sum or a product (as an operand of another).
    fn operand_text(&self) -> String {
        let text = self.to_string();
        if text.contains(' ') {
            format!("({text})")
        } else {
            text
        }
    }

    /// Whether `self` and `other` are equal, as far as the macro can tell.
    pub fn relation(&self, other: &Dim) -> Relation {
        match (self, other) {
            (Dim::Known(a), Dim::Known(b)) if a == b => Relation::Equal,
            (Dim::Known(_), Dim::Known(_)) => Relation::Different,
            (Dim::Symbolic(a), Dim::Symbolic(b)) if a.same(b) => Relation::Equal,
            _ => Relation::Unknown,
        }
    }
}

impl Symbol {
    fn shifted(&self, by: i128) -> Symbol {
        Symbol {
            offset: self.offset + by,
            ..self.clone()
        }
    }

    fn expr(&self) -> TokenStream {
        let base = &self.base;
        let k = Literal::u128_unsuffixed(self.offset.unsigned_abs());
        match self.offset {
            0 => base.clone(),
            o if o > 0 => quote!((#base + #k)),
            _ => quote!(::core::primitive::usize::saturating_sub(#base, #k)),
        }
    }

    /// The same expression (as tokens) and offset.
    fn same(&self, other: &Symbol) -> bool {
        self.offset == other.offset && self.base.to_string() == other.base.to_string()
    }
}

impl<'a> std::iter::Product<&'a Dim> for Dim {
    fn product<I: Iterator<Item = &'a Dim>>(iter: I) -> Dim {
        iter.fold(Dim::Known(1), |product, d| product.mul(d))
    }
}

impl<'a> std::iter::Sum<&'a Dim> for Dim {
    fn sum<I: Iterator<Item = &'a Dim>>(iter: I) -> Dim {
        iter.fold(Dim::Known(0), |sum, d| sum.add(d))
    }
}

impl From<&Dim> for Dim {
    fn from(dim: &Dim) -> Self {
        dim.clone()
    }
}

impl From<&usize> for Dim {
    fn from(n: &usize) -> Self {
        Dim::Known(*n)
    }
}

impl From<usize> for Dim {
    fn from(n: usize) -> Self {
        Dim::Known(n)
    }
}

/// As messages write it: `16`, `H`, `H + 4`.
impl fmt::Display for Dim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Dim::Known(n) => write!(f, "{n}"),
            Dim::Symbolic(Symbol { text, offset, .. }) => match offset {
                0 => f.write_str(text),
                o if *o > 0 => write!(f, "{text} + {o}"),
                o => write!(f, "{text} - {}", -o),
            },
        }
    }
}

/// A shape rule the macro could not decide (a size is symbolic), for rustc to check: a
/// `const _: () = assert!(condition, "message");` item, spanned on the token to change.
#[derive(Clone)]
pub struct Check {
    pub condition: TokenStream,
    pub message: String,
    /// The first and the last token to blame (rustc underlines from one to the other).
    pub span: Span,
    pub end: Span,
}

impl Check {
    /// The rule `condition`, blaming the tokens `at`.
    pub fn new(condition: TokenStream, message: String, at: impl ToTokens) -> Check {
        let tokens: Vec<_> = at.into_token_stream().into_iter().collect();
        let span = tokens
            .first()
            .map_or_else(Span::call_site, |token| token.span());
        let end = tokens.last().map_or(span, |token| token.span());
        Check {
            condition,
            message,
            span,
            end,
        }
    }
}

/// A shape: its sizes, outermost first (PyTorch's order), stored flat in row-major order.
#[derive(Clone, Debug, Default)]
pub struct Shape(Vec<Dim>);

impl Shape {
    /// The shape with these sizes.
    pub fn new(dims: Vec<Dim>) -> Self {
        Shape(dims)
    }

    /// Its sizes, outermost first.
    pub fn dims(&self) -> &[Dim] {
        &self.0
    }

    /// Its number of dimensions.
    pub fn rank(&self) -> usize {
        self.0.len()
    }

    /// Its number of scalars (the rows a sample takes in the generated matrices).
    pub fn size(&self) -> Dim {
        self.0.iter().product()
    }

    /// Its innermost size: the features of a vector, or of each position of a sequence.
    pub fn last(&self) -> &Dim {
        &self.0[self.0.len() - 1]
    }

    /// The same shape with the first size replaced (concatenation along it).
    pub fn with_first(&self, first: Dim) -> Self {
        let mut dims = self.0.clone();
        dims[0] = first;
        Shape(dims)
    }

    /// Whether the shapes are equal, as far as the macro can tell: `Unknown` if they have
    /// the same rank and every pair of sizes is equal or undecided.
    pub fn relation(&self, other: &Shape) -> Relation {
        if self.rank() != other.rank() {
            return Relation::Different;
        }
        let relations: Vec<Relation> = self
            .0
            .iter()
            .zip(&other.0)
            .map(|(a, b)| a.relation(b))
            .collect();
        if relations.contains(&Relation::Different) {
            Relation::Different
        } else if relations.contains(&Relation::Unknown) {
            Relation::Unknown
        } else {
            Relation::Equal
        }
    }

    /// `a == b && c == d ...`: the condition that two shapes of the same rank are equal.
    pub fn equal_condition(&self, other: &Shape) -> TokenStream {
        let pairs = self.0.iter().zip(&other.0).map(|(a, b)| {
            let (a, b) = (a.expr(), b.expr());
            quote!((#a == #b))
        });
        quote!(true #(&& #pairs)*)
    }
}

/// Shapes are equal when the macro can tell: for the shapes of nodes that need not be
/// checked again (a layer's parameters, a summary).
impl PartialEq for Shape {
    fn eq(&self, other: &Shape) -> bool {
        self.relation(other) == Relation::Equal
    }
}

impl From<Vec<usize>> for Shape {
    fn from(dims: Vec<usize>) -> Self {
        Shape(dims.into_iter().map(Dim::Known).collect())
    }
}

impl<const N: usize> From<[usize; N]> for Shape {
    fn from(dims: [usize; N]) -> Self {
        Shape(dims.into_iter().map(Dim::Known).collect())
    }
}

impl<const N: usize> From<[&Dim; N]> for Shape {
    fn from(dims: [&Dim; N]) -> Self {
        Shape(dims.into_iter().cloned().collect())
    }
}

impl<const N: usize> From<[Dim; N]> for Shape {
    fn from(dims: [Dim; N]) -> Self {
        Shape(dims.to_vec())
    }
}

/// As the DSL writes it: `[3, 4]`, `[H, 4]`.
impl fmt::Display for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let dims: Vec<String> = self.0.iter().map(Dim::to_string).collect();
        write!(f, "[{}]", dims.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h() -> Dim {
        Dim::symbolic(quote!(H), "H".to_string())
    }

    #[test]
    fn known_sizes_fold() {
        let (a, b) = (Dim::Known(6), Dim::Known(4));
        assert_eq!(a.add(&b).known(), Some(10));
        assert_eq!(a.mul(&b).known(), Some(24));
        assert_eq!(a.sub(4).known(), Some(2));
        assert_eq!(Dim::Known(7).div(2).known(), Some(3));
        assert_eq!(Shape::from([2, 3, 4]).size().known(), Some(24));
    }

    #[test]
    fn constant_offsets_fold_into_the_symbol() {
        // A convolution with stride 1: (H + 2·2 − 5)/1 + 1 is H again.
        let out = h().add(&Dim::Known(4)).sub(5).div(1).add(&Dim::Known(1));
        assert_eq!(out.to_string(), "H");
        assert_eq!(out.expr().to_string(), "H");
        assert_eq!(out.relation(&h()), Relation::Equal);
        assert_eq!(out.generic().to_string(), "{ H }");
    }

    #[test]
    fn strided_sizes_are_expressions() {
        // (H + 2 − 3)/2 + 1.
        let out = h().add(&Dim::Known(2)).sub(3).div(2).add(&Dim::Known(1));
        assert_eq!(out.to_string(), "(H - 1) / 2 + 1");
        assert_eq!(
            out.expr().to_string(),
            "((:: core :: primitive :: usize :: saturating_sub (H , 1) / 2) + 1)"
        );
        assert_eq!(out.relation(&h()), Relation::Unknown);
    }

    #[test]
    fn products_and_sums_of_symbols() {
        let block = Dim::symbolic(quote!(2 * H), "2 * H".to_string());
        assert_eq!(block.expr().to_string(), "(2 * H)");
        let size = Shape::new(vec![h(), Dim::Known(3)]).size();
        assert_eq!(size.to_string(), "H * 3");
        assert_eq!(size.expr().to_string(), "(H * 3)");
        assert_eq!(h().add(&block).to_string(), "H + (2 * H)");
        assert_eq!(Dim::Known(1).mul(&h()).to_string(), "H");
    }

    #[test]
    fn relations() {
        let (a, b) = (Dim::Known(3), Dim::Known(4));
        assert_eq!(a.relation(&a), Relation::Equal);
        assert_eq!(a.relation(&b), Relation::Different);
        assert_eq!(a.relation(&h()), Relation::Unknown);
        let shape = Shape::new(vec![h(), Dim::Known(3)]);
        assert_eq!(shape.relation(&shape.clone()), Relation::Equal);
        assert_eq!(shape.relation(&Shape::from([5, 4])), Relation::Different);
        assert_eq!(shape.relation(&Shape::from([5, 3])), Relation::Unknown);
        assert_eq!(shape.relation(&Shape::from([5])), Relation::Different);
        assert_eq!(shape.to_string(), "[H, 3]");
        assert_eq!(
            shape.equal_condition(&Shape::from([5, 3])).to_string(),
            "true && (H == 5) && (3 == 3)"
        );
    }

    #[test]
    fn a_check_is_spanned_on_its_first_token() {
        let check = Check::new(quote!(H == 4), "mismatch".into(), quote!(H + 1));
        assert_eq!(check.condition.to_string(), "H == 4");
        assert_eq!(check.message, "mismatch");
    }
}
