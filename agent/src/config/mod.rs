//! Configuration: defaults < config file (YAML or TOML, Beyla's keys) <
//! environment (`BEYLA_*`, `OTEL_*`) < command-line flags. Every bad value is
//! refused at start-up with where it came from and what was expected.
//! docs/configuration.md lists every key and variable; a test keeps it in step.

mod error;
mod file;
mod keys;
mod limits;
mod parse;
mod ports;
mod render;
mod selection;
#[cfg(test)]
mod tests;
mod vars;

use std::time::Duration;

use clap::Parser;
use log::LevelFilter;
use serde_json::Value;

pub use error::{ConfigError, Origin, Warning};
pub use ports::PortSet;
pub use selection::{cmd_args, DiscoveryConfig, ProcessFacts, Selection};

use beyla_pipeline::decorate::filter::{self as span_filter, AttributeFilter, Bounds, Rule, Test};
use beyla_pipeline::decorate::DEFAULT_MAX_SEGMENT_CARDINALITY;
pub use beyla_pipeline::decorate::{IgnoreMode, RoutesSettings, Unmatched};
pub use beyla_pipeline::export::otlp::Protocol as OtlpProtocol;
use beyla_pipeline::export::otlp::{Compression, MetricsConfig, SignalConfig};
use beyla_pipeline::export::prometheus::PrometheusConfig;
use beyla_pipeline::export::select::Instrumentations;
use beyla_pipeline::export::{ExportConfig, PrinterFormat};
use beyla_pipeline::sample::SamplerConfig;

use beyla_pipeline::protocols::sql::QueryText;
use regex::Regex;

use crate::ebpf::{CapturePath, DEFAULT_CAPTURE, MAX_CAPTURE};
pub use crate::kubernetes::{Enable as KubernetesEnable, KubernetesConfig};
use crate::kubernetes::{PodSelector, DEFAULT_SYNC_TIMEOUT};
use file::FileConfig;
use vars::Env;

/// How trace context travels to the services a traced client calls
/// (`ebpf.context_propagation`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContextPropagation {
    Disabled,
    /// A `traceparent` header written into outgoing plaintext HTTP/1 requests.
    Headers,
    /// Out of band, in the packets' IP/TCP options: Beyla's, not supported yet.
    Ip,
    /// Headers and IP options.
    All,
}

impl ContextPropagation {
    /// Whether `traceparent` headers are injected.
    pub fn headers(self) -> bool {
        matches!(self, Self::Headers | Self::All)
    }

    /// Whether the part not supported yet (IP options) was asked for.
    pub fn asks_ip(self) -> bool {
        matches!(self, Self::Ip | Self::All)
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Disabled => "disabled",
            Self::Headers => "headers",
            Self::Ip => "ip",
            Self::All => "all",
        }
    }
}

/// How the agent's own log lines are written (`log_format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    /// One JSON object per line: `time`, `level`, `msg`.
    Json,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EbpfConfig {
    /// Ring-buffer records to accumulate before waking user space (0 or 1:
    /// every record); unset: the reader polls and the probes wake it only
    /// when the ring is filling up, which costs the traced service least.
    pub wakeup_len: Option<u32>,
    /// Join the trace of an incoming request's `traceparent` header.
    pub track_request_headers: bool,
    pub context_propagation: ContextPropagation,
    /// How the probes see socket calls; None: the cheapest the kernel offers.
    pub capture_path: Option<CapturePath>,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub discovery: DiscoveryConfig,
    /// Payload bytes the probes copy per socket syscall.
    pub capture_size: u32,
    pub log_level: LevelFilter,
    pub log_format: LogFormat,
    pub ebpf: EbpfConfig,
    /// Exporters: printer, OTLP traces and metrics, Prometheus.
    pub export: ExportConfig,
    pub sampler: SamplerConfig,
    pub routes: RoutesSettings,
    /// `filter.application`: spans kept only when every rule holds.
    pub filter: AttributeFilter,
    /// `discovery.exclude_otel_instrumented_services`: a process that sends
    /// its own OpenTelemetry data is not exported again (Beyla's default: on).
    pub exclude_otel_instrumented: bool,
    /// How long an orderly stop may take before the agent exits anyway.
    pub shutdown_timeout: Duration,
    /// `service_name` (OTEL_SERVICE_NAME): overrides every selection's service name.
    pub service_name: Option<String>,
    /// OTEL_RESOURCE_ATTRIBUTES, added to every span's resource.
    pub resource_attributes: Vec<(String, String)>,
    /// `attributes.kubernetes`: pod metadata for selectors and attributes.
    pub kubernetes: KubernetesConfig,
    /// `db.query.text` of SQL spans: literals hidden (the default) or as sent.
    pub sql_query_text: QueryText,
    /// What the agent starts without acting on, in file then variable order.
    pub warnings: Vec<Warning>,
}

/// Command-line flags; each overrides the environment variable of the same meaning.
#[derive(Debug, Parser, Default)]
#[command(
    name = "beyla",
    version,
    about = "eBPF auto-instrumentation: HTTP traffic to OpenTelemetry spans"
)]
pub struct Flags {
    /// Config file, YAML (.yml, .yaml) or TOML (.toml). [env: BEYLA_CONFIG_PATH]
    #[arg(long, value_name = "FILE")]
    pub config: Option<String>,
    /// Print the effective configuration (secrets masked) and exit.
    #[arg(long)]
    pub check_config: bool,
    /// Instrument processes listening on these ports (8080, 80,443 or 8000-8090). [env: BEYLA_OPEN_PORT]
    #[arg(long)]
    pub open_port: Option<String>,
    /// Instrument processes whose executable path matches this regex. [env: BEYLA_EXECUTABLE_NAME]
    #[arg(long)]
    pub executable_name: Option<String>,
    /// Print spans on stdout: disabled, text or json. [env: BEYLA_TRACE_PRINTER]
    #[arg(long)]
    pub trace_printer: Option<String>,
    /// Payload bytes captured per socket call. [env: BEYLA_BPF_CAPTURE_SIZE]
    #[arg(long)]
    pub capture_size: Option<String>,
    /// db.query.text of SQL spans: sanitized (literals as ?) or raw. [env: BEYLA_BPF_SQL_QUERY_TEXT]
    #[arg(long)]
    pub sql_query_text: Option<String>,
    /// DEBUG, INFO, WARN or ERROR. [env: BEYLA_LOG_LEVEL]
    #[arg(long)]
    pub log_level: Option<String>,
}

