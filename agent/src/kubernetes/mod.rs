//! Kubernetes: which pod and container each traced process belongs to, for
//! the `k8s_*` selectors of discovery and the `k8s.*` resource attributes.
//!
//! `cgroup` maps a process to its container id; `watch` keeps `store` up to
//! date from the API server (pods of this node, ReplicaSets' Deployments) on
//! its own thread and tokio runtime; `selector` matches discovery entries
//! against a pod. Discovery asks [`Metadata::for_pid`].

pub mod cgroup;
mod config;
mod selector;
mod store;
#[cfg(test)]
mod tests;
mod watch;

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::config::DiscoveryConfig;
use beyla_pipeline::model::Pid;
use beyla_pipeline::selfmetrics::SelfMetrics;

pub use config::{Enable, KubernetesConfig, DEFAULT_SYNC_TIMEOUT};
pub use selector::PodSelector;
pub use store::{Keep, PodContainer, PodInfo};

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("Kubernetes metadata is enabled, but the API server's address and credentials could not be read from {from}: {reason}")]
    Config { from: String, reason: String },
    #[error("Kubernetes metadata: cannot start the watch thread: {0}")]
    Runtime(String),
}

/// How often start-up looks whether the first list of pods arrived.
const SYNC_POLL: Duration = Duration::from_millis(50);

/// The metadata of this node's pods, kept up to date in the background.
#[derive(Clone)]
pub struct Metadata {
    store: Arc<store::Store>,
}

impl Metadata {
    /// Starts the watch when metadata is on (deciding `autodetect` from this
    /// process's environment); keeps the labels and annotations the
    /// selectors of `discovery` read. The watch's failures and the objects
    /// held are reported in `metrics`.
    pub fn start_for(
        config: &KubernetesConfig,
        discovery: &DiscoveryConfig,
        metrics: Arc<SelfMetrics>,
    ) -> Result<Option<Self>, StartError> {
        let selectors: Vec<&PodSelector> = discovery
            .instrument
            .iter()
            .chain(&discovery.exclude)
            .filter_map(|s| s.kubernetes.as_ref())
            .collect();
        if !config.enabled(&|name| std::env::var(name).ok()) {
            // Metadata off by choice is warned about with the configuration;
            // here, `autodetect` found no cluster, where Beyla says nothing.
            if !selectors.is_empty() && config.enable == Enable::Autodetect {
                log::warn!("discovery selects pods with k8s_* keys, but attributes.kubernetes.enable is autodetect and this is not a Kubernetes pod (no KUBERNETES_SERVICE_HOST or service-account token): those entries select nothing; set it to true, with a kubeconfig_path, to watch a cluster from outside");
            }
            return Ok(None);
        }
        let mut keep = Keep::default();
        for selector in selectors {
            selector.keep(&mut keep);
        }
        Self::start(config, keep, metrics).map(Some)
    }

    /// Connects to the API server and starts watching; waits up to the
    /// config's `sync_timeout` for the first list of pods. `keep` names the
    /// labels and annotations the selectors read.
    pub fn start(
        config: &KubernetesConfig,
        keep: Keep,
        metrics: Arc<SelfMetrics>,
    ) -> Result<Self, StartError> {
        let node_name = config.node_name.clone().unwrap_or_else(host_name);
        let store = Arc::new(store::Store::new(
            node_name,
            config.cluster_name.clone(),
            Arc::clone(&metrics),
        ));
        let source = match &config.kubeconfig_path {
            Some(path) => watch::Source::Kubeconfig(path.clone()),
            None => watch::Source::Infer,
        };
        watch::spawn(source, Arc::clone(&store), keep, metrics)?;
        let deadline = Instant::now() + config.sync_timeout;
        while !store.synced() && Instant::now() < deadline {
            std::thread::sleep(SYNC_POLL);
        }
        if !store.synced() {
            log::warn!(
                "kubernetes: no list of the pods of node {} within {:?}; starting without, metadata follows when the API server answers",
                store.node_name(),
                config.sync_timeout
            );
        }
        Ok(Self { store })
    }

    /// The pod container process `pid` runs in, if it is a known pod's on this node.
    pub fn for_pid(&self, pid: Pid) -> Option<PodContainer> {
        self.store.container(&cgroup::container_of(pid)?)
    }
}

/// The kernel's host name: the node name when none is configured.
fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}
