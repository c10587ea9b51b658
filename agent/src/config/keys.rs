//! Every key of Beyla's configuration reference, and what this agent does
//! with it. The reference is Beyla's JSON schema of its keys (flattened into
//! `reference-keys.tsv` by scripts/beyla-reference-keys.py) and its docs
//! pages; a test checks that this table holds exactly those keys, plus ours.
//!
//! A key is one of three kinds:
//! - [`Status::Works`]: implemented as Beyla documents it;
//! - [`Status::Warned`]: Beyla's, not implemented yet: the agent starts, says
//!   once `key K: not supported yet, ignored`, and counts it. A warned
//!   section or list is one warning, whatever it holds;
//! - [`Status::Ours`]: not Beyla's, a form this agent adds.
//!
//! Any other key is a mistake: refused with the closest known key.

use Shape::{Entries, Leaf, Named, Section};
use Status::{Ours, Warned, Works};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Works,
    Warned,
    Ours,
}

/// What a key holds. Only settings (leaves) have a status: a section is
/// whatever the keys written in it are.
#[derive(Debug, Clone, Copy)]
pub enum Shape {
    /// A map of these keys.
    Section(&'static [Key]),
    /// A list of maps of these keys; their paths are written `list[].key`.
    Entries(&'static [Key]),
    /// A map of names the user chooses (metric families, attributes) to maps
    /// of these keys; their paths are written `map.*.key`.
    Named(&'static [Key]),
    Leaf(Value, Status),
}

/// The value of a setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Value {
    /// A string, number or boolean.
    Scalar,
    /// A list of strings.
    List,
    /// A map of names to values (or, for our OTLP headers, one `k=v,k2=v2` string).
    Map,
}

impl Shape {
    pub fn children(self) -> Option<&'static [Key]> {
        match self {
            Section(keys) | Entries(keys) | Named(keys) => Some(keys),
            Leaf(..) => None,
        }
    }

    /// What a child's path adds after this key's own path.
    pub fn separator(self) -> &'static str {
        match self {
            Entries(_) => "[].",
            Named(_) => ".*.",
            _ => ".",
        }
    }
}

#[derive(Debug)]
pub struct Key {
    pub name: &'static str,
    pub shape: Shape,
}

impl Key {
    /// The status of a setting; `None` for sections and lists of maps.
    pub fn status(&self) -> Option<Status> {
        match self.shape {
            Leaf(_, status) => Some(status),
            _ => None,
        }
    }

    /// A setting that is not warned, or a section holding one.
    pub fn implemented(&self) -> bool {
        match self.shape {
            Leaf(_, status) => status != Warned,
            Section(keys) | Entries(keys) | Named(keys) => keys.iter().any(Key::implemented),
        }
    }
}

const fn section(name: &'static str, keys: &'static [Key]) -> Key {
    Key {
        name,
        shape: Section(keys),
    }
}

const fn entries(name: &'static str, keys: &'static [Key]) -> Key {
    Key {
        name,
        shape: Entries(keys),
    }
}

const fn named(name: &'static str, keys: &'static [Key]) -> Key {
    Key {
        name,
        shape: Named(keys),
    }
}

const fn scalar(name: &'static str, status: Status) -> Key {
    Key {
        name,
        shape: Leaf(Value::Scalar, status),
    }
}

const fn list(name: &'static str, status: Status) -> Key {
    Key {
        name,
        shape: Leaf(Value::List, status),
    }
}

const fn map(name: &'static str, status: Status) -> Key {
    Key {
        name,
        shape: Leaf(Value::Map, status),
    }
}

/// Every key with its path, depth first, containers before what they hold.
pub fn all() -> Vec<(String, &'static Key)> {
    fn walk(keys: &'static [Key], prefix: &str, out: &mut Vec<(String, &'static Key)>) {
        for key in keys {
            let path = format!("{prefix}{}", key.name);
            out.push((path.clone(), key));
            if let Some(children) = key.shape.children() {
                walk(children, &format!("{path}{}", key.shape.separator()), out);
            }
        }
    }
    let mut out = Vec::new();
    walk(ROOT, "", &mut out);
    out
}

