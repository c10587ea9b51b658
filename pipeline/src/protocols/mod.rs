//! Application protocols: bytes of one connection to requests and responses.

pub mod http1;
pub mod http2;
pub mod mysql;
pub mod postgres;
pub mod sql;
