//! HTTP/1.x parsing of bytes that may be cut off at any point.
//!
//! Parsers re-read from the start of the buffer on every call and keep no state, except the chunked
//! decoder, which must survive uncaptured bytes it never sees. They answer `NeedMore` only while the
//! bytes so far can still begin a valid message, so garbage is rejected early instead of being
//! buffered up to the limits.

use crate::model::ShortString;

use super::types::{
    BodyFraming, ChunkProgress, InvalidReason, Method, Parse, RequestHead, RequestLine,
    ResponseHead, StatusLine,
};
use crate::protocols::{self, finish};

/// Longest request or status line, line ending included.
pub const MAX_LINE: usize = 8192;
/// Longest head, start line through the blank line.
pub const MAX_HEAD: usize = 65536;
/// Longest chunk-size line, extensions and line ending included; the decoder buffers nothing, the
/// limit only catches a stream that is out of sync.
pub const MAX_CHUNK_LINE: usize = 4096;
/// Longest trailer section, final line ending included; same reason as `MAX_CHUNK_LINE`.
pub const MAX_TRAILERS: usize = MAX_HEAD;

const VERSION_PREFIX: &[u8] = b"HTTP/1.";

/// Why a parse stopped, with this protocol's reason.
type Stop = protocols::Stop<InvalidReason>;

impl From<InvalidReason> for Stop {
    fn from(reason: InvalidReason) -> Self {
        Stop::Invalid(reason)
    }
}

/// Longest method token accepted: the registered extension methods are at
/// most 17 bytes (`UPDATEREDIRECTREF`); a longer token is taken for not HTTP.
pub const MAX_METHOD_LEN: usize = 32;

/// Where the space after a method token is: 1 to [`MAX_METHOD_LEN`] tchars, then a space.
fn method_end(prefix: &[u8]) -> Option<usize> {
    let space = prefix
        .iter()
        .take(MAX_METHOD_LEN + 1)
        .position(|&b| b == b' ')?;
    let token = prefix.get(..space)?;
    (!token.is_empty() && token.iter().all(|&b| is_tchar(b))).then_some(space)
}

/// Whether a request target can start with this byte: origin-form `/`,
/// asterisk-form `*`, absolute-form `http...`.
fn starts_target(b: u8) -> bool {
    matches!(b, b'/' | b'*' | b'h' | b'H')
}

/// Detection on the first bytes of a stream. A known method and a space, and,
/// if present, a target start that fits (for CONNECT also authority-form, a
/// host name or the `[` of an IPv6 literal). An extension method (`PURGE`, or
/// `get`, which is not `GET`) claims the bytes only with its whole request
/// line, so that another text protocol is not taken for HTTP.
pub fn looks_like_request(prefix: &[u8]) -> bool {
    let Some(space) = method_end(prefix) else {
        return false;
    };
    let target = prefix.get(space + 1).copied();
    match Method::from_bytes(&prefix[..space]) {
        Some(method) => match target {
            None => true,
            Some(b) if starts_target(b) => true,
            Some(b) => method == Method::Connect && (b.is_ascii_alphanumeric() || b == b'['),
        },
        None => target.is_some_and(starts_target) && request_line(prefix).is_ok(),
    }
}

/// Bytes too few to tell that can still begin a request: a method token cut
/// short (a first read of one or two bytes), or an extension method's request
/// line not ended yet. The next read may complete it.
pub fn may_begin_request(prefix: &[u8]) -> bool {
    if prefix.is_empty() {
        return false;
    }
    match method_end(prefix) {
        Some(space) => {
            prefix.get(space + 1).is_none_or(|&b| starts_target(b))
                && matches!(request_line(prefix), Err(Stop::NeedMore))
        }
        None => prefix.len() <= MAX_METHOD_LEN && prefix.iter().all(|&b| is_tchar(b)),
    }
}

/// Cheap detection of a response: `HTTP/1.` a digit and a space.
pub fn looks_like_response(prefix: &[u8]) -> bool {
    matches!(
        prefix.get(..VERSION_PREFIX.len() + 2),
        Some([b'H', b'T', b'T', b'P', b'/', b'1', b'.', digit, b' ']) if digit.is_ascii_digit()
    )
}

/// Names the operation even when the capture cut the headers off.
pub fn parse_request_line(buf: &[u8]) -> Parse<RequestLine<'_>> {
    finish(request_line(buf))
}