/// The key at a path written as [`all`] writes it.
pub fn find(path: &str) -> Option<&'static Key> {
    let mut keys = ROOT;
    let mut rest = path;
    loop {
        let end = rest.find(['.', '[']).unwrap_or(rest.len());
        let key = keys.iter().find(|k| k.name == &rest[..end])?;
        rest = &rest[end..];
        if rest.is_empty() {
            return Some(key);
        }
        rest = rest.strip_prefix(key.shape.separator())?;
        keys = key.shape.children()?;
    }
}

/// The keys of the maps at a path: `""` for the file's top, `list[]` for the
/// maps of a list, `map.*` for those of a map of names.
pub fn children_of(path: &str) -> Option<&'static [Key]> {
    let container = path
        .strip_suffix("[]")
        .or_else(|| path.strip_suffix(".*"))
        .unwrap_or(path);
    if container.is_empty() {
        Some(ROOT)
    } else {
        find(container)?.shape.children()
    }
}

const ATTRIBUTES_HOST_ID: &[Key] = &[scalar("override", Warned)];

const ATTRIBUTES_INSTANCE_ID: &[Key] =
    &[scalar("dns", Warned), scalar("override_hostname", Warned)];

const ATTRIBUTES_KUBERNETES_META_SOURCE_LABELS: &[Key] = &[
    scalar("service_name", Warned),
    scalar("service_namespace", Warned),
];

const ATTRIBUTES_KUBERNETES: &[Key] = &[
    scalar("cluster_name", Works),
    list("disable_informers", Warned),
    scalar("drop_external", Warned),
    scalar("enable", Works),
    scalar("informers_resync_period", Warned),
    scalar("informers_sync_timeout", Works),
    scalar("kubeconfig_path", Works),
    scalar("meta_cache_address", Warned),
    scalar("meta_restrict_local_node", Warned),
    section(
        "meta_source_labels",
        ATTRIBUTES_KUBERNETES_META_SOURCE_LABELS,
    ),
    scalar("reconnect_initial_interval", Warned),
    map("resource_labels", Warned),
    scalar("service_name_template", Warned),
];

const ATTRIBUTES_METADATA_RETRY: &[Key] = &[
    scalar("max_interval", Warned),
    scalar("start_interval", Warned),
    scalar("timeout", Warned),
];

const ATTRIBUTES_SELECT: &[Key] = &[list("exclude", Warned), list("include", Warned)];

const ATTRIBUTES_SENSITIVE_QUERY_PARAMS: &[Key] = &[list("add", Warned), list("remove", Warned)];

const ATTRIBUTES: &[Key] = &[
    map("extra_group_attributes", Warned),
    section("host_id", ATTRIBUTES_HOST_ID),
    section("instance_id", ATTRIBUTES_INSTANCE_ID),
    section("kubernetes", ATTRIBUTES_KUBERNETES),
    section("metadata_retry", ATTRIBUTES_METADATA_RETRY),
    scalar("metric_span_names_limit", Warned),
    scalar("rename_unresolved_hosts", Warned),
    scalar("rename_unresolved_hosts_incoming", Warned),
    scalar("rename_unresolved_hosts_outgoing", Warned),
    named("select", ATTRIBUTES_SELECT),
    section("sensitive_query_params", ATTRIBUTES_SENSITIVE_QUERY_PARAMS),
];

const SELECTOR_METRICS: &[Key] = &[list("features", Warned)];

const METRICS: &[Key] = &[list("features", Works)];

const SELECTOR_ROUTES: &[Key] = &[list("incoming", Warned), list("outgoing", Warned)];

const SAMPLER: &[Key] = &[scalar("arg", Works), scalar("name", Works)];

const WARNED_SAMPLER: &[Key] = &[scalar("arg", Warned), scalar("name", Warned)];

