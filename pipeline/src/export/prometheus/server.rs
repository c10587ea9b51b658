//! The scrape endpoint: `GET <path>` (or `HEAD`) answers the encoded
//! registry, any other path 404, any other method 405. It runs as
//! control-plane tasks and is bounded in every way a client could abuse: at
//! most [`MAX_CONNECTIONS`] at once (when full, the oldest connection that has
//! not sent its request yet makes room for the new one; with none, the new one
//! is closed), a request must arrive within [`REQUEST_TIMEOUT`] and fit in
//! [`MAX_REQUEST`] bytes, and the answer must be taken within
//! [`RESPONSE_TIMEOUT`]. Each refusal is counted; none can stop the endpoint.
//! Answers share the encoded text ([`Texts`]), so clients that ask and never
//! read cannot make the agent hold one text of megabytes each.

use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use futures_lite::future::or;
use smol::io::{AsyncReadExt, AsyncWriteExt};
use smol::net::{TcpListener, TcpStream};
use smol::Task;

use super::ExportError;
use crate::control::Control;
use crate::selfmetrics::{Counter, SelfMetrics};

/// The Prometheus text exposition format, version 0.0.4.
pub const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// Connections served at once; Prometheus needs one per scrape.
pub const MAX_CONNECTIONS: usize = 64;
/// Bytes of a request head; a scrape's is a few hundred.
pub const MAX_REQUEST: usize = 8 * 1024;
/// Time for a client to send its request once connected.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Time for a client to take the answer.
pub const RESPONSE_TIMEOUT: Duration = Duration::from_secs(30);
/// Pause after an accept error (such as too many open files) before the next try.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// A scrape's text is shared by the answers that start within this time.
const SHARE_FOR: Duration = Duration::from_secs(1);
/// Encoded texts held at once, at most: when as many are still being sent
/// (to clients that read slowly, or never), a scrape gets the newest.
pub const MAX_TEXTS: usize = 4;

/// What answers a scrape.
pub type Scrape = Arc<dyn Fn() -> String + Send + Sync>;

/// The encoded texts answers are sending. 10,000 series encode to about
/// 20 MB: one per client, 64 clients that never read held 1.4 GB. Only the
/// answers own a text: it is freed when the last of them is done (a `String`
/// behind the `Arc`, so that what a `Weak` keeps is the `String` alone).
#[derive(Default)]
struct Texts {
    /// Oldest first, each with when it was encoded.
    held: Vec<(Instant, Weak<String>)>,
}

impl Texts {
    /// The text to send at `now`: the newest one if it is recent enough, or if
    /// [`MAX_TEXTS`] are still being sent; else a new one from `encode`.
    fn get(&mut self, now: Instant, encode: impl FnOnce() -> String) -> Arc<String> {
        self.held.retain(|(_, text)| text.strong_count() > 0);
        if let Some((at, text)) = self.held.last() {
            let share =
                now.saturating_duration_since(*at) < SHARE_FOR || self.held.len() >= MAX_TEXTS;
            if let Some(text) = text.upgrade().filter(|_| share) {
                return text;
            }
        }
        let text = Arc::new(encode());
        self.held.push((now, Arc::downgrade(&text)));
        text
    }
}

/// Binds `addr` (port 0 picks a free port) and returns the listener with the address it got.
pub fn bind(addr: SocketAddr) -> Result<(TcpListener, SocketAddr), ExportError> {
    let listen_error = |e: io::Error| ExportError::Listen {
        addr,
        reason: describe(&e),
    };
    let listener = std::net::TcpListener::bind(addr).map_err(listen_error)?;
    let bound = listener.local_addr().map_err(listen_error)?;
    let listener = TcpListener::try_from(listener).map_err(listen_error)?;
    Ok((listener, bound))
}

fn describe(e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::AddrInUse => "address in use".into(),
        io::ErrorKind::AddrNotAvailable => "address not available on this host".into(),
        io::ErrorKind::PermissionDenied => "permission denied".into(),
        _ => e.to_string(),
    }
}

/// A connection being answered.
struct Connection {
    task: Task<()>,
    /// Still waiting for the client's request.
    waiting: Arc<AtomicBool>,
}

