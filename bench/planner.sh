#!/usr/bin/env bash
# The planner benchmark (issue 7): the full evaluation table on the test split, full ranking, history
# items excluded, and the accuracy/latency curve of the β sweep as a PNG.
#
#   bench/planner.sh [dataset ...]    default: amazon2014_beauty amazon2014_sports amazon2014_toys
#
# Needs runs/bench-fastrec-<dataset> with sasrec, sidgen, ranker (bench/fast_rank.sh) and the reasoner
# (bench/slow.sh). Per dataset:
#   `twistar train planner` (validation episodes of the three tools, warm-up, GRPO; reused when done)
#   `twistar eval` with mostpop, swing, sasrec, fast_only, fast_rank, twistar (holding its latency target,
#   and its β sweep at fixed β),
#   router_random (at twistar's plan mix), router_threshold, twistar_sft, slow, fast_rank_slow and oracle; latency one
#   request at a time on one thread (slow is evaluated last, after the systems that share its tools); then
#   twistar and slow are timed once more interleaved on the same requests (--latency-pair twistar,slow).
# Writes bench/results/planner_<dataset>.json, docs/img/planner_<dataset>.png (gnuplot) and the table
# in docs/RESULTS.md. Extra options: PLANNER_ARGS (train), EVAL_ARGS (eval), SWEEP (β list).
# RENDER_ONLY=1 skips training and evaluation and redraws the plot and the table from an existing
# bench/results/planner_<dataset>.json (after a change to how they are drawn).
set -euo pipefail
BENCH_ARGS=("$@")
# shellcheck source=bench/common.sh
source "$(dirname "$0")/common.sh"
bench_datasets datasets amazon2014_beauty amazon2014_sports amazon2014_toys
bench_needs jq gnuplot
SWEEP=${SWEEP:-0,0.01,0.02,0.04,0.1,5}
mkdir -p docs/img

for ds in "${datasets[@]}"; do
  run=runs/bench-fastrec-$ds
  out=bench/results/planner_$ds.json
  if [ -n "${RENDER_ONLY:-}" ]; then
    [ -f "$out" ] || { echo "$out missing: run bench/planner.sh $ds first" >&2; exit 2; }
  else
    for stage in sasrec sidgen ranker reasoner; do
      [ -f "$run/$stage/manifest.json" ] || { echo "$run/$stage missing: run bench/fast_rank.sh and bench/slow.sh $ds first" >&2; exit 2; }
    done
    # shellcheck disable=SC2086
    "$BIN" --threads "$THREADS" train planner --data "$DATA/$ds" --run "$run" ${PLANNER_ARGS:-}
    # shellcheck disable=SC2086
    "$BIN" --threads "$THREADS" eval --data "$DATA/$ds" --run "$run" --experiment "planner_$ds" \
      --systems mostpop,swing,sasrec,fast_only,fast_rank,twistar,router_random,router_threshold,twistar_sft,slow,fast_rank_slow,oracle \
      --fast-beam 20 --split test --throughput-batch 0 --planner-sweep "$SWEEP" --compare-to twistar \
      --latency-pair twistar,slow ${EVAL_ARGS:-}
    cp "$run/eval/results.json" "$out"
  fi

  # The curve: twistar at each β of the sweep, and the fixed strategies as points.
  dat=$(mktemp)
  pts=$(mktemp)
  jq -r '.systems.twistar.beta_sweep[] | "\(.latency_ms.mean) \(.["ndcg@10"]) \(.beta)"' "$out" > "$dat"
  jq -r '.systems | to_entries[] | select(.key | IN("fast_only","fast_rank","slow","fast_rank_slow","router_random","router_threshold","twistar_sft","oracle")) |
    "\(.value.latency_ms.mean) \(.value["ndcg@10"]) \(.key)"' "$out" > "$pts"
  gnuplot <<EOF
set terminal pngcairo size 900,560 noenhanced
set output "docs/img/planner_$ds.png"
set title "planner_$ds (test): NDCG@10 against mean latency per request (one thread)"
set xlabel "mean latency (ms, log scale)"
set ylabel "NDCG@10"
set logscale x
set key bottom right
set grid
plot "$dat" using 1:2 with linespoints lw 2 pt 7 title "twistar, β sweep", \
     "$dat" using 1:2:(sprintf("β=%g", \$3)) with labels offset 0,1 notitle, \
     "$pts" using 1:2 with points pt 5 ps 1.3 title "fixed strategies and routers", \
     "$pts" using 1:2:3 with labels offset 0,-1 notitle
