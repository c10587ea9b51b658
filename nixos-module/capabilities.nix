# The capabilities of beyla.service: exactly the agent's own list (PRIVILEGES
# in agent/src/ebpf/preflight.rs, which says why each is needed; the table is
# in docs/running.md). scripts/check-packaging.sh fails when they differ.
[
  "CAP_BPF"
  "CAP_PERFMON"
  "CAP_SYS_PTRACE"
  "CAP_DAC_READ_SEARCH"
  "CAP_SYS_ADMIN"
]
