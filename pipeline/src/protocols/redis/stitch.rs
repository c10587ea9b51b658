//! One connection's RESP traffic, both directions, to one record per command.
//!
//! Redis answers commands in the order it reads them, so replies pair with commands in order:
//! a pipeline gives one record per command. What is not a reply is set aside: RESP3 pushes
//! (published messages, client-side caching invalidations), and on a RESP2 connection that
//! subscribed, the arrays that carry messages. A (un)subscription is confirmed once per
//! channel; the first confirmation answers the command, the others are set aside too.
//!
//! Each direction is walked value by value without keeping the values: only their first
//! `MAX_KEPT` bytes are kept, enough for a command's name and first argument or a reply's
//! error code, so that large values and bytes the probe did not copy cost nothing.

use std::collections::VecDeque;

use super::{
    parse_command_start, parse_reply_start, CommandStart, Kind, Parse, PushKind, ReplyStart,
    ValueWalker, Walk,
};
use crate::model::{
    DataChunk, Direction, Operation, RedisOperation, ShortString, Tid, TraceContext,
};
use crate::protocols::{Anomaly, Exchange, Hooks, Record, Stitch, Unanswered};

/// Bytes of each value kept to read its start: a command's name and first argument (a key),
/// a reply's error code or push kind.
const MAX_KEPT: usize = 1024;
/// Commands awaiting their replies; a deeper pipeline drops the oldest (and skips its reply).
const MAX_PENDING: usize = 1024;
/// Longest first argument shown in the query text; a longer one is shown as `?`.
const MAX_SHOWN_ARG: usize = 128;
/// Commands whose arguments may carry credentials: the query text shows none of them.
const SECRET_COMMANDS: [&str; 4] = ["ACL", "AUTH", "HELLO", "MIGRATE"];
/// Commands confirmed by pushes (RESP3) or arrays (RESP2), one per channel or pattern.
const SUBSCRIPTION_COMMANDS: [&str; 6] = [
    "SUBSCRIBE",
    "PSUBSCRIBE",
    "SSUBSCRIBE",
    "UNSUBSCRIBE",
    "PUNSUBSCRIBE",
    "SUNSUBSCRIBE",
];

/// One command with its reply, or a command that could not be read (cut short past `MAX_KEPT`).
#[derive(Debug, Clone, PartialEq)]
pub struct RedisRecord {
    pub tid: Tid,
    pub start_mono_ns: u64,
    pub end_mono_ns: u64,
    pub context: TraceContext,
    pub operation: Option<RedisOperation>,
}

impl Record for RedisRecord {
    fn into_exchange(self) -> Result<Exchange, (TraceContext, Anomaly)> {
        match self.operation {
            Some(operation) => Ok(Exchange {
                tid: self.tid,
                start_mono_ns: self.start_mono_ns,
                end_mono_ns: self.end_mono_ns,
                context: self.context,
                operation: Operation::Redis(operation),
            }),
            None => Err((self.context, Anomaly::Undecodable)),
        }
    }
}

struct Pending {
    tid: Tid,
    start_mono_ns: u64,
    context: TraceContext,
    /// `None` when the command's start could not be read.
    operation: Option<RedisOperation>,
    /// A (un)subscription, answered by its first confirmation.
    subscription: bool,
}

/// One direction: where the value being walked started, and its first bytes.
struct Side {
    walker: ValueWalker,
    /// The start of a header line the last chunk cut off, given again with the next one.
    tail: Vec<u8>,
    kept: Vec<u8>,
    /// When and by which thread the value being walked began.
    value_start: Option<(u64, Tid)>,
    /// Out of step (invalid bytes, or a capture gap over framing): skip to the next chunk.
    lost: bool,
}

/// A value walked to its end: its first bytes and when it began.
struct Walked<'a> {
    kept: &'a [u8],
    start_mono_ns: u64,
    tid: Tid,
}

impl Side {
    fn new() -> Side {
        Side {
            walker: ValueWalker::new(),
            tail: Vec::new(),
            kept: Vec::new(),
            value_start: None,
            lost: false,
        }
    }

    fn reset(&mut self) {
        *self = Side::new();
    }