/// One setting's value as one source wrote it, with where it was written.
#[derive(Debug, Clone)]
pub(crate) struct Raw {
    pub value: Value,
    pub origin: Origin,
}

/// The three layers above the defaults.
struct Sources {
    env: Env,
    file: Option<FileConfig>,
}

impl Sources {
    /// The highest source that sets it: the flag, then the variables in order, then the file key.
    fn get(&self, flag: Option<Raw>, vars: &[&'static str], key: &'static str) -> Option<Raw> {
        flag.or_else(|| self.env.first(vars))
            .or_else(|| self.file.as_ref()?.get(key))
    }
}

fn flag(value: &Option<String>, name: &'static str) -> Option<Raw> {
    value.as_ref().map(|v| Raw {
        value: Value::String(v.clone()),
        origin: Origin::Flag(name),
    })
}

/// Applies `parse` to the setting if some source set it, else gives the default.
fn or_default<T>(
    raw: Option<Raw>,
    parse: impl FnOnce(&Raw) -> Result<T, ConfigError>,
    default: T,
) -> Result<T, ConfigError> {
    raw.map_or(Ok(default), |raw| parse(&raw))
}

const PROTOCOLS: &[(&str, OtlpProtocol)] = &[
    ("http/protobuf", OtlpProtocol::HttpProtobuf),
    ("http/json", OtlpProtocol::HttpJson),
    ("grpc", OtlpProtocol::Grpc),
];

/// The variables of one OTLP signal, signal-specific first.
struct Signal {
    /// As `grafana.otlp.cloud_submit` names it.
    name: &'static str,
    path: &'static str,
    /// `OTEL_TRACES_EXPORTER` / `OTEL_METRICS_EXPORTER`: `otlp` or `none`.
    exporter_var: &'static str,
    endpoint_var: &'static str,
    protocol_var: &'static str,
    headers_var: &'static str,
    certificate_var: &'static str,
    compression_var: &'static str,
    endpoint_key: &'static str,
    protocol_key: &'static str,
    headers_key: &'static str,
    insecure_key: &'static str,
}

const TRACES: Signal = Signal {
    name: "traces",
    path: "/v1/traces",
    exporter_var: "OTEL_TRACES_EXPORTER",
    endpoint_var: "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    protocol_var: "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
    headers_var: "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
    certificate_var: "OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE",
    compression_var: "OTEL_EXPORTER_OTLP_TRACES_COMPRESSION",
    endpoint_key: "otel_traces_export.endpoint",
    protocol_key: "otel_traces_export.protocol",
    headers_key: "otel_traces_export.headers",
    insecure_key: "otel_traces_export.insecure_skip_verify",
};

const METRICS: Signal = Signal {
    name: "metrics",
    path: "/v1/metrics",
    exporter_var: "OTEL_METRICS_EXPORTER",
    endpoint_var: "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
    protocol_var: "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL",
    headers_var: "OTEL_EXPORTER_OTLP_METRICS_HEADERS",
    certificate_var: "OTEL_EXPORTER_OTLP_METRICS_CERTIFICATE",
    compression_var: "OTEL_EXPORTER_OTLP_METRICS_COMPRESSION",
    endpoint_key: "otel_metrics_export.endpoint",
    protocol_key: "otel_metrics_export.protocol",
    headers_key: "otel_metrics_export.headers",
    insecure_key: "otel_metrics_export.insecure_skip_verify",
};

impl Flags {
    /// The command line, with Beyla's single-dash form of the long flags
    /// (`beyla -config FILE`, as Go programs write them) read as `--config`.
    pub fn from_command_line(args: impl IntoIterator<Item = String>) -> Self {
        use clap::CommandFactory;
        let command = Self::command();
        let long: Vec<&str> = command
            .get_arguments()
            .filter_map(|a| a.get_long())
            .collect();
        let args = args.into_iter().enumerate().map(|(i, arg)| {
            let name = arg
                .strip_prefix('-')
                .filter(|rest| !rest.starts_with('-'))
                .map(|rest| rest.split('=').next().unwrap_or(rest));
            match name {
                Some(name) if i > 0 && long.contains(&name) => format!("-{arg}"),
                _ => arg,
            }
        });
        Self::parse_from(args.collect::<Vec<_>>())
    }
}

impl Config {
    /// Builds the configuration from flags, an environment lookup and the config
    /// file they name (read from disk, within [`limits`]).
    pub fn from_sources(
        flags: &Flags,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        Self::from_sources_with(flags, env, &|path| {
            limits::read(path).map_err(std::io::Error::other)
        })
    }

