//! The phase every ipcz connector goes through: waiting for the one reply
//! it needs, done (holding what it yields until taken), or failed for good.

use super::{HandshakeError, Link};

#[derive(Debug)]
pub(crate) enum Phase<T> {
    /// Waiting for the peer's message (named for errors).
    Waiting(&'static str),
    /// Established; the value is waiting to be taken.
    Done(T),
    /// Established and taken by `finish`.
    Taken,
    /// Failed; every later call returns this.
    Failed(HandshakeError),
}

impl<T> Phase<T> {
    /// Whether the handshake completed.
    pub(crate) fn is_done(&self) -> bool {
        matches!(self, Self::Done(_) | Self::Taken)
    }

    /// The stored value, if established and not yet taken.
    pub(crate) fn done(&self) -> Option<&T> {
        match self {
            Self::Done(t) => Some(t),
            _ => None,
        }
    }

    /// The error, if failed.
    pub(crate) fn error(&self) -> Option<&HandshakeError> {
        match self {
            Self::Failed(e) => Some(e),
            _ => None,
        }
    }

    /// Ok while waiting; otherwise the error a new frame on `link` gets.
    pub(crate) fn check_waiting(&self, link: Link) -> Result<(), HandshakeError> {
        match self {
            Self::Waiting(_) => Ok(()),
            Self::Done(_) | Self::Taken => Err(HandshakeError::AlreadyEstablished { link }),
            Self::Failed(e) => Err(e.clone()),
        }
    }

    /// Records the outcome of handling one frame: `Ok(Some)` completes the
    /// handshake, `Ok(None)` (an ignored frame) changes nothing, an error
    /// is final.
    pub(crate) fn record(
        &mut self,
        outcome: Result<Option<T>, HandshakeError>,
    ) -> Result<(), HandshakeError> {
        match outcome {
            Ok(Some(t)) => {
                *self = Self::Done(t);
                Ok(())
            }
            Ok(None) => Ok(()),
            Err(e) => {
                *self = Self::Failed(e.clone());
                Err(e)
            }
        }
    }

    /// The socket on `link` closed: fatal unless already established.
    pub(crate) fn closed(&mut self, link: Link) -> Result<(), HandshakeError> {
        match self {
            Self::Waiting(waiting_for) => {
                let e = HandshakeError::PeerClosed { link, waiting_for };
                *self = Self::Failed(e.clone());
                Err(e)
            }
            // After the handshake a closed socket is the node's business.
            Self::Done(_) | Self::Taken => Ok(()),
            Self::Failed(e) => Err(e.clone()),
        }
    }

    /// Takes the established value.
    pub(crate) fn finish(&mut self) -> Result<T, HandshakeError> {
        match std::mem::replace(self, Self::Taken) {
            Self::Done(t) => Ok(t),
            Self::Waiting(waiting_for) => {
                *self = Self::Waiting(waiting_for);
                Err(HandshakeError::Incomplete { waiting_for })
            }
            Self::Taken => Err(HandshakeError::Incomplete {
                waiting_for: "nothing (already finished)",
            }),
            Self::Failed(e) => {
                *self = Self::Failed(e.clone());
                Err(e)
            }
        }
    }
}
