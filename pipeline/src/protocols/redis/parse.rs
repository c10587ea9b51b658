//! RESP2/RESP3 parsing of bytes that may be cut off at any point.
//!
//! Two ways in. `parse_value` and `parse_command` read one whole value from the start of a
//! buffer, zero-copy, re-reading from the start on every call and keeping no state.
//! `ValueWalker` finds where a value ends while seeing its bytes in pieces, keeping none of
//! them: it steps over bulk payloads by count, so a stitcher needs to buffer no more than one
//! header line, and payload bytes the probe did not copy cost nothing.
//! Both answer `NeedMore` only while the bytes so far can still begin a valid value, so garbage
//! is rejected at its first wrong byte instead of being buffered up to the limits.

use super::types::{
    Args, Command, CommandStart, Elements, Frame, Header, InvalidReason, Kind, Parse, PushKind,
    ReplyStart, Shape, Value,
};
use crate::protocols::{self, finish};

/// Longest header or line value, type byte and CRLF included. Redis itself refuses inline
/// requests longer than 64 KiB; replies this long in a simple string do not occur.
pub const MAX_LINE: usize = 64 * 1024;
/// Deepest nesting of aggregates; real replies nest a handful deep (COMMAND DOCS: 6).
pub const MAX_DEPTH: usize = 32;
/// Longest blob: Redis's `proto-max-bulk-len` default (512 MiB).
pub const MAX_BLOB_LEN: u64 = 512 * 1024 * 1024;
/// Largest aggregate count: Redis stores counts as 32-bit signed lengths.
pub const MAX_AGGREGATE_LEN: u64 = i32::MAX as u64;

const CRLF: &[u8] = b"\r\n";

/// Why a parse stopped, with this protocol's reason.
type Stop = protocols::Stop<InvalidReason>;

impl From<InvalidReason> for Stop {
    fn from(reason: InvalidReason) -> Self {
        Stop::Invalid(reason)
    }
}

/// Reads the header line of the value at the start of `buf`.
pub fn parse_header(buf: &[u8]) -> Parse<Header<'_>> {
    finish(header(buf))
}

/// Reads the whole value at the start of `buf`; an attribute before it is read and skipped.
pub fn parse_value(buf: &[u8]) -> Parse<Frame<'_>> {
    finish(value(buf, 0).map(|(value, len)| Frame { value, len }))
}

/// Reads the command at the start of `buf`: a non-empty array of bulk strings, as every client
/// library sends them.
pub fn parse_command(buf: &[u8]) -> Parse<Command<'_>> {
    finish(command(buf))
}

/// The start of the command at the start of `buf`: enough to name it and write its query text
/// from a prefix the capture may have cut off after its first argument.
pub fn parse_command_start(buf: &[u8]) -> Parse<CommandStart<'_>> {
    finish(command_start(buf))
}

fn command_start(buf: &[u8]) -> Result<CommandStart<'_>, Stop> {
    let h = header(buf)?;
    let count = match (h.kind, h.size) {
        (Kind::Array, Some(count)) if count > 0 => count,
        _ => return Err(Stop::Invalid(InvalidReason::NotCommand)),
    };
    let mut end = h.len;
    let mut bulk = || -> Result<&[u8], Stop> {
        let rest = buf.get(end..).unwrap_or_default();
        let arg = header(rest)?;
        let (Kind::BulkString, Some(size)) = (arg.kind, arg.size) else {
            return Err(Stop::Invalid(InvalidReason::NotCommand));
        };
        let (payload, len) = blob(rest, &arg, size)?;
        end += len;
        Ok(payload)
    };
    let name = bulk()?;
    let first_arg = if count > 1 { Some(bulk()?) } else { None };
    Ok(CommandStart {
        name,
        first_arg,
        arg_count: count - 1,
    })
}

/// The start of the reply at the start of `buf`: its type, an error's code, and what a push
/// (or an array that may be one) carries. An attribute before it is skipped.
pub fn parse_reply_start(buf: &[u8]) -> Parse<ReplyStart<'_>> {
    finish(reply_start(buf))
}

