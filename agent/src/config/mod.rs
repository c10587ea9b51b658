//! Configuration: defaults < config file (YAML or TOML, Beyla's keys) <
//! environment (`BEYLA_*`, `OTEL_*`) < command-line flags. Every bad value is
//! refused at start-up with where it came from and what was expected.
//! docs/configuration.md lists every key and variable; a test keeps it in step.

mod env;
mod error;
mod file;
mod limits;
mod parse;
mod ports;
mod render;
#[cfg(test)]
mod tests;

use std::time::Duration;

use clap::Parser;
use log::LevelFilter;
use regex::Regex;
use serde_json::Value;

pub use error::{ConfigError, Origin};
pub use ports::PortSet;

use beyla_pipeline::decorate::DEFAULT_MAX_SEGMENT_CARDINALITY;
pub use beyla_pipeline::decorate::{IgnoreMode, RoutesSettings, Unmatched};
pub use beyla_pipeline::export::otlp::Protocol as OtlpProtocol;
use beyla_pipeline::export::otlp::{MetricsConfig, SignalConfig};
use beyla_pipeline::export::prometheus::PrometheusConfig;
use beyla_pipeline::export::{ExportConfig, PrinterFormat};
use beyla_pipeline::protocols::sql::QueryText;
use beyla_pipeline::sample::SamplerConfig;

use crate::ebpf::{DEFAULT_CAPTURE, MAX_CAPTURE};
pub use crate::kubernetes::{Enable as KubernetesEnable, KubernetesConfig};
use crate::kubernetes::{PodSelector, DEFAULT_SYNC_TIMEOUT};
use env::Env;
use file::FileConfig;

/// Which processes to instrument. A process must match every criterion given;
/// each entry has at least one.
#[derive(Debug, Clone)]
pub struct Selection {
    /// Service name reported for the matched processes (default: the executable's name).
    pub name: Option<String>,
    pub namespace: Option<String>,
    pub open_ports: Option<PortSet>,
    /// Anchored for `instrument` globs, as written for `services` regexes.
    pub exe_path: Option<Regex>,
    /// The `k8s_*` criteria; None when the entry has none.
    pub kubernetes: Option<PodSelector>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EbpfConfig {
    /// Ring-buffer records to accumulate before waking user space (0 or 1:
    /// every record); unset: the reader polls and the probes wake it only
    /// when the ring is filling up, which costs the traced service least.
    pub wakeup_len: Option<u32>,
    /// Read the `traceparent` header of incoming requests.
    pub track_request_headers: bool,
    /// Send a request's events as soon as its response starts.
    pub high_request_volume: bool,
}

/// Which processes to instrument, from `discovery` or the flags and variables.
#[derive(Debug, Clone)]
pub struct DiscoveryConfig {
    /// Processes matching any entry are instrumented; never empty.
    pub instrument: Vec<Selection>,
    /// Processes matching any of these are not, whatever `instrument` says.
    pub exclude: Vec<Selection>,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub discovery: DiscoveryConfig,
    /// Payload bytes the probes copy per socket syscall.
    pub capture_size: u32,
    /// How SQL spans show their statement: literals hidden, or the raw text.
    pub sql_query_text: QueryText,
    pub log_level: LevelFilter,
    pub ebpf: EbpfConfig,
    /// Exporters: printer, OTLP traces and metrics, Prometheus.
    pub export: ExportConfig,
    pub sampler: SamplerConfig,
    pub routes: RoutesSettings,
    /// How long an orderly stop may take before the agent exits anyway.
    pub shutdown_timeout: Duration,
    /// OTEL_SERVICE_NAME: overrides every selection's service name.
    pub service_name: Option<String>,
    /// OTEL_RESOURCE_ATTRIBUTES, added to every span's resource.
    pub resource_attributes: Vec<(String, String)>,
    /// `attributes.kubernetes`: pod metadata for selectors and attributes.
    pub kubernetes: KubernetesConfig,
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
struct Sources<'a> {
    env: Env<'a>,
    file: Option<FileConfig>,
}

impl Sources<'_> {
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
    ("grpc", OtlpProtocol::Grpc),
];

/// The variables of one OTLP signal, signal-specific first.
struct Signal {
    path: &'static str,
    endpoint_var: &'static str,
    protocol_var: &'static str,
    headers_var: &'static str,
    endpoint_key: &'static str,
    protocol_key: &'static str,
    headers_key: &'static str,
}

const TRACES: Signal = Signal {
    path: "/v1/traces",
    endpoint_var: "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    protocol_var: "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
    headers_var: "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
    endpoint_key: "otel_traces_export.endpoint",
    protocol_key: "otel_traces_export.protocol",
    headers_key: "otel_traces_export.headers",
};

