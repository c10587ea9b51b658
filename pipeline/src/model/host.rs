//! The machine the agent runs on: `host.name` and `host.id` of every resource.

/// Where `host.id` is read from, in order (Beyla's local sources).
const MACHINE_ID_FILES: [&str; 2] = ["/etc/machine-id", "/var/lib/dbus/machine-id"];
const HOSTNAME_FILE: &str = "/proc/sys/kernel/hostname";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Host {
    /// `host.name`: the kernel's host name.
    pub name: String,
    /// `host.id`: the machine id, or the host name when there is none.
    pub id: String,
}

impl Host {
    /// From the files' contents (None: unreadable); blank ones count as missing.
    pub fn from_contents(hostname: Option<&str>, machine_ids: &[Option<&str>]) -> Self {
        let name = hostname
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .unwrap_or("localhost")
            .to_string();
        let id = machine_ids
            .iter()
            .flatten()
            .map(|id| id.trim())
            .find(|id| !id.is_empty())
            .map_or_else(|| name.clone(), str::to_string);
        Self { name, id }
    }

    /// Reads this machine's host name and machine id.
    pub fn detect() -> Self {
        let read = |path: &str| std::fs::read_to_string(path).ok();
        let hostname = read(HOSTNAME_FILE);
        let ids = MACHINE_ID_FILES.map(read);
        Self::from_contents(hostname.as_deref(), &[ids[0].as_deref(), ids[1].as_deref()])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn machine_id_first_then_the_host_name() {
        let host = Host::from_contents(Some("node1\n"), &[None, Some("4c2e\n")]);
        assert_eq!((host.name.as_str(), host.id.as_str()), ("node1", "4c2e"));
        let host = Host::from_contents(Some("node1\n"), &[Some(" \n"), None]);
        assert_eq!(host.id, "node1");
        assert_eq!(Host::from_contents(None, &[]).name, "localhost");
    }
}