fn reply_start(buf: &[u8]) -> Result<ReplyStart<'_>, Stop> {
    let mut start = 0;
    loop {
        let rest = buf.get(start..).unwrap_or_default();
        let h = header(rest)?;
        let mut reply = ReplyStart {
            kind: h.kind,
            error_code: None,
            push: None,
        };
        match (h.kind, h.size) {
            (Kind::Attribute, _) => {
                start += h.len + aggregate(rest, &h, 0)?.bytes.len();
                continue;
            }
            (Kind::SimpleError, _) => reply.error_code = Some(first_word(h.line)),
            (Kind::BulkError, Some(size)) => {
                // The code ends at the first space; the rest of the message may be cut off.
                let available = rest.get(h.len..).unwrap_or_default();
                let payload = available
                    .get(..usize::try_from(size).unwrap_or(usize::MAX))
                    .unwrap_or(available);
                reply.error_code = Some(match memchr::memchr(b' ', payload) {
                    Some(space) => &payload[..space],
                    None if payload.len() as u64 == size => payload,
                    None => return Err(Stop::NeedMore),
                });
            }
            (Kind::Array | Kind::Push, Some(count)) if count > 0 => {
                let first = rest.get(h.len..).unwrap_or_default();
                let element = header(first)?;
                reply.push = Some(match (element.kind, element.size) {
                    (Kind::BulkString, Some(size)) => push_kind_of(blob(first, &element, size)?.0),
                    (Kind::SimpleString, _) => push_kind_of(element.line),
                    _ => PushKind::Other,
                });
            }
            _ => {}
        }
        return Ok(reply);
    }
}

fn first_word(text: &[u8]) -> &[u8] {
    text.split(|&b| b == b' ').next().unwrap_or(text)
}

/// What a push, or a RESP2 array on a subscribed connection, carries, from its first element.
/// `None` for any other value.
pub fn push_kind(value: &Value<'_>) -> Option<PushKind> {
    let (Value::Push(elements) | Value::Array(elements)) = value else {
        return None;
    };
    let mut elements = *elements;
    Some(match elements.next()? {
        Value::Bulk(b) | Value::Simple(b) => push_kind_of(b),
        _ => PushKind::Other,
    })
}

/// What a push carries, from its first element.
fn push_kind_of(first: &[u8]) -> PushKind {
    const MESSAGES: [&[u8]; 3] = [b"message", b"pmessage", b"smessage"];
    const SUBSCRIPTIONS: [&[u8]; 6] = [
        b"subscribe",
        b"psubscribe",
        b"ssubscribe",
        b"unsubscribe",
        b"punsubscribe",
        b"sunsubscribe",
    ];
    if MESSAGES.iter().any(|m| m.eq_ignore_ascii_case(first)) {
        PushKind::Message
    } else if SUBSCRIPTIONS.iter().any(|s| s.eq_ignore_ascii_case(first)) {
        PushKind::Subscription
    } else {
        PushKind::Other
    }
}

fn header(buf: &[u8]) -> Result<Header<'_>, Stop> {
    let (&first, rest) = buf.split_first().ok_or(Stop::NeedMore)?;
    let kind = Kind::from_byte(first).ok_or(InvalidReason::UnknownType)?;
    // The line proper may take MAX_LINE less the type byte and CRLF.
    let window = rest.get(..MAX_LINE - 3).unwrap_or(rest);
    let Some(end) = memchr::memchr2(b'\r', b'\n', window) else {
        // The line so far must already fit its type, so garbage is refused early.
        check_line(kind, window, false)?;
        return Err(if window.len() >= MAX_LINE - 3 {
            Stop::Invalid(InvalidReason::LineTooLong)
        } else {
            Stop::NeedMore
        });
    };
    let line = &window[..end];
    let size = check_line(kind, line, true)?;
    match (rest[end], rest.get(end + 1)) {
        (b'\r', Some(b'\n')) => {}
        (b'\r', None) => return Err(Stop::NeedMore),
        _ => return Err(Stop::Invalid(InvalidReason::BadLine)),
    }
    Ok(Header {
        kind,
        line,
        size,
        len: 1 + end + CRLF.len(),
    })
}

/// Checks a header line, whole or cut off so far; a whole blob or aggregate line gives its size.
fn check_line(kind: Kind, line: &[u8], whole: bool) -> Result<Option<u64>, InvalidReason> {
    match kind {
        Kind::SimpleString | Kind::SimpleError => Ok(None),
        Kind::Integer => check_signed(line, whole, 19).map(|_| None),
        Kind::BigNumber => check_signed(line, whole, MAX_LINE).map(|_| None),
        Kind::Null if line.is_empty() => Ok(None),
        Kind::Boolean => match (line, whole) {
            ([], false) | ([b't' | b'f'], _) => Ok(None),
            _ => Err(InvalidReason::BadLine),
        },
        Kind::Double => {
            let allowed = |b: &u8| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'+');
            if line.iter().all(allowed) && (!whole || !line.is_empty()) {
                Ok(None)
            } else {
                Err(InvalidReason::BadLine)
            }
        }
        Kind::Null => Err(InvalidReason::BadLine),
        _ => check_size(kind, line, whole),
    }
}

