#!/usr/bin/env bash
# twistar's latency bar (issue 7: mean latency <= 0.3x always-slow's), timed so that the machine's drift
# cancels: twistar (holding its latency target) is evaluated on the test split as in bench/planner.sh,
# then timed once more against slow (think_and_rec alone, loaded for the timing) on the same requests,
# in turns of 50 requests each, the first turn alternating (`twistar eval --latency-pair twistar,slow`).
# bench/planner.sh does the same inside the full table; this is the quick check (a few minutes per
# dataset: no ranking pass for slow).
#
#   bench/latency_pair.sh [dataset ...]    default: amazon2014_beauty amazon2014_sports amazon2014_toys
#
# Needs the trained planner (bench/planner.sh). Writes bench/results/latency_pair_<dataset>.json and its
# block in docs/RESULTS.md. EVAL_ARGS: extra eval options (e.g. --interleave-block 1).
set -euo pipefail
BENCH_ARGS=("$@")
# shellcheck source=bench/common.sh
source "$(dirname "$0")/common.sh"
bench_datasets datasets amazon2014_beauty amazon2014_sports amazon2014_toys
command -v jq >/dev/null || { echo "bench/latency_pair.sh needs jq" >&2; exit 2; }

for ds in "${datasets[@]}"; do
  run=runs/bench-fastrec-$ds
  out=bench/results/latency_pair_$ds.json
  [ -f "$run/planner/manifest.json" ] || { echo "$run/planner missing: run bench/planner.sh $ds first" >&2; exit 2; }
  # shellcheck disable=SC2086
  "$BIN" --threads "$THREADS" eval --data "$DATA/$ds" --run "$run" --experiment "latency_pair_$ds" \
    --systems twistar --split test --throughput-batch 0 --latency-pair twistar,slow ${EVAL_ARGS:-}
  cp "$run/eval/results.json" "$out"
  md=$(mktemp)
  jq -r 'def f2: (. * 100 | round / 100 | tostring); def f3: (. * 1000 | round / 1000 | tostring);
    def f4: (. * 10000 | round / 10000 | tostring);
    def pct: (. * 1000 | round / 10 | tostring) + "%";
    .systems.twistar as $t | $t.latency_ratio as $r |
    "\(.experiment) on \(.dataset) (test split, \(.date)): twistar (NDCG@10 \($t["ndcg@10"] | f4), " +
    "slow calls \($t.slow_rate | pct) over the split, β \($t.beta | f4) selected, \($t.beta_mean // $t.beta | f4) " +
    "served on average), then twistar and \($r.reference) timed on the same \($r.requests) requests in turns of " +
    "\($r.block // 1), one request at a time on one thread. Machine: \(.machine).\n\n" +
    "| timing | twistar mean ms | \($r.reference) mean ms | twistar / \($r.reference) (95% CI) | twistar slow calls |\n" +
    "|---|---|---|---|---|\n" +
    "| twistar in its own pass | \($t.latency_ms.mean | f2) | - | - | \($t.slow_rate | pct) (the split) |\n" +
    "| interleaved | \($r.mean_ms | f2) | \($r.reference_mean_ms | f2) | " +
    "\($r.ratio | f3) (\($r.ci[0] | f3), \($r.ci[1] | f3)) | \($r.slow_rate | pct) |"' "$out" > "$md"
  bench/update_results.sh "latency_pair_$ds" "$md"
  rm -f "$md"
  echo "wrote $out"
done
