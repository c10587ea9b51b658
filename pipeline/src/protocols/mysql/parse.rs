//! MySQL / MariaDB parsing of bytes that may be cut off at any point.
//!
//! Every packet is a 3-byte little-endian payload length, a sequence number and the
//! payload. The packet parsers keep no state and consume nothing; `ResponseFraming`
//! follows the packets of one answer (OK, ERR or a result set, possibly several) to its
//! last, since no packet says how long an answer is.

use super::types::{
    status, Capabilities, Command, ErrPacket, Greeting, InvalidReason, Login, Message, OkPacket,
    Packet, Parse, PrepareOk, Response,
};
use crate::protocols::{self, finish};

/// Packet header: payload length and sequence number.
pub const HEADER_LEN: usize = 4;
/// A payload this long continues in the next packet.
pub const MAX_PACKET_PAYLOAD: usize = 0xff_ffff;
/// Largest payload over all its packets (the server's `max_allowed_packet` cannot exceed
/// 1 GiB); longer is not MySQL, or out of step.
pub const MAX_PAYLOAD: usize = 1 << 30;
/// Greeting protocol version since MySQL 3.21.
const PROTOCOL_VERSION_10: u8 = 10;
/// An SSLRequest is the first 32 bytes of a HandshakeResponse41.
const SSL_REQUEST_LEN: usize = 32;

const OK: u8 = 0x00;
const EOF: u8 = 0xfe;
const ERR: u8 = 0xff;
const LOCAL_INFILE: u8 = 0xfb;
/// An EOF packet is shorter than this; a row starting with 0xfe (an 8-byte length) is not.
const EOF_MAX_LEN: usize = 9;

/// Why a parse stopped, with this protocol's reason.
type Stop = protocols::Stop<InvalidReason>;

impl From<InvalidReason> for Stop {
    fn from(reason: InvalidReason) -> Self {
        Stop::Invalid(reason)
    }
}

fn le_u16(bytes: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(bytes.get(at..at + 2)?.try_into().ok()?))
}

fn le_u32(bytes: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(bytes.get(at..at + 4)?.try_into().ok()?))
}

/// The length of the payload announced by the packet header at the start of `buf`.
pub fn payload_len(buf: &[u8]) -> Option<usize> {
    let header = buf.get(..3)?;
    Some(usize::from(header[0]) | usize::from(header[1]) << 8 | usize::from(header[2]) << 16)
}

/// One packet, whole.
pub fn parse_packet(buf: &[u8]) -> Parse<Packet<'_>> {
    let (Some(len), Some(&seq)) = (payload_len(buf), buf.get(3)) else {
        return Parse::NeedMore;
    };
    match buf.get(HEADER_LEN..HEADER_LEN + len) {
        Some(payload) => Parse::Parsed(Packet {
            seq,
            payload,
            len: HEADER_LEN + len,
        }),
        None => Parse::NeedMore,
    }
}

/// One payload, whole: a packet, or a full packet and those continuing it, each with the
/// next sequence number, up to one shorter than the maximum.
pub fn parse_message(buf: &[u8]) -> Parse<Message<'_>> {
    finish(message(buf))
}

fn message(buf: &[u8]) -> Result<Message<'_>, Stop> {
    let mut pos = 0;
    let mut payload_len = 0;
    let mut packets = 0;
    let mut first = None;
    let mut seq = None;
    loop {
        let rest = buf.get(pos..).unwrap_or_default();
        let (Some(len), Some(&this_seq)) = (self::payload_len(rest), rest.get(3)) else {
            return Err(Stop::NeedMore);
        };
        match seq {
            Some(expected) if this_seq != expected => return Err(InvalidReason::BadLength.into()),
            _ => {}
        }
        seq = Some(this_seq.wrapping_add(1));
        payload_len += len;
        if payload_len > MAX_PAYLOAD {
            return Err(InvalidReason::BadLength.into());
        }
        let payload = rest
            .get(HEADER_LEN..HEADER_LEN + len)
            .ok_or(Stop::NeedMore)?;
        first.get_or_insert((this_seq, payload));
        packets += 1;
        pos += HEADER_LEN + len;
        if len < MAX_PACKET_PAYLOAD {
            let (seq, first) = first.unwrap_or_default();
            return Ok(Message {
                seq,
                first,
                payload_len,
                packets,
                len: pos,
            });
        }
    }
}

