//! A real Kubernetes control plane for the Kubernetes tests: etcd (Debian's
//! `etcd-server`) and kube-apiserver v1.32.0 (built from its Go module by
//! `fixtures/kube-apiserver/build.sh`), on free ports, with a generated CA,
//! serving certificate and service-account key. No scheduler or kubelet: the
//! tests write pods and their `status.containerStatuses` themselves, and run
//! the containers' processes in cgroups named as containerd and CRI-O name
//! them, so the agent maps them exactly as on a node.

use std::fs;
use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::{Namespace, Pod, ServiceAccount};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::Client;
use serde_json::json;

use crate::apps::{free_port, run_build_script};
use crate::process::{kill_and_reap, Lines};
use crate::receivers::{poll_until, TempDir};
use crate::{random_hex, workspace_root};

/// How long etcd or the API server may take to answer after starting.
const START_TIMEOUT: Duration = Duration::from_secs(120);

/// The API server binary, built once per machine (cached under ~/.cache/beyla).
pub fn apiserver_binary() -> PathBuf {
    static BUILT: OnceLock<Result<(), String>> = OnceLock::new();
    let outcome = BUILT
        .get_or_init(|| run_build_script("integration-tests/fixtures/kube-apiserver/build.sh"));
    if let Err(message) = outcome {
        panic!("cannot build kube-apiserver: {message}");
    }
    let home = std::env::var("HOME").unwrap_or_else(|_| "/root".into());
    let cache = std::env::var("BEYLA_CACHE").unwrap_or_else(|_| format!("{home}/.cache/beyla"));
    PathBuf::from(cache).join("kube-apiserver-v1.32.0/kube-apiserver")
}

