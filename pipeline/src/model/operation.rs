//! The protocol's own part of a request: what it did and how it ended.
//! Span names, attributes and metrics are derived from it in `semconv`.

use super::ShortString;

#[derive(Debug, Clone, PartialEq)]
pub enum Operation {
    Http(HttpOperation),
    /// A remote procedure call (gRPC), with the HTTP/2 request that carried it.
    Rpc(RpcOperation),
    /// A statement sent to an SQL database (PostgreSQL, MySQL/MariaDB).
    Sql(SqlOperation),
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

#[derive(Debug, Clone, PartialEq)]
pub struct SqlOperation {
    /// `db.system.name`: `postgresql` or `mysql`.
    pub system: &'static str,
    /// `db.operation.name`: the statement's keyword (`SELECT`), when known.
    pub operation: Option<&'static str>,
    /// `db.collection.name`: the first table the statement names.
    pub collection: Option<ShortString>,
    /// `db.query.text`: literals replaced by `?` unless the raw text was asked for.
    pub query: ShortString,
    /// `db.namespace`: the database the connection logged in to (or switched to).
    pub namespace: Option<ShortString>,
    /// `db.response.status_code` of a failed statement: the SQLSTATE (PostgreSQL) or the
    /// error number (MySQL). None when it succeeded.
    pub error_code: Option<ShortString>,
}

impl Operation {
    /// The HTTP request of an HTTP exchange or of the call it carried.
    pub fn http(&self) -> Option<&HttpOperation> {
        match self {
            Operation::Http(http) => Some(http),
            Operation::Rpc(rpc) => Some(&rpc.http),
            Operation::Sql(_) => None,
        }
    }
}
