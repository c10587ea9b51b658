//! Configuration errors. Each is one sentence that names where the mistake is
//! (file and key path, variable or flag), the value and what is allowed, so that
//! the agent can refuse to start with nothing more than `beyla: {error}`.

use std::fmt;

use thiserror::Error;

/// Where a setting came from, for error messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// The name as it was set (`OTEL_EBPF_X` or `BEYLA_X`).
    Env(String),
    Flag(&'static str),
    /// A key of a config file; list entries carry their index (`discovery.services[0].name`).
    File {
        file: String,
        key: String,
    },
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Env(name) => write!(f, "environment variable {name}"),
            Origin::Flag(name) => write!(f, "flag --{name}"),
            Origin::File { file, key } => write!(f, "key {key} in {file}"),
        }
    }
}

impl Origin {
    /// The setting alone, without the file: `key a.b`, `variable X`, `flag --x`.
    pub fn setting(&self) -> String {
        match self {
            Origin::File { key, .. } => format!("key {key}"),
            other => other.to_string(),
        }
    }
}

/// What to tell about an unknown key: the closest known one, or all of them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyHint {
    DidYouMean(String),
    /// The keys implemented here, and how many more of Beyla's are not yet.
    Known {
        implemented: Vec<String>,
        unsupported: usize,
    },
}

impl fmt::Display for KeyHint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyHint::DidYouMean(key) => write!(f, "did you mean {key}?"),
            KeyHint::Known {
                implemented,
                unsupported,
            } => {
                write!(f, "known keys here: {}", implemented.join(", "))?;
                match unsupported {
                    0 => Ok(()),
                    n => write!(f, " (and {n} more of Beyla's, not supported yet)"),
                }
            }
        }
    }
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("invalid value {value:?} for {origin}: expected {expected}")]
    Invalid {
        origin: Origin,
        value: String,
        expected: String,
    },
    #[error("unknown key {key} in {file}; {hint}")]
    UnknownKey {
        file: String,
        key: String,
        hint: KeyHint,
    },
    #[error("wrong type for key {key} in {file}: found {found}, expected {expected}")]
    WrongType {
        file: String,
        key: String,
        found: String,
        expected: &'static str,
    },
    #[error("{key} in {file} selects no process: expected {expected}")]
    EmptyEntry {
        file: String,
        key: String,
        expected: &'static str,
    },
    #[error("{key} in {file} is incomplete or contradictory: expected {expected}")]
    Incomplete {
        file: String,
        key: String,
        expected: &'static str,
    },
    #[error("cannot read config file {file}: {reason}")]
    Read { file: String, reason: String },
    #[error("cannot parse config file {file} as {format}: {reason}")]
    Syntax {
        file: String,
        format: &'static str,
        reason: String,
    },
    #[error(
        "config file {file} has an unknown format: expected a name ending in .yml, .yaml or .toml"
    )]
    Format { file: String },
    #[error("nothing to instrument: set discovery.services or discovery.instrument in the config file, BEYLA_OPEN_PORT (ports such as 8080 or 8000-8090) or BEYLA_EXECUTABLE_NAME (a regular expression on the executable path)")]
    NoSelection,
}

/// A setting the agent starts without acting on; each is logged at start-up
/// and printed by `--check-config`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Warning {
    /// A Beyla key not implemented yet (the path where it was first met).
    UnsupportedKey(String),
    /// A Beyla variable not implemented yet, as it was set.
    UnsupportedVar(String),
    /// A value of Beyla's that a setting takes and this agent does not
    /// implement yet (a metric feature): the setting as an origin says it.
    UnsupportedValue { setting: String, value: String },
    /// A `BEYLA_*` or `OTEL_EBPF_*` variable that is none of Beyla's.
    UnknownVar { name: String, hint: Option<String> },
    /// `k8s_*` selectors while Kubernetes metadata is off: those entries
    /// select nothing.
    KubernetesOff,
}

impl Warning {
    /// One of Beyla's settings ignored: what the self-metric counts.
    pub fn is_unsupported(&self) -> bool {
        matches!(
            self,
            Warning::UnsupportedKey(_) | Warning::UnsupportedVar(_)
        )
    }
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Warning::UnsupportedKey(key) => write!(f, "key {key}: not supported yet, ignored"),
            Warning::UnsupportedVar(name) => {
                write!(f, "variable {name}: not supported yet, ignored")
            }
            Warning::UnsupportedValue { setting, value } => {
                write!(f, "{setting}: {value} not supported yet, ignored")
            }
            Warning::UnknownVar { name, hint } => {
                write!(f, "variable {name} is not one of Beyla's, ignored")?;
                match hint {
                    Some(hint) => write!(f, "; did you mean {hint}?"),
                    None => Ok(()),
                }
            }
            Warning::KubernetesOff => f.write_str(
                "discovery selects pods with k8s_* keys, but Kubernetes metadata is off: those entries select nothing; set attributes.kubernetes.enable (or BEYLA_KUBE_METADATA_ENABLE) to true or autodetect",
            ),
        }
    }
}
