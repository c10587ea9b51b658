//! Kafka: the wire protocol's request and response heads (any API), and the topics, partitions
//! and errors of Produce and Fetch, with Metadata to name topics sent by id.
mod parse;
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
