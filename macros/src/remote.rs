//! `#[remote]`: a code's methods, dispatched by name in its worker, and its
//! typed client. A method may borrow what it is given (`values: &[f64]`,
//! `name: &str`): the worker decodes such an argument into a value it keeps
//! for the method's next call, so that a large array lands in memory already
//! touched; a method may return a borrow of its state (`-> &[f64]`), encoded
//! from where it lies, which the client receives owned (`Vec<f64>`).

use proc_macro2::TokenStream as TokenStream2;
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{FnArg, Ident, ReturnType};

use crate::plain_name;

/// One public method of a remote code.
struct RemoteMethod {
    vis: syn::Visibility,
    name: Ident,
    args: Vec<Argument>,
    /// What the client's future holds: the owned form of a borrowed result.
    output: TokenStream2,
    /// The type borrowed by a result like `&[f64]` (`[f64]`), if it is one.
    borrowed_output: Option<syn::Type>,
    docs: Vec<syn::Attribute>,
}

/// One argument of a remote method.
struct Argument {
    ident: Ident,
    /// As written: what the client takes too.
    ty: syn::Type,
    /// `T` of an argument `&T`, decoded into a kept value of `T`'s owned
    /// form and lent to the method.
    borrowed: Option<syn::Type>,
}

impl Argument {
    /// The type the worker decodes it as.
    fn owned(&self) -> TokenStream2 {
        match &self.borrowed {
            Some(target) => owned_of(target),
            None => {
                let ty = &self.ty;
                quote!(#ty)
            }
        }
    }

    /// The method's argument made from `value` of the `owned` type.
    fn lend(&self, value: TokenStream2) -> TokenStream2 {
        match &self.borrowed {
            Some(target) => quote!(::core::borrow::Borrow::<#target>::borrow(#value)),
            None => value,
        }
    }
}

/// The owned form of a borrowed `target`: `Vec<T>` for `[T]`, `String` for
/// `str`, else what `ToOwned` says.
fn owned_of(target: &syn::Type) -> TokenStream2 {
    match target {
        syn::Type::Slice(slice) => {
            let elem = &slice.elem;
            quote!(::std::vec::Vec<#elem>)
        }
        syn::Type::Path(p) if p.qself.is_none() && p.path.is_ident("str") => {
            quote!(::std::string::String)
        }
        _ => quote!(<#target as ::std::borrow::ToOwned>::Owned),
    }
}

/// The lifetime parameter of the methods that take many calls' arguments
/// through an iterator (none when nothing is borrowed), and the arguments'
/// types there, each borrowed one with that lifetime.
fn items_of(args: &[Argument]) -> (TokenStream2, Vec<syn::Type>) {
    let lifetime = syn::Lifetime::new("'args", proc_macro2::Span::call_site());
    let items: Vec<syn::Type> = args
        .iter()
        .map(|a| match &a.ty {
            syn::Type::Reference(r) => {
                let mut r = r.clone();
                r.lifetime = Some(lifetime.clone());
                syn::Type::Reference(r)
            }
            ty => ty.clone(),
        })
        .collect();
    if args.iter().any(|a| a.borrowed.is_some()) {
        (quote!(<#lifetime>), items)
    } else {
        (quote!(), items)
    }
}

/// The code that decodes `args` (the bytes of a call's arguments) into a
/// binding per argument, in order: the statements, and the values to pass.
/// With `kept`, each borrowed argument is decoded into the value kept by
/// this thread for this method's next call (`KEPT_<i>`, declared by these
/// statements; the caller's `after` statements give them back).
fn decode_arguments(
    args: &[Argument],
    kept: bool,
) -> (TokenStream2, Vec<TokenStream2>, TokenStream2) {
    let mut statements = Vec::new();
    let mut give_back = Vec::new();
    let mut passed = Vec::new();
    statements.push(quote! {
        let mut __concertina_args = ::concertina::remote::Arguments::new(args);
    });
    for (i, arg) in args.iter().enumerate() {
        let ident = &arg.ident;
        let owned = arg.owned();
        match &arg.borrowed {
            None => {
                statements.push(quote! {
                    let #ident: #owned = __concertina_args.decode()?;
                });
                passed.push(quote!(#ident));
            }
            Some(_) => {
                let place = format_ident!("__concertina_place_{}", i);
                if kept {
                    let key = format_ident!("KEPT_{}", i);
                    statements.push(quote! {
                        ::std::thread_local! {
                            static #key: ::core::cell::Cell<::core::option::Option<#owned>> =
                                const { ::core::cell::Cell::new(::core::option::Option::None) };
                        }
                        let mut #place: ::core::option::Option<#owned> = #key.take();
                    });
                    give_back.push(quote!(#key.set(#place);));
                } else {
                    statements.push(quote! {
                        let mut #place: ::core::option::Option<#owned> = ::core::option::Option::None;
                    });
                }
                statements.push(quote! {
                    let #ident: &#owned = __concertina_args.decode_into(&mut #place)?;
                });
                passed.push(arg.lend(quote!(#ident)));
            }
        }
    }
    (quote!(#(#statements)*), passed, quote!(#(#give_back)*))
}

pub(crate) fn expand_remote(block: syn::ItemImpl, reentrant: bool) -> syn::Result<TokenStream2> {
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
                    let borrowed = match &*arg.ty {
                        syn::Type::Reference(r) => {
                            if r.mutability.is_some() {
                                return Err(syn::Error::new(
                                    r.span(),
                                    "a remote method cannot take `&mut`: what it changes would stay in \
                                     the worker; take the value (`Vec<f64>`) and return what the caller needs",
                                ));
                            }
                            if let Some(lifetime) = &r.lifetime {
                                if lifetime.ident != "_" {
                                    return Err(syn::Error::new(
                                        lifetime.span(),
                                        "a remote method's borrowed argument lives for the call only: \
                                         write `&T` (no named lifetime)",
                                    ));
                                }
                            }
                            Some((*r.elem).clone())
                        }
                        _ => None,
                    };
                    let argument = Argument {
                        ident,
                        ty: (*arg.ty).clone(),
                        borrowed,
                    };
                    let owned = argument.owned();
                    serde_checks.push(quote_spanned!(arg.ty.span()=>
                        ::concertina::remote::arguments_and_results_are_serde_types::<#owned>();
                    ));
                    args.push(argument);
                }
            }
        }
        // A borrowed result (`&[f64]`) is encoded where it lies; the
        // client receives it owned.
        let borrowed_output = match &sig.output {
            ReturnType::Type(_, ty) => match &**ty {
                syn::Type::Reference(r) => Some((*r.elem).clone()),
                _ => None,
            },
            ReturnType::Default => None,
        };
        let output = match (&sig.output, &borrowed_output) {
            (ReturnType::Default, _) => quote!(()),
            (ReturnType::Type(..), Some(target)) => owned_of(target),
            (ReturnType::Type(_, ty), None) => quote!(#ty),
        };
        if let (ReturnType::Type(_, ty), Some(())) = (&sig.output, receiver) {
            serde_checks.push(quote_spanned!(ty.span()=>
                ::concertina::remote::arguments_and_results_are_serde_types::<#output>();
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
            borrowed_output,
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
        let idents: Vec<&Ident> = m.args.iter().map(|a| &a.ident).collect();
        let owned: Vec<TokenStream2> = m.args.iter().map(Argument::owned).collect();
        let (decode, passed, give_back) = decode_arguments(&m.args, true);
        let many_key = format!("{key}[]");
        let many_passed = m.args.iter().map(|a| {
            let ident = &a.ident;
            match a.borrowed {
                Some(_) => a.lend(quote!(&#ident)),
                None => quote!(#ident),
            }
        });
        // The results of the vectorised form are kept until all are made:
        // a borrowed one is copied out.
        let many_result = match &m.borrowed_output {
            Some(target) => quote! {{
                let result: &#target = self.#name(#(#many_passed),*);
                ::std::borrow::ToOwned::to_owned(result)
            }},
            None => quote!(self.#name(#(#many_passed),*)),
        };
        quote! {
            #key => {
                #decode
                let result = ::concertina::remote::encode(&self.#name(#(#passed),*));
                #give_back
                result
            }
            // The vectorised form: the arguments of many calls in one
            // array, their results in another.
            #many_key => {
                let calls: ::std::vec::Vec<(#(#owned,)*)> = ::concertina::remote::decode(args)?;
                let mut results = ::std::vec::Vec::with_capacity(calls.len());
                for (#(#idents,)*) in calls {
                    if ::concertina::cancelled() {
                        // Cancelled: its outcome says so, whatever is sent.
                        break;
                    }
                    results.push(#many_result);
                }
                ::concertina::remote::encode(&results)
            }
        }
    });
    let (construct, start_params, start_args) = match &constructor {
        Some(c) => {
            let idents: Vec<&Ident> = c.args.iter().map(|a| &a.ident).collect();
            let types: Vec<&syn::Type> = c.args.iter().map(|a| &a.ty).collect();
            // Made once: nothing to keep for a next time.
            let (decode, passed, _) = decode_arguments(&c.args, false);
            (
                quote! {
                    #decode
                    ::core::result::Result::Ok(#self_ty::new(#(#passed),*))
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
        let idents: Vec<&Ident> = m.args.iter().map(|a| &a.ident).collect();
        let types: Vec<&syn::Type> = m.args.iter().map(|a| &a.ty).collect();
        // The forms over many calls take their arguments through an
        // iterator, whose borrowed items need a lifetime named.
        let (lifetime, items) = items_of(&m.args);
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
        let into = format_ident!("{}_into", name);
        let into_doc = format!(
            "[`{name}`](Self::{name}), its result decoded into `into`, whose memory it reuses \
             (a `Vec` keeps its capacity): a large array that comes back call after call lands \
             in memory already touched (see `RemoteInstance::spawn_into`)."
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

            #[doc = #into_doc]
            #vis fn #into(&self, #(#idents: #types,)* into: #output) -> ::concertina::Future<#output> {
                self.instance.spawn_into::<#output>(#key, &(#(&#idents,)*), into)
            }

            #[doc = #many_doc]
            #vis fn #many #lifetime(
                &self,
                args: impl ::core::iter::IntoIterator<Item = (#(#items,)*)>,
            ) -> ::concertina::Future<::std::vec::Vec<#output>> {
                let args: ::std::vec::Vec<(#(#items,)*)> = args.into_iter().collect();
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
            #vis fn #each #lifetime(
                &self,
                args: impl ::core::iter::IntoIterator<Item = (#(#items,)*)>,
            ) -> ::std::vec::Vec<::concertina::Future<#output>> {
                self.instance.spawn_each::<#output, (#(#items,)*)>(#key, args)
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
