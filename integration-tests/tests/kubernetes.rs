//! Kubernetes metadata against a real API server: etcd and kube-apiserver
//! v1.32.0 started here, the agent authenticated as the `beyla` service
//! account of deploy/kubernetes/rbac.yaml, the sample apps run in cgroups
//! named as containerd and CRI-O name them, pods written through the API.
//!
//! One test, in phases that share the control plane (it takes about a
//! minute to start): selectors and attributes; a pod re-created with the
//! same name; 5,000 pods on the node; the API server away for 30 s with
//! etcd compacted meanwhile (the watch gets `410 Gone` and re-lists). The
//! agent's self-metrics of the watch (objects held, failures, restarts) are
//! read at each phase.

use std::collections::BTreeMap;
use std::fs;
use std::time::{Duration, Instant};

use integration_tests::agent::Agent;
use integration_tests::apps::{free_port, Lang, Server};
use integration_tests::http::{request_on_fresh_connection, Request};
use integration_tests::kubernetes::{
    container_id, owner, Cluster, ContainerCgroup, PodSpec, Runtime,
};
use integration_tests::receivers::{exposition_lines, exposition_value, poll_until, scrape};
use integration_tests::{random_hex, require_root};
use serde_json::{json, Value};

const REQUESTS_PER_APP: usize = 3;
const LOAD_PODS: usize = 5_000;
const OUTAGE: Duration = Duration::from_secs(30);
const CLUSTER: &str = "beyla-test";

/// One pod with its container's process.
struct Running {
    uid: String,
    server: Server,
    // Dropped after the server: the cgroup is removed once its process is gone.
    _cgroup: ContainerCgroup,
}

impl Running {
    fn start(
        cluster: &Cluster,
        node: &str,
        spec: &PodSpec<'_>,
        lang: Lang,
        runtime: Runtime,
    ) -> Running {
        let uid = cluster.create_pod(spec, node);
        let id = container_id();
        let cgroup = ContainerCgroup::create(runtime, &uid, &id);
        let server = Server::start_with(lang, None, |c| cgroup.enter_on_exec(c));
        cluster.set_container(
            spec.namespace,
            spec.name,
            spec.container,
            &id,
            runtime.scheme(),
        );
        Running {
            uid,
            server,
            _cgroup: cgroup,
        }
    }

    fn pid(&self) -> u32 {
        self.server.pid()
    }

    fn requests(&self) {
        for i in 0..REQUESTS_PER_APP {
            let (response, _) = request_on_fresh_connection(
                self.server.port,
                &Request::get(&format!("/users/{i}")),
            );
            assert_eq!(response.status, 200);
        }
    }
}

fn labels(pairs: &[(&str, &str)]) -> Vec<(String, Value)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), json!(v)))
        .collect()
}

fn spec<'a>(namespace: &'a str, name: &'a str, container: &'a str, tier: &str) -> PodSpec<'a> {
    PodSpec {
        namespace,
        name,
        container,
        labels: labels(&[("tier", tier)]),
        annotations: Vec::new(),
        owner: None,
    }
}

