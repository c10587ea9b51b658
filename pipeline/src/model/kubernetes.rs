//! The Kubernetes identity of a traced process, as the agent's metadata watch
//! found it: its container, pod, owners and node.

use crate::semconv::attributes::{
    K8S_CLUSTER_NAME, K8S_CONTAINER_NAME, K8S_DAEMONSET_NAME, K8S_DEPLOYMENT_NAME,
    K8S_NAMESPACE_NAME, K8S_NODE_NAME, K8S_OWNER_NAME, K8S_POD_NAME, K8S_POD_START_TIME,
    K8S_POD_UID, K8S_REPLICASET_NAME, K8S_STATEFULSET_NAME,
};

/// One container of one pod. Fields the pod does not have (a pod without a
/// Deployment has no `deployment_name`) are `None`, and are not exported.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KubernetesResource {
    pub namespace: String,
    pub pod_name: String,
    pub pod_uid: String,
    pub container_name: String,
    pub node_name: String,
    /// RFC 3339, as the API server wrote it.
    pub pod_start_time: Option<String>,
    pub deployment_name: Option<String>,
    pub replicaset_name: Option<String>,
    pub statefulset_name: Option<String>,
    pub daemonset_name: Option<String>,
    /// The top-level owner: the Deployment of a ReplicaSet's pod, else the
    /// pod's own controller, else the pod itself.
    pub owner_name: String,
    pub cluster_name: Option<String>,
}

impl KubernetesResource {
    /// The `k8s.*` resource attributes, in a fixed order, without the unset ones.
    pub fn attributes(&self) -> impl Iterator<Item = (&'static str, &str)> {
        let set = [
            (K8S_NAMESPACE_NAME, Some(&self.namespace)),
            (K8S_POD_NAME, Some(&self.pod_name)),
            (K8S_POD_UID, Some(&self.pod_uid)),
            (K8S_CONTAINER_NAME, Some(&self.container_name)),
            (K8S_NODE_NAME, Some(&self.node_name)),
            (K8S_POD_START_TIME, self.pod_start_time.as_ref()),
            (K8S_DEPLOYMENT_NAME, self.deployment_name.as_ref()),
            (K8S_REPLICASET_NAME, self.replicaset_name.as_ref()),
            (K8S_STATEFULSET_NAME, self.statefulset_name.as_ref()),
            (K8S_DAEMONSET_NAME, self.daemonset_name.as_ref()),
            (K8S_OWNER_NAME, Some(&self.owner_name)),
            (K8S_CLUSTER_NAME, self.cluster_name.as_ref()),
        ];
        set.into_iter()
            .filter_map(|(key, value)| Some((key, value?.as_str())))
            .filter(|(_, value)| !value.is_empty())
    }

    /// `service.instance.id` of the container: namespace, pod and container
    /// names joined by dots (OpenTelemetry's Kubernetes conventions).
    pub fn instance_id(&self) -> String {
        format!(
            "{}.{}.{}",
            self.namespace, self.pod_name, self.container_name
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unset_and_empty_attributes_are_left_out() {
        let k8s = KubernetesResource {
            namespace: "shop".into(),
            pod_name: "web-7d9f-abcde".into(),
            pod_uid: "u-1".into(),
            container_name: "app".into(),
            node_name: "node-1".into(),
            replicaset_name: Some("web-7d9f".into()),
            deployment_name: Some("web".into()),
            owner_name: "web".into(),
            ..Default::default()
        };
        let attributes: Vec<_> = k8s.attributes().collect();
        assert_eq!(
            attributes,
            [
                ("k8s.namespace.name", "shop"),
                ("k8s.pod.name", "web-7d9f-abcde"),
                ("k8s.pod.uid", "u-1"),
                ("k8s.container.name", "app"),
                ("k8s.node.name", "node-1"),
                ("k8s.deployment.name", "web"),
                ("k8s.replicaset.name", "web-7d9f"),
                ("k8s.owner.name", "web"),
            ]
        );
        assert_eq!(k8s.instance_id(), "shop.web-7d9f-abcde.app");
    }
}
