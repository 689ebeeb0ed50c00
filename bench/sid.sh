#!/usr/bin/env bash
# Semantic-ID benchmark (issue 3): runs `twistar sid` with several embedding / tokenizer
# configurations on each dataset and compares their reports (collision rate before the extra level,
# level-1 utilisation and perplexity, largest collision group, semantic coherence, time).
#
#   bench/sid.sh [dataset ...]     default: amazon2014_beauty
#
# Hybrid configurations need a trained SASRec: when runs/bench-baselines-<dataset>/sasrec holds one
# (bench/baselines.sh), it is copied into each run directory runs/sid-<dataset>-<configuration>
# (the baseline run is never written to). Writes
# bench/results/sid_<dataset>.json (every configuration's report) and refreshes the matching table
# in docs/RESULTS.md. Extra `twistar sid` options for every configuration can go in SID_ARGS.
set -euo pipefail
BENCH_ARGS=("$@")
# shellcheck source=bench/common.sh
source "$(dirname "$0")/common.sh"
bench_datasets datasets amazon2014_beauty
bench_needs jq

# name|options: one configuration per line.
configs_for() {
  local hybrid=$1
  echo "content-rkmeans-3x256|--embedding content --tokenizer rkmeans"
  echo "content-rqvae-3x256|--embedding content --tokenizer rqvae"
  echo "content-rqvae-3x256-unique|--embedding content --tokenizer rqvae --unique-last-level"
  if [ "$hybrid" = 1 ]; then
    echo "hybrid-rkmeans-3x256|--embedding hybrid --tokenizer rkmeans"
    echo "hybrid-rkmeans-3x256-norm|--embedding hybrid --tokenizer rkmeans" \
      "--rkmeans-normalize-residuals"
    echo "hybrid-rqvae-3x256|--embedding hybrid --tokenizer rqvae"
    echo "hybrid-rqvae-3x256-unique|--embedding hybrid --tokenizer rqvae --unique-last-level"
    echo "hybrid-rqvae-4x256|--embedding hybrid --tokenizer rqvae --levels 4"
  fi
}

# One Markdown row per configuration from the combined results file.
table() {
  echo "sid_$1 on $1 ($(jq -r '.configurations[0].report.num_items' "$2") items, 3 x 256 unless"
  echo "named). collisions: items sharing all L codes, before the extra level; argmin: the same for"
  echo "plain nearest codes when the RQ-VAE's last-level matching (-unique) is on."
  echo
  echo "| configuration | emb. d | collisions | argmin | largest group | SID levels | L1 used |" \
    "L1 perplexity | coherence | seconds |"
  echo "|---|---|---|---|---|---|---|---|---|---|"
  jq -r 'def pct: . * 10000 | round / 100 | tostring + "%";
    def r2: . * 100 | round / 100;
    .configurations[] | .report as $r |
    "| \(.name) | \($r.embedding_dim) | \($r.collision_rate | pct) | " +
    "\(if $r.collision_rate_argmin then ($r.collision_rate_argmin | pct) else "-" end) | " +
    "\($r.largest_collision_group) | \($r.sid_levels) | " +
    "\($r.per_level[0].used_codes)/\($r.per_level[0].codebook_size) | " +
    "\($r.per_level[0].perplexity * 10 | round / 10) | \($r.coherence.ratio | r2) | " +
    "\($r.seconds | round) |"' "$2"
}

for ds in "${datasets[@]}"; do
  baseline=runs/bench-baselines-$ds
  hybrid=0
  [ -f "$baseline/sasrec/manifest.json" ] && [ -f "$baseline/sasrec/model.pt" ] && hybrid=1
  [ "$hybrid" = 1 ] ||
    echo "note: no trained SASRec in $baseline; skipping the hybrid configurations" >&2
  reports=()
  while IFS='|' read -r name opts; do
    run=runs/sid-$ds-$name
    mkdir -p "$run"
    if [ "$hybrid" = 1 ] && [[ $opts == *hybrid* ]]; then
      rm -rf "$run/sasrec" && cp -r "$baseline/sasrec" "$run/sasrec"
    fi
    # shellcheck disable=SC2086
    "$BIN" --threads "$THREADS" sid --data "$DATA/$ds" --run "$run" $opts ${SID_ARGS:-}
    reports+=("$(jq -c --arg name "$name" --arg opts "$opts" \
      '{name: $name, options: $opts, report: .}' "$run/sid/report.json")")
  done < <(configs_for "$hybrid")
  out=bench/results/sid_$ds.json
  printf '%s\n' "${reports[@]}" | jq -s --arg ds "$ds" --arg date "$(date -u +%FT%TZ)" \
    --arg machine "$(uname -m), $(nproc) cores" --arg threads "$THREADS" \
    '{experiment: ("sid_" + $ds), dataset: $ds, date: $date, machine: $machine,
      threads: ($threads | tonumber), command: "bench/sid.sh", configurations: .}' > "$out"
  md=$(mktemp)
  table "$ds" "$out" > "$md"
  bench/update_results.sh "sid_$ds" "$md"
  rm -f "$md"
  echo "wrote $out"
done
