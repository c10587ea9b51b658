//! One MySQL / MariaDB connection, both directions, to one record per statement.
//!
//! COM_QUERY is one statement (its text may hold several). COM_STMT_PREPARE is
//! remembered (statement id to text, per connection) and gives a span only when
//! it fails; each COM_STMT_EXECUTE (or MariaDB's bulk execute) is one statement
//! carrying the prepared text. Answers are framed by `ResponseFraming`, in the
//! order the commands were sent (MariaDB Connector/J pipelines them).

use std::collections::VecDeque;

use rustc_hash::FxHashMap;

use super::parse::{parse_command, parse_greeting, parse_login, payload_len};
use super::{
    Capabilities, Command, Login, Outcome, ResponseFraming, Step, HEADER_LEN, MAX_PACKET_PAYLOAD,
};
use crate::model::{DataChunk, Direction, ShortString, Tid, TraceContext};
use crate::protocols::sql::stream::{Frame, Framed, Reader, Trouble};
use crate::protocols::sql::{statement_text, Dialect, Statement};
use crate::protocols::{Anomaly, Hooks, Stitch, Unanswered};

/// Prepared statements remembered per connection; beyond this, new ones are not
/// remembered and their executions are counted undecodable.
pub const MAX_STATEMENTS: usize = 1024;
/// Commands sent and not yet answered; beyond this the oldest is dropped.
const MAX_PENDING: usize = 1024;
/// MariaDB: a COM_STMT_EXECUTE of this id runs the statement prepared just before.
const LAST_PREPARED: u32 = u32::MAX;
/// The greeting's first payload byte.
const PROTOCOL_VERSION_10: u8 = 10;

const SYSTEM: &str = "mysql";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Waiting for the server's greeting.
    Greeting,
    /// Waiting for the client's login.
    Login,
    /// Authentication: ends with the server's OK (or ERR).
    Auth,
    /// The client asked for TLS: these bytes are ciphertext. The plaintext, seen through
    /// the TLS library, is a connection of its own.
    Encrypted,
    Commands,
}

/// What a command waits for.
enum Kind {
    /// A statement run: one span.
    Statement,
    /// COM_STMT_PREPARE of this text: remembered when it succeeds, a span when it fails.
    Prepare(ShortString),
    /// COM_INIT_DB: the new default schema, once the server agrees.
    InitDb(ShortString),
    /// Anything else (ping, fetch, reset...): no span.
    Other,
}

struct Pending {
    kind: Kind,
    framing: ResponseFraming,
    tid: Tid,
    start_mono_ns: u64,
    context: Option<TraceContext>,
    text: Option<ShortString>,
}

pub struct Stitcher {
    request_dir: Direction,
    phase: Phase,
    requests: Reader,
    responses: Reader,
    server_capabilities: Capabilities,
    /// Both sides announced CLIENT_DEPRECATE_EOF.
    deprecate_eof: bool,
    namespace: Option<ShortString>,
    statements: FxHashMap<u32, ShortString>,
    /// The text of the statement prepared last, for MariaDB's "the one just prepared".
    last_prepared: Option<ShortString>,
    pending: VecDeque<Pending>,
    /// A packet of 16 MiB - 1 bytes continues in the next one, in each direction.
    request_continues: bool,
    response_continues: bool,
    /// When the server side last moved bytes.
    last_response_ns: u64,
}

impl Stitcher {
    pub fn new(request_dir: Direction) -> Self {
        Stitcher {
            request_dir,
            phase: Phase::Greeting,
            requests: Reader::default(),
            responses: Reader::default(),
            server_capabilities: Capabilities::default(),
            deprecate_eof: false,
            namespace: None,
            statements: FxHashMap::default(),
            last_prepared: None,
            pending: VecDeque::new(),
            request_continues: false,
            response_continues: false,
            last_response_ns: 0,
        }
    }

