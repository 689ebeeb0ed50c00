#!/usr/bin/env bash
# think_and_rec benchmark (issue 6): the slow path against fast_rec on the test split, full ranking,
# history items excluded, and its complementarity (on the users whose target fast_rec(10) misses,
# how many the slow path recovers; the oracle choice between the two).
#
#   bench/slow.sh [dataset ...]    default: amazon2014_beauty amazon2014_sports amazon2014_toys
#
# Needs runs/bench-fastrec-<dataset> from bench/fast_rec.sh (SIDs and the SID generator). Per dataset:
#   `twistar knowledge` (item knowledge, corpus, tokenizer; from training parts only), then for each
#   variant in VARIANTS (default "full nocs norat"):
#     full    `twistar train reasoner` (stages align -> commonsense -> reasoning)
#     nocs    the same without the commonsense stage (--reasoner-no-commonsense)
#     norat   the same without rationales: the SID right after the history (--reasoner-no-rationale)
#   and `twistar eval --systems fast_only,slow` (fast_only = fast_rec(20), beam 20; slow =
#   think_and_rec(20) with its defaults: 4 sampled rationales kept to the grammar, each grounding a
#   SID beam of 50; SLOW_ARGS changes them; latency one request at a time on one thread).
# Writes bench/results/slow_<dataset>.json (systems fast_only, slow, slow_no_commonsense,
# slow_no_rationale as run) and the table in docs/RESULTS.md. Extra options: REASONER_ARGS, SLOW_ARGS.
set -euo pipefail
BENCH_ARGS=("$@")
# shellcheck source=bench/common.sh
source "$(dirname "$0")/common.sh"
bench_datasets datasets amazon2014_beauty amazon2014_sports amazon2014_toys
bench_needs jq
read -r -a variants <<< "${VARIANTS:-full nocs norat}"

for ds in "${datasets[@]}"; do
  run=runs/bench-fastrec-$ds
  [ -f "$run/sidgen/manifest.json" ] || { echo "$run/sidgen missing: run bench/fast_rec.sh $ds first" >&2; exit 2; }
  "$BIN" --threads "$THREADS" knowledge --data "$DATA/$ds" --run "$run"
  parts=()
  names=()
  for v in "${variants[@]}"; do
    case $v in
      full) flags=(); name=reasoner; system=slow ;;
      nocs) flags=(--reasoner-no-commonsense); name=reasoner-nocs; system=slow_no_commonsense ;;
      norat) flags=(--reasoner-no-rationale); name=reasoner-norat; system=slow_no_rationale ;;
      *) echo "unknown variant $v (full, nocs, norat)" >&2; exit 2 ;;
    esac
    # shellcheck disable=SC2086
    "$BIN" --threads "$THREADS" train reasoner --data "$DATA/$ds" --run "$run" --reasoner-name "$name" \
      "${flags[@]}" ${REASONER_ARGS:-}
    # An evaluation newer than its reasoner is reused (variants may be trained by parallel runs).
    # The cache is keyed by SLOW_ARGS, so other search settings are evaluated afresh.
    cache=$run/eval/results-slow-$v-$(printf '%s' "${SLOW_ARGS:-}" | md5sum | cut -c1-8).json
    if [ ! "$cache" -nt "$run/$name/manifest.json" ]; then
      # shellcheck disable=SC2086
      "$BIN" --threads "$THREADS" eval --data "$DATA/$ds" --run "$run" --experiment "slow_$ds" \
        --systems fast_only,slow --fast-beam 20 --reasoner-name "$name" --split test --throughput-batch 0 \
        ${SLOW_ARGS:-}
      cp "$run/eval/results.json" "$cache"
    fi
    parts+=("$cache")
    names+=("$system")
  done
  out=bench/results/slow_$ds.json
  # One document: fast_only from the first evaluation, each variant's slow under its system name.
  jq -s --argjson names "$(printf '%s\n' "${names[@]}" | jq -R . | jq -s .)" '
    . as $docs | $docs[0] | .systems = ({fast_only: $docs[0].systems.fast_only} +
      ([range(0; $names | length)] | map({key: $names[.], value: $docs[.].systems.slow}) | from_entries))' \
    "${parts[@]}" > "$out"
  md=$(mktemp)
  {
    jq -r '.systems.slow as $s | "slow_\(.dataset) on \(.dataset) (test split, \(.date)); fast_only = fast_rec(20), beam 20; " +
      "slow* = think_and_rec(20): \(if ($s.samples // 1) > 1 then "\($s.samples) sampled rationales" else "a greedy rationale" end)" +
      "\(if $s.grammar then " kept to the grammar" else "" end), then SID beam \($s.beam)" +
      "\(if $s.propose then " plus up to \($s.propose) candidates the rationale proposes" else "" end)" +
      "\(if $s.grounding then ", re-scored by grounding (category \($s.grounding.category), brand \($s.grounding.brand), link \($s.grounding.link))" else "" end)" +
      " (the rationale options do not apply to slow_no_rationale). Latency: one request at a time, one thread."' "$out"
    echo
    echo "| system | Recall@5 | Recall@10 | NDCG@5 | NDCG@10 | NDCG@10 / fast_only | mean ms | p50 ms | p99 ms | train s | oracle Recall@10 / fast | recovered share of fast misses |"
    echo "|---|---|---|---|---|---|---|---|---|---|---|---|"
    jq -r 'def f4: if . == null then "-" else (. * 10000 | round / 10000 | tostring) end;
      def f2: if . == null then "-" else (. * 100 | round / 100 | tostring) end;
      def f0: if . == null then "-" else (. | round | tostring) end;
      .systems.fast_only["ndcg@10"] as $base |
      .systems | to_entries[] | .value as $s |
      "| \(.key) | \($s["recall@5"] | f4) | \($s["recall@10"] | f4) | \($s["ndcg@5"] | f4) | " +
      "\($s["ndcg@10"] | f4) | \($s["ndcg@10"] / $base | f2) | \($s.latency_ms.mean | f2) | " +
      "\($s.latency_ms.p50 | f2) | \($s.latency_ms.p99 | f2) | \($s.train_seconds | f0) | " +
      "\($s.complementarity["oracle_over_fast_recall@10"] | f2) | " +
      "\($s.complementarity.recovered_share_of_fast_misses | f4) |"' "$out"
  } > "$md"
  bench/update_results.sh "slow_$ds" "$md"
  rm -f "$md"
  echo "wrote $out"
done
