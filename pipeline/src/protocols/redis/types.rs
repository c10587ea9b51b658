//! RESP2 and RESP3 values as they cross the wire; values borrow from the captured bytes.

/// Outcome of parsing bytes that may be cut off anywhere.
pub type Parse<T> = crate::protocols::Parse<T, InvalidReason>;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum InvalidReason {
    /// The first byte names no RESP type (inline commands are not RESP either).
    UnknownType,
    /// A line that is not what its type allows: a bad number, a CR without LF, a boolean other
    /// than `t` or `f`, text after a null.
    BadLine,
    /// A length or count below -1, or past the limits of `parse`.
    BadLength,
    /// A line past `MAX_LINE` without its end: most likely not RESP, or out of sync.
    LineTooLong,
    /// Aggregates nested deeper than `MAX_DEPTH`.
    TooDeep,
    /// A blob whose payload is not followed by CRLF.
    MissingCrlf,
    /// A verbatim string without its `xxx:` format prefix.
    BadVerbatim,
    /// A request that is not a non-empty array of bulk strings.
    NotCommand,
}

impl InvalidReason {
    /// The name self-metrics count this reason under.
    pub fn as_str(self) -> &'static str {
        match self {
            InvalidReason::UnknownType => "unknown_type",
            InvalidReason::BadLine => "bad_line",
            InvalidReason::BadLength => "bad_length",
            InvalidReason::LineTooLong => "line_too_long",
            InvalidReason::TooDeep => "too_deep",
            InvalidReason::MissingCrlf => "missing_crlf",
            InvalidReason::BadVerbatim => "bad_verbatim",
            InvalidReason::NotCommand => "not_command",
        }
    }
}

/// The type byte that starts every RESP value (RESP2: `+ - : $ *`; the rest RESP3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    SimpleString,
    SimpleError,
    Integer,
    BulkString,
    Array,
    Null,
    Boolean,
    Double,
    BigNumber,
    BulkError,
    VerbatimString,
    Map,
    Attribute,
    Set,
    Push,
}

/// How the bytes after a header line are framed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// The line is the whole value.
    Line,
    /// A length, then that many payload bytes and CRLF.
    Blob,
    /// A count, then that many values (twice that many for maps and attributes).
    Aggregate,
}

impl Kind {
    pub fn from_byte(b: u8) -> Option<Kind> {
        Some(match b {
            b'+' => Kind::SimpleString,
            b'-' => Kind::SimpleError,
            b':' => Kind::Integer,
            b'$' => Kind::BulkString,
            b'*' => Kind::Array,
            b'_' => Kind::Null,
            b'#' => Kind::Boolean,
            b',' => Kind::Double,
            b'(' => Kind::BigNumber,
            b'!' => Kind::BulkError,
            b'=' => Kind::VerbatimString,
            b'%' => Kind::Map,
            b'|' => Kind::Attribute,
            b'~' => Kind::Set,
            b'>' => Kind::Push,
            _ => return None,
        })
    }

    pub fn shape(self) -> Shape {
        match self {
            Kind::BulkString | Kind::BulkError | Kind::VerbatimString => Shape::Blob,
            Kind::Array | Kind::Map | Kind::Attribute | Kind::Set | Kind::Push => Shape::Aggregate,
            Kind::SimpleString
            | Kind::SimpleError
            | Kind::Integer
            | Kind::Null
            | Kind::Boolean
            | Kind::Double
            | Kind::BigNumber => Shape::Line,
        }
    }

    /// Values an aggregate of `count` holds: maps and attributes hold key/value pairs.
    pub fn elements(self, count: u64) -> u64 {
        match self {
            Kind::Map | Kind::Attribute => count.saturating_mul(2),
            _ => count,
        }
    }
}

/// The first line of a value: its type byte through CRLF.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header<'a> {
    pub kind: Kind,
    /// The line between the type byte and CRLF.
    pub line: &'a [u8],
    /// For blobs the payload length, for aggregates the count as sent; `None` for the RESP2
    /// nulls `$-1` and `*-1`, and for line values.
    pub size: Option<u64>,
    /// Bytes of the header, type byte and CRLF included.
    pub len: usize,
}

/// One whole value. Aggregates keep their elements as bytes, read on demand with `Elements`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Value<'a> {
    Simple(&'a [u8]),
    /// A simple or bulk error: `ERR ...`, `WRONGTYPE ...`.
    Error(&'a [u8]),
    Integer(i64),
    Bulk(&'a [u8]),
    /// RESP3 `_`, and RESP2's null bulk string and null array.
    Null,
    Boolean(bool),
    /// The double as sent (`3.141`, `inf`, `nan`).
    Double(&'a [u8]),
    /// The big number's digits as sent.
    BigNumber(&'a [u8]),
    Verbatim {
        format: &'a [u8],
        text: &'a [u8],
    },
    Array(Elements<'a>),
    Set(Elements<'a>),
    /// Keys and values alternate.
    Map(Elements<'a>),
    /// Out-of-band data (pub/sub messages, invalidations): not the reply to any command.
    Push(Elements<'a>),
}

/// A value as parsed from the start of a buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame<'a> {
    pub value: Value<'a>,
    /// Bytes the value took, including any attribute that came before it.
    pub len: usize,
}

/// The elements of an aggregate that has already been checked whole: iterating re-reads them
/// from `bytes` without allocating.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Elements<'a> {
    pub(crate) bytes: &'a [u8],
    pub(crate) remaining: u64,
    pub(crate) depth: usize,
}

/// A client command: a non-empty array of bulk strings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Command<'a> {
    /// The command name as sent (any case).
    pub name: &'a [u8],
    /// The arguments after the name.
    pub args: Args<'a>,
    /// Bytes the command took.
    pub len: usize,
}

/// The bulk-string arguments of a checked command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Args<'a> {
    pub(crate) bytes: &'a [u8],
    pub(crate) remaining: u64,
}

/// What a push (RESP3 `>`), or a RESP2 array read on a subscribed connection, carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PushKind {
    /// A published message: `message`, `pmessage`, `smessage`.
    Message,
    /// The confirmation of a (un)subscription: one per channel or pattern named.
    Subscription,
    /// Anything else: client-side caching invalidations, server notices.
    Other,
}

/// The first parts of a command, which a stitcher keeps; the rest may be cut off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommandStart<'a> {
    /// The command name as sent (any case).
    pub name: &'a [u8],
    pub first_arg: Option<&'a [u8]>,
    /// Arguments after the name.
    pub arg_count: u64,
}

/// The first parts of a reply, which a stitcher keeps; the rest may be cut off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplyStart<'a> {
    pub kind: Kind,
    /// An error's code: its first word (`ERR`, `WRONGTYPE`).
    pub error_code: Option<&'a [u8]>,
    /// For arrays and pushes: what the first element says they carry.
    pub push: Option<PushKind>,
}
