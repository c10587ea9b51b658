//! One PostgreSQL connection, both directions, to one record per statement run.
//!
//! A simple Query is one statement (its text may hold several) answered up to
//! ReadyForQuery. In the extended protocol each Execute is one statement,
//! answered by CommandComplete (or an error, or its row limit); its text is the
//! Parse of the statement its portal was bound to, kept per connection, so a
//! statement prepared once and run many times carries its text every time.
//! After an error the server skips to Sync: the Executes it skipped ran not,
//! and give no span. A Parse that fails before any Execute is one failed statement.

use std::collections::VecDeque;

use rustc_hash::FxHashMap;

use super::parse::{decode_backend, decode_frontend, parse_encryption_answer, parse_startup};
use super::{
    Backend, Fields, Frontend, Parse, Startup, BACKEND_TAGS, FRONTEND_TAGS, HEADER_LEN, MAX_MESSAGE,
};
use crate::model::{DataChunk, Direction, ShortString, Tid, TraceContext};
use crate::protocols::sql::stream::{Frame, Framed, Reader, Trouble};
use crate::protocols::sql::{statement_text, Dialect, Statement};
use crate::protocols::{Anomaly, Hooks, Stitch, Unanswered};

/// Prepared statements and portals remembered per connection; beyond this, new ones
/// are not remembered and their Executes are counted undecodable.
pub const MAX_STATEMENTS: usize = 1024;
/// Statements sent and not yet answered (pipelining); beyond this the oldest is dropped.
const MAX_PENDING: usize = 1024;
/// The last message of every answer: ReadyForQuery, whatever the transaction status.
const READY_FOR_QUERY_LEN: usize = HEADER_LEN + 1;

const SYSTEM: &str = "postgresql";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Before the startup packet (or after an SSLRequest answered `N`).
    Startup,
    /// An SSLRequest or GSSENCRequest waits for its one-byte answer.
    EncryptionAnswer,
    /// The connection went on in TLS: these bytes are ciphertext. The plaintext, seen
    /// through the TLS library, is a connection of its own.
    Encrypted,
    /// Messages proper (authentication, then queries).
    Messages,
    /// A cancel request: nothing to trace.
    Done,
}

/// What a client message waits for from the server.
#[derive(Debug)]
enum Waiting {
    /// A simple Query: answered up to ReadyForQuery.
    Query(Pending),
    /// An Execute: answered by CommandComplete, EmptyQueryResponse, PortalSuspended or
    /// an error.
    Execute(Pending),
    /// A Sync (or a function call): answered by ReadyForQuery. Carries the start of the
    /// batch it ends, for a Parse that fails before any Execute.
    Sync(Option<BatchStart>),
}

#[derive(Debug)]
struct Pending {
    tid: Tid,
    start_mono_ns: u64,
    context: TraceContext,
    text: Option<ShortString>,
    error_code: Option<ShortString>,
}

/// The first Parse of an extended-protocol batch not yet ended by Sync.
#[derive(Debug, Clone)]
struct BatchStart {
    tid: Tid,
    start_mono_ns: u64,
    text: ShortString,
}

pub struct Stitcher {
    request_dir: Direction,
    phase: Phase,
    requests: Reader,
    responses: Reader,
    /// `database` from the startup packet (`user` when absent, as the server does).
    namespace: Option<ShortString>,
    /// Named statements' text; the unnamed statement under the empty name.
    statements: FxHashMap<Box<[u8]>, ShortString>,
    /// Portals' statement text (the unnamed portal under the empty name).
    portals: FxHashMap<Box<[u8]>, Option<ShortString>>,
    waiting: VecDeque<Waiting>,
    /// A Parse of the current batch, until an Execute or Sync.
    batch: Option<BatchStart>,
    /// When the server side last moved bytes.
    last_response_ns: u64,
}

impl Stitcher {
    pub fn new(request_dir: Direction) -> Self {
        Stitcher {
            request_dir,
            phase: Phase::Startup,
            requests: Reader::default(),
            responses: Reader::default(),
            namespace: None,
            statements: FxHashMap::default(),
            portals: FxHashMap::default(),
            waiting: VecDeque::new(),
            batch: None,
            last_response_ns: 0,
        }
    }

