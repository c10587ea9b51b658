//! The protocol's own part of a request: what it did and how it ended.
//! Span names, attributes and metrics are derived from it in `semconv`.

use super::ShortString;

#[derive(Debug, Clone, PartialEq)]
pub enum Operation {
    Http(HttpOperation),
    /// A remote procedure call (gRPC), with the HTTP/2 request that carried it;
    /// boxed, as the largest variant would make every HTTP request as large.
    Rpc(Box<RpcOperation>),
    /// A Redis command and its reply.
    Redis(RedisOperation),
    /// A Kafka Produce or Fetch and its response.
    Kafka(KafkaOperation),
    /// A statement sent to an SQL database (PostgreSQL, MySQL/MariaDB).
    Sql(SqlOperation),
}

/// The HTTP version a request was sent with (`network.protocol.version`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HttpVersion {
    Http10,
    Http11,
    Http2,
}

impl HttpVersion {
    /// As `network.protocol.version` writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            HttpVersion::Http10 => "1.0",
            HttpVersion::Http11 => "1.1",
            HttpVersion::Http2 => "2",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct HttpOperation {
    pub method: HttpMethod,
    /// The request target's path, without the query string.
    pub path: ShortString,
    pub status: u16,
    pub version: HttpVersion,
    /// The `Host` header (HTTP/1) or `:authority` (HTTP/2) as sent, `host[:port]`,
    /// at most [`MAX_HEADER_TEXT`] bytes.
    pub host: Option<ShortString>,
    /// `User-Agent`, at most [`MAX_HEADER_TEXT`] bytes.
    pub user_agent: Option<ShortString>,
    /// Body bytes as they went over the connection (the head left out; chunk
    /// framing and DATA frame padding counted, as sent), request and response.
    pub request_body_bytes: u64,
    pub response_body_bytes: u64,
}

/// Longest header value a span keeps (`Host`, `User-Agent`): longer ones are cut.
pub const MAX_HEADER_TEXT: usize = 256;

/// The request methods of RFC 9110 and PATCH (RFC 5789): the ones the
/// conventions know by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Method {
    Get,
    Head,
    Post,
    Put,
    Delete,
    Connect,
    Options,
    Trace,
    Patch,
}

impl Method {
    pub const ALL: [Method; 9] = [
        Method::Get,
        Method::Head,
        Method::Post,
        Method::Put,
        Method::Delete,
        Method::Connect,
        Method::Options,
        Method::Trace,
        Method::Patch,
    ];

    /// Length of the longest name, so detection reads no further than that.
    pub const MAX_LEN: usize = 7;

    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Head => "HEAD",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Delete => "DELETE",
            Method::Connect => "CONNECT",
            Method::Options => "OPTIONS",
            Method::Trace => "TRACE",
            Method::Patch => "PATCH",
        }
    }

    /// Case-sensitive, as methods are (RFC 9110 section 9.1): `get` is not `GET`.
    pub fn from_bytes(token: &[u8]) -> Option<Method> {
        Some(match token {
            b"GET" => Method::Get,
            b"HEAD" => Method::Head,
            b"POST" => Method::Post,
            b"PUT" => Method::Put,
            b"DELETE" => Method::Delete,
            b"CONNECT" => Method::Connect,
            b"OPTIONS" => Method::Options,
            b"TRACE" => Method::Trace,
            b"PATCH" => Method::Patch,
            _ => return None,
        })
    }
}

/// A request's method as it was sent.
#[derive(Debug, Clone, PartialEq)]
pub enum HttpMethod {
    Known(Method),
    /// Any other token: an extension method (`PURGE`, `PROPFIND`) or a known
    /// one in another case (`get`). `semconv` reports it as `_OTHER`.
    Other(ShortString),
}

impl HttpMethod {
    pub fn from_token(token: &str) -> HttpMethod {
        match Method::from_bytes(token.as_bytes()) {
            Some(known) => HttpMethod::Known(known),
            None => HttpMethod::Other(ShortString::from(token)),
        }
    }

    /// The method as the client sent it.
    pub fn as_str(&self) -> &str {
        match self {
            HttpMethod::Known(known) => known.as_str(),
            HttpMethod::Other(token) => token,
        }
    }

    pub fn known(&self) -> Option<Method> {
        match self {
            HttpMethod::Known(known) => Some(*known),
            HttpMethod::Other(_) => None,
        }
    }

    /// The token of a method the conventions do not know.
    pub fn original(&self) -> Option<&ShortString> {
        match self {
            HttpMethod::Known(_) => None,
            HttpMethod::Other(token) => Some(token),
        }
    }
}

impl From<Method> for HttpMethod {
    fn from(known: Method) -> Self {
        HttpMethod::Known(known)
    }
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
pub struct RedisOperation {
    /// The command name in upper case: `GET`, `HSET`.
    pub command: ShortString,
    /// The command with its first argument (a key or channel, mostly) and `?` for the rest;
    /// `?` for every argument of commands that may carry credentials.
    pub query: ShortString,
    /// The database index (`1`) the connection's last SELECT chose, when one was seen.
    pub database: Option<ShortString>,
    /// The error's code (`ERR`, `WRONGTYPE`) when the reply was an error.
    pub error: Option<ShortString>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KafkaOperationKind {
    /// Produce: records sent to a topic.
    Produce,
    /// Fetch: records read from a topic.
    Fetch,
}

#[derive(Debug, Clone, PartialEq)]
pub struct KafkaOperation {
    pub kind: KafkaOperationKind,
    /// The first topic named; `None` when it was named by an id no Metadata response has shown.
    pub topic: Option<ShortString>,
    /// The first partition of that topic.
    pub partition: Option<i32>,
    pub client_id: Option<ShortString>,
    /// Fetch: the offset the first partition was read from.
    pub offset: Option<i64>,
    /// The first error of any partition, by its protocol name (`MESSAGE_TOO_LARGE`), or its
    /// number when it has none here.
    pub error: Option<ShortString>,
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
    /// Bytes its texts hold on the heap (long ones only: see [`ShortString`]).
    pub fn heap_bytes(&self) -> usize {
        let texts: [Option<&ShortString>; 6] = match self {
            Operation::Http(http) => [
                Some(&http.path),
                http.method.original(),
                None,
                None,
                None,
                None,
            ],
            Operation::Rpc(rpc) => [
                Some(&rpc.http.path),
                Some(&rpc.service),
                Some(&rpc.method),
                rpc.http.method.original(),
                None,
                None,
            ],
            Operation::Redis(redis) => [
                Some(&redis.command),
                Some(&redis.query),
                redis.database.as_ref(),
                redis.error.as_ref(),
                None,
                None,
            ],
            Operation::Kafka(kafka) => [
                kafka.topic.as_ref(),
                kafka.client_id.as_ref(),
                kafka.error.as_ref(),
                None,
                None,
                None,
            ],
            Operation::Sql(sql) => [
                sql.collection.as_ref(),
                Some(&sql.query),
                sql.namespace.as_ref(),
                sql.error_code.as_ref(),
                None,
                None,
            ],
        };
        texts
            .into_iter()
            .flatten()
            .map(ShortString::heap_bytes)
            .sum()
    }

    /// The HTTP request of an HTTP exchange or of the call it carried.
    pub fn http(&self) -> Option<&HttpOperation> {
        match self {
            Operation::Http(http) => Some(http),
            Operation::Rpc(rpc) => Some(&rpc.http),
            Operation::Redis(_) | Operation::Kafka(_) | Operation::Sql(_) => None,
        }
    }
}
