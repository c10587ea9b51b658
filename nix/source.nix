# What the agent's build reads, relative to the repository root: the
# workspace manifests, the crates (cargo loads every member), the C probes,
# docs/configuration.md (the config tests compare the key table with it) and
# docs/running.md (the self-metrics test compares the counters with it).
# One list: nix/package.nix makes its source fileset from it, and
# scripts/check-packaging.sh runs `cargo check --tests` on a copy of exactly
# these paths, so a file the build needs but the list lacks fails CI.
[
  "Cargo.toml"
  "Cargo.lock"
  "agent"
  "pipeline"
  "ebpf"
  "integration-tests"
  "docs/configuration.md"
  "docs/running.md"
]