/// The maps of a list that selects processes Beyla does not trace (survey,
/// the SDK injector, the log enricher): nothing in them is implemented.
const WARNED_SELECTOR: &[Key] = &[
    scalar("cmd_args", Warned),
    scalar("container_name", Warned),
    scalar("containers_only", Warned),
    scalar("exe_path", Warned),
    list("exports", Warned),
    scalar("k8s_container_name", Warned),
    scalar("k8s_cronjob_name", Warned),
    scalar("k8s_daemonset_name", Warned),
    scalar("k8s_deployment_name", Warned),
    scalar("k8s_job_name", Warned),
    scalar("k8s_namespace", Warned),
    scalar("k8s_owner_name", Warned),
    map("k8s_pod_annotations", Warned),
    map("k8s_pod_labels", Warned),
    scalar("k8s_pod_name", Warned),
    scalar("k8s_replicaset_name", Warned),
    scalar("k8s_statefulset_name", Warned),
    scalar("languages", Warned),
    section("metrics", SELECTOR_METRICS),
    scalar("name", Warned),
    scalar("namespace", Warned),
    scalar("open_ports", Warned),
    section("routes", SELECTOR_ROUTES),
    section("sampler", WARNED_SAMPLER),
    list("target_pids", Warned),
];

const GLOB_SELECTOR: &[Key] = &[
    scalar("cmd_args", Works),
    scalar("container_name", Warned),
    scalar("containers_only", Works),
    scalar("exe_path", Works),
    list("exports", Warned),
    scalar("k8s_container_name", Warned),
    scalar("k8s_cronjob_name", Warned),
    scalar("k8s_daemonset_name", Works),
    scalar("k8s_deployment_name", Works),
    scalar("k8s_job_name", Warned),
    scalar("k8s_namespace", Works),
    scalar("k8s_owner_name", Works),
    map("k8s_pod_annotations", Works),
    map("k8s_pod_labels", Works),
    scalar("k8s_pod_name", Works),
    scalar("k8s_replicaset_name", Works),
    scalar("k8s_statefulset_name", Works),
    scalar("languages", Warned),
    section("metrics", SELECTOR_METRICS),
    scalar("name", Works),
    scalar("namespace", Works),
    scalar("open_ports", Works),
    section("routes", SELECTOR_ROUTES),
    section("sampler", WARNED_SAMPLER),
    list("target_pids", Warned),
];

const REGEX_SELECTOR: &[Key] = &[
    scalar("cmd_args", Works),
    scalar("container_name", Warned),
    scalar("containers_only", Works),
    scalar("exe_path", Works),
    scalar("exe_path_regexp", Works),
    // The reference document's name for `open_ports`.
    scalar("open_port", Ours),
    list("exports", Warned),
    scalar("k8s_container_name", Warned),
    scalar("k8s_cronjob_name", Warned),
    scalar("k8s_daemonset_name", Works),
    scalar("k8s_deployment_name", Works),
    scalar("k8s_job_name", Warned),
    scalar("k8s_namespace", Works),
    scalar("k8s_owner_name", Works),
    map("k8s_pod_annotations", Works),
    map("k8s_pod_labels", Works),
    scalar("k8s_pod_name", Works),
    scalar("k8s_replicaset_name", Works),
    scalar("k8s_statefulset_name", Works),
    scalar("languages", Warned),
    section("metrics", SELECTOR_METRICS),
    scalar("name", Works),
    scalar("namespace", Works),
    scalar("open_ports", Works),
    section("routes", SELECTOR_ROUTES),
    section("sampler", WARNED_SAMPLER),
    list("target_pids", Warned),
];

const DISCOVERY_ROUTE_HARVESTER_ADVANCED: &[Key] = &[scalar("java_harvest_delay", Warned)];

const DISCOVERY: &[Key] = &[
    scalar("bpf_pid_filter_off", Warned),
    entries("default_exclude_instrument", GLOB_SELECTOR),
    entries("default_exclude_services", REGEX_SELECTOR),
    scalar("default_otlp_grpc_port", Warned),
    list("disabled_route_harvesters", Warned),
    entries("exclude_instrument", GLOB_SELECTOR),
    scalar("exclude_otel_instrumented_services", Works),
    scalar("exclude_otel_instrumented_services_span_metrics", Warned),
    entries("exclude_services", REGEX_SELECTOR),
    list("excluded_linux_system_paths", Warned),
    entries("instrument", GLOB_SELECTOR),
    scalar("min_process_age", Warned),
    scalar("poll_interval", Warned),
    scalar("process_context_poll_interval", Warned),
    section(
        "route_harvester_advanced",
        DISCOVERY_ROUTE_HARVESTER_ADVANCED,
    ),
    scalar("route_harvester_timeout", Warned),
    entries("services", REGEX_SELECTOR),
    scalar("skip_go_specific_tracers", Warned),
    entries("survey", WARNED_SELECTOR),
];

