//! What the Kubernetes metadata watch needs from the configuration
//! (`attributes.kubernetes.*`, `BEYLA_KUBE_*`, `KUBECONFIG`, `NODE_NAME`).

use std::path::PathBuf;
use std::time::Duration;

/// `attributes.kubernetes.enable`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Enable {
    Yes,
    No,
    /// On when the agent runs in a pod: the service-account token and
    /// `KUBERNETES_SERVICE_HOST` are there.
    Autodetect,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KubernetesConfig {
    pub enable: Enable,
    /// `k8s.cluster.name` on every span; unset: not exported.
    pub cluster_name: Option<String>,
    /// A kubeconfig file; unset: the in-cluster service account, else
    /// `~/.kube/config`.
    pub kubeconfig_path: Option<PathBuf>,
    /// The node whose pods are watched; unset: this host's name.
    pub node_name: Option<String>,
    /// How long start-up waits for the first list of pods before it goes on
    /// without (metadata then arrives in the background).
    pub sync_timeout: Duration,
}

/// Beyla's default for `informers_sync_timeout`.
pub const DEFAULT_SYNC_TIMEOUT: Duration = Duration::from_secs(30);

impl Default for KubernetesConfig {
    fn default() -> Self {
        Self {
            enable: Enable::No,
            cluster_name: None,
            kubeconfig_path: None,
            node_name: None,
            sync_timeout: DEFAULT_SYNC_TIMEOUT,
        }
    }
}

/// Where a pod's service account is mounted.
pub const SERVICE_ACCOUNT_TOKEN: &str = "/var/run/secrets/kubernetes.io/serviceaccount/token";

impl KubernetesConfig {
    /// Whether metadata is on, deciding `autodetect` from the environment given.
    pub fn enabled(&self, env: &dyn Fn(&str) -> Option<String>) -> bool {
        match self.enable {
            Enable::Yes => true,
            Enable::No => false,
            Enable::Autodetect => {
                env("KUBERNETES_SERVICE_HOST").is_some()
                    && std::path::Path::new(SERVICE_ACCOUNT_TOKEN).exists()
            }
        }
    }
}