    /// [`Config::from_sources`] with the file reading given, for tests.
    pub fn from_sources_with(
        flags: &Flags,
        env: impl IntoIterator<Item = (String, String)>,
        read: &dyn Fn(&str) -> std::io::Result<String>,
    ) -> Result<Self, ConfigError> {
        let env = Env::new(env);
        let path = flags
            .config
            .clone()
            .or_else(|| env.get("BEYLA_CONFIG_PATH").map(|raw| raw.text()));
        let file = match path {
            Some(path) => {
                let text = read(&path).map_err(|e| ConfigError::Read {
                    file: path.clone(),
                    reason: e.to_string(),
                })?;
                Some(FileConfig::parse(&path, &text, &env)?)
            }
            None => None,
        };
        let mut warnings: Vec<Warning> = file
            .iter()
            .flat_map(|f| f.unsupported.iter().cloned().map(Warning::UnsupportedKey))
            .collect();
        warnings.extend(env.warnings());
        let s = Sources { env, file };
        let mut discovery = discovery(&s, flags)?;
        // Like the service name, the agent's namespace names every process.
        if let Some(namespace) = s.get(None, &["BEYLA_SERVICE_NAMESPACE"], "service_namespace") {
            for entry in &mut discovery.instrument {
                entry.namespace = Some(namespace.text().trim().to_string());
            }
        }
        let kubernetes = kubernetes(&s)?;
        if discovery.selects_pods() && kubernetes.enable == KubernetesEnable::No {
            warnings.push(Warning::KubernetesOff);
        }

        // Chosen, or decided below from whether any exporter is configured.
        let trace_printer = s
            .get(
                flag(&flags.trace_printer, "trace-printer"),
                &["BEYLA_TRACE_PRINTER"],
                "trace_printer",
            )
            .map(|raw| {
                parse::one_of(
                    &raw,
                    &[
                        ("disabled", PrinterFormat::Disabled),
                        ("text", PrinterFormat::Text),
                        ("json", PrinterFormat::Json),
                        ("json_indent", PrinterFormat::JsonIndent),
                    ],
                    "one of disabled, text, json, json_indent",
                )
            })
            .transpose()?;
        let capture_size = or_default(
            s.get(
                flag(&flags.capture_size, "capture-size"),
                &["BEYLA_BPF_CAPTURE_SIZE"],
                "ebpf.capture_size",
            ),
            |raw| {
                parse::integer(
                    raw,
                    64..=u64::from(MAX_CAPTURE - 1),
                    &format!("a byte count from 64 to {}", MAX_CAPTURE - 1),
                )
            },
            u64::from(DEFAULT_CAPTURE),
        )? as u32;
        let sql_query_text = or_default(
            s.get(
                flag(&flags.sql_query_text, "sql-query-text"),
                &["BEYLA_BPF_SQL_QUERY_TEXT"],
                "ebpf.sql_query_text",
            ),
            |raw| {
                parse::one_of(
                    raw,
                    &[("sanitized", QueryText::Sanitized), ("raw", QueryText::Raw)],
                    "one of sanitized, raw",
                )
            },
            QueryText::Sanitized,
        )?;
        let log_level = or_default(
            s.get(
                flag(&flags.log_level, "log-level"),
                &["BEYLA_LOG_LEVEL"],
                "log_level",
            ),
            |raw| {
                parse::one_of(
                    raw,
                    &[
                        ("DEBUG", LevelFilter::Debug),
                        ("INFO", LevelFilter::Info),
                        ("WARN", LevelFilter::Warn),
                        ("WARNING", LevelFilter::Warn),
                        ("ERROR", LevelFilter::Error),
                    ],
                    "one of DEBUG, INFO, WARN, ERROR",
                )
            },
            LevelFilter::Info,
        )?;
        let ebpf = EbpfConfig {
            wakeup_len: s
                .get(None, &["BEYLA_BPF_WAKEUP_LEN"], "ebpf.wakeup_len")
                .map(|raw| {
                    parse::integer(
                        &raw,
                        0..=u64::from(u32::MAX),
                        "a record count from 0 to 4294967295",
                    )
                    .map(|n| n as u32)
                })
                .transpose()?,
            track_request_headers: or_default(
                s.get(
                    None,
                    &["BEYLA_BPF_TRACK_REQUEST_HEADERS"],
                    "ebpf.track_request_headers",
                ),
                parse::boolean,
                false,
            )?,
            context_propagation: context_propagation(&s, &mut warnings)?,
            capture_path: s
                .get(None, &["BEYLA_BPF_CAPTURE_PATH"], "ebpf.capture_path")
                .map(|raw| {
                    parse::one_of(
                        &raw,
                        &[
                            ("auto", None),
                            ("fentry", Some(CapturePath::Fentry)),
                            ("tp_btf", Some(CapturePath::TpBtf)),
                            ("raw_tp", Some(CapturePath::RawTp)),
                            ("syscalls", Some(CapturePath::Syscalls)),
                        ],
                        "one of auto, fentry, tp_btf, raw_tp, syscalls",
                    )
                })
                .transpose()?
                .flatten(),
        };
        // Beyla's switch to send a span as soon as the response is seen:
        // spans here always leave when the response is complete, so the
        // value is only checked.
        or_default(
            s.get(
                None,
                &["BEYLA_BPF_HIGH_REQUEST_VOLUME"],
                "ebpf.high_request_volume",
            ),
            parse::boolean,
            false,
        )?;
        let traces_export = otlp(&s, &TRACES, &mut warnings)?;
        let sampler = sampler(&s)?;
        let interval = metrics_interval(&s)?;
        let global_features = s.get(None, &["BEYLA_METRICS_FEATURES"], "metrics.features");
        let metrics_export = match otlp(&s, &METRICS, &mut warnings)? {
            Some((mut signal, raw)) => {
                signal.instrumentations = metric_instrumentations(
                    &s,
                    &["BEYLA_METRICS_INSTRUMENTATIONS"],
                    "otel_metrics_export.instrumentations",
                    s.get(None, &[], "otel_metrics_export.features")
                        .or(global_features.clone()),
                    &mut warnings,
                )?;
                let metrics = MetricsConfig { signal, interval };
                metrics.validate().map_err(|e| raw.invalid(e.to_string()))?;
                Some(metrics)
            }
            None => None,
        };
        let traces_export = match traces_export {
            Some((mut signal, raw)) => {
                signal.instrumentations = or_default(
                    s.get(
                        None,
                        &["BEYLA_TRACES_INSTRUMENTATIONS"],
                        "otel_traces_export.instrumentations",
                    ),
                    parse::instrumentations,
                    Instrumentations::ALL,
                )?;
                signal.validate().map_err(|e| raw.invalid(e.to_string()))?;
                Some(signal)
            }
            None => None,
        };
        let path = or_default(
            s.get(None, &["BEYLA_PROMETHEUS_PATH"], "prometheus_export.path"),
            parse::url_path,
            "/metrics".to_string(),
        )?;
        let series_ttl = or_default(
            s.get(None, &["BEYLA_PROMETHEUS_TTL"], "prometheus_export.ttl"),
            |raw| positive(parse::duration(raw)?, raw),
            PrometheusConfig::default().series_ttl,
        )?;
        let prometheus_instrumentations = metric_instrumentations(
            &s,
            &["BEYLA_PROMETHEUS_INSTRUMENTATIONS"],
            "prometheus_export.instrumentations",
            s.get(
                None,
                &["BEYLA_PROMETHEUS_FEATURES"],
                "prometheus_export.features",
            )
            .or(global_features),
            &mut warnings,
        )?;
        let prometheus = match s.get(None, &["BEYLA_PROMETHEUS_PORT"], "prometheus_export.port") {
            Some(raw) => Some(PrometheusConfig {
                path,
                series_ttl,
                instrumentations: prometheus_instrumentations,
                ..PrometheusConfig::on_port(parse::integer(
                    &raw,
                    1..=65535,
                    "a port from 1 to 65535",
                )? as u16)
            }),
            None => None,
        };
        let shutdown_timeout = or_default(
            s.get(None, &["BEYLA_SHUTDOWN_TIMEOUT"], "shutdown_timeout"),
            parse::duration,
            Duration::from_secs(10),
        )?;
        let service_name = s
            .get(
                None,
                &["OTEL_SERVICE_NAME", "BEYLA_SERVICE_NAME"],
                "service_name",
            )
            .map(|raw| raw.text().trim().to_string());
        let log_format = or_default(
            s.get(None, &["BEYLA_LOG_FORMAT"], "log_format"),
            |raw| {
                parse::one_of(
                    raw,
                    &[("text", LogFormat::Text), ("json", LogFormat::Json)],
                    "one of text, json",
                )
            },
            LogFormat::Text,
        )?;
        let resource_attributes = or_default(
            s.env.get("OTEL_RESOURCE_ATTRIBUTES"),
            parse::attributes,
            Vec::new(),
        )?;
        let filter = application_filter(&s, &mut warnings)?;
        let exclude_otel_instrumented = or_default(
            s.get(
                None,
                &["BEYLA_EXCLUDE_OTEL_INSTRUMENTED_SERVICES"],
                "discovery.exclude_otel_instrumented_services",
            ),
            parse::boolean,
            true,
        )?;
        Ok(Config {
            routes: routes(&s)?,
            filter,
            exclude_otel_instrumented,
            discovery,
            capture_size,
            export: ExportConfig {
                // With no exporter the printer shows spans at once; with one, stdout stays quiet.
                trace_printer: trace_printer.unwrap_or(
                    if traces_export.is_none() && metrics_export.is_none() && prometheus.is_none() {
                        PrinterFormat::Text
                    } else {
                        PrinterFormat::Disabled
                    },
                ),
                otlp_traces: traces_export,
                otlp_metrics: metrics_export,
                prometheus,
            },
            log_level,
            log_format,
            ebpf,
            sampler,
            shutdown_timeout,
            service_name,
            resource_attributes,
            kubernetes,
            sql_query_text,
            warnings,
        })
    }
}

/// Beyla's default exclusions (`default_exclude_instrument`): itself, OBI,
/// Grafana Alloy and the OpenTelemetry Collector. Its Kubernetes namespaces
/// need Kubernetes metadata, which this agent does not read yet.
const DEFAULT_EXCLUDE_EXE: &str =
    "{*beyla,*alloy,*prometheus-config-reloader,*ebpf-instrument,*obi,*otelcol,*otelcol-contrib,*otelcol-contrib[!/]*}";

/// How the entries of one list are written.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Patterns {
    /// `instrument` lists: `exe_path` and `cmd_args` are globs.
    Glob,
    /// `services` lists (Beyla's older form): regular expressions.
    Regex,
}

