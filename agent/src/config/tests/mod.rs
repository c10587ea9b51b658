use std::time::Duration;

use log::LevelFilter;

mod docs;
mod reference;

use super::*;
use crate::ebpf::DEFAULT_CAPTURE;
use beyla_pipeline::export::otlp::SignalConfig;
use beyla_pipeline::export::select::Instrumentations;

/// Loads a configuration from an optional file (name, text), variables and flags.
fn load(
    file: Option<(&str, &str)>,
    vars: &[(&str, &str)],
    mut flags: Flags,
) -> Result<Config, ConfigError> {
    if let Some((name, _)) = file {
        flags.config = Some(name.to_string());
    }
    let text = file.map(|(_, text)| text.to_string());
    Config::from_sources_with(
        &flags,
        vars.iter().map(|(k, v)| (k.to_string(), v.to_string())),
        &|_| {
            text.clone().ok_or_else(|| {
                std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    "No such file or directory (os error 2)",
                )
            })
        },
    )
}

fn yaml(text: &str) -> Result<Config, ConfigError> {
    load(Some(("beyla-config.yml", text)), &[], Flags::default())
}

fn message(text: &str) -> String {
    yaml(text).unwrap_err().to_string()
}

/// The example of the reference document, as written there.
const REFERENCE_YAML: &str = r#"
# beyla-config.yml
log_level: INFO

discovery:
  services:
    - name: my-app
      open_port: 8080
      # or by process name:
      # exe_path: /usr/bin/myapp
      # or by K8s pod metadata (auto-detected in K8s)

ebpf:
  wakeup_len: 100              # batch size for events
  track_request_headers: false # enable to capture HTTP headers (high cardinality risk)
  high_request_volume: false   # optimize for high-traffic services

# Distributed tracing output (OTLP)
otel_traces_export:
  endpoint: http://tempo:4318  # HTTP OTLP endpoint
  # Or gRPC:
  # endpoint: tempo:4317
  # protocol: grpc

# Metrics output (Prometheus)
prometheus_export:
  port: 9090
  path: /metrics

# Or metrics via OTLP
otel_metrics_export:
  endpoint: http://prometheus-otlp:9090
"#;

/// The same settings in TOML.
const REFERENCE_TOML: &str = r#"
log_level = "INFO"

[[discovery.services]]
name = "my-app"
open_port = 8080

[ebpf]
wakeup_len = 100
track_request_headers = false
high_request_volume = false

[otel_traces_export]
endpoint = "http://tempo:4318"

[prometheus_export]
port = 9090
path = "/metrics"

[otel_metrics_export]
endpoint = "http://prometheus-otlp:9090"
"#;

#[test]
fn reference_example_loads_and_means_what_it_says() {
    let c = yaml(REFERENCE_YAML).unwrap();
    assert_eq!(c.log_level, LevelFilter::Info);
    assert_eq!(c.discovery.instrument.len(), 1);
    let app = &c.discovery.instrument[0];
    assert_eq!(app.name.as_deref(), Some("my-app"));
    let ports = app.open_ports.as_ref().unwrap();
    assert!(ports.contains(8080) && !ports.contains(8081));
    assert!(app.exe_path.is_none());
    assert!(c.discovery.instrument[0]
        .open_ports
        .as_ref()
        .unwrap()
        .contains(8080));
    assert_eq!(
        c.ebpf,
        EbpfConfig {
            wakeup_len: Some(100),
            track_request_headers: false,
            context_propagation: ContextPropagation::Disabled,
            capture_path: None,
        }
    );
    assert_eq!(
        c.export.otlp_traces,
        Some(SignalConfig::new(
            "http://tempo:4318/v1/traces",
            OtlpProtocol::HttpProtobuf
        ))
    );
    assert_eq!(c.export.prometheus, Some(PrometheusConfig::on_port(9090)));
    let metrics = c.export.otlp_metrics.as_ref().unwrap();
    assert_eq!(
        metrics.signal.endpoint,
        "http://prometheus-otlp:9090/v1/metrics"
    );
    assert_eq!(metrics.interval, Duration::from_secs(60));
    // Everything not written keeps its default.
    assert_eq!(c.sampler, SamplerConfig::ParentBasedAlwaysOn);
    assert_eq!(c.routes.unmatched, Unmatched::Heuristic);
    assert_eq!(c.routes.ignore_mode, IgnoreMode::All);
    assert_eq!(c.capture_size, DEFAULT_CAPTURE);
    assert_eq!(c.shutdown_timeout, Duration::from_secs(10));
    // It configures exporters, so the printer stays off unless asked for.
    assert_eq!(c.export.trace_printer, PrinterFormat::Disabled);
}

#[test]
fn toml_gives_the_same_config_as_yaml() {
    let from_yaml = yaml(REFERENCE_YAML).unwrap();
    let from_toml = load(Some(("beyla.toml", REFERENCE_TOML)), &[], Flags::default()).unwrap();
    assert_eq!(format!("{from_yaml:?}"), format!("{from_toml:?}"));
    assert_eq!(from_yaml.render_effective(), from_toml.render_effective());
}

#[test]
fn reference_sections_on_routes_and_sampling_load() {
    let c = yaml(
        r#"
discovery:
  instrument:
    - open_ports: 8000-8090
      exe_path: "*node*"
routes:
  patterns:
    - /user/{id}
    - /api/v1/resources/{resource_id}
  ignored_patterns:
    - /health
    - /metrics
  ignore_mode: traces    # or: metrics, both
  unmatched: heuristic   # or: path, wildcard, low-cardinality
otel_traces_export:
  sampler:
    name: "parentbased_traceidratio"  # parent-aware fraction sampling
    arg: "0.1"    # 10% sampling
"#,
    )
    .unwrap();
    assert_eq!(
        c.routes.patterns,
        ["/user/{id}", "/api/v1/resources/{resource_id}"]
    );
    assert_eq!(c.routes.ignored_patterns, ["/health", "/metrics"]);
    assert_eq!(c.routes.ignore_mode, IgnoreMode::Traces);
    assert_eq!(c.sampler, SamplerConfig::ParentBasedTraceIdRatio(0.1));
    assert!(c.export.otlp_traces.is_none());
    let node = c.discovery.instrument[0].exe_path.as_ref().unwrap();
    assert!(node.is_match("/usr/local/bin/node") && !node.is_match("/usr/bin/python3"));
    assert!(
        yaml("discovery: {services: [{open_port: 80}]}\nroutes: {ignore_mode: both}")
            .unwrap()
            .routes
            .ignore_mode
            == IgnoreMode::All
    );
}

