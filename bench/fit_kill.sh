#!/usr/bin/env bash
# `twistar fit` killed with SIGKILL in the middle, then run again with the same command, against the
# same fit uninterrupted: the stages' manifests (config, inputs, metrics; not wall times) must match.
#
#   bench/fit_kill.sh DATASET REFERENCE_RUN [KILL_AT_SECONDS ...]
#
# REFERENCE_RUN is a finished `twistar fit --data $DATA/DATASET --run REFERENCE_RUN` (with FIT_ARGS, if
# any). The killed fit runs into REFERENCE_RUN-killed, killed after each KILL_AT_SECONDS of its own
# wall time in turn (default: 120 and 600), then finishes. Writes bench/results/fit_kill_<DATASET>.json.
set -euo pipefail
ds=$1
ref=$2
shift 2
BENCH_ARGS=()
# shellcheck source=bench/common.sh
source "$(dirname "$0")/common.sh"
bench_needs jq
kills=("$@")
[ ${#kills[@]} -gt 0 ] || kills=(120 600)
run=$ref-killed
rm -rf "$run"
# shellcheck disable=SC2206
fit=("$BIN" --threads "$THREADS" fit --data "$DATA/$ds" --run "$run" ${FIT_ARGS:-})
log=$run.log
: > "$log"
for at in "${kills[@]}"; do
  "${fit[@]}" >> "$log" 2>&1 &
  pid=$!
  sleep "$at"
  if kill -9 "$pid" 2>/dev/null; then
    echo "killed after ${at}s during: $(grep '^fit \[' "$log" | tail -1)"
  fi
  wait "$pid" 2>/dev/null || true
done
t0=$(date +%s)
"${fit[@]}" >> "$log" 2>&1
echo "finished $(($(date +%s) - t0)) s after the last kill"

rows=()
same_all=true
# Every stage the killed fit wrote (run/heldout/* included), against the reference's. Wall times and
# every metric named after seconds are left out: they are measurements, not results.
strip='del(.wall_seconds, .created) | (.metrics // {}) |= with_entries(select(.key | contains("seconds") | not))'
for other in "$run"/*/manifest.json "$run"/*/*/manifest.json; do
  [ -f "$other" ] || continue
  rel=${other#"$run"/}
  stage_dir=${rel%/manifest.json}
  m=$ref/$rel
  if [ -f "$m" ] && [ "$(jq -S "$strip" "$m")" = "$(jq -S "$strip" "$other")" ]; then same=true; else same=false; same_all=false; fi
  rows+=("$(jq -nc --arg stage "$stage_dir" --argjson same $same \
    --argjson ref "$( [ -f "$m" ] && jq -c .metrics "$m" || echo null)" --argjson killed "$(jq -c .metrics "$other")" \
    '{stage: $stage, same_manifest: $same, reference_metrics: $ref, killed_metrics: $killed}')")
  echo "$stage_dir: same manifest $same"
done
printf '%s\n' "${rows[@]}" | jq -s --arg ds "$ds" --arg date "$(date -u +%FT%TZ)" --argjson kills "$(printf '%s\n' "${kills[@]}" | jq -s .)" \
  --arg cmd "${fit[*]}" '{dataset: $ds, date: $date, command: $cmd, killed_after_s: $kills, stages: .}' \
  > "bench/results/fit_kill_$ds.json"
$same_all