/// Criteria of Beyla's that an entry may have and this agent cannot check
/// yet: such an entry selects nothing here (each key was warned about).
const UNCHECKED_CRITERIA: &[&str] = &[
    "container_name",
    "languages",
    "target_pids",
    "k8s_cronjob_name",
    "k8s_job_name",
    "k8s_container_name",
];

/// `ebpf.context_propagation`, or Beyla's older `ebpf.enable_context_propagation`
/// (true: `all`) when only that is set. The IP-options part (`ip`, and in
/// `all`) is warned about: not supported yet.
fn context_propagation(
    s: &Sources,
    warnings: &mut Vec<Warning>,
) -> Result<ContextPropagation, ConfigError> {
    let (raw, mode) = if let Some(raw) = s.get(
        None,
        &["BEYLA_BPF_CONTEXT_PROPAGATION"],
        "ebpf.context_propagation",
    ) {
        let mode = parse::one_of(
            &raw,
            &[
                ("all", ContextPropagation::All),
                ("headers", ContextPropagation::Headers),
                ("ip", ContextPropagation::Ip),
                ("disabled", ContextPropagation::Disabled),
            ],
            "one of all, headers, ip, disabled",
        )?;
        (raw, mode)
    } else if let Some(raw) = s.get(
        None,
        &["BEYLA_BPF_ENABLE_CONTEXT_PROPAGATION"],
        "ebpf.enable_context_propagation",
    ) {
        let mode = if parse::boolean(&raw)? {
            ContextPropagation::All
        } else {
            ContextPropagation::Disabled
        };
        (raw, mode)
    } else {
        return Ok(ContextPropagation::Disabled);
    };
    if mode.asks_ip() {
        warnings.push(Warning::UnsupportedValue {
            setting: raw.origin.setting(),
            value: "propagation in IP options (ip, or the ip part of all)".into(),
        });
    }
    Ok(mode)
}

