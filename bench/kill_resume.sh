#!/usr/bin/env bash
# Kill -9 and resume: every stage of the chain (each training, `twistar sid`, `twistar knowledge`) is
# killed at a random moment on small synthetic data, then rerun with the same command. Checks that the
# rerun exits 0, that no half-written artifact is left (no temporary file, every JSON artifact parses,
# a manifest for the stage) and compares the stage's manifest metrics with an uninterrupted run's.
#
#   bench/kill_resume.sh            KILLS (default 24) kills, SEED (default 1) for the moments
#
# Writes bench/results/kill_resume.json (one row per kill) and prints a summary line. Needs jq.
set -euo pipefail
BENCH_ARGS=("$@")
# shellcheck source=bench/common.sh
source "$(dirname "$0")/common.sh"
bench_needs jq
KILLS=${KILLS:-24}
RANDOM=${SEED:-1}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

"$BIN" --quiet synth --out "$work/data" --users 600 --items 150 >/dev/null
small=(--bsarec-epochs 8 --codebook-size 16 --rqvae-epochs 60 --sidgen-epochs 6 --vocab-size 800
       --reasoner-epochs 2 --reasoner-layers 1 --planner-sft-epochs 6 --planner-grpo-epochs 3)
stages=(backbone sid sidgen ranker knowledge reasoner planner)
# The stage's manifest directory.
dir_of() { case $1 in backbone) echo bsarec ;; *) echo "$1" ;; esac; }
fit_stage() {  # fit_stage RUN STAGE: runs exactly that stage (the earlier ones are finished)
  "$BIN" --quiet --threads "$THREADS" fit --data "$work/data" --run "$1" --from "$2" --until "$2" "${small[@]}"
}

# The uninterrupted reference, with a snapshot of the run before each stage and each stage's time.
ref=$work/ref
declare -A seconds
for s in "${stages[@]}"; do
  cp -r "$ref" "$work/before-$s" 2>/dev/null || mkdir -p "$work/before-$s"
  t0=$(date +%s.%N)
  fit_stage "$ref" "$s" >/dev/null
  seconds[$s]=$(echo "$(date +%s.%N) - $t0" | bc)
done

rows=()
fails=0
for ((k = 0; k < KILLS; k++)); do
  s=${stages[$((k % ${#stages[@]}))]}
  run=$work/kill-$k
  rm -rf "$run"
  cp -r "$work/before-$s" "$run"
  # A moment in the first 90% of the stage's uninterrupted time.
  delay=$(echo "scale=3; ${seconds[$s]} * ($RANDOM % 900) / 1000" | bc)
  fit_stage "$run" "$s" >/dev/null 2>&1 &
  pid=$!
  sleep "$delay"
  killed=false
  if kill -9 "$pid" 2>/dev/null; then killed=true; fi
  wait "$pid" 2>/dev/null || true
  rc=0
  fit_stage "$run" "$s" >/dev/null 2>"$work/err" || rc=$?
  d=$run/$(dir_of "$s")
  temps=$(find "$run" -name '.*.tmp.*' | wc -l)
  bad_json=0
  while IFS= read -r f; do jq empty "$f" 2>/dev/null || bad_json=$((bad_json + 1)); done < <(find "$run" -name '*.json')
  has_manifest=false
  [ -f "$d/manifest.json" ] && has_manifest=true
  same=false
  if $has_manifest && [ "$(jq -S .metrics "$d/manifest.json")" = "$(jq -S .metrics "$ref/$(dir_of "$s")/manifest.json")" ]; then
    same=true
  fi
  ok=false
  if [ $rc -eq 0 ] && [ "$temps" -eq 0 ] && [ $bad_json -eq 0 ] && $has_manifest; then ok=true; else fails=$((fails + 1)); fi
  rows+=("$(jq -nc --arg stage "$s" --argjson at "$delay" --argjson killed $killed --argjson rc $rc \
    --argjson temps "$temps" --argjson bad_json $bad_json --argjson manifest $has_manifest --argjson same_metrics $same \
    --argjson ok $ok --arg err "$(head -c 300 "$work/err")" \
    '{stage: $stage, killed_after_s: $at, killed: $killed, rerun_rc: $rc, temp_files: $temps, bad_json: $bad_json,
      manifest: $manifest, same_metrics_as_uninterrupted: $same_metrics, ok: $ok, rerun_error: $err}')")
  echo "kill $((k + 1))/$KILLS: $s at ${delay}s -> rerun rc $rc, ok $ok, same metrics $same"
done

mkdir -p bench/results
printf '%s\n' "${rows[@]}" | jq -s --arg date "$(date -u +%FT%TZ)" --arg machine "$(nproc) cores, $(uname -m)" \
  '{date: $date, machine: $machine, kills: length, failed: (map(select(.ok | not)) | length),
    same_metrics: (map(select(.same_metrics_as_uninterrupted)) | length), runs: .}' > bench/results/kill_resume.json
jq -r '"\(.kills) kills: \(.failed) failed, \(.same_metrics) with the uninterrupted run'"'"'s metrics"' bench/results/kill_resume.json
[ $fails -eq 0 ]
