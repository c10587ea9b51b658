//! The config file: YAML or TOML with Beyla's key names. `${VAR}` references
//! are replaced from the environment first, as Beyla does; then the file is
//! read into one tree, which is walked against the key table (`keys.rs`): an
//! unknown key or a value of the wrong shape is refused with its full path
//! and, for a misspelt key, the closest known one; a Beyla key that is not
//! implemented is noted once. The text of each scalar is then parsed exactly
//! like the environment variable of the same meaning (see `parse.rs`).

use serde_json::{Map, Value as JsonValue};

use super::error::{ConfigError, KeyHint, Origin};
use super::keys::{self, Key, Shape, Status, Value};
use super::limits::{self, Syntax};
use super::vars::Env;
use super::Raw;

fn accepts(value: Value, found: &JsonValue) -> bool {
    match value {
        Value::Scalar => is_scalar(found),
        Value::List => found
            .as_array()
            .is_some_and(|items| items.iter().all(is_scalar)),
        Value::Map => {
            found.is_string()
                || found
                    .as_object()
                    .is_some_and(|map| map.values().all(is_scalar))
        }
    }
}

fn expected(shape: Shape) -> &'static str {
    match shape {
        Shape::Section(_) | Shape::Named(_) => "a map of keys",
        Shape::Entries(_) => "a list of maps",
        Shape::Leaf(Value::Scalar, _) => "a string, number or boolean",
        Shape::Leaf(Value::List, _) => "a list of strings",
        Shape::Leaf(Value::Map, _) => "a map of names to values, or a string such as k=v,k2=v2",
    }
}

/// A setting the code reads: it must be in the table, and implemented.
fn readable(path: &str) -> bool {
    keys::find(path)
        .and_then(Key::status)
        .is_some_and(|s| s != Status::Warned)
}

fn is_scalar(value: &JsonValue) -> bool {
    matches!(
        value,
        JsonValue::String(_) | JsonValue::Number(_) | JsonValue::Bool(_)
    )
}

/// A parsed and shape-checked config file.
#[derive(Debug)]
pub(crate) struct FileConfig {
    /// The path as the user gave it, for messages.
    name: String,
    root: Map<String, JsonValue>,
    /// Beyla keys written in the file that are not implemented, once each,
    /// with the path where each was first met (`discovery.instrument[1].k8s_namespace`).
    pub unsupported: Vec<String>,
}

/// One map of a list of maps (`discovery.services[0]`), or of a map of
/// names (`filter.application.url.path`).
pub(crate) struct Entry<'a> {
    file: &'a str,
    /// The key path with the index or name, for messages.
    pub path: String,
    /// The name, for a map of names.
    pub name: &'a str,
    /// The key path with `[]` or `.*`, to look fields up in the table.
    schema: String,
    map: &'a Map<String, JsonValue>,
}

