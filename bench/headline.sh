#!/usr/bin/env bash
# The headline benchmark: every stage trained (or reused) by `twistar fit`, SASRec beside the BSARec
# backbone, then one evaluation on the test split of every system the headline table shows, compared
# to twistar, with twistar's latency against slow's timed interleaved on the same requests.
#
#   bench/headline.sh [dataset ...]   default: amazon2014_beauty amazon2014_sports amazon2014_toys
#                                     amazon2018_scientific
#
# Writes bench/results/headline_<dataset>.json (twistar eval's results.json: systems keyed by mostpop,
# swing, sasrec, bsarec, fast_only, fast_rank, slow, fast_rank_slow, twistar, router_random,
# router_threshold, oracle) and refreshes its table in docs/RESULTS.md. RUNS (runs/headline) prefixes
# the run directories (RUNS-<dataset>); FIT_ARGS are extra `twistar fit` options (recorded).
set -euo pipefail
BENCH_ARGS=("$@")
# shellcheck source=bench/common.sh
source "$(dirname "$0")/common.sh"
bench_datasets datasets amazon2014_beauty amazon2014_sports amazon2014_toys amazon2018_scientific
bench_needs jq
systems=mostpop,swing,sasrec,bsarec,fast_only,fast_rank,slow,fast_rank_slow,twistar,router_random,router_threshold,oracle

for ds in "${datasets[@]}"; do
  run=${RUNS:-runs/headline}-$ds
  # shellcheck disable=SC2086
  "$BIN" --threads "$THREADS" fit --data "$DATA/$ds" --run "$run" --until planner ${FIT_ARGS:-}
  # SASRec is a baseline row (the chain reads BSARec): trained with its own defaults.
  "$BIN" --threads "$THREADS" train sasrec --data "$DATA/$ds" --run "$run"
  # shellcheck disable=SC2086
  "$BIN" --threads "$THREADS" fit --data "$DATA/$ds" --run "$run" --from eval --systems "$systems" ${FIT_ARGS:-}
  jq --arg fit "${FIT_ARGS:-}" '.experiment = "headline_\(.dataset)" | .fit_args = $fit' "$run/eval/results.json" \
    > "bench/results/headline_$ds.json"
  md=$(mktemp)
  { cat "$run/eval/results.md"; echo; printf 'Made by `bench/headline.sh %s`%s.\n' "$ds" \
      "${FIT_ARGS:+ with FIT_ARGS=\"$FIT_ARGS\"}"; } > "$md"
  bench/update_results.sh "headline_$ds" "$md"
  rm -f "$md"
done
