//! The watch of the API server, on a thread of its own with the tokio
//! runtime the client needs: the pods of this node (`spec.nodeName` field
//! selector) and the metadata of ReplicaSets (for their Deployments).
//! kube's watcher re-lists after `410 Gone` and resumes after other errors;
//! its back-off spaces the retries while the API server is away. Every
//! error and every restart is counted in the self-metrics, per resource.

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
use beyla_pipeline::selfmetrics::{Counter, SelfMetrics};

/// Where the API server's address and credentials come from.
pub enum Source {
    /// A kubeconfig file named in the configuration.
    Kubeconfig(std::path::PathBuf),
    /// `KUBECONFIG`, `~/.kube/config`, else the pod's service account.
    Infer,
}

/// Starts the watch thread; returns once the client is made (or could not be).
pub fn spawn(
    source: Source,
    store: Arc<Store>,
    keep: Keep,
    metrics: Arc<SelfMetrics>,
) -> Result<(), StartError> {
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
                        watch(client, &store, &keep, &metrics).await;
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

/// A watched resource: its name in logs and metrics, and its counters.
struct Watched {
    name: &'static str,
    failures: Counter,
    restarts: Counter,
}

const PODS: Watched = Watched {
    name: "pods",
    failures: Counter::KubernetesWatchFailuresPods,
    restarts: Counter::KubernetesWatchRestartsPods,
};

const REPLICASETS: Watched = Watched {
    name: "replicasets",
    failures: Counter::KubernetesWatchFailuresReplicaSets,
    restarts: Counter::KubernetesWatchRestartsReplicaSets,
};

/// Whether a watch is failing, so that a long outage logs twice (failed,
/// resumed), not at every retry (each is counted); and how many lists it
/// began.
struct Health {
    watched: &'static Watched,
    failing: bool,
    lists: u64,
}

impl Health {
    fn new(watched: &'static Watched) -> Self {
        Self {
            watched,
            failing: false,
            lists: 0,
        }
    }

    fn error(&mut self, error: &watcher::Error, metrics: &SelfMetrics) {
        metrics.inc(self.watched.failures);
        let what = self.watched.name;
        let gone = matches!(error, watcher::Error::WatchError(e) if e.code == 410);
        if gone {
            log::info!("kubernetes: {what}: resource version expired (410 Gone), re-listing");
        } else if !self.failing {
            log::warn!("kubernetes: watch of {what} failed, retrying with back-off: {error}");
        }
        self.failing = !gone;
    }

    fn ok(&mut self) {
        if self.failing {
            log::info!("kubernetes: watch of {} resumed", self.watched.name);
            self.failing = false;
        }
    }

    /// A (re-)list begins: every list after the first is a restart of the watch.
    fn list_begins(&mut self, metrics: &SelfMetrics) {
        self.lists += 1;
        if self.lists > 1 {
            metrics.inc(self.watched.restarts);
        }
    }
}

async fn watch(client: Client, store: &Store, keep: &Keep, metrics: &SelfMetrics) {
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
    let mut pods = PodWatch {
        health: Health::new(&PODS),
        listing: Vec::new(),
    };
    let mut replicasets = ReplicaSetWatch {
        health: Health::new(&REPLICASETS),
        listing: Vec::new(),
    };
    while let Some(update) = updates.next().await {
        match update {
            Update::Pod(result) => match *result {
                Err(e) => pods.health.error(&e, metrics),
                Ok(event) => pods.event(event, store, keep, metrics),
            },
            Update::ReplicaSet(result) => match *result {
                Err(e) => replicasets.health.error(&e, metrics),
                Ok(event) => replicasets.event(event, store, metrics),
            },
        }
    }
}

/// The pod watch's state: the list being received.
struct PodWatch {
    health: Health,
    listing: Vec<PodInfo>,
}

impl PodWatch {
    fn event(&mut self, event: Event<Pod>, store: &Store, keep: &Keep, metrics: &SelfMetrics) {
        self.health.ok();
        match event {
            Event::Init => {
                self.health.list_begins(metrics);
                self.listing.clear();
            }
            Event::InitApply(pod) => self.listing.extend(PodInfo::from_pod(pod, keep)),
            Event::InitDone => {
                let count = self.listing.len();
                store.replace_pods(std::mem::take(&mut self.listing));
                let what = if self.health.lists == 1 {
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
struct ReplicaSetWatch {
    health: Health,
    listing: Vec<((String, String), String)>,
}

impl ReplicaSetWatch {
    fn event(
        &mut self,
        event: Event<PartialObjectMeta<ReplicaSet>>,
        store: &Store,
        metrics: &SelfMetrics,
    ) {
        self.health.ok();
        let named = |rs: PartialObjectMeta<ReplicaSet>| {
            let deployment = deployment_of(&rs.metadata);
            Some((rs.metadata.namespace?, rs.metadata.name?, deployment))
        };
        match event {
            Event::Init => {
                self.health.list_begins(metrics);
                self.listing.clear();
            }
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
