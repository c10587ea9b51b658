//! Kafka: the wire protocol's request and response heads (any API), and the topics, partitions
//! and errors of Produce and Fetch, with Metadata to name topics sent by id.
mod parse;
pub mod stitch;
#[cfg(test)]
mod tests;
mod types;
pub use parse::{
    parse_fetch_request, parse_fetch_response, parse_metadata_topics, parse_produce_request,
    parse_produce_response, parse_request_head, parse_response_head, response_body,
    MAX_API_VERSION, MAX_MESSAGE_LEN, SIZE_LEN,
};
pub use types::{
    ApiKey, ErrorCode, FetchRequest, FetchResponse, InvalidReason, MetadataTopic, Parse,
    ProduceRequest, ProduceResponse, RequestHead, ResponseHead, Topic, TopicId,
};

use super::{Detection, FirstBytes, Protocol, Stitcher};
use crate::model::Direction;

pub struct Kafka;

pub static KAFKA: Kafka = Kafka;

impl Protocol for Kafka {
    fn name(&self) -> &'static str {
        "Kafka"
    }

    /// A request head that makes sense: a size within bounds, a known API key and version, a
    /// correlation id, and a client id of printable text. Responses say too little to tell.
    fn detect(&self, first: &FirstBytes<'_>) -> Detection {
        match parse_request_head(first.data) {
            Parse::Parsed(head)
                if head
                    .client_id
                    .is_none_or(|id| id.bytes().all(|b| b.is_ascii_graphic() || b == b' ')) =>
            {
                Detection::Yes {
                    request_dir: first.direction,
                }
            }
            Parse::NeedMore => Detection::NeedMore,
            _ => Detection::No,
        }
    }

    fn open(&self, request_dir: Direction) -> Box<dyn Stitcher> {
        Box::new(stitch::KafkaStitcher::new(request_dir))
    }
}