    fn feed_requests(&mut self, chunk: &DataChunk<'_>, hooks: &mut impl Hooks<Statement>) {
        if self.responses.is_lost() {
            self.answers_ended(hooks);
        }
        let mut data = chunk.data;
        while !data.is_empty() && self.phase == Phase::Startup {
            match parse_startup(data) {
                Parse::Parsed(m) => {
                    data = &data[m.len..];
                    self.phase = match m.body {
                        Startup::Start { params, .. } => {
                            let database = params.get("database").or_else(|| params.get("user"));
                            self.namespace = database.map(statement_text);
                            Phase::Messages
                        }
                        Startup::SslRequest | Startup::GssEncRequest => Phase::EncryptionAnswer,
                        Startup::CancelRequest => Phase::Done,
                    };
                }
                Parse::NeedMore => return,
                // A connection that began before tracing: messages from the first byte.
                Parse::Invalid(_) if matches!(frame_frontend(data), Frame::Len(_)) => {
                    self.phase = Phase::Messages;
                }
                Parse::Invalid(reason) => {
                    hooks.anomaly(Anomaly::Invalid(reason.as_str()));
                    self.phase = Phase::Done;
                    return;
                }
            }
        }
        if self.phase != Phase::Messages {
            return;
        }
        let mut reader = std::mem::take(&mut self.requests);
        let outcome = reader.feed(data, chunk.uncaptured(), frame_frontend, |m| {
            self.on_request(m, chunk, hooks);
        });
        self.requests = reader;
        trouble(outcome, hooks);
    }

    fn on_request(
        &mut self,
        m: Framed<'_>,
        chunk: &DataChunk<'_>,
        hooks: &mut impl Hooks<Statement>,
    ) {
        let (Some(&tag), Some(body)) = (m.bytes.first(), m.bytes.get(HEADER_LEN..)) else {
            return;
        };
        let message = match decode_frontend(tag, body, m.whole) {
            Ok(message) => message,
            Err(reason) => {
                hooks.anomaly(Anomaly::Invalid(reason.as_str()));
                return;
            }
        };
        let start = chunk.first_byte_ns();
        match message {
            Frontend::Query { text } => {
                let text = Some(statement_text(text));
                let pending = self.pending(chunk.tid, start, text, hooks);
                self.wait(Waiting::Query(pending), hooks);
            }
            Frontend::Parse { statement, query } => {
                let text = statement_text(query);
                insert_bounded(&mut self.statements, statement, text.clone());
                if self.batch.is_none() {
                    self.batch = Some(BatchStart {
                        tid: chunk.tid,
                        start_mono_ns: start,
                        text,
                    });
                }
            }
            Frontend::Bind { portal, statement } => {
                let text = self.statements.get(statement).cloned();
                insert_bounded(&mut self.portals, portal, text);
            }
            Frontend::Execute { portal, .. } => {
                // An Execute of a portal bound before tracing began has no known text.
                let text = self.portals.get(portal).cloned().flatten();
                self.batch = None;
                let pending = self.pending(chunk.tid, start, text, hooks);
                self.wait(Waiting::Execute(pending), hooks);
            }
            Frontend::Close { target, name } => {
                match target {
                    super::Target::Statement => self.statements.remove(name),
                    super::Target::Portal => self.portals.remove(name).flatten(),
                };
            }
            Frontend::Sync | Frontend::FunctionCall => {
                let batch = self.batch.take();
                self.wait(Waiting::Sync(batch), hooks);
            }
            Frontend::Describe { .. }
            | Frontend::Flush
            | Frontend::Terminate
            | Frontend::CopyData
            | Frontend::CopyDone
            | Frontend::CopyFail
            | Frontend::AuthResponse => {}
        }
    }

    fn pending(
        &mut self,
        tid: Tid,
        start_mono_ns: u64,
        text: Option<ShortString>,
        hooks: &mut impl Hooks<Statement>,
    ) -> Pending {
        Pending {
            tid,
            start_mono_ns,
            context: hooks.request_started(tid, None),
            text,
            error_code: None,
        }
    }

    fn wait(&mut self, waiting: Waiting, hooks: &mut impl Hooks<Statement>) {
        if self.waiting.len() >= MAX_PENDING {
            if let Some(dropped) = self.waiting.pop_front() {
                self.abandon(dropped, Unanswered::Dropped, hooks);
            }
        }
        self.waiting.push_back(waiting);
    }

