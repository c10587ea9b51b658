//! PostgreSQL v3 parsing of bytes that may be cut off at any point.
//!
//! Every message after startup is a type byte, a 4-byte big-endian length that counts
//! itself, and a body. The parsers keep no state and consume nothing: they answer
//! `NeedMore` only while the bytes can still begin a valid message, so garbage is
//! rejected from its first bytes instead of being buffered.

use super::types::{
    Backend, Fields, Frontend, Header, InvalidReason, Message, Params, Parse, Startup, Target,
};
use crate::protocols::{self, finish};

/// Largest message the server accepts (its `PQ_LARGE_MESSAGE_LIMIT`, 1 GiB); anything
/// longer is not PostgreSQL, or out of step.
pub const MAX_MESSAGE: usize = 0x4000_0000;
/// Largest startup packet the server accepts (`MAX_STARTUP_PACKET_LENGTH`).
pub const MAX_STARTUP: usize = 10_000;

/// Type byte and length field.
pub const HEADER_LEN: usize = 5;

const PROTOCOL_3: u16 = 3;
const SSL_REQUEST_CODE: u32 = 80_877_103;
const GSSENC_REQUEST_CODE: u32 = 80_877_104;
const CANCEL_REQUEST_CODE: u32 = 80_877_102;
/// The first two bytes of the three special request codes above.
const REQUEST_CODE_HIGH: u16 = 1234;

/// Type bytes of the messages a client sends after startup.
pub const FRONTEND_TAGS: &[u8] = b"QPBDECSHXdcfFp";
/// Type bytes of the messages a server sends.
pub const BACKEND_TAGS: &[u8] = b"RSKZTDCIEN123ntsGHWdcAVv";

/// Why a parse stopped, with this protocol's reason.
type Stop = protocols::Stop<InvalidReason>;

impl From<InvalidReason> for Stop {
    fn from(reason: InvalidReason) -> Self {
        Stop::Invalid(reason)
    }
}

fn be_u16(bytes: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes(bytes.get(at..at + 2)?.try_into().ok()?))
}

fn be_u32(bytes: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(bytes.get(at..at + 4)?.try_into().ok()?))
}

/// The first message of a connection from the client: startup, SSL or GSSAPI
/// encryption request, or cancel request.
pub fn parse_startup(buf: &[u8]) -> Parse<Message<Startup<'_>>> {
    finish(startup(buf))
}

fn startup(buf: &[u8]) -> Result<Message<Startup<'_>>, Stop> {
    // The length is below MAX_STARTUP (< 2^16): its two high bytes are zero.
    if buf.iter().take(2).any(|&b| b != 0) {
        return Err(InvalidReason::BadLength.into());
    }
    if let Some(code_high) = be_u16(buf, 4) {
        if code_high != PROTOCOL_3 && code_high != REQUEST_CODE_HIGH {
            return Err(InvalidReason::UnknownStartupCode.into());
        }
    }
    let (Some(len), Some(code)) = (be_u32(buf, 0), be_u32(buf, 4)) else {
        return Err(Stop::NeedMore);
    };
    let len = len as usize;
    if !(8..=MAX_STARTUP).contains(&len) {
        return Err(InvalidReason::BadLength.into());
    }
    let expected_len = match code {
        SSL_REQUEST_CODE | GSSENC_REQUEST_CODE => Some(8),
        CANCEL_REQUEST_CODE => Some(16),
        _ if code >> 16 == u32::from(PROTOCOL_3) => None,
        _ => return Err(InvalidReason::UnknownStartupCode.into()),
    };
    if expected_len.is_some_and(|expected| expected != len) {
        return Err(InvalidReason::BadLength.into());
    }
    let body = buf.get(8..len).ok_or(Stop::NeedMore)?;
    let startup = match code {
        SSL_REQUEST_CODE => Startup::SslRequest,
        GSSENC_REQUEST_CODE => Startup::GssEncRequest,
        CANCEL_REQUEST_CODE => Startup::CancelRequest,
        _ => Startup::Start {
            minor_version: (code & 0xffff) as u16,
            params: params(body)?,
        },
    };
    Ok(Message { body: startup, len })
}

/// Name/value pairs, each NUL-terminated, then one more NUL.
fn params(body: &[u8]) -> Result<Params<'_>, Stop> {
    let Some((&0, raw)) = body.split_last() else {
        return Err(InvalidReason::Malformed.into());
    };
    let strings = raw.iter().filter(|&&b| b == 0).count();
    if strings % 2 != 0 || raw.last().is_some_and(|&b| b != 0) {
        return Err(InvalidReason::Malformed.into());
    }
    Ok(Params { raw })
}

/// The server's one-byte answer to an SSLRequest or GSSENCRequest: true for `S` (go on
/// with TLS), false for `N` (go on in the clear).
pub fn parse_encryption_answer(buf: &[u8]) -> Parse<bool> {
    match buf.first() {
        None => Parse::NeedMore,
        Some(b'S' | b'G') => Parse::Parsed(true),
        Some(b'N') => Parse::Parsed(false),
        Some(_) => Parse::Invalid(InvalidReason::UnknownType),
    }
}

