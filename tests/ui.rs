//! Compile-time UI tests of the macros: every misuse fails with a message on the user's own
//! token (`tests/ui/<macro>/fail/*.rs` with its `.stderr`), and every supported form compiles
//! (`tests/ui/<macro>/pass/*.rs`).
//!
//! Regenerate the expected output with `TRYBUILD=overwrite cargo test -p emitter-tests --test ui`,
//! then read every changed `.stderr` as a user would.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.compile_fail("ui/*/fail/*.rs");
    t.pass("ui/*/pass/*.rs");
}
