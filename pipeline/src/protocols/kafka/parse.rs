//! Kafka messages from bytes that may be cut off at any point.
//!
//! Every message is a 4-byte size and that many bytes, so a stitcher can always step over what it
//! does not read by count: only the heads, and the first fields of Produce, Fetch and Metadata
//! bodies, are parsed, from the start of a buffer, zero-copy and without state. Field layouts
//! follow the protocol's message definitions (versions, flexible versions, tagged fields).

use super::types::{
    ApiKey, ErrorCode, FetchRequest, FetchResponse, InvalidReason, MetadataTopic, Parse,
    ProduceRequest, ProduceResponse, RequestHead, ResponseHead, Topic, TopicId,
};
use crate::protocols::{self, finish};

/// Bytes of the size that starts every message.
pub const SIZE_LEN: usize = 4;
/// Largest message believed: the broker's default `socket.request.max.bytes` (100 MiB); fetch
/// responses stay under the consumer's `fetch.max.bytes` (50 MiB by default).
pub const MAX_MESSAGE_LEN: usize = 100 * 1024 * 1024;
/// Highest API version believed; Kafka 4.1's highest is 18 (Fetch).
pub const MAX_API_VERSION: i16 = 40;
/// Smallest request after the size: api key, version, correlation id, client id length.
const MIN_REQUEST_LEN: usize = 2 + 2 + 4 + 2;
/// Smallest response after the size: the correlation id.
const MIN_RESPONSE_LEN: usize = 4;
/// Longest string: lengths are signed 16-bit, compact ones are held to the same.
const MAX_STRING_LEN: usize = i16::MAX as usize;
/// Bytes of an unsigned varint holding 32 bits.
const MAX_VARINT_LEN: usize = 5;

/// Why a parse stopped, with this protocol's reason.
type Stop = protocols::Stop<InvalidReason>;

impl From<InvalidReason> for Stop {
    fn from(reason: InvalidReason) -> Self {
        Stop::Invalid(reason)
    }
}

/// Reads fields in order; compact encodings when the message is flexible.
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    flexible: bool,
}

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8], flexible: bool) -> Self {
        Reader {
            buf,
            pos: 0,
            flexible,
        }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], Stop> {
        let bytes = self
            .buf
            .get(self.pos..self.pos.saturating_add(n))
            .ok_or(Stop::NeedMore)?;
        self.pos += n;
        Ok(bytes)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], Stop> {
        let mut out = [0; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    fn i16(&mut self) -> Result<i16, Stop> {
        Ok(i16::from_be_bytes(self.array()?))
    }

    fn i32(&mut self) -> Result<i32, Stop> {
        Ok(i32::from_be_bytes(self.array()?))
    }

    fn i64(&mut self) -> Result<i64, Stop> {
        Ok(i64::from_be_bytes(self.array()?))
    }

    fn uuid(&mut self) -> Result<TopicId, Stop> {
        Ok(TopicId(self.array()?))
    }

    fn uvarint(&mut self) -> Result<u32, Stop> {
        let mut value = 0u32;
        for i in 0..MAX_VARINT_LEN {
            let [b] = self.array()?;
            value |= u32::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(Stop::Invalid(InvalidReason::BadVarint))
    }

    /// A length that may be null: i16 or i32 classic (`-1` null), or compact (`0` null).
    fn length(&mut self, classic_i32: bool) -> Result<Option<usize>, Stop> {
        let classic = match (self.flexible, classic_i32) {
            (true, _) => {
                return Ok(self
                    .uvarint()?
                    .checked_sub(1)
                    .map(|n| usize::try_from(n).unwrap_or(usize::MAX)))
            }
            (false, true) => i64::from(self.i32()?),
            (false, false) => i64::from(self.i16()?),
        };
        match classic {
            -1 => Ok(None),
            n if n < 0 => Err(Stop::Invalid(InvalidReason::BadLength)),
            n => Ok(Some(usize::try_from(n).unwrap_or(usize::MAX))),
        }
    }

    fn string(&mut self) -> Result<Option<&'a str>, Stop> {
        let Some(len) = self.length(false)? else {
            return Ok(None);
        };
        if len > MAX_STRING_LEN {
            return Err(Stop::Invalid(InvalidReason::BadLength));
        }
        let bytes = self.take(len)?;
        std::str::from_utf8(bytes)
            .map(Some)
            .map_err(|_| Stop::Invalid(InvalidReason::BadString))
    }

    /// An array's element count; null counts as empty.
    fn array_len(&mut self) -> Result<u32, Stop> {
        Ok(self
            .length(true)?
            .map_or(0, |n| u32::try_from(n).unwrap_or(u32::MAX)))
    }

    /// Bytes (records) stepped over; their length, `None` when null.
    fn skip_bytes(&mut self) -> Result<Option<u64>, Stop> {
        let Some(len) = self.length(true)? else {
            return Ok(None);
        };
        self.take(len)?;
        Ok(Some(len as u64))
    }

    fn skip_i32_array(&mut self) -> Result<(), Stop> {
        let n = self.array_len()? as usize;
        self.take(n.saturating_mul(4))?;
        Ok(())
    }

    /// Tagged fields, in flexible versions only: a count, then tag, size and data each.
    fn skip_tagged(&mut self) -> Result<(), Stop> {
        if !self.flexible {
            return Ok(());
        }
        let count = self.uvarint()?;
        for _ in 0..count {
            self.uvarint()?;
            let size = self.uvarint()? as usize;
            self.take(size)?;
        }
        Ok(())
    }

    /// A topic name, or from `id_from` on the topic's id.
    fn topic(&mut self, version: i16, id_from: i16) -> Result<Option<Topic<'a>>, Stop> {
        if version >= id_from {
            return Ok(Some(Topic::Id(self.uuid()?)));
        }
        Ok(self.string()?.map(Topic::Name))
    }
}

