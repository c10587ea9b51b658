//! A `redis-server` (Debian's package; scripts/setup.sh installs it), started once per test
//! binary on a free port with its own data directory under `target/test-servers/`.

use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use super::background::{self, Background};
use crate::apps::free_port;
use crate::workspace_root;

const STARTUP_TIMEOUT: Duration = Duration::from_secs(30);

pub struct RedisServer {
    pub port: u16,
    pub process: Background,
}

/// The test binary's Redis server, started on first use.
pub fn redis_server() -> &'static RedisServer {
    static SERVER: OnceLock<RedisServer> = OnceLock::new();
    SERVER.get_or_init(start)
}

fn start() -> RedisServer {
    let port = free_port();
    let dir = workspace_root().join(format!("target/test-servers/redis-{port}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
    let mut command = Command::new("redis-server");
    command
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .arg("--dir")
        .arg(&dir)
        // No persistence: nothing to load at start, nothing written behind the tests' backs.
        .args(["--save", "", "--appendonly", "no", "--daemonize", "no"]);
    let process = background::start("redis-server", command).unwrap_or_else(|e| {
        panic!("cannot start redis-server ({e}): install it with scripts/setup.sh (Debian's redis-server)")
    });
    if !process.stdout.wait_for(STARTUP_TIMEOUT, |line| {
        line.contains("Ready to accept connections")
    }) {
        panic!(
            "redis-server on port {port} was not ready within {STARTUP_TIMEOUT:?}\nstdout:\n{}\nstderr:\n{}",
            process.stdout.text(),
            process.stderr.text()
        );
    }
    RedisServer { port, process }
}
