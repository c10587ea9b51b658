//! Real database servers for the tests: Debian's PostgreSQL and MariaDB, each
//! started once per test binary, on a free port, with a data directory of its
//! own under a temporary directory, and stopped when the test binary exits.
//! A server that cannot start fails the test that asked for it, with its log.

pub mod background;
pub mod kafka;
pub mod kv_clients;
pub mod mysql;
pub mod postgres;
pub mod redis;

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::process::send_signal;

/// A cold start (initdb or mariadb-install-db, then the server's recovery) on
/// a busy machine; both take a few seconds here.
const START_TIMEOUT: Duration = Duration::from_secs(120);
/// How long a server may take to shut down at exit before it is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(15);

/// The schema every client scenario runs against (see `clients/sql/README.md`),
/// in SQL both servers accept.
pub const SCHEMA: &str = "\
CREATE TABLE users (id integer PRIMARY KEY, name varchar(64) NOT NULL);
INSERT INTO users VALUES (1, 'ada'), (2, 'grace'), (3, 'linus');
CREATE TABLE events (id integer, note varchar(64));
";

/// The name of the database the clients use, and of the user they log in as.
pub const DATABASE: &str = "beyla";

/// A server this test binary started: stopped at exit by [`stop_all`].
struct Running {
    pid: u32,
    /// The signal that makes this server shut down at once, cleanly.
    stop_signal: libc::c_int,
    dir: PathBuf,
}

static RUNNING: Mutex<Vec<Running>> = Mutex::new(Vec::new());

/// Remembers a started server, and on the first call arranges for [`stop_all`] to run
/// when the test binary exits.
fn register(child: &Child, stop_signal: libc::c_int, dir: &Path) {
    let mut running = RUNNING.lock().unwrap_or_else(|e| e.into_inner());
    if running.is_empty() {
        // SAFETY: `stop_all` is a plain `extern "C" fn` that does not unwind (it
        // catches nothing and only logs on failure); atexit has no other precondition.
        let rc = unsafe { libc::atexit(stop_all) };
        assert_eq!(rc, 0, "atexit failed");
    }
    running.push(Running {
        pid: child.id(),
        stop_signal,
        dir: dir.to_path_buf(),
    });
}

/// Stops every server this binary started and removes its directory.
extern "C" fn stop_all() {
    let running = std::mem::take(&mut *RUNNING.lock().unwrap_or_else(|e| e.into_inner()));
    for server in running {
        let pid = server.pid as libc::pid_t;
        // SAFETY: kill and waitpid have no memory-safety preconditions; the pid is
        // our own child, not reaped before (only this function waits for it).
        unsafe {
            libc::kill(pid, server.stop_signal);
            let deadline = Instant::now() + STOP_TIMEOUT;
            while libc::waitpid(pid, std::ptr::null_mut(), libc::WNOHANG) == 0 {
                if Instant::now() >= deadline {
                    libc::kill(pid, libc::SIGKILL);
                    libc::waitpid(pid, std::ptr::null_mut(), 0);
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        let _ = std::fs::remove_dir_all(&server.dir);
    }
}

/// A new directory for one server's files, owned by `owner` (a system user the
/// server runs as), that the server can reach: its parent is the world-readable
/// temporary directory.
fn server_dir(kind: &str, owner: &User) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "beyla-{kind}-{}-{}",
        std::process::id(),
        crate::random_hex(4)
    ));
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
    owner.chown(&dir);
    dir
}

/// A system user of a database package (`postgres`, `mysql`).
pub(crate) struct User {
    pub name: &'static str,
    pub uid: u32,
    pub gid: u32,
}

impl User {
    /// Looks the user up; the package that creates it must be installed.
    fn lookup(name: &'static str, package: &str) -> User {
        let c_name = std::ffi::CString::new(name).expect("no NUL in a user name");
        // SAFETY: getpwnam reads a NUL-terminated string and returns a pointer into
        // static storage (or NULL), which is read at once, before any other call
        // that could overwrite it; the tests that start servers run one at a time.
        let entry = unsafe { libc::getpwnam(c_name.as_ptr()) };
        assert!(
            !entry.is_null(),
            "no system user {name:?}: install {package} (scripts/setup.sh does)"
        );
        // SAFETY: non-NULL, so it points to a valid passwd record (see above).
        let (uid, gid) = unsafe { ((*entry).pw_uid, (*entry).pw_gid) };
        User { name, uid, gid }
    }

    fn chown(&self, path: &Path) {
        std::os::unix::fs::chown(path, Some(self.uid), Some(self.gid))
            .unwrap_or_else(|e| panic!("chown {} to {}: {e}", path.display(), self.name));
    }
}

/// Runs a set-up command to completion; panics with its output if it fails.
fn run(mut command: Command, what: &str) -> Output {
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("cannot run {what} ({command:?}): {e}"));
    assert!(
        output.status.success(),
        "{what} failed ({}):\n{}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// Starts a database server with `command` in its directory `dir`, its output
/// into `dir/server.log` (owned by `owner`, the user it runs as), to be stopped
/// with `stop_signal` when the test binary exits; waits until it listens on
/// `port`. Returns its pid.
fn start_server(
    mut command: Command,
    dir: &Path,
    owner: &User,
    port: u16,
    stop_signal: libc::c_int,
    what: &str,
) -> u32 {
    let log = dir.join("server.log");
    let log_file = std::fs::File::create(&log).expect("create the server log");
    owner.chown(&log);
    command
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(log_file.try_clone().expect("clone the log file"))
        .stderr(log_file);
    let mut child = command
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {command:?}: {e}"));
    register(&child, stop_signal, dir);
    wait_until_listening(&mut child, port, &log, what);
    child.id()
}

/// Waits until `port` accepts connections; panics with the server's log if the
/// server exits or the time runs out first.
fn wait_until_listening(child: &mut Child, port: u16, log: &Path, what: &str) {
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        let exited = child.try_wait().expect("waitpid on the server");
        if exited.is_some() || Instant::now() >= deadline {
            let log = std::fs::read_to_string(log).unwrap_or_default();
            if exited.is_none() {
                send_signal(child, libc::SIGKILL);
            }
            panic!("{what} did not start listening on port {port} ({exited:?}); its log:\n{log}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}
