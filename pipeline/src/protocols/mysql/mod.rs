//! MySQL / MariaDB client/server protocol: bytes to packets, commands and answers,
//! stitched into one span per statement run.
mod parse;
pub mod stitch;
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

use super::sql::{decode, summarize, Dialect};
use super::{Detection, FirstBytes, Protocol, Stitcher};
use crate::model::Direction;

pub struct MySqlProtocol;

pub static MYSQL: MySqlProtocol = MySqlProtocol;

/// The greeting's protocol version byte.
const GREETING: u8 = 10;

impl Protocol for MySqlProtocol {
    fn name(&self) -> &'static str {
        "MySQL"
    }

    /// The server speaks first: its greeting names the client as the other side. A
    /// connection that began before tracing is recognised by a command carrying a
    /// statement (COM_QUERY or COM_STMT_PREPARE with SQL text, COM_STMT_EXECUTE with
    /// a plausible header), or by answers first.
    fn detect(&self, first: &FirstBytes<'_>) -> Detection {
        let packet = match parse_packet(first.data) {
            Parse::Parsed(packet) => packet,
            Parse::NeedMore if first.data.len() < HEADER_LEN => return Detection::NeedMore,
            // A header announcing a packet longer than the first bytes: only a greeting
            // or a command packet may be waited for.
            Parse::NeedMore => {
                let seq = first.data.get(3).copied();
                let first_byte = first.data.get(HEADER_LEN).copied();
                return match (seq, first_byte) {
                    (Some(0), Some(GREETING | 0x03 | 0x16)) => Detection::NeedMore,
                    _ => Detection::No,
                };
            }
            Parse::Invalid(_) => return Detection::No,
        };
        let opposite = match first.direction {
            Direction::Ingress => Direction::Egress,
            Direction::Egress => Direction::Ingress,
        };
        if packet.seq != 0 {
            return match parse_response(packet.payload) {
                Ok(_) if packet.seq == 1 => Detection::Later,
                _ => Detection::No,
            };
        }
        if packet.payload.first() == Some(&GREETING) && parse_greeting(packet.payload).is_ok() {
            return Detection::Yes {
                request_dir: opposite,
            };
        }
        let statement = match parse_command(packet.payload) {
            Ok(Command::Query { text } | Command::StmtPrepare { text }) => {
                summarize(&decode(text), Dialect::MySql).operation.is_some()
            }
            // Statement id, flags (cursor type, MariaDB's bulk bits), iteration count 1.
            Ok(Command::StmtExecute { .. }) => {
                packet.payload.len() >= 10
                    && packet.payload[5] & 0x70 == 0
                    && packet.payload[6..10] == [1, 0, 0, 0]
            }
            _ => false,
        };
        if statement {
            Detection::Yes {
                request_dir: first.direction,
            }
        } else {
            Detection::No
        }
    }

    fn open(&self, request_dir: Direction) -> Box<dyn Stitcher> {
        Box::new(stitch::Stitcher::new(request_dir))
    }
}