fn file_entries(
    s: &Sources,
    key: &'static str,
    patterns: Patterns,
) -> Result<Vec<Selection>, ConfigError> {
    let Some(file) = &s.file else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for entry in file.entries(key) {
        let pattern = |raw: &Raw| match patterns {
            Patterns::Glob => parse::glob(raw),
            Patterns::Regex => parse::regex(raw),
        };
        let open_ports = match patterns {
            Patterns::Glob => entry.get("open_ports"),
            Patterns::Regex => match (entry.get("open_ports"), entry.get("open_port")) {
                (Some(_), Some(second)) => {
                    return Err(second.invalid("open_ports or open_port, not both"))
                }
                (ports, port) => ports.or(port),
            },
        };
        let exe_path = match patterns {
            Patterns::Glob => entry.get("exe_path"),
            // Beyla reads `exe_path_regexp` (its 1.0 name) when `exe_path` is unset.
            Patterns::Regex => entry
                .get("exe_path")
                .or_else(|| entry.get("exe_path_regexp")),
        };
        let selection = Selection {
            name: entry.get("name").map(|raw| raw.text()),
            namespace: entry.get("namespace").map(|raw| raw.text()),
            open_ports: open_ports.as_ref().map(parse::ports).transpose()?,
            exe_path: exe_path.as_ref().map(pattern).transpose()?,
            cmd_args: entry.get("cmd_args").as_ref().map(pattern).transpose()?,
            containers_only: or_default(entry.get("containers_only"), parse::boolean, false)?,
            kubernetes: pod_selector(&entry, patterns)?,
        };
        if selection.selects_something() {
            out.push(selection);
        } else if !entry.written().any(|k| UNCHECKED_CRITERIA.contains(&k)) {
            return Err(entry.empty("open_ports, exe_path, cmd_args or a k8s_* selector"));
        }
    }
    Ok(out)
}

/// The lists of the file, with the top-level selection (flags, `open_port`,
/// `executable_name`, `BEYLA_AUTO_TARGET_EXE`) as one more entry, as Beyla
/// adds it.
fn discovery(s: &Sources, flags: &Flags) -> Result<DiscoveryConfig, ConfigError> {
    let mut instrument = file_entries(s, "discovery.services", Patterns::Regex)?;
    instrument.extend(file_entries(s, "discovery.instrument", Patterns::Glob)?);
    let mut exclude = file_entries(s, "discovery.exclude_services", Patterns::Regex)?;
    exclude.extend(file_entries(
        s,
        "discovery.exclude_instrument",
        Patterns::Glob,
    )?);
    exclude.extend(file_entries(
        s,
        "discovery.default_exclude_services",
        Patterns::Regex,
    )?);
    let defaults_written = s.file.as_ref().is_some_and(|f| {
        f.has("discovery.default_exclude_instrument") || f.has("discovery.default_exclude_services")
    });
    if defaults_written {
        exclude.extend(file_entries(
            s,
            "discovery.default_exclude_instrument",
            Patterns::Glob,
        )?);
    } else {
        exclude.push(Selection {
            exe_path: Some(
                parse::glob(&Raw {
                    value: DEFAULT_EXCLUDE_EXE.into(),
                    origin: Origin::File {
                        file: "(defaults)".into(),
                        key: "discovery.default_exclude_instrument[0].exe_path".into(),
                    },
                })
                .expect("the default exclusion is a valid glob"),
            ),
            ..Selection::default()
        });
    }

    let open_ports = s.get(
        flag(&flags.open_port, "open-port"),
        &["BEYLA_OPEN_PORT"],
        "open_port",
    );
    // Beyla prefers the glob of BEYLA_AUTO_TARGET_EXE to the older regex.
    let exe_path = match s.env.get("BEYLA_AUTO_TARGET_EXE") {
        Some(glob) if flags.executable_name.is_none() => Some(parse::glob(&glob)?),
        _ => s
            .get(
                flag(&flags.executable_name, "executable-name"),
                &["BEYLA_EXECUTABLE_NAME"],
                "executable_name",
            )
            .as_ref()
            .map(parse::regex)
            .transpose()?,
    };
    if open_ports.is_some() || exe_path.is_some() {
        instrument.push(Selection {
            open_ports: open_ports.as_ref().map(parse::ports).transpose()?,
            exe_path,
            ..Selection::default()
        });
    }
    let written = |key| s.file.as_ref().is_some_and(|f| !f.entries(key).is_empty());
    if instrument.is_empty() && !written("discovery.services") && !written("discovery.instrument") {
        return Err(ConfigError::NoSelection);
    }
    Ok(DiscoveryConfig {
        instrument,
        exclude,
    })
}