/// A length-encoded integer at the start of `bytes`: its value and its size.
pub fn lenenc_int(bytes: &[u8]) -> Option<(u64, usize)> {
    let &first = bytes.first()?;
    let size = match first {
        0..=0xfa => return Some((u64::from(first), 1)),
        0xfc => 2,
        0xfd => 3,
        0xfe => 8,
        // 0xfb is NULL in a row, 0xff an error: neither is an integer.
        _ => return None,
    };
    let digits = bytes.get(1..1 + size)?;
    let value = digits
        .iter()
        .rev()
        .fold(0u64, |n, &b| n << 8 | u64::from(b));
    Some((value, 1 + size))
}

fn cstring(bytes: &[u8]) -> Option<(&[u8], &[u8])> {
    let end = memchr::memchr(0, bytes)?;
    Some((bytes.get(..end)?, bytes.get(end + 1..)?))
}

/// The server's greeting (protocol 10), from its payload.
pub fn parse_greeting(payload: &[u8]) -> Result<Greeting<'_>, InvalidReason> {
    let bad = InvalidReason::Malformed;
    let (&version, rest) = payload.split_first().ok_or(bad)?;
    if version != PROTOCOL_VERSION_10 {
        return Err(bad);
    }
    let (server_version, rest) = cstring(rest).ok_or(bad)?;
    let connection_id = le_u32(rest, 0).ok_or(bad)?;
    // 8 bytes of auth data and a filler byte, then the low capability bytes.
    let low = le_u16(rest, 13).ok_or(bad)?;
    // Character set and status flags, then the high capability bytes (absent in very
    // old servers).
    let high = le_u16(rest, 18).unwrap_or(0);
    Ok(Greeting {
        server_version,
        connection_id,
        capabilities: Capabilities(u32::from(low) | u32::from(high) << 16),
    })
}

/// The client's login packet, from its payload: a HandshakeResponse41, or an SSLRequest.
pub fn parse_login(payload: &[u8]) -> Result<Login<'_>, InvalidReason> {
    let bad = InvalidReason::Malformed;
    let capabilities = Capabilities(le_u32(payload, 0).ok_or(bad)?);
    if !capabilities.has(Capabilities::PROTOCOL_41) {
        return Err(bad);
    }
    if payload.len() == SSL_REQUEST_LEN && capabilities.has(Capabilities::SSL) {
        return Ok(Login::SslRequest { capabilities });
    }
    // Capabilities, max packet size, character set, 23 reserved bytes.
    let rest = payload.get(SSL_REQUEST_LEN..).ok_or(bad)?;
    let (user, rest) = cstring(rest).ok_or(bad)?;
    let rest = if capabilities.has(Capabilities::PLUGIN_AUTH_LENENC_CLIENT_DATA) {
        let (len, size) = lenenc_int(rest).ok_or(bad)?;
        let end = usize::try_from(len)
            .ok()
            .and_then(|len| len.checked_add(size))
            .ok_or(bad)?;
        rest.get(end..).ok_or(bad)?
    } else if capabilities.has(Capabilities::SECURE_CONNECTION) {
        let (&len, rest) = rest.split_first().ok_or(bad)?;
        rest.get(usize::from(len)..).ok_or(bad)?
    } else {
        cstring(rest).ok_or(bad)?.1
    };
    let database = if capabilities.has(Capabilities::CONNECT_WITH_DB) {
        Some(cstring(rest).ok_or(bad)?.0)
    } else {
        None
    };
    Ok(Login::Response {
        capabilities,
        user,
        database,
    })
}

