#!/usr/bin/env bash
# Baselines benchmark (issue: foundation): trains SASRec and evaluates MostPop, Swing and SASRec on the
# test split of each dataset, full ranking, history items excluded.
#
#   bench/baselines.sh [dataset ...]     default: amazon2014_beauty amazon2014_sports amazon2014_toys
#
# Writes bench/results/baselines_<dataset>.json (committed) and refreshes the matching table in
# docs/RESULTS.md. Extra SASRec options can be passed in SASREC_ARGS; RUNS (runs/bench-baselines)
# prefixes the run directories (RUNS-<dataset>).
set -euo pipefail
BENCH_ARGS=("$@")
# shellcheck source=bench/common.sh
source "$(dirname "$0")/common.sh"
bench_datasets datasets amazon2014_beauty amazon2014_sports amazon2014_toys

for ds in "${datasets[@]}"; do
  run=${RUNS:-runs/bench-baselines}-$ds
  # shellcheck disable=SC2086
  "$BIN" --threads "$THREADS" train sasrec --data "$DATA/$ds" --run "$run" ${SASREC_ARGS:-}
  "$BIN" --threads "$THREADS" eval --data "$DATA/$ds" --run "$run" --experiment "baselines_$ds" \
    --systems mostpop,swing,sasrec --split test
  cp "$run/eval/results.json" "bench/results/baselines_$ds.json"
  bench/update_results.sh "baselines_$ds" "$run/eval/results.md"
done