/// An optional `-` then up to `max_digits` digits: integers (which must fit in i64) and big numbers.
fn check_signed(line: &[u8], whole: bool, max_digits: usize) -> Result<(), InvalidReason> {
    let digits = line.strip_prefix(b"-").unwrap_or(line);
    let ok = digits.iter().all(u8::is_ascii_digit) && digits.len() <= max_digits;
    if !ok || (whole && digits.is_empty()) {
        return Err(InvalidReason::BadLine);
    }
    if whole && max_digits == 19 {
        std::str::from_utf8(line)
            .ok()
            .and_then(|s| s.parse::<i64>().ok())
            .ok_or(InvalidReason::BadLine)?;
    }
    Ok(())
}

/// A blob length or aggregate count: digits, or `-1` for RESP2's null bulk string and null
/// array (RESP3 has `_` for null; its own types are never sent with `-1`).
fn check_size(kind: Kind, line: &[u8], whole: bool) -> Result<Option<u64>, InvalidReason> {
    if let Some(rest) = line.strip_prefix(b"-") {
        let nullable = matches!(kind, Kind::BulkString | Kind::Array);
        return match (rest, whole) {
            ([], false) | (b"1", _) if nullable => Ok(None),
            _ => Err(InvalidReason::BadLength),
        };
    }
    if !line.iter().all(u8::is_ascii_digit) || (whole && line.is_empty()) {
        return Err(InvalidReason::BadLine);
    }
    let limit = match kind.shape() {
        Shape::Blob => MAX_BLOB_LEN,
        _ => MAX_AGGREGATE_LEN,
    };
    // Leading zeros do not make a number longer; 20 significant digits overflow u64.
    let significant = line.iter().skip_while(|&&b| b == b'0').count();
    let size = if significant > 19 {
        u64::MAX
    } else {
        line.iter().fold(0u64, |n, &d| n * 10 + u64::from(d - b'0'))
    };
    if size > limit {
        return Err(InvalidReason::BadLength);
    }
    Ok(whole.then_some(size))
}

/// The payload of a blob whose header is `header`, and the bytes header, payload and CRLF take.
fn blob<'a>(buf: &'a [u8], header: &Header<'a>, size: u64) -> Result<(&'a [u8], usize), Stop> {
    let size = usize::try_from(size).map_err(|_| InvalidReason::BadLength)?;
    let end = header.len + size;
    let payload = buf.get(header.len..end).ok_or(Stop::NeedMore)?;
    match buf.get(end..end + CRLF.len()) {
        Some(CRLF) => Ok((payload, end + CRLF.len())),
        Some(_) => Err(Stop::Invalid(InvalidReason::MissingCrlf)),
        None if buf.get(end).is_some_and(|&b| b != b'\r') => {
            Err(Stop::Invalid(InvalidReason::MissingCrlf))
        }
        None => Err(Stop::NeedMore),
    }
}

fn value(buf: &[u8], depth: usize) -> Result<(Value<'_>, usize), Stop> {
    // Attributes annotate the value that follows; a loop, so a chain of them cannot recurse.
    let mut start = 0;
    loop {
        let rest = buf.get(start..).unwrap_or_default();
        let h = header(rest)?;
        if h.kind == Kind::Attribute {
            let elements = aggregate(rest, &h, depth)?;
            start += h.len + elements.bytes.len();
            continue;
        }
        let (value, len) = one_value(rest, h, depth)?;
        return Ok((value, start + len));
    }
}

