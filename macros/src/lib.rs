//! The `#[asynchronous]` attribute of concertina: a function that returns a
//! `concertina::Future` of its result. Use it through `concertina`.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

use proc_macro::TokenStream;
use proc_macro2::{Span, TokenStream as TokenStream2};
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{parse_macro_input, Expr, FnArg, GenericParam, Ident, ItemFn, Pat, PatIdent, ReturnType};

mod remote;

/// Makes a function return a `concertina::Future` of its result. See
/// `concertina::asynchronous` for the whole description; the example below
/// runs as a doctest there, where `concertina` is in scope.
///
/// ```ignore
/// #[concertina::asynchronous]
/// fn exposure(ms: u64) -> u64 { ms * 2 }
/// assert_eq!(exposure(10).result(), Ok(20));
/// ```
#[proc_macro_attribute]
pub fn asynchronous(args: TokenStream, item: TokenStream) -> TokenStream {
    let mut pool: Option<Expr> = None;
    let parser = syn::meta::parser(|meta| {
        if meta.path.is_ident("pool") {
            pool = Some(meta.value()?.parse()?);
            Ok(())
        } else {
            Err(meta.error("unknown argument: #[asynchronous] accepts only `pool = <expression>`"))
        }
    });
    parse_macro_input!(args with parser);
    let function = parse_macro_input!(item as ItemFn);
    expand(function, pool)
        .unwrap_or_else(|e| e.to_compile_error())
        .into()
}

fn expand(function: ItemFn, pool: Option<Expr>) -> syn::Result<TokenStream2> {
    let sig = &function.sig;
    if let Some(asyncness) = &sig.asyncness {
        return Err(syn::Error::new(
            asyncness.span(),
            "#[asynchronous] takes a blocking fn; an async fn already returns a future",
        ));
    }
    if let Some(constness) = &sig.constness {
        return Err(syn::Error::new(
            constness.span(),
            "#[asynchronous] cannot make a const fn asynchronous",
        ));
    }

    let name = &sig.ident;
    let blocking = format_ident!("{}_blocking", name);
    let vis = &function.vis;
    let attrs = &function.attrs;
    let generics = &sig.generics;
    let where_clause = &generics.where_clause;
    let output = match &sig.output {
        ReturnType::Default => quote!(()),
        ReturnType::Type(_, ty) => quote!(#ty),
    };

    // The receiver, cloned into the task when borrowed.
    let mut receiver = None;
    let mut params = Vec::new();
    let mut forwarded = Vec::new();
    for (i, input) in sig.inputs.iter().enumerate() {
        match input {
            FnArg::Receiver(r) => {
                if r.mutability.is_some() && r.reference.is_some() {
                    return Err(syn::Error::new(
                        r.span(),
                        "#[asynchronous] methods take `&self` or `self`: a task cannot borrow `&mut self` \
                         beyond the call (use concertina::Instance for ordered calls on a mutable value)",
                    ));
                }
                receiver = Some(r.reference.is_some());
                params.push(quote!(#r));
            }
            FnArg::Typed(arg) => {
                // A `&'static` argument lives as long as the task.
                let borrowed = match &*arg.ty {
                    syn::Type::Reference(r) => {
                        r.lifetime.as_ref().is_none_or(|l| l.ident != "static")
                    }
                    _ => false,
                };
                if borrowed {
                    return Err(syn::Error::new(
                        arg.ty.span(),
                        "#[asynchronous] moves the arguments into a task that runs after the call \
                         returns: take an owned type (`String` for `&str`, `Vec<T>` for `&[T]`, \
                         an `Arc` to share), or borrow in a `concertina::scope` task",
                    ));
                }
                let ident = plain_name(&arg.pat).unwrap_or_else(|| {
                    Ident::new(&format!("__concertina_arg{i}"), Span::call_site())
                });
                let ty = &arg.ty;
                params.push(quote!(#ident: #ty));
                forwarded.push(ident);
            }
        }
    }

    let turbofish_args: Vec<TokenStream2> = generics
        .params
        .iter()
        .filter_map(|p| match p {
            GenericParam::Type(t) => {
                let ident = &t.ident;
                Some(quote!(#ident))
            }
            GenericParam::Const(c) => {
                let ident = &c.ident;
                Some(quote!(#ident))
            }
            GenericParam::Lifetime(_) => None,
        })
        .collect();
    let turbofish = if turbofish_args.is_empty() {
        quote!()
    } else {
        quote!(::<#(#turbofish_args),*>)
    };

    let (prelude, call) = match receiver {
        None => (quote!(), quote!(#blocking #turbofish (#(#forwarded),*))),
        Some(true) => (
            quote!(let __concertina_self = ::core::clone::Clone::clone(self);),
            quote!(Self::#blocking #turbofish (&__concertina_self, #(#forwarded),*)),
        ),
        Some(false) => (
            quote!(let __concertina_self = self;),
            quote!(Self::#blocking #turbofish (__concertina_self, #(#forwarded),*)),
        ),
    };
    let submit = match &pool {
        None => quote!(::concertina::spawn),
        Some(expr) => quote_spanned!(expr.span()=> (#expr).spawn),
    };

    let blocking_sig = {
        let mut s = sig.clone();
        s.ident = blocking.clone();
        s
    };
    let body = &function.block;
    let blocking_doc =
        format!("The blocking form of [`{name}`]: runs the body on the calling thread.");

    Ok(quote! {
        #(#attrs)*
        #vis fn #name #generics (#(#params),*) -> ::concertina::Future<#output> #where_clause {
            #prelude
            #submit(move || #call)
        }

        #[doc = #blocking_doc]
        #[allow(clippy::needless_pass_by_value)]
        #vis #blocking_sig #body
    })
}

/// An argument's name when its pattern is a plain one (`t`, `mut t`).
fn plain_name(pat: &Pat) -> Option<Ident> {
    match pat {
        Pat::Ident(PatIdent {
            ident,
            subpat: None,
            by_ref: None,
            ..
        }) => Some(ident.clone()),
        _ => None,
    }
}

/// Makes a type a code that runs in a worker process: see
/// `concertina::remote` for the whole description (the example there runs
/// as a doctest, where `concertina` is in scope).
///
/// ```ignore
/// #[concertina::remote]
/// impl Counter {
///     pub fn new(start: u64) -> Self { Counter(start) }
///     pub fn add(&mut self, n: u64) -> u64 { self.0 += n; self.0 }
/// }
/// // CounterRemote::start(5)?.add(1) -> concertina::Future<u64>
/// ```
///
/// `#[concertina::remote(reentrant)]` says the code keeps no process-global
/// state: several instances may then share a worker (`start_in`).
#[proc_macro_attribute]
pub fn remote(args: TokenStream, item: TokenStream) -> TokenStream {
    let reentrant = if args.is_empty() {
        false
    } else {
        match syn::parse::<Ident>(args.clone()) {
            Ok(word) if word == "reentrant" => true,
            _ => {
                let args = TokenStream2::from(args);
                return syn::Error::new(
                    args.span(),
                    "#[remote] takes no argument, or `reentrant` (several instances may share a process)",
                )
                .to_compile_error()
                .into();
            }
        }
    };
    let block = parse_macro_input!(item as syn::ItemImpl);
    remote::expand_remote(block, reentrant)
        .unwrap_or_else(|e| e.to_compile_error())
        .into()
}
