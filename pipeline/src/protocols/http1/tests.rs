use super::parse::{MAX_CHUNK_LINE, MAX_HEAD, MAX_LINE, MAX_TRAILERS};
use super::types::{ChunkProgress, RequestHead, RequestLine, ResponseHead, StatusLine};
use super::*;
use proptest::prelude::*;

const TRACEPARENT: &str = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
const LOCAL_HOST: Option<&str> = Some("127.0.0.1:18090");

struct RequestCapture {
    name: &'static str,
    bytes: &'static [u8],
    head: RequestHead<'static>,
}

struct ResponseCapture {
    name: &'static str,
    bytes: &'static [u8],
    request_method: Method,
    head: ResponseHead,
}

fn request(
    method: Method,
    target: &'static str,
    line_len: usize,
    head_len: usize,
    body: BodyFraming,
) -> RequestHead<'static> {
    RequestHead {
        line: RequestLine {
            method: method.as_str(),
            target,
            minor_version: 1,
            len: line_len,
        },
        head_len,
        body,
        traceparent: None,
        host: LOCAL_HOST,
        user_agent: None,
        connection_close: false,
    }
}

fn response(
    status: u16,
    minor_version: u8,
    line_len: usize,
    head_len: usize,
    body: BodyFraming,
) -> ResponseHead {
    ResponseHead {
        line: StatusLine {
            status,
            minor_version,
            len: line_len,
        },
        head_len,
        body,
        connection_close: minor_version == 0,
    }
}

/// The `User-Agent` of the curl captures.
const CURL: &str = "curl/7.88.1";

fn request_captures() -> Vec<RequestCapture> {
    use BodyFraming::*;
    vec![
        RequestCapture {
            name: "curl_get",
            bytes: include_bytes!("testdata/curl_get.bin"),
            head: RequestHead {
                traceparent: Some(TRACEPARENT),
                user_agent: Some(CURL),
                ..request(Method::Get, "/index.txt?lang=en&x=1", 37, 170, Empty)
            },
        },
        RequestCapture {
            name: "curl_head",
            bytes: include_bytes!("testdata/curl_head.bin"),
            head: RequestHead {
                user_agent: Some(CURL),
                ..request(Method::Head, "/index.txt", 26, 89, Empty)
            },
        },
        RequestCapture {
            name: "curl_post",
            bytes: include_bytes!("testdata/curl_post.bin"),
            head: RequestHead {
                user_agent: Some(CURL),
                ..request(Method::Post, "/api/items", 26, 141, Length(22))
            },
        },
        RequestCapture {
            name: "python_urllib_get",
            bytes: include_bytes!("testdata/python_urllib_get.bin"),
            head: RequestHead {
                connection_close: true,
                user_agent: Some("Python-urllib/3.11"),
                ..request(Method::Get, "/index.txt", 25, 128, Empty)
            },
        },
        RequestCapture {
            name: "node_get",
            bytes: include_bytes!("testdata/node_get.bin"),
            head: request(Method::Get, "/users/42?verbose=true", 37, 86, Empty),
        },
        RequestCapture {
            name: "node_post_chunked",
            bytes: include_bytes!("testdata/node_post_chunked.bin"),
            head: request(Method::Post, "/upload", 23, 126, Chunked),
        },
        RequestCapture {
            name: "go_get",
            bytes: include_bytes!("testdata/go_get.bin"),
            head: RequestHead {
                user_agent: Some("Go-http-client/1.1"),
                ..request(Method::Get, "/fixed", 21, 101, Empty)
            },
        },
    ]
}

fn response_captures() -> Vec<ResponseCapture> {
    use BodyFraming::*;
    vec![
        ResponseCapture {
            name: "python_http_server_response",
            bytes: include_bytes!("testdata/python_http_server_response.bin"),
            request_method: Method::Get,
            head: response(200, 0, 17, 186, Length(30)),
        },
        ResponseCapture {
            name: "python_http_server_head_response",
            bytes: include_bytes!("testdata/python_http_server_head_response.bin"),
            request_method: Method::Head,
            head: response(200, 0, 17, 186, Empty),
        },
        ResponseCapture {
            name: "python_http_server_304_response",
            bytes: include_bytes!("testdata/python_http_server_304_response.bin"),
            request_method: Method::Get,
            head: response(304, 0, 27, 104, Empty),
        },
        ResponseCapture {
            name: "node_response",
            bytes: include_bytes!("testdata/node_response.bin"),
            request_method: Method::Get,
            head: response(200, 1, 17, 149, Length(16)),
        },
        ResponseCapture {
            name: "node_chunked_response",
            bytes: include_bytes!("testdata/node_chunked_response.bin"),
            request_method: Method::Get,
            head: response(200, 1, 17, 157, Chunked),
        },
        ResponseCapture {
            name: "go_response",
            bytes: include_bytes!("testdata/go_response.bin"),
            request_method: Method::Get,
            head: response(200, 1, 17, 117, Length(14)),
        },
        ResponseCapture {
            name: "go_chunked_response",
            bytes: include_bytes!("testdata/go_chunked_response.bin"),
            request_method: Method::Get,
            head: response(200, 1, 17, 125, Chunked),
        },
        ResponseCapture {
            name: "java_fixed_response",
            bytes: include_bytes!("testdata/java_fixed_response.bin"),
            request_method: Method::Get,
            head: response(200, 1, 17, 102, Length(16)),
        },
        ResponseCapture {
            name: "java_chunked_response",
            bytes: include_bytes!("testdata/java_chunked_response.bin"),
            request_method: Method::Get,
            head: response(200, 1, 17, 110, Chunked),
        },
    ]
}

/// Chunked bodies of the captures, with the head cut off.
fn chunked_bodies() -> Vec<(&'static str, &'static [u8])> {
    let requests = request_captures()
        .into_iter()
        .filter(|c| c.head.body == BodyFraming::Chunked)
        .map(|c| (c.name, c.bytes.get(c.head.head_len..).unwrap_or_default()));
    let responses = response_captures()
        .into_iter()
        .filter(|c| c.head.body == BodyFraming::Chunked)
        .map(|c| (c.name, c.bytes.get(c.head.head_len..).unwrap_or_default()));
    requests.chain(responses).collect()
}

