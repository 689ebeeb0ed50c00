#!/usr/bin/env bash
# Tuning benchmark (issue 9): `twistar tune` with the memory-driven rules (tune), random search
# (random) and TPE (tpe), each with the same search space, trial count and per-trial budget, for
# SASRec on two datasets; then transfer: tuning the second dataset starting from the memory built
# on the first, against starting cold.
#
#   bench/tune.sh [source target]     default: amazon2014_beauty amazon2014_sports
#
# Figure of merit per dataset: "trials needed to reach 98% of the best validation NDCG@10 found by
# any method" (any run on that dataset), per method over the seeds; plus each run's best validation
# NDCG@10 and the selected configuration's test NDCG@10 (read once per run, by `twistar tune`).
#
# Parameters (environment): TRIALS (20), TRIAL_MINUTES (10), TRIAL_EPOCHS (200), TRIAL_PATIENCE
# (3), SEEDS ("1 2 3"), METHODS ("tune random tpe"), MODEL (sasrec), RUNS (runs/bench-tune),
# RESULTS_DIR (bench/results), UPDATE_DOC (1: refresh docs/RESULTS.md), TUNE_ARGS (extra options),
# JOBS (1: tuning runs at once; on 2 cores use JOBS=2 with THREADS=1).
# A full run is TRIALS x (3 methods x seeds x 2 datasets + seeds) trainings: with the defaults,
# 20 x 21 x 10 minutes is days on the 2-core reference machine; shrink TRIALS / TRIAL_MINUTES.
# Runs resume: rerunning continues every unfinished tuning run from its memory and trial log.
# The whole script is one block, read before it runs: editing this file during a (long) run does
# not change what the run executes.
{
set -euo pipefail
BENCH_ARGS=("$@")
# shellcheck source=bench/common.sh
source "$(dirname "$0")/common.sh"
bench_datasets datasets amazon2014_beauty amazon2014_sports
[ ${#datasets[@]} -eq 2 ] || { echo "bench/tune.sh takes two datasets: source target" >&2; exit 2; }
bench_needs jq
TRIALS=${TRIALS:-20}
TRIAL_MINUTES=${TRIAL_MINUTES:-10}
TRIAL_EPOCHS=${TRIAL_EPOCHS:-200}
TRIAL_PATIENCE=${TRIAL_PATIENCE:-3}
SEEDS=${SEEDS:-1 2 3}
METHODS=${METHODS:-tune random tpe}
MODEL=${MODEL:-sasrec}
RUNS=${RUNS:-runs/bench-tune}
RESULTS_DIR=${RESULTS_DIR:-bench/results}
UPDATE_DOC=${UPDATE_DOC:-1}
JOBS=${JOBS:-1}
source_ds=${datasets[0]}
target_ds=${datasets[1]}

tune() {  # dataset method seed memory run (its log: run/tune.log)
  mkdir -p "$5"
  # shellcheck disable=SC2086
  "$BIN" --threads "$THREADS" --quiet tune --model "$MODEL" --data "$DATA/$1" --method "$2" --seed "$3" \
    --memory "$4" --run "$5" --trials "$TRIALS" --trial-minutes "$TRIAL_MINUTES" \
    --trial-epochs "$TRIAL_EPOCHS" --trial-patience "$TRIAL_PATIENCE" ${TUNE_ARGS:-} > "$5/tune.log" 2>&1 || { cat "$5/tune.log" >&2; return 1; }
}

# One line of JSON per run: {system, seed, best_so_far, best_valid, test}.
run_line() {  # system seed report
  jq -c --arg system "$1" --argjson seed "$2" \
    '{system: $system, seed: $seed, best_so_far: .best_so_far, best_valid: .best["valid_ndcg@10"],
      config: .best.config, test: .test, epochs_per_trial: ([.trials[].epochs] | add / length)}' "$3"
}

# Up to JOBS tuning runs at once: a new run starts as soon as any running one ends (a finished run
# that is only resumed ends in seconds). `drain` waits for all of them and fails if any failed.
running=()
launch() {  # tune arguments
  while [ "$(jobs -rp | wc -l)" -ge "$JOBS" ]; do wait -n || true; done
  tune "$@" &
  running+=($!)
}
drain() {
  local rc=0
  for pid in "${running[@]}"; do wait "$pid" || rc=1; done
  running=()
  return $rc
}

for ds in "${datasets[@]}"; do
  for method in $METHODS; do
    for seed in $SEEDS; do
      dir=$RUNS/$ds/$method-s$seed
      launch "$ds" "$method" "$seed" "$dir/memory" "$dir/run"
    done
  done
done
drain
# Transfer: the target tuned from (a copy of) the source's memory of the same seed.
for seed in $SEEDS; do
  dir=$RUNS/transfer-$target_ds-s$seed
  if [ ! -d "$dir/memory" ]; then
    mkdir -p "$dir"
    cp -r "$RUNS/$source_ds/tune-s$seed/memory" "$dir/memory"
  fi
  launch "$target_ds" tune "$seed" "$dir/memory" "$dir/run"
done
drain

summarise() {  # dataset lines-file -> results JSON
  jq -s --arg ds "$1" --arg date "$(date -u +%FT%TZ)" --arg machine "$(uname -m), $(nproc) cores" \
    --argjson trials "$TRIALS" --argjson minutes "$TRIAL_MINUTES" --argjson epochs "$TRIAL_EPOCHS" \
    --arg command "TRIALS=$TRIALS TRIAL_MINUTES=$TRIAL_MINUTES SEEDS=\"$SEEDS\" bench/tune.sh ${datasets[*]}" '
    (map(.best_valid) | max) as $target |
    def reach: [.best_so_far | to_entries[] | select(.value >= 0.98 * $target) | .key + 1] | first;
    def mean: if length == 0 then null else add / length end;
    {experiment: ("tune_" + $ds), dataset: $ds, split: "valid (selection), test (selected config)",
     command: $command, machine: $machine, date: $date, trials: $trials, trial_minutes: $minutes,
     trial_epochs: $epochs, best_valid_any_method: $target,
     systems: (group_by(.system) | map({key: .[0].system, value: {
       runs: map(. + {trials_to_98pct: reach}),
       reached: (map(reach) | map(select(. != null)) | length), seeds: length,
       trials_to_98pct: (map(reach) | map(select(. != null)) | mean),
       "best_valid_ndcg@10": (map(.best_valid) | mean),
       "ndcg@10": (map(.test["ndcg@10"]) | mean), "recall@10": (map(.test["recall@10"]) | mean),
       first_trial_valid: (map(.best_so_far[0]) | mean),
       epochs_per_trial: (map(.epochs_per_trial) | mean)}}) | from_entries)}' "$2"
}

table() {  # results JSON -> Markdown
  jq -r '"tune_\(.dataset): SASRec, \(.trials) trials of at most \(.trial_minutes) min (\(.trial_epochs) epochs) per run; target = 98% of the best validation NDCG@10 any run found (\(.best_valid_any_method * 10000 | round / 10000)).\n",
    "| method | runs reaching the target | trials to reach it (mean) | best valid NDCG@10 (mean) | first trial valid | test NDCG@10 of the selected config | test Recall@10 | epochs per trial |",
    "|---|---|---|---|---|---|---|---|",
    (.systems | to_entries[] | .value as $s |
     "| \(.key) | \($s.reached)/\($s.seeds) | \($s.trials_to_98pct // "-" | if type == "number" then (. * 10 | round / 10) else . end) | " +
     "\($s["best_valid_ndcg@10"] * 10000 | round / 10000) | \($s.first_trial_valid * 10000 | round / 10000) | " +
     "\($s["ndcg@10"] * 10000 | round / 10000) | \($s["recall@10"] * 10000 | round / 10000) | " +
     "\($s.epochs_per_trial * 10 | round / 10) |")' "$1"
}

mkdir -p "$RESULTS_DIR"
for ds in "${datasets[@]}"; do
  lines=$(mktemp)
  for method in $METHODS; do
    for seed in $SEEDS; do
      run_line "$method" "$seed" "$RUNS/$ds/$method-s$seed/run/tune_report.json" >> "$lines"
    done
  done
  if [ "$ds" = "$target_ds" ]; then
    for seed in $SEEDS; do
      run_line "tune+transfer from $source_ds" "$seed" "$RUNS/transfer-$target_ds-s$seed/run/tune_report.json" >> "$lines"
    done
  fi
  out=$RESULTS_DIR/tune_$ds.json
  summarise "$ds" "$lines" > "$out"
  rm -f "$lines"
  md=$(mktemp)
  table "$out" > "$md"
  cat "$md"
  if [ "$UPDATE_DOC" = 1 ]; then bench/update_results.sh "tune_$ds" "$md"; fi
  rm -f "$md"
  echo "wrote $out"
done
exit
}
