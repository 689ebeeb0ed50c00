#!/usr/bin/env bash
# Serving load test (issue 8): `twistar serve` on loopback, wrk POSTing the dataset's test histories
# to /v1/recommend, once per mode (fast, auto, and rank / slow when RUN has a ranker / a reasoner;
# auto runs the planner when RUN has one). Reports throughput, p50/p90/p99 latency and errors.
#
#   bench/serve.sh [dataset]            default: amazon2014_beauty
#
# RUN (default runs/bench-fastrec-<dataset>) must hold a trained sid + sidgen stage; when it has no
# items.tsv (made before the sidgen stage wrote it) the dataset is passed with --data.
# Knobs: DURATION (wrk seconds per mode, default 20), CONNECTIONS (default 4), SERVER_THREADS
# (default 4: each keep-alive connection holds a worker), WRK_THREADS (default 1), USERS (distinct
# histories, evenly spaced test users, default 2000), K (default 10), PORT (default 18080).
# Writes bench/results/serve_<dataset>.json and the table in docs/RESULTS.md.
set -euo pipefail
BENCH_ARGS=("$@")
# shellcheck source=bench/common.sh
source "$(dirname "$0")/common.sh"
bench_datasets datasets amazon2014_beauty
ds=${datasets[0]}
bench_needs wrk jq curl
RUN=${RUN:-runs/bench-fastrec-$ds}
DURATION=${DURATION:-20}
CONNECTIONS=${CONNECTIONS:-4}
SERVER_THREADS=${SERVER_THREADS:-4}
WRK_THREADS=${WRK_THREADS:-1}
USERS=${USERS:-2000}
K=${K:-10}
PORT=${PORT:-18080}
[ -f "$RUN/sidgen/manifest.json" ] || { echo "$RUN: no trained sidgen stage (bench/fast_rec.sh)" >&2; exit 2; }
[ -f "$DATA/$ds/sequences.txt" ] || { echo "$DATA/$ds: needs sequences.txt + item_map.tsv" >&2; exit 2; }

