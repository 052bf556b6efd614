//! The derives' typed input: the struct, its `#[nn(..)]` attributes, its scalar type and its
//! fields, with every rule the derive can check itself (the rest are trait bounds and const
//! assertions in the generated code). All errors are collected, each on the token to change.

use super::Derive;
use proc_macro2::{TokenStream, TokenTree};
use quote::ToTokens;
use syn::meta::ParseNestedMeta;
use syn::spanned::Spanned;
use syn::{
    Attribute, Data, DeriveInput, Fields, GenericParam, Generics, Ident, Member, Type,
    TypeParamBound, WherePredicate,
};

/// A struct to derive for, checked.
pub struct Input {
    /// The struct's name.
    pub ident: Ident,
    /// Its generics, as declared.
    pub generics: Generics,
    /// Its fields, in declaration order.
    pub fields: Vec<Field>,
    /// The scalar type parameter: the one bounded by `Real`.
    pub scalar: Option<Ident>,
    /// The runtime crate's path from `#[nn(crate = path)]`, if given.
    pub krate: Option<syn::Path>,
}

/// One field of the struct.
pub struct Field {
    /// Its name, or index in a tuple struct.
    pub member: Member,
    /// Its type.
    pub ty: Type,
    /// `#[nn(skip)]`: not a parameter (it must follow every parameter).
    pub skip: bool,
    /// Whether its type names a type parameter other than the scalar, so that whether it
    /// implements a trait is known only per instance: the impl then requires it (a where
    /// clause) instead of checking it at the field.
    pub generic: bool,
}

impl Field {
    /// The field's name as the user wrote it (`weight`, or `0` in a tuple struct).
    pub fn name(&self) -> String {
        match &self.member {
            Member::Named(ident) => ident.to_string(),
            Member::Unnamed(index) => index.index.to_string(),
        }
    }
}

/// What went wrong, or the checked input plus the errors a fallback impl can still follow.
pub struct Checked {
    /// The input, if it is a struct.
    pub input: Option<Input>,
    /// Every error found.
    pub errors: Vec<syn::Error>,
}

/// Reads and checks `input` for `derive`.
pub fn check(input: DeriveInput, derive: Derive) -> Checked {
    let mut errors = Vec::new();
    let krate = struct_attributes(&input.attrs, &mut errors);
    let fields = match &input.data {
        Data::Struct(data) => &data.fields,
        Data::Enum(data) => {
            errors.push(syn::Error::new(data.enum_token.span, derive.needs_struct()));
            return Checked {
                input: None,
                errors,
            };
        }
        Data::Union(data) => {
            errors.push(syn::Error::new(
                data.union_token.span,
                derive.needs_struct(),
            ));
            return Checked {
                input: None,
                errors,
            };
        }
    };
    let scalar = scalar_parameter(&input.generics, &mut errors);
    let others: Vec<Ident> = input
        .generics
        .type_params()
        .map(|param| param.ident.clone())
        .filter(|ident| Some(ident) != scalar.as_ref())
        .collect();
    let fields: Vec<Field> = members(fields)
        .map(|(member, field)| Field {
            member,
            skip: field_skip(&field.attrs, &mut errors),
            generic: mentions_any(field.ty.to_token_stream(), &others),
            ty: field.ty.clone(),
        })
        .collect();

    if derive == Derive::Params {
        if !has_repr_c(&input.attrs) {
            errors.push(syn::Error::new(
                input.ident.span(),
                format!(
                    "#[derive(Params)] needs `#[repr(C)]` on `{}`: its parameters are read as \
                     one slice, which needs its fields in declaration order",
                    input.ident
                ),
            ));
        }
        if scalar.is_none() {
            let span = match input.generics.params.is_empty() {
                true => input.ident.span(),
                false => input.generics.span(),
            };
            errors.push(syn::Error::new(
                span,
                format!(
                    "#[derive(Params)] needs the scalar type as a type parameter bounded by \
                     `Real`, as in `struct {}<T: Real, ..>`: the parameters are scalars of \
                     that type",
                    input.ident
                ),
            ));
        }
        check_skipped_fields_last(&fields, &mut errors);
    }

    Checked {
        input: Some(Input {
            ident: input.ident,
            generics: input.generics,
            fields,
            scalar,
            krate,
        }),
        errors,
    }
}

/// The fields with their members (`name`, or `0`, `1`, .. in a tuple struct).
fn members(fields: &Fields) -> impl Iterator<Item = (Member, &syn::Field)> {
    fields.iter().enumerate().map(|(index, field)| {
        let member = match &field.ident {
            Some(ident) => Member::Named(ident.clone()),
            None => Member::Unnamed(syn::Index {
                index: index as u32,
                span: field.ty.span(),
            }),
        };
        (member, field)
    })
}