fn run(command: &mut Command) {
    let out = command
        .output()
        .unwrap_or_else(|e| panic!("cannot run {command:?}: {e}"));
    assert!(
        out.status.success(),
        "{command:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A started child with its output collected, killed when dropped.
struct Daemon {
    child: Child,
    stderr: Lines,
}

impl Daemon {
    fn start(mut command: Command) -> Daemon {
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {command:?}: {e}"));
        let (stderr, _) = Lines::capture(child.stderr.take().expect("piped stderr"));
        Daemon { child, stderr }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        kill_and_reap(&mut self.child);
    }
}

/// etcd and the API server, an admin client, and a kubeconfig for the agent
/// that authenticates as the `beyla` service account with the RBAC of
/// `deploy/kubernetes/rbac.yaml`.
pub struct Cluster {
    pub dir: TempDir,
    etcd: Daemon,
    etcd_port: u16,
    apiserver: Option<Daemon>,
    apiserver_args: Vec<String>,
    pub runtime: tokio::runtime::Runtime,
    pub admin: Client,
    /// The agent's kubeconfig (service-account token, the test CA).
    pub agent_kubeconfig: PathBuf,
}

impl Cluster {
    pub fn start() -> Cluster {
        let binary = apiserver_binary();
        let dir = TempDir::new("beyla-k8s");
        let d = |name: &str| dir.path.join(name);
        // The CA, the API server's certificate for 127.0.0.1, the service-account key.
        run(Command::new("openssl")
            .args([
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-days",
                "2",
                "-subj",
                "/CN=beyla-test-ca",
                "-keyout",
            ])
            .arg(d("ca.key"))
            .arg("-out")
            .arg(d("ca.crt")));
        run(Command::new("openssl")
            .args([
                "req",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-subj",
                "/CN=kube-apiserver",
                "-keyout",
            ])
            .arg(d("server.key"))
            .arg("-out")
            .arg(d("server.csr")));
        fs::write(
            d("server.ext"),
            "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n",
        )
        .unwrap();
        run(Command::new("openssl")
            .args(["x509", "-req", "-days", "2", "-in"])
            .arg(d("server.csr"))
            .arg("-CA")
            .arg(d("ca.crt"))
            .arg("-CAkey")
            .arg(d("ca.key"))
            .arg("-CAcreateserial")
            .arg("-extfile")
            .arg(d("server.ext"))
            .arg("-out")
            .arg(d("server.crt")));
        run(Command::new("openssl")
            .args(["genrsa", "-out"])
            .arg(d("sa.key"))
            .arg("2048"));
        run(Command::new("openssl")
            .args(["rsa", "-pubout", "-in"])
            .arg(d("sa.key"))
            .arg("-out")
            .arg(d("sa.pub")));
        let admin_token = random_hex(16);
        fs::write(
            d("tokens.csv"),
            format!("{admin_token},admin,admin-uid,system:masters\n"),
        )
        .unwrap();

        let (etcd_port, etcd) = start_etcd(&dir.path);
        let apiserver_port = free_port();
        let apiserver_args: Vec<String> = vec![
            format!("--etcd-servers=http://127.0.0.1:{etcd_port}"),
            "--bind-address=127.0.0.1".into(),
            "--advertise-address=127.0.0.1".into(),
            format!("--secure-port={apiserver_port}"),
            format!("--tls-cert-file={}", d("server.crt").display()),
            format!("--tls-private-key-file={}", d("server.key").display()),
            format!("--token-auth-file={}", d("tokens.csv").display()),
            "--authorization-mode=RBAC".into(),
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local".into(),
            format!("--service-account-key-file={}", d("sa.pub").display()),
            format!(
                "--service-account-signing-key-file={}",
                d("sa.key").display()
            ),
            "--service-cluster-ip-range=10.96.0.0/24".into(),
            // No controller manager creates the `default` service accounts.
            "--disable-admission-plugins=ServiceAccount".into(),
            format!("--cert-dir={}", d("apiserver-certs").display()),
            "--enable-priority-and-fairness=false".into(),
        ];
        let mut command = Command::new(&binary);
        command.args(&apiserver_args);
        let apiserver = Daemon::start(command);

        let server = format!("https://127.0.0.1:{apiserver_port}");
        let admin_config = d("admin.kubeconfig");
        write_kubeconfig(&admin_config, &server, &d("ca.crt"), &admin_token);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("tokio runtime");
        let admin = runtime.block_on(client(&admin_config));
        let mut cluster = Cluster {
            agent_kubeconfig: d("agent.kubeconfig"),
            dir,
            etcd,
            etcd_port,
            apiserver: Some(apiserver),
            apiserver_args,
            runtime,
            admin,
        };
        cluster.wait_ready();
        cluster.install_agent_rbac(&server);
        cluster
    }

    fn stderr(&self) -> String {
        let api = self
            .apiserver
            .as_ref()
            .map(|a| a.stderr.text())
            .unwrap_or_default();
        let lines: Vec<&str> = api.lines().rev().take(40).collect();
        format!(
            "kube-apiserver stderr (last lines, newest first):\n{}\netcd stderr:\n{}",
            lines.join("\n"),
            self.etcd
                .stderr
                .text()
                .lines()
                .rev()
                .take(10)
                .collect::<Vec<_>>()
                .join("\n")
        )
    }

    /// Waits for `/readyz` to answer ok.
    pub fn wait_ready(&mut self) {
        let admin = self.admin.clone();
        poll_until(
            START_TIMEOUT,
            "kube-apiserver /readyz",
            || {
                let request = http::Request::get("/readyz").body(Vec::new()).unwrap();
                let answer = self.runtime.block_on(admin.request_text(request));
                answer.ok().filter(|text| text.trim() == "ok")
            },
            || self.stderr(),
        );
    }

    /// The objects of `deploy/kubernetes/namespace.yaml` and `rbac.yaml`, and
    /// a kubeconfig for the agent with a token of its service account.
    fn install_agent_rbac(&mut self, server: &str) {
        let deploy = workspace_root().join("deploy/kubernetes");
        let mut service_account = None;
        for file in ["namespace.yaml", "rbac.yaml"] {
            let text = fs::read_to_string(deploy.join(file)).unwrap();
            for doc in text.split("\n---\n") {
                let value: serde_json::Value =
                    serde_yaml_ng::from_str(doc).unwrap_or_else(|e| panic!("{file}: {e}"));
                let pp = PostParams::default();
                let c = self.admin.clone();
                let kind = value["kind"].as_str().unwrap_or_default().to_string();
                self.runtime.block_on(async {
                    match kind.as_str() {
                        "Namespace" => {
                            let o: Namespace = serde_json::from_value(value).unwrap();
                            Api::all(c).create(&pp, &o).await.map(|_| ())
                        }
                        "ServiceAccount" => {
                            let o: ServiceAccount = serde_json::from_value(value).unwrap();
                            let ns = o.metadata.namespace.clone().unwrap();
                            service_account = Some((ns.clone(), o.metadata.name.clone().unwrap()));
                            Api::namespaced(c, &ns).create(&pp, &o).await.map(|_| ())
                        }
                        "ClusterRole" => {
                            let o: ClusterRole = serde_json::from_value(value).unwrap();
                            Api::all(c).create(&pp, &o).await.map(|_| ())
                        }
                        "ClusterRoleBinding" => {
                            let o: ClusterRoleBinding = serde_json::from_value(value).unwrap();
                            Api::all(c).create(&pp, &o).await.map(|_| ())
                        }
                        other => panic!("{file}: unexpected kind {other}"),
                    }
                    .unwrap_or_else(|e| panic!("{file}: cannot create a {kind}: {e}"))
                });
            }
        }
        let (ns, name) = service_account.expect("rbac.yaml has a ServiceAccount");
        let request = TokenRequest {
            spec: TokenRequestSpec {
                audiences: vec![],
                expiration_seconds: Some(3600),
                ..Default::default()
            },
            ..Default::default()
        };
        let api: Api<ServiceAccount> = Api::namespaced(self.admin.clone(), &ns);
        let token = self
            .runtime
            .block_on(api.create_token_request(&name, &PostParams::default(), &request))
            .unwrap_or_else(|e| panic!("token for {ns}/{name}: {e}"))
            .status
            .expect("a token request's status")
            .token;
        write_kubeconfig(
            &self.agent_kubeconfig,
            server,
            &self.dir.path.join("ca.crt"),
            &token,
        );
    }

    /// Kills the API server (etcd stays up).
    pub fn stop_apiserver(&mut self) {
        self.apiserver = None;
    }

    /// Starts the API server again with the same settings, and waits until ready.
    pub fn restart_apiserver(&mut self) {
        let mut command = Command::new(apiserver_binary());
        command.args(&self.apiserver_args);
        self.apiserver = Some(Daemon::start(command));
        self.wait_ready();
    }

    /// Bumps etcd's revision and compacts its history up to it, so that a
    /// watch resumed from an older resource version gets `410 Gone`.
    pub fn compact_etcd(&self) {
        let endpoint = format!("--endpoints=http://127.0.0.1:{}", self.etcd_port);
        let out = Command::new("etcdctl")
            .env("ETCDCTL_API", "3")
            .args([
                endpoint.as_str(),
                "put",
                "/beyla-test/bump",
                "1",
                "-w",
                "json",
            ])
            .output()
            .expect("run etcdctl (package etcd-client)");
        assert!(
            out.status.success(),
            "etcdctl put: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let header: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let revision = header["header"]["revision"]
            .as_u64()
            .expect("etcd revision");
        run(Command::new("etcdctl").env("ETCDCTL_API", "3").args([
            endpoint.as_str(),
            "compact",
            &revision.to_string(),
        ]));
    }

    pub fn block_on<F: std::future::Future>(&self, f: F) -> F::Output {
        self.runtime.block_on(f)
    }

    pub fn create_namespace(&self, name: &str) {
        let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": name}})).unwrap();
        self.block_on(Api::all(self.admin.clone()).create(&PostParams::default(), &ns))
            .unwrap_or_else(|e| panic!("create namespace {name}: {e}"));
    }

    /// A Deployment and the ReplicaSet it owns (no controller creates it here).
    pub fn create_deployment(&self, ns: &str, name: &str, rs_name: &str) -> OwnerReference {
        let selector = json!({"matchLabels": {"app": name}});
        let template = json!({"metadata": {"labels": {"app": name}},
            "spec": {"containers": [{"name": "app", "image": "sample:1"}]}});
        let deployment: Deployment = serde_json::from_value(json!({
            "metadata": {"name": name, "namespace": ns},
            "spec": {"selector": selector, "template": template}
        }))
        .unwrap();
        let api: Api<Deployment> = Api::namespaced(self.admin.clone(), ns);
        let deployment = self
            .block_on(api.create(&PostParams::default(), &deployment))
            .unwrap_or_else(|e| panic!("create deployment {ns}/{name}: {e}"));
        let rs: ReplicaSet = serde_json::from_value(json!({
            "metadata": {"name": rs_name, "namespace": ns,
                "ownerReferences": [owner("apps/v1", "Deployment", name, &deployment.metadata.uid.unwrap())]},
            "spec": {"selector": selector, "template": template}
        }))
        .unwrap();
        let api: Api<ReplicaSet> = Api::namespaced(self.admin.clone(), ns);
        let rs = self
            .block_on(api.create(&PostParams::default(), &rs))
            .unwrap_or_else(|e| panic!("create replicaset {ns}/{rs_name}: {e}"));
        serde_json::from_value(owner(
            "apps/v1",
            "ReplicaSet",
            rs_name,
            &rs.metadata.uid.unwrap(),
        ))
        .unwrap()
    }

    /// Creates a pod on `node` and returns its uid; its containers get ids
    /// with [`Cluster::set_container`] once their processes run.
    pub fn create_pod(&self, spec: &PodSpec<'_>, node: &str) -> String {
        let mut metadata = json!({"name": spec.name, "namespace": spec.namespace,
            "labels": spec.labels.iter().cloned().collect::<serde_json::Map<_, _>>(),
            "annotations": spec.annotations.iter().cloned().collect::<serde_json::Map<_, _>>()});
        if let Some(owner) = &spec.owner {
            metadata["ownerReferences"] = json!([owner]);
        }
        let pod: Pod = serde_json::from_value(json!({
            "metadata": metadata,
            "spec": {"nodeName": node, "containers": [{"name": spec.container, "image": "sample:1"}]}
        }))
        .unwrap();
        let api: Api<Pod> = Api::namespaced(self.admin.clone(), spec.namespace);
        self.block_on(api.create(&PostParams::default(), &pod))
            .unwrap_or_else(|e| panic!("create pod {}/{}: {e}", spec.namespace, spec.name))
            .metadata
            .uid
            .unwrap()
    }

    /// Writes `status.containerStatuses` (the status subresource, as a kubelet does).
    pub fn set_container(&self, ns: &str, pod: &str, container: &str, id: &str, scheme: &str) {
        let api: Api<Pod> = Api::namespaced(self.admin.clone(), ns);
        let status = json!({"status": {"phase": "Running", "containerStatuses": [{
            "name": container, "containerID": format!("{scheme}://{id}"), "image": "sample:1",
            "imageID": "sample@sha256:0", "ready": true, "restartCount": 0, "started": true,
            "state": {"running": {}}}]}});
        self.block_on(api.patch_status(pod, &PatchParams::default(), &Patch::Merge(&status)))
            .unwrap_or_else(|e| panic!("patch status of pod {ns}/{pod}: {e}"));
    }

    pub fn delete_pod(&self, ns: &str, name: &str) {
        let api: Api<Pod> = Api::namespaced(self.admin.clone(), ns);
        let dp = DeleteParams {
            grace_period_seconds: Some(0),
            ..Default::default()
        };
        self.block_on(api.delete(name, &dp))
            .unwrap_or_else(|e| panic!("delete pod {ns}/{name}: {e}"));
    }
}

/// An owner reference to an object (its uid need not exist: no garbage collector runs).
pub fn owner(api_version: &str, kind: &str, name: &str, uid: &str) -> serde_json::Value {
    json!({"apiVersion": api_version, "kind": kind, "name": name, "uid": uid, "controller": true})
}

/// What a test pod is.
pub struct PodSpec<'a> {
    pub namespace: &'a str,
    pub name: &'a str,
    pub container: &'a str,
    pub labels: Vec<(String, serde_json::Value)>,
    pub annotations: Vec<(String, serde_json::Value)>,
    pub owner: Option<serde_json::Value>,
}

fn start_etcd(dir: &Path) -> (u16, Daemon) {
    let (client, peer) = (free_port(), free_port());
    let mut command = Command::new("etcd");
    command
        .arg(format!("--name=beyla-test-{}", random_hex(4)))
        .arg(format!("--data-dir={}", dir.join("etcd").display()))
        .arg(format!("--listen-client-urls=http://127.0.0.1:{client}"))
        .arg(format!("--advertise-client-urls=http://127.0.0.1:{client}"))
        .arg(format!("--listen-peer-urls=http://127.0.0.1:{peer}"))
        .arg(format!(
            "--initial-advertise-peer-urls=http://127.0.0.1:{peer}"
        ))
        .arg("--initial-cluster-state=new")
        .arg("--logger=zap")
        .arg("--log-level=warn");
    let name_arg = command
        .get_args()
        .next()
        .unwrap()
        .to_string_lossy()
        .trim_start_matches("--name=")
        .to_string();
    command.arg(format!(
        "--initial-cluster={name_arg}=http://127.0.0.1:{peer}"
    ));
    let etcd = Daemon::start(command);
    let started = Instant::now();
    poll_until(
        START_TIMEOUT,
        "etcd health",
        || {
            let out = Command::new("etcdctl")
                .env("ETCDCTL_API", "3")
                .arg(format!("--endpoints=http://127.0.0.1:{client}"))
                .args(["endpoint", "health"])
                .output()
                .ok()?;
            out.status.success().then_some(())
        },
        || format!("etcd stderr:\n{}", etcd.stderr.text()),
    );
    eprintln!("etcd ready on port {client} after {:?}", started.elapsed());
    (client, etcd)
}

fn write_kubeconfig(path: &Path, server: &str, ca: &Path, token: &str) {
    let text = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: test\n  cluster:\n    server: {server}\n    certificate-authority: {}\nusers:\n- name: user\n  user:\n    token: {token}\ncontexts:\n- name: test\n  context:\n    cluster: test\n    user: user\ncurrent-context: test\n",
        ca.display()
    );
    fs::write(path, text).unwrap();
}

async fn client(kubeconfig: &Path) -> Client {
    let file = Kubeconfig::read_from(kubeconfig).expect("read the test kubeconfig");
    let config = kube::Config::from_custom_kubeconfig(file, &KubeConfigOptions::default())
        .await
        .expect("kubeconfig to client config");
    Client::try_from(config).expect("kube client")
}

/// A random 64-hex-digit container id.
pub fn container_id() -> String {
    random_hex(32)
}

/// How a container runtime names a container's cgroup.
#[derive(Clone, Copy, Debug)]
pub enum Runtime {
    /// containerd with the systemd cgroup driver (cgroup v2).
    ContainerdSystemd,
    /// CRI-O with the systemd cgroup driver (cgroup v2).
    CrioSystemd,
    /// The cgroupfs driver on a cgroup v1 hierarchy (`pids`), where there is one.
    Cgroupfs,
}

impl Runtime {
    /// The `containerID` scheme of `status.containerStatuses`.
    pub fn scheme(self) -> &'static str {
        match self {
            Runtime::CrioSystemd => "cri-o",
            Runtime::ContainerdSystemd | Runtime::Cgroupfs => "containerd",
        }
    }
}