/// The type byte and length of the message at the start of `buf`, checked against
/// `tags`, the type bytes of one direction. Enough to skip a message whose body went by
/// uncaptured.
pub fn parse_header(buf: &[u8], tags: &[u8]) -> Parse<Header> {
    finish(header(buf, tags))
}

fn header(buf: &[u8], tags: &[u8]) -> Result<Header, Stop> {
    let &tag = buf.first().ok_or(Stop::NeedMore)?;
    if !tags.contains(&tag) {
        return Err(InvalidReason::UnknownType.into());
    }
    // Lengths up to MAX_MESSAGE leave the top two bits of the first length byte clear.
    if buf
        .get(1)
        .is_some_and(|&b| usize::from(b) > MAX_MESSAGE >> 24)
    {
        return Err(InvalidReason::BadLength.into());
    }
    let len = be_u32(buf, 1).ok_or(Stop::NeedMore)? as usize;
    if !(4..=MAX_MESSAGE).contains(&len) {
        return Err(InvalidReason::BadLength.into());
    }
    Ok(Header { tag, len: len + 1 })
}

/// One whole client message (after startup).
pub fn parse_frontend(buf: &[u8]) -> Parse<Message<Frontend<'_>>> {
    finish(whole(buf, FRONTEND_TAGS).and_then(|(header, body)| {
        let message = decode_frontend(header.tag, body, true)?;
        Ok(Message {
            body: message,
            len: header.len,
        })
    }))
}

/// One whole server message.
pub fn parse_backend(buf: &[u8]) -> Parse<Message<Backend<'_>>> {
    finish(whole(buf, BACKEND_TAGS).and_then(|(header, body)| {
        let message = decode_backend(header.tag, body)?;
        Ok(Message {
            body: message,
            len: header.len,
        })
    }))
}

fn whole<'a>(buf: &'a [u8], tags: &[u8]) -> Result<(Header, &'a [u8]), Stop> {
    let header = header(buf, tags)?;
    let body = buf.get(HEADER_LEN..header.len).ok_or(Stop::NeedMore)?;
    Ok((header, body))
}

/// Reads a message body field by field.
struct Body<'a> {
    rest: &'a [u8],
    /// False when the body was cut off by the capture: a string may then end without its NUL.
    whole: bool,
}

impl<'a> Body<'a> {
    fn cstring(&mut self) -> Result<&'a [u8], InvalidReason> {
        match memchr::memchr(0, self.rest) {
            Some(end) => {
                let s = self.rest.get(..end).unwrap_or_default();
                self.rest = self.rest.get(end + 1..).unwrap_or_default();
                Ok(s)
            }
            None if self.whole => Err(InvalidReason::Malformed),
            None => Ok(std::mem::take(&mut self.rest)),
        }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], InvalidReason> {
        let (taken, rest) = self
            .rest
            .split_at_checked(n)
            .ok_or(InvalidReason::Malformed)?;
        self.rest = rest;
        Ok(taken)
    }

    fn u8(&mut self) -> Result<u8, InvalidReason> {
        Ok(self.take(1)?.first().copied().unwrap_or_default())
    }

    fn u16(&mut self) -> Result<u16, InvalidReason> {
        be_u16(self.take(2)?, 0).ok_or(InvalidReason::Malformed)
    }

    fn u32(&mut self) -> Result<u32, InvalidReason> {
        be_u32(self.take(4)?, 0).ok_or(InvalidReason::Malformed)
    }

    /// A length-prefixed value: -1 is NULL, with no bytes.
    fn value(&mut self) -> Result<(), InvalidReason> {
        let len = self.u32()? as i32;
        if len < -1 {
            return Err(InvalidReason::Malformed);
        }
        if len > 0 {
            self.take(len as usize)?;
        }
        Ok(())
    }

    /// `count` then that many items of `item`.
    fn list(
        &mut self,
        mut item: impl FnMut(&mut Self) -> Result<(), InvalidReason>,
    ) -> Result<u16, InvalidReason> {
        let count = self.u16()?;
        for _ in 0..count {
            item(self)?;
        }
        Ok(count)
    }

    /// A whole body must have been read to its last byte.
    fn end(&self) -> Result<(), InvalidReason> {
        if self.whole && !self.rest.is_empty() {
            return Err(InvalidReason::Malformed);
        }
        Ok(())
    }

    fn empty(&self) -> Result<(), InvalidReason> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err(InvalidReason::Malformed)
        }
    }
}

fn target(b: u8) -> Result<Target, InvalidReason> {
    match b {
        b'S' => Ok(Target::Statement),
        b'P' => Ok(Target::Portal),
        _ => Err(InvalidReason::Malformed),
    }
}