/// The method and the start of the target of a request line that the
/// capture cut before its end, once the path is whole (the cut is in a query
/// string longer than the capture size): enough to name the request. None
/// unless the bytes are the beginning of a request line, and for a cut inside
/// the path, which would be a different path.
pub fn parse_cut_request_line(buf: &[u8]) -> Option<(&str, &str)> {
    if memchr::memchr(b'\n', buf).is_some() {
        return None;
    }
    let space = method_end(buf)?;
    let method = as_token(buf.get(..space)?).ok()?;
    let rest = buf.get(space + 1..)?;
    let (target, after) = match memchr::memchr(b' ', rest) {
        Some(i) => (rest.get(..i)?, rest.get(i + 1..)?),
        None => (rest, &[][..]),
    };
    let version_so_far = after.get(..after.len().min(VERSION_PREFIX.len()))?;
    let path_whole = target.len() < rest.len() || memchr::memchr2(b'?', b'#', target).is_some();
    let fits = target.first().is_some_and(|&b| starts_target(b))
        && path_whole
        && target.iter().all(u8::is_ascii_graphic)
        && VERSION_PREFIX.starts_with(version_so_far);
    if !fits {
        return None;
    }
    // Graphic ASCII is UTF-8.
    std::str::from_utf8(target)
        .ok()
        .map(|target| (method, target))
}

/// `url.path` of an origin-form target (HTTP/1.x, or HTTP/2's `:path`):
/// without the query and the fragment, and without the parameters of its
/// segments (`/cart;jsessionid=1A2B/items` is `/cart/items`): servlet
/// containers put session ids there, and the path reaches span names and
/// route labels. Allocates only for a path that has parameters.
pub fn url_path(target: &str) -> ShortString {
    let end = target.find(['?', '#']).unwrap_or(target.len());
    let path = &target[..end];
    if !path.contains(';') {
        return ShortString::from(path);
    }
    let mut out = String::with_capacity(path.len());
    for (i, segment) in path.split('/').enumerate() {
        if i > 0 {
            out.push('/');
        }
        out.push_str(segment.split(';').next().unwrap_or_default());
    }
    ShortString::from(out)
}

pub fn parse_status_line(buf: &[u8]) -> Parse<StatusLine> {
    finish(status_line(buf))
}

pub fn parse_request_head(buf: &[u8]) -> Parse<RequestHead<'_>> {
    finish(request_head(buf))
}

/// `request_method` is the method of the request this answers, when known: HEAD and CONNECT
/// change how the body is framed.
pub fn parse_response_head(buf: &[u8], request_method: Option<Method>) -> Parse<ResponseHead> {
    finish(response_head(buf, request_method))
}

/// Reads one start line that may be cut off: running out of bytes means `NeedMore` while the line
/// can still go on, but makes it malformed once its line ending has been seen.
struct Cursor<'a> {
    line: &'a [u8],
    pos: usize,
    whole: bool,
}

impl<'a> Cursor<'a> {
    fn next(&mut self, bad: InvalidReason) -> Result<u8, Stop> {
        match self.line.get(self.pos) {
            Some(&b) => {
                self.pos += 1;
                Ok(b)
            }
            None if self.whole => Err(Stop::Invalid(bad)),
            None => Err(Stop::NeedMore),
        }
    }

    fn peek(&self) -> Option<u8> {
        self.line.get(self.pos).copied()
    }

    fn expect(&mut self, literal: &[u8], bad: InvalidReason) -> Result<(), Stop> {
        for &want in literal {
            if self.next(bad)? != want {
                return Err(Stop::Invalid(bad));
            }
        }
        Ok(())
    }

    fn since(&self, start: usize) -> &'a [u8] {
        self.line.get(start..self.pos).unwrap_or_default()
    }

    /// Only an optional CR may remain: bare LF endings are accepted, as most servers do.
    fn end(&self, bad: InvalidReason) -> Result<(), Stop> {
        match self.line.get(self.pos..) {
            Some([] | [b'\r']) if self.whole => Ok(()),
            Some([] | [b'\r']) => Err(Stop::NeedMore),
            _ => Err(Stop::Invalid(bad)),
        }
    }
}