/// Feeds `parts` in order, as the assembler would, and adds up what was consumed.
fn feed_all(decoder: &mut ChunkedDecoder, parts: &[&[u8]]) -> Result<ChunkProgress, InvalidReason> {
    let mut consumed = 0;
    let mut done = false;
    for part in parts {
        let progress = decoder.feed(part)?;
        consumed += progress.consumed;
        done = progress.done;
    }
    Ok(ChunkProgress { consumed, done })
}

#[test]
fn captured_requests_parse_exactly() {
    for capture in request_captures() {
        let head = capture.head;
        assert_eq!(
            parse_request_head(capture.bytes),
            Parse::Parsed(head),
            "{}",
            capture.name
        );
        assert_eq!(
            parse_request_line(capture.bytes),
            Parse::Parsed(head.line),
            "{}",
            capture.name
        );
        assert!(looks_like_request(capture.bytes), "{}", capture.name);
        assert!(!looks_like_response(capture.bytes), "{}", capture.name);
        let body_len = (capture.bytes.len() - head.head_len) as u64;
        match head.body {
            BodyFraming::Length(n) => assert_eq!(n, body_len, "{}", capture.name),
            BodyFraming::Empty => assert_eq!(body_len, 0, "{}", capture.name),
            _ => {}
        }
    }
}

#[test]
fn captured_responses_parse_exactly() {
    for capture in response_captures() {
        let head = capture.head;
        assert_eq!(
            parse_response_head(capture.bytes, Some(capture.request_method)),
            Parse::Parsed(head),
            "{}",
            capture.name
        );
        assert_eq!(
            parse_status_line(capture.bytes),
            Parse::Parsed(head.line),
            "{}",
            capture.name
        );
        assert!(looks_like_response(capture.bytes), "{}", capture.name);
        assert!(!looks_like_request(capture.bytes), "{}", capture.name);
        let body_len = (capture.bytes.len() - head.head_len) as u64;
        match head.body {
            BodyFraming::Length(n) => assert_eq!(n, body_len, "{}", capture.name),
            BodyFraming::Empty => assert_eq!(body_len, 0, "{}", capture.name),
            _ => {}
        }
    }
}

#[test]
fn captured_heads_without_request_method() {
    for capture in response_captures() {
        let want = match capture.request_method {
            // Without knowing it answered HEAD, the response's Content-Length looks like a body.
            Method::Head => BodyFraming::Length(30),
            _ => capture.head.body,
        };
        assert!(
            matches!(parse_response_head(capture.bytes, None), Parse::Parsed(h) if h.body == want),
            "{}",
            capture.name
        );
    }
}

#[test]
fn cut_off_captured_requests_need_more() {
    for capture in request_captures() {
        let head = capture.head;
        for k in 0..capture.bytes.len() {
            let prefix = &capture.bytes[..k];
            let want_head = if k < head.head_len {
                Parse::NeedMore
            } else {
                Parse::Parsed(head)
            };
            assert_eq!(
                parse_request_head(prefix),
                want_head,
                "{} k={k}",
                capture.name
            );
            let want_line = if k < head.line.len {
                Parse::NeedMore
            } else {
                Parse::Parsed(head.line)
            };
            assert_eq!(
                parse_request_line(prefix),
                want_line,
                "{} k={k}",
                capture.name
            );
            let method_len = head.line.method.len();
            assert_eq!(
                looks_like_request(prefix),
                k > method_len,
                "{} k={k}",
                capture.name
            );
        }
    }
}

#[test]
fn cut_off_captured_responses_need_more() {
    for capture in response_captures() {
        let head = capture.head;
        for k in 0..capture.bytes.len() {
            let prefix = &capture.bytes[..k];
            let want_head = if k < head.head_len {
                Parse::NeedMore
            } else {
                Parse::Parsed(head)
            };
            assert_eq!(
                parse_response_head(prefix, Some(capture.request_method)),
                want_head,
                "{} k={k}",
                capture.name
            );
            let want_line = if k < head.line.len {
                Parse::NeedMore
            } else {
                Parse::Parsed(head.line)
            };
            assert_eq!(
                parse_status_line(prefix),
                want_line,
                "{} k={k}",
                capture.name
            );
            assert_eq!(
                looks_like_response(prefix),
                k >= 9,
                "{} k={k}",
                capture.name
            );
        }
    }
}

#[test]
fn captured_chunked_bodies_decode_whole_and_byte_by_byte() {
    let bodies = chunked_bodies();
    assert_eq!(bodies.len(), 4);
    for (name, body) in bodies {
        let done = ChunkProgress {
            consumed: body.len(),
            done: true,
        };
        assert_eq!(ChunkedDecoder::default().feed(body), Ok(done), "{name}");

        let bytes: Vec<&[u8]> = body.chunks(1).collect();
        let mut decoder = ChunkedDecoder::default();
        for (i, byte) in bytes.iter().enumerate() {
            let progress = decoder
                .feed(byte)
                .unwrap_or_else(|e| panic!("{name}: {e:?}"));
            assert_eq!(progress.consumed, 1, "{name} at {i}");
            assert_eq!(progress.done, i + 1 == body.len(), "{name} at {i}");
        }
        assert_eq!(
            decoder.feed(b""),
            Ok(ChunkProgress {
                consumed: 0,
                done: true
            })
        );
    }
}

#[test]
fn captured_chunked_bodies_split_at_every_position() {
    for (name, body) in chunked_bodies() {
        for split in 0..=body.len() {
            let (a, b) = body.split_at(split);
            let mut decoder = ChunkedDecoder::default();
            let first = decoder.feed(a);
            assert_eq!(
                first,
                Ok(ChunkProgress {
                    consumed: a.len(),
                    done: b.is_empty(),
                }),
                "{name} split={split}"
            );
            assert_eq!(
                feed_all(&mut decoder, &[b]),
                Ok(ChunkProgress {
                    consumed: b.len(),
                    done: true,
                }),
                "{name} split={split}"
            );
        }
    }
}

#[test]
fn chunked_body_leaves_pipelined_bytes() {
    let next = include_bytes!("testdata/go_response.bin");
    for (name, body) in chunked_bodies() {
        let mut stream = body.to_vec();
        stream.extend_from_slice(next);
        let mut decoder = ChunkedDecoder::default();
        let progress = decoder.feed(&stream).unwrap();
        assert_eq!(
            progress,
            ChunkProgress {
                consumed: body.len(),
                done: true,
            },
            "{name}"
        );
        let rest = &stream[progress.consumed..];
        assert!(
            matches!(parse_response_head(rest, Some(Method::Get)), Parse::Parsed(h) if h.line.status == 200),
            "{name}"
        );
        // Once done, nothing more is taken.
        assert_eq!(
            decoder.feed(rest),
            Ok(ChunkProgress {
                consumed: 0,
                done: true,
            })
        );
    }
}