const EBPF_BUFFER_SIZES: &[Key] = &[
    scalar("http", Warned),
    scalar("kafka", Warned),
    scalar("mssql", Warned),
    scalar("mysql", Warned),
    scalar("postgres", Warned),
    scalar("tcp", Warned),
];

const EBPF_LOG_ENRICHER_FIELD_NAMES: &[Key] =
    &[scalar("span_id", Warned), scalar("trace_id", Warned)];

const EBPF_LOG_ENRICHER_PLAIN_TEXT: &[Key] = &[
    scalar("enabled", Warned),
    scalar("multiline", Warned),
    scalar("placement", Warned),
];

const EBPF_LOG_ENRICHER_SERVICES: &[Key] = &[entries("service", WARNED_SELECTOR)];

const EBPF_LOG_ENRICHER: &[Key] = &[
    scalar("async_writer_channel_len", Warned),
    scalar("async_writer_workers", Warned),
    scalar("cache_size", Warned),
    scalar("cache_ttl", Warned),
    section("field_names", EBPF_LOG_ENRICHER_FIELD_NAMES),
    section("plain_text", EBPF_LOG_ENRICHER_PLAIN_TEXT),
    entries("services", EBPF_LOG_ENRICHER_SERVICES),
];

const EBPF_MAPS_CONFIG: &[Key] = &[scalar("global_scale_factor", Warned)];

const EBPF_PAYLOAD_EXTRACTION_HTTP_AWS: &[Key] = &[scalar("enabled", Warned)];

const EBPF_PAYLOAD_EXTRACTION_HTTP_ENRICHMENT_POLICY_DEFAULT_ACTION: &[Key] =
    &[scalar("body", Warned), scalar("headers", Warned)];

const EBPF_PAYLOAD_EXTRACTION_HTTP_ENRICHMENT_POLICY: &[Key] = &[
    section(
        "default_action",
        EBPF_PAYLOAD_EXTRACTION_HTTP_ENRICHMENT_POLICY_DEFAULT_ACTION,
    ),
    scalar("obfuscation_string", Warned),
];

const EBPF_PAYLOAD_EXTRACTION_HTTP_ENRICHMENT_RULES_MATCH_RESPONSE_STATUS_CODE: &[Key] = &[
    scalar("equals", Warned),
    scalar("greater_equals", Warned),
    scalar("greater_than", Warned),
    scalar("less_equals", Warned),
    scalar("less_than", Warned),
    scalar("not_equals", Warned),
];

const EBPF_PAYLOAD_EXTRACTION_HTTP_ENRICHMENT_RULES_MATCH: &[Key] = &[
    scalar("case_sensitive", Warned),
    list("methods", Warned),
    list("obfuscation_json_paths", Warned),
    list("patterns", Warned),
    section(
        "response_status_code",
        EBPF_PAYLOAD_EXTRACTION_HTTP_ENRICHMENT_RULES_MATCH_RESPONSE_STATUS_CODE,
    ),
    list("url_path_patterns", Warned),
];

const EBPF_PAYLOAD_EXTRACTION_HTTP_ENRICHMENT_RULES: &[Key] = &[
    scalar("action", Warned),
    section("match", EBPF_PAYLOAD_EXTRACTION_HTTP_ENRICHMENT_RULES_MATCH),
    scalar("obfuscation_string", Warned),
    scalar("scope", Warned),
    scalar("type", Warned),
];

const EBPF_PAYLOAD_EXTRACTION_HTTP_ENRICHMENT: &[Key] = &[
    scalar("enabled", Warned),
    section("policy", EBPF_PAYLOAD_EXTRACTION_HTTP_ENRICHMENT_POLICY),
    entries("rules", EBPF_PAYLOAD_EXTRACTION_HTTP_ENRICHMENT_RULES),
];

const EBPF_PAYLOAD_EXTRACTION_HTTP_GENAI_OPENAI_COMPATIBLE_GATEWAYS: &[Key] = &[
    scalar("host", Warned),
    scalar("port", Warned),
    scalar("provider", Warned),
];