    fn abandon(&mut self, waiting: Waiting, why: Unanswered, hooks: &mut impl Hooks<Statement>) {
        if let Waiting::Query(p) | Waiting::Execute(p) = waiting {
            hooks.abandoned(p.context);
            hooks.anomaly(Anomaly::Unanswered(why));
        }
    }

    /// The server's side went out of step inside answers (rows beyond the capture) and
    /// the client speaks again: what it waited for ended with the last bytes the server
    /// sent, with the errors seen so far.
    fn answers_ended(&mut self, hooks: &mut impl Hooks<Statement>) {
        self.responses.reset();
        while let Some(waiting) = self.waiting.pop_front() {
            if let Waiting::Query(p) | Waiting::Execute(p) = waiting {
                finish(p, self.last_response_ns, self.namespace.clone(), hooks);
            }
        }
    }

    fn feed_responses(&mut self, chunk: &DataChunk<'_>, hooks: &mut impl Hooks<Statement>) {
        self.last_response_ns = chunk.end_mono_ns;
        match self.phase {
            Phase::EncryptionAnswer => {
                self.phase = match parse_encryption_answer(chunk.data) {
                    Parse::Parsed(true) => Phase::Encrypted,
                    Parse::Parsed(false) => Phase::Startup,
                    Parse::NeedMore => Phase::EncryptionAnswer,
                    Parse::Invalid(reason) => {
                        hooks.anomaly(Anomaly::Invalid(reason.as_str()));
                        Phase::Done
                    }
                };
                return;
            }
            Phase::Messages => {}
            // Answers to a connection that began before tracing.
            Phase::Startup if matches!(frame_backend(chunk.data), Frame::Len(_)) => {
                self.phase = Phase::Messages;
            }
            Phase::Startup | Phase::Encrypted | Phase::Done => return,
        }
        if self.responses.is_lost() && ends_with_ready_for_query(chunk.data) {
            // Out of step inside a long answer: its end is still recognisable.
            self.responses.reset();
            self.on_ready_for_query(chunk, hooks);
            return;
        }
        let mut reader = std::mem::take(&mut self.responses);
        let outcome = reader.feed(chunk.data, chunk.uncaptured(), frame_backend, |m| {
            self.on_response(m, chunk, hooks);
        });
        self.responses = reader;
        trouble(outcome, hooks);
    }

    fn on_response(
        &mut self,
        m: Framed<'_>,
        chunk: &DataChunk<'_>,
        hooks: &mut impl Hooks<Statement>,
    ) {
        let Some(&tag) = m.bytes.first() else { return };
        let body = m.bytes.get(HEADER_LEN..).unwrap_or_default();
        if !m.whole {
            // An error's code comes first, so a cut one still tells it; only rows and
            // copy data outgrow a capture otherwise, and neither ends anything.
            if tag == b'E' {
                let code = Fields { raw: body }.code().map(statement_text);
                self.on_error(code, chunk, hooks);
            }
            return;
        }
        let message = match decode_backend(tag, body) {
            Ok(message) => message,
            Err(reason) => {
                hooks.anomaly(Anomaly::Invalid(reason.as_str()));
                return;
            }
        };
        match message {
            Backend::ErrorResponse(fields) => {
                let code = fields.code().map(statement_text);
                self.on_error(code, chunk, hooks);
            }
            Backend::CommandComplete { .. }
            | Backend::EmptyQueryResponse
            | Backend::PortalSuspended => {
                if matches!(self.waiting.front(), Some(Waiting::Execute(_))) {
                    if let Some(Waiting::Execute(p)) = self.waiting.pop_front() {
                        finish(p, chunk.end_mono_ns, self.namespace.clone(), hooks);
                    }
                }
            }
            Backend::ReadyForQuery { .. } => self.on_ready_for_query(chunk, hooks),
            _ => {}
        }
    }

