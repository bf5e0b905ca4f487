//! The production [`RandomSource`]: `getrandom(2)`.
//!
//! Region guids (and the names of [`ShmBackend::DevShm`](super::ShmBackend)
//! files) come from a source the caller passes in, so that tests can use a
//! seeded one; this is the one to pass in production. A process that names
//! many ports takes [`OsRandom::buffered`]: the same kernel bytes, one
//! system call per 4 KiB instead of one per name.

use mojo_wire_kit::{BufferedRandom, RandomSource};
use nix::errno::Errno;
use nix::libc;

use crate::SysError;

/// Random bytes from the kernel's `getrandom(2)` (no fd, works in a chroot
/// or a sandbox without `/dev`).
#[derive(Debug)]
pub struct OsRandom {
    _private: (),
}

impl OsRandom {
    /// Checks once that `getrandom(2)` works here (it is missing before
    /// Linux 3.17 or under a seccomp policy that forbids it) and returns a
    /// source backed by it.
    pub fn new() -> Result<Self, SysError> {
        let mut probe = [0u8; 1];
        getrandom_fill(&mut probe)?;
        Ok(Self { _private: () })
    }

    /// [`OsRandom::new`] behind a [`BufferedRandom`]: kernel randomness
    /// drawn [`mojo_wire_kit::BUFFERED_RANDOM_CAPACITY`] bytes at a time,
    /// each byte handed out once and zeroed as it goes (see
    /// [`BufferedRandom`], also for its caveat about `fork` without exec).
    pub fn buffered() -> Result<BufferedRandom<Self>, SysError> {
        Ok(BufferedRandom::new(Self::new()?))
    }
}

impl RandomSource for OsRandom {
    /// Fills `buf` from `getrandom(2)`, retrying on `EINTR`.
    ///
    /// # Panics
    ///
    /// If `getrandom(2)` fails although [`OsRandom::new`] saw it work: with
    /// flags 0 and a valid buffer its only other errors are `ENOSYS` and
    /// `EFAULT`, so this means the process is broken, and continuing with
    /// predictable names would be worse than stopping.
    fn fill(&mut self, buf: &mut [u8]) {
        if let Err(e) = getrandom_fill(buf) {
            panic!("getrandom(2) stopped working: {e}");
        }
    }
}

fn getrandom_fill(buf: &mut [u8]) -> Result<(), SysError> {
    let mut filled = 0;
    while let Some(rest) = buf.get_mut(filled..).filter(|r| !r.is_empty()) {
        // SAFETY: `rest` is a live, exclusively borrowed byte buffer of
        // `rest.len()` bytes, which is exactly what getrandom may write; it
        // keeps no pointer after returning.
        let n = unsafe { libc::getrandom(rest.as_mut_ptr().cast(), rest.len(), 0) };
        match usize::try_from(n) {
            Ok(n) => filled += n,
            Err(_) => match Errno::last() {
                Errno::EINTR => {}
                errno => return Err(SysError::new("getrandom", errno)),
            },
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fills_buffers_of_any_size_with_varying_bytes() {
        let mut rng = OsRandom::new().unwrap();
        let mut a = [0u8; 4096];
        let mut b = [0u8; 4096];
        rng.fill(&mut a);
        rng.fill(&mut b);
        assert_ne!(a, b);
        rng.fill(&mut []);
        assert_ne!(rng.nonzero_u128(), (0, 0));
    }

    #[test]
    fn buffered_sources_give_distinct_names() {
        let (mut a, mut b) = (OsRandom::buffered().unwrap(), OsRandom::buffered().unwrap());
        let mut seen = std::collections::HashSet::new();
        for _ in 0..1000 {
            assert!(seen.insert(a.nonzero_u128()));
            assert!(seen.insert(b.nonzero_u128()));
        }
    }
}
