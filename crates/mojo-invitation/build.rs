//! Reports this crate's vector tests as ignored when the golden vectors are
//! missing (`cfg(mojo_vectors_missing)`), and fails the build when
//! `MOJO_VECTORS_DIR` names no directory: `mojo_transcript::build_script`.

fn main() {
    mojo_transcript::build_script::emit_vectors_cfg();
}