const METRICS: Signal = Signal {
    path: "/v1/metrics",
    endpoint_var: "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
    protocol_var: "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL",
    headers_var: "OTEL_EXPORTER_OTLP_METRICS_HEADERS",
    endpoint_key: "otel_metrics_export.endpoint",
    protocol_key: "otel_metrics_export.protocol",
    headers_key: "otel_metrics_export.headers",
};

impl Config {
    /// Builds the configuration from flags, an environment lookup and the config
    /// file they name (read from disk, within [`limits`]).
    pub fn from_sources(
        flags: &Flags,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        Self::from_sources_with(flags, env, &|path| {
            limits::read(path).map_err(std::io::Error::other)
        })
    }

    /// [`Config::from_sources`] with the file reading given, for tests.
    pub fn from_sources_with(
        flags: &Flags,
        env: &dyn Fn(&str) -> Option<String>,
        read: &dyn Fn(&str) -> std::io::Result<String>,
    ) -> Result<Self, ConfigError> {
        let env = Env(env);
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
                Some(FileConfig::parse(&path, &text)?)
            }
            None => None,
        };
        let s = Sources { env, file };
        let discovery = discovery(&s, flags)?;
        let kubernetes = kubernetes(&s, &discovery)?;

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
                    ],
                    "one of disabled, text, json",
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
            high_request_volume: or_default(
                s.get(
                    None,
                    &["BEYLA_BPF_HIGH_REQUEST_VOLUME"],
                    "ebpf.high_request_volume",
                ),
                parse::boolean,
                false,
            )?,
        };
        let traces_export = otlp(&s, &TRACES)?;
        let sampler = sampler(&s)?;
        let interval = metrics_interval(&s)?;
        let metrics_export = match otlp(&s, &METRICS)? {
            Some((signal, raw)) => {
                let metrics = MetricsConfig { signal, interval };
                metrics.validate().map_err(|e| raw.invalid(e.to_string()))?;
                Some(metrics)
            }
            None => None,
        };
        let traces_export = match traces_export {
            Some((signal, raw)) => {
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
        let prometheus = match s.get(None, &["BEYLA_PROMETHEUS_PORT"], "prometheus_export.port") {
            Some(raw) => Some(PrometheusConfig {
                path,
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
            .env
            .get("OTEL_SERVICE_NAME")
            .map(|raw| raw.text().trim().to_string());
        let resource_attributes = or_default(
            s.env.get("OTEL_RESOURCE_ATTRIBUTES"),
            parse::attributes,
            Vec::new(),
        )?;
        Ok(Config {
            routes: routes(&s)?,
            discovery,
            capture_size,
            sql_query_text,
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
            ebpf,
            sampler,
            shutdown_timeout,
            service_name,
            resource_attributes,
            kubernetes,
        })
    }
}

/// The flags or variables form one entry that replaces the file's lists;
/// exclusions come from the file only.
fn discovery(s: &Sources, flags: &Flags) -> Result<DiscoveryConfig, ConfigError> {
    let file_entries = |key, ports_field, glob: bool| -> Result<Vec<Selection>, ConfigError> {
        let Some(file) = &s.file else {
            return Ok(Vec::new());
        };
        file.entries(key)
            .into_iter()
            .map(|entry| {
                let open_ports = entry
                    .get(ports_field)
                    .as_ref()
                    .map(parse::ports)
                    .transpose()?;
                let exe_path = match entry.get("exe_path") {
                    Some(raw) if glob => Some(parse::glob(&raw)?),
                    Some(raw) => Some(parse::regex(&raw)?),
                    None => None,
                };
                let kubernetes = pod_selector(&entry, glob)?;
                if open_ports.is_none() && exe_path.is_none() && kubernetes.is_none() {
                    return Err(entry.empty(if ports_field == "open_port" {
                        "open_port, exe_path or a k8s_* selector"
                    } else {
                        "open_ports, exe_path or a k8s_* selector"
                    }));
                }
                let text = |field| entry.get(field).map(|raw| raw.text());
                let (name, namespace) = if key.starts_with("discovery.exclude") {
                    (None, None)
                } else {
                    (text("name"), text("namespace"))
                };
                Ok(Selection {
                    name,
                    namespace,
                    open_ports,
                    exe_path,
                    kubernetes,
                })
            })
            .collect()
    };
    let mut exclude = file_entries("discovery.exclude_services", "open_port", false)?;
    exclude.extend(file_entries(
        "discovery.exclude_instrument",
        "open_ports",
        true,
    )?);

    let open_ports = flag(&flags.open_port, "open-port").or_else(|| s.env.get("BEYLA_OPEN_PORT"));
    let exe_path = flag(&flags.executable_name, "executable-name")
        .or_else(|| s.env.get("BEYLA_EXECUTABLE_NAME"));
    if open_ports.is_some() || exe_path.is_some() {
        let entry = Selection {
            name: None,
            namespace: None,
            open_ports: open_ports.as_ref().map(parse::ports).transpose()?,
            exe_path: exe_path.as_ref().map(parse::regex).transpose()?,
            kubernetes: None,
        };
        return Ok(DiscoveryConfig {
            instrument: vec![entry],
            exclude,
        });
    }
    let mut instrument = file_entries("discovery.services", "open_port", false)?;
    instrument.extend(file_entries("discovery.instrument", "open_ports", true)?);
    if instrument.is_empty() {
        return Err(ConfigError::NoSelection);
    }
    Ok(DiscoveryConfig {
        instrument,
        exclude,
    })
}

/// One signal's exporter, present when some source gives an endpoint; with
/// the endpoint's setting, for errors the exporter's own check finds.
fn otlp(s: &Sources, signal: &Signal) -> Result<Option<(SignalConfig, Raw)>, ConfigError> {
    // Checked even without an endpoint, so that a mistake never hides.
    let protocol = or_default(
        s.get(
            None,
            &[signal.protocol_var, "OTEL_EXPORTER_OTLP_PROTOCOL"],
            signal.protocol_key,
        ),
        |raw| parse::one_of(raw, PROTOCOLS, "one of http/protobuf, grpc"),
        OtlpProtocol::HttpProtobuf,
    )?;
    let headers = or_default(
        s.get(
            None,
            &[signal.headers_var, "OTEL_EXPORTER_OTLP_HEADERS"],
            signal.headers_key,
        ),
        parse::headers,
        Vec::new(),
    )?;
    let Some(endpoint) = s.get(
        None,
        &[signal.endpoint_var, "OTEL_EXPORTER_OTLP_ENDPOINT"],
        signal.endpoint_key,
    ) else {
        return Ok(None);
    };
    let mut url = parse::endpoint(&endpoint, protocol)?;
    // The common variable is a base URL for all signals (OpenTelemetry spec);
    // a signal's own endpoint is complete unless it has no path at all.
    if protocol == OtlpProtocol::HttpProtobuf {
        let base = endpoint.origin == Origin::Env("OTEL_EXPORTER_OTLP_ENDPOINT");
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
    Ok(Some((config, endpoint)))
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
    // Checked even where the sampler ignores it, so that a typo never hides.
    let ratio = or_default(
        s.get(
            None,
            &["OTEL_TRACES_SAMPLER_ARG"],
            "otel_traces_export.sampler.arg",
        ),
        parse::ratio,
        1.0,
    )?;
    Ok(match name {
        Name::AlwaysOn => SamplerConfig::AlwaysOn,
        Name::AlwaysOff => SamplerConfig::AlwaysOff,
        Name::Ratio => SamplerConfig::TraceIdRatio(ratio),
        Name::ParentOn => SamplerConfig::ParentBasedAlwaysOn,
        Name::ParentOff => SamplerConfig::ParentBasedAlwaysOff,
        Name::ParentRatio => SamplerConfig::ParentBasedTraceIdRatio(ratio),
    })
}

/// The variable is in milliseconds (OpenTelemetry), the file key a duration (Beyla).
fn metrics_interval(s: &Sources) -> Result<Duration, ConfigError> {
    let positive = |d: Duration, raw: &Raw| {
        if d.is_zero() {
            Err(raw.invalid("a duration above zero"))
        } else {
            Ok(d)
        }
    };
    match s.get(
        None,
        &["OTEL_METRIC_EXPORT_INTERVAL"],
        "otel_metrics_export.interval",
    ) {
        Some(raw) if matches!(raw.origin, Origin::Env(_)) => {
            let ms = parse::integer(
                &raw,
                1..=u64::MAX,
                "a number of milliseconds above zero, such as 60000",
            )?;
            Ok(Duration::from_millis(ms))
        }
        Some(raw) => positive(parse::duration(&raw)?, &raw),
        None => Ok(Duration::from_secs(60)),
    }
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

/// The `k8s_*` criteria of one discovery entry: regexes in `services`
/// entries, globs in `instrument` entries (as `exe_path`).
fn pod_selector(entry: &file::Entry<'_>, glob: bool) -> Result<Option<PodSelector>, ConfigError> {
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

/// `attributes.kubernetes`; refuses `k8s_*` selectors with metadata off.
fn kubernetes(s: &Sources, discovery: &DiscoveryConfig) -> Result<KubernetesConfig, ConfigError> {
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
    let selects_pods = discovery
        .instrument
        .iter()
        .chain(&discovery.exclude)
        .any(|s| s.kubernetes.is_some());
    if selects_pods && enable == KubernetesEnable::No {
        return Err(ConfigError::KubernetesOff);
    }
    Ok(config)
}