/// One signal's exporter, present when some source gives an endpoint; with
/// the endpoint's setting, for errors the exporter's own check finds.
fn otlp(
    s: &Sources,
    signal: &Signal,
    warnings: &mut Vec<Warning>,
) -> Result<Option<(SignalConfig, Raw)>, ConfigError> {
    // Checked even without an endpoint, so that a mistake never hides.
    let protocol = s
        .get(
            None,
            &[signal.protocol_var, "OTEL_EXPORTER_OTLP_PROTOCOL"],
            signal.protocol_key,
        )
        .map(|raw| parse::one_of(&raw, PROTOCOLS, "one of http/protobuf, http/json, grpc"))
        .transpose()?;
    let headers = or_default(
        s.get(
            None,
            &[signal.headers_var, "OTEL_EXPORTER_OTLP_HEADERS"],
            signal.headers_key,
        ),
        parse::headers,
        Vec::new(),
    )?;
    // `none` turns the signal's exporter off; its settings are still checked.
    let exporter = or_default(
        s.env.get(signal.exporter_var),
        |raw| {
            parse::one_of(
                raw,
                &[("otlp", true), ("none", false)],
                "otlp or none (the Prometheus endpoint is BEYLA_PROMETHEUS_PORT)",
            )
        },
        true,
    )?;
    let grafana = grafana_cloud(s, signal)?;
    let given = s.get(
        None,
        &[signal.endpoint_var, "OTEL_EXPORTER_OTLP_ENDPOINT"],
        signal.endpoint_key,
    );
    let from_grafana = given.is_none();
    let Some(endpoint) = given.or_else(|| grafana.as_ref()?.endpoint.clone()) else {
        return Ok(None);
    };
    let protocol = protocol.unwrap_or_else(|| guess_protocol(&endpoint.text()));
    let mut url = parse::endpoint(&endpoint, protocol)?;
    // The common variable (and Grafana Cloud's endpoint) is a base URL for all
    // signals (OpenTelemetry spec); a signal's own endpoint is complete unless
    // it has no path at all.
    if protocol.is_http() {
        let base =
            endpoint.origin == Origin::Env("OTEL_EXPORTER_OTLP_ENDPOINT".into()) || from_grafana;
        let path = url
            .split_once("://")
            .and_then(|(_, rest)| rest.find('/').map(|i| &rest[i..]))
            .unwrap_or("");
        if base || path.trim_end_matches('/').is_empty() {
            url = format!("{}{}", url.trim_end_matches('/'), signal.path);
        }
    }
    let mut config = SignalConfig::new(url, protocol);
    config.headers = headers;
    config.compression = or_default(
        s.env
            .first(&[signal.compression_var, "OTEL_EXPORTER_OTLP_COMPRESSION"]),
        |raw| {
            parse::one_of(
                raw,
                &[("gzip", Compression::Gzip), ("none", Compression::None)],
                "gzip or none",
            )
        },
        Compression::None,
    )?;
    if let Some(path) = s
        .env
        .first(&[signal.certificate_var, "OTEL_EXPORTER_OTLP_CERTIFICATE"])
    {
        let file = path.text();
        let pem = std::fs::read(&file).map_err(|e| ConfigError::Read {
            file: file.clone(),
            reason: e.to_string(),
        })?;
        config.tls.ca_pem = Some(pem);
        config
            .tls
            .certificates()
            .map_err(|reason| path.invalid(format!("a PEM certificate file; {reason}")))?;
    }
    if let Some(raw) = s.get(None, &["BEYLA_INSECURE_SKIP_VERIFY"], signal.insecure_key) {
        config.tls.insecure_skip_verify = parse::boolean(&raw)?;
        if config.tls.insecure_skip_verify && protocol == OtlpProtocol::Grpc {
            // The gRPC client checks every certificate.
            config.tls.insecure_skip_verify = false;
            warnings.push(Warning::UnsupportedValue {
                setting: raw.origin.setting(),
                value: "true with protocol grpc".into(),
            });
        }
    }
    if let Some(authorization) = grafana.and_then(|g| g.authorization) {
        config
            .headers
            .retain(|(name, _)| !name.eq_ignore_ascii_case("Authorization"));
        config.headers.push(("Authorization".into(), authorization));
    }
    Ok(exporter.then_some((config, endpoint)))
}

/// What Grafana Cloud's settings give one signal: the endpoint of the zone
/// (used when no other is set) and Basic authentication from the instance
/// and key (over any Authorization header), as Beyla builds them.
struct GrafanaCloud {
    endpoint: Option<Raw>,
    authorization: Option<String>,
}

/// Beyla sends only traces to Grafana Cloud unless `cloud_submit` says more.
const GRAFANA_SUBMIT_DEFAULT: &str = "traces";

fn grafana_cloud(s: &Sources, signal: &Signal) -> Result<Option<GrafanaCloud>, ConfigError> {
    let zone = s.get(None, &["GRAFANA_CLOUD_ZONE"], "grafana.otlp.cloud_zone");
    let instance = s.get(
        None,
        &["GRAFANA_CLOUD_INSTANCE_ID"],
        "grafana.otlp.cloud_instance_id",
    );
    let key = s.get(
        None,
        &["GRAFANA_CLOUD_API_KEY"],
        "grafana.otlp.cloud_api_key",
    );
    let submit = match s.get(None, &["GRAFANA_CLOUD_SUBMIT"], "grafana.otlp.cloud_submit") {
        Some(raw) => parse::names(
            &raw,
            &["traces", "metrics"],
            "signals to send to Grafana Cloud, such as [traces, metrics]",
        )?,
        None => vec![GRAFANA_SUBMIT_DEFAULT.to_string()],
    };
    if (zone.is_none() && instance.is_none() && key.is_none())
        || !submit.iter().any(|s| s == signal.name)
    {
        return Ok(None);
    }
    let endpoint = zone.map(|zone| Raw {
        value: Value::String(format!(
            "https://otlp-gateway-{}.grafana.net/otlp",
            zone.text().trim()
        )),
        origin: zone.origin,
    });
    let authorization = match (instance, key) {
        (Some(instance), Some(key)) => Some(format!(
            "Basic {}",
            base64(format!("{}:{}", instance.text().trim(), key.text().trim()).as_bytes())
        )),
        _ => None,
    };
    Ok(Some(GrafanaCloud {
        endpoint,
        authorization,
    }))
}

/// Standard base64 with padding, for a Basic Authorization header.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &b)| n | u32::from(b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * i) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// With no protocol given, Beyla guesses it from the endpoint's port: one
/// ending in 4317 (`:4317`, `:14317`) is gRPC's usual port; anything else is
/// http/protobuf.
fn guess_protocol(endpoint: &str) -> OtlpProtocol {
    let authority = endpoint
        .split_once("://")
        .map_or(endpoint, |(_, rest)| rest)
        .split(['/', '?', '#'])
        .next()
        .unwrap_or("");
    match authority.rsplit_once(':') {
        Some((_, port)) if port.ends_with("4317") => OtlpProtocol::Grpc,
        _ => OtlpProtocol::HttpProtobuf,
    }
}

