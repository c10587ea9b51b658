//! The `k8s_*` criteria of a `discovery.services` / `discovery.instrument`
//! entry. Every criterion given must hold (as do the entry's `open_ports`
//! and `exe_path`); a process outside any known pod matches none.

use regex::Regex;

use super::store::{Keep, PodContainer};

/// Reads the value a name criterion tests from a pod container.
type Field = fn(&PodContainer) -> Option<&str>;

/// Patterns are regular expressions in `services` entries and globs (turned
/// into anchored regular expressions) in `instrument` entries, as in Beyla.
#[derive(Debug, Clone, Default)]
pub struct PodSelector {
    pub namespace: Option<Regex>,
    pub pod_name: Option<Regex>,
    pub deployment_name: Option<Regex>,
    pub replicaset_name: Option<Regex>,
    pub statefulset_name: Option<Regex>,
    pub daemonset_name: Option<Regex>,
    pub owner_name: Option<Regex>,
    /// Label name and the pattern its value must match; the label must exist.
    pub pod_labels: Vec<(String, Regex)>,
    pub pod_annotations: Vec<(String, Regex)>,
}

impl PodSelector {
    /// Whether no criterion is set.
    pub fn is_empty(&self) -> bool {
        self.names().all(|(re, _)| re.is_none())
            && self.pod_labels.is_empty()
            && self.pod_annotations.is_empty()
    }

    /// Each name criterion with the value it tests.
    fn names(&self) -> impl Iterator<Item = (Option<&Regex>, Field)> {
        let fields: [(Option<&Regex>, Field); 7] = [
            (self.namespace.as_ref(), |c| Some(&c.resource.namespace)),
            (self.pod_name.as_ref(), |c| Some(&c.resource.pod_name)),
            (self.deployment_name.as_ref(), |c| {
                c.resource.deployment_name.as_deref()
            }),
            (self.replicaset_name.as_ref(), |c| {
                c.resource.replicaset_name.as_deref()
            }),
            (self.statefulset_name.as_ref(), |c| {
                c.resource.statefulset_name.as_deref()
            }),
            (self.daemonset_name.as_ref(), |c| {
                c.resource.daemonset_name.as_deref()
            }),
            (self.owner_name.as_ref(), |c| Some(&c.resource.owner_name)),
        ];
        fields.into_iter()
    }

    /// Whether the container's pod meets every criterion.
    pub fn matches(&self, container: &PodContainer) -> bool {
        let names = self.names().all(|(re, value)| match re {
            None => true,
            Some(re) => value(container).is_some_and(|v| re.is_match(v)),
        });
        let labels = self.pod_labels.iter().all(|(key, re)| {
            container
                .pod
                .label(key)
                .is_some_and(|value| re.is_match(value))
        });
        let annotations = self.pod_annotations.iter().all(|(key, re)| {
            container
                .pod
                .annotation(key)
                .is_some_and(|value| re.is_match(value))
        });
        names && labels && annotations
    }

    /// Adds the labels and annotations this selector reads to what the store keeps.
    pub fn keep(&self, keep: &mut Keep) {
        keep.labels
            .extend(self.pod_labels.iter().map(|(k, _)| k.clone()));
        keep.annotations
            .extend(self.pod_annotations.iter().map(|(k, _)| k.clone()));
    }
}
