#!/usr/bin/env bash
# Baselines benchmark: trains the sequential backbones (SASRec and BSARec) and evaluates MostPop,
# Swing and each backbone on the test split of each dataset, full ranking, history items excluded.
#
#   bench/baselines.sh [dataset ...]     default: amazon2014_beauty amazon2014_sports amazon2014_toys
#
# Writes bench/results/baselines_<dataset>.json (committed) and refreshes the matching table in
# docs/RESULTS.md. BACKBONES (default "sasrec bsarec") picks the backbones; extra options can be
# passed in SASREC_ARGS and BSAREC_ARGS (the training commands, with them, are recorded as
# train_command and under the table); RUNS (runs/bench-baselines) prefixes the run directories
# (RUNS-<dataset>).
set -euo pipefail
BENCH_ARGS=("$@")
# shellcheck source=bench/common.sh
source "$(dirname "$0")/common.sh"
bench_datasets datasets amazon2014_beauty amazon2014_sports amazon2014_toys
bench_needs jq

for ds in "${datasets[@]}"; do
  run=${RUNS:-runs/bench-baselines}-$ds
  systems=mostpop,swing
  commands=()
  for b in ${BACKBONES:-sasrec bsarec}; do
    args_var="${b^^}_ARGS"
    # shellcheck disable=SC2206
    train=("$BIN" --threads "$THREADS" train "$b" --data "$DATA/$ds" --run "$run" ${!args_var:-})
    "${train[@]}"
    systems+=",$b"
    commands+=("${train[*]}")
  done
  "$BIN" --threads "$THREADS" eval --data "$DATA/$ds" --run "$run" --experiment "baselines_$ds" \
    --systems "$systems" --split test
  # The eval records its own command; the trainings (with their ARGS) are recorded beside it.
  jq --arg c "$(printf '%s; ' "${commands[@]}")" '.train_command = $c' "$run/eval/results.json" \
    > "bench/results/baselines_$ds.json"
  md=$(mktemp)
  { cat "$run/eval/results.md"; echo; printf 'Trained with: `%s`\n\n' "${commands[@]}"; } > "$md"
  bench/update_results.sh "baselines_$ds" "$md"
  rm -f "$md"
done
