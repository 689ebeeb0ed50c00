#!/usr/bin/env bash
# rank_candidates benchmark (issue 5): fast_rec(50) then the ranker's top k (system fast_rank)
# against fast_rec alone (fast_only), on the test split, full ranking, history items excluded.
#
#   bench/fast_rank.sh [dataset ...]    default: amazon2014_beauty amazon2014_sports amazon2014_toys
#
# Needs runs/bench-fastrec-<dataset> from bench/fast_rec.sh (SASRec, SIDs, SID generator). Per
# dataset, for each ranker kind in KINDS (default "gbdt din"; the last one stays in run/ranker):
#   `twistar train ranker --ranker-kind K` (candidate lists from fast_rec(50) on the last 3
#   training prefixes of every user; cached in run/ranker/lists.pt and shared by the kinds), then
#   `twistar eval --systems fast_only,fast_rank` (fast_only = fast_rec(20), beam 20; latency on one
#   thread at batch 1, with the per-tool breakdown, so rank_candidates' own cost is reported).
# Writes bench/results/fast_rank_<dataset>.json (systems fast_only, fast_rank_<kind>) and the table
# in docs/RESULTS.md. Extra options: RANKER_ARGS.
set -euo pipefail
BENCH_ARGS=("$@")
# shellcheck source=bench/common.sh
source "$(dirname "$0")/common.sh"
bench_datasets datasets amazon2014_beauty amazon2014_sports amazon2014_toys
bench_needs jq
read -r -a kinds <<< "${KINDS:-gbdt din}"

for ds in "${datasets[@]}"; do
  run=runs/bench-fastrec-$ds
  [ -f "$run/sidgen/manifest.json" ] || { echo "$run/sidgen missing: run bench/fast_rec.sh $ds first" >&2; exit 2; }
  parts=()
  for kind in "${kinds[@]}"; do
    # shellcheck disable=SC2086
    "$BIN" --threads "$THREADS" train ranker --data "$DATA/$ds" --run "$run" --ranker-kind "$kind" \
      ${RANKER_ARGS:-}
    "$BIN" --threads "$THREADS" eval --data "$DATA/$ds" --run "$run" --experiment "fast_rank_$ds" \
      --systems fast_only,fast_rank --fast-beam 20 --split test
    cp "$run/eval/results.json" "$run/eval/results-rank-$kind.json"
    parts+=("$run/eval/results-rank-$kind.json")
  done
  out=bench/results/fast_rank_$ds.json
  # One document: fast_only from the first evaluation, fast_rank_<kind> from each.
  jq -s --argjson kinds "$(printf '%s\n' "${kinds[@]}" | jq -R . | jq -s .)" '
    . as $docs | $docs[0] | .systems = ({fast_only: $docs[0].systems.fast_only} +
      ([range(0; $kinds | length)] | map({key: ("fast_rank_" + $kinds[.]), value: $docs[.].systems.fast_rank}) | from_entries))' \
    "${parts[@]}" > "$out"
  md=$(mktemp)
  {
    jq -r '"fast_rank_\(.dataset) on \(.dataset) (test split); fast_only = fast_rec(20), beam 20; " +
      "fast_rank_<kind> = fast_rec(50), beam 50, then rank_candidates(50, 20) with that ranker."' "$out"
    echo
    echo "| system | Recall@5 | Recall@10 | NDCG@5 | NDCG@10 | NDCG@10 / fast_only | mean ms | p50 ms | p99 ms | rank_candidates p50 / p99 ms | train s |"
    echo "|---|---|---|---|---|---|---|---|---|---|---|"
    jq -r 'def f4: if . == null then "-" else (. * 10000 | round / 10000 | tostring) end;
      def f2: if . == null then "-" else (. * 100 | round / 100 | tostring) end;
      def f0: if . == null then "-" else (. | round | tostring) end;
      .systems.fast_only["ndcg@10"] as $base |
      .systems | to_entries[] | .value as $s |
      "| \(.key) | \($s["recall@5"] | f4) | \($s["recall@10"] | f4) | \($s["ndcg@5"] | f4) | " +
      "\($s["ndcg@10"] | f4) | \($s["ndcg@10"] / $base | f2) | \($s.latency_ms.mean | f2) | " +
      "\($s.latency_ms.p50 | f2) | \($s.latency_ms.p99 | f2) | " +
      "\(if $s.tool_latency_ms.rank_candidates then "\($s.tool_latency_ms.rank_candidates.p50 | f2) / \($s.tool_latency_ms.rank_candidates.p99 | f2)" else "-" end) | " +
      "\($s.train_seconds | f0) |"' "$out"
  } > "$md"
  bench/update_results.sh "fast_rank_$ds" "$md"
  rm -f "$md"
  echo "wrote $out"
done