/// The root of the cgroup v2 hierarchy: `/sys/fs/cgroup`, or its `unified`
/// mount on a hybrid v1/v2 host.
fn cgroup2_root() -> PathBuf {
    let root = Path::new("/sys/fs/cgroup");
    if root.join("cgroup.controllers").exists() {
        root.to_path_buf()
    } else {
        root.join("unified")
    }
}

/// A container's cgroup, created for the test; removed (with its empty
/// parents) when dropped, after its processes are gone.
pub struct ContainerCgroup {
    /// The directories created, innermost last.
    created: Vec<PathBuf>,
    pub path: PathBuf,
}

impl ContainerCgroup {
    /// The cgroup `runtime` would make for container `id` of the pod `pod_uid`.
    pub fn create(runtime: Runtime, pod_uid: &str, id: &str) -> ContainerCgroup {
        let systemd_uid = pod_uid.replace('-', "_");
        let parts: Vec<String> = match runtime {
            Runtime::ContainerdSystemd => vec![
                "kubepods.slice".into(),
                "kubepods-besteffort.slice".into(),
                format!("kubepods-besteffort-pod{systemd_uid}.slice"),
                format!("cri-containerd-{id}.scope"),
            ],
            Runtime::CrioSystemd => vec![
                "kubepods.slice".into(),
                "kubepods-burstable.slice".into(),
                format!("kubepods-burstable-pod{systemd_uid}.slice"),
                format!("crio-{id}.scope"),
            ],
            Runtime::Cgroupfs => vec![
                "kubepods".into(),
                "besteffort".into(),
                format!("pod{pod_uid}"),
                id.into(),
            ],
        };
        let v1_pids = Path::new("/sys/fs/cgroup/pids");
        let mut path = match runtime {
            Runtime::Cgroupfs if v1_pids.is_dir() => v1_pids.to_path_buf(),
            _ => cgroup2_root(),
        };
        let mut created = Vec::new();
        for part in parts {
            path.push(part);
            if !path.exists() {
                fs::create_dir(&path).unwrap_or_else(|e| {
                    panic!("mkdir {} (the tests run as root): {e}", path.display())
                });
                created.push(path.clone());
            }
        }
        ContainerCgroup { created, path }
    }