/// A client command, from the first bytes of its payload (which may be cut off:
/// a statement's text is then its first bytes).
pub fn parse_command(payload: &[u8]) -> Result<Command<'_>, InvalidReason> {
    let (&code, body) = payload.split_first().ok_or(InvalidReason::Malformed)?;
    let statement = || le_u32(body, 0).ok_or(InvalidReason::Malformed);
    Ok(match code {
        0x01 => Command::Quit,
        0x02 => Command::InitDb { schema: body },
        0x03 => Command::Query { text: body },
        0x0e => Command::Ping,
        0x11 => Command::ChangeUser,
        0x16 => Command::StmtPrepare { text: body },
        0x17 => Command::StmtExecute {
            statement: statement()?,
        },
        0x18 => Command::StmtSendLongData {
            statement: statement()?,
        },
        0x19 => Command::StmtClose {
            statement: statement()?,
        },
        0x1a => Command::StmtReset {
            statement: statement()?,
        },
        0x1b => Command::SetOption,
        0x1c => Command::StmtFetch {
            statement: statement()?,
        },
        0x1f => Command::ResetConnection,
        0xfa => Command::StmtBulkExecute {
            statement: statement()?,
        },
        // Field list, create/drop db, refresh, shutdown, statistics, process info and
        // kill, debug, time, delayed insert, binlog and replication commands.
        0x04..=0x0d | 0x0f | 0x10 | 0x12..=0x15 | 0x1d | 0x1e => Command::Other { code },
        _ => return Err(InvalidReason::UnknownCommand),
    })
}

/// The first packet of an answer to a command, from its payload.
pub fn parse_response(payload: &[u8]) -> Result<Response<'_>, InvalidReason> {
    let bad = InvalidReason::Malformed;
    match payload.first() {
        Some(&OK) => parse_ok(payload).map(Response::Ok),
        Some(&ERR) => parse_err(payload).map(Response::Err),
        Some(&EOF) if payload.len() < EOF_MAX_LEN => Ok(Response::Eof {
            status: le_u16(payload, 3).unwrap_or(0),
        }),
        Some(&LOCAL_INFILE) => Ok(Response::LocalInfile),
        Some(_) => {
            let (columns, size) = lenenc_int(payload).ok_or(bad)?;
            // MariaDB adds a byte saying whether column definitions follow.
            let metadata = match payload.get(size..) {
                Some([]) => true,
                Some([flag]) => *flag != 0,
                _ => return Err(bad),
            };
            if columns == 0 {
                return Err(bad);
            }
            Ok(Response::ResultSet { columns, metadata })
        }
        None => Err(bad),
    }
}

/// An OK packet (header 0x00, or 0xfe when it ends a result set under DEPRECATE_EOF).
fn parse_ok(payload: &[u8]) -> Result<OkPacket, InvalidReason> {
    let bad = InvalidReason::Malformed;
    let rest = payload.get(1..).ok_or(bad)?;
    let (affected_rows, size) = lenenc_int(rest).ok_or(bad)?;
    let rest = rest.get(size..).ok_or(bad)?;
    let (_last_insert_id, size) = lenenc_int(rest).ok_or(bad)?;
    let status = le_u16(rest, size).ok_or(bad)?;
    Ok(OkPacket {
        affected_rows,
        status,
    })
}

fn parse_err(payload: &[u8]) -> Result<ErrPacket<'_>, InvalidReason> {
    let code = le_u16(payload, 1).ok_or(InvalidReason::Malformed)?;
    let rest = payload.get(3..).unwrap_or_default();
    let (sql_state, message) = match rest {
        [b'#', tail @ ..] if tail.len() >= 5 => (Some(&tail[..5]), &tail[5..]),
        _ => (None, rest),
    };
    Ok(ErrPacket {
        code,
        sql_state,
        message,
    })
}