/// Decodes the body of a client message of type `tag`. `whole` is false for a body the
/// capture cut off: its last string may then lack its NUL and later fields are not
/// checked, so that a long query still gives its first bytes.
pub fn decode_frontend(tag: u8, body: &[u8], whole: bool) -> Result<Frontend<'_>, InvalidReason> {
    let mut b = Body { rest: body, whole };
    let message = match tag {
        b'Q' => Frontend::Query { text: b.cstring()? },
        b'P' => {
            let statement = b.cstring()?;
            let query = b.cstring()?;
            if whole {
                b.list(|b| b.u32().map(drop))?;
            }
            Frontend::Parse { statement, query }
        }
        b'B' => {
            let portal = b.cstring()?;
            let statement = b.cstring()?;
            if whole {
                b.list(|b| b.u16().map(drop))?;
                b.list(Body::value)?;
                b.list(|b| b.u16().map(drop))?;
            }
            Frontend::Bind { portal, statement }
        }
        b'D' | b'C' => {
            let target = target(b.u8()?)?;
            let name = b.cstring()?;
            if tag == b'D' {
                Frontend::Describe { target, name }
            } else {
                Frontend::Close { target, name }
            }
        }
        b'E' => {
            let portal = b.cstring()?;
            let max_rows = if whole { b.u32()? } else { 0 };
            Frontend::Execute { portal, max_rows }
        }
        b'S' | b'H' | b'X' | b'c' => {
            b.empty()?;
            match tag {
                b'S' => Frontend::Sync,
                b'H' => Frontend::Flush,
                b'X' => Frontend::Terminate,
                _ => Frontend::CopyDone,
            }
        }
        b'f' => {
            b.cstring()?;
            Frontend::CopyFail
        }
        b'd' => return Ok(Frontend::CopyData),
        b'F' => return Ok(Frontend::FunctionCall),
        b'p' => return Ok(Frontend::AuthResponse),
        _ => return Err(InvalidReason::UnknownType),
    };
    b.end()?;
    Ok(message)
}

/// Decodes the whole body of a server message of type `tag`.
pub fn decode_backend(tag: u8, body: &[u8]) -> Result<Backend<'_>, InvalidReason> {
    let mut b = Body {
        rest: body,
        whole: true,
    };
    let message = match tag {
        b'R' => {
            let code = b.u32()?;
            // Codes other than Ok carry a salt, SASL mechanisms or SASL data.
            b.rest = &[];
            Backend::Authentication { code }
        }
        b'S' => Backend::ParameterStatus {
            name: b.cstring()?,
            value: b.cstring()?,
        },
        b'K' => {
            // 4 bytes of process id, then a key of 4 bytes (up to 256 from protocol 3.2).
            b.take(8)?;
            b.rest = &[];
            Backend::BackendKeyData
        }
        b'Z' => match b.u8()? {
            status @ (b'I' | b'T' | b'E') => Backend::ReadyForQuery { status },
            _ => return Err(InvalidReason::Malformed),
        },
        b'T' => {
            let fields = b.list(|b| {
                b.cstring()?;
                b.take(18).map(drop)
            })?;
            Backend::RowDescription { fields }
        }
        b'D' => {
            b.list(Body::value)?;
            Backend::DataRow
        }
        b'C' => Backend::CommandComplete { tag: b.cstring()? },
        b'E' | b'N' => {
            let raw = fields(&mut b)?;
            if tag == b'E' {
                Backend::ErrorResponse(raw)
            } else {
                Backend::NoticeResponse(raw)
            }
        }
        b'I' | b'1' | b'2' | b'3' | b'n' | b's' | b'c' => {
            b.empty()?;
            match tag {
                b'I' => Backend::EmptyQueryResponse,
                b'1' => Backend::ParseComplete,
                b'2' => Backend::BindComplete,
                b'3' => Backend::CloseComplete,
                b'n' => Backend::NoData,
                b's' => Backend::PortalSuspended,
                _ => Backend::CopyDone,
            }
        }
        b't' => {
            b.list(|b| b.u32().map(drop))?;
            Backend::ParameterDescription
        }
        b'G' | b'H' | b'W' => {
            b.u8()?;
            b.list(|b| b.u16().map(drop))?;
            match tag {
                b'G' => Backend::CopyInResponse,
                b'H' => Backend::CopyOutResponse,
                _ => Backend::CopyBothResponse,
            }
        }
        b'd' => return Ok(Backend::CopyData),
        b'A' => {
            b.u32()?;
            b.cstring()?;
            b.cstring()?;
            Backend::NotificationResponse
        }
        b'V' => {
            b.value()?;
            Backend::FunctionCallResponse
        }
        b'v' => {
            b.u32()?;
            let count = b.u32()?;
            for _ in 0..count {
                b.cstring()?;
            }
            Backend::NegotiateProtocolVersion
        }
        _ => return Err(InvalidReason::UnknownType),
    };
    b.end()?;
    Ok(message)
}

/// Code/string pairs ending with a zero code byte.
fn fields<'a>(b: &mut Body<'a>) -> Result<Fields<'a>, InvalidReason> {
    let start = b.rest;
    loop {
        if b.u8()? == 0 {
            break;
        }
        b.cstring()?;
    }
    let used = start.len() - b.rest.len();
    Ok(Fields {
        raw: start.get(..used).unwrap_or_default(),
    })
}
