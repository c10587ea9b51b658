use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::{ContainerStatus, Pod, PodStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use regex::Regex;

use super::cgroup::{container_in, ContainerId};
use super::store::{deployment_of, Keep, PodInfo, Store};
use super::PodSelector;
use beyla_pipeline::selfmetrics::{Gauge, SelfMetrics};

const ID: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
const ID2: &str = "fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210";

fn id(s: &str) -> Option<ContainerId> {
    Some(ContainerId(s.to_string()))
}

#[test]
fn container_ids_as_each_runtime_names_its_cgroups() {
    let v2 = |path: &str| container_in(&format!("0::{path}\n"));
    assert_eq!(
        v2(&format!("/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod1f2e_3d4c.slice/cri-containerd-{ID}.scope")),
        id(ID)
    );
    assert_eq!(
        v2(&format!("/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-podab.slice/crio-{ID}.scope")),
        id(ID)
    );
    assert_eq!(v2(&format!("/system.slice/docker-{ID}.scope")), id(ID));
    assert_eq!(
        v2(&format!("/kubepods/besteffort/pod1f2e-3d4c/{ID}")),
        id(ID)
    );
    assert_eq!(
        v2(&format!(
            "/system.slice/containerd.service/kubepods-besteffort-podab.slice:cri-containerd:{ID}"
        )),
        id(ID)
    );
    // The monitor of a CRI-O container is not the container.
    assert_eq!(
        v2(&format!(
            "/kubepods.slice/kubepods-pod1.slice/crio-conmon-{ID}.scope"
        )),
        None
    );
    assert_eq!(v2("/user.slice/user-0.slice/session-1.scope"), None);
    assert_eq!(v2("/"), None);
    // Too short, or not hex.
    assert_eq!(v2(&format!("/kubepods/pod1/{}", &ID[1..])), None);
    assert_eq!(
        v2(&format!("/kubepods/pod1/{}", ID.replace('a', "g"))),
        None
    );
}

#[test]
fn cgroup_v1_lines_are_read_too() {
    let text = format!(
        "12:pids:/kubepods/burstable/pod9/{ID}\n11:memory:/kubepods/burstable/pod9/{ID}\n1:name=systemd:/\n0::/\n"
    );
    assert_eq!(container_in(&text), id(ID));
    assert_eq!(container_in("9:name=systemd:/\n0::/\n"), None);
}

#[test]
fn container_ids_from_pod_status() {
    assert_eq!(
        ContainerId::from_status(&format!("containerd://{ID}")),
        id(ID)
    );
    assert_eq!(ContainerId::from_status(&format!("cri-o://{ID}")), id(ID));
    assert_eq!(ContainerId::from_status(&format!("docker://{ID}")), id(ID));
    assert_eq!(ContainerId::from_status(ID), None);
    assert_eq!(ContainerId::from_status("containerd://"), None);
}

fn owner(kind: &str, name: &str) -> OwnerReference {
    OwnerReference {
        api_version: "apps/v1".into(),
        kind: kind.into(),
        name: name.into(),
        uid: format!("{name}-uid"),
        controller: Some(true),
        block_owner_deletion: None,
    }
}

fn pod(name: &str, uid: &str, owner: Option<OwnerReference>, container: &str) -> Pod {
    let labels = BTreeMap::from([
        ("tier".to_string(), "web".to_string()),
        (
            "app.kubernetes.io/part-of".to_string(),
            "shop-suite".to_string(),
        ),
        ("unrelated".to_string(), "x".to_string()),
    ]);
    let annotations = BTreeMap::from([(
        "kubectl.kubernetes.io/last-applied-configuration".to_string(),
        "{\"a\": \"large object\"}".to_string(),
    )]);
    Pod {
        metadata: ObjectMeta {
            name: Some(name.into()),
            namespace: Some("shop".into()),
            uid: Some(uid.into()),
            labels: Some(labels),
            annotations: Some(annotations),
            owner_references: owner.map(|o| vec![o]),
            ..Default::default()
        },
        spec: None,
        status: Some(PodStatus {
            container_statuses: Some(vec![ContainerStatus {
                name: "app".into(),
                container_id: Some(format!("containerd://{container}")),
                ..Default::default()
            }]),
            init_container_statuses: Some(vec![ContainerStatus {
                name: "init".into(),
                // Not started yet: no id.
                container_id: None,
                ..Default::default()
            }]),
            ..Default::default()
        }),
    }
}

fn keep_tier() -> Keep {
    let mut keep = Keep::default();
    keep.labels.insert("tier".into());
    keep
}

#[test]
fn only_the_fields_used_are_kept() {
    let info = PodInfo::from_pod(pod("web-0", "u1", None, ID), &keep_tier()).unwrap();
    assert_eq!(
        info.labels,
        [
            (
                "app.kubernetes.io/part-of".to_string(),
                "shop-suite".to_string()
            ),
            ("tier".to_string(), "web".to_string()),
        ]
    );
    assert!(info.annotations.is_empty());
    assert_eq!(
        info.containers,
        [(ContainerId(ID.into()), "app".to_string())]
    );
}

#[test]
fn deployment_found_through_the_replicaset() {
    let metrics = Arc::new(SelfMetrics::default());
    let store = Store::new("node-1".into(), Some("prod".into()), Arc::clone(&metrics));
    let rs_pod = pod(
        "web-5d8-abc",
        "u1",
        Some(owner("ReplicaSet", "web-5d8")),
        ID,
    );
    store.replace_pods(vec![PodInfo::from_pod(rs_pod, &Keep::default()).unwrap()]);
    let c = store.container(&ContainerId(ID.into())).unwrap();
    assert_eq!(c.resource.replicaset_name.as_deref(), Some("web-5d8"));
    assert_eq!(c.resource.deployment_name, None);
    assert_eq!(c.resource.owner_name, "web-5d8");

    let rs_meta = ObjectMeta {
        owner_references: Some(vec![owner("Deployment", "web")]),
        ..Default::default()
    };
    store.apply_replicaset("shop".into(), "web-5d8".into(), deployment_of(&rs_meta));
    assert_eq!(metrics.held(Gauge::KubernetesReplicaSets), 1);
    let c = store.container(&ContainerId(ID.into())).unwrap();
    assert_eq!(c.resource.deployment_name.as_deref(), Some("web"));
    assert_eq!(c.resource.owner_name, "web");
    assert_eq!(c.resource.node_name, "node-1");
    assert_eq!(c.resource.cluster_name.as_deref(), Some("prod"));
    assert_eq!(c.resource.container_name, "app");
    // No name label or annotation: the owner names the service; part-of its namespace.
    assert_eq!(c.service_name(), "web");
    assert_eq!(c.service_namespace(), "shop-suite");

    store.delete_replicaset("shop".into(), "web-5d8".into());
    assert_eq!(metrics.held(Gauge::KubernetesReplicaSets), 0);
    let c = store.container(&ContainerId(ID.into())).unwrap();
    assert_eq!(c.resource.deployment_name, None);
}

#[test]
fn a_pod_recreated_with_the_same_name_has_its_new_uid() {
    let metrics = Arc::new(SelfMetrics::default());
    let store = Store::new("n".into(), None, Arc::clone(&metrics));
    let keep = Keep::default();
    store.apply_pod(
        PodInfo::from_pod(
            pod("db-0", "old", Some(owner("StatefulSet", "db")), ID),
            &keep,
        )
        .unwrap(),
    );
    store.delete_pod("old");
    assert_eq!(store.container(&ContainerId(ID.into())), None);
    assert_eq!(metrics.held(Gauge::KubernetesPods), 0);
    store.apply_pod(
        PodInfo::from_pod(
            pod("db-0", "new", Some(owner("StatefulSet", "db")), ID2),
            &keep,
        )
        .unwrap(),
    );
    let c = store.container(&ContainerId(ID2.into())).unwrap();
    assert_eq!(c.resource.pod_uid, "new");
    assert_eq!(c.resource.statefulset_name.as_deref(), Some("db"));
    assert_eq!(metrics.held(Gauge::KubernetesPods), 1);
}

#[test]
fn a_relist_forgets_pods_that_are_gone() {
    let metrics = Arc::new(SelfMetrics::default());
    let store = Store::new("n".into(), None, Arc::clone(&metrics));
    let keep = Keep::default();
    store.apply_pod(PodInfo::from_pod(pod("a", "ua", None, ID), &keep).unwrap());
    store.apply_pod(PodInfo::from_pod(pod("c", "uc", None, ID2), &keep).unwrap());
    assert_eq!(metrics.held(Gauge::KubernetesPods), 2);
    store.replace_pods(vec![
        PodInfo::from_pod(pod("b", "ub", None, ID2), &keep).unwrap()
    ]);
    assert_eq!(metrics.held(Gauge::KubernetesPods), 1);
    assert_eq!(store.container(&ContainerId(ID.into())), None);
    let b = store.container(&ContainerId(ID2.into())).unwrap();
    // No owner: the pod names itself.
    assert_eq!(b.resource.owner_name, "b");
    assert_eq!(b.service_name(), "b");
}

#[test]
fn service_name_from_annotation_then_label() {
    let store = Store::new("n".into(), None, Arc::default());
    let mut p = pod("a", "ua", Some(owner("DaemonSet", "ds")), ID);
    p.metadata
        .labels
        .as_mut()
        .unwrap()
        .insert("app.kubernetes.io/name".into(), "from-label".into());
    store.apply_pod(PodInfo::from_pod(p.clone(), &Keep::default()).unwrap());
    assert_eq!(
        store
            .container(&ContainerId(ID.into()))
            .unwrap()
            .service_name(),
        "from-label"
    );
    p.metadata.annotations.as_mut().unwrap().insert(
        "resource.opentelemetry.io/service.name".into(),
        "from-annotation".into(),
    );
    p.metadata.annotations.as_mut().unwrap().insert(
        "resource.opentelemetry.io/service.namespace".into(),
        "team-a".into(),
    );
    store.apply_pod(PodInfo::from_pod(p, &Keep::default()).unwrap());
    let c = store.container(&ContainerId(ID.into())).unwrap();
    assert_eq!(c.service_name(), "from-annotation");
    assert_eq!(c.service_namespace(), "team-a");
    assert_eq!(c.resource.daemonset_name.as_deref(), Some("ds"));
}

#[test]
fn selectors_need_every_criterion() {
    let store = Store::new("n".into(), None, Arc::default());
    store.apply_pod(
        PodInfo::from_pod(
            pod("web-0", "u", Some(owner("StatefulSet", "web")), ID),
            &keep_tier(),
        )
        .unwrap(),
    );
    let c = store.container(&ContainerId(ID.into())).unwrap();
    let re = |s: &str| Some(Regex::new(s).unwrap());
    let mut s = PodSelector {
        namespace: re("^shop$"),
        ..Default::default()
    };
    assert!(!s.is_empty());
    assert!(s.matches(&c));
    s.statefulset_name = re("^web$");
    s.pod_labels = vec![("tier".into(), Regex::new("^(web|api)$").unwrap())];
    assert!(s.matches(&c));
    // A criterion the pod has no value for fails.
    s.deployment_name = re(".*");
    assert!(!s.matches(&c));
    s.deployment_name = None;
    s.pod_annotations = vec![("owner".into(), Regex::new(".*").unwrap())];
    assert!(!s.matches(&c));
    assert!(PodSelector::default().is_empty());
}
