//! The `#[asynchronous]` attribute of concertina: a function that returns a
//! `concertina::Future` of its result. Use it through `concertina`.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

use proc_macro::TokenStream;
use proc_macro2::{Span, TokenStream as TokenStream2};
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{parse_macro_input, Expr, FnArg, GenericParam, Ident, ItemFn, Pat, PatIdent, ReturnType};

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
    expand_remote(block, reentrant)
        .unwrap_or_else(|e| e.to_compile_error())
        .into()
}

/// One public method of a remote code.
struct RemoteMethod {
    vis: syn::Visibility,
    name: Ident,
    args: Vec<(Ident, syn::Type)>,
    output: TokenStream2,
    docs: Vec<syn::Attribute>,
}

fn expand_remote(block: syn::ItemImpl, reentrant: bool) -> syn::Result<TokenStream2> {
    if let Some((_, path, _)) = &block.trait_ {
        return Err(syn::Error::new(
            path.span(),
            "#[remote] goes on an inherent impl block (`impl Model { .. }`), not a trait impl",
        ));
    }
    if !block.generics.params.is_empty() {
        return Err(syn::Error::new(
            block.generics.span(),
            "#[remote] cannot make a generic type remote: a worker must know the type it makes",
        ));
    }
    let self_ty = &block.self_ty;
    let type_name = match &**self_ty {
        syn::Type::Path(p) if p.qself.is_none() => p
            .path
            .segments
            .last()
            .map(|s| s.ident.clone())
            .ok_or_else(|| syn::Error::new(self_ty.span(), "#[remote] needs a named type"))?,
        _ => {
            return Err(syn::Error::new(
                self_ty.span(),
                "#[remote] needs a named type",
            ))
        }
    };
    let client = format_ident!("{}Remote", type_name);
    let code_name = type_name.to_string();

    let mut constructor: Option<RemoteMethod> = None;
    let mut methods = Vec::new();
    // Every argument and result type crosses a process boundary: checked
    // where the user wrote it, so that the first error points there.
    let mut serde_checks = Vec::new();
    for item in &block.items {
        let syn::ImplItem::Fn(function) = item else {
            continue;
        };
        if !matches!(function.vis, syn::Visibility::Public(_)) {
            // Private helpers stay local.
            continue;
        }
        let sig = &function.sig;
        if !sig.generics.params.is_empty() {
            return Err(syn::Error::new(
                sig.generics.span(),
                "a remote method cannot be generic: its arguments cross a process boundary by type",
            ));
        }
        if sig.asyncness.is_some() {
            return Err(syn::Error::new(
                sig.span(),
                "a remote method is a blocking fn, not an async one",
            ));
        }
        let mut receiver = None;
        let mut args = Vec::new();
        for input in &sig.inputs {
            match input {
                FnArg::Receiver(r) => {
                    if r.reference.is_none() {
                        return Err(syn::Error::new(
                            r.span(),
                            "a remote method takes `&self` or `&mut self`: the value stays in its worker",
                        ));
                    }
                    receiver = Some(());
                }
                FnArg::Typed(arg) => {
                    let Some(ident) = plain_name(&arg.pat) else {
                        return Err(syn::Error::new(
                            arg.pat.span(),
                            "a remote method's arguments are plain names (`t: f64`)",
                        ));
                    };
                    if let syn::Type::Reference(r) = &*arg.ty {
                        return Err(syn::Error::new(
                            r.span(),
                            "a remote method takes its arguments by value (they are sent to the worker): \
                             use an owned type, `Vec<f64>` for `&[f64]`, `String` for `&str`",
                        ));
                    }
                    let ty = &arg.ty;
                    serde_checks.push(quote_spanned!(ty.span()=>
                        ::concertina::remote::arguments_and_results_are_serde_types::<#ty>();
                    ));
                    args.push((ident, (*arg.ty).clone()));
                }
            }
        }
        let output = match &sig.output {
            ReturnType::Default => quote!(()),
            ReturnType::Type(_, ty) => quote!(#ty),
        };
        if let (ReturnType::Type(_, ty), Some(())) = (&sig.output, receiver) {
            serde_checks.push(quote_spanned!(ty.span()=>
                ::concertina::remote::arguments_and_results_are_serde_types::<#ty>();
            ));
        }
        let docs = function
            .attrs
            .iter()
            .filter(|a| a.path().is_ident("doc"))
            .cloned()
            .collect();
        let method = RemoteMethod {
            vis: function.vis.clone(),
            name: sig.ident.clone(),
            args,
            output,
            docs,
        };
        if receiver.is_none() {
            if sig.ident == "new" {
                constructor = Some(method);
            }
            continue;
        }
        methods.push(method);
    }

    let arms = methods.iter().map(|m| {
        let name = &m.name;
        let key = name.to_string();
        let idents: Vec<&Ident> = m.args.iter().map(|(i, _)| i).collect();
        let types: Vec<&syn::Type> = m.args.iter().map(|(_, t)| t).collect();
        let many_key = format!("{key}[]");
        quote! {
            #key => {
                let (#(#idents,)*): (#(#types,)*) = ::concertina::remote::decode(args)?;
                ::concertina::remote::encode(&self.#name(#(#idents),*))
            }
            // The vectorised form: the arguments of many calls in one
            // array, their results in another.
            #many_key => {
                let calls: ::std::vec::Vec<(#(#types,)*)> = ::concertina::remote::decode(args)?;
                let mut results = ::std::vec::Vec::with_capacity(calls.len());
                for (#(#idents,)*) in calls {
                    if ::concertina::cancelled() {
                        // Cancelled: its outcome says so, whatever is sent.
                        break;
                    }
                    results.push(self.#name(#(#idents),*));
                }
                ::concertina::remote::encode(&results)
            }
        }
    });
    let (construct, start_params, start_args) = match &constructor {
        Some(c) => {
            let idents: Vec<&Ident> = c.args.iter().map(|(i, _)| i).collect();
            let types: Vec<&syn::Type> = c.args.iter().map(|(_, t)| t).collect();
            (
                quote! {
                    let (#(#idents,)*): (#(#types,)*) = ::concertina::remote::decode(args)?;
                    ::core::result::Result::Ok(#self_ty::new(#(#idents),*))
                },
                quote!(#(#idents: #types),*),
                quote!((#(&#idents,)*)),
            )
        }
        None => (
            quote! {
                let (): () = ::concertina::remote::decode(args)?;
                ::core::result::Result::Ok(<#self_ty as ::core::default::Default>::default())
            },
            quote!(),
            quote!(()),
        ),
    };
    let client_methods = methods.iter().map(|m| {
        let (vis, name, output, docs) = (&m.vis, &m.name, &m.output, &m.docs);
        let key = name.to_string();
        let idents: Vec<&Ident> = m.args.iter().map(|(i, _)| i).collect();
        let types: Vec<&syn::Type> = m.args.iter().map(|(_, t)| t).collect();
        let many_key = format!("{key}[]");
        let many = format_ident!("{}_many", name);
        let many_doc = format!(
            "[`{name}`](Self::{name}) once for each element of `args` (each a tuple of its \
             arguments), as one call (AMUSE's vectorised calls): the arguments go in one array \
             and the results come back in another, so the calls cost per byte, not per call. \
             One future for all of them, failed by the first call that fails (or panics); a \
             cancel stops the calls not yet made. For a future per call, each cancelled alone, \
             see [`{name}_each`](Self::{name}_each)."
        );
        let after = format_ident!("{}_after", name);
        let after_doc = format!(
            "[`{name}`](Self::{name}) once `dependency` has finished, keeping its place in this \
             instance's order now (see `RemoteInstance::spawn_after`): a failed dependency \
             fails it with `Error::DependencyFailed`, and it is not made."
        );
        let each = format_ident!("{}_each", name);
        let each_doc = format!(
            "[`{name}`](Self::{name}) once for each element of `args` (each a tuple of its \
             arguments), all in one message: a future per call, in the order given, each of \
             which can be cancelled on its own (see `RemoteInstance::spawn_each`)."
        );
        quote! {
            #(#docs)*
            ///
            /// Runs in the worker, after the calls made before it.
            #vis fn #name(&self, #(#idents: #types),*) -> ::concertina::Future<#output> {
                self.instance.spawn::<#output>(#key, &(#(&#idents,)*))
            }

            #[doc = #many_doc]
            #vis fn #many(
                &self,
                args: impl ::core::iter::IntoIterator<Item = (#(#types,)*)>,
            ) -> ::concertina::Future<::std::vec::Vec<#output>> {
                let args: ::std::vec::Vec<(#(#types,)*)> = args.into_iter().collect();
                self.instance.spawn::<::std::vec::Vec<#output>>(#many_key, &args)
            }

            #[doc = #after_doc]
            #vis fn #after<D: ::core::marker::Send + 'static>(
                &self,
                dependency: ::concertina::Future<D>,
                #(#idents: #types),*
            ) -> ::concertina::Future<#output> {
                self.instance.spawn_after::<#output, D>(dependency, #key, &(#(&#idents,)*))
            }

            #[doc = #each_doc]
            #vis fn #each(
                &self,
                args: impl ::core::iter::IntoIterator<Item = (#(#types,)*)>,
            ) -> ::std::vec::Vec<::concertina::Future<#output>> {
                self.instance.spawn_each::<#output, (#(#types,)*)>(#key, args)
            }
        }
    });
    let client_doc = format!(
        "A [`{type_name}`] in a worker process of its own, made by `#[concertina::remote]`: \
         each method returns a `concertina::Future` of its result."
    );
    let start_doc = format!(
        "Starts a worker process and makes a [`{type_name}`] there (with `{type_name}::new` \
         when it has one, else `Default`).\n\n# Errors\n\nThose of \
         `concertina::remote::RemoteInstance::start`."
    );
    Ok(quote! {
        #block

        const _: fn() = || {
            #(#serde_checks)*
        };

        impl ::concertina::remote::Code for #self_ty {
            const NAME: &'static str = #code_name;
            const REENTRANT: bool = #reentrant;

            fn construct(args: &[u8]) -> ::core::result::Result<Self, ::concertina::remote::RemoteError> {
                #construct
            }

            fn dispatch(
                &mut self,
                method: &str,
                args: &[u8],
            ) -> ::core::result::Result<::std::vec::Vec<u8>, ::concertina::remote::RemoteError> {
                match method {
                    #(#arms)*
                    _ => ::core::result::Result::Err(::concertina::remote::RemoteError::unknown_method(method)),
                }
            }
        }

        #[doc = #client_doc]
        #[derive(Clone, Debug)]
        pub struct #client {
            instance: ::concertina::remote::RemoteInstance,
        }

        impl #client {
            #[doc = #start_doc]
            pub fn start(#start_params) -> ::core::result::Result<Self, ::concertina::Error> {
                ::core::result::Result::Ok(#client {
                    instance: ::concertina::remote::RemoteInstance::start::<#self_ty>(&#start_args)?,
                })
            }

            /// As `start`, with a builder naming the worker executable or its
            /// environment.
            ///
            /// # Errors
            ///
            /// Those of `concertina::remote::RemoteInstance::start`.
            pub fn start_with(
                builder: &::concertina::remote::RemoteBuilder,
                #start_params
            ) -> ::core::result::Result<Self, ::concertina::Error> {
                ::core::result::Result::Ok(#client {
                    instance: builder.start::<#self_ty>(&#start_args)?,
                })
            }

            /// As `start`, in `worker` beside the instances it holds (the
            /// code must be `reentrant` to have two there).
            ///
            /// # Errors
            ///
            /// Those of `concertina::remote::Worker::make`.
            pub fn start_in(
                worker: &::concertina::remote::Worker,
                #start_params
            ) -> ::core::result::Result<Self, ::concertina::Error> {
                ::core::result::Result::Ok(#client {
                    instance: worker.make::<#self_ty>(&#start_args)?,
                })
            }

            /// The untyped handle: the worker's pid, whether it was lost.
            pub fn instance(&self) -> &::concertina::remote::RemoteInstance {
                &self.instance
            }

            #(#client_methods)*
        }
    })
}
