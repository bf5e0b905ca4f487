//! Counts of things a link's peer made this node hold (fds, queued
//! parcels), kept by tokens: an [`Account`] adds to its counters when made
//! and takes the same amount back when dropped, wherever that happens.
//! Limits then read one counter instead of walking every router.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// `count` units charged to each of `N` shared counters until dropped.
#[derive(Debug)]
pub(crate) struct Account<const N: usize> {
    counters: [Arc<AtomicUsize>; N],
    count: usize,
}

impl<const N: usize> Account<N> {
    /// Charges `count` to each of `counters`.
    pub(crate) fn new(counters: [Arc<AtomicUsize>; N], count: usize) -> Self {
        for c in &counters {
            c.fetch_add(count, Ordering::Relaxed);
        }
        Self { counters, count }
    }
}

impl<const N: usize> Clone for Account<N> {
    /// A second charge of the same amount: a copy holds as much as the original.
    fn clone(&self) -> Self {
        Self::new(self.counters.clone(), self.count)
    }
}

impl<const N: usize> Drop for Account<N> {
    fn drop(&mut self) {
        for c in &self.counters {
            c.fetch_sub(self.count, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charges_while_alive_and_clones_charge_again() {
        let a = Arc::new(AtomicUsize::new(0));
        let b = Arc::new(AtomicUsize::new(0));
        let first = Account::new([a.clone(), b.clone()], 3);
        assert_eq!(
            (a.load(Ordering::Relaxed), b.load(Ordering::Relaxed)),
            (3, 3)
        );
        let second = first.clone();
        assert_eq!(a.load(Ordering::Relaxed), 6);
        drop(first);
        assert_eq!(a.load(Ordering::Relaxed), 3);
        drop(second);
        assert_eq!(
            (a.load(Ordering::Relaxed), b.load(Ordering::Relaxed)),
            (0, 0)
        );
    }
}
