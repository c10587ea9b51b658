//! Which processes to instrument: the entries of `discovery` and the
//! top-level selection, and the pure decision of whether a process matches,
//! from facts discovery reads in /proc. Matching follows Beyla: within one
//! entry every criterion given must hold; a process is instrumented when an
//! `instrument` entry selects it and no exclusion does.

use std::collections::HashSet;
use std::path::Path;

use regex::Regex;

use super::PortSet;
use crate::kubernetes::{PodContainer, PodSelector};

/// One entry: a process must match every criterion given.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    /// Service name reported for the matched processes (default: the executable's name).
    pub name: Option<String>,
    pub namespace: Option<String>,
    pub open_ports: Option<PortSet>,
    /// Anchored for globs, as written for regexes.
    pub exe_path: Option<Regex>,
    /// Matched against the command line after the executable, arguments
    /// joined by spaces (`-jar app.jar --port 80`).
    pub cmd_args: Option<Regex>,
    /// Only processes in a network namespace other than the agent's (containers).
    pub containers_only: bool,
    /// The `k8s_*` criteria; None when the entry has none.
    pub kubernetes: Option<PodSelector>,
}

/// What discovery knows of a process when it decides.
#[derive(Debug, Clone, Copy)]
pub struct ProcessFacts<'a> {
    pub exe: &'a Path,
    /// The arguments after the executable; `None` when not read.
    pub cmd_args: Option<&'a str>,
    /// Listening TCP ports; `None` when not known yet (at exec).
    pub listening: Option<&'a HashSet<u16>>,
    /// Whether its network namespace differs from the agent's; `None` when
    /// that cannot be read, and then `containers_only` does not restrict, as in Beyla.
    pub in_container: Option<bool>,
    /// Its pod's container, when Kubernetes metadata is on and knows it.
    pub pod: Option<&'a PodContainer>,
}

impl Selection {
    /// Whether the entry has a criterion this agent can check
    /// (`containers_only` only narrows the others, as in Beyla).
    pub fn selects_something(&self) -> bool {
        self.open_ports.is_some()
            || self.exe_path.is_some()
            || self.cmd_args.is_some()
            || self.kubernetes.is_some()
    }

    /// Whether the entry selects the process. Ports not known yet never match.
    pub fn matches(&self, process: &ProcessFacts<'_>) -> bool {
        let exe_ok = || {
            self.exe_path
                .as_ref()
                .is_none_or(|re| re.is_match(&process.exe.to_string_lossy()))
        };
        let args_ok = || {
            self.cmd_args
                .as_ref()
                .is_none_or(|re| process.cmd_args.is_some_and(|args| re.is_match(args)))
        };
        let ports_ok = || match (&self.open_ports, process.listening) {
            (None, _) => true,
            (Some(ports), Some(listening)) => listening.iter().any(|&p| ports.contains(p)),
            (Some(_), None) => false,
        };
        let container_ok = || !self.containers_only || process.in_container != Some(false);
        // `k8s_*` criteria need the process to be in a known pod.
        let pod_ok = || match (&self.kubernetes, process.pod) {
            (None, _) => true,
            (Some(selector), Some(pod)) => selector.matches(pod),
            (Some(_), None) => false,
        };
        self.selects_something()
            && exe_ok()
            && args_ok()
            && ports_ok()
            && container_ok()
            && pod_ok()
    }
}

/// Which processes to instrument, from `discovery` and the top-level selection.
#[derive(Debug, Clone)]
pub struct DiscoveryConfig {
    /// Processes matching any entry are instrumented.
    pub instrument: Vec<Selection>,
    /// Processes matching any of these are not, whatever `instrument` says
    /// (the user's exclusions, then the default ones).
    pub exclude: Vec<Selection>,
}

impl DiscoveryConfig {
    /// The first `instrument` entry that selects a process no exclusion selects.
    pub fn select(&self, process: &ProcessFacts<'_>) -> Option<&Selection> {
        if self.exclude.iter().any(|s| s.matches(process)) {
            return None;
        }
        self.instrument.iter().find(|s| s.matches(process))
    }

    fn any(&self, criterion: impl Fn(&Selection) -> bool) -> bool {
        self.instrument.iter().chain(&self.exclude).any(criterion)
    }

    /// Whether deciding needs the listening ports (costly to read).
    pub fn needs_ports(&self) -> bool {
        self.any(|s| s.open_ports.is_some())
    }

    /// Whether deciding needs the command line.
    pub fn needs_cmd_args(&self) -> bool {
        self.any(|s| s.cmd_args.is_some())
    }