#[test]
fn bad_configurations_are_refused_with_one_exact_message() {
    let table: &[(&str, &str)] = &[
        (
            "discovery:\n  servces:\n    - open_port: 80\n",
            "unknown key discovery.servces in beyla-config.yml; did you mean discovery.services?",
        ),
        (
            "discovery:\n  services:\n    - open_prot: 80\n",
            "unknown key discovery.services[0].open_prot in beyla-config.yml; did you mean discovery.services[0].open_port?",
        ),
        (
            "wakeup_len: 10\n",
            "unknown key wakeup_len in beyla-config.yml; did you mean ebpf.wakeup_len?",
        ),
        (
            "ebpf:\n  zzz: 1\n",
            "unknown key ebpf.zzz in beyla-config.yml; known keys here: capture_path, capture_size, context_propagation, enable_context_propagation, high_request_volume, sql_query_text, track_request_headers, wakeup_len (and 27 more of Beyla's, not supported yet)",
        ),
        (
            "discovery: {services: {open_port: 80}}",
            "wrong type for key discovery.services in beyla-config.yml: found a map, expected a list of maps",
        ),
        (
            "discovery: {services: [8080]}",
            "wrong type for key discovery.services[0] in beyla-config.yml: found the number 8080, expected a map of keys",
        ),
        (
            "ebpf: [1]",
            "wrong type for key ebpf in beyla-config.yml: found a list, expected a map of keys",
        ),
        (
            "discovery: {services: [{open_port: 80}]}\nroutes: {patterns: [/a, {b: 1}]}",
            "wrong type for key routes.patterns[1] in beyla-config.yml: found a map, expected a list of strings",
        ),
        (
            "discovery: {services: [{open_port: [80]}]}",
            "wrong type for key discovery.services[0].open_port in beyla-config.yml: found a list, expected a string, number or boolean",
        ),
        (
            "discovery: {services: [{open_port: 80-}]}",
            "invalid value \"80-\" for key discovery.services[0].open_port in beyla-config.yml: expected a port from 1 to 65535, a comma-separated list such as 80,443, or a range such as 8000-8090",
        ),
        (
            "discovery: {services: [{open_port: 9000-8000}]}",
            "invalid value \"9000-8000\" for key discovery.services[0].open_port in beyla-config.yml: expected a range whose first port is not above its last, such as 8000-8090",
        ),
        (
            "discovery: {services: [{open_port: 70000}]}",
            "invalid value \"70000\" for key discovery.services[0].open_port in beyla-config.yml: expected a port from 1 to 65535, a comma-separated list such as 80,443, or a range such as 8000-8090",
        ),
        (
            "discovery: {services: [{exe_path: \"(\"}]}",
            "invalid value \"(\" for key discovery.services[0].exe_path in beyla-config.yml: expected a regular expression (error: unclosed group)",
        ),
        (
            "discovery: {instrument: [{exe_path: \"[abc\"}]}",
            "invalid value \"[abc\" for key discovery.instrument[0].exe_path in beyla-config.yml: expected a glob such as /usr/bin/* or *node* (with *, ?, [abc], [!abc], {a,b})",
        ),
        (
            "discovery: {services: [{name: lonely}]}",
            "discovery.services[0] in beyla-config.yml selects no process: expected open_ports, exe_path, cmd_args or a k8s_* selector",
        ),
        (
            "discovery: {services: [{open_port: 80}]}\notel_traces_export: {sampler: {name: sometimes}}",
            "invalid value \"sometimes\" for key otel_traces_export.sampler.name in beyla-config.yml: expected one of always_on, always_off, traceidratio, parentbased_always_on, parentbased_always_off, parentbased_traceidratio",
        ),
        (
            "discovery: {services: [{open_port: 80}]}\notel_traces_export: {sampler: {name: traceidratio, arg: ten}}",
            "invalid value \"ten\" for key otel_traces_export.sampler.arg in beyla-config.yml: expected a number, such as 0.1 (0 to 1; beyond, the nearest)",
        ),
        (
            "discovery: {services: [{open_port: 80}]}\nroutes: {unmatched: guess}",
            "invalid value \"guess\" for key routes.unmatched in beyla-config.yml: expected one of heuristic, path, wildcard, low-cardinality, unset",
        ),
        (
            "discovery: {services: [{open_port: 80}]}\nroutes: {ignore_mode: logs}",
            "invalid value \"logs\" for key routes.ignore_mode in beyla-config.yml: expected one of traces, metrics, all (or both, the same as all)",
        ),
        (
            "discovery: {services: [{open_port: 80}]}\nroutes: {patterns: [users]}",
            "invalid value \"users\" for key routes.patterns[0] in beyla-config.yml: expected a path pattern starting with /, such as /users/{id}",
        ),
        (
            "discovery: {services: [{open_port: 80}]}\notel_traces_export: {endpoint: http://tempo:4318, protocol: thrift}",
            "invalid value \"thrift\" for key otel_traces_export.protocol in beyla-config.yml: expected one of http/protobuf, http/json, grpc",
        ),
        (
            "discovery: {services: [{open_port: 80}]}\notel_traces_export: {endpoint: \"tempo:4318\"}",
            "invalid value \"tempo:4318\" for key otel_traces_export.endpoint in beyla-config.yml: expected an http:// or https:// URL with a host, such as http://tempo:4318 (host:port is only for protocol grpc); not an absolute URL",
        ),
        (
            "discovery: {services: [{open_port: 80}]}\notel_metrics_export: {endpoint: \"ftp://x:21\"}",
            "invalid value \"ftp://x:21\" for key otel_metrics_export.endpoint in beyla-config.yml: expected an http:// or https:// URL with a host, such as http://tempo:4318 (host:port is only for protocol grpc); the scheme must be http:// or https://",
        ),
        (
            "discovery: {services: [{open_port: 80}]}\notel_traces_export: {endpoint: \"http://\"}",
            "invalid value \"http://\" for key otel_traces_export.endpoint in beyla-config.yml: expected an http:// or https:// URL with a host, such as http://tempo:4318 (host:port is only for protocol grpc); missing host",
        ),
        (
            "discovery: {services: [{open_port: 80}]}\notel_traces_export: {endpoint: tempo, protocol: grpc}",
            "invalid value \"tempo\" for key otel_traces_export.endpoint in beyla-config.yml: expected an http:// or https:// URL with a host, such as http://tempo:4317, or host:port, such as tempo:4317; host:port needs a port, such as tempo:4317",
        ),
        (
            "discovery: {services: [{open_port: 80}]}\notel_traces_export: {endpoint: http://t:4318, headers: \"Authorization\"}",
            "invalid value \"(item 1 of 1 not shown: 13 characters that are not name=value)\" for key otel_traces_export.headers in beyla-config.yml: expected name=value pairs separated by commas, such as Authorization=Basic%20abc,X-Scope-OrgID=1",
        ),
        (
            "discovery: {services: [{open_port: 80}]}\notel_traces_export: {endpoint: http://t:4318, headers: \"X-Org=1,Authorization=Bearer%zzs3cr3t\"}",
            "invalid value \"Authorization=(value not shown, 15 characters)\" for key otel_traces_export.headers in beyla-config.yml: expected name=value pairs separated by commas, such as Authorization=Basic%20abc,X-Scope-OrgID=1; the value of Authorization has a % not followed by two hex digits",
        ),
        (
            "discovery: {services: [{open_port: 80}]}\nebpf: {wakeup_len: -1}",
            "invalid value \"-1\" for key ebpf.wakeup_len in beyla-config.yml: expected a record count from 0 to 4294967295",
        ),
        (
            "discovery: {services: [{open_port: 80}]}\nebpf: {track_request_headers: yes please}",
            "invalid value \"yes please\" for key ebpf.track_request_headers in beyla-config.yml: expected true or false",
        ),
        (
            "discovery: {services: [{open_port: 80}]}\nebpf: {context_propagation: tracecontext}",
            "invalid value \"tracecontext\" for key ebpf.context_propagation in beyla-config.yml: expected one of all, headers, ip, disabled",
        ),
        (
            "discovery: {services: [{open_port: 80}]}\nebpf: {capture_size: 10}",
            &format!("invalid value \"10\" for key ebpf.capture_size in beyla-config.yml: expected a byte count from 64 to {}", MAX_CAPTURE - 1),
        ),
        (
            "discovery: {services: [{open_port: 80}]}\nshutdown_timeout: 10",
            "invalid value \"10\" for key shutdown_timeout in beyla-config.yml: expected a duration such as 10s, 500ms, 1m30s or 1h (units ns, us, ms, s, m, h)",
        ),
        (
            "discovery: {services: [{open_port: 80}]}\notel_metrics_export: {endpoint: http://m:4318, interval: 0s}",
            "invalid value \"0s\" for key otel_metrics_export.interval in beyla-config.yml: expected a duration above zero",
        ),
        (
            "discovery: {services: [{open_port: 80}]}\nprometheus_export: {port: 0}",
            "invalid value \"0\" for key prometheus_export.port in beyla-config.yml: expected a port from 1 to 65535",
        ),
        (
            "discovery: {services: [{open_port: 80}]}\nprometheus_export: {port: 9090, path: metrics}",
            "invalid value \"metrics\" for key prometheus_export.path in beyla-config.yml: expected a path starting with /, such as /metrics",
        ),
        (
            "discovery: {services: [{open_port: 80}]}\nroutes: {wildcard_char: \"**\"}",
            "invalid value \"**\" for key routes.wildcard_char in beyla-config.yml: expected one character other than / or a space, such as *",
        ),
        (
            "discovery: {services: [{open_port: 80}]}\ntrace_printer: xml",
            "invalid value \"xml\" for key trace_printer in beyla-config.yml: expected one of disabled, text, json, json_indent",
        ),
        (
            "log_level: INFO\n",
            "nothing to instrument: set discovery.services or discovery.instrument in the config file, BEYLA_OPEN_PORT (ports such as 8080 or 8000-8090) or BEYLA_EXECUTABLE_NAME (a regular expression on the executable path)",
        ),
        (
            "discovery:\n  services:\n  - open_port: 80\n    name: [unclosed\n",
            "cannot parse config file beyla-config.yml as YAML: did not find expected ',' or ']' at line 5 column 1, while parsing a flow sequence at line 4 column 11",
        ),
    ];
    for (text, expected) in table {
        assert_eq!(&message(text), expected, "for {text:?}");
    }
}