/// Runs `scan` over the first line of `buf`; returns its value and the line's length with its LF.
fn start_line<'a, T>(
    buf: &'a [u8],
    scan: impl FnOnce(&mut Cursor<'a>) -> Result<T, Stop>,
) -> Result<(T, usize), Stop> {
    let window = buf.get(..MAX_LINE).unwrap_or(buf);
    let newline = memchr::memchr(b'\n', window);
    let mut cursor = Cursor {
        line: newline.and_then(|i| window.get(..i)).unwrap_or(window),
        pos: 0,
        whole: newline.is_some(),
    };
    let value = match scan(&mut cursor) {
        // A scan stops short only on a line whose end has not been seen.
        Err(Stop::NeedMore) if window.len() >= MAX_LINE => {
            return Err(Stop::Invalid(InvalidReason::HeadTooLong))
        }
        result => result?,
    };
    Ok((value, newline.ok_or(Stop::NeedMore)? + 1))
}

/// The method token and its space; any token, so extension methods are read too.
fn method<'a>(cursor: &mut Cursor<'a>) -> Result<&'a str, Stop> {
    let start = cursor.pos;
    let rest = cursor.line.get(start..).unwrap_or_default();
    if let Some(len) = method_end(rest) {
        cursor.pos = start + len + 1;
        return as_token(rest.get(..len).unwrap_or_default());
    }
    // No space yet: a token cut short needs more, anything else is not HTTP.
    loop {
        let b = cursor.next(InvalidReason::NotHttp)?;
        let token = cursor.since(start);
        if b == b' ' || !is_tchar(b) || token.len() > MAX_METHOD_LEN {
            return Err(Stop::Invalid(InvalidReason::NotHttp));
        }
    }
}

/// A method token as text: tchars are ASCII.
fn as_token(token: &[u8]) -> Result<&str, Stop> {
    std::str::from_utf8(token).map_err(|_| Stop::Invalid(InvalidReason::NotHttp))
}

fn minor_version(cursor: &mut Cursor<'_>, bad: InvalidReason) -> Result<u8, Stop> {
    match cursor.next(bad)? {
        b'0' => Ok(0),
        b'1' => Ok(1),
        _ => Err(Stop::Invalid(bad)),
    }
}

fn request_line(buf: &[u8]) -> Result<RequestLine<'_>, Stop> {
    let bad = InvalidReason::BadRequestLine;
    let ((method, target, minor_version), len) = start_line(buf, |c| {
        let method = method(c)?;
        let start = c.pos;
        loop {
            match c.next(bad)? {
                b' ' => break,
                b if b.is_ascii_graphic() => {}
                _ => return Err(Stop::Invalid(bad)),
            }
        }
        let target = match c.since(start).split_last() {
            Some((_space, target)) if !target.is_empty() => target,
            _ => return Err(Stop::Invalid(bad)),
        };
        let target = std::str::from_utf8(target).map_err(|_| Stop::Invalid(bad))?;
        c.expect(VERSION_PREFIX, bad)?;
        let minor = minor_version(c, bad)?;
        c.end(bad)?;
        Ok((method, target, minor))
    })?;
    Ok(RequestLine {
        method,
        target,
        minor_version,
        len,
    })
}

fn status_line(buf: &[u8]) -> Result<StatusLine, Stop> {
    let bad = InvalidReason::BadStatusLine;
    let ((status, minor_version), len) = start_line(buf, |c| {
        c.expect(VERSION_PREFIX, InvalidReason::NotHttp)?;
        let minor = minor_version(c, bad)?;
        c.expect(b" ", bad)?;
        let mut status: u16 = 0;
        for _ in 0..3 {
            let digit = c.next(bad)?;
            if !digit.is_ascii_digit() {
                return Err(Stop::Invalid(bad));
            }
            status = status * 10 + u16::from(digit - b'0');
        }
        if status < 100 {
            return Err(Stop::Invalid(bad));
        }
        // The reason phrase and the space before it may both be missing.
        if c.peek() == Some(b' ') {
            while c.peek().is_some_and(is_field_byte) {
                c.pos += 1;
            }
        }
        c.end(bad)?;
        Ok((status, minor))
    })?;
    Ok(StatusLine {
        status,
        minor_version,
        len,
    })
}

