//! The trace printer: one line per span on standard output, readable text or JSON.

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::sync::Arc;

use serde::ser::SerializeMap;
use serde::Serialize;

use smol::io::AsyncWriteExt;

use super::{Context, Queued, Signal};
use crate::model::{Operation, Span, SpanKind};
use crate::semconv::{self, Value};

/// How finished spans are printed on standard output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrinterFormat {
    Disabled,
    /// One readable line per span.
    Text,
    /// One JSON object per span per line.
    Json,
    /// One indented JSON object per span (Beyla's `json_indent`).
    JsonIndent,
}

/// Starts the printer on the control plane.
pub fn spawn(format: PrinterFormat, context: &Context) -> Queued {
    Queued::spawn(&context.control, Signal::Traces, move |rx| run(rx, format))
}

/// Bytes of formatted lines gathered before they are written out.
const WRITE_BATCH: usize = 64 * 1024;

/// Writes spans until the channel closes; writes whenever it runs dry. The
/// writes themselves happen off the control thread, so a blocked stdout
/// (a pipe nobody reads) holds back only the printer.
async fn run(rx: async_channel::Receiver<Arc<Span>>, format: PrinterFormat) {
    let mut stdout = smol::Unblock::new(io::stdout());
    let mut lines = Vec::new();
    while let Ok(span) = rx.recv().await {
        // Formatting into memory cannot fail.
        let _ = match format {
            PrinterFormat::Json => write_json(&mut lines, &span, false),
            PrinterFormat::JsonIndent => write_json(&mut lines, &span, true),
            PrinterFormat::Text => write_text(&mut lines, &span),
            PrinterFormat::Disabled => Ok(()),
        };
        if !rx.is_empty() && lines.len() < WRITE_BATCH {
            continue;
        }
        let written = stdout.write_all(&lines).await;
        lines.clear();
        if let Err(e) = written.and(stdout.flush().await) {
            log::error!("trace printer stopped: cannot write to stdout: {e}");
            return;
        }
    }
    let _ = stdout.flush().await;
}

/// The span's attributes as one JSON object, in the conventions' order.
struct Attributes<'a>(&'a Span);

impl Serialize for Attributes<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut pairs = Vec::new();
        semconv::span_attributes(self.0, |name, value| {
            let value = match value {
                Value::Str(s) => serde_json::Value::from(s),
                Value::Int(i) => serde_json::Value::from(i),
                Value::Ip(ip) => serde_json::Value::from(ip.to_string()),
                Value::Owned(s) => serde_json::Value::from(s),
            };
            pairs.push((name, value));
        });
        let mut map = serializer.serialize_map(Some(pairs.len()))?;
        for (name, value) in &pairs {
            map.serialize_entry(name, value)?;
        }
        map.end()
    }
}

#[derive(Serialize)]
struct ResourceJson<'a> {
    #[serde(rename = "service.name")]
    service_name: &'a str,
    #[serde(rename = "process.pid")]
    pid: u32,
    #[serde(rename = "service.namespace", skip_serializing_if = "str::is_empty")]
    service_namespace: &'a str,
    /// `k8s.*` of a process in a pod.
    #[serde(flatten)]
    kubernetes: BTreeMap<&'static str, &'a str>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SpanJson<'a> {
    trace_id: String,
    span_id: String,
    parent_span_id: String,
    name: String,
    kind: &'static str,
    start_time_unix_nano: u64,
    end_time_unix_nano: u64,
    attributes: Attributes<'a>,
    resource: ResourceJson<'a>,
}

/// `indent`: over several lines, indented, as Beyla's `json_indent` prints.
pub fn write_json(out: &mut impl Write, span: &Span, indent: bool) -> io::Result<()> {
    let r = &span.request;
    let json = SpanJson {
        trace_id: r.context.trace_id.to_string(),
        span_id: r.context.span_id.to_string(),
        parent_span_id: r.context.parent.map(|p| p.to_string()).unwrap_or_default(),
        name: semconv::span_name(span),
        kind: semconv::span_kind(span).name(),
        start_time_unix_nano: span.start_unix_ns,
        end_time_unix_nano: span.end_unix_ns,
        attributes: Attributes(span),
        resource: ResourceJson {
            service_name: &r.resource.service_name,
            pid: r.pid.0,
            service_namespace: &r.resource.service_namespace,
            kubernetes: r
                .resource
                .kubernetes
                .as_deref()
                .map(|k8s| k8s.attributes().collect())
                .unwrap_or_default(),
        },
    };
    if indent {
        serde_json::to_writer_pretty(&mut *out, &json)?;
    } else {
        serde_json::to_writer(&mut *out, &json)?;
    }
    out.write_all(b"\n")
}