/// `#[nn(crate = path)]` on the struct; any other `nn` key is an error.
fn struct_attributes(attrs: &[Attribute], errors: &mut Vec<syn::Error>) -> Option<syn::Path> {
    let mut krate = None;
    for_each_nn_key(attrs, errors, |meta| {
        if meta.path.is_ident("crate") {
            krate = Some(meta.value()?.parse::<syn::Path>()?);
            Ok(())
        } else if meta.path.is_ident("skip") {
            Err(meta.error("`#[nn(skip)]` marks a field, not the struct: put it on the field"))
        } else {
            Err(unknown(
                &meta,
                "a struct takes `#[nn(crate = path::to::nn)]`",
            ))
        }
    });
    krate
}

/// Whether a field has `#[nn(skip)]`; any other `nn` key is an error.
fn field_skip(attrs: &[Attribute], errors: &mut Vec<syn::Error>) -> bool {
    let mut skip = false;
    for_each_nn_key(attrs, errors, |meta| {
        if meta.path.is_ident("skip") {
            skip = true;
            Ok(())
        } else {
            Err(unknown(
                &meta,
                "a field takes `#[nn(skip)]` (not a parameter)",
            ))
        }
    });
    skip
}

/// Calls `parse` on each key of every `#[nn(..)]` attribute, collecting its errors.
fn for_each_nn_key(
    attrs: &[Attribute],
    errors: &mut Vec<syn::Error>,
    mut parse: impl FnMut(ParseNestedMeta) -> syn::Result<()>,
) {
    for attr in attrs.iter().filter(|attr| attr.path().is_ident("nn")) {
        errors.extend(attr.parse_nested_meta(&mut parse).err());
    }
}

/// The error for an `nn` key that does not belong here.
fn unknown(meta: &ParseNestedMeta, expected: &str) -> syn::Error {
    let key = meta.path.to_token_stream();
    meta.error(format!("unknown `nn` attribute `{key}`: {expected}"))
}

/// Whether the struct has `#[repr(C)]` or `#[repr(transparent)]` (with any other hints:
/// `align(N)` padding is caught by the size assertion).
fn has_repr_c(attrs: &[Attribute]) -> bool {
    let mut found = false;
    for attr in attrs.iter().filter(|attr| attr.path().is_ident("repr")) {
        // A malformed `repr` is rustc's to report.
        let _ = attr.parse_nested_meta(|meta| {
            found |= meta.path.is_ident("C") || meta.path.is_ident("transparent");
            if meta.input.peek(syn::token::Paren) {
                let _: TokenStream = meta.input.parse()?;
            }
            Ok(())
        });
    }
    found
}

/// The type parameter bounded by `Real` (in its declaration or in the where clause); a
/// second one is an error.
fn scalar_parameter(generics: &Generics, errors: &mut Vec<syn::Error>) -> Option<Ident> {
    let is_real = |bound: &TypeParamBound| {
        matches!(bound, TypeParamBound::Trait(bound)
            if bound.path.segments.last().is_some_and(|segment| segment.ident == "Real"))
    };
    let bounded_in_where = |ident: &Ident| {
        generics
            .where_clause
            .iter()
            .flat_map(|clause| &clause.predicates)
            .any(|predicate| {
                matches!(predicate, WherePredicate::Type(predicate)
                if matches!(&predicate.bounded_ty, Type::Path(ty) if ty.path.is_ident(ident))
                    && predicate.bounds.iter().any(is_real))
            })
    };
    let mut scalar: Option<Ident> = None;
    for param in &generics.params {
        let GenericParam::Type(param) = param else {
            continue;
        };
        if !(param.bounds.iter().any(is_real) || bounded_in_where(&param.ident)) {
            continue;
        }
        match &scalar {
            None => scalar = Some(param.ident.clone()),
            Some(first) => errors.push(syn::Error::new(
                param.ident.span(),
                format!(
                    "a second scalar type parameter: all the parameters of a struct are \
                     scalars of one type, `{first}`"
                ),
            )),
        }
    }
    scalar
}

/// `#[nn(skip)]` fields must follow every parameter: the parameters are read as one slice
/// from the start of the struct.
fn check_skipped_fields_last(fields: &[Field], errors: &mut Vec<syn::Error>) {
    let Some(first_skipped) = fields.iter().position(|field| field.skip) else {
        return;
    };
    for field in fields[first_skipped..].iter().filter(|field| !field.skip) {
        errors.push(syn::Error::new(
            field.member.span(),
            format!(
                "parameter field `{}` after the `#[nn(skip)]` field `{}`: the parameters are \
                 read as one slice from the start of the struct, so they come first (or mark \
                 this field `#[nn(skip)]` too)",
                field.name(),
                fields[first_skipped].name()
            ),
        ));
    }
}

