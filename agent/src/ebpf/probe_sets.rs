//! Every probe the agent attaches, declared as data: the program, where it
//! attaches, and the set it belongs to. The loader attaches whole sets
//! without naming their members, so a new set (Go runtime, a database client
//! library) is a table here and programs in `ebpf/probes/`, not a loader change.

use std::collections::BTreeSet;

use super::abi;
use super::preflight;
use beyla_pipeline::model::Pid;
use beyla_pipeline::selfmetrics::Counter;

/// Where a program attaches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attach {
    /// A tracefs tracepoint, `category/name`: the kernel builds a trace
    /// record for each hit before the program runs.
    Tracepoint {
        category: &'static str,
        name: &'static str,
    },
    /// A raw tracepoint: the tracepoint's own arguments, no record.
    RawTracepoint(&'static str),
    /// A raw tracepoint whose arguments are typed by the kernel's BTF (tp_btf).
    BtfTracepoint(&'static str),
    /// A BPF trampoline at a kernel function's entry, or at its return.
    FEntry(&'static str),
    FExit(&'static str),
}

impl std::fmt::Display for Attach {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Tracepoint { category, name } => write!(f, "tracepoint {category}/{name}"),
            Self::RawTracepoint(name) => write!(f, "raw tracepoint {name}"),
            Self::BtfTracepoint(name) => write!(f, "tp_btf {name}"),
            Self::FEntry(function) => write!(f, "fentry {function}"),
            Self::FExit(function) => write!(f, "fexit {function}"),
        }
    }
}

/// One program and its attach point.
#[derive(Debug, Clone, Copy)]
pub struct Probe {
    pub program: &'static str,
    pub attach: Attach,
}

/// How the socket calls are seen. The probes do the same work on each; what
/// differs is what the kernel charges per hit (docs/benchmarks.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CapturePath {
    /// fentry/fexit on the kernel's TCP functions (`tcp_sendmsg`,
    /// `tcp_recvmsg`, ...): run only for TCP sockets, by a direct call.
    Fentry,
    /// `tp_btf/sys_enter` and `sys_exit`: one program for every syscall,
    /// filtered by number, arguments read without a helper call.
    TpBtf,
    /// `raw_tracepoint/sys_enter` and `sys_exit`: the same, arguments read
    /// from the saved registers with a helper call.
    RawTp,
    /// A tracepoint per captured syscall, `syscalls/sys_{enter,exit}_NAME`:
    /// present on every kernel with syscall tracing; the kernel builds a
    /// trace record for each call before the program runs.
    Syscalls,
}

impl CapturePath {
    /// Tried in this order at start-up; the first the kernel accepts is used.
    /// Cheapest first, as measured by bench/pathcost.py (docs/benchmarks.md).
    /// There is no kprobe path: a kretprobe misses returns when its pool of
    /// instances is empty, silently, and every kernel with kprobes has raw
    /// tracepoints.
    pub const PREFERENCE: [CapturePath; 4] =
        [Self::Fentry, Self::TpBtf, Self::RawTp, Self::Syscalls];

    pub fn name(self) -> &'static str {
        match self {
            Self::Fentry => "fentry",
            Self::TpBtf => "tp_btf",
            Self::RawTp => "raw_tp",
            Self::Syscalls => "syscalls",
        }
    }

    pub fn probes(self) -> &'static [Probe] {
        match self {
            Self::Fentry => TCP_FENTRY,
            Self::TpBtf => BTF_SYSCALLS,
            Self::RawTp => RAW_SYSCALLS,
            Self::Syscalls => SYSCALL_TRACEPOINTS,
        }
    }
}

impl std::fmt::Display for CapturePath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

const fn raw(program: &'static str, attach: Attach) -> Probe {
    Probe { program, attach }
}