#[test]
fn file_level_errors() {
    let toml = load(
        Some(("beyla.toml", "[ebpf]\nwakeup_len = \n")),
        &[],
        Flags::default(),
    );
    assert_eq!(
        toml.unwrap_err().to_string(),
        "cannot parse config file beyla.toml as TOML: string values must be quoted, expected literal string at line 2 column 14"
    );
    let json = load(Some(("beyla.json", "{}")), &[], Flags::default());
    assert_eq!(
        json.unwrap_err().to_string(),
        "config file beyla.json has an unknown format: expected a name ending in .yml, .yaml or .toml"
    );
    let missing = load(
        None,
        &[("BEYLA_CONFIG_PATH", "/etc/beyla.yml")],
        Flags::default(),
    );
    assert_eq!(
        missing.unwrap_err().to_string(),
        "cannot read config file /etc/beyla.yml: No such file or directory (os error 2)"
    );
    assert_eq!(
        message("- open_port: 80"),
        "wrong type for key (the whole file) in beyla-config.yml: found a list, expected a map of keys"
    );
    // Nulls (an empty YAML value) leave the default.
    assert_eq!(
        yaml("discovery: {services: [{open_port: 80}]}\nebpf:\nlog_level:\n")
            .unwrap()
            .ebpf
            .wakeup_len,
        None
    );
}

#[test]
fn precedence_file_then_env_then_flag() {
    let file = Some((
        "beyla-config.yml",
        "log_level: ERROR\ntrace_printer: json\ndiscovery: {services: [{name: web, open_port: 80}], exclude_services: [{exe_path: sshd}]}\nebpf: {capture_size: 512}",
    ));
    let c = load(file, &[], Flags::default()).unwrap();
    assert_eq!(
        (c.log_level, c.export.trace_printer, c.capture_size),
        (LevelFilter::Error, PrinterFormat::Json, 512)
    );

    let env = [
        ("BEYLA_LOG_LEVEL", "warn"),
        ("BEYLA_BPF_CAPTURE_SIZE", "256"),
        ("BEYLA_OPEN_PORT", "8080"),
    ];
    let c = load(file, &env, Flags::default()).unwrap();
    assert_eq!(
        (c.log_level, c.export.trace_printer, c.capture_size),
        (LevelFilter::Warn, PrinterFormat::Json, 256)
    );
    // The variable's entry comes after the file's, as Beyla adds it;
    // exclusions stay, the default one after the user's.
    assert_eq!(c.discovery.instrument.len(), 2);
    assert_eq!(c.discovery.instrument[0].name.as_deref(), Some("web"));
    let added = &c.discovery.instrument[1];
    assert!(added.name.is_none() && added.open_ports.as_ref().unwrap().contains(8080));
    assert_eq!(c.discovery.exclude.len(), 2);
    assert!(c.discovery.exclude[1]
        .exe_path
        .as_ref()
        .unwrap()
        .is_match("/usr/local/bin/otelcol-contrib"));

    let flags = Flags {
        log_level: Some("debug".into()),
        open_port: Some("9000".into()),
        ..Flags::default()
    };
    let c = load(file, &env, flags).unwrap();
    assert_eq!((c.log_level, c.capture_size), (LevelFilter::Debug, 256));
    let ports = c.discovery.instrument[1].open_ports.as_ref().unwrap();
    assert!(ports.contains(9000) && !ports.contains(8080));
}