/// Accepts connections until `stop` closes, each answered by a task of its own.
pub async fn serve(
    listener: TcpListener,
    path: String,
    scrape: Scrape,
    control: Control,
    metrics: Arc<SelfMetrics>,
    stop: async_channel::Receiver<()>,
) {
    let path: Arc<str> = path.into();
    let texts = Arc::new(Mutex::new(Texts::default()));
    let mut open: VecDeque<Connection> = VecDeque::with_capacity(MAX_CONNECTIONS);
    let mut failing = false;
    loop {
        let accepted = or(async { Some(listener.accept().await) }, async {
            let _ = stop.recv().await;
            None
        })
        .await;
        let stream = match accepted {
            None => return,
            Some(Ok((stream, _))) => {
                failing = false;
                stream
            }
            Some(Err(e)) => {
                if !failing {
                    log::warn!("Prometheus endpoint: cannot accept connections ({e}); retrying");
                    failing = true;
                }
                metrics.inc(Counter::ScrapesRefusedAccept);
                smol::Timer::after(ACCEPT_BACKOFF).await;
                continue;
            }
        };
        open.retain(|c| !c.task.is_finished());
        if open.len() >= MAX_CONNECTIONS {
            // Dropping a task cancels it and closes its connection.
            match open.iter().position(|c| c.waiting.load(Ordering::Relaxed)) {
                Some(idle) => {
                    open.remove(idle);
                    metrics.inc(Counter::ScrapesRefusedIdle);
                }
                None => {
                    metrics.inc(Counter::ScrapesRefusedBusy);
                    continue;
                }
            }
        }
        let waiting = Arc::new(AtomicBool::new(true));
        let (path, scrape, metrics, still_waiting, texts) = (
            Arc::clone(&path),
            Arc::clone(&scrape),
            Arc::clone(&metrics),
            Arc::clone(&waiting),
            Arc::clone(&texts),
        );
        let task = control.spawn(async move {
            let text = || {
                let mut texts = texts.lock().unwrap_or_else(|p| p.into_inner());
                texts.get(Instant::now(), || scrape())
            };
            if let Err(refusal) = answer(stream, &path, text, &still_waiting).await {
                metrics.inc(refusal);
            }
        });
        open.push_back(Connection { task, waiting });
    }
}

/// One request, one answer, then the connection closes. The error is the
/// counter of why the client got nothing.
async fn answer(
    mut stream: TcpStream,
    path: &str,
    text: impl FnOnce() -> Arc<String>,
    waiting: &AtomicBool,
) -> Result<(), Counter> {
    let head = within(REQUEST_TIMEOUT, read_head(&mut stream))
        .await
        .ok_or(Counter::ScrapesRefusedTimeout)?
        .ok_or(Counter::ScrapesRefusedBadRequest)?;
    waiting.store(false, Ordering::Relaxed);
    let mut words = head.split(' ');
    let (method, target) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
    let requested = target.split_once('?').map_or(target, |(p, _)| p);
    let (status, body, content_type) = match (method, requested == path) {
        ("GET" | "HEAD", true) => ("200 OK", text(), CONTENT_TYPE),
        ("GET" | "HEAD", false) => (
            "404 Not Found",
            Arc::new("not found\n".into()),
            "text/plain",
        ),
        _ => (
            "405 Method Not Allowed",
            Arc::new("use GET\n".into()),
            "text/plain",
        ),
    };
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let written = async {
        stream.write_all(head.as_bytes()).await?;
        if method != "HEAD" {
            stream.write_all(body.as_bytes()).await?;
        }
        stream.flush().await
    };
    // A client that hangs up while reading had its answer.
    match within(RESPONSE_TIMEOUT, written).await {
        Some(_) => Ok(()),
        None => Err(Counter::ScrapesRefusedTimeout),
    }
}

/// The request line, once the whole head has arrived; None when the client
/// closed first, sent more than [`MAX_REQUEST`] bytes of head, or not text.
async fn read_head(stream: &mut TcpStream) -> Option<String> {
    let mut head = Vec::with_capacity(512);
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut buf).await.ok()?;
        if n == 0 || head.len() + n > MAX_REQUEST {
            return None;
        }
        head.extend_from_slice(&buf[..n]);
    }
    let line = head.split(|&b| b == b'\r').next()?;
    String::from_utf8(line.to_vec()).ok()
}

/// `future`'s output, or None once `limit` has passed.
async fn within<T>(limit: Duration, future: impl std::future::Future<Output = T>) -> Option<T> {
    or(async { Some(future.await) }, async {
        smol::Timer::after(limit).await;
        None
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_share_texts_and_hold_a_few_at_most() {
        let t0 = Instant::now();
        let mut texts = Texts::default();
        let mut encoded = 0;
        let mut get = |texts: &mut Texts, at: Duration| {
            texts.get(t0 + at, || {
                encoded += 1;
                format!("text {encoded}")
            })
        };
        let first = get(&mut texts, Duration::ZERO);
        // Within a second: the same text, not encoded again.
        let same = get(&mut texts, Duration::from_millis(900));
        assert!(Arc::ptr_eq(&first, &same));
        // Later: a new text; the old one stays while answers hold it.
        let mut held = vec![first, same];
        for i in 1..MAX_TEXTS {
            held.push(get(&mut texts, Duration::from_secs(2 * i as u64)));
        }
        assert_eq!(texts.held.len(), MAX_TEXTS);
        // Every text still being sent: the newest is shared, however old.
        let newest = get(&mut texts, Duration::from_secs(60));
        assert_eq!(*newest, format!("text {MAX_TEXTS}"));
        assert_eq!(texts.held.len(), MAX_TEXTS);
        // Once the answers are done, the texts are gone and a new one is made.
        drop((held, newest));
        let fresh = get(&mut texts, Duration::from_millis(60_100));
        assert_eq!(*fresh, format!("text {}", MAX_TEXTS + 1));
        assert_eq!(texts.held.len(), 1);
    }
}