#[test]
fn pipelined_captured_requests_parse_one_after_another() {
    let captures = request_captures();
    let stream: Vec<u8> = captures
        .iter()
        .flat_map(|c| c.bytes.iter().copied())
        .collect();
    let mut rest = &stream[..];
    for capture in &captures {
        let head = match parse_request_head(rest) {
            Parse::Parsed(head) => head,
            other => panic!("{}: {other:?}", capture.name),
        };
        assert_eq!(head.line.target, capture.head.line.target);
        rest = &rest[head.head_len..];
        rest = match head.body {
            BodyFraming::Length(n) => &rest[n as usize..],
            BodyFraming::Chunked => {
                let progress = ChunkedDecoder::default().feed(rest).unwrap();
                assert!(progress.done);
                &rest[progress.consumed..]
            }
            _ => rest,
        };
    }
    assert!(rest.is_empty());
}

#[test]
fn skip_uncaptured_inside_chunk_data() {
    // Go's body: "f\r\nfirst go chunk\n\r\n2d\r\n...", the first chunk holds 15 bytes.
    let body = &include_bytes!("testdata/go_chunked_response.bin")[125..];
    let mut decoder = ChunkedDecoder::default();
    assert_eq!(decoder.feed(&body[..6]).unwrap().consumed, 6);
    assert!(decoder.skip_uncaptured(0));
    let mut crossing = decoder.clone();
    assert!(!crossing.skip_uncaptured(13), "12 data bytes left, not 13");
    // A refused skip leaves the state alone.
    assert_eq!(crossing.feed(&body[6..]).unwrap().consumed, body.len() - 6);
    assert!(decoder.skip_uncaptured(10));
    assert!(decoder.skip_uncaptured(2));
    assert!(
        !decoder.skip_uncaptured(1),
        "the CRLF after the data is framing"
    );
    assert_eq!(
        decoder.feed(&body[18..]),
        Ok(ChunkProgress {
            consumed: body.len() - 18,
            done: true,
        })
    );
    assert!(decoder.skip_uncaptured(0));
    assert!(
        !decoder.skip_uncaptured(1),
        "past the end is the next message"
    );
}

#[test]
fn skip_uncaptured_outside_data_loses_sync() {
    let mut decoder = ChunkedDecoder::default();
    assert!(!decoder.skip_uncaptured(1), "the size line is not captured");
    decoder.feed(b"1").unwrap();
    assert!(!decoder.skip_uncaptured(1), "mid size line");
    decoder.feed(b"0\r\n").unwrap();
    assert!(decoder.skip_uncaptured(16));
    assert!(!decoder.skip_uncaptured(1));
    assert_eq!(
        decoder.feed(b"\r\n0\r\nx-trailer: 1\r\n\r\nnext"),
        Ok(ChunkProgress {
            consumed: 21,
            done: true,
        })
    );
}

#[test]
fn chunked_extensions_trailers_and_bare_lf() {
    let body = b"A;name=\"quoted; value\"\r\n0123456789\r\n1 ; x\r\nz\r\n0;last\nTrailer-A: 1\r\nb: 2\n\r\nNEXT";
    let end = body.len() - 4;
    for split in 0..=body.len() {
        let (a, b) = body.split_at(split);
        let mut decoder = ChunkedDecoder::default();
        assert_eq!(
            feed_all(&mut decoder, &[a, b]),
            Ok(ChunkProgress {
                consumed: end,
                done: true,
            }),
            "split={split}"
        );
    }
}

#[test]
fn chunk_size_limits() {
    let max = b"ffffffffffffffff\r\n";
    let mut decoder = ChunkedDecoder::default();
    assert_eq!(decoder.feed(max).map(|p| p.consumed), Ok(max.len()));
    assert!(decoder.skip_uncaptured(u64::MAX));
    assert_eq!(
        ChunkedDecoder::default().feed(b"10000000000000000\r\n"),
        Err(InvalidReason::BadChunk)
    );
    let mut leading_zeros = vec![b'0'; 100];
    leading_zeros.extend_from_slice(b"1\r\nx\r\n0\r\n\r\n");
    assert_eq!(
        ChunkedDecoder::default().feed(&leading_zeros),
        Ok(ChunkProgress {
            consumed: leading_zeros.len(),
            done: true,
        })
    );
    let mut long_ext = b"1;".to_vec();
    long_ext.resize(MAX_CHUNK_LINE - 2, b'x');
    long_ext.extend_from_slice(b"\r\n");
    assert_eq!(
        ChunkedDecoder::default()
            .feed(&long_ext)
            .map(|p| p.consumed),
        Ok(MAX_CHUNK_LINE)
    );
    long_ext.insert(3, b'x');
    assert_eq!(
        ChunkedDecoder::default().feed(&long_ext),
        Err(InvalidReason::BadChunk)
    );
    let mut long_trailers = b"0\r\n".to_vec();
    while long_trailers.len() < MAX_TRAILERS + 3 {
        long_trailers.extend_from_slice(b"x-filler: 0123456789\r\n");
    }
    assert_eq!(
        ChunkedDecoder::default().feed(&long_trailers),
        Err(InvalidReason::BadChunk)
    );
}

#[test]
fn bad_chunks() {
    let cases: &[&[u8]] = &[
        b"\r\n",
        b";ext\r\n",
        b"g\r\n",
        b"-1\r\n",
        b" 1\r\n",
        b"1 x\r\n",
        b"1\rx",
        b"1\r\nab",
        b"1\r\na\rx",
        b"1;a\x00b\r\n",
        b"0\r\n\rx",
        b"0\r\nx\x01\r\n",
        b"0\r\nx: y\rz",
    ];
    for case in cases {
        assert_eq!(
            ChunkedDecoder::default().feed(case),
            Err(InvalidReason::BadChunk),
            "{:?}",
            String::from_utf8_lossy(case)
        );
    }
}

