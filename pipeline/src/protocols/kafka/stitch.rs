//! One connection's Kafka traffic, both directions, to one record per Produce and per Fetch
//! that returned records.
//!
//! Every message is a size and that many bytes, so each direction is followed by count: the
//! first `MAX_KEPT` bytes of a message are kept for its head and first fields, the rest (record
//! batches, mostly) only counted, and bytes the probe did not copy are counted the same way.
//! Responses are paired with requests by correlation id. Topics named by id (Produce and Fetch
//! v13+) are named from the Metadata responses seen on any connection.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use super::{
    parse_fetch_request, parse_fetch_response, parse_metadata_topics, parse_produce_request,
    parse_produce_response, parse_request_head, parse_response_head, response_body, ApiKey,
    ErrorCode, InvalidReason, Parse, RequestHead, Topic, TopicId, MAX_MESSAGE_LEN, SIZE_LEN,
};
use crate::model::{
    DataChunk, Direction, KafkaOperation, KafkaOperationKind, Operation, ShortString, Tid,
    TraceContext,
};
use crate::protocols::{Anomaly, Exchange, Hooks, Record, Stitch, Unanswered};

/// Bytes of each message kept to read its head and first fields; a Metadata response longer
/// than this names the topics that fit.
const MAX_KEPT: usize = 16 * 1024;
/// Requests awaiting their responses on one connection (clients keep five in flight by default).
const MAX_PENDING: usize = 256;
/// Smallest message after its size: a response's correlation id.
const MIN_MESSAGE_LEN: usize = 4;
/// Topic ids remembered; the table is emptied when full.
const MAX_TOPIC_IDS: usize = 4096;

/// Topic names by id, learnt from Metadata responses on every connection: a client asks for
/// metadata on one connection (the Java consumer: its bootstrap one) and fetches on another.
static TOPIC_NAMES: Mutex<Option<HashMap<TopicId, ShortString>>> = Mutex::new(None);

fn remember_topic(id: TopicId, name: &str) {
    let mut names = TOPIC_NAMES.lock().unwrap_or_else(|e| e.into_inner());
    let names = names.get_or_insert_with(HashMap::new);
    if names.len() >= MAX_TOPIC_IDS && !names.contains_key(&id) {
        names.clear();
    }
    names.insert(id, ShortString::from(name));
}

fn topic_name(topic: Option<Topic<'_>>) -> Option<ShortString> {
    match topic? {
        Topic::Name(name) => Some(ShortString::from(name)),
        Topic::Id(id) => TOPIC_NAMES
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()?
            .get(&id)
            .cloned(),
    }
}

/// A Produce or Fetch with its response (or a Produce that asks for none).
#[derive(Debug, Clone, PartialEq)]
pub struct KafkaRecord {
    pub tid: Tid,
    pub start_mono_ns: u64,
    pub end_mono_ns: u64,
    pub context: TraceContext,
    pub operation: KafkaOperation,
}

impl Record for KafkaRecord {
    fn into_exchange(self) -> Result<Exchange, (TraceContext, Anomaly)> {
        Ok(Exchange {
            tid: self.tid,
            start_mono_ns: self.start_mono_ns,
            end_mono_ns: self.end_mono_ns,
            context: self.context,
            operation: Operation::Kafka(self.operation),
        })
    }
}

/// A request whose response is awaited.
struct InFlight {
    correlation_id: i32,
    api_key: ApiKey,
    api_version: i16,
    /// Produce and Fetch: the span's start and what the request said.
    span: Option<SpanStart>,
}

struct SpanStart {
    tid: Tid,
    start_mono_ns: u64,
    context: TraceContext,
    operation: KafkaOperation,
}

impl SpanStart {
    fn end(self, end_mono_ns: u64) -> KafkaRecord {
        KafkaRecord {
            tid: self.tid,
            start_mono_ns: self.start_mono_ns,
            end_mono_ns,
            context: self.context,
            operation: self.operation,
        }
    }
}

/// One direction: the message being read, by count.
struct Side {
    kept: Vec<u8>,
    /// Bytes of the current message still to come after its size; `None` while reading the size.
    remaining: Option<u64>,
    value_start: Option<(u64, Tid)>,
    /// Out of step (a bad size, or a capture gap over one): start again at the next chunk.
    lost: bool,
}

/// A message read to its end.
struct Message<'a> {
    /// Its first bytes, the size included.
    kept: &'a [u8],
    start_mono_ns: u64,
    end_mono_ns: u64,
    tid: Tid,
}

impl Side {
    fn new() -> Side {
        Side {
            kept: Vec::new(),
            remaining: None,
            value_start: None,
            lost: false,
        }
    }

    fn reset(&mut self) {
        self.kept.clear();
        self.remaining = None;
        self.value_start = None;
        self.lost = false;
    }

