//! PostgreSQL wire protocol v3: bytes to startup, frontend and backend messages.
mod parse;
#[cfg(test)]
mod tests;
mod types;
pub use parse::{
    decode_backend, decode_frontend, parse_backend, parse_encryption_answer, parse_frontend,
    parse_header, parse_startup, BACKEND_TAGS, FRONTEND_TAGS, HEADER_LEN, MAX_MESSAGE, MAX_STARTUP,
};
pub use types::{
    Backend, Fields, Frontend, Header, InvalidReason, Message, Params, Parse, Startup, Target,
};