fn sampler(s: &Sources) -> Result<SamplerConfig, ConfigError> {
    #[derive(Clone, Copy)]
    enum Name {
        AlwaysOn,
        AlwaysOff,
        Ratio,
        ParentOn,
        ParentOff,
        ParentRatio,
    }
    let name = or_default(
        s.get(
            None,
            &["OTEL_TRACES_SAMPLER"],
            "otel_traces_export.sampler.name",
        ),
        |raw| {
            parse::one_of(
                raw,
                &[
                    ("always_on", Name::AlwaysOn),
                    ("always_off", Name::AlwaysOff),
                    ("traceidratio", Name::Ratio),
                    ("parentbased_always_on", Name::ParentOn),
                    ("parentbased_always_off", Name::ParentOff),
                    ("parentbased_traceidratio", Name::ParentRatio),
                ],
                "one of always_on, always_off, traceidratio, parentbased_always_on, parentbased_always_off, parentbased_traceidratio",
            )
        },
        Name::ParentOn,
    )?;
    // As in Beyla, only the ratio samplers read the argument.
    let ratio = || {
        or_default(
            s.get(
                None,
                &["OTEL_TRACES_SAMPLER_ARG"],
                "otel_traces_export.sampler.arg",
            ),
            parse::ratio,
            1.0,
        )
    };
    Ok(match name {
        Name::AlwaysOn => SamplerConfig::AlwaysOn,
        Name::AlwaysOff => SamplerConfig::AlwaysOff,
        Name::Ratio => SamplerConfig::TraceIdRatio(ratio()?),
        Name::ParentOn => SamplerConfig::ParentBasedAlwaysOn,
        Name::ParentOff => SamplerConfig::ParentBasedAlwaysOff,
        Name::ParentRatio => SamplerConfig::ParentBasedTraceIdRatio(ratio()?),
    })
}

fn positive(d: Duration, raw: &Raw) -> Result<Duration, ConfigError> {
    if d.is_zero() {
        Err(raw.invalid("a duration above zero"))
    } else {
        Ok(d)
    }
}

/// The Beyla metric features this agent produces: the RED metrics of
/// requests (`application`), or all.
const SPAN_METRIC_FEATURES: &[&str] = &["application", "all", "*"];

/// Every feature name of Beyla's reference.
const KNOWN_FEATURES: &[&str] = &[
    "application",
    "application_span",
    "application_span_otel",
    "application_span_sizes",
    "application_service_graph",
    "application_host",
    "application_runtime",
    "application_process",
    "network",
    "network_inter_zone",
    "network_flow_packets",
    "stats",
    "stats_tcp_rtt",
    "stats_tcp_failed_connections",
    "stats_tcp_retransmits",
    "stats_tcp_io",
    "ebpf",
    "all",
    "*",
];