EOF
  rm -f "$dat" "$pts"

  md=$(mktemp)
  {
    jq -r '"planner_\(.dataset) on \(.dataset) (test split, \(.date)); fast_only = fast_rec(20), beam 20; " +
      "fast_rank = fast_rec(50) + rank_candidates(50, 20); slow = think_and_rec(20); fast_rank_slow = fast_rank, then " +
      "think_and_rec(20) over its ranking (its best 50 join the 50 fast_rec candidates, the ranker orders them all); twistar starts " +
      "at the β selected on validation (\(.systems.twistar.beta)) and moves it to hold a mean cost of " +
      "\(.systems.twistar.latency_target_ms // 0 | . * 100 | round / 100) ms under the cost model (mean β served " +
      "\(.systems.twistar.beta_mean // .systems.twistar.beta | . * 10000 | round / 10000)). Latency: one request at a time, one thread; " +
      "oracle: each user'"'"'s chosen plan'"'"'s mean." +
      (.systems.twistar.latency_ratio as $r | if $r == null then "" else " Timed interleaved with slow on the same " +
        "\($r.requests) requests (in turns of \($r.block // 1), each system first in every other turn): \($r.mean_ms * 100 | round / 100) / " +
        "\($r.reference_mean_ms * 100 | round / 100) ms = \($r.ratio * 1000 | round / 1000)x (95% CI " +
        "\($r.ci[0] * 1000 | round / 1000)-\($r.ci[1] * 1000 | round / 1000) over the \(if $r.turns then "\($r.turns) turns" else "requests" end)); twistar thought for " +
        "\($r.slow_rate * 1000 | round / 10)% of them." end)' "$out"
    echo
    echo "| system | Recall@5 | Recall@10 | NDCG@5 | NDCG@10 | NDCG@10 − twistar (95% CI) | mean ms | p50 ms | p99 ms | slow calls | plans |"
    echo "|---|---|---|---|---|---|---|---|---|---|---|"
    jq -r 'def f4: if . == null then "-" else (. * 10000 | round / 10000 | tostring) end;
      def f5s: (. * 100000 | round) as $n | ($n | if . < 0 then -. else . end) as $a | ($a % 100000 | tostring) as $f |
        (if $n < 0 then "−" else "+" end) + "\($a / 100000 | floor)." + ("00000"[0:5 - ($f | length)]) + $f;
      def f2: if . == null then "-" else (. * 100 | round / 100 | tostring) end;
      def pct: if . == null then "-" else ((. * 1000 | round / 10 | tostring) + "%") end;
      def paired: if . == null then "-" else
        "\(.diff | f5s) (\(.ci[0] | f5s), \(.ci[1] | f5s))" end;
      def plans: if . == null then "-" else (to_entries | map(select(.value > 0.0005)) |
        map("\(.key) \(.value | pct)") | join(", ")) end;
      .systems as $s |
      ["mostpop","swing","sasrec","fast_only","fast_rank","slow","fast_rank_slow","router_random","router_threshold","twistar_sft","twistar","oracle"][] |
      select($s[.] != null) | . as $k | $s[$k] as $x |
      "| \($k) | \($x["recall@5"] | f4) | \($x["recall@10"] | f4) | \($x["ndcg@5"] | f4) | \($x["ndcg@10"] | f4) | " +
      "\(if $k == "twistar" then "(reference)" else ($x.paired["ndcg@10"] | paired) end) | " +
      "\($x.latency_ms.mean | f2) | \($x.latency_ms.p50 | f2) | \($x.latency_ms.p99 | f2) | " +
      "\(if $k == "slow" or $k == "fast_rank_slow" then 1 else $x.slow_rate end | pct) | \($x.plan_shares | plans) |"' "$out"
    echo
    echo "twistar's β sweep (β in NDCG@10 per second of latency):"
    echo
    echo "| β | NDCG@10 | Recall@10 | mean ms | p99 ms | slow calls |"
    echo "|---|---|---|---|---|---|"
    jq -r 'def f4: (. * 10000 | round / 10000 | tostring); def f2: (. * 100 | round / 100 | tostring);
      .systems.twistar.beta_sweep[] |
      "| \(.beta) | \(.["ndcg@10"] | f4) | \(.["recall@10"] | f4) | \(.latency_ms.mean | f2) | \(.latency_ms.p99 | f2) | \(.slow_rate * 1000 | round / 10)% |"' "$out"
    echo
    jq -r 'def pct: (. * 1000 | round / 10 | tostring) + "%"; def f3: (if . >= 0 then "+" else "" end) + (. * 1000 | round / 1000 | tostring);
      .think_signal | "Think signal (\(.users) validation users): thinking after ranking raises NDCG@10 for " +
      "\(.raised | pct) of them and lowers it for \(.lowered | pct) (mean gain \(.mean_gain * 100000 | round / 100000)). " +
      "Its correlation with each observation a router has before the call: " +
      (.correlation | to_entries | map("\(.key) \(.value | f3)") | join(", ")) +
      "; noise level ±\(.noise * 1000 | round / 1000) (2/√n)."' "$run/planner/planner.json"
    echo
    echo "![planner_$ds](img/planner_$ds.png)"
  } > "$md"
  bench/update_results.sh "planner_$ds" "$md"
  rm -f "$md"
  echo "wrote $out and docs/img/planner_$ds.png"
done
