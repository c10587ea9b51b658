//! OTLP to receivers as Beyla users reach them: over TLS to a receiver with a
//! self-signed certificate (trusted through OTEL_EXPORTER_OTLP_CERTIFICATE,
//! or not checked with insecure_skip_verify), gzip-compressed, and with the
//! Authorization header that Grafana Cloud's variables build. The receiver
//! is the official-protobuf one of the exporter tests, with TLS on.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use integration_tests::agent::Agent;
use integration_tests::apps::{Lang, Server};
use integration_tests::http::{Connection, Request};
use integration_tests::receivers::{poll_until, received_spans, OtlpReceiver, TempDir};
use integration_tests::require_root;

/// Requests sent per run; each is one server span.
const REQUESTS: usize = 5;
/// How long spans may take to reach the receiver once the agent stopped.
const ARRIVAL_TIMEOUT: Duration = Duration::from_secs(30);

/// A self-signed certificate for 127.0.0.1 and localhost, and its key. It
/// is not a CA certificate (`CA:FALSE`): the verifier refuses a CA
/// certificate as a server's own.
fn self_signed(dir: &Path) -> (String, String) {
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let status = Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
        ])
        .args(["-subj", "/CN=localhost"])
        .args(["-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"])
        .args(["-addext", "basicConstraints=critical,CA:FALSE"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .expect("run openssl (scripts/setup.sh installs it)");
    assert!(status.success(), "openssl could not make a certificate");
    (
        cert.to_string_lossy().into_owned(),
        key.to_string_lossy().into_owned(),
    )
}

/// Runs the agent on a Python server with `env`, sends [`REQUESTS`]
/// requests, stops it, and returns the spans the receiver got.
fn export(scenario: &str, env: &[(&str, &str)], out: &Path) -> Vec<Value> {
    let server = Server::start(Lang::Python, None);
    let port = server.port.to_string();
    let mut env = env.to_vec();
    env.push(("BEYLA_OPEN_PORT", &port));
    let agent = Agent::start(&env);
    agent.wait_instrumenting(server.pid());
    agent.wait_ready();
    let mut conn = Connection::open(server.port);
    for i in 0..REQUESTS {
        let (response, _) = conn.round_trip(&Request::get(&format!("/users/{i}")));
        assert_eq!(response.status, 200, "[{scenario}] GET /users/{i}");
    }
    drop(conn);
    let output = agent.stop();
    poll_until(
        ARRIVAL_TIMEOUT,
        &format!("[{scenario}] {REQUESTS} spans at the receiver"),
        || {
            let spans = received_spans(out);
            (spans.len() >= REQUESTS).then_some(spans)
        },
        || {
            format!(
                "received: {} span(s)\nagent stderr:\n{}",
                received_spans(out).len(),
                output.stderr
            )
        },
    )
}

fn header<'a>(span: &'a Value, name: &str) -> &'a str {
    span["headers"][name].as_str().unwrap_or("")
}

#[test]
fn tls_with_a_self_signed_certificate() {
    require_root();
    let dir = TempDir::new("beyla-otlp-tls");
    let (cert, key) = self_signed(&dir.path);
    let receiver = |name: &str| {
        let out = dir.path.join(name);
        let receiver = OtlpReceiver::start(0, 0, &out, &["--tls-cert", &cert, "--tls-key", &key]);
        (receiver, out)
    };

    // http/protobuf over https, the certificate trusted by file, gzip.
    let (tls, out) = receiver("https.jsonl");
    let endpoint = format!("https://127.0.0.1:{}/v1/traces", tls.http_port);
    let spans = export(
        "https with OTEL_EXPORTER_OTLP_CERTIFICATE and gzip",
        &[
            ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", &endpoint),
            ("OTEL_EXPORTER_OTLP_CERTIFICATE", &cert),
            ("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip"),
        ],
        &out,
    );
    assert_eq!(spans.len(), REQUESTS, "{spans:?}");
    assert!(
        spans
            .iter()
            .all(|s| s["transport"] == "http" && header(s, "content-encoding") == "gzip"),
        "every span over http, gzip-compressed: {spans:?}"
    );
    drop(tls);

    // gRPC over TLS, the certificate trusted by file.
    let (tls, out) = receiver("grpcs.jsonl");
    let endpoint = format!("https://127.0.0.1:{}", tls.grpc_port);
    let spans = export(
        "grpc over TLS with OTEL_EXPORTER_OTLP_CERTIFICATE",
        &[
            ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", &endpoint),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
            ("OTEL_EXPORTER_OTLP_CERTIFICATE", &cert),
        ],
        &out,
    );
    assert!(
        spans.len() == REQUESTS && spans.iter().all(|s| s["transport"] == "grpc"),
        "{spans:?}"
    );
    drop(tls);

    // https without the certificate: Beyla's insecure_skip_verify.
    let (tls, out) = receiver("insecure.jsonl");
    let endpoint = format!("https://127.0.0.1:{}/v1/traces", tls.http_port);
    let spans = export(
        "https with BEYLA_INSECURE_SKIP_VERIFY",
        &[
            ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", &endpoint),
            ("BEYLA_INSECURE_SKIP_VERIFY", "true"),
        ],
        &out,
    );
    assert_eq!(spans.len(), REQUESTS, "{spans:?}");
}

/// Grafana Cloud's variables, with the endpoint pointed at a local
/// receiver: the spans arrive with `Authorization: Basic
/// base64(instance:key)`, as Beyla builds it.
#[test]
fn grafana_cloud_authorization_at_a_local_receiver() {
    require_root();
    let dir = TempDir::new("beyla-grafana-cloud");
    let out = dir.path.join("received.jsonl");
    let receiver = OtlpReceiver::start(0, 0, &out, &[]);
    let endpoint = format!("http://127.0.0.1:{}", receiver.http_port);
    let spans = export(
        "GRAFANA_CLOUD_* variables",
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint),
            ("GRAFANA_CLOUD_ZONE", "prod-eu-west-0"),
            ("GRAFANA_CLOUD_INSTANCE_ID", "123456"),
            ("GRAFANA_CLOUD_API_KEY", "glc_secret"),
            ("GRAFANA_CLOUD_SUBMIT", "traces"),
        ],
        &out,
    );
    // base64("123456:glc_secret")
    assert!(
        spans.len() == REQUESTS
            && spans
                .iter()
                .all(|s| header(s, "authorization") == "Basic MTIzNDU2OmdsY19zZWNyZXQ="),
        "every span must carry Grafana Cloud's Basic authorization: {spans:?}"
    );
    drop(receiver);
}
