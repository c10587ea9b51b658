//! The watch of the API server, on a thread of its own with the tokio
//! runtime the client needs: the pods of this node (`spec.nodeName` field
//! selector) and the metadata of ReplicaSets (for their Deployments).
//! kube's watcher re-lists after `410 Gone` and resumes after other errors;
//! its back-off spaces the retries while the API server is away.

use std::pin::pin;
use std::sync::mpsc;
use std::sync::Arc;

use futures_util::StreamExt;
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::Pod;
use kube::api::Api;
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::runtime::watcher::{self, Event};
use kube::runtime::{metadata_watcher, WatchStreamExt};
use kube::Client;

use super::store::{deployment_of, Keep, PodInfo, Store};
use super::StartError;

/// Where the API server's address and credentials come from.
pub enum Source {
    /// A kubeconfig file named in the configuration.
    Kubeconfig(std::path::PathBuf),
    /// `KUBECONFIG`, `~/.kube/config`, else the pod's service account.
    Infer,
}

/// Starts the watch thread; returns once the client is made (or could not be).
pub fn spawn(source: Source, store: Arc<Store>, keep: Keep) -> Result<(), StartError> {
    let (ready, made) = mpsc::channel();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| StartError::Runtime(e.to_string()))?;
    std::thread::Builder::new()
        .name("kubernetes".into())
        .spawn(move || {
            runtime.block_on(async move {
                match client(source).await {
                    Ok(client) => {
                        let _ = ready.send(Ok(()));
                        watch(client, &store, &keep).await;
                    }
                    Err(e) => {
                        let _ = ready.send(Err(e));
                    }
                }
            })
        })
        .map_err(|e| StartError::Runtime(e.to_string()))?;
    made.recv()
        .map_err(|_| StartError::Runtime("the watch thread ended".into()))?
}

async fn client(source: Source) -> Result<Client, StartError> {
    let config = match source {
        Source::Kubeconfig(path) => {
            let file = Kubeconfig::read_from(&path).map_err(|e| StartError::Config {
                from: path.display().to_string(),
                reason: e.to_string(),
            })?;
            kube::Config::from_custom_kubeconfig(file, &KubeConfigOptions::default())
                .await
                .map_err(|e| StartError::Config {
                    from: path.display().to_string(),
                    reason: e.to_string(),
                })?
        }
        Source::Infer => kube::Config::infer()
            .await
            .map_err(|e| StartError::Config {
                from: "KUBECONFIG, ~/.kube/config or the pod's service account".into(),
                reason: e.to_string(),
            })?,
    };
    Client::try_from(config).map_err(|e| StartError::Config {
        from: "the API server's settings".into(),
        reason: e.to_string(),
    })
}

enum Update {
    Pod(Result<Event<Pod>, watcher::Error>),
    ReplicaSet(Result<Event<kube::core::PartialObjectMeta<ReplicaSet>>, watcher::Error>),
}

/// Whether a watch is failing, so that a long outage logs twice (failed,
/// resumed), not at every retry.
#[derive(Default)]
struct Health {
    failing: bool,
}

impl Health {
    fn error(&mut self, what: &str, error: &watcher::Error) {
        let gone = matches!(error, watcher::Error::WatchError(e) if e.code == 410);
        if gone {
            log::info!("kubernetes: {what}: resource version expired (410 Gone), re-listing");
        } else if !self.failing {
            log::warn!("kubernetes: watch of {what} failed, retrying with back-off: {error}");
        }
        self.failing = !gone;
    }

    fn ok(&mut self, what: &str) {
        if self.failing {
            log::info!("kubernetes: watch of {what} resumed");
            self.failing = false;
        }
    }
}

async fn watch(client: Client, store: &Store, keep: &Keep) {
    let pods = watcher::watcher(
        Api::<Pod>::all(client.clone()),
        watcher::Config::default().fields(&format!("spec.nodeName={}", store.node_name())),
    )
    .default_backoff()
    .map(Update::Pod);
    let replicasets = metadata_watcher(Api::<ReplicaSet>::all(client), watcher::Config::default())
        .default_backoff()
        .map(Update::ReplicaSet);
    let mut updates = pin!(futures_util::stream::select(pods, replicasets));
    let (mut pod_health, mut rs_health) = (Health::default(), Health::default());
    let mut listing_pods: Vec<PodInfo> = Vec::new();
    let mut listing_rs = Vec::new();
    let mut pod_lists = 0u64;
    while let Some(update) = updates.next().await {
        match update {
            Update::Pod(Err(e)) => pod_health.error("pods", &e),
            Update::Pod(Ok(event)) => {
                pod_health.ok("pods");
                match event {
                    Event::Init => listing_pods.clear(),
                    Event::InitApply(pod) => listing_pods.extend(PodInfo::from_pod(pod, keep)),
                    Event::InitDone => {
                        pod_lists += 1;
                        let count = listing_pods.len();
                        store.replace_pods(std::mem::take(&mut listing_pods));
                        log::info!(
                            "kubernetes: {} {count} pod(s) of node {}",
                            if pod_lists == 1 {
                                "listed"
                            } else {
                                "re-listed"
                            },
                            store.node_name()
                        );
                    }
                    Event::Apply(pod) => {
                        if let Some(pod) = PodInfo::from_pod(pod, keep) {
                            store.apply_pod(pod);
                        }
                    }
                    Event::Delete(pod) => {
                        if let Some(uid) = pod.metadata.uid {
                            store.delete_pod(&uid);
                        }
                    }
                }
            }
            Update::ReplicaSet(Err(e)) => rs_health.error("replicasets", &e),
            Update::ReplicaSet(Ok(event)) => {
                rs_health.ok("replicasets");
                match event {
                    Event::Init => listing_rs.clear(),
                    Event::InitApply(rs) => {
                        let deployment = deployment_of(&rs.metadata);
                        let (Some(ns), Some(name)) = (rs.metadata.namespace, rs.metadata.name)
                        else {
                            continue;
                        };
                        if let Some(deployment) = deployment {
                            listing_rs.push(((ns, name), deployment));
                        }
                    }
                    Event::InitDone => {
                        store.replace_replicasets(std::mem::take(&mut listing_rs));
                    }
                    Event::Apply(rs) => {
                        let deployment = deployment_of(&rs.metadata);
                        if let (Some(ns), Some(name)) = (rs.metadata.namespace, rs.metadata.name) {
                            store.apply_replicaset(ns, name, deployment);
                        }
                    }
                    Event::Delete(rs) => {
                        if let (Some(ns), Some(name)) = (rs.metadata.namespace, rs.metadata.name) {
                            store.delete_replicaset(ns, name);
                        }
                    }
                }
            }
        }
    }
}