/// What the header fields of one head say, as far as this agent cares.
#[derive(Default)]
struct Fields<'a> {
    head_len: usize,
    transfer_encoding: bool,
    /// Whether the last coding over all Transfer-Encoding lines is chunked: only the final one
    /// frames the body.
    chunked: bool,
    content_length: Option<u64>,
    /// Kept aside because Transfer-Encoding overrides Content-Length, whatever it holds.
    content_length_error: Option<InvalidReason>,
    close: bool,
    keep_alive: bool,
    traceparent: Option<&'a [u8]>,
    host: Option<&'a [u8]>,
    user_agent: Option<&'a [u8]>,
}

impl<'a> Fields<'a> {
    fn add(&mut self, line: &'a [u8]) -> Result<(), InvalidReason> {
        // The name is tchars up to the colon (not a tchar itself). Also rejects
        // obs-fold continuation lines, which start with whitespace (RFC 9112 5.2).
        let colon = line
            .iter()
            .position(|&b| !is_tchar(b))
            .filter(|&i| i > 0 && line[i] == b':')
            .ok_or(InvalidReason::BadHeader)?;
        let name = line.get(..colon).unwrap_or_default();
        let value = line.get(colon + 1..).unwrap_or_default();
        // Without an early exit, so the check runs over many bytes at a time.
        if !value.iter().fold(true, |ok, &b| ok & is_field_byte(b)) {
            return Err(InvalidReason::BadHeader);
        }
        let value = trim_ows(value);
        if name.eq_ignore_ascii_case(b"content-length") {
            self.add_content_length(value);
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            self.transfer_encoding = true;
            if let Some(last) = list(value).last() {
                self.chunked = last.eq_ignore_ascii_case(b"chunked");
            }
        } else if name.eq_ignore_ascii_case(b"connection") {
            for option in list(value) {
                self.close |= option.eq_ignore_ascii_case(b"close");
                self.keep_alive |= option.eq_ignore_ascii_case(b"keep-alive");
            }
        } else if name.eq_ignore_ascii_case(b"traceparent") {
            first_non_empty(&mut self.traceparent, value);
        } else if name.eq_ignore_ascii_case(b"host") {
            first_non_empty(&mut self.host, value);
        } else if name.eq_ignore_ascii_case(b"user-agent") {
            first_non_empty(&mut self.user_agent, value);
        }
        Ok(())
    }

    /// Repeated values, in one line as a list or over several lines, are fine while they agree
    /// (RFC 9110 section 8.6).
    fn add_content_length(&mut self, value: &[u8]) {
        if self.content_length_error.is_some() {
            return;
        }
        let mut any = false;
        for item in list(value) {
            any = true;
            let Some(n) = parse_decimal(item) else {
                self.content_length_error = Some(InvalidReason::BadContentLength);
                return;
            };
            if self.content_length.is_some_and(|seen| seen != n) {
                self.content_length_error = Some(InvalidReason::ConflictingFraming);
                return;
            }
            self.content_length = Some(n);
        }
        if !any {
            self.content_length_error = Some(InvalidReason::BadContentLength);
        }
    }

    fn content_length(&self) -> Result<Option<u64>, Stop> {
        match self.content_length_error {
            Some(reason) => Err(Stop::Invalid(reason)),
            None => Ok(self.content_length),
        }
    }

    fn connection_close(&self, minor_version: u8) -> bool {
        self.close || (minor_version == 0 && !self.keep_alive)
    }
}

/// Reads the header lines from `start` through the blank line.
fn fields(buf: &[u8], start: usize) -> Result<Fields<'_>, Stop> {
    let mut fields = Fields::default();
    let mut pos = start;
    loop {
        let rest = buf.get(pos..).unwrap_or_default();
        let room = MAX_HEAD.saturating_sub(pos);
        let window = rest.get(..room).unwrap_or(rest);
        let Some(newline) = memchr::memchr(b'\n', window) else {
            return Err(if window.len() >= room {
                Stop::Invalid(InvalidReason::HeadTooLong)
            } else {
                Stop::NeedMore
            });
        };
        let line = window.get(..newline).unwrap_or_default();
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        pos += newline + 1;
        if line.is_empty() {
            fields.head_len = pos;
            return Ok(fields);
        }
        fields.add(line)?;
    }
}

