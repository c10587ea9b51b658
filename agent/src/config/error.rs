//! Configuration errors. Each is one sentence that names where the mistake is
//! (file and key path, variable or flag), the value and what is allowed, so that
//! the agent can refuse to start with nothing more than `beyla: {error}`.

use std::fmt;

use thiserror::Error;

/// Where a setting came from, for error messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    Env(&'static str),
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

/// What to tell about an unknown key: the closest known one, or all of them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyHint {
    DidYouMean(String),
    Known(Vec<String>),
}

impl fmt::Display for KeyHint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyHint::DidYouMean(key) => write!(f, "did you mean {key}?"),
            KeyHint::Known(keys) => write!(f, "known keys here: {}", keys.join(", ")),
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
    #[error("discovery selects pods with k8s_* keys, but Kubernetes metadata is off: set attributes.kubernetes.enable (or BEYLA_KUBE_METADATA_ENABLE) to true or autodetect")]
    KubernetesOff,
}