work=$(mktemp -d)
server=""
cleanup() {
  [ -n "$server" ] && kill "$server" 2>/dev/null && wait "$server" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

# Test histories (each user's sequence without its last item, last 50 items) as raw ids, for
# USERS evenly spaced users: one request body per line.
awk -v users="$USERS" -v k="$K" '
  FNR == 1 && NR == 1 { next }                      # item_map.tsv header
  NR == FNR { id[$1] = $2; next }
  { line[++n] = $0 }
  END {
    step = n / users; if (step < 1) step = 1
    for (u = 1; u <= n; u += step) {
      m = split(line[int(u)], f, " ") - 1  # f[1] is the user, f[m + 1] the test target
      if (m < 1) continue
      start = m - 49; if (start < 2) start = 2
      s = ""
      for (i = start; i <= m; ++i) s = s (s == "" ? "" : ",") "\"" (f[i] in id ? id[f[i]] : f[i]) "\""
      printf "{\"history\":[%s],\"k\":%d}\n", s, k
    }
  }' "$DATA/$ds/item_map.tsv" "$DATA/$ds/sequences.txt" > "$work/bodies.jsonl"
echo "$(wc -l < "$work/bodies.jsonl") request bodies"

data_args=()
[ -f "$RUN/items.tsv" ] || data_args=(--data "$DATA/$ds")
"$BIN" --quiet serve --run "$RUN" "${data_args[@]}" --port "$PORT" --threads "$SERVER_THREADS" \
  > "$work/server.log" 2>&1 &
server=$!
url=http://127.0.0.1:$PORT
for _ in $(seq 600); do
  curl -sf "$url/healthz" >/dev/null 2>&1 && break
  kill -0 "$server" 2>/dev/null || { cat "$work/server.log" >&2; exit 1; }
  sleep 0.2
done
curl -sf "$url/healthz" >/dev/null || { echo "server not ready" >&2; cat "$work/server.log" >&2; exit 1; }

load=$(cut -d' ' -f1-3 /proc/loadavg)
wrk -t"$WRK_THREADS" -c"$CONNECTIONS" -d3s -s bench/serve.lua "$url" -- "$work/bodies.jsonl" fast \
  > /dev/null  # warm-up
modes=(fast auto)
# Mode rank too when the run has a trained ranker (bench/fast_rank.sh).
[ -f "$RUN/ranker/manifest.json" ] && modes+=(rank)
# Mode slow when it has a reasoner (bench/slow.sh); auto runs the planner when it has one (bench/planner.sh).
[ -f "$RUN/reasoner/manifest.json" ] && modes+=(slow)
for mode in "${modes[@]}"; do
  wrk -t"$WRK_THREADS" -c"$CONNECTIONS" -d"${DURATION}s" -s bench/serve.lua "$url" -- \
    "$work/bodies.jsonl" "$mode" | tee "$work/wrk-$mode.txt"
  tail -n 1 "$work/wrk-$mode.txt" | jq --arg mode "$mode" '. + {mode: $mode}' > "$work/$mode.json"
done
curl -sf "$url/metrics" > "$work/metrics.txt"
kill -TERM "$server"
wait "$server"
server=""

machine="$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f", $2 / 1048576}' /proc/meminfo) GiB RAM"
out=bench/results/serve_$ds.json
command="RUN=$RUN DURATION=$DURATION CONNECTIONS=$CONNECTIONS SERVER_THREADS=$SERVER_THREADS WRK_THREADS=$WRK_THREADS USERS=$USERS K=$K bench/serve.sh $ds"
plans=$(grep '^twistar_plans_total' "$work/metrics.txt" | sed -E 's/.*plan="([^"]*)"} ([0-9]+)/{"\1": \2}/' | jq -s 'add // {}')
jq -n --arg ds "$ds" --arg command "$command" --arg machine "$machine" --arg load "$load" \
  --arg date "$(date -u +%Y-%m-%dT%H:%M:%SZ)" --argjson plans "$plans" \
  --argjson conn "$CONNECTIONS" --argjson threads "$SERVER_THREADS" --argjson k "$K" \
  --argjson systems "$(for m in "${modes[@]}"; do jq -c --arg m "$m" '{($m): .}' "$work/$m.json"; done | jq -s add)" '
  {experiment: "serve_\($ds)", dataset: $ds, split: "test", command: $command, machine: $machine,
   date: $date, load_average_at_start: $load, connections: $conn, server_threads: $threads, k: $k,
   plans_served: $plans, systems: $systems}' > "$out"

md=$(mktemp)
{
  jq -r '"serve_\(.dataset): `twistar serve` on loopback, wrk with \(.connections) connections, " +
    "\(.server_threads) worker threads, k = \(.k) (mode rank: fast_rec(50) then rank_candidates; slow: think_and_rec; auto: the planner when the run has one, plans served: \(.plans_served | tostring)), test histories of \(.dataset); " +
    "\(.date), load average \(.load_average_at_start) at the start."' "$out"
  echo
  echo "| mode | requests/s | mean ms | p50 ms | p90 ms | p99 ms | max ms | requests | errors | bar (>= 200/s, p99 <= 50 ms, 0 errors) |"
  echo "|---|---|---|---|---|---|---|---|---|---|"
  jq -r 'def f2: . * 100 | round / 100 | tostring;
    .systems | to_entries[] | .value as $s |
    ($s.errors | .connect + .read + .write + .status + .timeout) as $err |
    "| \(.key) | \($s.requests_per_s | round) | \($s.latency_ms.mean | f2) | \($s.latency_ms.p50 | f2) | " +
    "\($s.latency_ms.p90 | f2) | \($s.latency_ms.p99 | f2) | \($s.latency_ms.max | f2) | \($s.requests) | " +
    "\($err) | \(if .key != "fast" and .key != "auto" then "- (reported)" elif $s.requests_per_s >= 200 and $s.latency_ms.p99 <= 50 and $err == 0 then "met" else "not met" end) |"' "$out"
} > "$md"
bench/update_results.sh "serve_$ds" "$md"
rm -f "$md"
echo "wrote $out"
