//! Sample HTTP/1.1 service for the VM tests on axum (hyper, tokio). Same API
//! as the other apps; see ../../README.md. With `TLS_CERT` and `TLS_KEY` it
//! serves HTTPS through native-tls, which is OpenSSL on Linux. Plain TCP
//! connections may also speak HTTP/2 with prior knowledge (h2c).
//! Run: PORT=8080 [DOWNSTREAM_URL=http://127.0.0.1:9000/health] [TLS_CERT=cert.pem TLS_KEY=key.pem] target/apps/rust-server

use std::convert::Infallible;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::Request;
use axum::http::{header, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;

/// The parts `/chunked` sends, one chunk each.
const CHUNKS: [&str; 3] = ["part1;", "part2;", "part3"];
const DOWNSTREAM_TIMEOUT: Duration = Duration::from_secs(10);

fn reply(status: u16, body: String, content_type: &'static str) -> Response {
    let status = StatusCode::from_u16(status).expect("a valid status");
    (status, [(header::CONTENT_TYPE, content_type)], body).into_response()
}

fn text(status: u16, body: &str) -> Response {
    reply(status, body.to_string(), "text/plain")
}

/// One router for every method and path, as in the other apps: unknown is 404.
async fn route(request: Request) -> Response {
    let method = request.method().clone();
    let path = request.uri().path().to_string();
    // The whole body is read, so the next request on the connection starts in the right place.
    let body = axum::body::to_bytes(request.into_body(), usize::MAX)
        .await
        .unwrap_or_default();
    let get = method == Method::GET;
    let user = path.strip_prefix("/users/").unwrap_or("");
    match path.as_str() {
        "/health" if get => text(200, "ok"),
        _ if get && !user.is_empty() && !user.contains('/') => reply(
            200,
            serde_json::json!({ "id": user }).to_string(),
            "application/json",
        ),
        "/users" if method == Method::POST => reply(
            201,
            serde_json::json!({ "received": body.len() }).to_string(),
            "application/json",
        ),
        "/error" if get => text(500, "error"),
        "/chunked" if get => chunked(),
        "/downstream" if get => downstream().await,
        _ => text(404, "not found"),
    }
}

/// A body of unknown length: hyper sends it chunked.
fn chunked() -> Response {
    let parts = futures_util::stream::iter(
        CHUNKS.map(|part| Ok::<_, Infallible>(Bytes::from_static(part.as_bytes()))),
    );
    Response::builder()
        .header(header::CONTENT_TYPE, "text/plain")
        .body(Body::from_stream(parts))
        .expect("a valid response")
}

/// One GET over a new connection: a new client (its own pool) per call, no proxy.
async fn downstream() -> Response {
    let Ok(url) = std::env::var("DOWNSTREAM_URL") else {
        return text(500, "DOWNSTREAM_URL not set");
    };
    let client = match reqwest::Client::builder()
        .no_proxy()
        .timeout(DOWNSTREAM_TIMEOUT)
        .pool_max_idle_per_host(0)
        .build()
    {
        Ok(client) => client,
        Err(_) => return text(502, "downstream error"),
    };
    match client.get(&url).send().await {
        Ok(answer) => {
            let status = answer.status().as_u16();
            match answer.bytes().await {
                Ok(_) => text(200, &format!("downstream {status}")),
                Err(_) => text(502, "downstream error"),
            }
        }
        Err(_) => text(502, "downstream error"),
    }
}

/// The native-tls acceptor for `TLS_CERT` / `TLS_KEY` (PEM, PKCS#8 key), if set.
fn tls_acceptor() -> Result<Option<tokio_native_tls::TlsAcceptor>, String> {
    let Ok(cert) = std::env::var("TLS_CERT") else {
        return Ok(None);
    };
    let key = std::env::var("TLS_KEY").map_err(|_| "TLS_CERT is set but not TLS_KEY")?;
    let read = |path: &str| std::fs::read(path).map_err(|e| format!("read {path}: {e}"));
    let identity = native_tls::Identity::from_pkcs8(&read(&cert)?, &read(&key)?)
        .map_err(|e| format!("TLS_CERT / TLS_KEY: {e}"))?;
    let acceptor = native_tls::TlsAcceptor::new(identity).map_err(|e| e.to_string())?;
    Ok(Some(acceptor.into()))
}

#[tokio::main]
async fn main() {
    let Ok(port) = std::env::var("PORT") else {
        eprintln!("PORT environment variable is required");
        std::process::exit(1);
    };
    let tls = tls_acceptor().unwrap_or_else(|e| {
        eprintln!("{e}");
        std::process::exit(1);
    });
    let listener = tokio::net::TcpListener::bind(format!("127.0.0.1:{port}"))
        .await
        .unwrap_or_else(|e| {
            eprintln!("listen on 127.0.0.1:{port}: {e}");
            std::process::exit(1);
        });
    let bound = listener.local_addr().expect("a bound address").port();
    let app = Router::new().fallback(route);
    println!("listening on {bound}");
    let Some(tls) = tls else {
        axum::serve(listener, app).await.expect("serve");
        return;
    };
    // HTTPS: axum has no TLS of its own; each accepted connection is wrapped
    // by native-tls, then served by hyper's HTTP/1 connection with the router.
    loop {
        let Ok((socket, _)) = listener.accept().await else {
            continue;
        };
        let (tls, app) = (tls.clone(), app.clone());
        tokio::spawn(async move {
            let Ok(stream) = tls.accept(socket).await else {
                return;
            };
            let service = TowerToHyperService::new(app);
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}
