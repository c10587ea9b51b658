//! The processes being traced, by pid: written by discovery, read by the
//! assembler when it meets a new connection.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use super::{Pid, Resource};

/// Traced processes and what they are called.
#[derive(Clone, Default)]
pub struct Registry(Arc<RwLock<HashMap<Pid, Arc<Resource>>>>);

impl Registry {
    pub fn get(&self, pid: Pid) -> Option<Arc<Resource>> {
        self.0.read().ok()?.get(&pid).cloned()
    }

    /// Discovery names the processes it traces; benchmarks name their own.
    pub fn insert(&self, resource: Resource) {
        if let Ok(mut map) = self.0.write() {
            map.insert(resource.pid, Arc::new(resource));
        }
    }

    pub fn remove(&self, pid: Pid) {
        if let Ok(mut map) = self.0.write() {
            map.remove(&pid);
        }
    }
}