/// The size and correlation id that start a message.
fn size(buf: &[u8], min: usize) -> Result<usize, Stop> {
    let size = Reader::new(buf, false).i32()?;
    let size = usize::try_from(size).map_err(|_| InvalidReason::BadSize)?;
    if !(min..=MAX_MESSAGE_LEN).contains(&size) {
        return Err(Stop::Invalid(InvalidReason::BadSize));
    }
    Ok(SIZE_LEN + size)
}

/// Reads the size and request header at the start of `buf`.
pub fn parse_request_head(buf: &[u8]) -> Parse<RequestHead<'_>> {
    finish(request_head(buf))
}

fn request_head(buf: &[u8]) -> Result<RequestHead<'_>, Stop> {
    let message_len = size(buf, MIN_REQUEST_LEN)?;
    let mut r = Reader::new(buf, false);
    r.pos = SIZE_LEN;
    let api_key = ApiKey(r.i16()?);
    let api_version = r.i16()?;
    if !(0..=ApiKey::MAX.0).contains(&api_key.0) || !(0..=MAX_API_VERSION).contains(&api_version) {
        return Err(Stop::Invalid(InvalidReason::UnknownApi));
    }
    let correlation_id = r.i32()?;
    if correlation_id < 0 {
        return Err(Stop::Invalid(InvalidReason::BadCorrelationId));
    }
    // The client id is a classic nullable string even in header v2.
    let client_id = r.string()?;
    if r.pos > message_len {
        return Err(Stop::Invalid(InvalidReason::Overrun));
    }
    let body_offset = match api_key.first_flexible_version() {
        None => None,
        Some(_) => {
            r.flexible = api_key.is_flexible(api_version);
            r.skip_tagged()?;
            Some(r.pos)
        }
    };
    if body_offset.is_some_and(|offset| offset > message_len) {
        return Err(Stop::Invalid(InvalidReason::Overrun));
    }
    Ok(RequestHead {
        api_key,
        api_version,
        correlation_id,
        client_id,
        message_len,
        body_offset,
    })
}

/// Reads the size and correlation id at the start of `buf`: enough to find the request a
/// response answers, which tells how the rest of it is laid out.
pub fn parse_response_head(buf: &[u8]) -> Parse<ResponseHead> {
    finish(response_head(buf))
}

fn response_head(buf: &[u8]) -> Result<ResponseHead, Stop> {
    let message_len = size(buf, MIN_RESPONSE_LEN)?;
    let mut r = Reader::new(buf, false);
    r.pos = SIZE_LEN;
    Ok(ResponseHead {
        correlation_id: r.i32()?,
        message_len,
    })
}

