//! HTTPS for the TLS tests: a fresh self-signed certificate, and a sample
//! server started with it (the apps serve the same API over TLS when given
//! `TLS_CERT` and `TLS_KEY`).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::apps::free_port;
use crate::process::{kill_and_reap, Lines};
use crate::random_hex;

/// A self-signed certificate for 127.0.0.1 in `dir`, made fresh for the run:
/// (certificate, key) paths, PEM, the key in PKCS#8.
pub fn certificate(dir: &Path) -> (String, String) {
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let status = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stderr(Stdio::null())
        .status()
        .expect("run openssl (apt-get install openssl)");
    assert!(status.success(), "openssl could not make a certificate");
    (cert.display().to_string(), key.display().to_string())
}

/// An HTTPS sample server with a fresh certificate; killed when dropped.
pub struct HttpsServer {
    child: Child,
    dir: PathBuf,
    pub port: u16,
    pub pid: u32,
    pub service: String,
}

impl HttpsServer {
    /// Starts `server` (a sample app's command) on a free port with a
    /// certificate, and waits for `listening on`.
    pub fn start(mut server: Command, what: &str) -> HttpsServer {
        let dir = std::env::temp_dir().join(format!("beyla-tls-{}", random_hex(4)));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let (cert, key) = certificate(&dir);
        let port = free_port();
        let mut child = server
            .env("PORT", port.to_string())
            .env("TLS_CERT", &cert)
            .env("TLS_KEY", &key)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("start the HTTPS server ({what}): {e}"));
        let (stdout, _) = Lines::capture(child.stdout.take().expect("piped stdout"));
        assert!(
            stdout.wait_for(Duration::from_secs(30), |l| l.contains("listening on")),
            "the HTTPS server ({what}) did not start"
        );
        let pid = child.id();
        let service = std::fs::read_link(format!("/proc/{pid}/exe"))
            .expect("server exe")
            .file_name()
            .expect("file name")
            .to_string_lossy()
            .into_owned();
        HttpsServer {
            child,
            dir,
            port,
            pid,
            service,
        }
    }

    /// `https://127.0.0.1:<port><path>`.
    pub fn url(&self, path: &str) -> String {
        format!("https://127.0.0.1:{}{path}", self.port)
    }
}

impl Drop for HttpsServer {
    fn drop(&mut self) {
        kill_and_reap(&mut self.child);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
