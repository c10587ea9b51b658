//! Harness for the end-to-end tests of the `beyla` agent.
//!
//! The tests run the real agent binary, as root, against real sample servers
//! and clients on this machine's kernel, and compare the spans it prints
//! (`BEYLA_TRACE_PRINTER=json`) with the requests they actually made. They
//! share the kernel, so run them one at a time:
//!
//! ```sh
//! cargo build -p beyla
//! sudo cargo test -p integration-tests -- --test-threads=1
//! ```

pub mod agent;
pub mod apps;
pub mod config_files;
pub mod databases;
pub mod grpc_apps;
pub mod http;
pub mod https;
pub mod kubernetes;
pub mod netns;
pub mod privileges;
pub mod process;
pub mod receivers;
pub mod scenarios;
pub mod spans;
pub mod sql_clients;

use std::path::PathBuf;

/// Panics unless the test runs as root: these tests load eBPF programs, and a
/// test that cannot do its job must fail, never pass by skipping.
pub fn require_root() {
    // SAFETY: geteuid has no preconditions and cannot fail.
    let euid = unsafe { libc::geteuid() };
    assert_eq!(
        euid, 0,
        "the integration tests load eBPF probes and must run as root (euid is {euid}): \
         run `sudo cargo test -p integration-tests -- --test-threads=1`"
    );
}

/// The Cargo workspace root: `agent/`, `vm-tests/` and `target/` live there.
pub fn workspace_root() -> PathBuf {
    let manifest_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest_dir
        .parent()
        .expect("integration-tests lives inside the workspace")
        .to_path_buf()
}

/// `bytes` random bytes as lowercase hex, for trace and span ids nobody else uses.
pub fn random_hex(bytes: usize) -> String {
    use std::io::Read;
    let mut buf = vec![0u8; bytes];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut buf))
        .expect("read /dev/urandom");
    buf.iter().map(|b| format!("{b:02x}")).collect()
}