#[test]
fn bad_request_lines() {
    use InvalidReason::*;
    let cases: &[(&[u8], InvalidReason)] = &[
        (b"G@T / HTTP/1.1\r\n", NotHttp),
        (b"GET, / HTTP/1.1\r\n", NotHttp),
        (b" GET / HTTP/1.1\r\n", NotHttp),
        (b"PRI * HTTP/2.0\r\n", BadRequestLine),
        (b"\r\nGET / HTTP/1.1\r\n", NotHttp),
        (b"\x16\x03\x01\x02\x00\x01", NotHttp),
        (b"GET\r\n", NotHttp),
        (b"GET  / HTTP/1.1\r\n", BadRequestLine),
        (b"GET / HTTP/1.1 \r\n", BadRequestLine),
        (b"GET /a\tb HTTP/1.1\r\n", BadRequestLine),
        (b"GET /\xc3\xa9 HTTP/1.1\r\n", BadRequestLine),
        (b"GET /\x7f HTTP/1.1\r\n", BadRequestLine),
        (b"GET / HTTP/2.0\r\n", BadRequestLine),
        (b"GET / HTTP/1.2\r\n", BadRequestLine),
        (b"GET / http/1.1\r\n", BadRequestLine),
        (b"GET / HTTP/1.1x\r\n", BadRequestLine),
        (b"GET / HTTP/1.1\rx\n", BadRequestLine),
        (b"GET / HTTP/1.1\r\r\n", BadRequestLine),
        (b"GET /\r\n", BadRequestLine),
        (b"GET / HTTP/1.\r\n", BadRequestLine),
    ];
    for (line, reason) in cases {
        let name = String::from_utf8_lossy(line);
        assert_eq!(
            parse_request_line(line),
            Parse::Invalid(*reason),
            "{name:?}"
        );
        assert_eq!(
            parse_request_head(line),
            Parse::Invalid(*reason),
            "{name:?}"
        );
    }
    // Detected before the line ends.
    assert_eq!(parse_request_line(b"G\x00T"), Parse::Invalid(NotHttp));
    let long_token = [b'X'; MAX_METHOD_LEN + 1];
    assert_eq!(parse_request_line(&long_token), Parse::Invalid(NotHttp));
    assert_eq!(
        parse_request_line(&long_token[..MAX_METHOD_LEN]),
        Parse::NeedMore
    );
    assert_eq!(
        parse_request_line(b"GET /a b"),
        Parse::Invalid(BadRequestLine)
    );
    assert_eq!(
        parse_request_line(b"GET / HTTP/1.1x"),
        Parse::Invalid(BadRequestLine)
    );
}

#[test]
fn bad_status_lines() {
    use InvalidReason::*;
    let cases: &[(&[u8], InvalidReason)] = &[
        (b"HTTP/2 200 OK\r\n", NotHttp),
        (b"http/1.1 200 OK\r\n", NotHttp),
        (b"ICY 200 OK\r\n", NotHttp),
        (b"GET / HTTP/1.1\r\n", NotHttp),
        (b"HTTP/1.2 200 OK\r\n", BadStatusLine),
        (b"HTTP/1.1  200 OK\r\n", BadStatusLine),
        (b"HTTP/1.1 20 OK\r\n", BadStatusLine),
        (b"HTTP/1.1 2000 OK\r\n", BadStatusLine),
        (b"HTTP/1.1 099 Low\r\n", BadStatusLine),
        (b"HTTP/1.1 2x0 OK\r\n", BadStatusLine),
        (b"HTTP/1.1 200OK\r\n", BadStatusLine),
        (b"HTTP/1.1 200 O\x00K\r\n", BadStatusLine),
        (b"HTTP/1.1 200 OK\rx\n", BadStatusLine),
        (b"HTTP/1.1\r\n", BadStatusLine),
    ];
    for (line, reason) in cases {
        let name = String::from_utf8_lossy(line);
        assert_eq!(parse_status_line(line), Parse::Invalid(*reason), "{name:?}");
        assert_eq!(
            parse_response_head(line, None),
            Parse::Invalid(*reason),
            "{name:?}"
        );
    }
}

#[test]
fn unusual_but_valid_status_lines() {
    let cases: &[(&[u8], u16, usize)] = &[
        (b"HTTP/1.1 200\r\n", 200, 14),
        (b"HTTP/1.1 200 \r\n", 200, 15),
        (b"HTTP/1.1 200 OK\n", 200, 16),
        (
            b"HTTP/1.0 599 Custom \xe2\x9c\x93 reason\twith tab\r\n",
            599,
            41,
        ),
        (b"HTTP/1.1 999 x\r\nnext", 999, 16),
    ];
    for (line, status, len) in cases {
        let name = String::from_utf8_lossy(line);
        match parse_status_line(line) {
            Parse::Parsed(parsed) => {
                assert_eq!((parsed.status, parsed.len), (*status, *len), "{name:?}")
            }
            other => panic!("{name:?}: {other:?}"),
        }
    }
}

#[test]
fn bad_headers_and_framing() {
    use InvalidReason::*;
    let cases: &[(&[u8], InvalidReason)] = &[
        (b"no colon here\r\n", BadHeader),
        (b": empty name\r\n", BadHeader),
        (b"Bad Name: x\r\n", BadHeader),
        (b"Name : space before colon\r\n", BadHeader),
        (b"A: 1\r\n folded: continuation\r\n", BadHeader),
        (b"A: ctl\x01char\r\n", BadHeader),
        (b"A: del\x7f\r\n", BadHeader),
        (b"A: cr\rinside\r\n", BadHeader),
        (b"A: two cr\r\r\n", BadHeader),
        (b"N\xc3\xa4me: x\r\n", BadHeader),
        (b"Content-Length: abc\r\n", BadContentLength),
        (b"Content-Length: -1\r\n", BadContentLength),
        (b"Content-Length: +1\r\n", BadContentLength),
        (b"Content-Length: 1 2\r\n", BadContentLength),
        (b"Content-Length:\r\n", BadContentLength),
        (b"Content-Length: ,\r\n", BadContentLength),
        (b"Content-Length: 0x10\r\n", BadContentLength),
        (
            b"Content-Length: 18446744073709551616\r\n",
            BadContentLength,
        ),
        (
            b"Content-Length: 1\r\nContent-Length: 2\r\n",
            ConflictingFraming,
        ),
        (b"Content-Length: 1, 2\r\n", ConflictingFraming),
        (
            b"content-length: 3\r\nCONTENT-LENGTH: 03\r\nContent-Length: 4\r\n",
            ConflictingFraming,
        ),
    ];
    for (fields, reason) in cases {
        let name = String::from_utf8_lossy(fields);
        let mut request = b"POST /x HTTP/1.1\r\nHost: h\r\n".to_vec();
        request.extend_from_slice(fields);
        request.extend_from_slice(b"\r\n");
        assert_eq!(
            parse_request_head(&request),
            Parse::Invalid(*reason),
            "{name:?}"
        );
        let mut response = b"HTTP/1.1 200 OK\r\n".to_vec();
        response.extend_from_slice(fields);
        response.extend_from_slice(b"\r\n");
        assert_eq!(
            parse_response_head(&response, Some(Method::Post)),
            Parse::Invalid(*reason),
            "{name:?}"
        );
    }
    // A broken header line is reported before the head is complete.
    assert_eq!(
        parse_request_head(b"GET / HTTP/1.1\r\nno colon\r\nHost: x"),
        Parse::Invalid(BadHeader)
    );
}