fn request_head(buf: &[u8]) -> Result<RequestHead<'_>, Stop> {
    let line = request_line(buf)?;
    let fields = fields(buf, line.len)?;
    let body = if fields.chunked {
        BodyFraming::Chunked
    } else if fields.transfer_encoding {
        // A server must reject this request (RFC 9112 section 6.3): its end cannot be found.
        return Err(Stop::Invalid(InvalidReason::ConflictingFraming));
    } else {
        fields
            .content_length()?
            .map_or(BodyFraming::Empty, BodyFraming::Length)
    };
    Ok(RequestHead {
        line,
        head_len: fields.head_len,
        body,
        traceparent: fields.traceparent.and_then(as_text),
        host: fields.host.and_then(as_text),
        user_agent: fields.user_agent.and_then(as_text),
        connection_close: fields.connection_close(line.minor_version),
    })
}

fn response_head(buf: &[u8], request_method: Option<Method>) -> Result<ResponseHead, Stop> {
    let line = status_line(buf)?;
    let fields = fields(buf, line.len)?;
    let status = line.status;
    let body = if request_method == Some(Method::Head)
        || (100..200).contains(&status)
        || status == 204
        || status == 304
    {
        BodyFraming::Empty
    } else if request_method == Some(Method::Connect) && (200..300).contains(&status) {
        BodyFraming::UntilClose
    } else if fields.chunked {
        BodyFraming::Chunked
    } else if fields.transfer_encoding {
        BodyFraming::UntilClose
    } else {
        fields
            .content_length()?
            .map_or(BodyFraming::UntilClose, BodyFraming::Length)
    };
    Ok(ResponseHead {
        line,
        head_len: fields.head_len,
        body,
        connection_close: fields.connection_close(line.minor_version),
    })
}

/// tchar of RFC 9110 section 5.6.2, one lookup per byte.
fn is_tchar(b: u8) -> bool {
    TCHAR[usize::from(b)]
}

const TCHAR: [bool; 256] = {
    let mut table = [false; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        table[i] = b.is_ascii_alphanumeric()
            || matches!(
                b,
                b'!' | b'#'
                    | b'$'
                    | b'%'
                    | b'&'
                    | b'\''
                    | b'*'
                    | b'+'
                    | b'-'
                    | b'.'
                    | b'^'
                    | b'_'
                    | b'`'
                    | b'|'
                    | b'~'
            );
        i += 1;
    }
    table
};

/// Field value and reason phrase bytes: visible ASCII, space, tab, and obs-text (>= 0x80).
fn is_field_byte(b: u8) -> bool {
    b == b'\t' || (b >= b' ' && b != 0x7f)
}

fn is_ows(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

fn trim_ows(mut value: &[u8]) -> &[u8] {
    while let [first, rest @ ..] = value {
        if !is_ows(*first) {
            break;
        }
        value = rest;
    }
    while let [rest @ .., last] = value {
        if !is_ows(*last) {
            break;
        }
        value = rest;
    }
    value
}

/// Elements of a comma-separated field value; empty ones are skipped (RFC 9110 section 5.6.1).
fn list(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value
        .split(|&b| b == b',')
        .map(trim_ows)
        .filter(|item| !item.is_empty())
}

fn first_non_empty<'a>(slot: &mut Option<&'a [u8]>, value: &'a [u8]) {
    if slot.is_none() && !value.is_empty() {
        *slot = Some(value);
    }
}

fn as_text(value: &[u8]) -> Option<&str> {
    std::str::from_utf8(value).ok()
}

fn parse_decimal(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() {
        return None;
    }
    digits.iter().try_fold(0u64, |n, &b| {
        if !b.is_ascii_digit() {
            return None;
        }
        n.checked_mul(10)?.checked_add(u64::from(b - b'0'))
    })
}

/// Where the decoder is in the chunked body (RFC 9112 section 7.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum ChunkState {
    /// Start of a chunk-size line: a hex digit must come.
    #[default]
    SizeStart,
    SizeDigits(u64),
    /// Whitespace after the size, allowed before extensions by many senders.
    SizeSpace(u64),
    Extension(u64),
    SizeLf(u64),
    Data(u64),
    DataCr,
    DataLf,
    /// Start of a trailer line, or of the final blank line.
    TrailerStart,
    Trailer,
    TrailerLf,
    FinalLf,
    Done,
}