const EBPF_PAYLOAD_EXTRACTION_HTTP_GENAI_OPENAI_COMPATIBLE: &[Key] = &[
    scalar("enabled", Warned),
    entries(
        "gateways",
        EBPF_PAYLOAD_EXTRACTION_HTTP_GENAI_OPENAI_COMPATIBLE_GATEWAYS,
    ),
];

const EBPF_PAYLOAD_EXTRACTION_HTTP_GENAI: &[Key] = &[
    section("anthropic", EBPF_PAYLOAD_EXTRACTION_HTTP_AWS),
    section("bedrock", EBPF_PAYLOAD_EXTRACTION_HTTP_AWS),
    section("embedding", EBPF_PAYLOAD_EXTRACTION_HTTP_AWS),
    section("gemini", EBPF_PAYLOAD_EXTRACTION_HTTP_AWS),
    section("mcp", EBPF_PAYLOAD_EXTRACTION_HTTP_AWS),
    section("ollama", EBPF_PAYLOAD_EXTRACTION_HTTP_AWS),
    section("openai", EBPF_PAYLOAD_EXTRACTION_HTTP_AWS),
    section(
        "openai_compatible",
        EBPF_PAYLOAD_EXTRACTION_HTTP_GENAI_OPENAI_COMPATIBLE,
    ),
    section("qwen", EBPF_PAYLOAD_EXTRACTION_HTTP_AWS),
    section("rerank", EBPF_PAYLOAD_EXTRACTION_HTTP_AWS),
    section("retrieval", EBPF_PAYLOAD_EXTRACTION_HTTP_AWS),
];

const EBPF_PAYLOAD_EXTRACTION_HTTP_SQLPP: &[Key] =
    &[scalar("enabled", Warned), list("endpoint_patterns", Warned)];

const EBPF_PAYLOAD_EXTRACTION_HTTP: &[Key] = &[
    section("aws", EBPF_PAYLOAD_EXTRACTION_HTTP_AWS),
    section("elasticsearch", EBPF_PAYLOAD_EXTRACTION_HTTP_AWS),
    section("enrichment", EBPF_PAYLOAD_EXTRACTION_HTTP_ENRICHMENT),
    section("genai", EBPF_PAYLOAD_EXTRACTION_HTTP_GENAI),
    section("graphql", EBPF_PAYLOAD_EXTRACTION_HTTP_AWS),
    section("jsonrpc", EBPF_PAYLOAD_EXTRACTION_HTTP_AWS),
    section("sqlpp", EBPF_PAYLOAD_EXTRACTION_HTTP_SQLPP),
];

const EBPF_PAYLOAD_EXTRACTION: &[Key] = &[section("http", EBPF_PAYLOAD_EXTRACTION_HTTP)];

const EBPF_REDIS_DB_CACHE: &[Key] = &[scalar("enabled", Warned), scalar("max_size", Warned)];

const EBPF: &[Key] = &[
    scalar("batch_length", Warned),
    scalar("batch_timeout", Warned),
    scalar("bpf_debug", Warned),
    scalar("bpf_fs_path", Warned),
    section("buffer_sizes", EBPF_BUFFER_SIZES),
    // How the probes see socket calls: fentry, tp_btf, raw_tp, syscalls.
    scalar("capture_path", Ours),
    // Payload bytes copied per socket call.
    scalar("capture_size", Ours),
    scalar("context_propagation", Works),
    scalar("couchbase_db_cache_size", Warned),
    scalar("disable_black_box_cp", Warned),
    scalar("dns_request_timeout", Warned),
    // Named by Beyla's docs, older than `context_propagation`.
    scalar("enable_context_propagation", Works),
    scalar("force_bpf_map_reader", Warned),
    scalar("go_http_client_buffer_timeout", Warned),
    scalar("heuristic_sql_detect", Warned),
    scalar("high_request_volume", Works),
    scalar("http_request_timeout", Warned),
    scalar("instrument_cuda", Warned),
    scalar("kafka_topic_uuid_cache_size", Warned),
    section("log_enricher", EBPF_LOG_ENRICHER),
    section("maps_config", EBPF_MAPS_CONFIG),
    scalar("max_transaction_time", Warned),
    scalar("mongo_requests_cache_size", Warned),
    scalar("mssql_prepared_statements_cache_size", Warned),
    scalar("mysql_prepared_statements_cache_size", Warned),
    scalar("override_bpfloop_enabled", Warned),
    section("payload_extraction", EBPF_PAYLOAD_EXTRACTION),
    scalar("postgres_prepared_statements_cache_size", Warned),
    scalar("protocol_debug_print", Warned),
    section("redis_db_cache", EBPF_REDIS_DB_CACHE),
    // db.query.text of SQL spans: sanitized or raw.
    scalar("sql_query_text", Ours),
    scalar("stats_wakeup_data_bytes", Warned),
    scalar("track_request_headers", Works),
    scalar("traffic_control_backend", Warned),
    scalar("wakeup_len", Works),
];

