//! MySQL / MariaDB client/server protocol packets, as far as spans need them.
//! Values borrow from the captured bytes: parsing never allocates.

/// The outcome of parsing bytes that may be cut off anywhere.
pub type Parse<T> = crate::protocols::Parse<T, InvalidReason>;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum InvalidReason {
    /// A payload longer than the protocol allows, or a packet that continues a payload
    /// with the wrong sequence number.
    BadLength,
    /// A command byte no client sends.
    UnknownCommand,
    /// The payload does not hold what its first byte says.
    Malformed,
}

impl InvalidReason {
    /// The reason's name, for the self-metric of invalid traffic.
    pub fn as_str(self) -> &'static str {
        match self {
            InvalidReason::BadLength => "mysql_bad_length",
            InvalidReason::UnknownCommand => "mysql_unknown_command",
            InvalidReason::Malformed => "mysql_malformed",
        }
    }
}

/// One packet: 3-byte little-endian payload length, sequence number, payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Packet<'a> {
    pub seq: u8,
    pub payload: &'a [u8],
    /// Bytes on the wire: header and payload.
    pub len: usize,
}

/// A payload of 16 MiB or more travels as several packets, each full one followed by the
/// next; `first` is the first packet's payload, enough for any field spans use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Message<'a> {
    /// Sequence number of the first packet.
    pub seq: u8,
    pub first: &'a [u8],
    /// Payload bytes over all packets.
    pub payload_len: usize,
    pub packets: usize,
    /// Bytes on the wire over all packets.
    pub len: usize,
}

/// Capability flags both sides announce in the handshake.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Capabilities(pub u32);

impl Capabilities {
    pub const CONNECT_WITH_DB: u32 = 0x0000_0008;
    pub const COMPRESS: u32 = 0x0000_0020;
    pub const PROTOCOL_41: u32 = 0x0000_0200;
    pub const SSL: u32 = 0x0000_0800;
    pub const SECURE_CONNECTION: u32 = 0x0000_8000;
    pub const PLUGIN_AUTH: u32 = 0x0008_0000;
    pub const CONNECT_ATTRS: u32 = 0x0010_0000;
    pub const PLUGIN_AUTH_LENENC_CLIENT_DATA: u32 = 0x0020_0000;
    pub const DEPRECATE_EOF: u32 = 0x0100_0000;
    pub const QUERY_ATTRIBUTES: u32 = 0x0800_0000;

    pub fn has(self, flag: u32) -> bool {
        self.0 & flag != 0
    }
}

/// The server's first packet (HandshakeV10).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Greeting<'a> {
    pub server_version: &'a [u8],
    pub connection_id: u32,
    pub capabilities: Capabilities,
}

/// The client's answer to the greeting (HandshakeResponse41), or the short SSLRequest
/// that asks to continue in TLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Login<'a> {
    Response {
        capabilities: Capabilities,
        user: &'a [u8],
        /// The default schema, when the client named one (CONNECT_WITH_DB).
        database: Option<&'a [u8]>,
    },
    SslRequest {
        capabilities: Capabilities,
    },
}

/// What a client asks, the first payload byte of a packet with sequence number 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command<'a> {
    /// `COM_QUERY`: SQL text, run at once.
    Query {
        text: &'a [u8],
    },
    /// `COM_STMT_PREPARE`: SQL text with `?` placeholders; the server answers with an id.
    StmtPrepare {
        text: &'a [u8],
    },
    /// `COM_STMT_EXECUTE`: runs prepared statement `statement` (MariaDB: `u32::MAX` is the
    /// one prepared just before on this connection).
    StmtExecute {
        statement: u32,
    },
    /// MariaDB's `COM_STMT_BULK_EXECUTE`: one statement, many parameter rows.
    StmtBulkExecute {
        statement: u32,
    },
    /// `COM_STMT_FETCH`: rows of an open cursor.
    StmtFetch {
        statement: u32,
    },
    /// `COM_STMT_SEND_LONG_DATA`: a parameter in pieces; no answer.
    StmtSendLongData {
        statement: u32,
    },
    /// `COM_STMT_CLOSE`: no answer.
    StmtClose {
        statement: u32,
    },
    StmtReset {
        statement: u32,
    },
    /// `COM_INIT_DB`: the new default schema.
    InitDb {
        schema: &'a [u8],
    },
    Ping,
    /// `COM_QUIT`: the connection closes without an answer.
    Quit,
    ChangeUser,
    ResetConnection,
    SetOption,
    /// Another command the protocol defines (statistics, process info, binlog...).
    Other {
        code: u8,
    },
}

impl Command<'_> {
    /// Whether the server answers this command.
    pub fn expects_response(&self) -> bool {
        !matches!(
            self,
            Command::Quit | Command::StmtClose { .. } | Command::StmtSendLongData { .. }
        )
    }
}

/// The first packet of a server's answer to a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Response<'a> {
    Ok(OkPacket),
    Err(ErrPacket<'a>),
    /// The old end-of-data marker (before CLIENT_DEPRECATE_EOF).
    Eof {
        status: u16,
    },
    /// `LOAD DATA LOCAL INFILE`: the server asks the client for a file.
    LocalInfile,
    /// A result set of this many columns follows. `metadata` is false when MariaDB leaves
    /// out the column definitions the client has cached (MARIADB_CLIENT_CACHE_METADATA).
    ResultSet {
        columns: u64,
        metadata: bool,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OkPacket {
    pub affected_rows: u64,
    pub status: u16,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ErrPacket<'a> {
    pub code: u16,
    /// Five characters, e.g. `42S02`; absent before the handshake completes.
    pub sql_state: Option<&'a [u8]>,
    pub message: &'a [u8],
}

/// The answer to COM_STMT_PREPARE.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PrepareOk {
    pub statement: u32,
    pub columns: u16,
    pub params: u16,
}

/// Server status flags of OK and EOF packets.
pub mod status {
    /// Another result set follows (multi-statement queries, stored procedures).
    pub const MORE_RESULTS_EXIST: u16 = 0x0008;
    /// A cursor was opened: rows come through COM_STMT_FETCH.
    pub const CURSOR_EXISTS: u16 = 0x0040;
}
