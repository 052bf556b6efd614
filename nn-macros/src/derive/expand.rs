//! The derived impls. Only `quote!`: every check the macro makes is in [`super::input`];
//! what only the compiler knows is emitted as bounds spanned on the field types (an error
//! then points at the field) and as const assertions.

use super::input::{Field, Input};
use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::Generics;
use syn::spanned::Spanned;

/// `unsafe impl Params<T>`: `LEN` is the sum of the parameter fields' `LEN`s, computed by a
/// const block that also asserts the layout the trait's contract asks for (evaluated
/// wherever `LEN` is, so for every instance used).
pub fn params(input: &Input, krate: &TokenStream) -> TokenStream {
    let Input { ident, .. } = input;
    let scalar = input.scalar.as_ref().expect("checked by input::check");
    let parameters: Vec<&Field> = input.fields.iter().filter(|field| !field.skip).collect();
    let generics = with_bounds(
        &input.generics,
        parameters.iter().copied(),
        quote!(#krate::Params<#scalar>),
    );
    let (impl_generics, ty_generics, where_clause) = generics.split_for_impl();

    let size_of_scalar = quote!(::core::mem::size_of::<#scalar>());
    let fields = parameters.iter().map(|field| {
        let (member, ty) = (&field.member, &field.ty);
        let message = format!(
            "#[derive(Params)]: field `{}` of `{ident}` does not start where the parameters \
             before it end (the field before it ends with padding or non-parameter data)",
            field.name()
        );
        // A zero-sized field holds no parameter, wherever it is.
        quote_spanned! {ty.span()=>
            ::core::assert!(
                ::core::mem::size_of::<#ty>() == 0
                    || ::core::mem::offset_of!(Self, #member) == len * #size_of_scalar,
                #message,
            );
            len += <#ty as #krate::Params<#scalar>>::LEN;
        }
    });
    let mutable = (!parameters.is_empty()).then(|| quote!(mut));
    let aligned = format!(
        "#[derive(Params)]: `{ident}` is less aligned than its scalar type `{scalar}`: add a \
         field `_align: [{scalar}; 0]`"
    );
    // With `#[nn(skip)]` fields, non-parameter data follows the parameters.
    let no_padding = input.fields.iter().all(|field| !field.skip).then(|| {
        let message = format!(
            "#[derive(Params)]: `{ident}` is larger than its parameters (padding, or data that \
             is not a parameter: mark such fields `#[nn(skip)]` and put them last)"
        );
        quote_spanned! {ident.span()=>
            ::core::assert!(::core::mem::size_of::<Self>() == len * #size_of_scalar, #message);
        }
    });
    let aligned = quote_spanned! {ident.span()=>
        ::core::assert!(
            ::core::mem::align_of::<Self>() >= ::core::mem::align_of::<#scalar>(),
            #aligned,
        );
    };
    quote! {
        // SAFETY: `#[repr(C)]` (checked by the derive); `LEN` asserts at compile time that
        // the parameter fields hold `LEN` contiguous scalars from offset 0 and that `Self`
        // is aligned for the scalar.
        #[automatically_derived]
        unsafe impl #impl_generics #krate::Params<#scalar> for #ident #ty_generics #where_clause {
            const LEN: usize = {
                let #mutable len: usize = 0;
                #(#fields)*
                #aligned
                #no_padding
                len
            };
        }
    }
}

/// The impl emitted next to a failed `#[derive(Params)]` (whose errors stop the build
/// anyway), so that code requiring `Params` adds no follow-on errors.
pub fn params_fallback(input: &Input, krate: &TokenStream) -> Option<TokenStream> {
    let Input { ident, .. } = input;
    let scalar = input.scalar.as_ref()?;
    let (impl_generics, ty_generics, where_clause) = input.generics.split_for_impl();
    Some(quote! {
        // SAFETY: never run: the derive's errors fail the build.
        unsafe impl #impl_generics #krate::Params<#scalar> for #ident #ty_generics #where_clause {
            const LEN: usize = 0;
        }
    })
}

/// `impl ConstZero`: every field's `ZERO`.
pub fn const_zero(input: &Input, krate: &TokenStream) -> TokenStream {
    let Input { ident, .. } = input;
    let trait_path = quote!(#krate::ConstZero);
    let generics = with_bounds(&input.generics, input.fields.iter(), trait_path.clone());
    let (impl_generics, ty_generics, where_clause) = generics.split_for_impl();
    let fields = input.fields.iter().map(|field| {
        let (member, ty) = (&field.member, &field.ty);
        quote_spanned!(ty.span()=> #member: <#ty as #trait_path>::ZERO)
    });
    quote! {
        #[automatically_derived]
        impl #impl_generics #trait_path for #ident #ty_generics #where_clause {
            const ZERO: Self = Self { #(#fields,)* };
        }
    }
}

/// `unsafe impl Zeroable`, with every field's type required to be `Zeroable`: checked here
/// for the fields whose type is known, bounded on the impl for the others.
pub fn zeroable(input: &Input, krate: &TokenStream) -> TokenStream {
    let Input { ident, .. } = input;
    let trait_path = quote!(#krate::Zeroable);
    let generics = with_bounds(&input.generics, input.fields.iter(), trait_path.clone());
    let (impl_generics, ty_generics, where_clause) = generics.split_for_impl();
    let known: Vec<_> = input.fields.iter().filter(|field| !field.generic).collect();
    let check = (!known.is_empty()).then(|| {
        let (check_generics, _, check_where) = input.generics.split_for_impl();
        let checks = known.iter().map(|field| {
            let ty = &field.ty;
            quote_spanned!(ty.span()=> zeroable::<#ty>();)
        });
        quote! {
            const _: () = {
                #[allow(dead_code)]
                fn fields_are_zeroable #check_generics () #check_where {
                    fn zeroable<Z: #trait_path>() {}
                    #(#checks)*
                }
            };
        }
    });
    quote! {
        // SAFETY: every field's type is `Zeroable` (checked below, or required by the
        // bounds), so all-zero bytes are a valid value; padding may hold any bytes.
        #[automatically_derived]
        unsafe impl #impl_generics #trait_path for #ident #ty_generics #where_clause {}
        #check
    }
}

/// `generics` with `field_type: bound` added for each of `fields` whose type names a type
/// parameter other than the scalar (so whether it holds depends on the instance).
fn with_bounds<'a>(
    generics: &Generics,
    fields: impl Iterator<Item = &'a Field>,
    bound: TokenStream,
) -> Generics {
    let mut generics = generics.clone();
    for field in fields.filter(|field| field.generic) {
        let ty = &field.ty;
        generics
            .make_where_clause()
            .predicates
            .push(syn::parse_quote_spanned!(ty.span()=> #ty: #bound));
    }
    generics
}
