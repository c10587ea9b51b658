//! `beyla --check-config`: the effective configuration, written as a config
//! file that loads back to the same settings, so that what is shown is exactly
//! what runs. Header values are masked, since they usually carry credentials.

use serde_yaml_ng::{Mapping, Value};

use super::parse::format_duration;
use beyla_pipeline::decorate::filter::Test;
use beyla_pipeline::decorate::DEFAULT_MAX_SEGMENT_CARDINALITY;
use beyla_pipeline::export::otlp::{Compression, SignalConfig};
use beyla_pipeline::export::select::Instrumentations;
use beyla_pipeline::export::PrinterFormat;
use beyla_pipeline::protocols::sql::QueryText;
use beyla_pipeline::sample::SamplerConfig;

use super::{Config, IgnoreMode, KubernetesEnable, LogFormat, Selection, Unmatched};
use crate::kubernetes::PodSelector;

/// What a masked secret shows.
pub const MASK: &str = "***";

fn map(pairs: Vec<(&str, Value)>) -> Value {
    Value::Mapping(
        pairs
            .into_iter()
            .map(|(k, v)| (Value::from(k), v))
            .collect::<Mapping>(),
    )
}

fn text(s: impl Into<String>) -> Value {
    Value::String(s.into())
}

/// Entries in `services` form: `instrument` globs are already regexes here.
fn entries(selection: &[Selection], with_names: bool) -> Value {
    Value::Sequence(
        selection
            .iter()
            .map(|entry| {
                let mut pairs = Vec::new();
                if with_names {
                    if let Some(name) = &entry.name {
                        pairs.push(("name", text(name)));
                    }
                    if let Some(namespace) = &entry.namespace {
                        pairs.push(("namespace", text(namespace)));
                    }
                }
                if let Some(ports) = &entry.open_ports {
                    pairs.push(("open_ports", text(ports.to_string())));
                }
                if let Some(exe) = &entry.exe_path {
                    pairs.push(("exe_path", text(exe.as_str())));
                }
                if let Some(args) = &entry.cmd_args {
                    pairs.push(("cmd_args", text(args.as_str())));
                }
                if entry.containers_only {
                    pairs.push(("containers_only", Value::from(true)));
                }
                if let Some(pods) = &entry.kubernetes {
                    pairs.extend(pod_selector(pods));
                }
                map(pairs)
            })
            .collect(),
    )
}

