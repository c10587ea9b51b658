//! The pods of this node and the Deployments of their ReplicaSets, keeping
//! only the fields the agent uses: the rest of each object is dropped as it
//! arrives, so memory grows with the pods of this node, not with their specs.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};

use k8s_openapi::api::core::v1::{ContainerStatus, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};

use super::cgroup::ContainerId;
use beyla_pipeline::model::KubernetesResource;
use beyla_pipeline::selfmetrics::{Gauge, SelfMetrics};

/// Pod annotations that name the service (OpenTelemetry's Kubernetes conventions).
pub const SERVICE_NAME_ANNOTATION: &str = "resource.opentelemetry.io/service.name";
pub const SERVICE_NAMESPACE_ANNOTATION: &str = "resource.opentelemetry.io/service.namespace";
/// Well-known labels that name the service and the application it is part of.
pub const NAME_LABEL: &str = "app.kubernetes.io/name";
pub const PART_OF_LABEL: &str = "app.kubernetes.io/part-of";

/// The kind of a pod's controller, as far as the attributes tell them apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OwnerKind {
    ReplicaSet,
    StatefulSet,
    DaemonSet,
    Other,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    pub kind: OwnerKind,
    pub name: String,
}

/// The fields of a pod the agent uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodInfo {
    pub namespace: String,
    pub name: String,
    pub uid: String,
    pub start_time: Option<String>,
    /// Only the labels and annotations that selectors or service naming read.
    pub labels: Vec<(String, String)>,
    pub annotations: Vec<(String, String)>,
    pub owner: Option<Owner>,
    /// Every container (init and ephemeral too) that has started, by id.
    pub containers: Vec<(ContainerId, String)>,
}

impl PodInfo {
    pub fn label(&self, key: &str) -> Option<&str> {
        find(&self.labels, key)
    }

    pub fn annotation(&self, key: &str) -> Option<&str> {
        find(&self.annotations, key)
    }

    /// Keeps what `keep` asks for of a pod from the API server.
    pub fn from_pod(pod: Pod, keep: &Keep) -> Option<Self> {
        let ObjectMeta {
            name,
            namespace,
            uid,
            labels,
            annotations,
            owner_references,
            creation_timestamp,
            ..
        } = pod.metadata;
        let status = pod.status.unwrap_or_default();
        let statuses = [
            status.container_statuses,
            status.init_container_statuses,
            status.ephemeral_container_statuses,
        ];
        let containers = statuses
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(
                |ContainerStatus {
                     container_id, name, ..
                 }| {
                    Some((ContainerId::from_status(container_id.as_deref()?)?, name))
                },
            )
            .collect();
        let start_time = status
            .start_time
            .or(creation_timestamp)
            .map(|t| t.0.to_string());
        Some(Self {
            namespace: namespace?,
            name: name?,
            uid: uid?,
            start_time,
            labels: kept(labels, |k| keep.label(k)),
            annotations: kept(annotations, |k| keep.annotation(k)),
            owner: owner_references.and_then(|refs| controller(&refs)),
            containers,
        })
    }
}

fn find<'a>(pairs: &'a [(String, String)], key: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

fn kept(
    map: Option<std::collections::BTreeMap<String, String>>,
    keep: impl Fn(&str) -> bool,
) -> Vec<(String, String)> {
    map.into_iter().flatten().filter(|(k, _)| keep(k)).collect()
}

/// The controlling owner, else the first one.
fn controller(refs: &[OwnerReference]) -> Option<Owner> {
    let r = refs
        .iter()
        .find(|r| r.controller == Some(true))
        .or(refs.first())?;
    let kind = match r.kind.as_str() {
        "ReplicaSet" => OwnerKind::ReplicaSet,
        "StatefulSet" => OwnerKind::StatefulSet,
        "DaemonSet" => OwnerKind::DaemonSet,
        _ => OwnerKind::Other,
    };
    Some(Owner {
        kind,
        name: r.name.clone(),
    })
}