macro_rules! syscall_tracepoints {
    ($($name:literal),*) => {
        &[
            $(
                Probe {
                    program: concat!("enter_", $name),
                    attach: Attach::Tracepoint { category: "syscalls", name: concat!("sys_enter_", $name) },
                },
                Probe {
                    program: concat!("exit_", $name),
                    attach: Attach::Tracepoint { category: "syscalls", name: concat!("sys_exit_", $name) },
                },
            )*
            Probe {
                program: "enter_close",
                attach: Attach::Tracepoint { category: "syscalls", name: "sys_enter_close" },
            },
        ]
    };
}

/// The kernel's TCP functions, by trampolines. tcp_recvmsg's return is taken
/// at its callers (its arguments changed in 5.19; theirs did not).
const TCP_FENTRY: &[Probe] = &[
    raw("fe_tcp_send", Attach::FEntry("tcp_sendmsg")),
    raw("fx_tcp_send", Attach::FExit("tcp_sendmsg")),
    raw("fe_tcp_recv", Attach::FEntry("tcp_recvmsg")),
    raw("fx_inet_recv", Attach::FExit("inet_recvmsg")),
    raw("fx_inet6_recv", Attach::FExit("inet6_recvmsg")),
    raw("fx_inet_accept", Attach::FExit("inet_accept")),
    raw("fe_tcp_connect", Attach::FEntry("tcp_connect")),
    raw("fe_tcp_close", Attach::FEntry("tcp_close")),
];

/// Every syscall's entry and exit, typed arguments.
const BTF_SYSCALLS: &[Probe] = &[
    raw("btf_sys_enter", Attach::BtfTracepoint("sys_enter")),
    raw("btf_sys_exit", Attach::BtfTracepoint("sys_exit")),
];

/// Every syscall's entry and exit.
const RAW_SYSCALLS: &[Probe] = &[
    raw("raw_sys_enter", Attach::RawTracepoint("sys_enter")),
    raw("raw_sys_exit", Attach::RawTracepoint("sys_exit")),
];

/// The socket syscalls, entry and exit, and close's entry.
const SYSCALL_TRACEPOINTS: &[Probe] = syscall_tracepoints!(
    "read", "recvfrom", "readv", "recvmsg", "write", "sendto", "writev", "sendmsg", "accept",
    "accept4", "connect"
);

/// Process lifecycle (exec, fork, exit): always attached.
pub const LIFECYCLE: &[Probe] = &[
    raw("on_exec", Attach::RawTracepoint("sched_process_exec")),
    raw("on_fork", Attach::RawTracepoint("sched_process_fork")),
    raw("on_exit", Attach::RawTracepoint("sched_process_exit")),
];

/// Listening sockets opened and closed: attached while selecting by port.
pub const LISTENING: &[Probe] = &[raw(
    "on_sock_state",
    Attach::RawTracepoint("inet_sock_set_state"),
)];

/// Uprobes attached to the library files traced processes map, once per
/// file, for every process (the probes filter by the traced-PID map).
pub struct LibrarySet {
    /// For logs: "OpenSSL".
    pub name: &'static str,
    /// What the probes give, for the start-up warning when they are refused.
    pub what: &'static str,
    /// The `feature` label of `beyla_probe_attach_failures_total`, also in
    /// `preflight::PRIVILEGES`.
    pub feature: &'static str,
    /// Counts the processes whose probes the kernel refused.
    pub failures: Counter,
    /// Entry probes: (program, symbol).
    pub entries: &'static [(&'static str, &'static str)],
    /// One return probe, attached to every entry symbol.
    pub ret: &'static str,
    /// The files of a process to attach to, as paths valid from the agent's
    /// mount namespace; empty when the process has none.
    pub locate: fn(Pid) -> BTreeSet<String>,
    /// Set in the process's traced-PID byte once attached (`BEYLA_PID_*`).
    pub pid_flag: u8,
}

impl LibrarySet {
    pub fn programs(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.entries.iter().map(|(p, _)| *p).chain([self.ret])
    }
}

