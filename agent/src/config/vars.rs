//! The environment: every variable of Beyla's reference with what this agent
//! does with it (the same three kinds as keys, see `keys.rs`), and OBI's
//! names for them: `OTEL_EBPF_X` is an alias of `BEYLA_X` (and of
//! `BEYLA_OTEL_X`, a form Beyla's docs use), and wins when both are set, as
//! in Beyla, which copies `BEYLA_X` to `OTEL_EBPF_X` only when that is unset.

use std::collections::BTreeMap;

use serde_json::Value;

use super::error::{Origin, Warning};
use super::keys::Status::{self, Ours, Warned, Works};
use super::Raw;

pub struct Var {
    /// Beyla's name for it.
    pub name: &'static str,
    pub status: Status,
}

const fn var(name: &'static str, status: Status) -> Var {
    Var { name, status }
}

/// The part after the prefix that makes the aliases one variable.
fn stem(name: &str) -> Option<&str> {
    name.strip_prefix("OTEL_EBPF_")
        .or_else(|| name.strip_prefix("BEYLA_OTEL_"))
        .or_else(|| name.strip_prefix("BEYLA_"))
}

/// Beyla's name for a variable: `OTEL_EBPF_X` and `BEYLA_OTEL_X` are `BEYLA_X`.
pub fn canonical(name: &str) -> String {
    match stem(name) {
        Some(stem) => format!("BEYLA_{stem}"),
        None => name.to_string(),
    }
}

pub fn find(name: &str) -> Option<&'static Var> {
    let canonical = canonical(name);
    VARS.iter().find(|v| v.name == canonical)
}

/// The environment as the agent was started with it.
pub(crate) struct Env(BTreeMap<String, String>);

impl Env {
    pub fn new(vars: impl IntoIterator<Item = (String, String)>) -> Self {
        Self(vars.into_iter().collect())
    }

    /// The variable's value under its own name or an alias (OBI's first);
    /// empty counts as unset, as the OpenTelemetry spec says.
    pub fn get(&self, name: &'static str) -> Option<Raw> {
        debug_assert!(
            VARS.iter().any(|v| v.name == name),
            "{name} missing from VARS"
        );
        let aliases = match name.strip_prefix("BEYLA_") {
            Some(stem) => vec![
                format!("OTEL_EBPF_{stem}"),
                name.to_string(),
                format!("BEYLA_OTEL_{stem}"),
            ],
            None => vec![name.to_string()],
        };
        aliases.into_iter().find_map(|alias| {
            let value = self.0.get(&alias).filter(|v| !v.trim().is_empty())?;
            Some(Raw {
                value: Value::String(value.clone()),
                origin: Origin::Env(alias),
            })
        })
    }