/// The body of a response to `api_key` at `api_version`: after the header, whose v1 (flexible
/// versions, except ApiVersions, which clients must read before they know versions) ends with
/// tagged fields. `buf` starts at the size and may be cut off.
pub fn response_body(buf: &[u8], api_key: ApiKey, api_version: i16) -> Parse<&[u8]> {
    let header_v1 = api_key.is_flexible(api_version) && api_key != ApiKey::API_VERSIONS;
    let mut r = Reader::new(buf, header_v1);
    r.pos = SIZE_LEN + 4;
    finish(
        r.skip_tagged()
            .map(|()| buf.get(r.pos..).unwrap_or_default()),
    )
}

/// The first topic and partition of a Produce request body (the records after them are not read).
pub fn parse_produce_request(version: i16, body: &[u8]) -> Parse<ProduceRequest<'_>> {
    finish(produce_request(version, body))
}

fn produce_request(version: i16, body: &[u8]) -> Result<ProduceRequest<'_>, Stop> {
    let mut r = Reader::new(body, ApiKey::PRODUCE.is_flexible(version));
    let transactional_id = if version >= 3 { r.string()? } else { None };
    let acks = r.i16()?;
    let _timeout_ms = r.i32()?;
    let topic_count = r.array_len()?;
    let (mut topic, mut partition) = (None, None);
    if topic_count > 0 {
        topic = r.topic(version, 13)?;
        if r.array_len()? > 0 {
            partition = Some(r.i32()?);
        }
    }
    Ok(ProduceRequest {
        transactional_id,
        acks,
        topic,
        partition,
        topic_count,
    })
}

/// The first topic and partition of a Produce response body, and the first error of any partition.
pub fn parse_produce_response(version: i16, body: &[u8]) -> Parse<ProduceResponse<'_>> {
    finish(produce_response(version, body))
}

fn produce_response(version: i16, body: &[u8]) -> Result<ProduceResponse<'_>, Stop> {
    let mut r = Reader::new(body, ApiKey::PRODUCE.is_flexible(version));
    let mut response = ProduceResponse {
        topic: None,
        partition: None,
        base_offset: None,
        error: ErrorCode::NONE,
    };
    let topics = r.array_len()?;
    for t in 0..topics {
        let topic = r.topic(version, 13)?;
        let partitions = r.array_len()?;
        for p in 0..partitions {
            let index = r.i32()?;
            let error = ErrorCode(r.i16()?);
            let base_offset = r.i64()?;
            if t == 0 && p == 0 {
                (response.topic, response.partition) = (topic, Some(index));
                response.base_offset = Some(base_offset);
            }
            if error.is_error() && !response.error.is_error() {
                response.error = error;
            }
            if version >= 2 {
                r.i64()?; // log append time
            }
            if version >= 5 {
                r.i64()?; // log start offset
            }
            if version >= 8 {
                for _ in 0..r.array_len()? {
                    r.i32()?; // batch index
                    r.string()?;
                }
                r.string()?; // error message
            }
            r.skip_tagged()?;
        }
        r.skip_tagged()?;
    }
    Ok(response)
}

/// The first topic and partition a Fetch request asks for.
pub fn parse_fetch_request(version: i16, body: &[u8]) -> Parse<FetchRequest<'_>> {
    finish(fetch_request(version, body))
}

fn fetch_request(version: i16, body: &[u8]) -> Result<FetchRequest<'_>, Stop> {
    let mut r = Reader::new(body, ApiKey::FETCH.is_flexible(version));
    if version <= 14 {
        r.i32()?; // replica id (a tagged field from v15)
    }
    r.i32()?; // max wait
    r.i32()?; // min bytes
    if version >= 3 {
        r.i32()?; // max bytes
    }
    if version >= 4 {
        r.take(1)?; // isolation level
    }
    if version >= 7 {
        r.i32()?; // session id
        r.i32()?; // session epoch
    }
    let topic_count = r.array_len()?;
    let mut request = FetchRequest {
        topic: None,
        partition: None,
        fetch_offset: None,
        topic_count,
    };
    if topic_count > 0 {
        request.topic = r.topic(version, 13)?;
        if r.array_len()? > 0 {
            request.partition = Some(r.i32()?);
            if version >= 9 {
                r.i32()?; // current leader epoch
            }
            request.fetch_offset = Some(r.i64()?);
        }
    }
    Ok(request)
}