    fn on_request(
        &mut self,
        m: Framed<'_>,
        chunk: &DataChunk<'_>,
        hooks: &mut impl Hooks<Statement>,
    ) {
        let continuation = std::mem::replace(&mut self.request_continues, full_packet(m));
        let (Some(&seq), Some(payload)) = (m.bytes.get(3), m.bytes.get(HEADER_LEN..)) else {
            return;
        };
        if continuation {
            return;
        }
        match self.phase {
            Phase::Login => {
                match parse_login(payload) {
                    Ok(Login::Response {
                        capabilities,
                        database,
                        ..
                    }) => {
                        self.deprecate_eof = capabilities.has(Capabilities::DEPRECATE_EOF)
                            && self.server_capabilities.has(Capabilities::DEPRECATE_EOF);
                        self.namespace = database.filter(|d| !d.is_empty()).map(statement_text);
                        self.phase = Phase::Auth;
                    }
                    Ok(Login::SslRequest { .. }) => self.phase = Phase::Encrypted,
                    Err(reason) => {
                        hooks.anomaly(Anomaly::Invalid(reason.as_str()));
                        self.phase = Phase::Auth;
                    }
                }
                return;
            }
            // Authentication data, or a connection seen from its middle.
            Phase::Auth | Phase::Greeting if seq != 0 => return,
            Phase::Auth | Phase::Greeting | Phase::Commands => self.phase = Phase::Commands,
            Phase::Encrypted => return,
        }
        if seq != 0 {
            return;
        }
        let command = match parse_command(payload) {
            Ok(command) => command,
            Err(reason) => {
                hooks.anomaly(Anomaly::Invalid(reason.as_str()));
                return;
            }
        };
        if !command.expects_response() {
            if let Command::StmtClose { statement } = command {
                self.statements.remove(&statement);
            }
            return;
        }
        let (kind, text) = match command {
            Command::Query { text } => (Kind::Statement, Some(statement_text(text))),
            Command::StmtPrepare { text } => {
                // An execute of "the one just prepared" may follow before the answer.
                let text = statement_text(text);
                self.last_prepared = Some(text.clone());
                (Kind::Prepare(text), None)
            }
            Command::StmtExecute { statement } | Command::StmtBulkExecute { statement } => {
                let text = match statement {
                    LAST_PREPARED => self.last_prepared.clone(),
                    id => self.statements.get(&id).cloned(),
                };
                (Kind::Statement, text)
            }
            Command::InitDb { schema } => (Kind::InitDb(statement_text(schema)), None),
            _ => (Kind::Other, None),
        };
        let tid = chunk.tid;
        let context = matches!(kind, Kind::Statement).then(|| hooks.request_started(tid, None));
        if self.pending.len() >= MAX_PENDING {
            if let Some(dropped) = self.pending.pop_front() {
                abandon(dropped, Unanswered::Dropped, hooks);
            }
        }
        self.pending.push_back(Pending {
            framing: ResponseFraming::for_command(&command, self.deprecate_eof),
            kind,
            tid,
            start_mono_ns: chunk.first_byte_ns(),
            context,
            text,
        });
    }

    fn on_response(
        &mut self,
        m: Framed<'_>,
        chunk: &DataChunk<'_>,
        hooks: &mut impl Hooks<Statement>,
    ) {
        let continuation = std::mem::replace(&mut self.response_continues, full_packet(m));
        let Some(payload) = m.bytes.get(HEADER_LEN..) else {
            return;
        };
        if continuation {
            return;
        }
        let total = m.len - HEADER_LEN;
        match self.phase {
            Phase::Greeting => {
                match payload.first() {
                    Some(&PROTOCOL_VERSION_10) => match parse_greeting(payload) {
                        Ok(greeting) => {
                            self.server_capabilities = greeting.capabilities;
                            self.phase = Phase::Login;
                        }
                        Err(reason) => hooks.anomaly(Anomaly::Invalid(reason.as_str())),
                    },
                    // Answers on a connection seen from its middle: their commands
                    // were not seen.
                    _ => {
                        self.phase = Phase::Commands;
                        hooks.anomaly(Anomaly::OrphanResponse);
                    }
                }
                return;
            }
            Phase::Auth => {
                // OK or ERR ends authentication; anything else is one of its steps.
                if matches!(payload.first(), Some(0x00 | 0xff)) {
                    self.phase = Phase::Commands;
                }
                return;
            }
            Phase::Login | Phase::Encrypted => return,
            Phase::Commands => {}
        }
        let Some(front) = self.pending.front_mut() else {
            hooks.anomaly(Anomaly::OrphanResponse);
            return;
        };
        let outcome = match front.framing.step(payload, total) {
            Ok(Step::More) => return,
            Ok(Step::Done(outcome)) => outcome,
            Err(reason) => {
                hooks.anomaly(Anomaly::Invalid(reason.as_str()));
                if let Some(p) = self.pending.pop_front() {
                    abandon(p, Unanswered::Dropped, hooks);
                }
                return;
            }
        };
        let Some(p) = self.pending.pop_front() else {
            return;
        };
        let error_code = match outcome {
            Outcome::Err(err) => Some(ShortString::from(err.code.to_string())),
            _ => None,
        };
        let end_mono_ns = chunk.end_mono_ns;
        match p.kind {
            Kind::Statement => self.finish(p, error_code, end_mono_ns, hooks),
            Kind::Prepare(ref text) => match outcome {
                Outcome::Prepared(prepared) => {
                    if self.statements.len() < MAX_STATEMENTS {
                        self.statements.insert(prepared.statement, text.clone());
                    }
                }
                // A statement that failed to prepare failed for the application.
                _ => {
                    let p = Pending {
                        text: Some(text.clone()),
                        context: Some(hooks.request_started(p.tid, None)),
                        ..p
                    };
                    self.finish(p, error_code, end_mono_ns, hooks);
                }
            },
            Kind::InitDb(ref schema) => {
                if error_code.is_none() {
                    self.namespace = Some(schema.clone());
                }
            }
            Kind::Other => {}
        }
    }

