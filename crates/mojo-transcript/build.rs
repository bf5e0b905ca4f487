//! Sets `cfg(mojo_vectors_missing)` when the golden vectors are not found, so
//! that this crate's vector test is reported as ignored: the same modules the
//! library exports to other crates' build scripts, compiled in here.

// The modules are the library's; here only `emit_vectors_cfg` is used.
#![allow(unreachable_pub, dead_code)]

#[path = "src/locate.rs"]
mod locate;

#[path = "src/build_script.rs"]
mod build_script;

fn main() {
    build_script::emit_vectors_cfg();
}
