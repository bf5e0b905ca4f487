// Refuses to build the crate for a target whose control-message layout and
// fd semantics it does not implement (its `cmsghdr` parser is Linux's, so
// elsewhere received fds could leak). Kept in its own file so that
// `tests/target_guard.rs` can compile it alone for foreign targets.
#[cfg(not(any(target_os = "linux", target_os = "android")))]
compile_error!(
    "mojo-platform-channel supports only Linux and Android: its SCM_RIGHTS \
     parsing and shared-memory code use Linux's layouts and calls"
);
