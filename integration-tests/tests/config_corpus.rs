//! The corpus of configuration files written as Beyla's docs write them
//! (`integration-tests/configs/`): each is accepted by `--check-config` with
//! exactly the warnings and the effective configuration of its `.check` file,
//! and each starts the agent, which logs the same warnings.
//!
//! A file's `# env: NAME=value` lines give the variables it is run with.
//! `BLESS=1 cargo test -p integration-tests --test config_corpus checks`
//! rewrites the `.check` files from what the agent prints.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use integration_tests::agent::agent_command;
use integration_tests::apps::free_port;
use integration_tests::config_files::{path_str, run_agent};
use integration_tests::process::{kill_and_reap, send_signal, wait_with_timeout, Lines};
use integration_tests::{require_root, workspace_root};

const READY_TIMEOUT: Duration = Duration::from_secs(30);
const EXIT_TIMEOUT: Duration = Duration::from_secs(30);
/// The floor for the corpus.
const MIN_FILES: usize = 40;

/// Every config file of the corpus, in name order.
fn corpus() -> Vec<PathBuf> {
    let dir = workspace_root().join("integration-tests/configs");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .map(|entry| entry.expect("directory entry").path())
        .filter(|p| matches!(p.extension().and_then(|e| e.to_str()), Some("yml" | "toml")))
        .collect();
    files.sort();
    assert!(
        files.len() >= MIN_FILES,
        "{} config files in {}, expected at least {MIN_FILES}",
        files.len(),
        dir.display()
    );
    files
}

/// The `# env: NAME=value` lines of a file.
fn env_of(path: &Path) -> Vec<(String, String)> {
    let text = std::fs::read_to_string(path).expect("read config");
    text.lines()
        .filter_map(|line| line.strip_prefix("# env: "))
        .map(|pair| {
            let (name, value) = pair
                .split_once('=')
                .unwrap_or_else(|| panic!("{}: bad env line {pair:?}", path.display()));
            (name.to_string(), value.to_string())
        })
        .collect()
}

fn pairs(env: &[(String, String)]) -> Vec<(&str, &str)> {
    env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
}

fn check_file(path: &Path) -> PathBuf {
    let mut name = path.file_name().expect("file name").to_os_string();
    name.push(".check");
    path.with_file_name(name)
}

/// What `--check-config` printed: warnings (stderr), then the effective configuration.
fn checked(stderr: &str, stdout: &str) -> String {
    let mut out = stderr.trim_end().to_string();
    if !out.is_empty() {
        out.push('\n');
    }
    format!("{out}---\n{stdout}")
}

/// Warning lines of a `.check` file, as `--check-config` prints them.
fn expected_warnings(check: &str) -> Vec<&str> {
    check
        .split("---\n")
        .next()
        .unwrap_or("")
        .lines()
        .filter(|l| !l.is_empty())
        .collect()
}

#[test]
fn checks() {
    let bless = std::env::var_os("BLESS").is_some();
    let mut failures = Vec::new();
    for path in corpus() {
        let env = env_of(&path);
        // Beyla's own spelling of the flag.
        let run = run_agent(
            &["-config", path_str(&path), "--check-config"],
            &pairs(&env),
        );
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if !run.status.success() {
            failures.push(format!(
                "{name}: --check-config refused it ({}):\n{}",
                run.status, run.stderr
            ));
            continue;
        }
        let got = checked(&run.stderr, &run.stdout);
        let check = check_file(&path);
        if bless {
            std::fs::write(&check, &got).expect("write .check");
            continue;
        }
        let want = std::fs::read_to_string(&check).unwrap_or_default();
        if got != want {
            failures.push(format!(
                "{name}: --check-config printed\n{got}\nbut {} says\n{want}",
                check.display()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// Each file starts the agent (probes attached, first scan done), which logs
/// each warning its `.check` file lists, and stops cleanly.
#[test]
fn each_starts_with_its_warnings() {
    require_root();
    let mut failures = Vec::new();
    for path in corpus() {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let check = std::fs::read_to_string(check_file(&path)).unwrap_or_default();
        let mut env = env_of(&path);
        // A free port over whatever the file says, so runs never collide.
        env.push(("BEYLA_PROMETHEUS_PORT".into(), free_port().to_string()));
        let mut command = agent_command(&pairs(&env));
        command
            .args(["-config", path_str(&path)])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = command
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {command:?}: {e}"));
        let (stderr, reader) = Lines::capture(child.stderr.take().expect("piped stderr"));
        let ready = stderr.wait_for(READY_TIMEOUT, |line| line.contains("agent ready"));
        send_signal(&child, libc::SIGTERM);
        let status = wait_with_timeout(&mut child, EXIT_TIMEOUT);
        kill_and_reap(&mut child);
        reader.join().expect("stderr reader");
        let log = stderr.text();
        let missing: Vec<&str> = expected_warnings(&check)
            .into_iter()
            .map(|line| line.trim_start_matches("beyla: warning: "))
            .filter(|warning| !log.lines().any(|l| l.contains(warning)))
            .collect();
        if !ready || !status.is_some_and(|s| s.success()) || !missing.is_empty() {
            failures.push(format!(
                "{name}: ready={ready} exit={status:?} warnings not logged: {missing:?}\nagent stderr:\n{log}"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