    /// Reads the chunk's bytes, calling `done` for every message that ends in them; the
    /// anomaly that put the side out of step, if one did.
    fn feed(
        &mut self,
        chunk: &DataChunk<'_>,
        mut done: impl FnMut(Message<'_>),
    ) -> Option<Anomaly> {
        if self.lost {
            self.reset();
        }
        let mut data = chunk.data;
        while !data.is_empty() {
            self.value_start
                .get_or_insert((chunk.first_byte_ns(), chunk.tid));
            let remaining = match self.remaining {
                Some(remaining) => remaining,
                None => {
                    let need = SIZE_LEN - self.kept.len();
                    let (size, rest) = data.split_at(need.min(data.len()));
                    self.kept.extend_from_slice(size);
                    data = rest;
                    if self.kept.len() < SIZE_LEN {
                        break;
                    }
                    let size = i32::from_be_bytes([
                        self.kept[0],
                        self.kept[1],
                        self.kept[2],
                        self.kept[3],
                    ]);
                    let size = match usize::try_from(size) {
                        Ok(size) if (MIN_MESSAGE_LEN..=MAX_MESSAGE_LEN).contains(&size) => size,
                        _ => {
                            self.reset();
                            self.lost = true;
                            return Some(Anomaly::Invalid(InvalidReason::BadSize.as_str()));
                        }
                    };
                    size as u64
                }
            };
            let take = usize::try_from(remaining)
                .unwrap_or(usize::MAX)
                .min(data.len());
            let room = MAX_KEPT.saturating_sub(self.kept.len());
            self.kept.extend_from_slice(&data[..take.min(room)]);
            data = &data[take..];
            let remaining = remaining - take as u64;
            self.remaining = Some(remaining);
            if remaining == 0 {
                self.finish(chunk.end_mono_ns, &mut done);
            }
        }
        let gap = chunk.uncaptured();
        if gap > 0 {
            match self.remaining {
                Some(remaining) if gap <= remaining => {
                    self.remaining = Some(remaining - gap);
                    if remaining == gap {
                        self.finish(chunk.end_mono_ns, &mut done);
                    }
                }
                _ => {
                    self.reset();
                    self.lost = true;
                    return Some(Anomaly::Lost { bytes: gap });
                }
            }
        }
        None
    }

    fn finish(&mut self, end_mono_ns: u64, done: &mut impl FnMut(Message<'_>)) {
        let (start_mono_ns, tid) = self.value_start.take().unwrap_or((end_mono_ns, Tid(0)));
        done(Message {
            kept: &self.kept,
            start_mono_ns,
            end_mono_ns,
            tid,
        });
        self.kept.clear();
        self.remaining = None;
    }
}

pub struct KafkaStitcher {
    request_dir: Direction,
    requests: Side,
    responses: Side,
    in_flight: InFlightQueue,
}

/// Requests in the order they were sent; a connection's responses come back in that order,
/// so the one answered is nearly always the first.
struct InFlightQueue(VecDeque<InFlight>);

impl KafkaStitcher {
    pub fn new(request_dir: Direction) -> KafkaStitcher {
        KafkaStitcher {
            request_dir,
            requests: Side::new(),
            responses: Side::new(),
            in_flight: InFlightQueue(VecDeque::new()),
        }
    }
}

/// What a Produce or Fetch request says, before its response.
fn request_operation(head: &RequestHead<'_>, body: &[u8]) -> Option<KafkaOperation> {
    let client_id = head.client_id.map(ShortString::from);
    let operation = |kind, topic, partition, offset| KafkaOperation {
        kind,
        topic: topic_name(topic),
        partition,
        client_id: client_id.clone(),
        offset,
        error: None,
    };
    match head.api_key {
        ApiKey::PRODUCE => match parse_produce_request(head.api_version, body) {
            Parse::Parsed(p) => Some(operation(
                KafkaOperationKind::Produce,
                p.topic,
                p.partition,
                None,
            )),
            _ => Some(operation(KafkaOperationKind::Produce, None, None, None)),
        },
        ApiKey::FETCH => match parse_fetch_request(head.api_version, body) {
            Parse::Parsed(f) => Some(operation(
                KafkaOperationKind::Fetch,
                f.topic,
                f.partition,
                f.fetch_offset,
            )),
            _ => Some(operation(KafkaOperationKind::Fetch, None, None, None)),
        },
        _ => None,
    }
}

/// A Produce with `acks=0` is never answered.
fn expects_response(head: &RequestHead<'_>, body: &[u8]) -> bool {
    head.api_key != ApiKey::PRODUCE
        || !matches!(parse_produce_request(head.api_version, body), Parse::Parsed(p) if p.acks == 0)
}

fn error_name(code: ErrorCode) -> ShortString {
    match code.name() {
        Some(name) => ShortString::from(name),
        None => ShortString::from(code.0.to_string()),
    }
}

impl InFlightQueue {
    fn request(&mut self, message: Message<'_>, hooks: &mut impl Hooks<KafkaRecord>) {
        let head = match parse_request_head(message.kept) {
            Parse::Parsed(head) => head,
            Parse::NeedMore => return hooks.anomaly(Anomaly::Undecodable),
            Parse::Invalid(reason) => return hooks.anomaly(Anomaly::Invalid(reason.as_str())),
        };
        let body = head
            .body_offset
            .and_then(|offset| message.kept.get(offset..))
            .unwrap_or_default();
        let span = request_operation(&head, body).map(|operation| SpanStart {
            tid: message.tid,
            start_mono_ns: message.start_mono_ns,
            context: hooks.request_started(message.tid, None),
            operation,
        });
        if !expects_response(&head, body) {
            if let Some(span) = span {
                hooks.exchange(span.end(message.end_mono_ns));
            }
            return;
        }
        if self.0.len() == MAX_PENDING {
            if let Some(oldest) = self.0.pop_front() {
                if let Some(span) = oldest.span {
                    hooks.abandoned(span.context);
                }
                hooks.anomaly(Anomaly::Unanswered(Unanswered::Dropped));
            }
        }
        self.0.push_back(InFlight {
            correlation_id: head.correlation_id,
            api_key: head.api_key,
            api_version: head.api_version,
            span,
        });
    }

    fn response(&mut self, message: Message<'_>, hooks: &mut impl Hooks<KafkaRecord>) {
        let Parse::Parsed(head) = parse_response_head(message.kept) else {
            return hooks.anomaly(Anomaly::Undecodable);
        };
        let Some(index) = self
            .0
            .iter()
            .position(|r| r.correlation_id == head.correlation_id)
        else {
            return hooks.anomaly(Anomaly::OrphanResponse);
        };
        let Some(request) = self.0.remove(index) else {
            return;
        };
        let body = match response_body(message.kept, request.api_key, request.api_version) {
            Parse::Parsed(body) => body,
            _ => &[],
        };
        if request.api_key == ApiKey::METADATA {
            let _ = parse_metadata_topics(request.api_version, body, |topic| {
                if let (Some(name), Some(id)) = (topic.name, topic.id) {
                    if !topic.error.is_error() && id.0 != [0; 16] {
                        remember_topic(id, name);
                    }
                }
            });
        }
        let Some(mut span) = request.span else {
            return;
        };
        let (topic, partition, error, records) = match span.operation.kind {
            KafkaOperationKind::Produce => {
                match parse_produce_response(request.api_version, body) {
                    Parse::Parsed(p) => (p.topic, p.partition, p.error, None),
                    _ => (None, None, ErrorCode::NONE, None),
                }
            }
            KafkaOperationKind::Fetch => match parse_fetch_response(request.api_version, body) {
                Parse::Parsed(f) => (f.topic, f.partition, f.error, f.records_len),
                _ => (None, None, ErrorCode::NONE, None),
            },
        };
        // A fetch that returned nothing (a long poll that timed out) processed no message.
        if span.operation.kind == KafkaOperationKind::Fetch
            && !error.is_error()
            && records.unwrap_or(0) == 0
        {
            hooks.abandoned(span.context);
            return;
        }
        if span.operation.topic.is_none() {
            span.operation.topic = topic_name(topic);
        }
        span.operation.partition = span.operation.partition.or(partition);
        span.operation.error = error.is_error().then(|| error_name(error));
        hooks.exchange(span.end(message.end_mono_ns));
    }

    /// A side fell out of step: responses can no longer be found, nor requests read.
    fn lose_step(&mut self, anomaly: Anomaly, hooks: &mut impl Hooks<KafkaRecord>) {
        for request in self.0.drain(..) {
            if let Some(span) = request.span {
                hooks.abandoned(span.context);
            }
        }
        hooks.anomaly(anomaly);
    }
}

impl Stitch for KafkaStitcher {
    type Record = KafkaRecord;

    fn feed(&mut self, chunk: &DataChunk<'_>, hooks: &mut impl Hooks<KafkaRecord>) {
        let in_flight = &mut self.in_flight;
        let lost = if chunk.direction == self.request_dir {
            self.requests.feed(chunk, |m| in_flight.request(m, hooks))
        } else {
            self.responses.feed(chunk, |m| in_flight.response(m, hooks))
        };
        if let Some(anomaly) = lost {
            self.in_flight.lose_step(anomaly, hooks);
        }
    }

    fn close(&mut self, hooks: &mut impl Hooks<KafkaRecord>) {
        for request in self.in_flight.0.drain(..) {
            if let Some(span) = request.span {
                hooks.abandoned(span.context);
                hooks.anomaly(Anomaly::Unanswered(Unanswered::Closed));
            }
        }
    }
}