/// The operations a metric exporter records: its `instrumentations`, and
/// nothing when its features (or `metrics.features`) leave `application`
/// out. Each feature this agent does not produce is one warning.
fn metric_instrumentations(
    s: &Sources,
    vars: &[&'static str],
    key: &'static str,
    features: Option<Raw>,
    warnings: &mut Vec<Warning>,
) -> Result<Instrumentations, ConfigError> {
    let instrumentations = or_default(
        s.get(None, vars, key),
        parse::instrumentations,
        Instrumentations::ALL,
    )?;
    let Some(features) = features else {
        return Ok(instrumentations);
    };
    let names = parse::names(
        &features,
        KNOWN_FEATURES,
        "metric features, such as [application] or application,application_span",
    )?;
    for name in &names {
        if !SPAN_METRIC_FEATURES.contains(&name.as_str()) {
            warnings.push(Warning::UnsupportedValue {
                setting: features.origin.setting(),
                value: name.clone(),
            });
        }
    }
    Ok(
        if names
            .iter()
            .any(|n| SPAN_METRIC_FEATURES.contains(&n.as_str()))
        {
            instrumentations
        } else {
            Instrumentations::NONE
        },
    )
}

/// Beyla's order: its own variable (a duration), the file key (a duration),
/// then OpenTelemetry's variable (milliseconds).
fn metrics_interval(s: &Sources) -> Result<Duration, ConfigError> {
    if let Some(raw) = s.get(
        None,
        &["BEYLA_METRICS_INTERVAL"],
        "otel_metrics_export.interval",
    ) {
        return positive(parse::duration(&raw)?, &raw);
    }
    match s.env.get("OTEL_METRIC_EXPORT_INTERVAL") {
        Some(raw) => {
            let ms = parse::integer(
                &raw,
                1..=u64::MAX,
                "a number of milliseconds above zero, such as 60000",
            )?;
            Ok(Duration::from_millis(ms))
        }
        None => Ok(Duration::from_secs(60)),
    }
}

/// `filter.application`, checked as Beyla checks it: each attribute has a
/// glob (`match` or `not_match`, not both) or integer bounds, not both. An
/// attribute this agent does not export is warned about and its rule ignored.
fn application_filter(
    s: &Sources,
    warnings: &mut Vec<Warning>,
) -> Result<AttributeFilter, ConfigError> {
    let Some(file) = &s.file else {
        return Ok(AttributeFilter::default());
    };
    let mut rules = Vec::new();
    for entry in file.named("filter.application") {
        let glob = |field| {
            entry
                .get(field)
                .map(|raw| Ok::<_, ConfigError>((parse::glob(&raw)?, raw.text())))
                .transpose()
        };
        let (matches, not_matches) = (glob("match")?, glob("not_match")?);
        let integer = |field| {
            entry
                .get(field)
                .map(|raw| {
                    raw.text()
                        .trim()
                        .parse::<i64>()
                        .map_err(|_| raw.invalid("an integer, such as 500"))
                })
                .transpose()
        };
        let bounds = Bounds {
            equals: integer("equals")?,
            not_equals: integer("not_equals")?,
            greater_than: integer("greater_than")?,
            greater_equals: integer("greater_equals")?,
            less_than: integer("less_than")?,
            less_equals: integer("less_equals")?,
        };
        let numeric = bounds != Bounds::default();
        let test = match (matches, not_matches, numeric) {
            (Some((pattern, glob)), None, false) => Test::Glob {
                glob,
                pattern,
                negate: false,
            },
            (None, Some((pattern, glob)), false) => Test::Glob {
                glob,
                pattern,
                negate: true,
            },
            (None, None, true) => Test::Integer(bounds),
            _ => {
                return Err(entry.incomplete(
                    "one of match or not_match (a glob), or integer bounds (equals, not_equals, greater_than, greater_equals, less_than, less_equals), not both",
                ))
            }
        };
        match span_filter::filterable(entry.name) {
            Some(attribute) => rules.push(Rule { attribute, test }),
            None => warnings.push(Warning::UnsupportedKey(entry.path.clone())),
        }
    }
    Ok(AttributeFilter { rules })
}

/// Route settings exist in the file only, as in Beyla.
fn routes(s: &Sources) -> Result<RoutesSettings, ConfigError> {
    let key = |key| s.get(None, &[], key);
    let max_segment_cardinality = or_default(
        key("routes.max_path_segment_cardinality"),
        |raw| parse::integer(raw, 1..=u64::from(u32::MAX), "a count from 1 to 4294967295"),
        DEFAULT_MAX_SEGMENT_CARDINALITY as u64,
    )? as usize;
    let low_cardinality = Unmatched::LowCardinality {
        max_segment_cardinality,
    };
    Ok(RoutesSettings {
        patterns: or_default(key("routes.patterns"), parse::patterns, Vec::new())?,
        ignored_patterns: or_default(key("routes.ignored_patterns"), parse::patterns, Vec::new())?,
        ignore_mode: or_default(
            key("routes.ignore_mode"),
            |raw| {
                parse::one_of(
                    raw,
                    &[
                        ("traces", IgnoreMode::Traces),
                        ("metrics", IgnoreMode::Metrics),
                        ("all", IgnoreMode::All),
                        ("both", IgnoreMode::All),
                    ],
                    "one of traces, metrics, all (or both, the same as all)",
                )
            },
            IgnoreMode::All,
        )?,
        unmatched: or_default(
            key("routes.unmatched"),
            |raw| {
                parse::one_of(
                    raw,
                    &[
                        ("heuristic", Unmatched::Heuristic),
                        ("path", Unmatched::Path),
                        ("wildcard", Unmatched::Wildcard),
                        ("low-cardinality", low_cardinality),
                        ("unset", Unmatched::Unset),
                    ],
                    "one of heuristic, path, wildcard, low-cardinality, unset",
                )
            },
            Unmatched::Heuristic,
        )?,
        wildcard_char: or_default(key("routes.wildcard_char"), parse::single_char, '*')?
            .to_string(),
    })
}

/// The `k8s_*` criteria of one discovery entry, written as the entry's
/// other patterns are (globs in `instrument`, regexes in `services`).
fn pod_selector(
    entry: &file::Entry<'_>,
    patterns: Patterns,
) -> Result<Option<PodSelector>, ConfigError> {
    let glob = patterns == Patterns::Glob;
    let pattern = |field| -> Result<Option<Regex>, ConfigError> {
        match entry.get(field) {
            Some(raw) if glob => Ok(Some(parse::glob(&raw)?)),
            Some(raw) => Ok(Some(parse::regex(&raw)?)),
            None => Ok(None),
        }
    };
    let map = |field| -> Result<Vec<(String, Regex)>, ConfigError> {
        entry
            .get(field)
            .map_or(Ok(Vec::new()), |raw| parse::pattern_map(&raw, glob))
    };
    let selector = PodSelector {
        namespace: pattern("k8s_namespace")?,
        pod_name: pattern("k8s_pod_name")?,
        deployment_name: pattern("k8s_deployment_name")?,
        replicaset_name: pattern("k8s_replicaset_name")?,
        statefulset_name: pattern("k8s_statefulset_name")?,
        daemonset_name: pattern("k8s_daemonset_name")?,
        owner_name: pattern("k8s_owner_name")?,
        pod_labels: map("k8s_pod_labels")?,
        pod_annotations: map("k8s_pod_annotations")?,
    };
    Ok((!selector.is_empty()).then_some(selector))
}

/// `attributes.kubernetes`.
fn kubernetes(s: &Sources) -> Result<KubernetesConfig, ConfigError> {
    let key = |vars: &[&'static str], key| s.get(None, vars, key);
    let enable = or_default(
        key(
            &["BEYLA_KUBE_METADATA_ENABLE"],
            "attributes.kubernetes.enable",
        ),
        |raw| {
            parse::one_of(
                raw,
                &[
                    ("true", KubernetesEnable::Yes),
                    ("false", KubernetesEnable::No),
                    ("autodetect", KubernetesEnable::Autodetect),
                ],
                "one of true, false, autodetect",
            )
        },
        KubernetesEnable::No,
    )?;
    let text = |raw: Raw| raw.text().trim().to_string();
    let config = KubernetesConfig {
        enable,
        cluster_name: key(
            &["BEYLA_KUBE_CLUSTER_NAME"],
            "attributes.kubernetes.cluster_name",
        )
        .map(text),
        kubeconfig_path: key(&["KUBECONFIG"], "attributes.kubernetes.kubeconfig_path")
            .map(|raw| text(raw).into()),
        node_name: s
            .env
            .first(&["BEYLA_KUBE_NODE_NAME", "NODE_NAME"])
            .map(text),
        sync_timeout: or_default(
            key(
                &["BEYLA_KUBE_INFORMERS_SYNC_TIMEOUT"],
                "attributes.kubernetes.informers_sync_timeout",
            ),
            parse::duration,
            DEFAULT_SYNC_TIMEOUT,
        )?,
    };
    Ok(config)
}
