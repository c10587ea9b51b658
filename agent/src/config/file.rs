//! The config file: YAML or TOML with Beyla's key names. Both are read into one
//! tree, which is walked against [`KEYS`] so that an unknown key or a value of
//! the wrong shape is refused with its full path and, for a misspelt key, the
//! closest known one. The text of each scalar is then parsed exactly like the
//! environment variable of the same meaning (see `parse.rs`).

use serde_json::{Map, Value};

use super::error::{ConfigError, KeyHint, Origin};
use super::limits::{self, Syntax};
use super::Raw;

/// The shape a key's value must have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A map of further keys.
    Section,
    /// A list of maps of further keys; their keys are written `list[].key`.
    Entries,
    /// A string, number or boolean.
    Scalar,
    /// A list of strings.
    List,
    /// A map of names to strings, or one `k=v,k2=v2` string.
    Map,
}

impl Kind {
    fn expected(self) -> &'static str {
        match self {
            Kind::Section => "a map of keys",
            Kind::Entries => "a list of maps",
            Kind::Scalar => "a string, number or boolean",
            Kind::List => "a list of strings",
            Kind::Map => "a map of names to values, or a string such as k=v,k2=v2",
        }
    }

    fn accepts(self, value: &Value) -> bool {
        match self {
            Kind::Section => value.is_object(),
            Kind::Entries => value.is_array(),
            Kind::Scalar => is_scalar(value),
            Kind::List => value
                .as_array()
                .is_some_and(|items| items.iter().all(is_scalar)),
            Kind::Map => {
                value.is_string()
                    || value
                        .as_object()
                        .is_some_and(|map| map.values().all(is_scalar))
            }
        }
    }
}

