//! The integration tests of `emitter` live beside this file, one test target per behaviour
//! (see `Cargo.toml`); this library target is empty because a package needs one.
