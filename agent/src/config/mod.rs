//! Configuration: defaults < environment (`BEYLA_*`, `OTEL_*`) < command-line flags.
//! Every bad value is refused at start-up with where it came from and what was expected.

mod ports;

use std::fmt;

use clap::Parser;
use log::LevelFilter;
use regex::Regex;
use thiserror::Error;

pub use ports::PortSet;

use crate::ebpf::{DEFAULT_CAPTURE, MAX_CAPTURE};

/// How finished spans are printed on standard output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrinterFormat {
    Disabled,
    /// One readable line per span.
    Text,
    /// One JSON object per span per line.
    Json,
}

/// Which processes to instrument. A process must match every criterion given.
#[derive(Debug, Clone)]
pub struct Selection {
    pub open_ports: Option<PortSet>,
    pub exe_path: Option<Regex>,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub selection: Selection,
    /// Payload bytes the probes copy per socket syscall.
    pub capture_size: u32,
    pub trace_printer: PrinterFormat,
    pub log_level: LevelFilter,
}

/// Where a setting came from, for error messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    Env(&'static str),
    Flag(&'static str),
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Env(name) => write!(f, "environment variable {name}"),
            Origin::Flag(name) => write!(f, "flag --{name}"),
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
    #[error("nothing to instrument: set BEYLA_OPEN_PORT (ports such as 8080 or 8000-8090) or BEYLA_EXECUTABLE_NAME (a regular expression on the executable path)")]
    NoSelection,
}

/// Command-line flags; each overrides the environment variable of the same meaning.
#[derive(Debug, Parser, Default)]
#[command(
    name = "beyla",
    version,
    about = "eBPF auto-instrumentation: HTTP traffic to OpenTelemetry spans"
)]
pub struct Flags {
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
    /// DEBUG, INFO, WARN or ERROR. [env: BEYLA_LOG_LEVEL]
    #[arg(long)]
    pub log_level: Option<String>,
}

/// One setting: the flag if given, else the environment variable.
fn pick(
    flag: &Option<String>,
    flag_name: &'static str,
    env: &dyn Fn(&str) -> Option<String>,
    env_name: &'static str,
) -> Option<(String, Origin)> {
    match flag {
        Some(v) => Some((v.clone(), Origin::Flag(flag_name))),
        None => env(env_name).map(|v| (v, Origin::Env(env_name))),
    }
}

fn invalid(value: &str, origin: Origin, expected: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        origin,
        value: value.to_string(),
        expected: expected.into(),
    }
}

impl Config {
    /// Builds the configuration from flags and an environment lookup.
    pub fn from_sources(
        flags: &Flags,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let open_ports = match pick(&flags.open_port, "open-port", env, "BEYLA_OPEN_PORT") {
            Some((v, origin)) => Some(PortSet::parse(&v).map_err(|e| invalid(&v, origin, e))?),
            None => None,
        };
        let exe_path = match pick(
            &flags.executable_name,
            "executable-name",
            env,
            "BEYLA_EXECUTABLE_NAME",
        ) {
            Some((v, origin)) => Some(Regex::new(&v).map_err(|e| {
                invalid(
                    &v,
                    origin,
                    format!(
                        "a regular expression ({})",
                        e.to_string().lines().last().unwrap_or("")
                    ),
                )
            })?),
            None => None,
        };
        if open_ports.is_none() && exe_path.is_none() {
            return Err(ConfigError::NoSelection);
        }
        let trace_printer = match pick(
            &flags.trace_printer,
            "trace-printer",
            env,
            "BEYLA_TRACE_PRINTER",
        ) {
            Some((v, origin)) => match v.to_ascii_lowercase().as_str() {
                "disabled" => PrinterFormat::Disabled,
                "text" => PrinterFormat::Text,
                "json" => PrinterFormat::Json,
                _ => return Err(invalid(&v, origin, "one of disabled, text, json")),
            },
            // No exporter is configured yet, so the agent shows spans at once.
            None => PrinterFormat::Text,
        };
        let capture_size = match pick(
            &flags.capture_size,
            "capture-size",
            env,
            "BEYLA_BPF_CAPTURE_SIZE",
        ) {
            Some((v, origin)) => match v.trim().parse::<u32>() {
                Ok(n) if (64..MAX_CAPTURE).contains(&n) => n,
                _ => {
                    return Err(invalid(
                        &v,
                        origin,
                        format!("a byte count from 64 to {}", MAX_CAPTURE - 1),
                    ))
                }
            },
            None => DEFAULT_CAPTURE,
        };
        let log_level = match pick(&flags.log_level, "log-level", env, "BEYLA_LOG_LEVEL") {
            Some((v, origin)) => match v.to_ascii_uppercase().as_str() {
                "DEBUG" => LevelFilter::Debug,
                "INFO" => LevelFilter::Info,
                "WARN" | "WARNING" => LevelFilter::Warn,
                "ERROR" => LevelFilter::Error,
                _ => return Err(invalid(&v, origin, "one of DEBUG, INFO, WARN, ERROR")),
            },
            None => LevelFilter::Info,
        };
        Ok(Config {
            selection: Selection {
                open_ports,
                exe_path,
            },
            capture_size,
            trace_printer,
            log_level,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(vars: &[(&str, &str)], flags: Flags) -> Result<Config, ConfigError> {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_sources(&flags, &|name| {
            vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
        })
    }

    #[test]
    fn defaults_and_env() {
        let c = load(&[("BEYLA_OPEN_PORT", "8080")], Flags::default()).unwrap();
        assert!(c.selection.open_ports.unwrap().contains(8080));
        assert_eq!(c.trace_printer, PrinterFormat::Text);
        assert_eq!(c.capture_size, DEFAULT_CAPTURE);
        assert_eq!(c.log_level, LevelFilter::Info);
    }

    #[test]
    fn flags_override_env() {
        let flags = Flags {
            open_port: Some("9000".into()),
            ..Flags::default()
        };
        let c = load(&[("BEYLA_OPEN_PORT", "8080")], flags).unwrap();
        let ports = c.selection.open_ports.unwrap();
        assert!(ports.contains(9000) && !ports.contains(8080));
    }

    #[test]
    fn bad_values_name_origin_value_and_expectation() {
        let err = load(&[("BEYLA_OPEN_PORT", "80-")], Flags::default()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid value \"80-\" for environment variable BEYLA_OPEN_PORT: expected a port from 1 to 65535, a comma-separated list such as 80,443, or a range such as 8000-8090"
        );
        let err = load(
            &[("BEYLA_OPEN_PORT", "1"), ("BEYLA_TRACE_PRINTER", "xml")],
            Flags::default(),
        )
        .unwrap_err();
        assert_eq!(err.to_string(), "invalid value \"xml\" for environment variable BEYLA_TRACE_PRINTER: expected one of disabled, text, json");
        let err = load(&[("BEYLA_EXECUTABLE_NAME", "(")], Flags::default()).unwrap_err();
        assert!(err.to_string().starts_with("invalid value \"(\" for environment variable BEYLA_EXECUTABLE_NAME: expected a regular expression"));
        assert_eq!(
            load(&[], Flags::default()).unwrap_err(),
            ConfigError::NoSelection
        );
    }
}