/// Every key the agent knows. The code reads only these (checked in debug
/// builds) and docs/configuration.md documents each leaf (checked by a test).
pub(crate) const KEYS: &[(&str, Kind)] = &[
    ("log_level", Kind::Scalar),
    ("trace_printer", Kind::Scalar),
    ("shutdown_timeout", Kind::Scalar),
    ("discovery", Kind::Section),
    ("discovery.services", Kind::Entries),
    ("discovery.services[].name", Kind::Scalar),
    ("discovery.services[].namespace", Kind::Scalar),
    ("discovery.services[].open_port", Kind::Scalar),
    ("discovery.services[].exe_path", Kind::Scalar),
    ("discovery.instrument", Kind::Entries),
    ("discovery.instrument[].name", Kind::Scalar),
    ("discovery.instrument[].namespace", Kind::Scalar),
    ("discovery.instrument[].open_ports", Kind::Scalar),
    ("discovery.instrument[].exe_path", Kind::Scalar),
    ("discovery.exclude_services", Kind::Entries),
    ("discovery.exclude_services[].open_port", Kind::Scalar),
    ("discovery.exclude_services[].exe_path", Kind::Scalar),
    ("discovery.exclude_instrument", Kind::Entries),
    ("discovery.exclude_instrument[].open_ports", Kind::Scalar),
    ("discovery.exclude_instrument[].exe_path", Kind::Scalar),
    ("ebpf", Kind::Section),
    ("ebpf.wakeup_len", Kind::Scalar),
    ("ebpf.track_request_headers", Kind::Scalar),
    ("ebpf.high_request_volume", Kind::Scalar),
    ("ebpf.capture_size", Kind::Scalar),
    ("ebpf.sql_query_text", Kind::Scalar),
    ("otel_traces_export", Kind::Section),
    ("otel_traces_export.endpoint", Kind::Scalar),
    ("otel_traces_export.protocol", Kind::Scalar),
    ("otel_traces_export.headers", Kind::Map),
    ("otel_traces_export.sampler", Kind::Section),
    ("otel_traces_export.sampler.name", Kind::Scalar),
    ("otel_traces_export.sampler.arg", Kind::Scalar),
    ("otel_metrics_export", Kind::Section),
    ("otel_metrics_export.endpoint", Kind::Scalar),
    ("otel_metrics_export.protocol", Kind::Scalar),
    ("otel_metrics_export.headers", Kind::Map),
    ("otel_metrics_export.interval", Kind::Scalar),
    ("prometheus_export", Kind::Section),
    ("prometheus_export.port", Kind::Scalar),
    ("prometheus_export.path", Kind::Scalar),
    ("routes", Kind::Section),
    ("routes.patterns", Kind::List),
    ("routes.ignored_patterns", Kind::List),
    ("routes.ignore_mode", Kind::Scalar),
    ("routes.unmatched", Kind::Scalar),
    ("routes.wildcard_char", Kind::Scalar),
    ("routes.max_path_segment_cardinality", Kind::Scalar),
    // Kubernetes: the pods selected (agent/src/kubernetes/selector.rs) and
    // the metadata watch (agent/src/kubernetes/config.rs).
    ("discovery.services[].k8s_namespace", Kind::Scalar),
    ("discovery.services[].k8s_pod_name", Kind::Scalar),
    ("discovery.services[].k8s_deployment_name", Kind::Scalar),
    ("discovery.services[].k8s_replicaset_name", Kind::Scalar),
    ("discovery.services[].k8s_statefulset_name", Kind::Scalar),
    ("discovery.services[].k8s_daemonset_name", Kind::Scalar),
    ("discovery.services[].k8s_owner_name", Kind::Scalar),
    ("discovery.services[].k8s_pod_labels", Kind::Map),
    ("discovery.services[].k8s_pod_annotations", Kind::Map),
    ("discovery.instrument[].k8s_namespace", Kind::Scalar),
    ("discovery.instrument[].k8s_pod_name", Kind::Scalar),
    ("discovery.instrument[].k8s_deployment_name", Kind::Scalar),
    ("discovery.instrument[].k8s_replicaset_name", Kind::Scalar),
    ("discovery.instrument[].k8s_statefulset_name", Kind::Scalar),
    ("discovery.instrument[].k8s_daemonset_name", Kind::Scalar),
    ("discovery.instrument[].k8s_owner_name", Kind::Scalar),
    ("discovery.instrument[].k8s_pod_labels", Kind::Map),
    ("discovery.instrument[].k8s_pod_annotations", Kind::Map),
    ("discovery.exclude_services[].k8s_namespace", Kind::Scalar),
    ("discovery.exclude_services[].k8s_pod_name", Kind::Scalar),
    (
        "discovery.exclude_services[].k8s_deployment_name",
        Kind::Scalar,
    ),
    (
        "discovery.exclude_services[].k8s_replicaset_name",
        Kind::Scalar,
    ),
    (
        "discovery.exclude_services[].k8s_statefulset_name",
        Kind::Scalar,
    ),
    (
        "discovery.exclude_services[].k8s_daemonset_name",
        Kind::Scalar,
    ),
    ("discovery.exclude_services[].k8s_owner_name", Kind::Scalar),
    ("discovery.exclude_services[].k8s_pod_labels", Kind::Map),
    (
        "discovery.exclude_services[].k8s_pod_annotations",
        Kind::Map,
    ),
    ("discovery.exclude_instrument[].k8s_namespace", Kind::Scalar),
    ("discovery.exclude_instrument[].k8s_pod_name", Kind::Scalar),
    (
        "discovery.exclude_instrument[].k8s_deployment_name",
        Kind::Scalar,
    ),
    (
        "discovery.exclude_instrument[].k8s_replicaset_name",
        Kind::Scalar,
    ),
    (
        "discovery.exclude_instrument[].k8s_statefulset_name",
        Kind::Scalar,
    ),
    (
        "discovery.exclude_instrument[].k8s_daemonset_name",
        Kind::Scalar,
    ),
    (
        "discovery.exclude_instrument[].k8s_owner_name",
        Kind::Scalar,
    ),
    ("discovery.exclude_instrument[].k8s_pod_labels", Kind::Map),
    (
        "discovery.exclude_instrument[].k8s_pod_annotations",
        Kind::Map,
    ),
    ("attributes", Kind::Section),
    ("attributes.kubernetes", Kind::Section),
    ("attributes.kubernetes.enable", Kind::Scalar),
    ("attributes.kubernetes.cluster_name", Kind::Scalar),
    ("attributes.kubernetes.kubeconfig_path", Kind::Scalar),
    ("attributes.kubernetes.informers_sync_timeout", Kind::Scalar),
];