const FILTER_RULE: &[Key] = &[
    scalar("equals", Works),
    scalar("greater_equals", Works),
    scalar("greater_than", Works),
    scalar("less_equals", Works),
    scalar("less_than", Works),
    scalar("match", Works),
    scalar("not_equals", Works),
    scalar("not_match", Works),
];

/// Network flows and socket statistics are not observed yet.
const WARNED_FILTER_RULE: &[Key] = &[
    scalar("equals", Warned),
    scalar("greater_equals", Warned),
    scalar("greater_than", Warned),
    scalar("less_equals", Warned),
    scalar("less_than", Warned),
    scalar("match", Warned),
    scalar("not_equals", Warned),
    scalar("not_match", Warned),
];

const FILTER: &[Key] = &[
    named("application", FILTER_RULE),
    named("network", WARNED_FILTER_RULE),
    named("stats", WARNED_FILTER_RULE),
];

const GRAFANA_OTLP: &[Key] = &[
    scalar("cloud_api_key", Works),
    scalar("cloud_instance_id", Works),
    list("cloud_submit", Works),
    scalar("cloud_zone", Works),
];

const GRAFANA: &[Key] = &[section("otlp", GRAFANA_OTLP)];

const HEALTH_CHECK: &[Key] = &[
    scalar("listen_address", Warned),
    scalar("port", Warned),
    scalar("unix_socket_path", Warned),
];

const INJECTOR_OTEL_EXPORTED_SIGNALS: &[Key] = &[
    scalar("logs", Warned),
    scalar("metrics", Warned),
    scalar("traces", Warned),
];

const INJECTOR_RESOURCES: &[Key] = &[
    scalar("add_k8s_ip_attribute", Warned),
    scalar("add_k8s_uid_attributes", Warned),
    map("attributes", Warned),
    scalar("use_k8s_labels_for_resource_attributes", Warned),
];

const INJECTOR_WEBHOOK: &[Key] = &[scalar("external_deployment_name", Warned)];

const INJECTOR: &[Key] = &[
    list("enabled_sdks", Warned),
    entries("exclude_instrument", WARNED_SELECTOR),
    scalar("exporter_otlp_endpoint", Warned),
    scalar("exporter_otlp_protocol", Warned),
    scalar("image_version", Warned),
    entries("instrument", WARNED_SELECTOR),
    section("otel_exported_signals", INJECTOR_OTEL_EXPORTED_SIGNALS),
    section("resources", INJECTOR_RESOURCES),
    list("trace_propagators", Warned),
    section("trace_sampler", WARNED_SAMPLER),
    section("webhook", INJECTOR_WEBHOOK),
];

const INTERNAL_METRICS_AVOIDED_SERVICES: &[Key] =
    &[scalar("disabled", Warned), scalar("limit", Warned)];

const INTERNAL_METRICS_PROMETHEUS: &[Key] = &[scalar("path", Warned), scalar("port", Warned)];

const INTERNAL_METRICS: &[Key] = &[
    section("avoided_services", INTERNAL_METRICS_AVOIDED_SERVICES),
    scalar("bpf_metric_scrape_interval", Warned),
    scalar("exporter", Warned),
    section("prometheus", INTERNAL_METRICS_PROMETHEUS),
];