fn request_body(fields: &str) -> Parse<BodyFraming> {
    let bytes = format!("POST / HTTP/1.1\r\n{fields}\r\n");
    match parse_request_head(bytes.as_bytes()) {
        Parse::Parsed(head) => Parse::Parsed(head.body),
        Parse::NeedMore => Parse::NeedMore,
        Parse::Invalid(reason) => Parse::Invalid(reason),
    }
}

fn response_body(status: u16, method: Option<Method>, fields: &str) -> Parse<BodyFraming> {
    let bytes = format!("HTTP/1.1 {status} X\r\n{fields}\r\n");
    match parse_response_head(bytes.as_bytes(), method) {
        Parse::Parsed(head) => Parse::Parsed(head.body),
        Parse::NeedMore => Parse::NeedMore,
        Parse::Invalid(reason) => Parse::Invalid(reason),
    }
}

#[test]
fn request_framing() {
    use BodyFraming::*;
    let ok = Parse::Parsed;
    assert_eq!(request_body(""), ok(Empty));
    assert_eq!(request_body("Content-Length: 0\r\n"), ok(Length(0)));
    assert_eq!(request_body("content-length:\t 42 \t\r\n"), ok(Length(42)));
    assert_eq!(
        request_body("Content-Length: 42\r\nContent-Length: 42\r\n"),
        ok(Length(42))
    );
    assert_eq!(request_body("Content-Length: 42, 42,\r\n"), ok(Length(42)));
    assert_eq!(
        request_body("Content-Length: 18446744073709551615\r\n"),
        ok(Length(u64::MAX))
    );
    assert_eq!(request_body("Transfer-Encoding: chunked\r\n"), ok(Chunked));
    assert_eq!(request_body("transfer-encoding: CHUNKED\r\n"), ok(Chunked));
    assert_eq!(
        request_body("Transfer-Encoding: gzip, chunked\r\n"),
        ok(Chunked)
    );
    assert_eq!(
        request_body("Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n"),
        ok(Chunked)
    );
    assert_eq!(
        request_body("Content-Length: 10\r\nTransfer-Encoding: chunked\r\n"),
        ok(Chunked)
    );
    assert_eq!(
        request_body("Content-Length: 1\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n"),
        ok(Chunked),
        "Transfer-Encoding overrides Content-Length"
    );
    let conflicting = Parse::Invalid(InvalidReason::ConflictingFraming);
    assert_eq!(request_body("Transfer-Encoding: gzip\r\n"), conflicting);
    assert_eq!(
        request_body("Transfer-Encoding: chunked, gzip\r\nContent-Length: 3\r\n"),
        conflicting
    );
    assert_eq!(request_body("Transfer-Encoding: chunkedx\r\n"), conflicting);
}

#[test]
fn response_framing() {
    use BodyFraming::*;
    use Method::*;
    let ok = Parse::Parsed;
    let length = "Content-Length: 5\r\n";
    let chunked = "Transfer-Encoding: chunked\r\n";
    assert_eq!(response_body(200, Some(Get), length), ok(Length(5)));
    assert_eq!(response_body(200, Some(Get), chunked), ok(Chunked));
    assert_eq!(response_body(200, Some(Get), ""), ok(UntilClose));
    assert_eq!(response_body(200, None, length), ok(Length(5)));
    assert_eq!(
        response_body(200, Some(Get), "Transfer-Encoding: gzip\r\n"),
        ok(UntilClose)
    );
    assert_eq!(
        response_body(
            200,
            Some(Get),
            "Transfer-Encoding: gzip\r\nContent-Length: 5\r\n"
        ),
        ok(UntilClose)
    );
    assert_eq!(response_body(200, Some(Head), length), ok(Empty));
    assert_eq!(response_body(200, Some(Head), chunked), ok(Empty));
    assert_eq!(response_body(404, Some(Head), ""), ok(Empty));
    for status in [100, 101, 103, 199, 204, 304] {
        assert_eq!(
            response_body(status, Some(Get), length),
            ok(Empty),
            "{status}"
        );
        assert_eq!(response_body(status, None, chunked), ok(Empty), "{status}");
    }
    assert_eq!(response_body(200, Some(Connect), length), ok(UntilClose));
    assert_eq!(response_body(299, Some(Connect), ""), ok(UntilClose));
    assert_eq!(response_body(407, Some(Connect), length), ok(Length(5)));
    assert_eq!(response_body(205, Some(Get), length), ok(Length(5)));
    assert_eq!(
        response_body(304, Some(Get), "Content-Length: junk\r\n"),
        ok(Empty),
        "an unused Content-Length is not checked"
    );
}