    /// Walks the chunk's bytes, calling `done` for every value that ends in them; the anomaly
    /// that put the side out of step, if one did.
    fn feed(&mut self, chunk: &DataChunk<'_>, mut done: impl FnMut(Walked<'_>)) -> Option<Anomaly> {
        if self.lost {
            // A write or read most likely starts a value; if not, the walker says so at once.
            self.reset();
        }
        let joined;
        let buf: &[u8] = if self.tail.is_empty() {
            chunk.data
        } else {
            joined = [std::mem::take(&mut self.tail).as_slice(), chunk.data].concat();
            &joined
        };
        let mut pos = 0;
        while pos < buf.len() {
            let (start_ns, tid) = *self
                .value_start
                .get_or_insert((chunk.first_byte_ns(), chunk.tid));
            let rest = &buf[pos..];
            let (used, ended) = match self.walker.feed(rest) {
                Walk::Done(used) => (used, true),
                Walk::NeedMore(used) => (used, false),
                Walk::Invalid(reason) => {
                    self.reset();
                    self.lost = true;
                    return Some(Anomaly::Invalid(reason.as_str()));
                }
            };
            let room = MAX_KEPT.saturating_sub(self.kept.len());
            self.kept.extend_from_slice(&rest[..used.min(room)]);
            pos += used;
            if !ended {
                self.tail = buf[pos..].to_vec();
                break;
            }
            done(Walked {
                kept: &self.kept,
                start_mono_ns: start_ns,
                tid,
            });
            self.kept.clear();
            self.value_start = None;
        }
        let gap = chunk.uncaptured();
        if gap > 0 && (!self.tail.is_empty() || !self.walker.skip(gap)) {
            self.reset();
            self.lost = true;
            return Some(Anomaly::Lost { bytes: gap });
        }
        None
    }
}

pub struct RedisStitcher {
    request_dir: Direction,
    commands: Side,
    replies: Side,
    pairing: Pairing,
}

/// Commands waiting for their replies, and what the connection's commands changed.
struct Pairing {
    pending: VecDeque<Pending>,
    /// Replies still to come for commands dropped from a full `pending`.
    replies_to_skip: u64,
    /// A side fell out of step: replies are set aside, and commands not followed, until a
    /// command is sent after a reply (the next turn of the conversation).
    resyncing: Option<Resync>,
    /// The database index the connection's last SELECT chose.
    database: Option<ShortString>,
    /// A SUBSCRIBE was sent: on RESP2, arrays of messages may now arrive unasked.
    subscribed: bool,
    /// A reply of a type only RESP3 has was seen: arrays are then always replies.
    resp3: bool,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Resync {
    AwaitingReply,
    AwaitingCommand,
}

impl RedisStitcher {
    pub fn new(request_dir: Direction) -> RedisStitcher {
        RedisStitcher {
            request_dir,
            commands: Side::new(),
            replies: Side::new(),
            pairing: Pairing {
                pending: VecDeque::new(),
                replies_to_skip: 0,
                resyncing: None,
                database: None,
                subscribed: false,
                resp3: false,
            },
        }
    }
}

impl Pairing {
    fn command(&mut self, walked: Walked<'_>, hooks: &mut impl Hooks<RedisRecord>) {
        let start = match parse_command_start(walked.kept) {
            Parse::Parsed(start) => Some(start),
            // Valid RESP, but its start is longer than what was kept.
            Parse::NeedMore => None,
            Parse::Invalid(reason) => {
                hooks.anomaly(Anomaly::Invalid(reason.as_str()));
                return;
            }
        };
        let operation = start.and_then(|start| self.operation(&start));
        let subscription = operation
            .as_ref()
            .is_some_and(|op| SUBSCRIPTION_COMMANDS.contains(&op.command.as_str()));
        self.subscribed |= subscription;
        match self.resyncing {
            Some(Resync::AwaitingReply) => return,
            Some(Resync::AwaitingCommand) => self.resyncing = None,
            None => {}
        }
        let context = hooks.request_started(walked.tid, None);
        if self.pending.len() == MAX_PENDING {
            if let Some(oldest) = self.pending.pop_front() {
                hooks.abandoned(oldest.context);
                hooks.anomaly(Anomaly::Unanswered(Unanswered::Dropped));
                self.replies_to_skip += 1;
            }
        }
        self.pending.push_back(Pending {
            tid: walked.tid,
            start_mono_ns: walked.start_mono_ns,
            context,
            operation,
            subscription,
        });
    }

    /// The command's operation; SELECT changes the database of the commands after it.
    fn operation(&mut self, start: &CommandStart<'_>) -> Option<RedisOperation> {
        let name = std::str::from_utf8(start.name).ok()?;
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_graphic()) {
            return None;
        }
        let command = name.to_ascii_uppercase();
        let database = self.database.clone();
        if command == "SELECT" {
            let index = start
                .first_arg
                .and_then(|arg| std::str::from_utf8(arg).ok())
                .filter(|arg| arg.parse::<u32>().is_ok());
            if let Some(index) = index {
                self.database = Some(ShortString::from(index));
            }
        }
        let query = query_text(&command, start);
        Some(RedisOperation {
            command: ShortString::from(command),
            query: ShortString::from(query),
            database,
            error: None,
        })
    }