/// The first topic and partition of a Fetch response, its error, and how many record bytes the
/// partition returned. Cut-off record bytes only end the search for later errors.
pub fn parse_fetch_response(version: i16, body: &[u8]) -> Parse<FetchResponse<'_>> {
    let mut response = FetchResponse {
        topic: None,
        partition: None,
        error: ErrorCode::NONE,
        records_len: None,
    };
    match fetch_response(version, body, &mut response) {
        Ok(()) => Parse::Parsed(response),
        // The first partition's fields are what the span needs; later ones only add errors.
        Err(Stop::NeedMore) if response.records_len.is_some() => Parse::Parsed(response),
        Err(Stop::NeedMore) => Parse::NeedMore,
        Err(Stop::Invalid(reason)) => Parse::Invalid(reason),
    }
}

fn fetch_response<'a>(
    version: i16,
    body: &'a [u8],
    response: &mut FetchResponse<'a>,
) -> Result<(), Stop> {
    let mut r = Reader::new(body, ApiKey::FETCH.is_flexible(version));
    if version >= 1 {
        r.i32()?; // throttle time
    }
    if version >= 7 {
        response.error = ErrorCode(r.i16()?);
        r.i32()?; // session id
    }
    let topics = r.array_len()?;
    for t in 0..topics {
        let topic = r.topic(version, 13)?;
        let partitions = r.array_len()?;
        for p in 0..partitions {
            let index = r.i32()?;
            let error = ErrorCode(r.i16()?);
            if error.is_error() && !response.error.is_error() {
                response.error = error;
            }
            r.i64()?; // high watermark
            if version >= 4 {
                r.i64()?; // last stable offset
            }
            if version >= 5 {
                r.i64()?; // log start offset
            }
            if version >= 4 {
                let aborted = r.length(true)?.unwrap_or(0);
                for _ in 0..aborted {
                    r.i64()?; // producer id
                    r.i64()?; // first offset
                    r.skip_tagged()?;
                }
            }
            if version >= 11 {
                r.i32()?; // preferred read replica
            }
            let first = t == 0 && p == 0;
            if first {
                (response.topic, response.partition) = (topic, Some(index));
                // Read the length before the bytes, which a capture may have cut off.
                let mut peek = Reader::new(body, r.flexible);
                peek.pos = r.pos;
                response.records_len = Some(peek.length(true)?.unwrap_or(0) as u64);
            }
            r.skip_bytes()?;
            r.skip_tagged()?;
        }
        r.skip_tagged()?;
    }
    Ok(())
}

/// Calls `each` with every topic of a Metadata response body: names and ids, for requests from
/// Produce v13 and Fetch v13 on, which name topics by id only.
pub fn parse_metadata_topics<'a>(
    version: i16,
    body: &'a [u8],
    each: impl FnMut(MetadataTopic<'a>),
) -> Parse<()> {
    finish(metadata_topics(version, body, each))
}

fn metadata_topics<'a>(
    version: i16,
    body: &'a [u8],
    mut each: impl FnMut(MetadataTopic<'a>),
) -> Result<(), Stop> {
    let mut r = Reader::new(body, ApiKey::METADATA.is_flexible(version));
    if version >= 3 {
        r.i32()?; // throttle time
    }
    for _ in 0..r.array_len()? {
        r.i32()?; // node id
        r.string()?; // host
        r.i32()?; // port
        if version >= 1 {
            r.string()?; // rack
        }
        r.skip_tagged()?;
    }
    if version >= 2 {
        r.string()?; // cluster id
    }
    if version >= 1 {
        r.i32()?; // controller id
    }
    for _ in 0..r.array_len()? {
        let error = ErrorCode(r.i16()?);
        let name = r.string()?;
        let id = if version >= 10 { Some(r.uuid()?) } else { None };
        if version >= 1 {
            r.take(1)?; // is internal
        }
        for _ in 0..r.array_len()? {
            r.i16()?; // error code
            r.i32()?; // partition index
            r.i32()?; // leader id
            if version >= 7 {
                r.i32()?; // leader epoch
            }
            r.skip_i32_array()?; // replica nodes
            r.skip_i32_array()?; // in-sync replica nodes
            if version >= 5 {
                r.skip_i32_array()?; // offline replicas
            }
            r.skip_tagged()?;
        }
        if version >= 8 {
            r.i32()?; // topic authorized operations
        }
        r.skip_tagged()?;
        each(MetadataTopic { name, id, error });
    }
    Ok(())
}