#[test]
fn traceparent_host_and_connection() {
    let head = b"GET / HTTP/1.1\r\nTRACEPARENT:  \t00-abc-def-01 \t\r\nhost:\texample.com:8080\r\n\
Host: second\r\ntraceparent: second\r\nConnection: Upgrade, CLOSE\r\n\r\n";
    let Parse::Parsed(parsed) = parse_request_head(head) else {
        panic!("{:?}", parse_request_head(head));
    };
    assert_eq!(parsed.traceparent, Some("00-abc-def-01"));
    assert_eq!(parsed.host, Some("example.com:8080"));
    assert!(parsed.connection_close);

    let head = b"GET / HTTP/1.1\r\ntraceparent: \r\nHost: \xff\xfe\r\nX-Obs: caf\xe9\r\n\r\n";
    let Parse::Parsed(parsed) = parse_request_head(head) else {
        panic!("{:?}", parse_request_head(head));
    };
    assert_eq!(parsed.traceparent, None, "empty values are absent");
    assert_eq!(parsed.host, None, "not UTF-8");
    assert!(!parsed.connection_close);

    let close = |bytes: &[u8]| match parse_request_head(bytes) {
        Parse::Parsed(head) => head.connection_close,
        other => panic!("{other:?}"),
    };
    assert!(close(b"GET / HTTP/1.0\r\n\r\n"));
    assert!(!close(b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n"));
    assert!(close(
        b"GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n"
    ));
    assert!(!close(b"GET / HTTP/1.1\r\nConnection: closed\r\n\r\n"));
    assert!(close(
        b"GET / HTTP/1.1\r\nConnection: a\r\nConnection: close\r\n\r\n"
    ));
    let response_close = |bytes: &[u8]| match parse_response_head(bytes, None) {
        Parse::Parsed(head) => head.connection_close,
        other => panic!("{other:?}"),
    };
    assert!(response_close(b"HTTP/1.0 200 OK\r\n\r\n"));
    assert!(!response_close(
        b"HTTP/1.0 200 OK\r\nconnection: keep-alive\r\n\r\n"
    ));
    assert!(response_close(
        b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n"
    ));
}

#[test]
fn request_targets_and_methods() {
    for method in Method::ALL {
        assert!(method.as_str().len() <= Method::MAX_LEN);
        assert_eq!(Method::from_bytes(method.as_str().as_bytes()), Some(method));
        let line = format!("{} /p HTTP/1.1\r\n", method.as_str());
        assert!(matches!(
            parse_request_line(line.as_bytes()),
            Parse::Parsed(RequestLine { method: m, target: "/p", .. }) if m == method.as_str()
        ));
    }
    assert_eq!(Method::from_bytes(b"get"), None);
    let parsed = |line: &'static [u8]| match parse_request_line(line) {
        Parse::Parsed(l) => (l.method, l.target, l.minor_version, l.len),
        other => panic!("{other:?}"),
    };
    assert_eq!(parsed(b"OPTIONS * HTTP/1.1\r\n"), ("OPTIONS", "*", 1, 20));
    assert_eq!(
        parsed(b"CONNECT example.com:443 HTTP/1.1\r\n"),
        ("CONNECT", "example.com:443", 1, 34)
    );
    assert_eq!(
        parsed(b"GET http://a.example/x?y=%20 HTTP/1.0\nHost: a"),
        ("GET", "http://a.example/x?y=%20", 0, 38)
    );
}

#[test]
fn detection() {
    assert!(looks_like_request(b"GET "));
    assert!(looks_like_request(b"GET /"));
    assert!(looks_like_request(b"OPTIONS *"));
    assert!(looks_like_request(b"GET http://x/"));
    assert!(looks_like_request(b"CONNECT example.com:443"));
    assert!(looks_like_request(b"CONNECT [::1]:443"));
    assert!(!looks_like_request(b"GET"));
    assert!(!looks_like_request(b"GET x"));
    assert!(!looks_like_request(b"GET  /"));
    assert!(looks_like_request(b"CONNECT /"));
    assert!(!looks_like_request(b"GET example.com:443"));
    // Another method, or a known one in another case, needs its whole line.
    for line in [
        &b"get / HTTP/1.1\r\n"[..],
        b"PURGE /cache HTTP/1.1\n",
        b"M-SEARCH * HTTP/1.1\r\n",
    ] {
        let name = String::from_utf8_lossy(line);
        assert!(looks_like_request(line), "{name:?}");
        for cut in 1..line.len() - 1 {
            assert!(!looks_like_request(&line[..cut]), "{name:?} cut at {cut}");
            assert!(may_begin_request(&line[..cut]), "{name:?} cut at {cut}");
        }
    }
    assert!(!looks_like_request(b"PRI * HTTP/2.0\r\n"));
    assert!(!may_begin_request(b"PRI * HTTP/2.0\r\n"));
    assert!(!may_begin_request(b"PRI * HTTP/2"));
    // Text protocols that are not HTTP: a Redis inline command, an SMTP greeting.
    assert!(!looks_like_request(b"SET key value\r\n"));
    assert!(!may_begin_request(b"SET key value\r\n"));
    assert!(!may_begin_request(b"PING\r\n"));
    assert!(!may_begin_request(b"220 mail.example ESMTP\r\n"));
    assert!(!may_begin_request(&[b'X'; MAX_METHOD_LEN + 1]));
    assert!(!looks_like_request(b"HTTP/1.1 200 OK"));
    assert!(looks_like_response(b"HTTP/1.1 "));
    assert!(looks_like_response(b"HTTP/1.0 200 OK"));
    assert!(looks_like_response(b"HTTP/1.9 200 OK"));
    assert!(!looks_like_response(b"HTTP/1.1"));
    assert!(!looks_like_response(b"HTTP/1.x 200"));
    assert!(!looks_like_response(b"HTTP/2 200 OK"));
    assert!(!looks_like_response(b"GET / HTTP/1.1"));
}

#[test]
fn line_and_head_limits() {
    let mut line = b"GET /".to_vec();
    line.resize(MAX_LINE - 11, b'a');
    line.extend_from_slice(b" HTTP/1.1\r\n");
    assert_eq!(line.len(), MAX_LINE);
    assert!(matches!(parse_request_line(&line), Parse::Parsed(l) if l.len == MAX_LINE));
    line.insert(5, b'a');
    assert_eq!(
        parse_request_line(&line),
        Parse::Invalid(InvalidReason::HeadTooLong)
    );
    assert_eq!(parse_request_line(&line[..MAX_LINE - 1]), Parse::NeedMore);
    assert_eq!(
        parse_request_line(&line[..MAX_LINE]),
        Parse::Invalid(InvalidReason::HeadTooLong)
    );
    let mut garbage = b"GET /".to_vec();
    garbage.resize(MAX_LINE * 2, b' ');
    assert_eq!(
        parse_request_line(&garbage),
        Parse::Invalid(InvalidReason::BadRequestLine),
        "a malformed prefix says so, not HeadTooLong"
    );

    let mut head = b"GET / HTTP/1.1\r\n".to_vec();
    let mut remaining = MAX_HEAD - 2 - head.len();
    while remaining > 0 {
        let line = if remaining >= 2000 { 1000 } else { remaining };
        head.extend_from_slice(b"x:");
        head.resize(head.len() + line - 4, b'v');
        head.extend_from_slice(b"\r\n");
        remaining -= line;
    }
    assert_eq!(parse_request_head(&head), Parse::NeedMore);
    head.extend_from_slice(b"\r\n");
    assert!(matches!(parse_request_head(&head), Parse::Parsed(h) if h.head_len == MAX_HEAD));
    head.insert(20, b'v');
    assert_eq!(
        parse_request_head(&head),
        Parse::Invalid(InvalidReason::HeadTooLong)
    );
    assert_eq!(
        parse_request_head(&head[..MAX_HEAD]),
        Parse::Invalid(InvalidReason::HeadTooLong)
    );
    assert_eq!(parse_request_head(&head[..MAX_HEAD - 1]), Parse::NeedMore);
}

/// Bytes made of HTTP-ish pieces, so random input reaches deep into the parsers.
fn httpish() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        Just(b"GET ".to_vec()),
        Just(b"HEAD ".to_vec()),
        Just(b"/a?b=c".to_vec()),
        Just(b"HTTP/1.1".to_vec()),
        Just(b"HTTP/1.0 ".to_vec()),
        Just(b" 200 OK".to_vec()),
        Just(b"\r\n".to_vec()),
        Just(b"\n".to_vec()),
        Just(b"\r".to_vec()),
        Just(b": ".to_vec()),
        Just(b",".to_vec()),
        Just(b";".to_vec()),
        Just(b" ".to_vec()),
        Just(b"Content-Length".to_vec()),
        Just(b"Transfer-Encoding".to_vec()),
        Just(b"chunked".to_vec()),
        Just(b"Connection".to_vec()),
        Just(b"close".to_vec()),
        Just(b"traceparent".to_vec()),
        Just(b"0".to_vec()),
        "[0-9a-fA-F]{1,20}".prop_map(String::into_bytes),
        prop::collection::vec(any::<u8>(), 1..4),
    ];
    let start = prop_oneof![
        Just(&b""[..]),
        Just(&b"GET /a HTTP/1.1\r\n"[..]),
        Just(&b"HTTP/1.1 200 OK\r\n"[..]),
    ];
    (start, prop::collection::vec(piece, 0..60)).prop_map(|(start, pieces)| {
        let mut bytes = start.to_vec();
        bytes.extend(pieces.concat());
        bytes
    })
}