#[test]
fn otlp_variables_follow_the_opentelemetry_rules() {
    let port = ("BEYLA_OPEN_PORT", "80");
    let c = load(
        None,
        &[
            port,
            (
                "OTEL_EXPORTER_OTLP_ENDPOINT",
                "http://otlp.example.com/otlp/",
            ),
        ],
        Flags::default(),
    )
    .unwrap();
    assert_eq!(
        c.export.otlp_traces.unwrap().endpoint,
        "http://otlp.example.com/otlp/v1/traces"
    );
    assert_eq!(
        c.export.otlp_metrics.unwrap().signal.endpoint,
        "http://otlp.example.com/otlp/v1/metrics"
    );

    let file = Some((
        "b.yaml",
        "otel_traces_export: {endpoint: http://file:4318, headers: {X-Team: web}}",
    ));
    let env = [
        port,
        ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "tempo:4317"),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
        (
            "OTEL_EXPORTER_OTLP_HEADERS",
            "Authorization=Basic%20abc, X-Scope-OrgID=1",
        ),
        ("OTEL_TRACES_SAMPLER", "traceidratio"),
        ("OTEL_TRACES_SAMPLER_ARG", "0.25"),
        ("OTEL_METRIC_EXPORT_INTERVAL", "15000"),
        (
            "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
            "http://mimir:4318/otlp/v1/metrics",
        ),
        ("OTEL_EXPORTER_OTLP_METRICS_PROTOCOL", "http/protobuf"),
        ("OTEL_SERVICE_NAME", "checkout"),
        ("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment=prod"),
    ];
    let c = load(file, &env, Flags::default()).unwrap();
    assert_eq!(
        c.export.otlp_traces,
        Some(SignalConfig {
            headers: vec![
                ("Authorization".into(), "Basic abc".into()),
                ("X-Scope-OrgID".into(), "1".into())
            ],
            ..SignalConfig::new("tempo:4317", OtlpProtocol::Grpc)
        })
    );
    assert_eq!(c.sampler, SamplerConfig::TraceIdRatio(0.25));
    let metrics = c.export.otlp_metrics.unwrap();
    assert_eq!(metrics.signal.endpoint, "http://mimir:4318/otlp/v1/metrics");
    assert_eq!(metrics.interval, Duration::from_millis(15_000));
    assert_eq!(c.service_name.as_deref(), Some("checkout"));
    assert_eq!(
        c.resource_attributes,
        [("deployment.environment".to_string(), "prod".to_string())]
    );

    let err = load(
        None,
        &[
            port,
            ("OTEL_METRIC_EXPORT_INTERVAL", "1m"),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"),
        ],
        Flags::default(),
    );
    assert_eq!(
        err.unwrap_err().to_string(),
        "invalid value \"1m\" for environment variable OTEL_METRIC_EXPORT_INTERVAL: expected a number of milliseconds above zero, such as 60000"
    );
}

/// `OTEL_TRACES_EXPORTER=none` and `OTEL_METRICS_EXPORTER=none` turn a
/// signal's OTLP exporter off whatever endpoint is set; `otlp` is the default.
#[test]
fn otlp_exporters_can_be_turned_off_per_signal() {
    let port = ("BEYLA_OPEN_PORT", "8080");
    let endpoint = ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318");
    let c = load(None, &[port, endpoint], Flags::default()).unwrap();
    assert!(c.export.otlp_traces.is_some() && c.export.otlp_metrics.is_some());
    let c = load(
        None,
        &[port, endpoint, ("OTEL_TRACES_EXPORTER", "none")],
        Flags::default(),
    )
    .unwrap();
    assert!(c.export.otlp_traces.is_none() && c.export.otlp_metrics.is_some());
    let c = load(
        None,
        &[
            port,
            endpoint,
            ("OTEL_METRICS_EXPORTER", "none"),
            ("OTEL_TRACES_EXPORTER", "otlp"),
        ],
        Flags::default(),
    )
    .unwrap();
    assert!(c.export.otlp_traces.is_some() && c.export.otlp_metrics.is_none());
    let err = load(
        None,
        &[port, endpoint, ("OTEL_METRICS_EXPORTER", "prometheus")],
        Flags::default(),
    );
    assert_eq!(
        err.unwrap_err().to_string(),
        "invalid value \"prometheus\" for environment variable OTEL_METRICS_EXPORTER: expected otlp or none (the Prometheus endpoint is BEYLA_PROMETHEUS_PORT)"
    );
}

#[test]
fn render_masks_headers_and_loads_back() {
    let file = Some((
        "beyla-config.yml",
        "discovery:\n  instrument: [{name: api, namespace: shop, exe_path: '*/api-{server,worker}'}]\n  exclude_instrument: [{open_ports: 22}]\notel_traces_export:\n  endpoint: http://tempo.example.com\n  headers: {Authorization: Bearer s3cr3t}\n  sampler: {name: parentbased_traceidratio, arg: 0.5}\notel_metrics_export: {endpoint: http://m:4318, headers: 'X-Key=hunter2', interval: 1500ms}\nroutes: {patterns: ['/users/{id}'], unmatched: low-cardinality, wildcard_char: '_'}\nshutdown_timeout: 1m30s\n",
    ));
    let c = load(file, &[("OTEL_SERVICE_NAME", "api")], Flags::default()).unwrap();
    let rendered = c.render_effective();
    assert!(
        !rendered.contains("s3cr3t") && !rendered.contains("hunter2"),
        "{rendered}"
    );
    assert!(
        rendered.contains("Authorization: '***'") && rendered.contains("X-Key: '***'"),
        "{rendered}"
    );
    assert!(rendered.contains("shutdown_timeout: 90s"), "{rendered}");
    assert!(rendered.contains("interval: 1500ms"), "{rendered}");
    assert!(
        rendered.ends_with("# OTEL_SERVICE_NAME=api\n"),
        "{rendered}"
    );

    // What is shown is a config file that means the same, secrets aside.
    let again = yaml(&rendered).unwrap();
    let api = &again.discovery.instrument[0];
    assert!(api.exe_path.as_ref().unwrap().is_match("/srv/api-worker"));
    assert_eq!(api.name.as_deref(), Some("api"));
    assert_eq!(
        again.render_effective(),
        rendered.replace("# OTEL_SERVICE_NAME=api\n", "")
    );
}

#[test]
fn globs_and_durations() {
    let glob = |g: &str| {
        parse::glob(&Raw {
            value: g.into(),
            origin: Origin::Env("T".into()),
        })
        .map(|re| re.as_str().to_string())
    };
    assert_eq!(glob("*/bin/py?hon[23]").unwrap(), "^.*/bin/py.hon[23]$");
    assert_eq!(glob("{a,b}.[!x]").unwrap(), "^(?:a|b)\\.[^x]$");
    assert!(glob("{a,b").is_err() && glob("[]").is_err());
    let duration = |d: &str| {
        parse::duration(&Raw {
            value: d.into(),
            origin: Origin::Env("T".into()),
        })
    };
    assert_eq!(
        duration("1h2m3.5s").unwrap(),
        Duration::from_millis(3_723_500)
    );
    assert_eq!(duration("250us").unwrap(), Duration::from_micros(250));
    assert_eq!(duration("0").unwrap(), Duration::ZERO);
    assert!(duration("5 s").is_err() && duration("s").is_err() && duration("1d").is_err());
    assert_eq!(
        parse::format_duration(Duration::from_micros(1500)),
        "1500000ns"
    );
}

