//! PostgreSQL wire protocol v3 messages, as far as spans need them. Values
//! borrow from the captured bytes: parsing never allocates.

/// The outcome of parsing bytes that may be cut off anywhere.
pub type Parse<T> = crate::protocols::Parse<T, InvalidReason>;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum InvalidReason {
    /// A type byte no message of this direction has.
    UnknownType,
    /// A length below the 4 bytes of the length itself, or above the protocol's limit.
    BadLength,
    /// A startup packet whose protocol code is neither 3.0 nor a known request.
    UnknownStartupCode,
    /// The body does not hold what the message type says (a string without its NUL, a
    /// count beyond the body, bytes left over).
    Malformed,
}

impl InvalidReason {
    /// The reason's name, for the self-metric of invalid traffic.
    pub fn as_str(self) -> &'static str {
        match self {
            InvalidReason::UnknownType => "postgres_unknown_type",
            InvalidReason::BadLength => "postgres_bad_length",
            InvalidReason::UnknownStartupCode => "postgres_unknown_startup_code",
            InvalidReason::Malformed => "postgres_malformed",
        }
    }
}

/// The type byte and length that start every message after startup.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub tag: u8,
    /// Bytes of the whole message: type byte, length field and body.
    pub len: usize,
}

/// A parsed message and the bytes it took.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Message<T> {
    pub body: T,
    pub len: usize,
}

/// What a client sends before the protocol proper: it has no type byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Startup<'a> {
    /// Protocol 3.x with its parameters (`user`, `database`, `application_name`, ...).
    Start {
        minor_version: u16,
        params: Params<'a>,
    },
    /// Asks to switch to TLS; the server answers one byte, `S` or `N`.
    SslRequest,
    /// Asks for GSSAPI encryption; answered like `SslRequest`.
    GssEncRequest,
    /// Cancels a query of another connection; the server closes without an answer.
    CancelRequest,
}

/// The NUL-terminated name/value pairs of a startup message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Params<'a> {
    pub(crate) raw: &'a [u8],
}

impl<'a> Params<'a> {
    /// The value of parameter `name`, if the client sent it.
    pub fn get(&self, name: &str) -> Option<&'a [u8]> {
        let mut parts = self.raw.split(|&b| b == 0);
        while let (Some(key), Some(value)) = (parts.next(), parts.next()) {
            if key.is_empty() {
                return None;
            }
            if key == name.as_bytes() {
                return Some(value);
            }
        }
        None
    }
}

/// Messages from client to server (frontend), after startup.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Frontend<'a> {
    /// `Q`: simple query, one or more statements.
    Query {
        text: &'a [u8],
    },
    /// `P`: extended protocol, prepares `query` as `statement` (empty: the unnamed one).
    Parse {
        statement: &'a [u8],
        query: &'a [u8],
    },
    /// `B`: binds parameters to `statement`, making `portal`.
    Bind {
        portal: &'a [u8],
        statement: &'a [u8],
    },
    /// `D`: describes a statement (`S`) or portal (`P`).
    Describe {
        target: Target,
        name: &'a [u8],
    },
    /// `E`: runs `portal`; `max_rows` 0 means all.
    Execute {
        portal: &'a [u8],
        max_rows: u32,
    },
    /// `C`: closes a statement or portal.
    Close {
        target: Target,
        name: &'a [u8],
    },
    /// `S`: ends an extended-protocol batch; the server answers ReadyForQuery.
    Sync,
    /// `H`: asks the server to send what it has; no answer of its own.
    Flush,
    /// `X`: the client is leaving.
    Terminate,
    /// `d`, `c`, `f`: COPY FROM STDIN data, its end, or its abort.
    CopyData,
    CopyDone,
    CopyFail,
    /// `F`: a function call (the old fast-path interface).
    FunctionCall,
    /// `p`: password, SASL or GSSAPI response during authentication.
    AuthResponse,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Statement,
    Portal,
}

/// Messages from server to client (backend).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend<'a> {
    /// `R`: 0 is AuthenticationOk; other codes ask for credentials.
    Authentication {
        code: u32,
    },
    /// `S`
    ParameterStatus {
        name: &'a [u8],
        value: &'a [u8],
    },
    /// `K`
    BackendKeyData,
    /// `Z`: the server is ready for a new query; `status` is `I` (idle), `T` (in a
    /// transaction) or `E` (in a failed transaction).
    ReadyForQuery {
        status: u8,
    },
    /// `T`
    RowDescription {
        fields: u16,
    },
    /// `D`
    DataRow,
    /// `C`: one statement done; `tag` is e.g. `SELECT 1`, `INSERT 0 1`.
    CommandComplete {
        tag: &'a [u8],
    },
    /// `I`: the query string was empty.
    EmptyQueryResponse,
    /// `E`
    ErrorResponse(Fields<'a>),
    /// `N`: a warning or notice; never ends a query.
    NoticeResponse(Fields<'a>),
    /// `1`, `2`, `3`: Parse, Bind, Close done.
    ParseComplete,
    BindComplete,
    CloseComplete,
    /// `n`: Describe of something that returns no rows.
    NoData,
    /// `t`
    ParameterDescription,
    /// `s`: Execute stopped at its row limit; the portal can go on.
    PortalSuspended,
    /// `G`, `H`, `W`: COPY begins.
    CopyInResponse,
    CopyOutResponse,
    CopyBothResponse,
    /// `d`, `c`: COPY TO STDOUT data and its end.
    CopyData,
    CopyDone,
    /// `A`: LISTEN/NOTIFY; may come at any time.
    NotificationResponse,
    /// `V`
    FunctionCallResponse,
    /// `v`
    NegotiateProtocolVersion,
}

/// The fields of an ErrorResponse or NoticeResponse: a code byte and a NUL-terminated
/// string each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fields<'a> {
    pub(crate) raw: &'a [u8],
}

impl<'a> Fields<'a> {
    fn field(&self, code: u8) -> Option<&'a [u8]> {
        let mut rest = self.raw;
        while let [field_code, tail @ ..] = rest {
            if *field_code == 0 {
                return None;
            }
            let end = memchr::memchr(0, tail)?;
            if *field_code == code {
                return tail.get(..end);
            }
            rest = tail.get(end + 1..)?;
        }
        None
    }

    /// `C`: the SQLSTATE code, five characters (e.g. `42P01`).
    pub fn code(&self) -> Option<&'a [u8]> {
        self.field(b'C')
    }

    /// `V` (not localized, since 9.6), else `S`: `ERROR`, `FATAL`, `PANIC`, `WARNING`...
    pub fn severity(&self) -> Option<&'a [u8]> {
        self.field(b'V').or_else(|| self.field(b'S'))
    }

    /// `M`: the primary message.
    pub fn message(&self) -> Option<&'a [u8]> {
        self.field(b'M')
    }
}