const JAVAAGENT: &[Key] = &[
    scalar("attach_timeout", Warned),
    scalar("debug", Warned),
    scalar("debug_instrumentation", Warned),
    scalar("enabled", Warned),
];

const JVM_RUNTIME_METRICS: &[Key] = &[scalar("sampling_interval", Warned)];

const NAME_RESOLVER: &[Key] = &[
    scalar("cache_expiry", Warned),
    scalar("cache_len", Warned),
    list("sources", Warned),
];

const NETWORK_GEO_IP_IPINFO: &[Key] = &[scalar("path", Warned)];

const NETWORK_GEO_IP_MAXMIND: &[Key] =
    &[scalar("asn_path", Warned), scalar("country_path", Warned)];

const NETWORK_GEO_IP: &[Key] = &[
    scalar("cache_expiry", Warned),
    scalar("cache_len", Warned),
    section("ipinfo", NETWORK_GEO_IP_IPINFO),
    section("maxmind", NETWORK_GEO_IP_MAXMIND),
];

const NETWORK_REVERSE_DNS: &[Key] = &[
    scalar("cache_expiry", Warned),
    scalar("cache_len", Warned),
    scalar("type", Warned),
];

const NETWORK: &[Key] = &[
    scalar("agent_ip", Warned),
    scalar("agent_ip_iface", Warned),
    scalar("agent_ip_type", Warned),
    scalar("cache_active_timeout", Warned),
    scalar("cache_max_flows", Warned),
    list("cidrs", Warned),
    scalar("deduper", Warned),
    scalar("deduper_fc_ttl", Warned),
    scalar("direction", Warned),
    scalar("enable", Warned),
    list("exclude_interfaces", Warned),
    list("exclude_protocols", Warned),
    section("geo_ip", NETWORK_GEO_IP),
    scalar("guess_ports", Warned),
    list("interfaces", Warned),
    scalar("listen_interfaces", Warned),
    scalar("listen_poll_period", Warned),
    scalar("print_flows", Warned),
    list("protocols", Warned),
    section("reverse_dns", NETWORK_REVERSE_DNS),
    scalar("sampling", Warned),
    scalar("source", Warned),
];

const NODEJS: &[Key] = &[scalar("enabled", Warned), scalar("manual_spans", Warned)];

const OTEL_METRICS_EXPORT_BUCKETS: &[Key] = &[
    list("duration_histogram", Warned),
    list("gen_ai_client_operation_duration_histogram", Warned),
    list("gen_ai_client_token_usage_histogram", Warned),
    list("request_size_histogram", Warned),
    list("response_size_histogram", Warned),
    list("stat_tcp_rtt_histogram", Warned),
];

const OTEL_METRICS_EXPORT_EXPONENTIAL_HISTOGRAM: &[Key] =
    &[scalar("max_scale", Warned), scalar("max_size", Warned)];

const OTEL_METRICS_EXPORT: &[Key] = &[
    scalar("allow_service_graph_self_references", Warned),
    section("buckets", OTEL_METRICS_EXPORT_BUCKETS),
    scalar("endpoint", Works),
    section(
        "exponential_histogram",
        OTEL_METRICS_EXPORT_EXPONENTIAL_HISTOGRAM,
    ),
    list("extra_span_resource_attributes", Warned),
    list("features", Works),
    // OTLP headers in the file (Beyla takes them from the variables only).
    map("headers", Ours),
    scalar("histogram_aggregation", Warned),
    scalar("insecure_skip_verify", Works),
    list("instrumentations", Works),
    scalar("interval", Works),
    scalar("otel_sdk_log_level", Warned),
    scalar("protocol", Works),
    scalar("reporters_cache_len", Warned),
    scalar("ttl", Warned),
];

const OTEL_TRACES_EXPORT: &[Key] = &[
    scalar("backoff_initial_interval", Warned),
    scalar("backoff_max_elapsed_time", Warned),
    scalar("backoff_max_interval", Warned),
    scalar("batch_max_size", Warned),
    scalar("batch_timeout", Warned),
    scalar("endpoint", Works),
    map("headers", Ours),
    scalar("insecure_skip_verify", Works),
    list("instrumentations", Works),
    scalar("otel_sdk_log_level", Warned),
    scalar("protocol", Works),
    scalar("queue_size", Warned),
    scalar("reporters_cache_len", Warned),
    section("sampler", SAMPLER),
];

