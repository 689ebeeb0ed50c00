#!/usr/bin/env bash
# fast_rec benchmark (issue 4): semantic IDs -> SID generator -> trie-constrained beam search, on the
# test split beside the baselines, full ranking, history items excluded.
#
#   bench/fast_rec.sh [dataset ...]     default: amazon2014_beauty amazon2014_sports amazon2014_toys
#
# Per dataset, in runs/bench-fastrec-<dataset>:
#   1. SASRec (copied from runs/bench-baselines-<dataset> when bench/baselines.sh trained one,
#      otherwise trained here) for the hybrid item embeddings;
#   2. `twistar sid`: hybrid embeddings, RQ-VAE 3 x 256 with the collision-free last level;
#   3. `twistar train sidgen` (time budget SIDGEN_MINUTES, default 40);
#   4. `twistar eval` of mostpop, swing, sasrec and fast_only (fast_rec(20), beam 20; latency on one
#      thread at batch 1; throughput in batches of 64 over 2 request threads);
#   5. the latency of fast_rec(50) with beam 50 (fast_only at list length 50).
# Writes bench/results/fast_rec_<dataset>.json (step 4, plus step 5 as "fast_only@50") and the
# table in docs/RESULTS.md. Extra options: SASREC_ARGS, SID_ARGS, SIDGEN_ARGS.
set -euo pipefail
BENCH_ARGS=("$@")
# shellcheck source=bench/common.sh
source "$(dirname "$0")/common.sh"
bench_datasets datasets amazon2014_beauty amazon2014_sports amazon2014_toys
bench_needs jq
SIDGEN_MINUTES=${SIDGEN_MINUTES:-40}

for ds in "${datasets[@]}"; do
  run=runs/bench-fastrec-$ds
  mkdir -p "$run"
  baseline=runs/bench-baselines-$ds/sasrec
  if [ ! -f "$run/sasrec/manifest.json" ] && [ -f "$baseline/manifest.json" ]; then
    cp -r "$baseline" "$run/sasrec"
  fi
  # shellcheck disable=SC2086
  "$BIN" --threads "$THREADS" train sasrec --data "$DATA/$ds" --run "$run" \
    --sasrec-max-minutes 14 ${SASREC_ARGS:-}
  # shellcheck disable=SC2086
  "$BIN" --threads "$THREADS" sid --data "$DATA/$ds" --run "$run" --embedding hybrid \
    --tokenizer rqvae --unique-last-level ${SID_ARGS:-}
  # shellcheck disable=SC2086
  "$BIN" --threads "$THREADS" train sidgen --data "$DATA/$ds" --run "$run" \
    --sidgen-max-minutes "$SIDGEN_MINUTES" ${SIDGEN_ARGS:-}
  "$BIN" --threads "$THREADS" eval --data "$DATA/$ds" --run "$run" --experiment "fast_rec_$ds" \
    --systems mostpop,swing,sasrec,fast_only --fast-beam 20 --split test
  cp "$run/eval/results.json" "$run/eval/results-k20.json"
  "$BIN" --threads "$THREADS" eval --data "$DATA/$ds" --run "$run" --experiment "fast_rec50_$ds" \
    --systems fast_only --list-length 50 --fast-beam 50 --split test
  out=bench/results/fast_rec_$ds.json
  jq -s '.[0].systems["fast_only@50"] = .[1].systems.fast_only | .[0]' \
    "$run/eval/results-k20.json" "$run/eval/results.json" > "$out"
  md=$(mktemp)
  {
    jq -r '"fast_rec_\(.dataset) on \(.dataset) (test split); fast_only = fast_rec(20) with beam 20,"' "$out"
    echo "fast_only@50 = fast_rec(50) with beam 50 (its latency is the issue's fast_rec(50) figure)."
    echo
    echo "| system | Recall@5 | Recall@10 | NDCG@5 | NDCG@10 | HR@1 | mean ms | p50 ms | p99 ms | users/s | train s |"
    echo "|---|---|---|---|---|---|---|---|---|---|---|"
    jq -r 'def f4: if . == null then "-" else (. * 10000 | round / 10000 | tostring) end;
      def f2: if . == null then "-" else (. * 100 | round / 100 | tostring) end;
      def f0: if . == null then "-" else (. | round | tostring) end;
      .systems | to_entries[] | .value as $s |
      "| \(.key) | \($s["recall@5"] | f4) | \($s["recall@10"] | f4) | \($s["ndcg@5"] | f4) | " +
      "\($s["ndcg@10"] | f4) | \($s["recall@1"] | f4) | \($s.latency_ms.mean | f2) | " +
      "\($s.latency_ms.p50 | f2) | \($s.latency_ms.p99 | f2) | \($s.throughput_users_per_s | f0) | " +
      "\($s.train_seconds | f0) |"' "$out"
  } > "$md"
  bench/update_results.sh "fast_rec_$ds" "$md"
  rm -f "$md"
  echo "wrote $out"
done
