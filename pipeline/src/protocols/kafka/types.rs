//! Kafka wire protocol: the request and response heads every API shares, and the fields of
//! Produce, Fetch and Metadata that spans need. Values borrow from the captured bytes.

/// Outcome of parsing bytes that may be cut off anywhere.
pub type Parse<T> = crate::protocols::Parse<T, InvalidReason>;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum InvalidReason {
    /// A message size below the smallest head or above `MAX_MESSAGE_LEN`.
    BadSize,
    /// An API key no Kafka version defines, or a negative version.
    UnknownApi,
    /// A negative correlation id: clients count up from 0.
    BadCorrelationId,
    /// A string or bytes length below -1 (or a compact one past the limits).
    BadLength,
    /// A variable-length integer longer than 5 bytes.
    BadVarint,
    /// A string that is not UTF-8.
    BadString,
    /// The fields run past the end of the message the size announced.
    Overrun,
}

impl InvalidReason {
    /// The name self-metrics count this reason under.
    pub fn as_str(self) -> &'static str {
        match self {
            InvalidReason::BadSize => "bad_size",
            InvalidReason::UnknownApi => "unknown_api",
            InvalidReason::BadCorrelationId => "bad_correlation_id",
            InvalidReason::BadLength => "bad_length",
            InvalidReason::BadVarint => "bad_varint",
            InvalidReason::BadString => "bad_string",
            InvalidReason::Overrun => "overrun",
        }
    }
}

/// Which request a message is (the protocol's `api_key`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ApiKey(pub i16);

impl ApiKey {
    pub const PRODUCE: ApiKey = ApiKey(0);
    pub const FETCH: ApiKey = ApiKey(1);
    pub const METADATA: ApiKey = ApiKey(3);
    pub const API_VERSIONS: ApiKey = ApiKey(18);
    /// The highest key Kafka 4.1 defines (DeleteShareGroupOffsets).
    pub const MAX: ApiKey = ApiKey(92);

    /// The first version whose messages are "flexible" (compact strings and arrays, tagged
    /// fields, header v2 / v1), for the APIs whose bodies are read; `None` for the others.
    pub fn first_flexible_version(self) -> Option<i16> {
        match self {
            ApiKey::PRODUCE => Some(9),
            ApiKey::FETCH => Some(12),
            ApiKey::METADATA => Some(9),
            ApiKey::API_VERSIONS => Some(3),
            _ => None,
        }
    }

    pub fn is_flexible(self, version: i16) -> bool {
        self.first_flexible_version().is_some_and(|v| version >= v)
    }
}

/// A topic as a request or response names it: by name, or from Produce v13 and Fetch v13 on
/// by its id (Metadata v10+ maps one to the other).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Topic<'a> {
    Name(&'a str),
    Id(TopicId),
}

/// A topic's 128-bit id, as the broker assigns it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TopicId(pub [u8; 16]);

/// A Kafka error code; 0 is success.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ErrorCode(pub i16);

impl ErrorCode {
    pub const NONE: ErrorCode = ErrorCode(0);

    pub fn is_error(self) -> bool {
        self != ErrorCode::NONE
    }

    /// The protocol's name for the codes Produce and Fetch return; `None` for others.
    pub fn name(self) -> Option<&'static str> {
        Some(match self.0 {
            -1 => "UNKNOWN_SERVER_ERROR",
            1 => "OFFSET_OUT_OF_RANGE",
            2 => "CORRUPT_MESSAGE",
            3 => "UNKNOWN_TOPIC_OR_PARTITION",
            4 => "INVALID_FETCH_SIZE",
            5 => "LEADER_NOT_AVAILABLE",
            6 => "NOT_LEADER_OR_FOLLOWER",
            7 => "REQUEST_TIMED_OUT",
            10 => "MESSAGE_TOO_LARGE",
            19 => "NOT_ENOUGH_REPLICAS",
            20 => "NOT_ENOUGH_REPLICAS_AFTER_APPEND",
            21 => "INVALID_REQUIRED_ACKS",
            29 => "TOPIC_AUTHORIZATION_FAILED",
            45 => "OUT_OF_ORDER_SEQUENCE_NUMBER",
            47 => "INVALID_PRODUCER_EPOCH",
            70 => "FETCH_SESSION_ID_NOT_FOUND",
            71 => "INVALID_FETCH_SESSION_EPOCH",
            74 => "FENCED_LEADER_EPOCH",
            75 => "UNKNOWN_LEADER_EPOCH",
            87 => "INVALID_RECORD",
            100 => "UNKNOWN_TOPIC_ID",
            _ => return None,
        })
    }
}

/// The start of every request: size, then header v0-v2.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestHead<'a> {
    pub api_key: ApiKey,
    pub api_version: i16,
    pub correlation_id: i32,
    /// Header v1+; `None` when null.
    pub client_id: Option<&'a str>,
    /// Bytes of the whole message, the 4-byte size included.
    pub message_len: usize,
    /// Where the body starts, from the start of the message; known only for the APIs whose
    /// flexible versions are known (`ApiKey::first_flexible_version`).
    pub body_offset: Option<usize>,
}

/// The start of every response: size and correlation id (header v1 adds tagged fields).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResponseHead {
    pub correlation_id: i32,
    /// Bytes of the whole message, the 4-byte size included.
    pub message_len: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProduceRequest<'a> {
    pub transactional_id: Option<&'a str>,
    pub acks: i16,
    /// The first topic; `None` when the request names none.
    pub topic: Option<Topic<'a>>,
    /// The first partition of the first topic.
    pub partition: Option<i32>,
    pub topic_count: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProduceResponse<'a> {
    pub topic: Option<Topic<'a>>,
    pub partition: Option<i32>,
    /// The first partition's base offset.
    pub base_offset: Option<i64>,
    /// The first error of any partition, else `NONE`.
    pub error: ErrorCode,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FetchRequest<'a> {
    /// The first topic; `None` when an incremental fetch session changes none.
    pub topic: Option<Topic<'a>>,
    pub partition: Option<i32>,
    pub fetch_offset: Option<i64>,
    pub topic_count: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FetchResponse<'a> {
    pub topic: Option<Topic<'a>>,
    pub partition: Option<i32>,
    /// The request-wide error (v7+), else the first partition error seen.
    pub error: ErrorCode,
    /// Bytes of record batches the first partition returned.
    pub records_len: Option<u64>,
}

/// One topic of a Metadata response: how to tell a topic id's name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetadataTopic<'a> {
    pub name: Option<&'a str>,
    /// v10+; all zeros for a topic the broker does not know.
    pub id: Option<TopicId>,
    pub error: ErrorCode,
}
