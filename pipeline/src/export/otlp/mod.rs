//! OTLP export of traces and metrics, over http/protobuf or gRPC.
//!
//! Batching, retries, timeouts and the metric interval run as control-plane
//! tasks (smol). Only the requests themselves run on a small tokio runtime of
//! this module's own ([`io`]: one thread), because tonic and hyper need one.
//! Each exporter ends when its queue closes, after a bounded best-effort flush.

pub mod config;
mod convert;
mod failure;
pub mod metrics;
mod queue;
mod tls;
pub mod traces;

#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use opentelemetry_otlp::{
    MetricExporter, RetryPolicy, SpanExporter, WithExportConfig, WithHttpConfig, WithTonicConfig,
};
use opentelemetry_sdk::metrics::Temporality;

pub use config::{
    check_endpoint, check_header, Compression, MetricsConfig, OtlpConfigError, Protocol,
    SignalConfig, Tls,
};
pub use metrics::spawn_metrics;
pub use traces::spawn_traces;

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error(transparent)]
    Config(#[from] OtlpConfigError),
    #[error("cannot create the OTLP {signal} exporter: {reason}")]
    Build {
        signal: &'static str,
        reason: String,
    },
    #[error("cannot start the OTLP {signal} exporter: {source}")]
    Start {
        signal: &'static str,
        source: std::io::Error,
    },
}

fn build_error(
    signal: &'static str,
) -> impl Fn(opentelemetry_otlp::ExporterBuildError) -> ExportError {
    move |e| ExportError::Build {
        signal,
        reason: e.to_string(),
    }
}

/// gRPC metadata from the configured headers (names lowercased, as gRPC wants).
/// Metadata keys must be `'static`: the few configured names are leaked once
/// per exporter, which is built once per process.
fn grpc_metadata(
    headers: &[(String, String)],
    signal: &'static str,
) -> Result<opentelemetry_otlp::tonic_types::metadata::MetadataMap, ExportError> {
    let mut map = opentelemetry_otlp::tonic_types::metadata::MetadataMap::new();
    for (name, value) in headers {
        let key: &'static str = Box::leak(name.to_ascii_lowercase().into_boxed_str());
        let value = value.parse().map_err(|e| ExportError::Build {
            signal,
            reason: format!("header {name}: {e}"),
        })?;
        map.insert(key, value);
    }
    Ok(map)
}

fn http_headers(headers: &[(String, String)]) -> HashMap<String, String> {
    headers.iter().cloned().collect()
}

/// The HTTP client for an `https://` receiver: the public roots and the
/// configured certificates are trusted, or any certificate with
/// `insecure_skip_verify`.
fn https_client(
    config: &SignalConfig,
    signal: &'static str,
) -> Result<opentelemetry_http::hyper::HyperClient<HttpsConnector>, ExportError> {
    let error = |reason: String| ExportError::Build { signal, reason };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(|e| error(e.to_string()))?;
    let tls = if config.tls.insecure_skip_verify {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(tls::AnyCertificate(provider)))
            .with_no_client_auth()
    } else {
        let mut roots = rustls::RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        for certificate in config.tls.certificates().map_err(|e| error(e.into()))? {
            roots.add(certificate).map_err(|e| error(e.to_string()))?;
        }
        builder.with_root_certificates(roots).with_no_client_auth()
    };
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .build();
    Ok(opentelemetry_http::hyper::HyperClient::new(
        connector,
        config.timeout,
        None,
    ))
}

type HttpsConnector =
    hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>;

/// gRPC over TLS: the public roots and the configured certificates.
fn grpc_tls(
    config: &SignalConfig,
    signal: &'static str,
) -> Result<Option<opentelemetry_otlp::tonic_types::transport::ClientTlsConfig>, ExportError> {
    use opentelemetry_otlp::tonic_types::transport::{Certificate, ClientTlsConfig};
    if !config.url().starts_with("https://") {
        return Ok(None);
    }
    let mut tls = ClientTlsConfig::new().with_webpki_roots();
    if let Some(pem) = &config.tls.ca_pem {
        config
            .tls
            .certificates()
            .map_err(|reason| ExportError::Build {
                signal,
                reason: reason.into(),
            })?;
        tls = tls.ca_certificate(Certificate::from_pem(pem));
    }
    Ok(Some(tls))
}

