#!/usr/bin/env bash
# Baselines benchmark (issue: foundation): trains SASRec and evaluates MostPop, Swing and SASRec on the
# test split of each dataset, full ranking, history items excluded.
#
#   bench/baselines.sh [dataset ...]     default: amazon2014_beauty amazon2014_sports amazon2014_toys
#
# Writes bench/results/baselines_<dataset>.json (committed) and refreshes the matching table in
# docs/RESULTS.md. Extra SASRec options can be passed in SASREC_ARGS (the training command, with them,
# is recorded as train_command and under the table); RUNS (runs/bench-baselines) prefixes the run
# directories (RUNS-<dataset>).
set -euo pipefail
BENCH_ARGS=("$@")
# shellcheck source=bench/common.sh
source "$(dirname "$0")/common.sh"
bench_datasets datasets amazon2014_beauty amazon2014_sports amazon2014_toys
bench_needs jq

for ds in "${datasets[@]}"; do
  run=${RUNS:-runs/bench-baselines}-$ds
  # shellcheck disable=SC2206
  train=("$BIN" --threads "$THREADS" train sasrec --data "$DATA/$ds" --run "$run" ${SASREC_ARGS:-})
  "${train[@]}"
  "$BIN" --threads "$THREADS" eval --data "$DATA/$ds" --run "$run" --experiment "baselines_$ds" \
    --systems mostpop,swing,sasrec --split test
  # The eval records its own command; the SASRec training (with SASREC_ARGS) is recorded beside it.
  jq --arg c "${train[*]}" '.train_command = $c' "$run/eval/results.json" > "bench/results/baselines_$ds.json"
  md=$(mktemp)
  { cat "$run/eval/results.md"; echo; echo "SASRec trained with: \`${train[*]}\`"; } > "$md"
  bench/update_results.sh "baselines_$ds" "$md"
  rm -f "$md"
done