fn one_value<'a>(buf: &'a [u8], h: Header<'a>, depth: usize) -> Result<(Value<'a>, usize), Stop> {
    let line = h.line;
    let size = match (h.kind.shape(), h.size) {
        (Shape::Line, _) => {
            let value = match h.kind {
                Kind::SimpleError => Value::Error(line),
                Kind::Integer => Value::Integer(
                    std::str::from_utf8(line)
                        .ok()
                        .and_then(|s| s.parse().ok())
                        .ok_or(InvalidReason::BadLine)?,
                ),
                Kind::Null => Value::Null,
                Kind::Boolean => Value::Boolean(line == b"t"),
                Kind::Double => Value::Double(line),
                Kind::BigNumber => Value::BigNumber(line),
                _ => Value::Simple(line),
            };
            return Ok((value, h.len));
        }
        // RESP2's null bulk string and null array.
        (_, None) => return Ok((Value::Null, h.len)),
        (_, Some(size)) => size,
    };
    if h.kind.shape() == Shape::Blob {
        let (payload, len) = blob(buf, &h, size)?;
        let value = match h.kind {
            Kind::BulkError => Value::Error(payload),
            Kind::VerbatimString => match (payload.get(..3), payload.get(3), payload.get(4..)) {
                (Some(format), Some(b':'), Some(text)) => Value::Verbatim { format, text },
                _ => return Err(Stop::Invalid(InvalidReason::BadVerbatim)),
            },
            _ => Value::Bulk(payload),
        };
        return Ok((value, len));
    }
    let elements = aggregate(buf, &h, depth)?;
    let len = h.len + elements.bytes.len();
    let value = match h.kind {
        Kind::Set => Value::Set(elements),
        Kind::Map => Value::Map(elements),
        Kind::Push => Value::Push(elements),
        _ => Value::Array(elements),
    };
    Ok((value, len))
}

/// Checks every element of the aggregate `h` heads; each takes at least three bytes, so the
/// loop ends within the buffer whatever the count says.
fn aggregate<'a>(buf: &'a [u8], h: &Header<'a>, depth: usize) -> Result<Elements<'a>, Stop> {
    if depth >= MAX_DEPTH {
        return Err(Stop::Invalid(InvalidReason::TooDeep));
    }
    let count = h.kind.elements(h.size.unwrap_or(0));
    let mut end = h.len;
    for _ in 0..count {
        let (_, len) = value(buf.get(end..).unwrap_or_default(), depth + 1)?;
        end += len;
    }
    Ok(Elements {
        bytes: buf.get(h.len..end).unwrap_or_default(),
        remaining: count,
        depth: depth + 1,
    })
}

fn command(buf: &[u8]) -> Result<Command<'_>, Stop> {
    let h = header(buf)?;
    let count = match (h.kind, h.size) {
        (Kind::Array, Some(count)) if count > 0 => count,
        _ => return Err(Stop::Invalid(InvalidReason::NotCommand)),
    };
    let mut end = h.len;
    for _ in 0..count {
        let rest = buf.get(end..).unwrap_or_default();
        let arg = header(rest)?;
        let (Kind::BulkString, Some(size)) = (arg.kind, arg.size) else {
            return Err(Stop::Invalid(InvalidReason::NotCommand));
        };
        end += blob(rest, &arg, size)?.1;
    }
    let mut args = Args {
        bytes: buf.get(h.len..end).unwrap_or_default(),
        remaining: count,
    };
    let name = args.next().unwrap_or_default();
    Ok(Command {
        name,
        args,
        len: end,
    })
}

impl<'a> Iterator for Elements<'a> {
    type Item = Value<'a>;

    fn next(&mut self) -> Option<Value<'a>> {
        if self.remaining == 0 {
            return None;
        }
        // Checked whole when the aggregate was parsed; a failure here would be a bug, and ends
        // the iteration rather than panicking.
        let Ok((value, len)) = self::value(self.bytes, self.depth) else {
            self.remaining = 0;
            return None;
        };
        self.bytes = self.bytes.get(len..).unwrap_or_default();
        self.remaining -= 1;
        Some(value)
    }
}

impl Elements<'_> {
    /// Elements not yet read (for maps, keys and values both count).
    pub fn remaining(&self) -> u64 {
        self.remaining
    }
}

impl<'a> Iterator for Args<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        if self.remaining == 0 {
            return None;
        }
        let parsed = header(self.bytes)
            .and_then(|h| blob(self.bytes, &h, h.size.unwrap_or(0)))
            .ok();
        let Some((payload, len)) = parsed else {
            self.remaining = 0;
            return None;
        };
        self.bytes = self.bytes.get(len..).unwrap_or_default();
        self.remaining -= 1;
        Some(payload)
    }
}

impl Args<'_> {
    /// Arguments not yet read.
    pub fn remaining(&self) -> u64 {
        self.remaining
    }
}

impl<'a> Value<'a> {
    /// An error's first word, which Redis makes its code (`ERR`, `WRONGTYPE`, `NOAUTH`).
    pub fn error_code(&self) -> Option<&'a [u8]> {
        let Value::Error(message) = self else {
            return None;
        };
        Some(first_word(message))
    }
}

