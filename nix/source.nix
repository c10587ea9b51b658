# What the agent's build reads, relative to the repository root: the
# workspace manifests, both crates (cargo loads every member), the C probes,
# and docs/configuration.md (the config tests compare the key table with it).
# One list: nix/package.nix makes its source fileset from it, and
# scripts/check-packaging.sh runs `cargo check --tests` on a copy of exactly
# these paths, so a file the build needs but the list lacks fails CI.
[
  "Cargo.toml"
  "Cargo.lock"
  "agent"
  "ebpf"
  "integration-tests"
  "docs/configuration.md"
]
