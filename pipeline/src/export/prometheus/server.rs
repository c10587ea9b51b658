//! The scrape endpoint: `GET <path>` answers the encoded registry, anything else 404.

use std::io;
use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicBool, Ordering};

use tiny_http::{Header, Method, Request, Response, Server};

use super::ExportError;

/// The Prometheus text exposition format, version 0.0.4.
pub const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// Binds `addr` (port 0 picks a free port) and returns the server with the address it got.
pub fn bind(addr: SocketAddr) -> Result<(Server, SocketAddr), ExportError> {
    let listen_error = |e: io::Error| ExportError::Listen {
        addr,
        reason: describe(&e),
    };
    let listener = TcpListener::bind(addr).map_err(listen_error)?;
    let bound = listener.local_addr().map_err(listen_error)?;
    let server = Server::from_listener(listener, None).map_err(|e| ExportError::Listen {
        addr,
        reason: e.to_string(),
    })?;
    Ok((server, bound))
}

fn describe(e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::AddrInUse => "address in use".into(),
        io::ErrorKind::AddrNotAvailable => "address not available on this host".into(),
        io::ErrorKind::PermissionDenied => "permission denied".into(),
        _ => e.to_string(),
    }
}

/// Answers requests until `stopping` is set and [`Server::unblock`] is called.
pub fn serve(
    server: &Server,
    path: &str,
    stopping: &AtomicBool,
    mut scrape: impl FnMut() -> String,
) {
    loop {
        match server.recv() {
            Ok(request) => answer(request, path, &mut scrape),
            Err(_) if stopping.load(Ordering::Acquire) => return,
            // tiny_http's accept thread reports its error and ends: nothing more will arrive.
            Err(e) => {
                log::error!("Prometheus endpoint stopped: cannot accept connections: {e}");
                return;
            }
        }
    }
}

fn answer(request: Request, path: &str, scrape: &mut impl FnMut() -> String) {
    let url = request.url();
    let request_path = url.split_once('?').map_or(url, |(p, _)| p);
    let wanted = request_path == path && matches!(request.method(), Method::Get | Method::Head);
    let result = if wanted {
        let content_type =
            Header::from_bytes("Content-Type", CONTENT_TYPE).expect("a constant header is valid");
        request.respond(Response::from_string(scrape()).with_header(content_type))
    } else {
        request.respond(Response::from_string("not found\n").with_status_code(404))
    };
    if let Err(e) = result {
        log::debug!("Prometheus endpoint: cannot answer a request: {e}");
    }
}
