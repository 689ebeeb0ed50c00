# Sourced by the bench/ scripts: repository root as working directory, data and binary locations,
# thread count, and the dataset list from the arguments (or the script's default).
#   bench_setup DEFAULT_DATASET...   sets DATA, BIN, THREADS and the array `datasets`
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