/// How a `ValueWalker` step ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Walk {
    /// The value ended after this many bytes of the input.
    Done(usize),
    /// The value goes on: this many bytes were used; the rest (part of a header line, shorter
    /// than `MAX_LINE`) must be given again, with what follows it.
    NeedMore(usize),
    Invalid(InvalidReason),
}

/// Finds the end of one value seen in pieces, without keeping its bytes.
#[derive(Debug, Clone)]
pub struct ValueWalker {
    /// Values still to come at each open aggregate, innermost last.
    open: [u64; MAX_DEPTH],
    /// Which open aggregates are attributes: the value an attribute annotates follows it at the
    /// attribute's own level, so a chain of them does not nest.
    attribute: [bool; MAX_DEPTH],
    depth: usize,
    /// Payload and CRLF bytes of the current blob not seen yet.
    blob_left: u64,
}

impl Default for ValueWalker {
    fn default() -> Self {
        ValueWalker {
            open: [0; MAX_DEPTH],
            attribute: [false; MAX_DEPTH],
            depth: 0,
            blob_left: 0,
        }
    }
}

impl ValueWalker {
    /// A walker at the start of a value.
    pub fn new() -> ValueWalker {
        ValueWalker::default()
    }

    /// Reads on from `buf`, which continues where the last call's used bytes ended.
    pub fn feed(&mut self, buf: &[u8]) -> Walk {
        let mut used = 0;
        loop {
            if self.blob_left > 0 {
                let rest = buf.get(used..).unwrap_or_default();
                let take = usize::try_from(self.blob_left)
                    .unwrap_or(usize::MAX)
                    .min(rest.len());
                // The last two bytes of a blob are its CRLF: check what of it is here.
                for (i, &b) in rest.iter().take(take).enumerate() {
                    let left = self.blob_left - i as u64;
                    if left <= CRLF.len() as u64 && b != CRLF[CRLF.len() - left as usize] {
                        return Walk::Invalid(InvalidReason::MissingCrlf);
                    }
                }
                self.blob_left -= take as u64;
                used += take;
                if self.blob_left > 0 {
                    return Walk::NeedMore(used);
                }
                if self.element_done() {
                    return Walk::Done(used);
                }
                continue;
            }
            let h = match header(buf.get(used..).unwrap_or_default()) {
                Ok(h) => h,
                Err(Stop::NeedMore) => return Walk::NeedMore(used),
                Err(Stop::Invalid(reason)) => return Walk::Invalid(reason),
            };
            used += h.len;
            match (h.kind.shape(), h.size) {
                (Shape::Blob, Some(size)) => {
                    if h.kind == Kind::VerbatimString && size < 4 {
                        return Walk::Invalid(InvalidReason::BadVerbatim);
                    }
                    self.blob_left = size + CRLF.len() as u64;
                    continue;
                }
                (Shape::Aggregate, Some(count)) if h.kind.elements(count) > 0 => {
                    if self.depth >= MAX_DEPTH {
                        return Walk::Invalid(InvalidReason::TooDeep);
                    }
                    self.open[self.depth] = h.kind.elements(count);
                    self.attribute[self.depth] = h.kind == Kind::Attribute;
                    self.depth += 1;
                    continue;
                }
                (Shape::Aggregate, Some(_)) if h.kind == Kind::Attribute => continue,
                _ => {}
            }
            if self.element_done() {
                return Walk::Done(used);
            }
        }
    }

    /// Steps over `n` bytes the probe did not copy. True when they all fell inside a blob's
    /// payload; false when they reach into framing, after which the walker knows nothing.
    pub fn skip(&mut self, n: u64) -> bool {
        // The CRLF must be seen: a gap over it leaves the framing unchecked.
        let payload_left = self.blob_left.saturating_sub(CRLF.len() as u64);
        if n > payload_left {
            return false;
        }
        self.blob_left -= n;
        true
    }

    /// One element ended: close every aggregate it completes. True when the whole value ended.
    fn element_done(&mut self) -> bool {
        while self.depth > 0 {
            let open = &mut self.open[self.depth - 1];
            *open -= 1;
            if *open > 0 {
                return false;
            }
            self.depth -= 1;
            if self.attribute[self.depth] {
                // The annotated value is still to come, in the attribute's place.
                return false;
            }
        }
        true
    }
}
