# Sourced by the bench/ scripts: repository root as working directory, data and binary locations,
# thread count, and the dataset list from the arguments (or the script's default). A script sets
# BENCH_ARGS=("$@") before sourcing it, then
#   bench_datasets datasets DEFAULT_DATASET...   the array `datasets`: the arguments, or the defaults
#   bench_needs TOOL...                          stops when a tool the script runs is missing
# One intra-op thread by default: on the 2-core reference VM a second OpenMP thread makes the small
# training steps slower (measured, see docs/RESULTS.md).
cd "$(dirname "${BASH_SOURCE[0]}")/.."
DATA=${DATA:-../shared/data}
BIN=${BIN:-build/twistar}
THREADS=${THREADS:-1}
[ -x "$BIN" ] || { echo "build first: cmake -S . -B build -G Ninja && cmake --build build" >&2; exit 2; }

bench_datasets() {
  local -n _out=$1
  shift
  _out=("${BENCH_ARGS[@]}")
  [ ${#_out[@]} -gt 0 ] || _out=("$@")
}

# bench_needs TOOL...   exits with a message naming the script when a tool it runs is missing
bench_needs() {
  local tool
  for tool in "$@"; do
    command -v "$tool" >/dev/null || { echo "bench/$(basename "$0") needs $tool" >&2; exit 2; }
  done
}
