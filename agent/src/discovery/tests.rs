//! Selection rules: entries, exclusions, exec-time decisions.

use std::collections::HashSet;
use std::path::Path;

use regex::Regex;

use super::*;
use crate::config::PortSet;

fn entry(exe: Option<&str>, ports: Option<&str>) -> Selection {
    Selection {
        name: None,
        namespace: None,
        open_ports: ports.map(|p| PortSet::parse(p).unwrap()),
        exe_path: exe.map(|e| Regex::new(e).unwrap()),
        kubernetes: None,
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
    let python = Path::new("/usr/bin/python3");
    assert_eq!(
        select(&config, python, Some(&ports), None)
            .unwrap()
            .name
            .as_deref(),
        Some("api")
    );
    assert_eq!(
        select(&config, python, Some(&none), None)
            .unwrap()
            .name
            .as_deref(),
        Some("py")
    );
    assert!(select(&config, Path::new("/usr/bin/node"), Some(&none), None).is_none());
    assert!(select(&config, Path::new("/opt/legacy/python"), Some(&ports), None).is_none());
}

#[test]
fn an_entry_needs_every_criterion_it_names() {
    let both = entry(Some("java$"), Some("8000-8090"));
    let java = Path::new("/usr/bin/java");
    assert!(selects(&both, java, Some(&[8001].into()), None));
    assert!(!selects(&both, java, Some(&[9000].into()), None));
    assert!(!selects(
        &both,
        Path::new("/usr/bin/node"),
        Some(&[8001].into()),
        None
    ));
    assert!(
        !selects(&both, java, None, None),
        "ports are unknown at exec time"
    );
    assert!(
        !selects(&entry(None, None), java, Some(&[8001].into()), None),
        "no criterion selects nothing"
    );
}

#[test]
fn exec_time_decisions_only_for_executable_only_selections() {
    let exe_only = DiscoveryConfig {
        instrument: vec![entry(Some("curl$"), None)],
        exclude: vec![],
    };
    let mixed = DiscoveryConfig {
        instrument: vec![entry(Some("curl$"), None), entry(None, Some("80"))],
        exclude: vec![],
    };
    let ports_only = DiscoveryConfig {
        instrument: vec![entry(Some("nginx"), Some("80"))],
        exclude: vec![],
    };
    assert!(Discovery::decides_at_exec(&exe_only));
    assert!(Discovery::decides_at_exec(&mixed));
    assert!(!Discovery::decides_at_exec(&ports_only));
}
