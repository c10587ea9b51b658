//! The struct offsets of `offsets.toml`, chosen by the binary's Go version.

use serde::Deserialize;

use super::GoVersion;

const TABLE: &str = include_str!("offsets.toml");

/// Offsets (bytes) from a `*tls.Conn` to its socket's descriptor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StructOffsets {
    pub tls_conn_conn: u32,
    pub tcp_conn_fd: u32,
    pub netfd_pfd: u32,
    pub poll_fd_sysfd: u32,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Layout {
    since: String,
    tls_conn_conn: u32,
    tcp_conn_fd: u32,
    netfd_pfd: u32,
    poll_fd_sysfd: u32,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Table {
    layout: Vec<Layout>,
}

/// The table, oldest layout first.
fn layouts() -> Vec<(GoVersion, StructOffsets)> {
    let table: Table = toml::from_str(TABLE).expect("offsets.toml is checked by the tests");
    let mut layouts: Vec<_> = table
        .layout
        .into_iter()
        .map(|l| {
            let since = GoVersion::parse(&l.since).expect("offsets.toml: since is a Go version");
            let offsets = StructOffsets {
                tls_conn_conn: l.tls_conn_conn,
                tcp_conn_fd: l.tcp_conn_fd,
                netfd_pfd: l.netfd_pfd,
                poll_fd_sysfd: l.poll_fd_sysfd,
            };
            (since, offsets)
        })
        .collect();
    layouts.sort_by_key(|(since, _)| *since);
    layouts
}

impl StructOffsets {
    /// The layout of the newest entry not newer than `version`; a release
    /// newer than every entry takes the last one.
    pub fn for_version(version: GoVersion) -> Self {
        let layouts = layouts();
        layouts
            .iter()
            .rev()
            .find(|(since, _)| *since <= version)
            .or(layouts.first())
            .map(|(_, offsets)| *offsets)
            .expect("offsets.toml has a layout")
    }
}
