//! The kernel's traced-PID map, as discovery sees it.

use aya::maps::{HashMap, Map, MapData};

use super::abi;
use super::probes::ProbeError;
use beyla_pipeline::model::Pid;

pub struct PidFilter(HashMap<MapData, u32, u32>);

impl PidFilter {
    pub(super) fn new(map: Map) -> Result<Self, ProbeError> {
        HashMap::try_from(map)
            .map(Self)
            .map_err(|source| ProbeError::Map {
                name: "traced_pids",
                source,
            })
    }

    pub fn trace(&mut self, pid: Pid) {
        if let Err(e) = self.0.insert(pid.0, abi::PID_TRACED, 0) {
            log::warn!("could not trace pid={pid}: {e}");
        }
    }

    pub fn untrace(&mut self, pid: Pid) {
        // Absent already is fine: the process may never have been in the map.
        let _ = self.0.remove(&pid.0);
    }

    /// Every pid in the map, including ones the kernel marked pending on exec.
    pub fn pids(&self) -> Vec<Pid> {
        self.0.keys().filter_map(Result::ok).map(Pid).collect()
    }
}