fn kind_of(key: &str) -> Option<Kind> {
    KEYS.iter().find(|(k, _)| *k == key).map(|&(_, kind)| kind)
}

fn is_scalar(value: &Value) -> bool {
    matches!(value, Value::String(_) | Value::Number(_) | Value::Bool(_))
}

/// A parsed and shape-checked config file.
#[derive(Debug)]
pub(crate) struct FileConfig {
    /// The path as the user gave it, for messages.
    name: String,
    root: Map<String, Value>,
}

/// One map of an [`Kind::Entries`] list, such as `discovery.services[0]`.
pub(crate) struct Entry<'a> {
    file: &'a str,
    /// The key path with the index, for messages.
    pub path: String,
    /// The key path with `[]`, to look fields up in [`KEYS`].
    schema: &'static str,
    map: &'a Map<String, Value>,
}

impl Entry<'_> {
    pub fn get(&self, field: &'static str) -> Option<Raw> {
        debug_assert!(kind_of(&format!("{}[].{field}", self.schema)).is_some());
        let value = self.map.get(field).filter(|v| !v.is_null())?;
        Some(Raw {
            value: value.clone(),
            origin: Origin::File {
                file: self.file.to_string(),
                key: format!("{}.{field}", self.path),
            },
        })
    }

    pub fn empty(&self, expected: &'static str) -> ConfigError {
        ConfigError::EmptyEntry {
            file: self.file.to_string(),
            key: self.path.clone(),
            expected,
        }
    }
}

impl FileConfig {
    /// Parses `text`, YAML or TOML by the extension of `name` (refused first
    /// when it nests deeper than [`limits::MAX_NESTING`]), and checks every key.
    pub fn parse(name: &str, text: &str) -> Result<Self, ConfigError> {
        let lower = name.to_ascii_lowercase();
        let syntax = |format, reason| ConfigError::Syntax {
            file: name.to_string(),
            format,
            reason,
        };
        let nesting = |format, limit| {
            limits::check_nesting(text, limit).map_err(|e| syntax(format, e.to_string()))
        };
        let root: Value = if lower.ends_with(".yml") || lower.ends_with(".yaml") {
            nesting("YAML", Syntax::Yaml)?;
            serde_yaml_ng::from_str(text).map_err(|e| syntax("YAML", e.to_string()))?
        } else if lower.ends_with(".toml") {
            nesting("TOML", Syntax::Toml)?;
            toml::from_str(text).map_err(|e| syntax("TOML", toml_reason(text, &e)))?
        } else {
            return Err(ConfigError::Format {
                file: name.to_string(),
            });
        };
        let root = match root {
            // An empty YAML document sets nothing.
            Value::Null => Map::new(),
            Value::Object(map) => map,
            other => {
                return Err(ConfigError::WrongType {
                    file: name.to_string(),
                    key: "(the whole file)".to_string(),
                    found: describe(&other),
                    expected: Kind::Section.expected(),
                })
            }
        };
        check_map(name, &root, "", "")?;
        Ok(Self {
            name: name.to_string(),
            root,
        })
    }

    /// The value of a key outside any list; an explicit null counts as unset.
    pub fn get(&self, key: &'static str) -> Option<Raw> {
        debug_assert!(kind_of(key).is_some(), "{key} missing from KEYS");
        let value = self.get_ref(key).filter(|v| !v.is_null())?;
        Some(Raw {
            value: value.clone(),
            origin: Origin::File {
                file: self.name.clone(),
                key: key.to_string(),
            },
        })
    }