/// The answer to COM_STMT_PREPARE: 0x00, statement id, columns, parameters, a filler
/// byte and (MySQL 5.0+) a warning count.
pub fn parse_prepare_ok(payload: &[u8]) -> Result<PrepareOk, InvalidReason> {
    let bad = InvalidReason::Malformed;
    if payload.first() != Some(&OK) || payload.len() < 9 {
        return Err(bad);
    }
    Ok(PrepareOk {
        statement: le_u32(payload, 1).ok_or(bad)?,
        columns: le_u16(payload, 5).ok_or(bad)?,
        params: le_u16(payload, 7).ok_or(bad)?,
    })
}

/// The status flags of a packet that ends rows: an EOF packet, or under
/// DEPRECATE_EOF an OK packet with header 0xfe. None when the packet is a row.
/// `payload_len` is the whole payload's length (a row of 16 MiB or more may start
/// with 0xfe too).
fn end_of_rows(first: &[u8], payload_len: usize) -> Option<u16> {
    if first.first() != Some(&EOF) || payload_len >= MAX_PACKET_PAYLOAD {
        return None;
    }
    if payload_len < EOF_MAX_LEN {
        return le_u16(first, 3);
    }
    parse_ok(first).ok().map(|ok| ok.status)
}

/// What the framing expects next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// The first packet of an answer (or of the next result set).
    Start,
    /// The first packet of a COM_STMT_PREPARE answer.
    PrepareStart,
    /// Column or parameter definitions, then what follows them.
    Definitions {
        left: u64,
        then: AfterDefinitions,
    },
    /// The EOF packet after definitions (without DEPRECATE_EOF).
    DefinitionsEof {
        then: AfterDefinitions,
    },
    Rows,
    /// One payload of any kind (the answers of rarely used commands, not followed).
    Single,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AfterDefinitions {
    Rows,
    /// The column definitions of a prepared statement, then the end.
    PreparedColumns(u16),
    End,
}

/// How an answer ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome<'a> {
    Ok,
    Err(ErrPacket<'a>),
    Prepared(PrepareOk),
    /// `LOAD DATA LOCAL INFILE`: the client now sends a file; its OK ends the statement.
    LocalInfile,
}

/// Whether an answer goes on after a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step<'a> {
    More,
    Done(Outcome<'a>),
}

/// Follows the packets of one answer to a command, one payload at a time. An error
/// packet anywhere ends the answer; otherwise a result set ends at its end-of-rows packet
/// unless that says more results follow.
#[derive(Debug, Clone)]
pub struct ResponseFraming {
    expect: Expect,
    deprecate_eof: bool,
    /// The statement a COM_STMT_PREPARE answer announced, given back at its end.
    prepared: Option<PrepareOk>,
}

impl ResponseFraming {
    /// For the answer to COM_STMT_PREPARE when `prepare`, else to any other command.
    /// `deprecate_eof`: both sides announced CLIENT_DEPRECATE_EOF.
    pub fn new(prepare: bool, deprecate_eof: bool) -> Self {
        ResponseFraming {
            expect: if prepare {
                Expect::PrepareStart
            } else {
                Expect::Start
            },
            deprecate_eof,
            prepared: None,
        }
    }

    /// For the answer to `command`.
    pub fn for_command(command: &Command<'_>, deprecate_eof: bool) -> Self {
        let mut framing = ResponseFraming::new(
            matches!(command, Command::StmtPrepare { .. }),
            deprecate_eof,
        );
        framing.expect = match command {
            Command::StmtFetch { .. } => Expect::Rows,
            Command::ChangeUser | Command::Other { .. } => Expect::Single,
            _ => framing.expect,
        };
        framing
    }