#[test]
fn env_and_flags_alone_still_work() {
    let c = load(None, &[("BEYLA_OPEN_PORT", "8080")], Flags::default()).unwrap();
    assert!(c.discovery.instrument[0]
        .open_ports
        .as_ref()
        .unwrap()
        .contains(8080));
    assert_eq!(c.export.trace_printer, PrinterFormat::Text);
    assert_eq!(c.capture_size, DEFAULT_CAPTURE);
    assert!(c.export.otlp_traces.is_none() && c.export.prometheus.is_none());

    let bad = |vars: &[(&str, &str)]| load(None, vars, Flags::default()).unwrap_err().to_string();
    assert_eq!(bad(&[("BEYLA_OPEN_PORT", "80-")]), "invalid value \"80-\" for environment variable BEYLA_OPEN_PORT: expected a port from 1 to 65535, a comma-separated list such as 80,443, or a range such as 8000-8090");
    assert_eq!(
        bad(&[("BEYLA_OPEN_PORT", "1"), ("BEYLA_TRACE_PRINTER", "xml")]),
        "invalid value \"xml\" for environment variable BEYLA_TRACE_PRINTER: expected one of disabled, text, json, json_indent"
    );
    assert_eq!(
        bad(&[("BEYLA_EXECUTABLE_NAME", "(")]),
        "invalid value \"(\" for environment variable BEYLA_EXECUTABLE_NAME: expected a regular expression (error: unclosed group)"
    );
    assert_eq!(
        bad(&[("BEYLA_OPEN_PORT", "1"), ("BEYLA_PROMETHEUS_PORT", "http")]),
        "invalid value \"http\" for environment variable BEYLA_PROMETHEUS_PORT: expected a port from 1 to 65535"
    );
    let flags = Flags {
        capture_size: Some("9".into()),
        open_port: Some("1".into()),
        ..Flags::default()
    };
    assert_eq!(
        load(None, &[], flags).unwrap_err().to_string(),
        format!(
            "invalid value \"9\" for flag --capture-size: expected a byte count from 64 to {}",
            MAX_CAPTURE - 1
        )
    );
    assert_eq!(
        load(None, &[], Flags::default()).unwrap_err(),
        ConfigError::NoSelection
    );
}

#[test]
fn printer_defaults_to_text_only_without_exporters() {
    let bare = yaml("discovery: {services: [{open_port: 80}]}").unwrap();
    assert_eq!(bare.export.trace_printer, PrinterFormat::Text);
    let with_prometheus =
        yaml("discovery: {services: [{open_port: 80}]}\nprometheus_export: {port: 9090}").unwrap();
    assert_eq!(
        with_prometheus.export.trace_printer,
        PrinterFormat::Disabled
    );
    let asked =
        yaml("discovery: {services: [{open_port: 80}]}\nprometheus_export: {port: 9090}\ntrace_printer: json").unwrap();
    assert_eq!(asked.export.trace_printer, PrinterFormat::Json);
}

#[test]
fn beylas_keys_not_implemented_are_warned_once_and_ignored() {
    let c = load(
        Some((
            "beyla-config.yml",
            "attributes:\n  kubernetes:\n    drop_external: true\n    meta_cache_address: cache:50055\n\
             discovery:\n  instrument:\n    - k8s_job_name: shop\n      open_ports: 80\n    - k8s_job_name: web\n  survey:\n    - exe_path: '*'\n\
             network:\n  enable: true\n",
        )),
        &[],
        Flags::default(),
    )
    .unwrap();
    let warnings: Vec<String> = c.warnings.iter().map(|w| w.to_string()).collect();
    assert_eq!(
        warnings,
        [
            "key attributes.kubernetes.drop_external: not supported yet, ignored",
            "key attributes.kubernetes.meta_cache_address: not supported yet, ignored",
            "key discovery.instrument[0].k8s_job_name: not supported yet, ignored",
            "key discovery.survey[0].exe_path: not supported yet, ignored",
            "key network.enable: not supported yet, ignored",
        ]
    );
    assert!(c.warnings.iter().all(Warning::is_unsupported));
    // The entry with only a criterion not checked yet selects nothing; the other stays.
    assert_eq!(c.discovery.instrument.len(), 1);
    // A misspelt key inside a warned section is still a mistake.
    assert_eq!(
        message("network:\n  enabel: true\n"),
        "unknown key network.enabel in beyla-config.yml; did you mean network.enable?"
    );
}

#[test]
fn variables_obi_aliases_and_unknown_names() {
    let vars = [
        ("OTEL_EBPF_OPEN_PORT", "9000"),
        ("BEYLA_OPEN_PORT", "8000"),
        ("OTEL_EBPF_KUBE_META_CACHE_ADDRESS", "cache:50055"),
        ("BEYLA_KUBE_META_CACHE_ADDRESS", "cache:50055"),
        ("BEYLA_TRACE_PRINTR", "json"),
        ("BEYLA_SERVICE_HOST", "10.0.0.1"),
        ("BEYLA_PORT_9090_TCP_ADDR", "10.0.0.1"),
        ("BEYLA_OTEL_KUBE_CLUSTER_NAME", "prod"),
    ];
    let c = load(None, &vars, Flags::default()).unwrap();
    // OBI's name wins over Beyla's, as in Beyla.
    let ports = c.discovery.instrument[0].open_ports.as_ref().unwrap();
    assert!(ports.contains(9000) && !ports.contains(8000));
    let warnings: Vec<String> = c.warnings.iter().map(|w| w.to_string()).collect();
    assert_eq!(
        warnings,
        [
            "variable BEYLA_KUBE_META_CACHE_ADDRESS: not supported yet, ignored",
            "variable BEYLA_TRACE_PRINTR is not one of Beyla's, ignored; did you mean BEYLA_TRACE_PRINTER?",
        ]
    );
    assert_eq!(c.warnings.iter().filter(|w| w.is_unsupported()).count(), 1);
    assert_eq!(
        load(None, &[("OTEL_EBPF_OPEN_PORT", "x")], Flags::default())
            .unwrap_err()
            .to_string(),
        "invalid value \"x\" for environment variable OTEL_EBPF_OPEN_PORT: expected a port from 1 to 65535, a comma-separated list such as 80,443, or a range such as 8000-8090"
    );
}