    fn reply(&mut self, walked: Walked<'_>, end_mono_ns: u64, hooks: &mut impl Hooks<RedisRecord>) {
        let reply = match parse_reply_start(walked.kept) {
            Parse::Parsed(reply) => reply,
            // Valid RESP whose start is longer than what was kept: no error, no push.
            Parse::NeedMore => ReplyStart {
                kind: Kind::BulkString,
                error_code: None,
                push: None,
            },
            Parse::Invalid(reason) => {
                hooks.anomaly(Anomaly::Invalid(reason.as_str()));
                return;
            }
        };
        self.resp3 |= !matches!(
            reply.kind,
            Kind::SimpleString | Kind::SimpleError | Kind::Integer | Kind::BulkString | Kind::Array
        );
        let out_of_band = match reply.kind {
            Kind::Push => true,
            Kind::Array => {
                self.subscribed && !self.resp3 && reply.push.is_some_and(|p| p != PushKind::Other)
            }
            _ => false,
        };
        let answers_subscription = reply.push == Some(PushKind::Subscription)
            && self.replies_to_skip == 0
            && self.pending.front().is_some_and(|p| p.subscription);
        if out_of_band && !answers_subscription {
            return;
        }
        if self.resyncing.is_some() {
            self.resyncing = Some(Resync::AwaitingCommand);
            return;
        }
        if self.replies_to_skip > 0 {
            self.replies_to_skip -= 1;
            return;
        }
        let Some(pending) = self.pending.pop_front() else {
            hooks.anomaly(Anomaly::OrphanResponse);
            return;
        };
        let operation = pending.operation.map(|mut op| {
            op.error = reply
                .error_code
                .map(|code| ShortString::from(String::from_utf8_lossy(code).as_ref()));
            op
        });
        hooks.exchange(RedisRecord {
            tid: pending.tid,
            start_mono_ns: pending.start_mono_ns,
            end_mono_ns,
            context: pending.context,
            operation,
        });
    }

    /// A side fell out of step: nothing pending can be paired any more.
    fn lose_step(&mut self, anomaly: Anomaly, hooks: &mut impl Hooks<RedisRecord>) {
        for pending in self.pending.drain(..) {
            hooks.abandoned(pending.context);
        }
        self.replies_to_skip = 0;
        self.resyncing = Some(Resync::AwaitingReply);
        hooks.anomaly(anomaly);
    }
}

/// The command as `db.query.text` shows it: its name, its first argument (a key or channel,
/// mostly) unless it may be a secret, and `?` for the arguments after that.
fn query_text(command: &str, start: &CommandStart<'_>) -> String {
    let mut text = command.to_string();
    let shown = start
        .first_arg
        .filter(|arg| arg.len() <= MAX_SHOWN_ARG && !SECRET_COMMANDS.contains(&command))
        .and_then(|arg| std::str::from_utf8(arg).ok())
        .filter(|arg| !arg.is_empty() && arg.chars().all(|c| c.is_ascii_graphic()));
    match (start.arg_count, shown) {
        (0, _) => {}
        (1, Some(arg)) => {
            text.push(' ');
            text.push_str(arg);
        }
        (_, Some(arg)) => {
            text.push(' ');
            text.push_str(arg);
            text.push_str(" ?");
        }
        (_, None) => text.push_str(" ?"),
    }
    text
}

impl Stitch for RedisStitcher {
    type Record = RedisRecord;

    fn feed(&mut self, chunk: &DataChunk<'_>, hooks: &mut impl Hooks<RedisRecord>) {
        let pairing = &mut self.pairing;
        let lost = if chunk.direction == self.request_dir {
            self.commands
                .feed(chunk, |walked| pairing.command(walked, hooks))
        } else {
            let end_mono_ns = chunk.end_mono_ns;
            self.replies
                .feed(chunk, |walked| pairing.reply(walked, end_mono_ns, hooks))
        };
        if let Some(anomaly) = lost {
            self.pairing.lose_step(anomaly, hooks);
        }
    }

    fn close(&mut self, hooks: &mut impl Hooks<RedisRecord>) {
        for pending in self.pairing.pending.drain(..) {
            hooks.abandoned(pending.context);
            hooks.anomaly(Anomaly::Unanswered(Unanswered::Closed));
        }
    }
}