/// The agent's resident memory, from /proc (kB).
fn rss_kb(pid: u32) -> u64 {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).expect("agent status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

/// The agent's Kubernetes self-metrics, by (family, resource): objects held
/// (a gauge), watch failures and watch restarts (counters).
fn watch_metrics(metrics_port: u16) -> BTreeMap<(&'static str, &'static str), f64> {
    let text = scrape(metrics_port, "/metrics");
    let mut values = BTreeMap::new();
    for family in [
        "beyla_kubernetes_objects",
        "beyla_kubernetes_watch_failures_total",
        "beyla_kubernetes_watch_restarts_total",
    ] {
        for resource in ["pods", "replicasets"] {
            let series = format!("{family}{{resource=\"{resource}\"}}");
            let line = exposition_lines(&text, family)
                .into_iter()
                .find(|l| l.starts_with(&format!("{series} ")))
                .unwrap_or_else(|| panic!("no {series} on the metrics endpoint:\n{text}"));
            values.insert((family, resource), exposition_value(line));
        }
    }
    values
}

/// What [`watch_metrics`] must read while the watch has not failed.
fn healthy_watch(pods: f64) -> BTreeMap<(&'static str, &'static str), f64> {
    BTreeMap::from([
        (("beyla_kubernetes_objects", "pods"), pods),
        // The ReplicaSet of the Deployment `checkout`, the only one a Deployment owns.
        (("beyla_kubernetes_objects", "replicasets"), 1.0),
        (("beyla_kubernetes_watch_failures_total", "pods"), 0.0),
        (
            ("beyla_kubernetes_watch_failures_total", "replicasets"),
            0.0,
        ),
        (("beyla_kubernetes_watch_restarts_total", "pods"), 0.0),
        (
            ("beyla_kubernetes_watch_restarts_total", "replicasets"),
            0.0,
        ),
    ])
}

#[test]
fn kubernetes_selectors_attributes_and_watch_recovery() {
    require_root();
    let cluster_start = Instant::now();
    let mut cluster = Cluster::start();
    eprintln!("control plane ready after {:?}", cluster_start.elapsed());
    let node = format!("node-{}", random_hex(4));
    for ns in ["shop", "shop-staging", "infra", "load"] {
        cluster.create_namespace(ns);
    }

    // Selected: A (Deployment, containerd), B (StatefulSet, CRI-O, named by
    // annotation), C (DaemonSet, cgroupfs, also selected by port). Not
    // selected: D (no pod), E (label tier=batch), F (namespace shop-staging).
    let rs = cluster.create_deployment("shop", "checkout", "checkout-7c9d8f");
    let rs = serde_json::to_value(rs).unwrap();
    let a_spec = PodSpec {
        owner: Some(rs.clone()),
        ..spec("shop", "checkout-7c9d8f-x1", "app", "web")
    };
    let a = Running::start(
        &cluster,
        &node,
        &a_spec,
        Lang::Python,
        Runtime::ContainerdSystemd,
    );
    let b_spec = PodSpec {
        owner: Some(owner("apps/v1", "StatefulSet", "ledger", "ledger-uid")),
        annotations: labels(&[("resource.opentelemetry.io/service.name", "ledger-api")]),
        ..spec("shop", "ledger-0", "ledger", "api")
    };
    let b = Running::start(&cluster, &node, &b_spec, Lang::Node, Runtime::CrioSystemd);
    let c_spec = PodSpec {
        owner: Some(owner("apps/v1", "DaemonSet", "agent-x", "agent-x-uid")),
        ..spec("infra", "agent-x-q2w3e", "collector", "system")
    };
    let c = Running::start(&cluster, &node, &c_spec, Lang::Go, Runtime::Cgroupfs);
    let d = Server::start(Lang::Python, None);
    let e_spec = spec("shop", "batch-1", "app", "batch");
    let e = Running::start(
        &cluster,
        &node,
        &e_spec,
        Lang::Python,
        Runtime::ContainerdSystemd,
    );
    let f_spec = spec("shop-staging", "checkout-staging", "app", "web");
    let f = Running::start(
        &cluster,
        &node,
        &f_spec,
        Lang::Node,
        Runtime::ContainerdSystemd,
    );

    let metrics_port = free_port();
    let config = cluster.dir.path.join("beyla-config.yml");
    fs::write(
        &config,
        format!(
            "discovery:
  services:
    - k8s_namespace: ^shop$
      k8s_pod_labels:
        tier: ^(web|api)$
  instrument:
    - k8s_daemonset_name: 'agent-*'
      open_ports: {port_c}
attributes:
  kubernetes:
    enable: true
    cluster_name: {CLUSTER}
    kubeconfig_path: {kubeconfig}
prometheus_export:
  port: {metrics_port}
",
            port_c = c.server.port,
            kubeconfig = cluster.agent_kubeconfig.display()
        ),
    )
    .unwrap();
    let agent = Agent::start(&[
        ("BEYLA_CONFIG_PATH", config.to_str().unwrap()),
        ("BEYLA_KUBE_NODE_NAME", &node),
    ]);
    agent.wait_ready();
    for app in [&a, &b, &c] {
        agent.wait_instrumenting(app.pid());
    }
    for app in [&a, &b, &c, &e, &f] {
        app.requests();
    }
    for i in 0..REQUESTS_PER_APP {
        request_on_fresh_connection(d.port, &Request::get(&format!("/users/{i}")));
    }
    // target_info: one series per container, with its k8s_* labels.
    let target_info = poll_until(
        Duration::from_secs(30),
        "target_info of the three selected containers",
        || {
            let text = scrape(metrics_port, "/metrics");
            let lines: Vec<String> = exposition_lines(&text, "target_info")
                .into_iter()
                .map(str::to_string)
                .collect();
            (lines.len() == 3).then_some(lines)
        },
        || scrape(metrics_port, "/metrics"),
    );
    for (app, pod, owner_label) in [
        (&a, "checkout-7c9d8f-x1", "k8s_deployment_name=\"checkout\""),
        (&b, "ledger-0", "k8s_statefulset_name=\"ledger\""),
        (&c, "agent-x-q2w3e", "k8s_daemonset_name=\"agent-x\""),
    ] {
        let line = target_info
            .iter()
            .find(|l| l.contains(&format!("k8s_pod_uid=\"{}\"", app.uid)))
            .unwrap_or_else(|| panic!("no target_info for {pod}: {target_info:#?}"));
        for label in [
            format!("k8s_pod_name=\"{pod}\""),
            format!("k8s_node_name=\"{node}\""),
            format!("k8s_cluster_name=\"{CLUSTER}\""),
            owner_label.to_string(),
        ] {
            assert!(line.contains(&label), "{label} missing: {line}");
        }
    }
    // The five pods of the node (A, B, C, E, F) are held, selected or not.
    assert_eq!(watch_metrics(metrics_port), healthy_watch(5.0));
    let baseline_rss = rss_kb(agent.pid());

    // A pod deleted and re-created with the same name: a new uid, a new container.
    cluster.delete_pod("shop", "checkout-7c9d8f-x1");
    let a1_pid = a.pid();
    let a1_uid = a.uid.clone();
    drop(a);
    let a2 = Running::start(
        &cluster,
        &node,
        &a_spec,
        Lang::Python,
        Runtime::ContainerdSystemd,
    );
    assert_ne!(a2.uid, a1_uid);
    agent.wait_instrumenting(a2.pid());
    a2.requests();
    // The deleted pod is forgotten, its successor held.
    assert_eq!(watch_metrics(metrics_port), healthy_watch(5.0));

    // 5,000 pods on this node, each with a container and kubectl's
    // last-applied annotation (which the agent does not keep).
    let created = Instant::now();
    create_load(&cluster, &node);
    eprintln!(
        "created {LOAD_PODS} pods (with status) in {:?}",
        created.elapsed()
    );

    // The API server away for 30 s; etcd compacted meanwhile, so the watch's
    // resource version is gone when it comes back: 410, then a re-list.
    cluster.stop_apiserver();
    cluster.compact_etcd();
    std::thread::sleep(OUTAGE);
    cluster.restart_apiserver();
    let total = LOAD_PODS + 5;
    let relisted = format!("re-listed {total} pod(s) of node {node}");
    agent.wait_for_log_containing(&relisted, Duration::from_secs(180));
    let loaded_rss = rss_kb(agent.pid());
    let g_spec = spec("shop", "checkout-7c9d8f-g7", "app", "web");
    let g = Running::start(
        &cluster,
        &node,
        &g_spec,
        Lang::Python,
        Runtime::ContainerdSystemd,
    );
    agent.wait_instrumenting(g.pid());
    g.requests();
    // After the outage: each watch started over once (410 Gone, then one
    // re-list), after at least one failure (how many retries the back-off
    // made in 30 s is not fixed); the store holds every pod of the node.
    let mut after_outage = watch_metrics(metrics_port);
    for resource in ["pods", "replicasets"] {
        let failures = after_outage
            .remove(&("beyla_kubernetes_watch_failures_total", resource))
            .unwrap();
        assert!(
            failures >= 1.0,
            "{resource}: watch failures after the outage: {failures}"
        );
    }
    assert_eq!(
        after_outage,
        BTreeMap::from([
            (("beyla_kubernetes_objects", "pods"), (total + 1) as f64),
            (("beyla_kubernetes_objects", "replicasets"), 1.0),
            (("beyla_kubernetes_watch_restarts_total", "pods"), 1.0),
            (
                ("beyla_kubernetes_watch_restarts_total", "replicasets"),
                1.0
            ),
        ])
    );

    let output = agent.stop();
    assert!(!output.stderr.contains("panicked"), "{}", output.stderr);
    assert!(
        output
            .stderr
            .contains("resource version expired (410 Gone)"),
        "{}",
        output.stderr
    );

    let by_pid = |pid: u32| -> Vec<&Value> {
        output
            .spans
            .iter()
            .filter(|s| s.pid == pid)
            .map(|s| &s.resource)
            .collect()
    };
    for (name, pid) in [
        ("D (no pod)", d.pid()),
        ("E (tier=batch)", e.pid()),
        ("F (shop-staging)", f.pid()),
    ] {
        assert!(
            by_pid(pid).is_empty(),
            "{name} must not be traced: {:?}",
            by_pid(pid)
        );
    }
    let common = |ns: &str, pod: &str, uid: &str, container: &str| {
        BTreeMap::from([
            ("k8s.namespace.name", ns.to_string()),
            ("k8s.pod.name", pod.to_string()),
            ("k8s.pod.uid", uid.to_string()),
            ("k8s.container.name", container.to_string()),
            ("k8s.node.name", node.clone()),
            ("k8s.cluster.name", CLUSTER.to_string()),
        ])
    };
    let with = |mut m: BTreeMap<&'static str, String>, extra: &[(&'static str, &str)]| {
        m.extend(extra.iter().map(|(k, v)| (*k, v.to_string())));
        m
    };
    let rs_attrs = [
        ("k8s.deployment.name", "checkout"),
        ("k8s.replicaset.name", "checkout-7c9d8f"),
        ("k8s.owner.name", "checkout"),
        ("service.name", "checkout"),
        ("service.namespace", "shop"),
    ];
    let expected = [
        (
            "A",
            a1_pid,
            with(
                common("shop", "checkout-7c9d8f-x1", &a1_uid, "app"),
                &rs_attrs,
            ),
        ),
        (
            "A re-created",
            a2.pid(),
            with(
                common("shop", "checkout-7c9d8f-x1", &a2.uid, "app"),
                &rs_attrs,
            ),
        ),
        (
            "B",
            b.pid(),
            with(
                common("shop", "ledger-0", &b.uid, "ledger"),
                &[
                    ("k8s.statefulset.name", "ledger"),
                    ("k8s.owner.name", "ledger"),
                    ("service.name", "ledger-api"),
                    ("service.namespace", "shop"),
                ],
            ),
        ),
        (
            "C",
            c.pid(),
            with(
                common("infra", "agent-x-q2w3e", &c.uid, "collector"),
                &[
                    ("k8s.daemonset.name", "agent-x"),
                    ("k8s.owner.name", "agent-x"),
                    ("service.name", "agent-x"),
                    ("service.namespace", "infra"),
                ],
            ),
        ),
        (
            "G (after the outage)",
            g.pid(),
            with(
                common("shop", "checkout-7c9d8f-g7", &g.uid, "app"),
                &[
                    ("k8s.owner.name", "checkout-7c9d8f-g7"),
                    ("service.name", "checkout-7c9d8f-g7"),
                    ("service.namespace", "shop"),
                ],
            ),
        ),
    ];
    eprintln!("\n| process | pod | uid | spans | k8s.* and service.* as expected |");
    eprintln!("|---|---|---|---|---|");
    for (name, pid, attrs) in &expected {
        let resources = by_pid(*pid);
        assert_eq!(
            resources.len(),
            REQUESTS_PER_APP,
            "{name}: spans {resources:?}"
        );
        for resource in &resources {
            let got: BTreeMap<&str, String> = resource
                .as_object()
                .unwrap()
                .iter()
                .filter(|(k, _)| k.starts_with("k8s.") || k.starts_with("service."))
                .filter(|(k, _)| *k != "k8s.pod.start_time")
                .map(|(k, v)| (k.as_str(), v.as_str().unwrap_or_default().to_string()))
                .collect();
            let want: BTreeMap<&str, String> = attrs.iter().map(|(k, v)| (*k, v.clone())).collect();
            assert_eq!(got, want, "{name}: resource {resource}");
            assert!(
                resource.get("k8s.pod.start_time").is_some(),
                "{name}: {resource}"
            );
        }
        eprintln!(
            "| {name} | {} | {} | {} | yes |",
            attrs["k8s.pod.name"],
            attrs["k8s.pod.uid"],
            resources.len()
        );
    }
    eprintln!(
        "\nagent memory (VmRSS): {baseline_rss} kB with 6 pods on the node, {loaded_rss} kB with {total} pods \
         ({:.1} kB per pod)",
        (loaded_rss.saturating_sub(baseline_rss)) as f64 / LOAD_PODS as f64
    );
}

/// Creates the load pods, 32 requests in flight.
fn create_load(cluster: &Cluster, node: &str) {
    const IN_FLIGHT: usize = 32;
    let big = "x".repeat(1024);
    let mut next = 0;
    while next < LOAD_PODS {
        let batch: Vec<usize> = (next..(next + IN_FLIGHT).min(LOAD_PODS)).collect();
        next += batch.len();
        cluster.block_on(async {
            let mut tasks = tokio::task::JoinSet::new();
            for i in batch {
                let spec_name = format!("load-{i}");
                let admin = cluster.admin.clone();
                let node = node.to_string();
                let big = big.clone();
                tasks.spawn(async move {
                    integration_tests::kubernetes::create_pod_with_container(
                        admin, "load", &spec_name, &node, &big,
                    )
                    .await
                });
            }
            while let Some(done) = tasks.join_next().await {
                done.expect("load task");
            }
        });
    }
}