#[test]
fn file_refers_to_the_environment_and_refuses_duplicates() {
    let text = "discovery:\n  instrument:\n    - open_ports: ${PORT}\n      name: ${NAME:-fallback}\n      exe_path: '${env:EXE}'\n      namespace: '$${NOT_A_VARIABLE}'\n";
    let c = load(
        Some(("beyla-config.yml", text)),
        &[("PORT", "8080"), ("EXE", "*/python3")],
        Flags::default(),
    )
    .unwrap();
    let entry = &c.discovery.instrument[0];
    assert!(entry.open_ports.as_ref().unwrap().contains(8080));
    assert_eq!(entry.name.as_deref(), Some("fallback"));
    assert!(entry
        .exe_path
        .as_ref()
        .unwrap()
        .is_match("/usr/bin/python3"));
    assert_eq!(entry.namespace.as_deref(), Some("${NOT_A_VARIABLE}"));
    assert_eq!(
        message("discovery: {services: [{open_ports: 80}]}\nebpf:\n  wakeup_len: 1\n  wakeup_len: 2\n"),
        "cannot parse config file beyla-config.yml as YAML: ebpf: duplicate entry with key \"wakeup_len\" at line 3 column 3"
    );
    assert_eq!(
        load(
            Some(("beyla.toml", "[ebpf]\nwakeup_len = 1\nwakeup_len = 2\n")),
            &[("BEYLA_OPEN_PORT", "80")],
            Flags::default()
        )
        .unwrap_err()
        .to_string(),
        "cannot parse config file beyla.toml as TOML: duplicate key at line 3 column 1"
    );
    // Merge keys, as yaml.v3 reads them.
    let c = yaml("base: &base {open_ports: 80}\n").unwrap_err();
    assert!(c.to_string().starts_with("unknown key base"), "{c}");
    let c = yaml("discovery:\n  instrument:\n    - &web {open_ports: 8080, name: web}\n    - <<: *web\n      name: web2\n").unwrap();
    assert_eq!(c.discovery.instrument[1].name.as_deref(), Some("web2"));
    assert!(c.discovery.instrument[1]
        .open_ports
        .as_ref()
        .unwrap()
        .contains(8080));
}

#[test]
fn beylas_single_dash_flags() {
    let args = |a: &[&str]| Flags::from_command_line(a.iter().map(|s| s.to_string()));
    let flags = args(&["beyla", "-config", "/etc/beyla.yml", "-check-config"]);
    assert_eq!(flags.config.as_deref(), Some("/etc/beyla.yml"));
    assert!(flags.check_config);
    let flags = args(&["beyla", "-config=/b.yml", "--open-port", "80"]);
    assert_eq!(flags.config.as_deref(), Some("/b.yml"));
    assert_eq!(flags.open_port.as_deref(), Some("80"));
}

#[test]
fn top_level_selection_names_and_formats() {
    let c = load(
        Some((
            "beyla-config.yml",
            "open_port: 8080\nexecutable_name: python\nservice_name: shop-api\nservice_namespace: shop\nlog_format: json\ntrace_printer: json_indent\n",
        )),
        &[],
        Flags::default(),
    )
    .unwrap();
    let entry = &c.discovery.instrument[0];
    assert!(entry.open_ports.as_ref().unwrap().contains(8080));
    assert!(entry
        .exe_path
        .as_ref()
        .unwrap()
        .is_match("/usr/bin/python3"));
    assert_eq!(entry.namespace.as_deref(), Some("shop"));
    assert_eq!(c.service_name.as_deref(), Some("shop-api"));
    assert_eq!(c.log_format, LogFormat::Json);
    assert_eq!(c.export.trace_printer, PrinterFormat::JsonIndent);

    // BEYLA_AUTO_TARGET_EXE is a glob over the whole path, preferred to the regex.
    let c = load(
        None,
        &[
            ("BEYLA_AUTO_TARGET_EXE", "*/server"),
            ("BEYLA_EXECUTABLE_NAME", "python"),
            ("BEYLA_SERVICE_NAME", "svc"),
            ("BEYLA_METRICS_INTERVAL", "5s"),
            ("OTEL_METRIC_EXPORT_INTERVAL", "1000"),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"),
        ],
        Flags::default(),
    )
    .unwrap();
    let exe = c.discovery.instrument[0].exe_path.as_ref().unwrap();
    assert!(exe.is_match("/opt/app/server") && !exe.is_match("/opt/app/server2"));
    assert_eq!(c.service_name.as_deref(), Some("svc"));
    assert_eq!(
        c.export.otlp_metrics.unwrap().interval,
        Duration::from_secs(5)
    );

    // The default exclusions stay unless the file writes its own.
    let excluded = |c: &Config, exe: &str| {
        c.discovery.exclude.iter().any(|s| {
            s.matches(&ProcessFacts {
                exe: std::path::Path::new(exe),
                cmd_args: None,
                listening: None,
                in_container: None,
                pod: None,
            })
        })
    };
    let c = yaml("discovery: {instrument: [{exe_path: '*'}]}").unwrap();
    assert!(excluded(&c, "/usr/bin/otelcol-contrib") && excluded(&c, "/opt/alloy"));
    assert!(!excluded(&c, "/usr/bin/python3"));
    let c =
        yaml("discovery: {instrument: [{exe_path: '*'}], default_exclude_instrument: []}").unwrap();
    assert!(!excluded(&c, "/usr/bin/otelcol-contrib"));
    let c = yaml("discovery:\n  instrument: [{exe_path: '*'}]\n  default_exclude_instrument:\n")
        .unwrap();
    assert!(
        !excluded(&c, "/usr/bin/otelcol-contrib"),
        "an empty value turns them off"
    );
}

#[test]
fn protocol_is_guessed_from_the_port_as_beyla_does() {
    let endpoint = |text: &str| {
        let c = yaml(&format!(
            "open_port: 80\notel_traces_export: {{endpoint: '{text}'}}"
        ))
        .unwrap();
        let t = c.export.otlp_traces.unwrap();
        (t.endpoint, t.protocol)
    };
    assert_eq!(
        endpoint("tempo:4317"),
        ("tempo:4317".into(), OtlpProtocol::Grpc)
    );
    assert_eq!(
        endpoint("http://tempo:14317"),
        ("http://tempo:14317".into(), OtlpProtocol::Grpc)
    );
    assert_eq!(
        endpoint("http://tempo:4318"),
        (
            "http://tempo:4318/v1/traces".into(),
            OtlpProtocol::HttpProtobuf
        )
    );
    // A protocol given wins over the guess.
    let c = load(
        None,
        &[
            ("BEYLA_OPEN_PORT", "80"),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4317"),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
        ],
        Flags::default(),
    )
    .unwrap();
    assert_eq!(
        c.export.otlp_traces.unwrap().endpoint,
        "http://c:4317/v1/traces"
    );
}

