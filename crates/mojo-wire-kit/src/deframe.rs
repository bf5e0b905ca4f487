//! One deframing loop for the tests, tools and fuzz oracles of both wire
//! crates: push a stream in pieces, take every complete frame after each,
//! and keep a copy of each (`mojo_legacy_wire::fuzzing::deframe_pieces`,
//! `ipcz_wire::fuzzing::deframe_pieces`). Copying is for checking; the
//! protocol cores parse frames in place.

/// A deframer as [`deframe_pieces`] drives it.
pub trait FrameSource {
    /// What stops deframing.
    type Error;
    /// Appends received bytes.
    fn push(&mut self, bytes: &[u8]) -> Result<(), Self::Error>;
    /// A copy of the next complete frame, if there is one.
    fn next_copy(&mut self) -> Result<Option<FrameCopy>, Self::Error>;
    /// Bytes received but not yet part of a complete frame.
    fn buffered(&self) -> usize;
}

/// A copy of one frame that [`deframe_pieces`] found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FrameCopy {
    /// Stream offset of its first byte.
    pub offset: u64,
    /// The whole frame, header included, as it was in the stream.
    pub bytes: Vec<u8>,
    /// Handles (fds) its header claims.
    pub num_handles: u16,
}

/// Everything [`deframe_pieces`] found in a stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StreamFrames<E> {
    /// The frames, in stream order.
    pub frames: Vec<FrameCopy>,
    /// The error that stopped deframing, or the bytes left buffered (a
    /// partial frame) after the last piece.
    pub end: Result<usize, E>,
}

/// Pushes each piece into `source` and takes every complete frame after it.
///
/// ```
/// use mojo_wire_kit::{FrameCopy, FrameSource, deframe_pieces};
///
/// /// Frames of one length byte and that many bytes.
/// #[derive(Default)]
/// struct LengthPrefixed { buffer: Vec<u8>, offset: u64 }
/// impl FrameSource for LengthPrefixed {
///     type Error = ();
///     fn push(&mut self, bytes: &[u8]) -> Result<(), ()> {
///         self.buffer.extend_from_slice(bytes);
///         Ok(())
///     }
///     fn next_copy(&mut self) -> Result<Option<FrameCopy>, ()> {
///         let Some(&len) = self.buffer.first() else { return Ok(None) };
///         let end = 1 + usize::from(len);
///         if self.buffer.len() < end { return Ok(None) }
///         let bytes: Vec<u8> = self.buffer.drain(..end).collect();
///         let offset = self.offset;
///         self.offset += end as u64;
///         Ok(Some(FrameCopy { offset, bytes, num_handles: 0 }))
///     }
///     fn buffered(&self) -> usize { self.buffer.len() }
/// }
///
/// let stream = [2, 7, 7, 1, 9, 3, 0];
/// let found = deframe_pieces(LengthPrefixed::default(), stream.chunks(2));
/// assert_eq!(found.frames.iter().map(|f| f.offset).collect::<Vec<_>>(), [0, 3]);
/// assert_eq!(found.end, Ok(2)); // a partial frame is left
/// ```
pub fn deframe_pieces<'a, S: FrameSource>(
    mut source: S,
    pieces: impl IntoIterator<Item = &'a [u8]>,
) -> StreamFrames<S::Error> {
    let mut frames = Vec::new();
    for piece in pieces {
        if let Err(e) = source.push(piece) {
            return StreamFrames {
                frames,
                end: Err(e),
            };
        }
        loop {
            match source.next_copy() {
                Ok(Some(copy)) => frames.push(copy),
                Ok(None) => break,
                Err(e) => {
                    return StreamFrames {
                        frames,
                        end: Err(e),
                    };
                }
            }
        }
    }
    StreamFrames {
        frames,
        end: Ok(source.buffered()),
    }
}