/// Incremental chunked-body decoder: keeps its place across any split of the input and across
/// uncaptured data, without buffering.
#[derive(Debug, Clone, Default)]
pub struct ChunkedDecoder {
    state: ChunkState,
    /// Bytes of the current size line or trailer section, for the limits.
    framing_len: usize,
}

impl ChunkedDecoder {
    /// Consumes body bytes from the front of `data`; stops right after the body's end, so what
    /// follows (a pipelined message) is left to the caller. After an error the body cannot be
    /// followed any further.
    pub fn feed(&mut self, data: &[u8]) -> Result<ChunkProgress, InvalidReason> {
        let mut pos = 0;
        while let Some(rest) = data.get(pos..).filter(|rest| !rest.is_empty()) {
            match self.state {
                ChunkState::Done => break,
                ChunkState::Data(remaining) => {
                    let take = usize::try_from(remaining).map_or(rest.len(), |r| r.min(rest.len()));
                    pos += take;
                    self.skip_data(remaining, take as u64);
                }
                _ => {
                    let b = rest.first().copied().unwrap_or_default();
                    self.step(b)?;
                    pos += 1;
                }
            }
        }
        Ok(ChunkProgress {
            consumed: pos,
            done: self.state == ChunkState::Done,
        })
    }

    /// Accounts for `n` body bytes that went by without being captured. Returns false, leaving the
    /// state as it was, when they would not all be chunk data: the framing inside them is unknown.
    pub fn skip_uncaptured(&mut self, n: u64) -> bool {
        match self.state {
            _ if n == 0 => true,
            ChunkState::Data(remaining) if n <= remaining => {
                self.skip_data(remaining, n);
                true
            }
            _ => false,
        }
    }

    fn skip_data(&mut self, remaining: u64, n: u64) {
        self.state = match remaining - n {
            0 => ChunkState::DataCr,
            left => ChunkState::Data(left),
        };
    }

    fn step(&mut self, b: u8) -> Result<(), InvalidReason> {
        use ChunkState as S;
        let bad = InvalidReason::BadChunk;
        self.framing_len += 1;
        let limit = match self.state {
            S::TrailerStart | S::Trailer | S::TrailerLf | S::FinalLf => MAX_TRAILERS,
            _ => MAX_CHUNK_LINE,
        };
        if self.framing_len > limit {
            return Err(bad);
        }
        self.state = match (self.state, b) {
            (S::SizeStart, _) => S::SizeDigits(hex_value(b).ok_or(bad)?),
            (S::SizeDigits(size), _) if b.is_ascii_hexdigit() => {
                let digit = hex_value(b).ok_or(bad)?;
                S::SizeDigits(size.checked_mul(16).ok_or(bad)? | digit)
            }
            (S::SizeDigits(size) | S::SizeSpace(size), b' ' | b'\t') => S::SizeSpace(size),
            (S::SizeDigits(size) | S::SizeSpace(size) | S::Extension(size), b';') => {
                S::Extension(size)
            }
            (S::SizeDigits(size) | S::SizeSpace(size) | S::Extension(size), b'\r') => {
                S::SizeLf(size)
            }
            (
                S::SizeDigits(size) | S::SizeSpace(size) | S::Extension(size) | S::SizeLf(size),
                b'\n',
            ) => self.end_size_line(size),
            (S::Extension(size), _) if is_field_byte(b) => S::Extension(size),
            (S::DataCr, b'\r') => S::DataLf,
            (S::DataCr | S::DataLf, b'\n') => {
                self.framing_len = 0;
                S::SizeStart
            }
            (S::TrailerStart, b'\r') => S::FinalLf,
            (S::TrailerStart | S::FinalLf, b'\n') => S::Done,
            (S::Trailer, b'\r') => S::TrailerLf,
            (S::Trailer | S::TrailerLf, b'\n') => S::TrailerStart,
            (S::TrailerStart | S::Trailer, _) if is_field_byte(b) => S::Trailer,
            _ => return Err(bad),
        };
        Ok(())
    }

    fn end_size_line(&mut self, size: u64) -> ChunkState {
        self.framing_len = 0;
        match size {
            0 => ChunkState::TrailerStart,
            size => ChunkState::Data(size),
        }
    }
}

fn hex_value(b: u8) -> Option<u64> {
    char::from(b).to_digit(16).map(u64::from)
}