/// OpenSSL 1.1 and 3.x: libssl, or linked into the executable (Node.js).
pub const OPENSSL: LibrarySet = LibrarySet {
    name: "OpenSSL",
    what: "HTTPS through OpenSSL",
    feature: preflight::OPENSSL,
    failures: Counter::ProbeAttachFailuresOpenssl,
    entries: &[
        ("ssl_write_enter", "SSL_write"),
        ("ssl_write_ex_enter", "SSL_write_ex"),
        ("ssl_read_enter", "SSL_read"),
        ("ssl_read_ex_enter", "SSL_read_ex"),
    ],
    ret: "ssl_return_probe",
    locate: openssl_objects,
    pid_flag: abi::PID_TLS,
};

/// Every library set.
pub const LIBRARIES: &[&LibrarySet] = &[&OPENSSL];

/// A Go function probed at its entry and, when it has a return program, at
/// each of its return instructions (Go moves goroutine stacks, which breaks
/// uretprobes).
pub struct GoFunction {
    /// The fully qualified Go name, as in `.symtab` and `.gopclntab`.
    pub name: &'static str,
    pub entry: &'static str,
    pub ret: Option<&'static str>,
    /// When the agent attaches it.
    pub when: GoAttach,
}

/// When a Go function's probes are attached to an executable.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum GoAttach {
    /// With the executable's first traced process.
    Discovery,
    /// Once a process of the executable served a TLS request: a probe that
    /// runs at every goroutine start costs a trap each, and serves nothing
    /// until a goroutine is marked serving.
    FirstServing,
}

/// Uprobes on a Go executable's own code, attached to Go processes only:
/// crypto/tls plaintext, and which goroutine serves which request (from the
/// first TLS request served on).
pub const GO_FUNCTIONS: &[GoFunction] = &[
    GoFunction {
        name: "crypto/tls.(*Conn).Read",
        entry: "go_tls_read_enter",
        ret: Some("go_tls_read_return"),
        when: GoAttach::Discovery,
    },
    GoFunction {
        name: "crypto/tls.(*Conn).Write",
        entry: "go_tls_write_enter",
        ret: None,
        when: GoAttach::Discovery,
    },
    GoFunction {
        name: "runtime.newproc1",
        entry: "go_newproc_enter",
        ret: Some("go_newproc_return"),
        when: GoAttach::FirstServing,
    },
];

/// The programs of [`GO_FUNCTIONS`], each once.
pub fn go_programs() -> BTreeSet<&'static str> {
    GO_FUNCTIONS
        .iter()
        .flat_map(|f| std::iter::once(f.entry).chain(f.ret))
        .collect()
}

/// Where OpenSSL lives in a process: each libssl it maps, or else its own
/// executable (Node.js and others link OpenSSL statically and export its symbols).
fn openssl_objects(pid: Pid) -> BTreeSet<String> {
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).unwrap_or_default();
    let libs: BTreeSet<String> = maps
        .lines()
        .filter_map(|line| line.split_whitespace().nth(5))
        .filter(|path| {
            path.rsplit('/')
                .next()
                .is_some_and(|name| name.starts_with("libssl.so"))
        })
        .map(|path| format!("/proc/{pid}/root{path}"))
        .collect();
    if !libs.is_empty() {
        return libs;
    }
    std::fs::read_link(format!("/proc/{pid}/exe"))
        .map(|exe| BTreeSet::from([format!("/proc/{pid}/root{}", exe.display())]))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_path_has_distinct_programs_and_a_name() {
        let mut seen = BTreeSet::new();
        for path in CapturePath::PREFERENCE {
            assert!(!path.probes().is_empty(), "{path}");
            for probe in path.probes() {
                assert!(seen.insert(probe.program), "{} twice", probe.program);
            }
        }
        assert_eq!(SYSCALL_TRACEPOINTS.len(), 23);
        assert_eq!(SYSCALL_TRACEPOINTS[0].program, "enter_read");
        assert_eq!(
            SYSCALL_TRACEPOINTS[1].attach.to_string(),
            "tracepoint syscalls/sys_exit_read"
        );
    }
}
