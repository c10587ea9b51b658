//! The protocol's own part of a request: what it did and how it ended.
//! Span names, attributes and metrics are derived from it in `semconv`.

use super::ShortString;

#[derive(Debug, Clone, PartialEq)]
pub enum Operation {
    Http(HttpOperation),
    /// A remote procedure call (gRPC), with the HTTP/2 request that carried it.
    Rpc(RpcOperation),
}

#[derive(Debug, Clone, PartialEq)]
pub struct HttpOperation {
    pub method: &'static str,
    /// The request target's path, without the query string.
    pub path: ShortString,
    pub status: u16,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RpcOperation {
    /// `rpc.system`.
    pub system: &'static str,
    pub service: ShortString,
    pub method: ShortString,
    /// `grpc-status` from the trailers; None when it never arrived or was not decodable.
    pub status_code: Option<u32>,
    /// The HTTP/2 request and response that carried the call.
    pub http: HttpOperation,
}

impl Operation {
    /// The HTTP request of an HTTP exchange or of the call it carried.
    pub fn http(&self) -> Option<&HttpOperation> {
        match self {
            Operation::Http(http) => Some(http),
            Operation::Rpc(rpc) => Some(&rpc.http),
        }
    }
}