    fn on_error(
        &mut self,
        code: Option<ShortString>,
        chunk: &DataChunk<'_>,
        hooks: &mut impl Hooks<Statement>,
    ) {
        match self.waiting.front_mut() {
            Some(Waiting::Query(p)) => {
                p.error_code.get_or_insert(code.unwrap_or_default());
            }
            Some(Waiting::Execute(_)) => {
                if let Some(Waiting::Execute(mut p)) = self.waiting.pop_front() {
                    p.error_code = Some(code.unwrap_or_default());
                    finish(p, chunk.end_mono_ns, self.namespace.clone(), hooks);
                }
            }
            Some(Waiting::Sync(batch)) => {
                // A Parse or Bind failed before any Execute: the statement failed.
                if let Some(batch) = batch.take() {
                    let p = Pending {
                        tid: batch.tid,
                        start_mono_ns: batch.start_mono_ns,
                        context: hooks.request_started(batch.tid, None),
                        text: Some(batch.text),
                        error_code: Some(code.unwrap_or_default()),
                    };
                    finish(p, chunk.end_mono_ns, self.namespace.clone(), hooks);
                }
            }
            // During authentication, or a fatal error with nothing asked.
            None => {}
        }
    }

    fn on_ready_for_query(&mut self, chunk: &DataChunk<'_>, hooks: &mut impl Hooks<Statement>) {
        // Executes the server skipped after an error, up to the Sync this answers.
        while let Some(waiting) = self.waiting.pop_front() {
            match waiting {
                // Skipped after an error, it never ran; without an error, its answer
                // was in bytes already counted as lost.
                Waiting::Execute(p) => hooks.abandoned(p.context),
                Waiting::Query(p) => {
                    finish(p, chunk.end_mono_ns, self.namespace.clone(), hooks);
                    break;
                }
                Waiting::Sync(_) => break,
            }
        }
    }
}

fn finish(
    p: Pending,
    end_mono_ns: u64,
    namespace: Option<ShortString>,
    hooks: &mut impl Hooks<Statement>,
) {
    hooks.exchange(Statement {
        system: SYSTEM,
        dialect: Dialect::Postgres,
        tid: p.tid,
        start_mono_ns: p.start_mono_ns,
        end_mono_ns,
        context: p.context,
        text: p.text,
        namespace,
        error_code: p.error_code,
    });
}

/// Keeps `value` under `name` in a per-connection table, within its bound.
fn insert_bounded<V>(table: &mut FxHashMap<Box<[u8]>, V>, name: &[u8], value: V) {
    if table.len() < MAX_STATEMENTS || table.contains_key(name) {
        table.insert(name.into(), value);
    }
}

fn trouble(outcome: Result<(), Trouble>, hooks: &mut impl Hooks<Statement>) {
    match outcome {
        Ok(()) => {}
        Err(Trouble::Invalid(reason)) => hooks.anomaly(Anomaly::Invalid(reason)),
        Err(Trouble::Lost(bytes)) => hooks.anomaly(Anomaly::Lost { bytes }),
    }
}

fn frame(buf: &[u8], tags: &[u8]) -> Frame {
    match super::parse_header(buf, tags) {
        Parse::Parsed(header) if header.len <= MAX_MESSAGE + 1 => Frame::Len(header.len),
        Parse::Parsed(_) | Parse::NeedMore => Frame::NeedMore,
        Parse::Invalid(reason) => Frame::Invalid(reason.as_str()),
    }
}

fn frame_frontend(buf: &[u8]) -> Frame {
    frame(buf, FRONTEND_TAGS)
}

fn frame_backend(buf: &[u8]) -> Frame {
    frame(buf, BACKEND_TAGS)
}

/// Whether a server chunk ends with ReadyForQuery: the end of every answer.
fn ends_with_ready_for_query(data: &[u8]) -> bool {
    let Some(tail) = data
        .len()
        .checked_sub(READY_FOR_QUERY_LEN)
        .and_then(|at| data.get(at..))
    else {
        return false;
    };
    matches!(tail, [b'Z', 0, 0, 0, 5, b'I' | b'T' | b'E'])
}

impl Stitch for Stitcher {
    type Record = Statement;

    fn feed(&mut self, chunk: &DataChunk<'_>, hooks: &mut impl Hooks<Statement>) {
        if chunk.direction == self.request_dir {
            self.feed_requests(chunk, hooks);
        } else {
            self.feed_responses(chunk, hooks);
        }
    }

    fn close(&mut self, hooks: &mut impl Hooks<Statement>) {
        while let Some(waiting) = self.waiting.pop_front() {
            self.abandon(waiting, Unanswered::Closed, hooks);
        }
    }
}
