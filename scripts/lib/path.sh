# The toolchains' usual homes, added to PATH when they are not on it already:
# rustup's cargo, the Go tarball's go, and where scripts/deps.sh installs
# binaries (cargo install: ~/.cargo/bin; go install: /usr/local/bin).
# Sourced by scripts/setup.sh and scripts/deps.sh.
for dir in "${HOME:-/root}/.cargo/bin" /usr/local/go/bin /usr/local/bin; do
  case ":$PATH:" in *":$dir:"*) ;; *) [ -d "$dir" ] && PATH="$PATH:$dir" ;; esac
done
export PATH
