//! MySQL / MariaDB client/server protocol: bytes to packets, commands and answers.
mod parse;
#[cfg(test)]
mod tests;
mod types;
pub use parse::{
    lenenc_int, parse_command, parse_greeting, parse_login, parse_message, parse_packet,
    parse_prepare_ok, parse_response, payload_len, Outcome, ResponseFraming, Step, HEADER_LEN,
    MAX_PACKET_PAYLOAD, MAX_PAYLOAD,
};
pub use types::{
    status, Capabilities, Command, ErrPacket, Greeting, InvalidReason, Login, Message, OkPacket,
    Packet, Parse, PrepareOk, Response,
};