/// The `k8s_*` criteria of an entry, as regular expressions.
fn pod_selector(pods: &PodSelector) -> Vec<(&'static str, Value)> {
    let patterns = [
        ("k8s_namespace", &pods.namespace),
        ("k8s_pod_name", &pods.pod_name),
        ("k8s_deployment_name", &pods.deployment_name),
        ("k8s_replicaset_name", &pods.replicaset_name),
        ("k8s_statefulset_name", &pods.statefulset_name),
        ("k8s_daemonset_name", &pods.daemonset_name),
        ("k8s_owner_name", &pods.owner_name),
    ];
    let mut pairs: Vec<(&'static str, Value)> = patterns
        .into_iter()
        .filter_map(|(key, re)| Some((key, text(re.as_ref()?.as_str()))))
        .collect();
    for (key, by_name) in [
        ("k8s_pod_labels", &pods.pod_labels),
        ("k8s_pod_annotations", &pods.pod_annotations),
    ] {
        if !by_name.is_empty() {
            let entries = by_name
                .iter()
                .map(|(name, re)| (text(name), text(re.as_str())))
                .collect::<Mapping>();
            pairs.push((key, Value::Mapping(entries)));
        }
    }
    pairs
}

fn otlp(otlp: &SignalConfig) -> Vec<(&'static str, Value)> {
    let mut pairs = vec![
        ("endpoint", text(&otlp.endpoint)),
        ("protocol", text(otlp.protocol.as_str())),
        ("instrumentations", names(otlp.instrumentations)),
    ];
    if otlp.tls.insecure_skip_verify {
        pairs.push(("insecure_skip_verify", Value::from(true)));
    }
    if !otlp.headers.is_empty() {
        let headers = otlp
            .headers
            .iter()
            .map(|(name, _)| (text(name), text(MASK)))
            .collect::<Mapping>();
        pairs.push(("headers", Value::Mapping(headers)));
    }
    pairs
}

fn names(instrumentations: Instrumentations) -> Value {
    Value::Sequence(instrumentations.names().into_iter().map(text).collect())
}

fn filter_test(test: &Test) -> Value {
    match test {
        Test::Glob { glob, negate, .. } => map(vec![(
            if *negate { "not_match" } else { "match" },
            text(glob),
        )]),
        Test::Integer(b) => map([
            ("equals", b.equals),
            ("not_equals", b.not_equals),
            ("greater_than", b.greater_than),
            ("greater_equals", b.greater_equals),
            ("less_than", b.less_than),
            ("less_equals", b.less_equals),
        ]
        .into_iter()
        .filter_map(|(name, bound)| Some((name, Value::from(bound?))))
        .collect()),
    }
}

impl Config {
    /// The effective configuration as YAML, secrets masked as `***`.
    pub fn render_effective(&self) -> String {
        let printer = match self.export.trace_printer {
            PrinterFormat::Disabled => "disabled",
            PrinterFormat::Text => "text",
            PrinterFormat::Json => "json",
            PrinterFormat::JsonIndent => "json_indent",
        };
        // Every exclusion, the default one included, is shown; so the
        // defaults are off in what is shown.
        let discovery = vec![
            ("services", entries(&self.discovery.instrument, true)),
            ("exclude_services", entries(&self.discovery.exclude, false)),
            ("default_exclude_instrument", Value::Sequence(Vec::new())),
            (
                "exclude_otel_instrumented_services",
                Value::from(self.exclude_otel_instrumented),
            ),
        ];
        let (sampler, arg) = match self.sampler {
            SamplerConfig::AlwaysOn => ("always_on", None),
            SamplerConfig::AlwaysOff => ("always_off", None),
            SamplerConfig::TraceIdRatio(r) => ("traceidratio", Some(r)),
            SamplerConfig::ParentBasedAlwaysOn => ("parentbased_always_on", None),
            SamplerConfig::ParentBasedAlwaysOff => ("parentbased_always_off", None),
            SamplerConfig::ParentBasedTraceIdRatio(r) => ("parentbased_traceidratio", Some(r)),
        };
        let mut sampler = vec![("name", text(sampler))];
        if let Some(arg) = arg {
            sampler.push(("arg", Value::from(arg)));
        }
        let export = &self.export;
        let mut traces = export.otlp_traces.as_ref().map(otlp).unwrap_or_default();
        traces.push(("sampler", map(sampler)));

        let mut root = vec![
            ("log_level", text(self.log_level.to_string())),
            (
                "log_format",
                text(match self.log_format {
                    LogFormat::Text => "text",
                    LogFormat::Json => "json",
                }),
            ),
            ("trace_printer", text(printer)),
            (
                "shutdown_timeout",
                text(format_duration(self.shutdown_timeout)),
            ),
            ("discovery", map(discovery)),
            (
                "ebpf",
                map(vec![
                    (
                        "wakeup_len",
                        self.ebpf.wakeup_len.map_or(Value::Null, Value::from),
                    ),
                    (
                        "track_request_headers",
                        Value::from(self.ebpf.track_request_headers),
                    ),
                    (
                        "context_propagation",
                        text(self.ebpf.context_propagation.name()),
                    ),
                    ("capture_size", Value::from(self.capture_size)),
                    (
                        "capture_path",
                        text(self.ebpf.capture_path.map_or("auto", |p| p.name())),
                    ),
                    (
                        "sql_query_text",
                        text(match self.sql_query_text {
                            QueryText::Sanitized => "sanitized",
                            QueryText::Raw => "raw",
                        }),
                    ),
                ]),
            ),
            ("otel_traces_export", map(traces)),
        ];
        if let Some(metrics) = &export.otlp_metrics {
            let mut pairs = otlp(&metrics.signal);
            pairs.push(("interval", text(format_duration(metrics.interval))));
            root.push(("otel_metrics_export", map(pairs)));
        }
        if let Some(prometheus) = &export.prometheus {
            root.push((
                "prometheus_export",
                map(vec![
                    ("port", Value::from(prometheus.port)),
                    ("path", text(&prometheus.path)),
                    ("ttl", text(format_duration(prometheus.series_ttl))),
                    ("instrumentations", names(prometheus.instrumentations)),
                ]),
            ));
        }
        let routes = &self.routes;
        let list = |items: &[String]| Value::Sequence(items.iter().map(text).collect());
        root.push((
            "routes",
            map(vec![
                ("patterns", list(&routes.patterns)),
                ("ignored_patterns", list(&routes.ignored_patterns)),
                (
                    "ignore_mode",
                    text(match routes.ignore_mode {
                        IgnoreMode::Traces => "traces",
                        IgnoreMode::Metrics => "metrics",
                        IgnoreMode::All => "all",
                    }),
                ),
                (
                    "unmatched",
                    text(match routes.unmatched {
                        Unmatched::Heuristic => "heuristic",
                        Unmatched::Path => "path",
                        Unmatched::Wildcard => "wildcard",
                        Unmatched::LowCardinality { .. } => "low-cardinality",
                        Unmatched::Unset => "unset",
                    }),
                ),
                ("wildcard_char", text(routes.wildcard_char.clone())),
                (
                    "max_path_segment_cardinality",
                    Value::from(match routes.unmatched {
                        Unmatched::LowCardinality {
                            max_segment_cardinality,
                        } => max_segment_cardinality,
                        _ => DEFAULT_MAX_SEGMENT_CARDINALITY,
                    }),
                ),
            ]),
        ));
        let k8s = &self.kubernetes;
        if k8s.enable != KubernetesEnable::No {
            let mut pairs = vec![(
                "enable",
                text(match k8s.enable {
                    KubernetesEnable::Yes => "true",
                    KubernetesEnable::No => "false",
                    KubernetesEnable::Autodetect => "autodetect",
                }),
            )];
            if let Some(name) = &k8s.cluster_name {
                pairs.push(("cluster_name", text(name)));
            }
            if let Some(path) = &k8s.kubeconfig_path {
                pairs.push(("kubeconfig_path", text(path.to_string_lossy())));
            }
            pairs.push((
                "informers_sync_timeout",
                text(format_duration(k8s.sync_timeout)),
            ));
            root.push(("attributes", map(vec![("kubernetes", map(pairs))])));
        }
        if !self.filter.rules.is_empty() {
            let rules = self
                .filter
                .rules
                .iter()
                .map(|rule| (text(rule.attribute), filter_test(&rule.test)))
                .collect::<Mapping>();
            root.push(("filter", map(vec![("application", Value::Mapping(rules))])));
        }
        let mut out =
            serde_yaml_ng::to_string(&map(root)).expect("a YAML tree of strings always serializes");
        // Settings that have no file key are shown as comments.
        for (signal, config) in [
            ("traces", export.otlp_traces.as_ref()),
            ("metrics", export.otlp_metrics.as_ref().map(|m| &m.signal)),
        ] {
            if let Some(config) = config {
                if config.compression == Compression::Gzip {
                    out.push_str(&format!("# OTLP {signal} compression: gzip\n"));
                }
                if config.tls.ca_pem.is_some() {
                    out.push_str(&format!(
                        "# OTLP {signal} certificates: from OTEL_EXPORTER_OTLP_CERTIFICATE\n"
                    ));
                }
            }
        }
        if let Some(name) = &self.service_name {
            out.push_str(&format!("# OTEL_SERVICE_NAME={name}\n"));
        }
        if !self.resource_attributes.is_empty() {
            let attributes: Vec<String> = self
                .resource_attributes
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            out.push_str(&format!(
                "# OTEL_RESOURCE_ATTRIBUTES={}\n",
                attributes.join(",")
            ));
        }
        out
    }
}
