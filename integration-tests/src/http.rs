//! A deliberately small HTTP/1.1 client over `TcpStream`, so each test decides
//! exactly which connection a request goes over and what bytes it carries.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use crate::spans::Window;

/// Generous: 50 connections at once to a small server may wait for SYN retries.
const IO_TIMEOUT: Duration = Duration::from_secs(30);

/// A request as it goes on the wire; `Host` and, with a body,
/// `Content-Length` are added when it is sent.
#[derive(Clone, Debug)]
pub struct Request {
    pub method: String,
    pub path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Request {
    pub fn get(path: &str) -> Request {
        Request {
            method: "GET".into(),
            path: path.into(),
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    pub fn post(path: &str, content_type: &str, body: Vec<u8>) -> Request {
        Request {
            method: "POST".into(),
            path: path.into(),
            headers: vec![("Content-Type".into(), content_type.into())],
            body,
        }
    }

    pub fn header(mut self, name: &str, value: &str) -> Request {
        self.headers.push((name.into(), value.into()));
        self
    }

    fn to_bytes(&self) -> Vec<u8> {
        let mut head = format!(
            "{} {} HTTP/1.1\r\nHost: 127.0.0.1\r\n",
            self.method, self.path
        );
        for (name, value) in &self.headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        if self.method == "POST" || !self.body.is_empty() {
            head.push_str(&format!("Content-Length: {}\r\n", self.body.len()));
        }
        head.push_str("\r\n");
        let mut bytes = head.into_bytes();
        bytes.extend_from_slice(&self.body);
        bytes
    }

    /// `GET /path`, for messages.
    pub fn line(&self) -> String {
        format!("{} {}", self.method, self.path)
    }
}

#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// The body came with `Transfer-Encoding: chunked`.
    pub chunked: bool,
    /// The server said it will close the connection after this response.
    pub closes_connection: bool,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// One client TCP connection to a server on 127.0.0.1. Dropping it closes it.
pub struct Connection {
    reader: BufReader<TcpStream>,
}

impl Connection {
    pub fn open(port: u16) -> Connection {
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let stream = TcpStream::connect_timeout(&addr, IO_TIMEOUT)
            .unwrap_or_else(|e| panic!("connect to {addr}: {e}"));
        stream
            .set_read_timeout(Some(IO_TIMEOUT))
            .expect("set read timeout");
        stream
            .set_write_timeout(Some(IO_TIMEOUT))
            .expect("set write timeout");
        Connection {
            reader: BufReader::new(stream),
        }
    }

    /// Sends `request` and reads its whole response, returning the
    /// wall-clock window from before the first byte was sent to after the
    /// last byte was read. Panics on any I/O or framing error.
    pub fn round_trip(&mut self, request: &Request) -> (Response, Window) {
        let (result, window) = Window::around(|| {
            self.reader.get_mut().write_all(&request.to_bytes())?;
            read_response(&mut self.reader)
        });
        let response = result.unwrap_or_else(|e| panic!("{}: {e}", request.line()));
        (response, window)
    }
}

/// Opens a connection, makes one request, and closes the connection.
pub fn request_on_fresh_connection(port: u16, request: &Request) -> (Response, Window) {
    Connection::open(port).round_trip(request)
}

fn invalid(message: String) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, message)
}

fn read_line(reader: &mut impl BufRead) -> std::io::Result<String> {
    let mut line = String::new();
    if reader.read_line(&mut line)? == 0 {
        return Err(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "the server closed the connection",
        ));
    }
    Ok(line.trim_end_matches(['\r', '\n']).to_string())
}

fn read_response(reader: &mut impl BufRead) -> std::io::Result<Response> {
    let status_line = read_line(reader)?;
    let mut parts = status_line.splitn(3, ' ');
    let version = parts.next().unwrap_or_default().to_string();
    let status: u16 = parts
        .next()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| invalid(format!("bad status line {status_line:?}")))?;
    let mut headers = Vec::new();
    loop {
        let line = read_line(reader)?;
        if line.is_empty() {
            break;
        }
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| invalid(format!("bad header line {line:?}")))?;
        headers.push((name.trim().to_string(), value.trim().to_string()));
    }
    let mut response = Response {
        status,
        headers,
        body: Vec::new(),
        chunked: false,
        closes_connection: false,
    };
    let connection = response
        .header("Connection")
        .unwrap_or("")
        .to_ascii_lowercase();
    response.closes_connection =
        connection == "close" || (version == "HTTP/1.0" && connection != "keep-alive");
    let transfer_encoding = response.header("Transfer-Encoding").unwrap_or("");
    if transfer_encoding.eq_ignore_ascii_case("chunked") {
        response.chunked = true;
        response.body = read_chunked_body(reader)?;
    } else if let Some(length) = response.header("Content-Length") {
        let length: usize = length
            .parse()
            .map_err(|_| invalid(format!("bad Content-Length {length:?}")))?;
        response.body = vec![0; length];
        reader.read_exact(&mut response.body)?;
    } else if !(status == 204 || status == 304) {
        // No length: the body runs to the end of the connection.
        reader.read_to_end(&mut response.body)?;
        response.closes_connection = true;
    }
    Ok(response)
}

fn read_chunked_body(reader: &mut impl BufRead) -> std::io::Result<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let size_line = read_line(reader)?;
        let size_hex = size_line.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size_hex, 16)
            .map_err(|_| invalid(format!("bad chunk size line {size_line:?}")))?;
        if size == 0 {
            // Trailers, if any, end with an empty line.
            while !read_line(reader)?.is_empty() {}
            return Ok(body);
        }
        let start = body.len();
        body.resize(start + size, 0);
        reader.read_exact(&mut body[start..])?;
        if !read_line(reader)?.is_empty() {
            return Err(invalid("chunk data not followed by CRLF".into()));
        }
    }
}