/// The Deployment owning a ReplicaSet, from its metadata; None for a
/// ReplicaSet that no Deployment controls.
pub fn deployment_of(meta: &ObjectMeta) -> Option<String> {
    meta.owner_references
        .as_deref()?
        .iter()
        .find(|r| r.kind == "Deployment" && r.controller == Some(true))
        .map(|r| r.name.clone())
}

/// Which labels and annotations are kept: those selectors name, and those
/// service naming reads. Everything else (such as the large
/// `kubectl.kubernetes.io/last-applied-configuration`) is dropped.
#[derive(Debug, Clone, Default)]
pub struct Keep {
    pub labels: HashSet<String>,
    pub annotations: HashSet<String>,
}

impl Keep {
    fn label(&self, key: &str) -> bool {
        key == NAME_LABEL || key == PART_OF_LABEL || self.labels.contains(key)
    }

    fn annotation(&self, key: &str) -> bool {
        key == SERVICE_NAME_ANNOTATION
            || key == SERVICE_NAMESPACE_ANNOTATION
            || self.annotations.contains(key)
    }
}

/// One container of a known pod, with its attributes resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodContainer {
    pub pod: Arc<PodInfo>,
    pub resource: KubernetesResource,
}

impl PodContainer {
    /// `service.name`: the pod's `resource.opentelemetry.io/service.name`
    /// annotation, else its `app.kubernetes.io/name` label, else the name of
    /// its top-level owner (the pod's own name when it has none).
    pub fn service_name(&self) -> String {
        self.pod
            .annotation(SERVICE_NAME_ANNOTATION)
            .or_else(|| self.pod.label(NAME_LABEL))
            .unwrap_or(&self.resource.owner_name)
            .to_string()
    }

    /// `service.namespace`: the `resource.opentelemetry.io/service.namespace`
    /// annotation, else the `app.kubernetes.io/part-of` label, else the
    /// Kubernetes namespace.
    pub fn service_namespace(&self) -> String {
        self.pod
            .annotation(SERVICE_NAMESPACE_ANNOTATION)
            .or_else(|| self.pod.label(PART_OF_LABEL))
            .unwrap_or(&self.pod.namespace)
            .to_string()
    }
}

#[derive(Default)]
struct State {
    pods: HashMap<String, Arc<PodInfo>>,
    /// Pod uid of each container id.
    containers: HashMap<ContainerId, String>,
    /// (namespace, ReplicaSet) to its Deployment.
    deployments: HashMap<(String, String), String>,
}

/// What the watch writes and discovery reads.
pub struct Store {
    state: RwLock<State>,
    node_name: String,
    cluster_name: Option<String>,
    /// The first list of pods has arrived.
    synced: AtomicBool,
    /// Where the number of objects held is reported.
    metrics: Arc<SelfMetrics>,
}

/// The store's state, locked for writing; reports what it holds when released.
struct Writing<'a> {
    state: std::sync::RwLockWriteGuard<'a, State>,
    metrics: &'a SelfMetrics,
}

impl std::ops::Deref for Writing<'_> {
    type Target = State;
    fn deref(&self) -> &State {
        &self.state
    }
}

impl std::ops::DerefMut for Writing<'_> {
    fn deref_mut(&mut self) -> &mut State {
        &mut self.state
    }
}

impl Drop for Writing<'_> {
    fn drop(&mut self) {
        self.metrics
            .set(Gauge::KubernetesPods, self.state.pods.len() as u64);
        self.metrics.set(
            Gauge::KubernetesReplicaSets,
            self.state.deployments.len() as u64,
        );
    }
}

impl Store {
    pub fn new(node_name: String, cluster_name: Option<String>, metrics: Arc<SelfMetrics>) -> Self {
        Self {
            state: RwLock::default(),
            node_name,
            cluster_name,
            synced: AtomicBool::new(false),
            metrics,
        }
    }