#[test]
fn application_filter_as_beyla_checks_it() {
    let c = yaml(
        "open_port: 80\nfilter:\n  application:\n    url.path:\n      not_match: '/health*'\n    http_response_status_code:\n      greater_equals: 500\n    k8s.namespace.name:\n      match: shop\n  network:\n    transport:\n      not_match: UDP\n",
    )
    .unwrap();
    assert_eq!(c.filter.rules.len(), 2);
    // Names in file order is not kept: rules all apply, in name order.
    assert_eq!(c.filter.rules[0].attribute, "http.response.status_code");
    assert_eq!(c.filter.rules[1].attribute, "url.path");
    let warnings: Vec<String> = c.warnings.iter().map(|w| w.to_string()).collect();
    assert_eq!(
        warnings,
        [
            "key filter.network.transport.not_match: not supported yet, ignored",
            "key filter.application.k8s.namespace.name: not supported yet, ignored",
        ]
    );
    let rendered = c.render_effective();
    assert!(
        rendered.contains("filter:\n  application:\n    http.response.status_code:\n      greater_equals: 500\n    url.path:\n      not_match: /health*\n"),
        "{rendered}"
    );
    assert_eq!(yaml(&rendered).unwrap().render_effective(), rendered);
    for (rule, expected) in [
        ("{}", "one of match or not_match"),
        ("{match: a, not_match: b}", "one of match or not_match"),
        ("{match: a, equals: 1}", "one of match or not_match"),
    ] {
        assert!(
            message(&format!("open_port: 80\nfilter: {{application: {{url.path: {rule}}}}}"))
                .starts_with(&format!("filter.application.url.path in beyla-config.yml is incomplete or contradictory: expected {expected}")),
            "{rule}"
        );
    }
    assert_eq!(
        message("open_port: 80\nfilter: {application: {http.route: {equals: x}}}"),
        "invalid value \"x\" for key filter.application.http.route.equals in beyla-config.yml: expected an integer, such as 500"
    );
}

#[test]
fn sampler_arguments_as_beyla_reads_them() {
    let sampler = |text: &str| {
        yaml(&format!(
            "open_port: 80\notel_traces_export: {{sampler: {text}}}"
        ))
        .unwrap()
        .sampler
    };
    // Only the ratio samplers read the argument; beyond 0..1, the nearest.
    assert_eq!(
        sampler("{name: always_on, arg: ten}"),
        SamplerConfig::AlwaysOn
    );
    assert_eq!(sampler("{arg: ten}"), SamplerConfig::ParentBasedAlwaysOn);
    assert_eq!(
        sampler("{name: traceidratio, arg: '1.5'}"),
        SamplerConfig::TraceIdRatio(1.0)
    );
    assert_eq!(
        sampler("{name: parentbased_traceidratio, arg: -0.2}"),
        SamplerConfig::ParentBasedTraceIdRatio(0.0)
    );
    assert_eq!(
        sampler("{name: traceidratio, arg: 0.25}"),
        SamplerConfig::TraceIdRatio(0.25)
    );
}

#[test]
fn features_instrumentations_and_ttl() {
    let c = yaml(
        "open_port: 80\nprometheus_export:\n  port: 9400\n  ttl: 30s\n  instrumentations: [grpc]\nmetrics:\n  features: [application, application_service_graph]\notel_metrics_export:\n  endpoint: http://m:4318\n  features: [network]\notel_traces_export:\n  endpoint: http://t:4318\n  instrumentations: [http, sql]\n",
    )
    .unwrap();
    let prometheus = c.export.prometheus.as_ref().unwrap();
    assert_eq!(prometheus.series_ttl, Duration::from_secs(30));
    assert_eq!(
        prometheus.instrumentations,
        Instrumentations {
            grpc: true,
            ..Instrumentations::NONE
        }
    );
    // The exporter's own features win over metrics.features, as in Beyla:
    // without `application`, OTLP metrics record no span.
    assert_eq!(
        c.export
            .otlp_metrics
            .as_ref()
            .unwrap()
            .signal
            .instrumentations,
        Instrumentations::NONE
    );
    assert_eq!(
        c.export.otlp_traces.as_ref().unwrap().instrumentations,
        Instrumentations {
            http: true,
            sql: true,
            ..Instrumentations::NONE
        }
    );
    let warnings: Vec<String> = c.warnings.iter().map(|w| w.to_string()).collect();
    assert_eq!(
        warnings,
        [
            "key otel_metrics_export.features: network not supported yet, ignored",
            "key metrics.features: application_service_graph not supported yet, ignored",
        ]
    );
    let rendered = c.render_effective();
    assert_eq!(yaml(&rendered).unwrap().render_effective(), rendered);
    assert_eq!(
        message("open_port: 80\nprometheus_export: {port: 9400, instrumentations: [htp]}"),
        "invalid value \"htp\" for key prometheus_export.instrumentations[0] in beyla-config.yml: expected instrumentation names, such as [http, grpc] or *; known: *, http, grpc, sql, redis, kafka, mqtt, nats, amqp, gpu, mongo, dns, couchbase, genai, memcached, sunrpc, aerospike"
    );
    let c = load(
        None,
        &[
            ("BEYLA_OPEN_PORT", "80"),
            ("BEYLA_PROMETHEUS_PORT", "9400"),
            ("BEYLA_PROMETHEUS_FEATURES", "application,application_span"),
            ("BEYLA_PROMETHEUS_INSTRUMENTATIONS", "http"),
            ("BEYLA_PROMETHEUS_TTL", "1m"),
        ],
        Flags::default(),
    )
    .unwrap();
    let prometheus = c.export.prometheus.unwrap();
    assert_eq!(
        (
            prometheus.series_ttl,
            prometheus.instrumentations.http,
            prometheus.instrumentations.grpc
        ),
        (Duration::from_secs(60), true, false)
    );
    assert_eq!(c.warnings.len(), 1, "{:?}", c.warnings);
}

#[test]
fn grafana_cloud_as_beyla_builds_it() {
    assert_eq!(base64(b"123456:glc_secret"), "MTIzNDU2OmdsY19zZWNyZXQ=");
    assert_eq!(base64(b"a"), "YQ==");
    assert_eq!(base64(b"ab"), "YWI=");
    // The instance and key give Basic authentication; an endpoint set
    // otherwise wins over the zone's; by default only traces are sent.
    let c = load(
        None,
        &[
            ("BEYLA_OPEN_PORT", "80"),
            ("GRAFANA_CLOUD_ZONE", "prod-eu-west-0"),
            ("GRAFANA_CLOUD_INSTANCE_ID", "123456"),
            ("GRAFANA_CLOUD_API_KEY", "glc_secret"),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318"),
            (
                "OTEL_EXPORTER_OTLP_HEADERS",
                "Authorization=Bearer%20x,X-Team=web",
            ),
        ],
        Flags::default(),
    )
    .unwrap();
    let traces = c.export.otlp_traces.unwrap();
    assert_eq!(traces.endpoint, "http://127.0.0.1:4318/v1/traces");
    assert_eq!(
        traces.headers,
        [
            ("X-Team".to_string(), "web".to_string()),
            (
                "Authorization".to_string(),
                "Basic MTIzNDU2OmdsY19zZWNyZXQ=".to_string()
            )
        ]
    );
    let metrics = c.export.otlp_metrics.unwrap();
    assert!(
        metrics
            .signal
            .headers
            .contains(&("Authorization".to_string(), "Bearer x".to_string())),
        "metrics are not submitted to Grafana Cloud by default: their headers stay"
    );
    // The zone alone gives the endpoint, a base URL.
    let c = yaml("open_port: 80\ngrafana:\n  otlp:\n    cloud_zone: prod-eu-west-0\n    cloud_submit: [metrics]\n")
        .unwrap();
    assert!(c.export.otlp_traces.is_none());
    assert_eq!(
        c.export.otlp_metrics.unwrap().signal.endpoint,
        "https://otlp-gateway-prod-eu-west-0.grafana.net/otlp/v1/metrics"
    );
}

