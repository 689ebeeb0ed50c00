#!/usr/bin/env bash
# twistar's latency bar (issue 7: mean latency <= 0.3x always-slow's), timed so that the machine's drift
# cancels: twistar (holding its latency target) and slow (think_and_rec alone) are evaluated on the test
# split as in bench/planner.sh, then timed once more on the same requests, each served by both back to
# back, the first of the two alternating (`twistar eval --latency-pair twistar,slow`). bench/planner.sh
# does the same inside the full table; this is the quick check (about a third of its time).
#
#   bench/latency_pair.sh [dataset ...]    default: amazon2014_beauty amazon2014_sports amazon2014_toys
#
# Needs the trained planner (bench/planner.sh). Writes bench/results/latency_pair_<dataset>.json and its
# block in docs/RESULTS.md. EVAL_ARGS: extra eval options.
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
    --systems twistar,slow --split test --throughput-batch 0 --latency-pair twistar,slow ${EVAL_ARGS:-}
  cp "$run/eval/results.json" "$out"
  md=$(mktemp)
  jq -r 'def f2: (. * 100 | round / 100 | tostring); def f3: (. * 1000 | round / 1000 | tostring);
    def f4: (. * 10000 | round / 10000 | tostring);
    def pct: (. * 1000 | round / 10 | tostring) + "%";
    .systems.twistar as $t | .systems.slow as $s | $t.latency_ratio as $r |
    "latency_pair_\(.dataset) on \(.dataset) (test split, \(.date)): twistar (NDCG@10 \($t["ndcg@10"] | f4), " +
    "slow calls \($t.slow_rate | pct) over the split, β \($t.beta | f4) selected, \($t.beta_mean // $t.beta | f4) served on average) " +
    "and slow (NDCG@10 \($s["ndcg@10"] | f4)), one request at a time on one thread. Machine: \(.machine).\n\n" +
    "| timing | twistar mean ms | slow mean ms | twistar / slow (95% CI) | twistar slow calls |\n|---|---|---|---|---|\n" +
    "| each in its own pass (minutes apart) | \($t.latency_ms.mean | f2) | \($s.latency_ms.mean | f2) | " +
    "\($t.latency_ms.mean / $s.latency_ms.mean | f3) | \($t.slow_rate | pct) (the split) |\n" +
    "| interleaved on the same \($r.requests) requests | \($r.mean_ms | f2) | \($r.reference_mean_ms | f2) | " +
    "\($r.ratio | f3) (\($r.ci[0] | f3), \($r.ci[1] | f3)) | \($r.slow_rate | pct) |"' "$out" > "$md"
  bench/update_results.sh "latency_pair_$ds" "$md"
  rm -f "$md"
  echo "wrote $out"
done
