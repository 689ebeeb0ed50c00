#!/usr/bin/env bash
# Issue 7's bars, quickly (5-10 min per dataset, against 25-40 for bench/planner.sh's full table): on the
# test split, fast_rank (the best single strategy), twistar (holding its default latency target),
# router_random at twistar's plan mix and router_threshold, each with its paired NDCG@10 difference to
# twistar (95% bootstrap interval, p), and twistar's mean latency against always-slow's timed interleaved
# on the same 2,000 requests, 40 turns of 50 (slow loaded for the timing alone; the interval resamples
# the turns).
#
#   bench/planner_bars.sh [dataset ...]    default: amazon2014_beauty amazon2014_sports amazon2014_toys
#
# Needs the trained planner (bench/planner.sh). Writes bench/results/planner_bars_<dataset>.json and its
# block in docs/RESULTS.md. EVAL_ARGS: extra eval options. RENDER_ONLY=1 rewrites the blocks from the JSON.
set -euo pipefail
BENCH_ARGS=("$@")
# shellcheck source=bench/common.sh
source "$(dirname "$0")/common.sh"
bench_datasets datasets amazon2014_beauty amazon2014_sports amazon2014_toys
bench_needs jq

for ds in "${datasets[@]}"; do
  run=runs/bench-fastrec-$ds
  out=bench/results/planner_bars_$ds.json
  if [ -z "${RENDER_ONLY:-}" ]; then
    [ -f "$run/planner/manifest.json" ] || { echo "$run/planner missing: run bench/planner.sh $ds first" >&2; exit 2; }
    # shellcheck disable=SC2086
    "$BIN" --quiet --threads "$THREADS" eval --data "$DATA/$ds" --run "$run" --experiment "planner_bars_$ds" \
      --systems fast_rank,twistar,router_random,router_threshold --split test --throughput-batch 0 \
      --compare-to twistar --latency-pair twistar,slow --latency-requests 2000 ${EVAL_ARGS:-}
    cp "$run/eval/results.json" "$out"
  fi
  md=$(mktemp)
  jq -r 'def f2: (. * 100 | round / 100 | tostring); def f3: (. * 1000 | round / 1000 | tostring);
    def f4: (. * 10000 | round / 10000 | tostring);
    def pct: (. * 1000 | round / 10 | tostring) + "%";
    def f5s: (. * 100000 | round) as $n | ($n | if . < 0 then -. else . end) as $a | ($a % 100000 | tostring) as $f |
      (if $n < 0 then "−" else "+" end) + "\($a / 100000 | floor)." + ("00000"[0:5 - ($f | length)]) + $f;
    .systems as $s | $s.twistar as $t | $t.latency_ratio as $r |
    "\(.dataset) (test split, \(.date), `\(.command)`): twistar holds \($t.latency_target_ms | f2) ms under the cost " +
    "model (β \($t.beta | f4) selected, \($t.beta_mean | f4) served on average). Machine: \(.machine).\n\n" +
    "| bar | value |\n|---|---|\n" +
    (["fast_rank", "router_random", "router_threshold"] | map(. as $k | $s[$k].paired["ndcg@10"] as $p |
      "| twistar − \($k) (NDCG@10 \($s[$k]["ndcg@10"] | f4)\(if $s[$k].slow_rate then ", slow calls \($s[$k].slow_rate | pct)" else "" end)) | " +
      "\(-$p.diff | f5s) (\(-$p.ci[1] | f5s), \(-$p.ci[0] | f5s)), p \(if $p.p == 0 then "below the bootstrap resolution" else ($p.p | f3) end) |\n") | join("")) +
    "| twistar / always-slow, interleaved on \($r.requests) requests in turns of \($r.block) | " +
    "\($r.mean_ms | f2) / \($r.reference_mean_ms | f2) ms = \($r.ratio | f3)x (\($r.ci[0] | f3), \($r.ci[1] | f3))" +
    "\(if $r.turns then ", interval over the \($r.turns) turns" else ", interval over the requests" end) |\n" +
    "| twistar NDCG@10; slow calls (split; timed requests) | \($t["ndcg@10"] | f4); \($t.slow_rate | pct); \($r.slow_rate | pct) |"' \
    "$out" > "$md"
  bench/update_results.sh "planner_bars_$ds" "$md"
  rm -f "$md"
  echo "wrote $out"
done