#[test]
fn sql_query_text_is_sanitized_unless_raw_is_asked_for() {
    use beyla_pipeline::protocols::sql::QueryText;
    let base = "discovery: {instrument: [{open_ports: 80}]}";
    assert_eq!(yaml(base).unwrap().sql_query_text, QueryText::Sanitized);
    let file = format!("{base}\nebpf: {{sql_query_text: raw}}");
    assert_eq!(yaml(&file).unwrap().sql_query_text, QueryText::Raw);
    let env = [("BEYLA_BPF_SQL_QUERY_TEXT", "sanitized")];
    let c = load(Some(("beyla-config.yml", &file)), &env, Flags::default()).unwrap();
    assert_eq!(c.sql_query_text, QueryText::Sanitized);
    assert_eq!(
        message(&format!("{base}\nebpf: {{sql_query_text: verbatim}}")),
        "invalid value \"verbatim\" for key ebpf.sql_query_text in beyla-config.yml: expected one of sanitized, raw"
    );
}

#[test]
fn kubernetes_selectors_are_globs_in_instrument_and_regexes_in_services() {
    let c = yaml(
        "attributes: {kubernetes: {enable: autodetect}}\n\
         discovery:\n  instrument:\n    - k8s_namespace: shop*\n      k8s_pod_labels: {tier: web}\n\
         \x20 exclude_instrument:\n    - k8s_deployment_name: canary\n",
    )
    .unwrap();
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
    let pods = c.discovery.instrument[0].kubernetes.as_ref().unwrap();
    let namespace = pods.namespace.as_ref().unwrap();
    assert!(namespace.is_match("shop-eu") && !namespace.is_match("my-shop"));
    assert_eq!(pods.pod_labels[0].0, "tier");
    assert!(c.discovery.exclude[0].kubernetes.is_some());

    let c = yaml("discovery:\n  services:\n    - k8s_namespace: shop\n").unwrap();
    let namespace = c.discovery.instrument[0]
        .kubernetes
        .as_ref()
        .unwrap()
        .namespace
        .as_ref()
        .unwrap();
    assert!(
        namespace.is_match("my-shop"),
        "services patterns are unanchored regexes"
    );
    assert_eq!(
        c.warnings.iter().map(ToString::to_string).collect::<Vec<_>>(),
        ["discovery selects pods with k8s_* keys, but Kubernetes metadata is off: those entries select nothing; set attributes.kubernetes.enable (or BEYLA_KUBE_METADATA_ENABLE) to true or autodetect"]
    );
}

#[test]
fn a_malformed_header_item_is_refused_without_its_secret() {
    let headers = |value: &str| {
        parse::headers(&Raw {
            value: value.into(),
            origin: Origin::Env("OTEL_EXPORTER_OTLP_HEADERS".to_string()),
        })
        .map_err(|e| e.to_string())
    };
    let expected = "expected name=value pairs separated by commas, such as Authorization=Basic%20abc,X-Scope-OrgID=1";
    let percent = "; the value of Authorization has a % not followed by two hex digits";
    for (value, shown, hint) in [
        (
            "X-Scope-OrgID=1,Authorization: Bearer s3cr3t",
            "(item 2 of 2 not shown: 28 characters that are not name=value)",
            "",
        ),
        (
            "Authorization=Bearer%2s3cr3t",
            "Authorization=(value not shown, 14 characters)",
            percent,
        ),
        (
            "Bearer s3cr3t=x",
            "(item 1 of 1 not shown: 15 characters that are not name=value)",
            "",
        ),
        (
            "s3cr3t",
            "(item 1 of 1 not shown: 6 characters that are not name=value)",
            "",
        ),
    ] {
        let error = headers(value).unwrap_err();
        assert_eq!(
            error,
            format!("invalid value {shown:?} for environment variable OTEL_EXPORTER_OTLP_HEADERS: {expected}{hint}")
        );
        assert!(!error.contains("s3cr3t"), "{error}");
    }
    assert_eq!(
        headers("Authorization=Bearer%20s3cr3t").unwrap(),
        vec![("Authorization".to_string(), "Bearer s3cr3t".to_string())]
    );
}

#[test]
fn context_propagation_as_beyla_reads_it() {
    let base = "discovery: {services: [{open_port: 80}]}\n";
    type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], ContextPropagation);
    let cases: &[Case] = &[
        ("", &[], ContextPropagation::Disabled),
        (
            "ebpf: {context_propagation: headers}",
            &[],
            ContextPropagation::Headers,
        ),
        (
            "ebpf: {context_propagation: ip}",
            &[],
            ContextPropagation::Ip,
        ),
        (
            "",
            &[("BEYLA_BPF_CONTEXT_PROPAGATION", "all")],
            ContextPropagation::All,
        ),
        (
            "ebpf: {context_propagation: all}",
            &[("OTEL_EBPF_BPF_CONTEXT_PROPAGATION", "disabled")],
            ContextPropagation::Disabled,
        ),
        // The older switch counts only when the newer key is not set.
        (
            "ebpf: {enable_context_propagation: true}",
            &[],
            ContextPropagation::All,
        ),
        (
            "ebpf: {enable_context_propagation: true, context_propagation: headers}",
            &[],
            ContextPropagation::Headers,
        ),
    ];
    for (file, vars, want) in cases {
        let text = format!("{base}{file}");
        let c = load(Some(("beyla-config.yml", &text)), vars, Flags::default()).unwrap();
        assert_eq!(c.ebpf.context_propagation, *want, "{file} {vars:?}");
    }
    // The IP-options part is warned about, once.
    let text = format!("{base}ebpf: {{context_propagation: all}}");
    let c = load(Some(("beyla-config.yml", &text)), &[], Flags::default()).unwrap();
    let warnings: Vec<String> = c.warnings.iter().map(|w| w.to_string()).collect();
    assert_eq!(
        warnings,
        ["key ebpf.context_propagation: propagation in IP options (ip, or the ip part of all) not supported yet, ignored"]
    );
    assert!(ContextPropagation::All.headers() && ContextPropagation::All.asks_ip());
    assert!(!ContextPropagation::Ip.headers() && !ContextPropagation::Disabled.asks_ip());
}