const PROCESSES: &[Key] = &[scalar("interval", Warned)];

const PROMETHEUS_EXPORT_NATIVE_HISTOGRAM: &[Key] = &[
    scalar("bucket_factor", Warned),
    scalar("max_bucket_number", Warned),
    scalar("min_reset_duration", Warned),
];

const PROMETHEUS_EXPORT: &[Key] = &[
    scalar("allow_service_graph_self_references", Warned),
    section("buckets", OTEL_METRICS_EXPORT_BUCKETS),
    scalar("disable_build_info", Warned),
    scalar("exemplar_filter", Warned),
    list("extra_resource_attributes", Warned),
    list("extra_span_resource_attributes", Warned),
    list("features", Works),
    list("instrumentations", Works),
    section("native_histogram", PROMETHEUS_EXPORT_NATIVE_HISTOGRAM),
    scalar("path", Works),
    scalar("port", Works),
    scalar("service_cache_size", Warned),
    scalar("ttl", Works),
];

const ROUTES: &[Key] = &[
    scalar("ignore_mode", Works),
    list("ignored_patterns", Works),
    scalar("max_path_segment_cardinality", Works),
    list("patterns", Works),
    scalar("unmatched", Works),
    scalar("wildcard_char", Works),
];

const SIGIL_EXPORT: &[Key] = &[
    scalar("backoff_initial_interval", Warned),
    scalar("backoff_max_elapsed_time", Warned),
    scalar("backoff_max_interval", Warned),
    scalar("batch_max_size", Warned),
    scalar("batch_timeout", Warned),
    scalar("endpoint", Warned),
    scalar("insecure_skip_verify", Warned),
    list("instrumentations", Warned),
    scalar("otel_sdk_log_level", Warned),
    scalar("protocol", Warned),
    scalar("queue_size", Warned),
    scalar("reporters_cache_len", Warned),
    section("sampler", WARNED_SAMPLER),
];

const STATS: &[Key] = &[
    scalar("agent_ip", Warned),
    scalar("agent_ip_iface", Warned),
    scalar("agent_ip_type", Warned),
    list("cidrs", Warned),
    section("geo_ip", NETWORK_GEO_IP),
    scalar("print_stats", Warned),
    section("reverse_dns", NETWORK_REVERSE_DNS),
];

const TOPOLOGY: &[Key] = &[list("spans", Warned)];

const ROOT: &[Key] = &[
    section("attributes", ATTRIBUTES),
    scalar("channel_buffer_len", Warned),
    scalar("channel_send_timeout", Warned),
    scalar("channel_send_timeout_panic", Warned),
    section("discovery", DISCOVERY),
    section("ebpf", EBPF),
    scalar("enforce_sys_caps", Warned),
    scalar("executable_name", Works),
    section("filter", FILTER),
    section("grafana", GRAFANA),
    section("health_check", HEALTH_CHECK),
    section("injector", INJECTOR),
    section("internal_metrics", INTERNAL_METRICS),
    section("javaagent", JAVAAGENT),
    section("jvm_runtime_metrics", JVM_RUNTIME_METRICS),
    scalar("log_config", Warned),
    scalar("log_format", Works),
    scalar("log_level", Works),
    section("metrics", METRICS),
    section("name_resolver", NAME_RESOLVER),
    section("network", NETWORK),
    section("nodejs", NODEJS),
    scalar("open_port", Works),
    section("otel_metrics_export", OTEL_METRICS_EXPORT),
    section("otel_traces_export", OTEL_TRACES_EXPORT),
    section("processes", PROCESSES),
    scalar("profile_port", Warned),
    section("prometheus_export", PROMETHEUS_EXPORT),
    section("routes", ROUTES),
    scalar("service_name", Works),
    scalar("service_namespace", Works),
    scalar("shutdown_timeout", Works),
    section("sigil_export", SIGIL_EXPORT),
    section("stats", STATS),
    scalar("target_pids", Warned),
    section("topology", TOPOLOGY),
    scalar("trace_printer", Works),
];
