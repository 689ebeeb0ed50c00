#!/usr/bin/env bash
# Can a router find whom thinking helps? (issue 7's router bars). On the validation split (the planner's
# own training data; no test target is read), every user's lists from fast_only, fast_rank, slow and
# fast_rank_slow at length 50 (`twistar eval --lists`), then bench/think_signal.py: how each observation
# a router could read before think_and_rec correlates with thinking's per-user gain, and the gain of the
# users a cross-fitted regression on those observations would pick. About 10-15 min per dataset.
#
#   bench/think_signal.sh [dataset ...]    default: amazon2014_beauty amazon2014_sports amazon2014_toys
#
# Needs the trained tools and knowledge (bench/planner.sh's run directories). Writes
# bench/results/think_signal_<dataset>.md and its block in docs/RESULTS.md. SHARE: the router's
# share of thinking users (default 0.12, twistar's slow rate on test).
set -euo pipefail
BENCH_ARGS=("$@")
# shellcheck source=bench/common.sh
source "$(dirname "$0")/common.sh"
bench_datasets datasets amazon2014_beauty amazon2014_sports amazon2014_toys
bench_needs python3

for ds in "${datasets[@]}"; do
  run=runs/bench-fastrec-$ds
  [ -f "$run/knowledge/knowledge.tsv" ] || { echo "$run/knowledge missing: run bench/planner.sh $ds first" >&2; exit 2; }
  lists=$run/eval-valid/lists.jsonl
  "$BIN" --quiet --threads "$THREADS" eval --data "$DATA/$ds" --run "$run" --experiment "think_signal_$ds" \
    --split valid --list-length 50 --latency-requests 0 --throughput-batch 0 \
    --systems fast_only,fast_rank,slow,fast_rank_slow --lists "$lists"
  out=bench/results/think_signal_$ds.md
  {
    echo "think_signal_$ds: validation split, $(date -u +"%Y-%m-%d %H:%M") UTC, $(nproc) cores, \`bench/think_signal.sh $ds\`"
    echo
    python3 bench/think_signal.py "$lists" "$run/knowledge/knowledge.tsv" --share "${SHARE:-0.12}"
  } > "$out"
  bench/update_results.sh "think_signal_$ds" "$out"
done