fn http_protocol(protocol: Protocol) -> opentelemetry_otlp::Protocol {
    match protocol {
        Protocol::HttpJson => opentelemetry_otlp::Protocol::HttpJson,
        _ => opentelemetry_otlp::Protocol::HttpBinary,
    }
}

fn compression(config: &SignalConfig) -> Option<opentelemetry_otlp::Compression> {
    match config.compression {
        Compression::None => None,
        Compression::Gzip => Some(opentelemetry_otlp::Compression::Gzip),
    }
}

/// Must be called inside the exporter's tokio runtime (the gRPC channel starts a task).
/// Retries are ours (with a bounded queue), so the library's own are off.
fn build_span_exporter(config: &SignalConfig) -> Result<SpanExporter, ExportError> {
    let url = config.url();
    match config.protocol {
        Protocol::HttpProtobuf | Protocol::HttpJson => {
            let mut builder = SpanExporter::builder()
                .with_http()
                .with_endpoint(&url)
                .with_protocol(http_protocol(config.protocol))
                .with_timeout(config.timeout)
                .with_headers(http_headers(&config.headers))
                .with_retry_policy(RetryPolicy::disabled());
            if url.starts_with("https://") {
                builder = builder.with_http_client(https_client(config, "traces")?);
            }
            if let Some(compression) = compression(config) {
                builder = builder.with_compression(compression);
            }
            builder.build()
        }
        Protocol::Grpc => {
            let mut builder = SpanExporter::builder()
                .with_tonic()
                .with_endpoint(url)
                .with_timeout(config.timeout)
                .with_metadata(grpc_metadata(&config.headers, "traces")?)
                .with_retry_policy(RetryPolicy::disabled());
            if let Some(tls) = grpc_tls(config, "traces")? {
                builder = builder.with_tls_config(tls);
            }
            if let Some(compression) = compression(config) {
                builder = builder.with_compression(compression);
            }
            builder.build()
        }
    }
    .map_err(build_error("traces"))
}

/// Must be called inside the exporter's tokio runtime. Metrics keep the
/// library's short retry policy: a lost push is repaired by the next
/// (cumulative) one anyway.
fn build_metric_exporter(config: &SignalConfig) -> Result<MetricExporter, ExportError> {
    let url = config.url();
    match config.protocol {
        Protocol::HttpProtobuf | Protocol::HttpJson => {
            let mut builder = MetricExporter::builder()
                .with_http()
                .with_endpoint(&url)
                .with_protocol(http_protocol(config.protocol))
                .with_timeout(config.timeout)
                .with_headers(http_headers(&config.headers))
                .with_temporality(Temporality::Cumulative);
            if url.starts_with("https://") {
                builder = builder.with_http_client(https_client(config, "metrics")?);
            }
            if let Some(compression) = compression(config) {
                builder = builder.with_compression(compression);
            }
            builder.build()
        }
        Protocol::Grpc => {
            let mut builder = MetricExporter::builder()
                .with_tonic()
                .with_endpoint(url)
                .with_timeout(config.timeout)
                .with_metadata(grpc_metadata(&config.headers, "metrics")?)
                .with_temporality(Temporality::Cumulative);
            if let Some(tls) = grpc_tls(config, "metrics")? {
                builder = builder.with_tls_config(tls);
            }
            if let Some(compression) = compression(config) {
                builder = builder.with_compression(compression);
            }
            builder.build()
        }
    }
    .map_err(build_error("metrics"))
}

/// The runtime OTLP requests run on, made once when an OTLP exporter starts.
fn io(signal: &'static str) -> Result<&'static tokio::runtime::Runtime, ExportError> {
    static IO: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    if let Some(runtime) = IO.get() {
        return Ok(runtime);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("otlp-io")
        .enable_all()
        .build()
        .map_err(|source| ExportError::Start { signal, source })?;
    Ok(IO.get_or_init(|| runtime))
}

/// Runs a request on the [`io`] runtime and waits for it from any executor,
/// at most `limit` (the library bounds requests itself; this is a backstop).
async fn request<T: Send + 'static>(
    io: &tokio::runtime::Runtime,
    limit: Duration,
    request: impl Future<Output = T> + Send + 'static,
) -> Result<T, String> {
    let task = io.spawn(request);
    let timeout = async {
        smol::Timer::after(limit).await;
        Err(format!("no answer within {limit:?}"))
    };
    futures_lite::future::or(
        async { task.await.map_err(|e| format!("the request failed: {e}")) },
        timeout,
    )
    .await
}