    /// Takes the next payload of the answer: its first packet's payload, and its length
    /// over all packets.
    pub fn step<'a>(
        &mut self,
        first: &'a [u8],
        payload_len: usize,
    ) -> Result<Step<'a>, InvalidReason> {
        if first.first() == Some(&ERR) && payload_len < MAX_PACKET_PAYLOAD {
            return Ok(Step::Done(Outcome::Err(parse_err(first)?)));
        }
        match self.expect {
            Expect::Start => match parse_response(first)? {
                Response::Ok(ok) => Ok(self.after_end(ok.status)),
                Response::Err(err) => Ok(Step::Done(Outcome::Err(err))),
                Response::Eof { .. } => Err(InvalidReason::Malformed),
                Response::LocalInfile => Ok(Step::Done(Outcome::LocalInfile)),
                Response::ResultSet {
                    metadata: false, ..
                } => Ok(self.definitions_done(AfterDefinitions::Rows)),
                Response::ResultSet { columns, .. } => {
                    self.expect = Expect::Definitions {
                        left: columns,
                        then: AfterDefinitions::Rows,
                    };
                    Ok(Step::More)
                }
            },
            Expect::PrepareStart => {
                let prepared = parse_prepare_ok(first)?;
                let columns = prepared.columns;
                self.expect = match (prepared.params, columns) {
                    (0, 0) => return Ok(Step::Done(Outcome::Prepared(prepared))),
                    (0, _) => Expect::Definitions {
                        left: u64::from(columns),
                        then: AfterDefinitions::End,
                    },
                    (params, _) => Expect::Definitions {
                        left: u64::from(params),
                        then: AfterDefinitions::PreparedColumns(columns),
                    },
                };
                self.prepared = Some(prepared);
                Ok(Step::More)
            }
            Expect::Definitions { left, then } => match left.saturating_sub(1) {
                0 => Ok(self.definitions_done(then)),
                left => {
                    self.expect = Expect::Definitions { left, then };
                    Ok(Step::More)
                }
            },
            Expect::DefinitionsEof { then } => {
                let flags = end_of_rows(first, payload_len).ok_or(InvalidReason::Malformed)?;
                if then == AfterDefinitions::Rows && flags & status::CURSOR_EXISTS != 0 {
                    return Ok(Step::Done(Outcome::Ok));
                }
                Ok(self.after_definitions(then))
            }
            Expect::Rows => match end_of_rows(first, payload_len) {
                Some(flags) => Ok(self.after_end(flags)),
                None => Ok(Step::More),
            },
            Expect::Single => Ok(Step::Done(Outcome::Ok)),
        }
    }

    /// The last definition was read: an EOF packet follows unless DEPRECATE_EOF.
    fn definitions_done<'a>(&mut self, then: AfterDefinitions) -> Step<'a> {
        if self.deprecate_eof {
            self.after_definitions(then)
        } else {
            self.expect = Expect::DefinitionsEof { then };
            Step::More
        }
    }

    fn after_definitions<'a>(&mut self, then: AfterDefinitions) -> Step<'a> {
        match then {
            AfterDefinitions::Rows => {
                self.expect = Expect::Rows;
                Step::More
            }
            AfterDefinitions::PreparedColumns(columns) if columns > 0 => {
                self.expect = Expect::Definitions {
                    left: u64::from(columns),
                    then: AfterDefinitions::End,
                };
                Step::More
            }
            AfterDefinitions::PreparedColumns(_) | AfterDefinitions::End => {
                Step::Done(self.prepared.map_or(Outcome::Ok, Outcome::Prepared))
            }
        }
    }

    /// After an OK or end-of-rows packet: another result set, or the end.
    fn after_end<'a>(&mut self, flags: u16) -> Step<'a> {
        if flags & status::MORE_RESULTS_EXIST != 0 {
            self.expect = Expect::Start;
            Step::More
        } else {
            Step::Done(Outcome::Ok)
        }
    }
}
