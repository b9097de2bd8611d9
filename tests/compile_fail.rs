//! What `#[asynchronous]` and `#[remote]` say about a function or a method
//! they cannot make: each case in tests/compile_fail/ with the message a
//! user sees (its `.stderr`).
#![cfg(all(unix, not(loom)))]

#[test]
fn the_attributes_refuse_what_they_cannot_make_and_say_why() {
    let cases = trybuild::TestCases::new();
    cases.compile_fail("tests/compile_fail/*.rs");
}
