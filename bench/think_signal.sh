#!/usr/bin/env bash
# Can a router find whom thinking helps? (issue 7's router bars). On the validation split (the planner's
# own training data; no test target is read), every user's lists from fast_only, fast_rank, slow and
# fast_rank_slow at length 50 (`twistar eval --lists`), then bench/think_signal.py: how each observation
# a router could read before think_and_rec correlates with thinking's per-user gain, and the gain of the
# users a cross-fitted regression on those observations would pick; and what a log-rank fusion of the
# thought's list with the joined ranking adds (fast_rank_slow's lists here are the ranker's order alone,
# --slow-thought-rank-weight 0; the fusion is the script's). About 10-15 min per dataset.
#
#   bench/think_signal.sh [dataset ...]    default: amazon2014_beauty amazon2014_sports amazon2014_toys
#
# Needs the trained tools and knowledge (bench/planner.sh's run directories). Writes
# bench/results/think_signal_<dataset>.md and its block in docs/RESULTS.md. SHARE: the router's
# share of thinking users (default 0.12, twistar's slow rate on test). APPLY=1: also the same lists on
# the test split, and the regression fitted on validation scored once on them, as a router would be
# (another 10-15 min per dataset). REUSE=1: keep lists an earlier run of this script wrote.
set -euo pipefail
BENCH_ARGS=("$@")
# shellcheck source=bench/common.sh
source "$(dirname "$0")/common.sh"
bench_datasets datasets amazon2014_beauty amazon2014_sports amazon2014_toys
bench_needs python3
what="validation split" command="bench/think_signal.sh"
[ -z "${APPLY:-}" ] || { what="$what, applied to the test split"; command="APPLY=1 $command"; }

lists_of() {  # dataset run split file: the four systems' lists (kept with REUSE=1 when the file is there)
  [ -n "${REUSE:-}" ] && [ -f "$4" ] && return
  "$BIN" --quiet --threads "$THREADS" eval --data "$DATA/$1" --run "$2" --experiment "think_signal_$3_$1" \
    --split "$3" --list-length 50 --latency-requests 0 --throughput-batch 0 \
    --systems fast_only,fast_rank,slow,fast_rank_slow --slow-thought-rank-weight 0 --lists "$4"
}

for ds in "${datasets[@]}"; do
  run=runs/bench-fastrec-$ds
  [ -f "$run/knowledge/knowledge.tsv" ] || { echo "$run/knowledge missing: run bench/planner.sh $ds first" >&2; exit 2; }
  lists=$run/eval-valid/lists.jsonl
  lists_of "$ds" "$run" valid "$lists"
  apply=()
  if [ -n "${APPLY:-}" ]; then
    test_lists=$run/eval/lists.jsonl
    lists_of "$ds" "$run" test "$test_lists"
    apply=(--apply "$test_lists")
  fi
  out=bench/results/think_signal_$ds.md
  {
    echo "think_signal_$ds: $what, $(date -u +"%Y-%m-%d %H:%M") UTC, $(nproc) cores, \`$command $ds\`"
    echo
    python3 bench/think_signal.py "$lists" "$run/knowledge/knowledge.tsv" --share "${SHARE:-0.12}" "${apply[@]}"
  } > "$out"
  bench/update_results.sh "think_signal_$ds" "$out"
done
