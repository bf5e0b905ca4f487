//! How many received fds an application's node may hold in messages it has
//! not read yet, per peer link.
//!
//! The protocol nodes default to a few thousand, a bound meant for the
//! proxy, which forwards what it receives at once. An application is
//! different: a sender may legitimately queue ten thousand handles before
//! a slow reader wakes (the test peers' `throughput_extra` runs do), and
//! Chromium's Mojo never drops a peer for that; what bounds it there is
//! the process's own fd limit, at which `recvmsg` stops accepting fds. So
//! the budget here is that limit (`RLIMIT_NOFILE`, soft), capped by
//! [`MAX_QUEUED_FDS_PER_PEER`] and never below the nodes' defaults.

use nix::sys::resource::{Resource, getrlimit};

/// The most fds one peer may make an application's node hold, whatever the
/// process's fd limit (an `RLIM_INFINITY` limit must not mean unbounded).
pub const MAX_QUEUED_FDS_PER_PEER: usize = 1 << 20;

/// The budget for a process whose soft `RLIMIT_NOFILE` is `soft`.
fn budget_for(soft: u64, node_default: usize) -> usize {
    usize::try_from(soft)
        .unwrap_or(usize::MAX)
        .min(MAX_QUEUED_FDS_PER_PEER)
        .max(node_default)
}

/// This process's budget; `node_default` when the limit cannot be read.
pub fn queued_fds_per_peer(node_default: usize) -> usize {
    match getrlimit(Resource::RLIMIT_NOFILE) {
        Ok((soft, _hard)) => budget_for(soft, node_default),
        Err(_) => node_default,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_follows_the_fd_limit_within_bounds() {
        assert_eq!(budget_for(20_000, 4_096), 20_000);
        assert_eq!(budget_for(1_024, 4_096), 4_096, "never below the default");
        assert_eq!(budget_for(u64::MAX, 4_096), MAX_QUEUED_FDS_PER_PEER);
        assert!(queued_fds_per_peer(4_096) >= 4_096);
    }
}
