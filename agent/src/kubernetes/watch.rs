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
use kube::core::PartialObjectMeta;
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

/// One event of either watch, boxed: the two differ much in size.
enum Update {
    Pod(Box<Result<Event<Pod>, watcher::Error>>),
    ReplicaSet(Box<Result<Event<PartialObjectMeta<ReplicaSet>>, watcher::Error>>),
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
    .map(|event| Update::Pod(Box::new(event)));
    let replicasets = metadata_watcher(Api::<ReplicaSet>::all(client), watcher::Config::default())
        .default_backoff()
        .map(|event| Update::ReplicaSet(Box::new(event)));
    let mut updates = pin!(futures_util::stream::select(pods, replicasets));
    let mut pods = PodWatch::default();
    let mut replicasets = ReplicaSetWatch::default();
    while let Some(update) = updates.next().await {
        match update {
            Update::Pod(result) => match *result {
                Err(e) => pods.health.error("pods", &e),
                Ok(event) => pods.event(event, store, keep),
            },
            Update::ReplicaSet(result) => match *result {
                Err(e) => replicasets.health.error("replicasets", &e),
                Ok(event) => replicasets.event(event, store),
            },
        }
    }
}

/// The pod watch's state: the list being received, and how many there were.
#[derive(Default)]
struct PodWatch {
    health: Health,
    listing: Vec<PodInfo>,
    lists: u64,
}

impl PodWatch {
    fn event(&mut self, event: Event<Pod>, store: &Store, keep: &Keep) {
        self.health.ok("pods");
        match event {
            Event::Init => self.listing.clear(),
            Event::InitApply(pod) => self.listing.extend(PodInfo::from_pod(pod, keep)),
            Event::InitDone => {
                self.lists += 1;
                let count = self.listing.len();
                store.replace_pods(std::mem::take(&mut self.listing));
                let what = if self.lists == 1 {
                    "listed"
                } else {
                    "re-listed"
                };
                log::info!(
                    "kubernetes: {what} {count} pod(s) of node {}",
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
}

/// The ReplicaSet watch's state: the list being received.
#[derive(Default)]
struct ReplicaSetWatch {
    health: Health,
    listing: Vec<((String, String), String)>,
}

impl ReplicaSetWatch {
    fn event(&mut self, event: Event<PartialObjectMeta<ReplicaSet>>, store: &Store) {
        self.health.ok("replicasets");
        let named = |rs: PartialObjectMeta<ReplicaSet>| {
            let deployment = deployment_of(&rs.metadata);
            Some((rs.metadata.namespace?, rs.metadata.name?, deployment))
        };
        match event {
            Event::Init => self.listing.clear(),
            Event::InitApply(rs) => {
                if let Some((ns, name, Some(deployment))) = named(rs) {
                    self.listing.push(((ns, name), deployment));
                }
            }
            Event::InitDone => store.replace_replicasets(std::mem::take(&mut self.listing)),
            Event::Apply(rs) => {
                if let Some((ns, name, deployment)) = named(rs) {
                    store.apply_replicaset(ns, name, deployment);
                }
            }
            Event::Delete(rs) => {
                if let Some((ns, name, _)) = named(rs) {
                    store.delete_replicaset(ns, name);
                }
            }
        }
    }
}
