# Where big downloads and builds are kept, outside any clone of the repository,
# so that a new clone (or CI's fresh one) reuses them. Sourced by the scripts
# that fill it; BEYLA_CACHE and KERNELS_CACHE override the defaults.
BEYLA_CACHE=${BEYLA_CACHE:-${HOME:-/root}/.cache/beyla}
KERNELS_CACHE=${KERNELS_CACHE:-$BEYLA_CACHE/kernels}
