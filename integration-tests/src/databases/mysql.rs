//! MariaDB from Debian's `mariadb-server` package: `mariadb-install-db` into a
//! temporary directory, then `mariadbd` on a free port as the `mysql` user, with
//! a `beyla` user (password `beyla`, `mysql_native_password`) and database.

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

use super::{run, server_dir, start_server, User, DATABASE, SCHEMA};
use crate::apps::free_port;

const INSTALL_DB: &str = "/usr/bin/mariadb-install-db";
const SERVER: &str = "/usr/sbin/mariadbd";
const CLIENT: &str = "/usr/bin/mariadb";

pub struct MySql {
    pub port: u16,
    /// `mariadbd`: one process, a thread per connection.
    pub pid: u32,
    socket: PathBuf,
}

impl MySql {
    /// The server of this test binary, started on first use.
    pub fn get() -> &'static MySql {
        static SERVER_ONCE: OnceLock<MySql> = OnceLock::new();
        SERVER_ONCE.get_or_init(MySql::start)
    }

    fn start() -> MySql {
        for program in [INSTALL_DB, SERVER, CLIENT] {
            assert!(
                std::path::Path::new(program).is_file(),
                "{program} is missing: install mariadb-server (scripts/setup.sh does)"
            );
        }
        let user = User::lookup("mysql", "mariadb-server");
        let dir = server_dir("mariadb", &user);
        let data = dir.join("data");
        let mut install = Command::new(INSTALL_DB);
        install
            .arg("--no-defaults")
            .arg(format!("--datadir={}", data.display()))
            .arg(format!("--user={}", user.name))
            .args(["--auth-root-authentication-method=normal", "--skip-test-db"])
            .current_dir(&dir);
        run(install, "mariadb-install-db");

        let init = dir.join("init.sql");
        std::fs::write(
            &init,
            format!(
                "CREATE DATABASE IF NOT EXISTS {DATABASE};\n\
                 CREATE USER IF NOT EXISTS '{DATABASE}'@'127.0.0.1' IDENTIFIED BY '{DATABASE}';\n\
                 GRANT ALL ON {DATABASE}.* TO '{DATABASE}'@'127.0.0.1';\n"
            ),
        )
        .expect("write the init file");
        user.chown(&init);

        let port = free_port();
        let socket = dir.join("mysqld.sock");
        let mut command = Command::new(SERVER);
        command
            .arg("--no-defaults")
            .arg(format!("--datadir={}", data.display()))
            .arg(format!("--port={port}"))
            .arg("--bind-address=127.0.0.1")
            .arg(format!("--socket={}", socket.display()))
            .arg(format!("--pid-file={}", dir.join("mysqld.pid").display()))
            .arg(format!("--user={}", user.name))
            .arg(format!("--init-file={}", init.display()))
            .args(["--innodb-flush-log-at-trx-commit=0", "--max-connections=50"]);
        let pid = start_server(command, &dir, &user, port, libc::SIGTERM, "mariadbd");
        let server = MySql { port, pid, socket };
        server.sql(SCHEMA);
        server
    }

    /// Runs `sql` in the test database as root, over the server's Unix socket (not
    /// TCP, so that set-up traffic is never taken for a client's).
    pub fn sql(&self, sql: &str) -> String {
        let mut client = Command::new(CLIENT);
        client
            .arg("--no-defaults")
            .arg(format!("--socket={}", self.socket.display()))
            .args([
                "-u",
                "root",
                "--batch",
                "--skip-column-names",
                DATABASE,
                "-e",
                sql,
            ]);
        let output = run(client, &format!("mariadb -e {sql:?}"));
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// Empties the table the scenarios write to, so that each test starts alike.
    pub fn reset(&self) {
        self.sql("TRUNCATE events");
    }
}
