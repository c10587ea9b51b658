//! Exec-time decisions (the matching itself is tested in config::selection).

use regex::Regex;

use super::*;
use crate::config::PortSet;

fn entry(exe: Option<&str>, ports: Option<&str>) -> Selection {
    Selection {
        open_ports: ports.map(|p| PortSet::parse(p).unwrap()),
        exe_path: exe.map(|e| Regex::new(e).unwrap()),
        ..Selection::default()
    }
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