    pub fn node_name(&self) -> &str {
        &self.node_name
    }

    pub fn synced(&self) -> bool {
        self.synced.load(Ordering::Acquire)
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> Writing<'_> {
        Writing {
            state: self.state.write().unwrap_or_else(|e| e.into_inner()),
            metrics: &self.metrics,
        }
    }

    /// A pod was added or changed.
    pub fn apply_pod(&self, pod: PodInfo) {
        let mut state = self.write();
        state.remove_pod(&pod.uid);
        state.insert_pod(pod);
    }

    pub fn delete_pod(&self, uid: &str) {
        self.write().remove_pod(uid);
    }

    /// A complete list of the node's pods, after a (re-)list: pods not in it are gone.
    pub fn replace_pods(&self, pods: Vec<PodInfo>) {
        let mut state = self.write();
        state.pods.clear();
        state.containers.clear();
        for pod in pods {
            state.insert_pod(pod);
        }
        drop(state);
        self.synced.store(true, Ordering::Release);
    }

    /// A ReplicaSet was added or changed; `deployment` is its owner, if a Deployment.
    pub fn apply_replicaset(&self, namespace: String, name: String, deployment: Option<String>) {
        let mut state = self.write();
        match deployment {
            Some(deployment) => state.deployments.insert((namespace, name), deployment),
            None => state.deployments.remove(&(namespace, name)),
        };
    }

    pub fn delete_replicaset(&self, namespace: String, name: String) {
        self.write().deployments.remove(&(namespace, name));
    }

    /// A complete list of the ReplicaSets owned by Deployments.
    pub fn replace_replicasets(&self, owned: Vec<((String, String), String)>) {
        self.write().deployments = owned.into_iter().collect();
    }

    /// The pod container with this id, if it runs on this node.
    pub fn container(&self, id: &ContainerId) -> Option<PodContainer> {
        let state = self.read();
        let pod = state.pods.get(state.containers.get(id)?)?;
        let container_name = pod
            .containers
            .iter()
            .find(|(c, _)| c == id)
            .map(|(_, name)| name.clone())?;
        let mut resource = KubernetesResource {
            namespace: pod.namespace.clone(),
            pod_name: pod.name.clone(),
            pod_uid: pod.uid.clone(),
            container_name,
            node_name: self.node_name.clone(),
            pod_start_time: pod.start_time.clone(),
            owner_name: pod.name.clone(),
            cluster_name: self.cluster_name.clone(),
            ..Default::default()
        };
        if let Some(owner) = &pod.owner {
            resource.owner_name = owner.name.clone();
            match owner.kind {
                OwnerKind::ReplicaSet => {
                    resource.replicaset_name = Some(owner.name.clone());
                    let key = (pod.namespace.clone(), owner.name.clone());
                    if let Some(deployment) = state.deployments.get(&key) {
                        resource.deployment_name = Some(deployment.clone());
                        resource.owner_name = deployment.clone();
                    }
                }
                OwnerKind::StatefulSet => resource.statefulset_name = Some(owner.name.clone()),
                OwnerKind::DaemonSet => resource.daemonset_name = Some(owner.name.clone()),
                OwnerKind::Other => {}
            }
        }
        Some(PodContainer {
            pod: Arc::clone(pod),
            resource,
        })
    }
}

impl State {
    fn insert_pod(&mut self, pod: PodInfo) {
        for (id, _) in &pod.containers {
            self.containers.insert(id.clone(), pod.uid.clone());
        }
        self.pods.insert(pod.uid.clone(), Arc::new(pod));
    }

    fn remove_pod(&mut self, uid: &str) {
        if let Some(old) = self.pods.remove(uid) {
            for (id, _) in &old.containers {
                if self.containers.get(id).is_some_and(|owner| owner == uid) {
                    self.containers.remove(id);
                }
            }
        }
    }
}
