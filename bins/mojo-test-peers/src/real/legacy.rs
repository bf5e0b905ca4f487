//! The legacy connectors: `mojo-test-host --direct=legacy` (the host is the
//! broker) and `mojo-test-client` in legacy mode, over
//! [`mojo_system::legacy`] (re-exported here).

use std::os::fd::OwnedFd;
use std::sync::Mutex;

use mojo_legacy_wire::Profile;
use mojo_platform_channel::Endpoint;

pub use mojo_system::legacy::*;

use crate::cli::{ClientArgs, HostArgs, LegacyProfile};
use crate::run::{ClientConnector, HostConnector};
use crate::system::MessagePipe;
use crate::system::runtime::RealSystem;

fn profile_of(p: LegacyProfile) -> Profile {
    match p {
        LegacyProfile::Libchrome => Profile::Libchrome,
        LegacyProfile::Desktop => Profile::Desktop,
    }
}

/// `mojo-test-host --direct=legacy`: the host is the legacy broker and
/// invites the client over its socket.
#[derive(Debug, Default)]
pub struct LegacyHostConnector;

impl HostConnector for LegacyHostConnector {
    type System = RealSystem<LegacyProtocol>;

    fn connect(
        &self,
        args: &HostArgs,
        host_fd: OwnedFd,
        _broker_fd: Option<OwnedFd>,
    ) -> Result<(Self::System, Vec<MessagePipe>), String> {
        send_invitation(
            host_fd,
            profile_of(args.legacy_profile),
            &args.attachments.names(),
        )
        .map_err(|e| e.to_string())
    }
}

/// `mojo-test-client` in legacy mode: accepts the invitation on the
/// inherited socket the binary adopted.
#[derive(Debug)]
pub struct LegacyClientConnector {
    socket: Mutex<Option<Endpoint>>,
}

impl LegacyClientConnector {
    /// A connector for the inherited socket `socket` (`--fd`).
    pub fn new(socket: Endpoint) -> Self {
        Self {
            socket: Mutex::new(Some(socket)),
        }
    }
}

impl ClientConnector for LegacyClientConnector {
    type System = RealSystem<LegacyProtocol>;

    fn accept(&self, args: &ClientArgs) -> Result<(Self::System, Vec<MessagePipe>), String> {
        let socket = self
            .socket
            .lock()
            .map_err(|_| "poisoned".to_string())?
            .take()
            .ok_or_else(|| "the socket was already used".to_string())?;
        accept_invitation(
            socket,
            profile_of(args.legacy_profile),
            &args.attachments.names(),
        )
        .map_err(|e| e.to_string())
    }
}