    /// A variable as set, under exactly this name (for `${NAME}` in the file).
    pub fn raw(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    /// The first of these variables that is set: the signal-specific one comes first.
    pub fn first(&self, names: &[&'static str]) -> Option<Raw> {
        names.iter().find_map(|name| self.get(name))
    }

    /// One warning per variable set that the agent does not act on, in name order.
    pub fn warnings(&self) -> Vec<Warning> {
        let mut seen = Vec::new();
        let mut notes = Vec::new();
        for (name, value) in &self.0 {
            if value.trim().is_empty() {
                continue;
            }
            match find(name) {
                Some(var) if var.status == Warned && !seen.contains(&var.name) => {
                    seen.push(var.name);
                    notes.push(Warning::UnsupportedVar(name.clone()));
                }
                Some(_) => {}
                None if stem(name).is_some() && !service_link(name) => {
                    notes.push(Warning::UnknownVar {
                        name: name.clone(),
                        hint: closest(name),
                    })
                }
                None => {}
            }
        }
        notes
    }
}

/// Kubernetes gives every pod `<SERVICE>_SERVICE_HOST`, `<SERVICE>_PORT...`
/// for each Service of its namespace, so a Service named `beyla` puts
/// `BEYLA_SERVICE_HOST` and the like into the agent's environment.
fn service_link(name: &str) -> bool {
    let tail = name.rsplit_once("_SERVICE_").map(|(_, t)| t);
    if matches!(tail, Some("HOST" | "PORT")) || name.contains("_SERVICE_PORT_") {
        return true;
    }
    let Some((_, after)) = name.rsplit_once("_PORT") else {
        return false;
    };
    let parts: Vec<&str> = after.split('_').skip(1).collect();
    after.is_empty()
        || matches!(
            parts.as_slice(),
            [port, "TCP" | "UDP" | "SCTP", ..] if port.chars().all(|c| c.is_ascii_digit())
        )
}

/// The known variable closest to a misspelt one, under the prefix it used.
fn closest(name: &str) -> Option<String> {
    let prefix = name.strip_suffix(stem(name)?)?;
    let stem = stem(name)?;
    VARS.iter()
        .filter_map(|v| Some((v.name.strip_prefix("BEYLA_")?, v)))
        .map(|(known, _)| (strsim::normalized_damerau_levenshtein(stem, known), known))
        .filter(|(score, _)| *score >= 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, known)| format!("{prefix}{known}"))
}

/// Every variable of Beyla's reference (`BEYLA_*` for OBI's `OTEL_EBPF_*`),
/// and ours.
pub const VARS: &[Var] = &[
    var("BEYLA_ALLOW_SERVICE_GRAPH_SELF_REFERENCES", Warned),
    var("BEYLA_AUTO_TARGET_EXE", Works),
    var("BEYLA_AUTO_TARGET_LANGUAGE", Warned),
    var("BEYLA_BACKOFF_INITIAL_INTERVAL", Warned),
    var("BEYLA_BACKOFF_MAX_ELAPSED_TIME", Warned),
    var("BEYLA_BACKOFF_MAX_INTERVAL", Warned),
    var("BEYLA_BPF_BATCH_LENGTH", Warned),
    var("BEYLA_BPF_BATCH_TIMEOUT", Warned),
    var("BEYLA_BPF_BUFFER_SIZE_HTTP", Warned),
    var("BEYLA_BPF_BUFFER_SIZE_KAFKA", Warned),
    var("BEYLA_BPF_BUFFER_SIZE_MSSQL", Warned),
    var("BEYLA_BPF_BUFFER_SIZE_MYSQL", Warned),
    var("BEYLA_BPF_BUFFER_SIZE_POSTGRES", Warned),
    var("BEYLA_BPF_BUFFER_SIZE_TCP", Warned),
    var("BEYLA_BPF_CAPTURE_PATH", Ours),
    var("BEYLA_BPF_CAPTURE_SIZE", Ours),
    var("BEYLA_BPF_SQL_QUERY_TEXT", Ours),
    var("BEYLA_KUBE_NODE_NAME", Ours),
    var("NODE_NAME", Ours),
    var("OTEL_EXPORTER_OTLP_CERTIFICATE", Ours),
    var("OTEL_EXPORTER_OTLP_COMPRESSION", Ours),
    var("OTEL_EXPORTER_OTLP_METRICS_CERTIFICATE", Ours),
    var("OTEL_EXPORTER_OTLP_METRICS_COMPRESSION", Ours),
    var("OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE", Ours),
    var("OTEL_EXPORTER_OTLP_TRACES_COMPRESSION", Ours),
    var("OTEL_METRICS_EXPORTER", Ours),
    var("OTEL_TRACES_EXPORTER", Ours),
    var("BEYLA_BPF_CONTEXT_PROPAGATION", Works),
    var("BEYLA_BPF_DEBUG", Warned),
    var("BEYLA_BPF_DISABLE_BLACK_BOX_CP", Warned),
    var("BEYLA_BPF_DNS_REQUEST_TIMEOUT", Warned),
    var("BEYLA_BPF_ENABLE_CONTEXT_PROPAGATION", Works),
    var("BEYLA_BPF_FS_PATH", Warned),
    var("BEYLA_BPF_GO_HTTP_CLIENT_BUFFER_TIMEOUT", Warned),
    var("BEYLA_BPF_HIGH_REQUEST_VOLUME", Works),
    var("BEYLA_BPF_HTTP_REQUEST_TIMEOUT", Warned),
    var("BEYLA_BPF_LOG_ENRICHER_ASYNC_WRITER_CHANNEL_LEN", Warned),
    var("BEYLA_BPF_LOG_ENRICHER_ASYNC_WRITER_WORKERS", Warned),
    var("BEYLA_BPF_LOG_ENRICHER_CACHE_SIZE", Warned),
    var("BEYLA_BPF_LOG_ENRICHER_CACHE_TTL", Warned),
    var("BEYLA_BPF_MAX_TRANSACTION_TIME", Warned),
    var("BEYLA_BPF_METRIC_SCRAPE_INTERVAL", Warned),
    var("BEYLA_BPF_MONGO_REQUESTS_CACHE_SIZE", Warned),
    var("BEYLA_BPF_MSSQL_PREPARED_STATEMENTS_CACHE_SIZE", Warned),
    var("BEYLA_BPF_MYSQL_PREPARED_STATEMENTS_CACHE_SIZE", Warned),
    var("BEYLA_BPF_PID_FILTER_OFF", Warned),
    var("BEYLA_BPF_POSTGRES_PREPARED_STATEMENTS_CACHE_SIZE", Warned),
    var("BEYLA_BPF_REDIS_DB_CACHE_ENABLED", Warned),
    var("BEYLA_BPF_REDIS_DB_CACHE_MAX_SIZE", Warned),
    var("BEYLA_BPF_TC_BACKEND", Warned),
    var("BEYLA_BPF_TRACK_REQUEST_HEADERS", Works),
    var("BEYLA_BPF_WAKEUP_LEN", Works),
    var("BEYLA_CHANNEL_BUFFER_LEN", Warned),
    var("BEYLA_CHANNEL_SEND_TIMEOUT", Warned),
    var("BEYLA_CHANNEL_SEND_TIMEOUT_PANIC", Warned),
    var("BEYLA_CONFIG_PATH", Works),
    var("BEYLA_COUCHBASE_DB_CACHE_SIZE", Warned),
    var("BEYLA_DEFAULT_OTLP_GRPC_PORT", Warned),
    var("BEYLA_DISCOVERY_POLL_INTERVAL", Warned),
    var("BEYLA_ENFORCE_SYS_CAPS", Warned),
    var("BEYLA_EXCLUDE_OTEL_INSTRUMENTED_SERVICES", Works),
    var(
        "BEYLA_EXCLUDE_OTEL_INSTRUMENTED_SERVICES_SPAN_METRICS",
        Warned,
    ),
    var("BEYLA_EXECUTABLE_NAME", Works),
    var("BEYLA_EXECUTABLE_PATH", Warned),
    var("BEYLA_EXTERNAL_WEBHOOK_DEPLOYMENT_NAME", Warned),
    var("BEYLA_EXTRA_SPAN_RESOURCE_ATTRIBUTES", Warned),
    var("BEYLA_FORCE_BPF_MAP_READER", Warned),
    var("BEYLA_GEOIP_CACHE_LEN", Warned),
    var("BEYLA_GEOIP_CACHE_TTL", Warned),
    var("BEYLA_GEOIP_IPINFO_PATH", Warned),
    var("BEYLA_GEOIP_MAXMIND_ASN_PATH", Warned),
    var("BEYLA_GEOIP_MAXMIND_COUNTRY_PATH", Warned),
    var("BEYLA_HEALTH_CHECK_LISTEN_ADDRESS", Warned),
    var("BEYLA_HEALTH_CHECK_PORT", Warned),
    var("BEYLA_HEALTH_CHECK_UNIX_SOCKET_PATH", Warned),
    var("BEYLA_HEURISTIC_SQL_DETECT", Warned),
    var("BEYLA_HOSTNAME", Warned),
    var("BEYLA_HOSTNAME_DNS_RESOLUTION", Warned),
    var("BEYLA_HOST_ID", Warned),
    var("BEYLA_HTTP_ANTHROPIC_ENABLED", Warned),
    var("BEYLA_HTTP_AWS_ENABLED", Warned),
    var("BEYLA_HTTP_BEDROCK_ENABLED", Warned),
    var("BEYLA_HTTP_ELASTICSEARCH_ENABLED", Warned),
    var("BEYLA_HTTP_ENRICHMENT_ENABLED", Warned),
    var("BEYLA_HTTP_ENRICHMENT_OBFUSCATION_STRING", Warned),
    var("BEYLA_HTTP_GEMINI_ENABLED", Warned),
    var("BEYLA_HTTP_GENAI_EMBEDDING_ENABLED", Warned),
    var("BEYLA_HTTP_GRAPHQL_ENABLED", Warned),
    var("BEYLA_HTTP_JSONRPC_ENABLED", Warned),
    var("BEYLA_HTTP_MCP_ENABLED", Warned),
    var("BEYLA_HTTP_OLLAMA_ENABLED", Warned),
    var("BEYLA_HTTP_OPENAI_COMPATIBLE_ENABLED", Warned),
    var("BEYLA_HTTP_OPENAI_ENABLED", Warned),
    var("BEYLA_HTTP_QWEN_ENABLED", Warned),
    var("BEYLA_HTTP_RERANK_ENABLED", Warned),
    var("BEYLA_HTTP_RETRIEVAL_ENABLED", Warned),
    var("BEYLA_HTTP_SQLPP_ENABLED", Warned),
    var("BEYLA_HTTP_SQLPP_ENDPOINT_PATTERNS", Warned),
    var("BEYLA_INSECURE_SKIP_VERIFY", Works),
    var("BEYLA_INSTRUMENT_CUDA", Warned),
    var("BEYLA_INTERNAL_METRICS_AVOIDED_SERVICES_DISABLED", Warned),
    var("BEYLA_INTERNAL_METRICS_AVOIDED_SERVICES_LIMIT", Warned),
    var("BEYLA_INTERNAL_METRICS_EXPORTER", Warned),
    var("BEYLA_INTERNAL_METRICS_PROMETHEUS_PATH", Warned),
    var("BEYLA_INTERNAL_METRICS_PROMETHEUS_PORT", Warned),
    var("BEYLA_JAVAAGENT_ATTACH_TIMEOUT", Warned),
    var("BEYLA_JAVAAGENT_DEBUG", Warned),
    var("BEYLA_JAVAAGENT_DEBUG_INSTRUMENTATION", Warned),
    var("BEYLA_JAVAAGENT_ENABLED", Warned),
    var("BEYLA_JAVA_ROUTE_HARVEST_DELAY", Warned),
    var("BEYLA_KUBE_CLUSTER_NAME", Works),
    var("BEYLA_KUBE_DISABLE_INFORMERS", Warned),
    var("BEYLA_KUBE_INFORMERS_RESYNC_PERIOD", Warned),
    var("BEYLA_KUBE_INFORMERS_SYNC_TIMEOUT", Works),
    var("BEYLA_KUBE_METADATA_ENABLE", Works),
    var("BEYLA_KUBE_META_CACHE_ADDRESS", Warned),
    var("BEYLA_KUBE_META_RESTRICT_LOCAL_NODE", Warned),
    var("BEYLA_KUBE_META_SOURCE_LABEL_SERVICE_NAME", Warned),
    var("BEYLA_KUBE_META_SOURCE_LABEL_SERVICE_NAMESPACE", Warned),
    var("BEYLA_KUBE_RECONNECT_INITIAL_INTERVAL", Warned),
    var("BEYLA_LOG_CONFIG", Warned),
    var("BEYLA_LOG_FORMAT", Works),
    var("BEYLA_LOG_LEVEL", Works),
    var("BEYLA_METADATA_RETRY_MAX_INTERVAL", Warned),
    var("BEYLA_METADATA_RETRY_START_INTERVAL", Warned),
    var("BEYLA_METADATA_RETRY_TIMEOUT", Warned),
    var("BEYLA_METRICS_EXPONENTIAL_HISTOGRAM_MAX_SCALE", Warned),
    var("BEYLA_METRICS_EXPONENTIAL_HISTOGRAM_MAX_SIZE", Warned),
    var("BEYLA_METRICS_FEATURES", Works),
    var("BEYLA_METRICS_INSTRUMENTATIONS", Works),
    var("BEYLA_METRICS_INTERVAL", Works),
    var("BEYLA_METRICS_REPORT_CACHE_LEN", Warned),
    var("BEYLA_METRICS_TTL", Warned),
    var("BEYLA_METRIC_SPAN_NAMES_LIMIT", Warned),
    var("BEYLA_MIN_PROCESS_AGE", Warned),
    var("BEYLA_NAME_RESOLVER_CACHE_LEN", Warned),
    var("BEYLA_NAME_RESOLVER_CACHE_TTL", Warned),
    var("BEYLA_NAME_RESOLVER_SOURCES", Warned),
    var("BEYLA_NETWORK_AGENT_IP", Warned),
    var("BEYLA_NETWORK_AGENT_IP_IFACE", Warned),
    var("BEYLA_NETWORK_AGENT_IP_TYPE", Warned),
    var("BEYLA_NETWORK_CACHE_ACTIVE_TIMEOUT", Warned),
    var("BEYLA_NETWORK_CACHE_MAX_FLOWS", Warned),
    var("BEYLA_NETWORK_CIDRS", Warned),
    var("BEYLA_NETWORK_DEDUPER", Warned),
    var("BEYLA_NETWORK_DEDUPER_FC_TTL", Warned),
    var("BEYLA_NETWORK_DIRECTION", Warned),
    var("BEYLA_NETWORK_DROP_EXTERNAL", Warned),
    var("BEYLA_NETWORK_EXCLUDE_INTERFACES", Warned),
    var("BEYLA_NETWORK_EXCLUDE_PROTOCOLS", Warned),
    var("BEYLA_NETWORK_GUESS_PORTS", Warned),
    var("BEYLA_NETWORK_INTERFACES", Warned),
    var("BEYLA_NETWORK_LISTEN_INTERFACES", Warned),
    var("BEYLA_NETWORK_LISTEN_POLL_PERIOD", Warned),
    var("BEYLA_NETWORK_METRICS", Warned),
    var("BEYLA_NETWORK_PRINT_FLOWS", Warned),
    var("BEYLA_NETWORK_PROTOCOLS", Warned),
    var("BEYLA_NETWORK_SAMPLING", Warned),
    var("BEYLA_NETWORK_SOURCE", Warned),
    var("BEYLA_NODEJS_ENABLED", Warned),
    var("BEYLA_NODEJS_MANUAL_SPANS", Warned),
    var("BEYLA_OPEN_PORT", Works),
    var("BEYLA_OTLP_TRACES_BATCH_MAX_SIZE", Warned),
    var("BEYLA_OTLP_TRACES_BATCH_TIMEOUT", Warned),
    var("BEYLA_OTLP_TRACES_QUEUE_SIZE", Warned),
    var("BEYLA_OVERRIDE_BPF_LOOP_ENABLED", Warned),
    var("BEYLA_PROCESSES_INTERVAL", Warned),
    var("BEYLA_PROCESS_CONTEXT_POLL_INTERVAL", Warned),
    var("BEYLA_PROFILE_PORT", Warned),
    var(
        "BEYLA_PROMETHEUS_ALLOW_SERVICE_GRAPH_SELF_REFERENCES",
        Warned,
    ),
    var("BEYLA_PROMETHEUS_DISABLE_BUILD_INFO", Warned),
    var("BEYLA_PROMETHEUS_EXEMPLAR_FILTER", Warned),
    var("BEYLA_PROMETHEUS_EXTRA_RESOURCE_ATTRIBUTES", Warned),
    var("BEYLA_PROMETHEUS_EXTRA_SPAN_RESOURCE_ATTRIBUTES", Warned),
    var("BEYLA_PROMETHEUS_FEATURES", Works),
    var("BEYLA_PROMETHEUS_INSTRUMENTATIONS", Works),
    var("BEYLA_PROMETHEUS_NATIVE_HISTOGRAM_BUCKET_FACTOR", Warned),
    var(
        "BEYLA_PROMETHEUS_NATIVE_HISTOGRAM_MAX_BUCKET_NUMBER",
        Warned,
    ),
    var(
        "BEYLA_PROMETHEUS_NATIVE_HISTOGRAM_MIN_RESET_DURATION",
        Warned,
    ),
    var("BEYLA_PROMETHEUS_PATH", Works),
    var("BEYLA_PROMETHEUS_PORT", Works),
    var("BEYLA_PROMETHEUS_TTL", Works),
    var("BEYLA_PROTOCOL_DEBUG_PRINT", Warned),
    var("BEYLA_RENAME_UNRESOLVED_HOSTS", Warned),
    var("BEYLA_RENAME_UNRESOLVED_HOSTS_INCOMING", Warned),
    var("BEYLA_RENAME_UNRESOLVED_HOSTS_OUTGOING", Warned),
    var("BEYLA_RESOURCE_ATTRIBUTES", Warned),
    var("BEYLA_REVERSE_DNS_CACHE_LEN", Warned),
    var("BEYLA_REVERSE_DNS_CACHE_TTL", Warned),
    var("BEYLA_REVERSE_DNS_TYPE", Warned),
    var("BEYLA_ROUTE_HARVESTER_TIMEOUT", Warned),
    var("BEYLA_SDK_LOG_LEVEL", Warned),
    var("BEYLA_SERVICE_NAME", Works),
    var("BEYLA_SERVICE_NAMESPACE", Works),
    var("BEYLA_SERVICE_NAME_TEMPLATE", Warned),
    var("BEYLA_SHUTDOWN_TIMEOUT", Works),
    var("BEYLA_SKIP_GO_SPECIFIC_TRACERS", Warned),
    var("BEYLA_STATS_AGENT_IP", Warned),
    var("BEYLA_STATS_AGENT_IP_IFACE", Warned),
    var("BEYLA_STATS_AGENT_IP_TYPE", Warned),
    var("BEYLA_STATS_CIDRS", Warned),
    var("BEYLA_STATS_PRINT_STATS", Warned),
    var("BEYLA_STATS_WAKEUP_DATA_BYTES", Warned),
    var("BEYLA_TARGET_PID", Warned),
    var("BEYLA_TOPOLOGY_SPANS", Warned),
    var("BEYLA_TRACES_INSTRUMENTATIONS", Works),
    var("BEYLA_TRACES_REPORT_CACHE_LEN", Warned),
    var("BEYLA_TRACE_PRINTER", Works),
    var("GRAFANA_CLOUD_API_KEY", Works),
    var("GRAFANA_CLOUD_INSTANCE_ID", Works),
    var("GRAFANA_CLOUD_SUBMIT", Works),
    var("GRAFANA_CLOUD_ZONE", Works),
    var("KUBECONFIG", Works),
    var("OBI_JVM_RUNTIME_METRICS_SAMPLING_INTERVAL", Warned),
    var("OTEL_EXPORTER_OTLP_ENDPOINT", Works),
    var("OTEL_EXPORTER_OTLP_HEADERS", Works),
    var(
        "OTEL_EXPORTER_OTLP_METRICS_DEFAULT_HISTOGRAM_AGGREGATION",
        Warned,
    ),
    var("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", Works),
    var("OTEL_EXPORTER_OTLP_METRICS_HEADERS", Works),
    var("OTEL_EXPORTER_OTLP_METRICS_PROTOCOL", Works),
    var("OTEL_EXPORTER_OTLP_PROTOCOL", Works),
    var("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", Works),
    var("OTEL_EXPORTER_OTLP_TRACES_HEADERS", Works),
    var("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", Works),
    var("OTEL_KAFKA_TOPIC_UUID_CACHE_SIZE", Warned),
    var("OTEL_METRIC_EXPORT_INTERVAL", Works),
    var("OTEL_RESOURCE_ATTRIBUTES", Works),
    var("OTEL_SERVICE_NAME", Works),
    var("OTEL_TRACES_SAMPLER", Works),
    var("OTEL_TRACES_SAMPLER_ARG", Works),
];