/// One line: when, which side, what (status, method and path for HTTP; the
/// span name otherwise), how long, between whom, and the trace ids.
pub fn write_text(out: &mut impl Write, span: &Span) -> io::Result<()> {
    let r = &span.request;
    let (server, server_port, client) = r.conn.endpoints(r.kind);
    let client_port = match r.kind {
        SpanKind::Server => r.conn.remote_port,
        SpanKind::Client => r.conn.local_port,
    };
    let duration_us = span.end_unix_ns.saturating_sub(span.start_unix_ns) as f64 / 1000.0;
    write!(
        out,
        "{} {} ",
        utc(span.start_unix_ns),
        semconv::span_kind(span).name()
    )?;
    match r.operation.http() {
        Some(http) => write!(
            out,
            "{} {} {} ({duration_us:.1}µs) route={}",
            http.status,
            http.method.as_str(),
            http.path,
            span.route.as_deref().unwrap_or("-"),
        )?,
        None => write!(out, "{} ({duration_us:.1}µs)", semconv::span_name(span))?,
    }
    write!(
        out,
        " {client}:{client_port}->{server}:{server_port} service={} pid={} trace={} span={}",
        r.resource.service_name, r.pid, r.context.trace_id, r.context.span_id,
    )?;
    if let Some(parent) = r.context.parent {
        write!(out, " parent={parent}")?;
    }
    if let Operation::Rpc(rpc) = &r.operation {
        write!(out, " rpc={}/{}", rpc.service, rpc.method)?;
        if let Some(code) = rpc.status_code {
            write!(out, " grpc_status={code}")?;
        }
    }
    out.write_all(b"\n")
}

/// `2026-11-24T17:50:01.123456Z`, from Unix nanoseconds (civil-from-days).
fn utc(unix_ns: u64) -> String {
    let secs = unix_ns / 1_000_000_000;
    let micros = (unix_ns % 1_000_000_000) / 1000;
    let (days, rem) = ((secs / 86_400) as i64, secs % 86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{micros:06}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::fixtures;

    fn span() -> Span {
        fixtures::span()
    }

    #[test]
    fn json_line_has_the_documented_shape() {
        let mut out = Vec::new();
        write_json(&mut out, &span(), false).unwrap();
        assert_eq!(out.iter().filter(|&&b| b == b'\n').count(), 1);
        let mut indented = Vec::new();
        write_json(&mut indented, &span(), true).unwrap();
        assert!(indented.starts_with(b"{\n  \"traceId\""));
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(
            v,
            serde_json::from_slice::<serde_json::Value>(&indented).unwrap(),
            "json_indent prints the same object"
        );
        assert_eq!(
            v,
            serde_json::json!({
                "traceId": "abababababababababababababababab",
                "spanId": "0101010101010101",
                "parentSpanId": "0202020202020202",
                "name": "GET /users/*",
                "kind": "server",
                "startTimeUnixNano": 1_764_000_000_000_000_000u64,
                "endTimeUnixNano": 1_764_000_000_001_500_000u64,
                "attributes": {
                    "http.request.method": "GET",
                    "url.path": "/users/42",
                    "url.scheme": "http",
                    "http.route": "/users/*",
                    "http.response.status_code": 200,
                    "network.protocol.version": "1.1",
                    "server.address": "127.0.0.1",
                    "server.port": 8080,
                    "client.address": "127.0.0.2",
                    "client.port": 40000,
                    "user_agent.original": "curl/8.5.0",
                    "http.request.body.size": 0,
                    "http.response.body.size": 11
                },
                "resource": {"service.name": "svc", "process.pid": 77}
            })
        );
        assert!(out.ends_with(b"}\n"));
    }

    #[test]
    fn text_line_is_readable() {
        let mut out = Vec::new();
        write_text(&mut out, &span()).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "2025-11-24T16:00:00.000000Z server 200 GET /users/42 (1500.0µs) route=/users/* \
             127.0.0.2:40000->127.0.0.1:8080 service=svc pid=77 trace=abababababababababababababababab \
             span=0101010101010101 parent=0202020202020202\n"
        );
    }
}