impl Entry<'_> {
    pub fn get(&self, field: &'static str) -> Option<Raw> {
        debug_assert!(readable(&format!("{}.{field}", self.schema)), "{field}");
        let value = self.map.get(field).filter(|v| !v.is_null())?;
        Some(Raw {
            value: value.clone(),
            origin: Origin::File {
                file: self.file.to_string(),
                key: format!("{}.{field}", self.path),
            },
        })
    }

    /// The keys written in the entry, whatever their value.
    pub fn written(&self) -> impl Iterator<Item = &str> {
        self.map.keys().map(String::as_str)
    }

    pub fn incomplete(&self, expected: &'static str) -> ConfigError {
        ConfigError::Incomplete {
            file: self.file.to_string(),
            key: self.path.clone(),
            expected,
        }
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
    pub fn parse(name: &str, text: &str, env: &Env) -> Result<Self, ConfigError> {
        let lower = name.to_ascii_lowercase();
        let syntax = |format, reason| ConfigError::Syntax {
            file: name.to_string(),
            format,
            reason,
        };
        let text = substitute(text, env);
        let nesting = |format, limit| {
            limits::check_nesting(&text, limit).map_err(|e| syntax(format, e.to_string()))
        };
        let root: JsonValue = if lower.ends_with(".yml") || lower.ends_with(".yaml") {
            nesting("YAML", Syntax::Yaml)?;
            let mut yaml: serde_yaml_ng::Value =
                serde_yaml_ng::from_str(&text).map_err(|e| syntax("YAML", e.to_string()))?;
            yaml.apply_merge()
                .map_err(|e| syntax("YAML", e.to_string()))?;
            serde_json::to_value(yaml).map_err(|e| syntax("YAML", e.to_string()))?
        } else if lower.ends_with(".toml") {
            nesting("TOML", Syntax::Toml)?;
            toml::from_str(&text).map_err(|e| syntax("TOML", toml_reason(&text, &e)))?
        } else {
            return Err(ConfigError::Format {
                file: name.to_string(),
            });
        };
        let root = match root {
            // An empty YAML document sets nothing.
            JsonValue::Null => Map::new(),
            JsonValue::Object(map) => map,
            other => {
                return Err(ConfigError::WrongType {
                    file: name.to_string(),
                    key: "(the whole file)".to_string(),
                    found: describe(&other),
                    expected: "a map of keys",
                })
            }
        };
        let mut walk = Walk {
            file: name,
            seen: Vec::new(),
            unsupported: Vec::new(),
        };
        walk.map(&root, "", "")?;
        Ok(Self {
            name: name.to_string(),
            root,
            unsupported: walk.unsupported,
        })
    }

    /// The value of a key outside any list; an explicit null counts as unset.
    pub fn get(&self, key: &'static str) -> Option<Raw> {
        debug_assert!(readable(key), "{key} is not an implemented key");
        let value = self.get_ref(key).filter(|v| !v.is_null())?;
        Some(Raw {
            value: value.clone(),
            origin: Origin::File {
                file: self.name.clone(),
                key: key.to_string(),
            },
        })
    }

    /// The maps of a list-of-maps key, in file order.
    pub fn entries(&self, key: &'static str) -> Vec<Entry<'_>> {
        debug_assert!(matches!(
            keys::find(key).map(|k| k.shape),
            Some(Shape::Entries(_))
        ));
        let Some(JsonValue::Array(items)) = self.get_ref(key) else {
            return Vec::new();
        };
        items
            .iter()
            .enumerate()
            .filter_map(|(i, item)| {
                Some(Entry {
                    file: &self.name,
                    path: format!("{key}[{i}]"),
                    name: "",
                    schema: format!("{key}[]"),
                    map: item.as_object()?,
                })
            })
            .collect()
    }

    /// The maps of a map-of-names key, in file order.
    pub fn named(&self, key: &'static str) -> Vec<Entry<'_>> {
        debug_assert!(matches!(
            keys::find(key).map(|k| k.shape),
            Some(Shape::Named(_))
        ));
        let Some(JsonValue::Object(names)) = self.get_ref(key) else {
            return Vec::new();
        };
        names
            .iter()
            .filter_map(|(name, item)| {
                Some(Entry {
                    file: &self.name,
                    path: format!("{key}.{name}"),
                    name,
                    schema: format!("{key}.*"),
                    map: item.as_object()?,
                })
            })
            .collect()
    }

    /// Whether the file writes this key at all, even with an empty value.
    pub fn has(&self, key: &'static str) -> bool {
        self.get_ref(key).is_some()
    }

    fn get_ref(&self, key: &str) -> Option<&JsonValue> {
        let mut parts = key.split('.');
        let mut value = self.root.get(parts.next()?)?;
        for part in parts {
            value = value.get(part)?;
        }
        Some(value)
    }
}

/// Replaces `${NAME}`, `${env:NAME}` and `${NAME:-default}` with the
/// variable's value (the default when it is unset or empty, else nothing),
/// and `$${...}` with the literal `${...}`, as Beyla does before parsing.
fn substitute(text: &str, env: &Env) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("${") {
        let escaped = rest[..at].ends_with('$');
        out.push_str(&rest[..if escaped { at - 1 } else { at }]);
        let after = &rest[at + 2..];
        let Some(end) = after.find('}') else {
            out.push_str(&rest[at..]);
            return out;
        };
        let body = &after[..end];
        let (name, default) = match body.split_once(":-") {
            Some((name, default)) => (name, default),
            None => (body, ""),
        };
        let name = name.strip_prefix("env:").unwrap_or(name);
        let valid = name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if escaped || !valid {
            out.push_str("${");
            out.push_str(body);
            out.push('}');
        } else {
            match env.raw(name).filter(|v| !v.is_empty()) {
                Some(value) => out.push_str(value),
                None => out.push_str(default),
            }
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    out
}

/// The walk over a file's tree.
struct Walk<'a> {
    file: &'a str,
    /// Schema paths of the unsupported keys already noted.
    seen: Vec<String>,
    unsupported: Vec<String>,
}

fn join(prefix: &str, separator: &str, key: &str) -> String {
    if prefix.is_empty() {
        key.to_string()
    } else {
        format!("{prefix}{separator}{key}")
    }
}

impl Walk<'_> {
    /// Checks the keys of one map: `schema` is its path as the table writes
    /// it (`[]` for list entries, `*` for free names), `path` the same with
    /// indices and names, both empty at the top.
    fn map(
        &mut self,
        map: &Map<String, JsonValue>,
        schema: &str,
        path: &str,
    ) -> Result<(), ConfigError> {
        let siblings = keys::children_of(schema).unwrap_or_default();
        for (name, value) in map {
            let Some(key) = siblings.iter().find(|k| k.name == name) else {
                return Err(ConfigError::UnknownKey {
                    file: self.file.to_string(),
                    key: join(path, ".", name),
                    hint: hint(siblings, path, name),
                });
            };
            if value.is_null() {
                continue;
            }
            self.value(key, value, &join(schema, ".", name), &join(path, ".", name))?;
        }
        Ok(())
    }

    fn value(
        &mut self,
        key: &Key,
        value: &JsonValue,
        schema: &str,
        path: &str,
    ) -> Result<(), ConfigError> {
        let wrong = |path: String, found: &JsonValue| ConfigError::WrongType {
            file: self.file.to_string(),
            key: path,
            found: describe(found),
            expected: expected(key.shape),
        };
        match (key.shape, value) {
            (Shape::Leaf(_, Status::Warned), _) => {
                // Not checked further: the agent ignores it.
                if !self.seen.iter().any(|s| s == schema) {
                    self.seen.push(schema.to_string());
                    self.unsupported.push(path.to_string());
                }
            }
            (Shape::Leaf(kind, _), value) => {
                if !accepts(kind, value) {
                    // Point at the offending list item when that is what is wrong.
                    return Err(
                        match value.as_array().and_then(|items| {
                            items.iter().enumerate().find(|(_, item)| !is_scalar(item))
                        }) {
                            Some((i, item)) if kind == Value::List => {
                                wrong(format!("{path}[{i}]"), item)
                            }
                            _ => wrong(path.to_string(), value),
                        },
                    );
                }
            }
            (Shape::Section(_), JsonValue::Object(inner)) => self.map(inner, schema, path)?,
            (Shape::Named(_), JsonValue::Object(names)) => {
                for (name, inner) in names {
                    let item_path = format!("{path}.{name}");
                    match inner {
                        JsonValue::Object(inner) => {
                            self.map(inner, &format!("{schema}.*"), &item_path)?
                        }
                        JsonValue::Null => {}
                        other => {
                            return Err(ConfigError::WrongType {
                                file: self.file.to_string(),
                                key: item_path,
                                found: describe(other),
                                expected: "a map of keys",
                            })
                        }
                    }
                }
            }
            (Shape::Entries(_), JsonValue::Array(items)) => {
                for (i, item) in items.iter().enumerate() {
                    let item_path = format!("{path}[{i}]");
                    let JsonValue::Object(inner) = item else {
                        return Err(ConfigError::WrongType {
                            file: self.file.to_string(),
                            key: item_path,
                            found: describe(item),
                            expected: "a map of keys",
                        });
                    };
                    self.map(inner, &format!("{schema}[]"), &item_path)?;
                }
            }
            (_, value) => return Err(wrong(path.to_string(), value)),
        }
        Ok(())
    }
}

/// The closest sibling of an unknown key; else a key elsewhere with the same
/// name (`wakeup_len` at the top means `ebpf.wakeup_len`); else all siblings.
fn hint(siblings: &[Key], path: &str, unknown: &str) -> KeyHint {
    let best = siblings
        .iter()
        .map(|s| {
            (
                strsim::normalized_damerau_levenshtein(unknown, s.name),
                s.name,
            )
        })
        .filter(|(score, _)| *score >= 0.6)
        .max_by(|a, b| a.0.total_cmp(&b.0));
    if let Some((_, sibling)) = best {
        return KeyHint::DidYouMean(join(path, ".", sibling));
    }
    if let Some((elsewhere, _)) = keys::all()
        .into_iter()
        .find(|(key, _)| key.rsplit('.').next() == Some(unknown))
    {
        return KeyHint::DidYouMean(elsewhere);
    }
    let (implemented, unsupported): (Vec<&Key>, Vec<&Key>) =
        siblings.iter().partition(|k| k.implemented());
    KeyHint::Known {
        implemented: implemented.iter().map(|k| k.name.to_string()).collect(),
        unsupported: unsupported.len(),
    }
}

/// A value as an error message shows it.
fn describe(value: &JsonValue) -> String {
    match value {
        JsonValue::Null => "nothing".to_string(),
        JsonValue::Bool(b) => format!("the boolean {b}"),
        JsonValue::Number(n) => format!("the number {n}"),
        JsonValue::String(s) => format!("the string {s:?}"),
        JsonValue::Array(_) => "a list".to_string(),
        JsonValue::Object(_) => "a map".to_string(),
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
