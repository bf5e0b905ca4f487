//! The Mojo+ipcz connectors: `mojo-test-host --direct=ipcz` (the host is
//! the broker, or with `--mode=inherit` a non-broker that joins its broker
//! copy first), `mojo-test-client --ipcz`, and the broker copy
//! (`--role=broker`, [`run_broker`]), over [`mojo_system::ipcz`]
//! (re-exported here).

use std::os::fd::OwnedFd;
use std::sync::Mutex;

use mojo_platform_channel::Endpoint;

pub use mojo_system::ipcz::*;

use crate::cli::{ClientArgs, HostArgs};
use crate::run::{ClientConnector, HostConnector};
use crate::system::MessagePipe;
use crate::system::runtime::RealSystem;

/// `mojo-test-host --direct=ipcz`: the host is the ipcz broker and invites
/// the client over its socket; with `--mode=inherit` it joins its broker
/// copy on `broker_fd` and refers the proxy's socket to it.
#[derive(Debug, Default)]
pub struct IpczHostConnector;

impl HostConnector for IpczHostConnector {
    type System = RealSystem<IpczProtocol>;

    fn connect(
        &self,
        args: &HostArgs,
        host_fd: OwnedFd,
        broker_fd: Option<OwnedFd>,
    ) -> Result<(Self::System, Vec<MessagePipe>), String> {
        let names = args.attachments.names();
        if args.inherit {
            let broker_fd = broker_fd.ok_or("--mode=inherit: no socket to the broker copy")?;
            return send_invitation_via_broker(broker_fd, host_fd, &names)
                .map_err(|e| e.to_string());
        }
        send_invitation(host_fd, &names).map_err(|e| e.to_string())
    }
}

/// `mojo-test-client --ipcz`: a Mojo+ipcz non-broker accepting the
/// invitation on the inherited socket.
#[derive(Debug)]
pub struct IpczClientConnector {
    socket: Mutex<Option<Endpoint>>,
}

impl IpczClientConnector {
    /// A connector for the inherited socket `socket` (`--fd`).
    pub fn new(socket: Endpoint) -> Self {
        Self {
            socket: Mutex::new(Some(socket)),
        }
    }
}

impl ClientConnector for IpczClientConnector {
    type System = RealSystem<IpczProtocol>;

    fn accept(&self, args: &ClientArgs) -> Result<(Self::System, Vec<MessagePipe>), String> {
        let socket = self
            .socket
            .lock()
            .map_err(|_| "poisoned".to_string())?
            .take()
            .ok_or_else(|| "the socket was already used".to_string())?;
        accept_invitation(socket, &args.attachments.names()).map_err(|e| e.to_string())
    }
}