    /// Makes `command` enter this cgroup before it executes, so the process
    /// is in the container from its first instruction.
    pub fn enter_on_exec(&self, command: &mut Command) {
        let procs = std::ffi::CString::new(
            self.path
                .join("cgroup.procs")
                .into_os_string()
                .into_encoded_bytes(),
        )
        .unwrap();
        // SAFETY: between fork and exec the closure only calls open, write
        // and close (async-signal-safe) on memory prepared before the fork.
        unsafe {
            command.pre_exec(move || {
                let fd = libc::open(procs.as_ptr(), libc::O_WRONLY);
                if fd < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                // "0": the writing process itself.
                let written = libc::write(fd, b"0".as_ptr().cast(), 1);
                libc::close(fd);
                if written != 1 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }
}

impl Drop for ContainerCgroup {
    fn drop(&mut self) {
        for dir in self.created.iter().rev() {
            // A cgroup is removable once its processes have exited; they are
            // reaped by then, but the kernel may take a moment.
            let deadline = Instant::now() + Duration::from_secs(5);
            while fs::remove_dir(dir).is_err() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        let _ = std::io::stderr().flush();
    }
}

/// A pod of a load test: one container with an id, kubectl's
/// last-applied annotation `big` (metadata the agent
/// does not keep), and a few labels.
pub async fn create_pod_with_container(admin: Client, ns: &str, name: &str, node: &str, big: &str) {
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {"name": name, "namespace": ns,
            "labels": {"app": "load", "tier": "batch", "pod-template-hash": "5d8f7c"},
            "annotations": {"kubectl.kubernetes.io/last-applied-configuration": big}},
        "spec": {"nodeName": node, "containers": [{"name": "app", "image": "sample:1"}]}
    }))
    .unwrap();
    let api: Api<Pod> = Api::namespaced(admin, ns);
    api.create(&PostParams::default(), &pod)
        .await
        .unwrap_or_else(|e| panic!("create pod {ns}/{name}: {e}"));
    let status = json!({"status": {"phase": "Running", "containerStatuses": [{
        "name": "app", "containerID": format!("containerd://{}", container_id()), "image": "sample:1",
        "imageID": "sample@sha256:0", "ready": true, "restartCount": 0, "started": true,
        "state": {"running": {}}}]}});
    api.patch_status(name, &PatchParams::default(), &Patch::Merge(&status))
        .await
        .unwrap_or_else(|e| panic!("patch status of pod {ns}/{name}: {e}"));
}