fn exercise_everything(bytes: &[u8]) {
    let _ = looks_like_request(bytes);
    let _ = looks_like_response(bytes);
    if let Parse::Parsed(line) = parse_request_line(bytes) {
        assert!(line.len <= bytes.len().min(MAX_LINE));
    }
    if let Parse::Parsed(line) = parse_status_line(bytes) {
        assert!(line.len <= bytes.len().min(MAX_LINE));
    }
    if let Parse::Parsed(head) = parse_request_head(bytes) {
        assert!(head.line.len < head.head_len && head.head_len <= bytes.len());
    }
    for method in [
        None,
        Some(Method::Get),
        Some(Method::Head),
        Some(Method::Connect),
    ] {
        if let Parse::Parsed(head) = parse_response_head(bytes, method) {
            assert!(head.line.len < head.head_len && head.head_len <= bytes.len());
        }
    }
    let mut decoder = ChunkedDecoder::default();
    if let Ok(progress) = decoder.feed(bytes) {
        assert!(progress.consumed <= bytes.len());
        assert!(progress.done || progress.consumed == bytes.len());
    }
    let _ = decoder.skip_uncaptured(u64::MAX);
    let _ = decoder.feed(bytes);
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
        exercise_everything(&bytes);
    }

    #[test]
    fn httpish_bytes_never_panic(bytes in httpish()) {
        exercise_everything(&bytes);
        // Every prefix of bytes that parse was incomplete, not invalid.
        if let Parse::Parsed(head) = parse_request_head(&bytes) {
            for k in 0..head.head_len {
                prop_assert_eq!(parse_request_head(&bytes[..k]), Parse::NeedMore);
            }
        }
    }

    #[test]
    fn chunked_decoder_survives_any_split(
        bytes in httpish(),
        cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..6),
        skips in prop::collection::vec(0u64..40, 0..6),
    ) {
        let mut points: Vec<usize> = cuts.iter().map(|c| c.index(bytes.len() + 1)).collect();
        points.sort_unstable();
        let mut decoder = ChunkedDecoder::default();
        let mut start = 0;
        for (i, point) in points.into_iter().chain([bytes.len()]).enumerate() {
            let Ok(progress) = decoder.feed(&bytes[start..point]) else { break };
            prop_assert!(progress.consumed <= point - start);
            start = point;
            if let Some(&n) = skips.get(i) {
                let _ = decoder.skip_uncaptured(n);
            }
        }
    }
}

#[derive(Debug, Clone)]
enum GeneratedFraming {
    None,
    Length(u64),
    Chunked { te_name: String, codings: String },
}

fn ows() -> impl Strategy<Value = String> {
    "[ \t]{0,2}"
}

fn extra_fields() -> impl Strategy<Value = Vec<(String, String)>> {
    let name =
        "[A-Za-z][A-Za-z0-9!#$%&'*+.^_`|~-]{0,15}".prop_filter("framing and known fields", |n| {
            let n = n.to_ascii_lowercase();
            ![
                "content-length",
                "transfer-encoding",
                "connection",
                "host",
                "traceparent",
            ]
            .contains(&n.as_str())
        });
    prop::collection::vec((name, "[ -~\u{80}-\u{ff}]{0,30}"), 0..8)
}

fn framing() -> impl Strategy<Value = GeneratedFraming> {
    prop_oneof![
        Just(GeneratedFraming::None),
        (0u64..1_000_000_000).prop_map(GeneratedFraming::Length),
        (
            prop_oneof![
                Just("Transfer-Encoding"),
                Just("transfer-encoding"),
                Just("TRANSFER-ENCODING")
            ],
            prop_oneof![
                Just("chunked"),
                Just("Chunked"),
                Just("gzip, chunked"),
                Just("gzip,chunked")
            ],
        )
            .prop_map(|(n, c)| GeneratedFraming::Chunked {
                te_name: n.to_string(),
                codings: c.to_string(),
            }),
    ]
}

/// A visible-ASCII value with no leading or trailing whitespace, as a parser trims it.
fn trimmed_value() -> impl Strategy<Value = String> {
    "[!-~]([ -~]{0,40}[!-~])?"
}

fn push_framing(fields: &mut Vec<(String, String)>, framing: &GeneratedFraming) {
    match framing {
        GeneratedFraming::None => {}
        GeneratedFraming::Length(n) => fields.push(("Content-Length".into(), n.to_string())),
        GeneratedFraming::Chunked { te_name, codings } => {
            fields.push((te_name.clone(), codings.clone()))
        }
    }
}

