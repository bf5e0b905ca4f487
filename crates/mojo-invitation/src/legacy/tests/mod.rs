//! Tests of the legacy connectors: an in-memory broker/client pair stepped
//! until idle (`sim`), fault injection (`faults`), and property tests over
//! random input (`props`).

mod faults;
mod props;
mod sim;

use std::fs::{File, OpenOptions};
use std::os::fd::{BorrowedFd, OwnedFd};

use mojo_legacy_wire::NodeName;
use mojo_platform_channel::{FdAccessMode, fd_access_mode};

use super::FdAccess;

/// A real fd that is not a region (for `INIT`'s socket and stray fds).
fn dev_null() -> OwnedFd {
    File::open("/dev/null").expect("open /dev/null").into()
}

/// A real `O_RDWR` fd.
fn dev_null_rw() -> OwnedFd {
    OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
        .expect("open /dev/null")
        .into()
}

/// The production probe: `fcntl(F_GETFL)` through the platform crate.
fn probe(fd: BorrowedFd<'_>) -> Option<FdAccess> {
    Some(match fd_access_mode(fd).ok()? {
        FdAccessMode::ReadOnly => FdAccess::ReadOnly,
        FdAccessMode::WriteOnly => FdAccess::WriteOnly,
        FdAccessMode::ReadWrite => FdAccess::ReadWrite,
    })
}

const BROKER_NAME: NodeName = NodeName::new(0xb0b0, 0x1111);
const CLIENT_NAME: NodeName = NodeName::new(0xc1c1, 0x2222);