/// Whether `tokens` name any of `idents` (a type parameter, anywhere in a type).
fn mentions_any(tokens: TokenStream, idents: &[Ident]) -> bool {
    tokens.into_iter().any(|token| match token {
        TokenTree::Ident(ident) => idents.contains(&ident),
        TokenTree::Group(group) => mentions_any(group.stream(), idents),
        _ => false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use syn::parse_quote;

    fn errors(input: DeriveInput, derive: Derive) -> Vec<String> {
        check(input, derive)
            .errors
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn finds_the_scalar_in_the_parameters_or_the_where_clause() {
        let checked = check(
            parse_quote!(
                #[repr(C)]
                struct S<G, T: nn::Real, const N: usize> {
                    w: SMatrix<T, N, 1>,
                }
            ),
            Derive::Params,
        );
        assert!(checked.errors.is_empty());
        assert_eq!(checked.input.unwrap().scalar.unwrap(), "T");
        let checked = check(
            parse_quote!(
                #[repr(C)]
                struct S<U>
                where
                    U: Real,
                {
                    w: SMatrix<U, 2, 1>,
                }
            ),
            Derive::Params,
        );
        assert_eq!(checked.input.unwrap().scalar.unwrap(), "U");
    }

    #[test]
    fn fields_naming_other_type_parameters_are_generic() {
        let checked = check(
            parse_quote!(
                #[repr(C)]
                struct S<T: Real, L> {
                    layer: Wrapper<L>,
                    w: SMatrix<T, 2, 1>,
                    _scalar: PhantomData<T>,
                }
            ),
            Derive::Params,
        );
        let generic: Vec<bool> = checked
            .input
            .unwrap()
            .fields
            .iter()
            .map(|f| f.generic)
            .collect();
        assert_eq!(generic, [true, false, false]);
    }

    #[test]
    fn params_needs_repr_c_and_a_scalar() {
        let messages = errors(
            parse_quote!(
                struct S<const N: usize> {
                    w: [f32; N],
                }
            ),
            Derive::Params,
        );
        assert_eq!(messages.len(), 2, "{messages:?}");
        assert!(messages[0].contains("needs `#[repr(C)]` on `S`"));
        assert!(messages[1].contains("type parameter bounded by `Real`"));
        // The other derives need neither.
        assert!(
            errors(
                parse_quote!(
                    struct S<const N: usize> {
                        w: [u8; N],
                    }
                ),
                Derive::ConstZero
            )
            .is_empty()
        );
        assert!(
            errors(
                parse_quote!(
                    #[repr(transparent)]
                    struct S<T: Real>(SMatrix<T, 1, 1>);
                ),
                Derive::Params
            )
            .is_empty()
        );
        assert!(
            errors(
                parse_quote!(
                    #[repr(C, align(16))]
                    struct S<T: Real>(SMatrix<T, 1, 1>);
                ),
                Derive::Params
            )
            .is_empty()
        );
    }

    #[test]
    fn skipped_fields_come_last() {
        let messages = errors(
            parse_quote!(
                #[repr(C)]
                struct S<T: Real> {
                    a: SMatrix<T, 2, 1>,
                    #[nn(skip)]
                    count: u64,
                    b: SMatrix<T, 2, 1>,
                }
            ),
            Derive::Params,
        );
        assert_eq!(messages.len(), 1);
        assert!(
            messages[0].starts_with("parameter field `b` after the `#[nn(skip)]` field `count`")
        );
    }

    #[test]
    fn two_scalars_enums_and_unknown_attributes_are_errors() {
        let messages = errors(
            parse_quote!(
                #[repr(C)]
                struct S<T: Real, U: Real> {
                    w: SMatrix<T, 1, 1>,
                }
            ),
            Derive::Params,
        );
        assert_eq!(
            messages,
            [
                "a second scalar type parameter: all the parameters of a struct are scalars of one type, `T`"
            ]
        );
        let messages = errors(
            parse_quote!(
                enum E {
                    A,
                }
            ),
            Derive::Zeroable,
        );
        assert_eq!(messages.len(), 1);
        assert!(messages[0].starts_with("#[derive(Zeroable)] needs a struct"));
        let messages = errors(
            parse_quote!(
                #[nn(krate = x)]
                struct S {
                    #[nn(skipped)]
                    a: u8,
                }
            ),
            Derive::ConstZero,
        );
        assert_eq!(messages.len(), 2);
        assert!(messages[0].starts_with("unknown `nn` attribute `krate`"));
        assert!(messages[1].starts_with("unknown `nn` attribute `skipped`"));
    }

    #[test]
    fn reads_the_crate_override() {
        let checked = check(
            parse_quote!(
                #[nn(crate = my::nn)]
                struct S;
            ),
            Derive::ConstZero,
        );
        let krate = checked.input.unwrap().krate.unwrap();
        assert_eq!(krate.to_token_stream().to_string(), "my :: nn");
    }
}
