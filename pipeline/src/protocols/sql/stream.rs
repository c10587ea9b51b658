//! One direction of a length-framed protocol (PostgreSQL messages, MySQL
//! packets), as the probes deliver it: chunks of the first bytes of each
//! syscall, with a count of the bytes that went by uncaptured. Whole messages
//! are handed on; a message longer than what was captured is handed on as its
//! first bytes and the rest skipped by its length; bytes whose framing cannot
//! be known (a gap inside framing) put the reader out of step until a chunk
//! starts with a valid message again.

/// A message cut short across reads is buffered up to this many bytes; a longer one is
/// handed on cut and its rest skipped.
pub const MAX_BUFFERED: usize = 16 * 1024;

/// What the protocol's framing says of the bytes at the start of a buffer.
pub enum Frame {
    /// A message of this many bytes (header included) starts here.
    Len(usize),
    NeedMore,
    /// Not a message: the protocol's reason.
    Invalid(&'static str),
}

/// A message handed on: whole, or the first bytes of one the capture cut.
#[derive(Debug, Clone, Copy)]
pub struct Framed<'a> {
    pub bytes: &'a [u8],
    /// Bytes of the whole message on the wire.
    pub len: usize,
    pub whole: bool,
}

/// Why a chunk could not be followed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trouble {
    /// Bytes that are no message: the protocol's reason.
    Invalid(&'static str),
    /// This many bytes went by uncaptured where framing was expected.
    Lost(u64),
}

#[derive(Debug, Default)]
pub struct Reader {
    /// The first bytes of a message cut short between reads.
    buffer: Vec<u8>,
    /// Bytes of the current message still to come, not to be read as messages.
    skip: u64,
    /// Out of step: the next chunk is tried as the start of a message.
    lost: bool,
}

impl Reader {
    /// Whether the last chunk left the reader out of step.
    pub fn is_lost(&self) -> bool {
        self.lost
    }

    /// Forgets everything: the next chunk starts a message.
    pub fn reset(&mut self) {
        self.buffer.clear();
        self.skip = 0;
        self.lost = false;
    }

    /// Reads one chunk: `data` captured, then `uncaptured` bytes not. Calls `each` for
    /// every message that starts in it; stops at the first trouble, which leaves the
    /// reader out of step.
    pub fn feed(
        &mut self,
        data: &[u8],
        uncaptured: u64,
        frame: impl Fn(&[u8]) -> Frame,
        mut each: impl FnMut(Framed<'_>),
    ) -> Result<(), Trouble> {
        if self.lost {
            self.reset();
        }
        let joined;
        let input: &[u8] = if self.buffer.is_empty() {
            data
        } else {
            joined = [std::mem::take(&mut self.buffer).as_slice(), data].concat();
            &joined
        };
        let mut pos = 0;
        if self.skip > 0 {
            let n = usize::try_from(self.skip).map_or(input.len(), |s| s.min(input.len()));
            pos = n;
            self.skip -= n as u64;
        }
        while let Some(rest) = input.get(pos..).filter(|r| !r.is_empty()) {
            match frame(rest) {
                Frame::Len(len) if len <= rest.len() => {
                    each(Framed {
                        bytes: &rest[..len],
                        len,
                        whole: true,
                    });
                    pos += len;
                }
                Frame::Len(len) if uncaptured > 0 || len > MAX_BUFFERED => {
                    each(Framed {
                        bytes: rest,
                        len,
                        whole: false,
                    });
                    self.skip = (len - rest.len()) as u64;
                    pos = input.len();
                }
                Frame::Len(_) | Frame::NeedMore if uncaptured == 0 => {
                    self.buffer.extend_from_slice(rest);
                    return Ok(());
                }
                Frame::Len(_) | Frame::NeedMore => {
                    // The header itself was cut: where the message ends is unknown.
                    self.lost = true;
                    return Err(Trouble::Lost(uncaptured));
                }
                Frame::Invalid(reason) => {
                    self.lost = true;
                    return Err(Trouble::Invalid(reason));
                }
            }
        }
        if uncaptured > self.skip {
            let lost = uncaptured - self.skip;
            self.skip = 0;
            self.lost = true;
            return Err(Trouble::Lost(lost));
        }
        self.skip -= uncaptured;
        Ok(())
    }
}