fn encode_head(start_line: &str, fields: &[(String, String)], ows: &str) -> Vec<u8> {
    let mut head = format!("{start_line}\r\n").into_bytes();
    for (name, value) in fields {
        head.extend_from_slice(name.as_bytes());
        head.push(b':');
        head.extend_from_slice(ows.as_bytes());
        // Generated obs-text is one byte per char, not UTF-8.
        head.extend(value.chars().map(|c| c as u32 as u8));
        head.extend_from_slice(ows.as_bytes());
        head.extend_from_slice(b"\r\n");
    }
    head.extend_from_slice(b"\r\n");
    head
}

proptest! {
    #[test]
    fn generated_requests_round_trip(
        method_index in 0..Method::ALL.len(),
        target in "/[A-Za-z0-9._~%!$&'()*+,;=:@/-]{0,60}(\\?[A-Za-z0-9=&%-]{0,30})?",
        minor in 0u8..=1,
        mut fields in extra_fields(),
        framing in framing(),
        traceparent in prop::option::of(trimmed_value()),
        host in prop::option::of(trimmed_value()),
        connection in prop::option::of(prop_oneof![Just("close"), Just("keep-alive"), Just("Upgrade, Close")]),
        ows in ows(),
        positions in prop::collection::vec(any::<prop::sample::Index>(), 4),
    ) {
        let method = Method::ALL[method_index];
        let mut insert = |i: usize, name: &str, value: &str| {
            let at = positions[i].index(fields.len() + 1);
            fields.insert(at, (name.to_string(), value.to_string()));
        };
        if let Some(v) = &traceparent { insert(0, "traceparent", v); }
        if let Some(v) = &host { insert(1, "Host", v); }
        if let Some(v) = connection { insert(2, "Connection", v); }
        push_framing(&mut fields, &framing);
        let line = format!("{} {target} HTTP/1.{minor}", method.as_str());
        let mut bytes = encode_head(&line, &fields, &ows);
        let head_len = bytes.len();
        bytes.extend_from_slice(b"GET /next HTTP/1.1\r\n");

        let close = match connection {
            Some("close" | "Upgrade, Close") => true,
            Some(_) => false,
            None => minor == 0,
        };
        let expected = RequestHead {
            line: RequestLine { method: method.as_str(), target: &target, minor_version: minor, len: line.len() + 2 },
            head_len,
            body: match framing {
                GeneratedFraming::None => BodyFraming::Empty,
                GeneratedFraming::Length(n) => BodyFraming::Length(n),
                GeneratedFraming::Chunked { .. } => BodyFraming::Chunked,
            },
            traceparent: traceparent.as_deref(),
            host: host.as_deref(),
            user_agent: None,
            connection_close: close,
        };
        prop_assert_eq!(parse_request_head(&bytes), Parse::Parsed(expected));
        prop_assert!(looks_like_request(&bytes));
        for k in 0..head_len {
            prop_assert_eq!(parse_request_head(&bytes[..k]), Parse::NeedMore, "k={}", k);
        }
    }

    #[test]
    fn generated_responses_round_trip(
        status in 100u16..=999,
        reason in "([ -~]{0,20})?",
        minor in 0u8..=1,
        mut fields in extra_fields(),
        framing in framing(),
        request_method in prop::option::of(prop::sample::select(Method::ALL.to_vec())),
        ows in ows(),
    ) {
        push_framing(&mut fields, &framing);
        let line = if reason.is_empty() {
            format!("HTTP/1.{minor} {status}")
        } else {
            format!("HTTP/1.{minor} {status} {reason}")
        };
        let bytes = encode_head(&line, &fields, &ows);
        let no_body = request_method == Some(Method::Head)
            || (100..200).contains(&status)
            || status == 204
            || status == 304;
        let body = if no_body {
            BodyFraming::Empty
        } else if request_method == Some(Method::Connect) && (200..300).contains(&status) {
            BodyFraming::UntilClose
        } else {
            match framing {
                GeneratedFraming::None => BodyFraming::UntilClose,
                GeneratedFraming::Length(n) => BodyFraming::Length(n),
                GeneratedFraming::Chunked { .. } => BodyFraming::Chunked,
            }
        };
        let expected = ResponseHead {
            line: StatusLine { status, minor_version: minor, len: line.len() + 2 },
            head_len: bytes.len(),
            body,
            connection_close: minor == 0,
        };
        prop_assert_eq!(parse_response_head(&bytes, request_method), Parse::Parsed(expected));
        prop_assert!(looks_like_response(&bytes));
        for k in 0..bytes.len() {
            prop_assert_eq!(parse_response_head(&bytes[..k], request_method), Parse::NeedMore, "k={}", k);
        }
    }

    #[test]
    fn generated_chunked_bodies_decode_at_any_split(
        chunks in prop::collection::vec(prop::collection::vec(any::<u8>(), 1..300), 0..6),
        upper in any::<bool>(),
        extension in prop::option::of("[a-z]{1,8}(=[a-z0-9]{1,8})?"),
        trailers in prop::collection::vec(("[A-Za-z-]{1,12}", "[ -~]{0,20}"), 0..3),
        cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..8),
    ) {
        let mut body = Vec::new();
        let size_line = |size: usize| {
            let mut line = if upper { format!("{size:X}") } else { format!("{size:x}") };
            if let Some(ext) = &extension {
                line.push(';');
                line.push_str(ext);
            }
            line.push_str("\r\n");
            line.into_bytes()
        };
        for chunk in &chunks {
            body.extend(size_line(chunk.len()));
            body.extend_from_slice(chunk);
            body.extend_from_slice(b"\r\n");
        }
        body.extend(size_line(0));
        for (name, value) in &trailers {
            body.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
        }
        body.extend_from_slice(b"\r\n");
        let body_len = body.len();
        body.extend_from_slice(b"HTTP/1.1 200 OK\r\n");

        let mut points: Vec<usize> = cuts.iter().map(|c| c.index(body.len() + 1)).collect();
        points.sort_unstable();
        let mut parts = Vec::new();
        let mut start = 0;
        for point in points.into_iter().chain([body.len()]) {
            parts.push(&body[start..point]);
            start = point;
        }
        let mut decoder = ChunkedDecoder::default();
        prop_assert_eq!(
            feed_all(&mut decoder, &parts),
            Ok(ChunkProgress { consumed: body_len, done: true })
        );
    }
}