    /// Whether an entry selects by pod.
    pub fn selects_pods(&self) -> bool {
        self.any(|s| s.kubernetes.is_some())
    }

    /// Whether deciding needs the network namespace.
    pub fn needs_netns(&self) -> bool {
        self.any(|s| s.containers_only)
    }
}

/// The arguments of a `/proc/PID/cmdline` (NUL-separated, argv[0] first):
/// those after argv[0], joined by spaces, as Beyla matches `cmd_args`.
pub fn cmd_args(cmdline: &[u8]) -> String {
    let mut args = cmdline
        .split(|&b| b == 0)
        .skip(1)
        .map(String::from_utf8_lossy)
        .collect::<Vec<_>>();
    if args.last().is_some_and(|a| a.is_empty()) {
        args.pop();
    }
    args.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(exe: Option<&str>, ports: Option<&str>) -> Selection {
        Selection {
            open_ports: ports.map(|p| PortSet::parse(p).unwrap()),
            exe_path: exe.map(|e| Regex::new(e).unwrap()),
            ..Selection::default()
        }
    }

    fn process<'a>(exe: &'a str, listening: Option<&'a HashSet<u16>>) -> ProcessFacts<'a> {
        ProcessFacts {
            exe: Path::new(exe),
            cmd_args: None,
            listening,
            in_container: None,
            pod: None,
        }
    }

    #[test]
    fn first_matching_entry_wins_and_exclusions_apply() {
        let config = DiscoveryConfig {
            instrument: vec![
                Selection {
                    name: Some("api".into()),
                    ..entry(None, Some("8080"))
                },
                Selection {
                    name: Some("py".into()),
                    ..entry(Some("python"), None)
                },
            ],
            exclude: vec![entry(Some("/opt/legacy/"), None)],
        };
        let ports: HashSet<u16> = [8080].into();
        let none = HashSet::new();
        let name = |exe, listening| {
            config
                .select(&process(exe, listening))
                .and_then(|s| s.name.clone())
        };
        assert_eq!(
            name("/usr/bin/python3", Some(&ports)).as_deref(),
            Some("api")
        );
        assert_eq!(name("/usr/bin/python3", Some(&none)).as_deref(), Some("py"));
        assert!(config
            .select(&process("/usr/bin/node", Some(&none)))
            .is_none());
        assert!(config
            .select(&process("/opt/legacy/python", Some(&ports)))
            .is_none());
    }

    #[test]
    fn an_entry_needs_every_criterion_it_names() {
        let both = entry(Some("java$"), Some("8000-8090"));
        assert!(both.matches(&process("/usr/bin/java", Some(&[8001].into()))));
        assert!(!both.matches(&process("/usr/bin/java", Some(&[9000].into()))));
        assert!(!both.matches(&process("/usr/bin/node", Some(&[8001].into()))));
        assert!(
            !both.matches(&process("/usr/bin/java", None)),
            "ports are unknown at exec time"
        );
        assert!(
            !entry(None, None).matches(&process("/usr/bin/java", Some(&[8001].into()))),
            "no criterion selects nothing"
        );
    }

    #[test]
    fn command_line_arguments_and_containers() {
        let jar = Selection {
            cmd_args: Some(Regex::new("^-jar .*orders").unwrap()),
            ..Selection::default()
        };
        let args = cmd_args(b"/usr/bin/java\0-jar\0/srv/orders.jar\0--port\x008080\0");
        assert_eq!(args, "-jar /srv/orders.jar --port 8080");
        let java = ProcessFacts {
            cmd_args: Some(&args),
            ..process("/usr/bin/java", None)
        };
        assert!(jar.matches(&java));
        assert!(
            !jar.matches(&process("/usr/bin/java", None)),
            "unread arguments never match"
        );
        assert_eq!(cmd_args(b"/bin/sleep"), "");

        let contained = Selection {
            containers_only: true,
            ..entry(Some("java"), None)
        };
        let with = |in_container| ProcessFacts {
            in_container,
            ..process("/usr/bin/java", None)
        };
        assert!(contained.matches(&with(Some(true))));
        assert!(!contained.matches(&with(Some(false))));
        assert!(
            contained.matches(&with(None)),
            "unknown namespaces do not restrict, as in Beyla"
        );
        let alone = Selection {
            containers_only: true,
            ..Selection::default()
        };
        assert!(
            !alone.matches(&with(Some(true))),
            "containers_only alone selects nothing"
        );
    }
}
