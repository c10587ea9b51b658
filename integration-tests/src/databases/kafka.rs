//! A Kafka broker in KRaft mode (one node, broker and controller), started once per test binary
//! on free ports with its own data directory under `target/test-servers/`, from the jars
//! `integration-tests/servers/kafka/fetch.sh` keeps in `~/.cache/beyla`.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use super::background::{self, Background};
use crate::apps::free_port;
use crate::workspace_root;

/// A cold JVM formats and starts the broker in 5 to 15 s on this size of machine.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(120);
/// Any valid cluster id will do: every data directory is formatted anew.
const CLUSTER_ID: &str = "YmV5bGEta3YtdGVzdHMtMQ";
/// An ApiVersions v0 request, correlation id 1, client id "ready": answered only once the broker
/// processes requests.
const READY_PROBE: &[u8] = b"\x00\x00\x00\x0f\x00\x12\x00\x00\x00\x00\x00\x01\x00\x05ready";

pub struct KafkaBroker {
    pub port: u16,
    pub process: Background,
}

/// The test binary's broker, started on first use.
pub fn kafka_broker() -> &'static KafkaBroker {
    static BROKER: OnceLock<KafkaBroker> = OnceLock::new();
    BROKER.get_or_init(start)
}

/// The broker's jar directory: fetch.sh fetches it once and prints it.
fn broker_lib() -> PathBuf {
    let script = workspace_root().join("integration-tests/servers/kafka/fetch.sh");
    let out = Command::new("bash")
        .arg(&script)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
    assert!(
        out.status.success(),
        "{} failed (it fetches the Kafka broker with Maven):\n{}",
        script.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    PathBuf::from(stdout.lines().last().unwrap_or_default().trim())
}

fn java(lib: &Path) -> Command {
    let mut command = Command::new("java");
    command
        .args([
            "-Xms256m",
            "-Xmx512m",
            "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn",
        ])
        .arg("-cp")
        .arg(lib.join("*"));
    command
}

fn start() -> KafkaBroker {
    let lib = broker_lib();
    let (port, controller_port) = (free_port(), free_port());
    let dir = workspace_root().join(format!("target/test-servers/kafka-{port}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
    let properties = dir.join("server.properties");
    let settings = format!(
        "process.roles=broker,controller\n\
         node.id=1\n\
         controller.quorum.voters=1@127.0.0.1:{controller_port}\n\
         listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}\n\
         advertised.listeners=PLAINTEXT://127.0.0.1:{port}\n\
         controller.listener.names=CONTROLLER\n\
         inter.broker.listener.name=PLAINTEXT\n\
         listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT\n\
         log.dirs={}\n\
         num.partitions=1\n\
         offsets.topic.replication.factor=1\n\
         transaction.state.log.replication.factor=1\n\
         transaction.state.log.min.isr=1\n\
         share.coordinator.state.topic.replication.factor=1\n\
         share.coordinator.state.topic.min.isr=1\n\
         group.initial.rebalance.delay.ms=0\n",
        dir.join("data").display()
    );
    std::fs::write(&properties, settings)
        .unwrap_or_else(|e| panic!("write {}: {e}", properties.display()));

    let format = java(&lib)
        .args(["kafka.tools.StorageTool", "format", "-t", CLUSTER_ID, "-c"])
        .arg(&properties)
        .output()
        .unwrap_or_else(|e| panic!("cannot run java (is a JDK installed?): {e}"));
    assert!(
        format.status.success(),
        "formatting the Kafka data directory failed:\n{}\n{}",
        String::from_utf8_lossy(&format.stdout),
        String::from_utf8_lossy(&format.stderr)
    );

    let mut command = java(&lib);
    command.arg("kafka.Kafka").arg(&properties);
    let process = background::start("kafka", command)
        .unwrap_or_else(|e| panic!("cannot start the Kafka broker: {e}"));
    let deadline = Instant::now() + STARTUP_TIMEOUT;
    while !answers(port) {
        if Instant::now() >= deadline {
            panic!(
                "the Kafka broker on port {port} did not answer ApiVersions within {STARTUP_TIMEOUT:?}\n\
                 stdout:\n{}\nstderr:\n{}",
                process.stdout.text(),
                process.stderr.text()
            );
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    KafkaBroker { port, process }
}

/// Whether the broker answers a request (its listener accepts connections before it does).
fn answers(port: u16) -> bool {
    let probe = || -> std::io::Result<()> {
        let mut stream = TcpStream::connect(("127.0.0.1", port))?;
        stream.set_read_timeout(Some(Duration::from_secs(2)))?;
        stream.write_all(READY_PROBE)?;
        let mut size = [0u8; 4];
        stream.read_exact(&mut size)?;
        let mut body = vec![0u8; u32::from_be_bytes(size) as usize];
        stream.read_exact(&mut body)
    };
    probe().is_ok()
}