    /// The maps of an [`Kind::Entries`] key, in file order.
    pub fn entries(&self, key: &'static str) -> Vec<Entry<'_>> {
        debug_assert_eq!(kind_of(key), Some(Kind::Entries));
        let Some(Value::Array(items)) = self.get_ref(key) else {
            return Vec::new();
        };
        items
            .iter()
            .enumerate()
            .filter_map(|(i, item)| {
                Some(Entry {
                    file: &self.name,
                    path: format!("{key}[{i}]"),
                    schema: key,
                    map: item.as_object()?,
                })
            })
            .collect()
    }

    fn get_ref(&self, key: &str) -> Option<&Value> {
        let mut parts = key.split('.');
        let mut value = self.root.get(parts.next()?)?;
        for part in parts {
            value = value.get(part)?;
        }
        Some(value)
    }
}

/// Checks the keys of one map: `schema` is its path with `[]` for list
/// entries, `path` the same with indices, both empty at the top.
fn check_map(
    file: &str,
    map: &Map<String, Value>,
    schema: &str,
    path: &str,
) -> Result<(), ConfigError> {
    let join = |prefix: &str, key: &str| {
        if prefix.is_empty() {
            key.to_string()
        } else {
            format!("{prefix}.{key}")
        }
    };
    for (key, value) in map {
        let key_schema = join(schema, key);
        let key_path = join(path, key);
        let Some(kind) = kind_of(&key_schema) else {
            return Err(ConfigError::UnknownKey {
                file: file.to_string(),
                key: key_path,
                hint: hint(schema, path, key),
            });
        };
        if value.is_null() {
            continue;
        }
        if !kind.accepts(value) {
            // Point at the offending list item when that is what is wrong.
            let (key, found) = match value
                .as_array()
                .and_then(|items| items.iter().enumerate().find(|(_, item)| !is_scalar(item)))
            {
                Some((i, item)) if kind == Kind::List => {
                    (format!("{key_path}[{i}]"), describe(item))
                }
                _ => (key_path, describe(value)),
            };
            return Err(ConfigError::WrongType {
                file: file.to_string(),
                key,
                found,
                expected: kind.expected(),
            });
        }
        match (kind, value) {
            (Kind::Section, Value::Object(inner)) => {
                check_map(file, inner, &key_schema, &key_path)?
            }
            (Kind::Entries, Value::Array(items)) => {
                for (i, item) in items.iter().enumerate() {
                    let item_path = format!("{key_path}[{i}]");
                    let Value::Object(inner) = item else {
                        return Err(ConfigError::WrongType {
                            file: file.to_string(),
                            key: item_path,
                            found: describe(item),
                            expected: Kind::Section.expected(),
                        });
                    };
                    check_map(file, inner, &format!("{key_schema}[]"), &item_path)?;
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// The closest sibling of an unknown key; else a key elsewhere with the same
/// name (`wakeup_len` at the top means `ebpf.wakeup_len`); else all siblings.
fn hint(schema: &str, path: &str, unknown: &str) -> KeyHint {
    let siblings: Vec<&str> = KEYS
        .iter()
        .filter_map(|(key, _)| {
            let rest = if schema.is_empty() {
                *key
            } else {
                key.strip_prefix(schema)?.strip_prefix('.')?
            };
            (!rest.contains('.')).then_some(rest)
        })
        .collect();
    let best = siblings
        .iter()
        .map(|s| (strsim::normalized_damerau_levenshtein(unknown, s), *s))
        .filter(|(score, _)| *score >= 0.6)
        .max_by(|a, b| a.0.total_cmp(&b.0));
    if let Some((_, sibling)) = best {
        let full = if path.is_empty() {
            sibling.to_string()
        } else {
            format!("{path}.{sibling}")
        };
        return KeyHint::DidYouMean(full);
    }
    if let Some((elsewhere, _)) = KEYS
        .iter()
        .find(|(key, _)| key.rsplit('.').next() == Some(unknown))
    {
        return KeyHint::DidYouMean(elsewhere.to_string());
    }
    KeyHint::Known(siblings.iter().map(|s| s.to_string()).collect())
}

/// A value as an error message shows it.
fn describe(value: &Value) -> String {
    match value {
        Value::Null => "nothing".to_string(),
        Value::Bool(b) => format!("the boolean {b}"),
        Value::Number(n) => format!("the number {n}"),
        Value::String(s) => format!("the string {s:?}"),
        Value::Array(_) => "a list".to_string(),
        Value::Object(_) => "a map".to_string(),
    }
}

/// The TOML parser's message with the line and column of the mistake.
fn toml_reason(text: &str, error: &toml::de::Error) -> String {
    let message = error.message().trim_end();
    match error.span() {
        Some(span) => {
            let before = &text[..span.start.min(text.len())];
            let line = before.matches('\n').count() + 1;
            let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
            format!("{message} at line {line} column {column}")
        }
        None => message.to_string(),
    }
}
