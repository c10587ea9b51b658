//! PostgreSQL from Debian's `postgresql` package: `initdb` into a temporary
//! directory, then `postgres` on a free port, as the `postgres` user (the server
//! refuses to run as root), with TLS on (a self-signed certificate) so that
//! clients choose `sslmode=disable` or `sslmode=require` on the same server.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use super::{run, server_dir, start_server, User, DATABASE, SCHEMA};
use crate::apps::free_port;

/// Where Debian installs each PostgreSQL version's programs.
const DEBIAN_LIB: &str = "/usr/lib/postgresql";

pub struct Postgres {
    pub port: u16,
    /// The postmaster; each connection is served by a child process of it.
    pub pid: u32,
    bin: PathBuf,
    socket_dir: PathBuf,
}

impl Postgres {
    /// The server of this test binary, started on first use.
    pub fn get() -> &'static Postgres {
        static SERVER: OnceLock<Postgres> = OnceLock::new();
        SERVER.get_or_init(Postgres::start)
    }

    fn start() -> Postgres {
        let bin = bin_dir();
        let user = User::lookup("postgres", "postgresql");
        let dir = server_dir("postgres", &user);
        let data = dir.join("data");
        let mut initdb = Command::new(bin.join("initdb"));
        initdb
            .args([
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C.UTF-8",
                "--no-sync",
            ])
            .arg(format!("--username={DATABASE}"))
            .arg("-D")
            .arg(&data)
            .current_dir(&dir)
            .uid(user.uid)
            .gid(user.gid);
        run(initdb, "initdb");

        let (cert, key) = (data.join("server.crt"), data.join("server.key"));
        let mut openssl = Command::new("openssl");
        openssl
            .args([
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            ])
            .args(["-subj", "/CN=127.0.0.1", "-keyout"])
            .arg(&key)
            .arg("-out")
            .arg(&cert);
        run(openssl, "openssl (certificate for the PostgreSQL server)");
        for file in [&cert, &key] {
            user.chown(file);
        }
        std::fs::set_permissions(&key, std::os::unix::fs::PermissionsExt::from_mode(0o600))
            .expect("chmod the server key");

        let port = free_port();
        let mut command = Command::new(bin.join("postgres"));
        command
            .arg("-D")
            .arg(&data)
            .arg("-p")
            .arg(port.to_string())
            .arg("-k")
            .arg(&dir)
            .args(["-c", "listen_addresses=127.0.0.1", "-c", "fsync=off"])
            .args(["-c", "ssl=on", "-c", "max_connections=50"])
            .uid(user.uid)
            .gid(user.gid);
        // SIGINT is PostgreSQL's "fast" shutdown: sessions are ended, no waiting for them.
        let pid = start_server(command, &dir, &user, port, libc::SIGINT, "postgres");
        let server = Postgres {
            port,
            pid,
            bin,
            socket_dir: dir,
        };
        server.sql("postgres", &format!("CREATE DATABASE {DATABASE}"));
        server.sql(DATABASE, SCHEMA);
        server
    }

    /// Runs `sql` in `database` with `psql` over the server's Unix socket (not TCP,
    /// so that set-up traffic is never taken for a client's).
    pub fn sql(&self, database: &str, sql: &str) -> String {
        let mut psql = Command::new(self.bin.join("psql"));
        psql.args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1"])
            .arg("-h")
            .arg(&self.socket_dir)
            .arg("-p")
            .arg(self.port.to_string())
            .args(["-U", DATABASE, "-d", database, "-c", sql]);
        let output = run(psql, &format!("psql -c {sql:?}"));
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// Empties the table the scenarios write to, so that each test starts alike.
    pub fn reset(&self) {
        self.sql(DATABASE, "TRUNCATE events");
    }
}

/// The `bin` directory of the newest PostgreSQL under Debian's library directory.
fn bin_dir() -> PathBuf {
    let versions = std::fs::read_dir(DEBIAN_LIB).unwrap_or_else(|e| {
        panic!("{DEBIAN_LIB}: {e}: install postgresql (scripts/setup.sh does)")
    });
    let newest = versions
        .filter_map(|entry| {
            let entry = entry.ok()?;
            let version: u32 = entry.file_name().to_str()?.parse().ok()?;
            let bin = entry.path().join("bin");
            Path::new(&bin)
                .join("postgres")
                .is_file()
                .then_some((version, bin))
        })
        .max_by_key(|(version, _)| *version);
    newest
        .map(|(_, bin)| bin)
        .unwrap_or_else(|| panic!("no PostgreSQL server under {DEBIAN_LIB}: install postgresql"))
}