    fn finish(
        &self,
        p: Pending,
        error_code: Option<ShortString>,
        end_mono_ns: u64,
        hooks: &mut impl Hooks<Statement>,
    ) {
        let Some(context) = p.context else { return };
        hooks.exchange(Statement {
            system: SYSTEM,
            dialect: Dialect::MySql,
            tid: p.tid,
            start_mono_ns: p.start_mono_ns,
            end_mono_ns,
            context,
            text: p.text,
            namespace: self.namespace.clone(),
            error_code,
        });
    }
}

fn abandon(p: Pending, why: Unanswered, hooks: &mut impl Hooks<Statement>) {
    if let Some(context) = p.context {
        hooks.abandoned(context);
        hooks.anomaly(Anomaly::Unanswered(why));
    }
}

/// A packet of the maximum length: the payload continues in the next packet.
fn full_packet(m: Framed<'_>) -> bool {
    m.len == HEADER_LEN + MAX_PACKET_PAYLOAD
}

/// Packets are framed by their length alone; what they hold is checked when read.
fn frame(buf: &[u8]) -> Frame {
    match payload_len(buf) {
        Some(len) if buf.len() >= HEADER_LEN => Frame::Len(HEADER_LEN + len),
        _ => Frame::NeedMore,
    }
}

fn trouble(outcome: Result<(), Trouble>, hooks: &mut impl Hooks<Statement>) {
    match outcome {
        Ok(()) => {}
        Err(Trouble::Invalid(reason)) => hooks.anomaly(Anomaly::Invalid(reason)),
        Err(Trouble::Lost(bytes)) => hooks.anomaly(Anomaly::Lost { bytes }),
    }
}

impl Stitch for Stitcher {
    type Record = Statement;

    fn feed(&mut self, chunk: &DataChunk<'_>, hooks: &mut impl Hooks<Statement>) {
        let requests = chunk.direction == self.request_dir;
        // Out of step in the middle of an answer (rows beyond the capture): a new
        // command means it ended with the last bytes the server sent. Errors come
        // alone, so one that long succeeded.
        if requests && self.responses.is_lost() {
            self.responses.reset();
            self.response_continues = false;
            if let Some(p) = self.pending.pop_front() {
                match p.kind {
                    Kind::Statement => self.finish(p, None, self.last_response_ns, hooks),
                    _ => abandon(p, Unanswered::Dropped, hooks),
                }
            }
        }
        if !requests {
            self.last_response_ns = chunk.end_mono_ns;
        }
        let mut reader = std::mem::take(if requests {
            &mut self.requests
        } else {
            &mut self.responses
        });
        let outcome = reader.feed(chunk.data, chunk.uncaptured(), frame, |m| {
            if requests {
                self.on_request(m, chunk, hooks);
            } else {
                self.on_response(m, chunk, hooks);
            }
        });
        if requests {
            self.requests = reader;
        } else {
            self.responses = reader;
        }
        trouble(outcome, hooks);
    }

    fn close(&mut self, hooks: &mut impl Hooks<Statement>) {
        for p in self.pending.drain(..) {
            abandon(p, Unanswered::Closed, hooks);
        }
    }
}
