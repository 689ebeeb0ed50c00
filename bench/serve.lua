-- wrk script for bench/serve.sh: POSTs /v1/recommend with the histories of a file (one JSON request
-- body per line, without "mode"), cycling through them; the mode comes from the command line.
--   wrk ... -s bench/serve.lua http://127.0.0.1:PORT -- BODIES_FILE MODE
-- done() prints one JSON line: requests, rps, latency percentiles (ms), errors by kind.
local bodies = {}
local next_body = 0

function init(args)
  local mode = args[2] or "fast"
  for line in io.lines(args[1]) do
    bodies[#bodies + 1] = '{"mode":"' .. mode .. '",' .. line:sub(2)
  end
  -- Each wrk thread starts at another point of the list.
  next_body = math.random(#bodies) - 1
end

function request()
  next_body = next_body % #bodies + 1
  return wrk.format("POST", "/v1/recommend", {["Content-Type"] = "application/json"}, bodies[next_body])
end

function done(summary, latency, requests)
  local e = summary.errors
  local seconds = summary.duration / 1e6
  io.write(string.format(
    '{"requests":%d,"seconds":%.3f,"requests_per_s":%.1f,"latency_ms":{"mean":%.3f,"p50":%.3f,' ..
    '"p90":%.3f,"p99":%.3f,"max":%.3f},"errors":{"connect":%d,"read":%d,"write":%d,' ..
    '"status":%d,"timeout":%d}}\n',
    summary.requests, seconds, summary.requests / seconds, latency.mean / 1e3,
    latency:percentile(50) / 1e3, latency:percentile(90) / 1e3, latency:percentile(99) / 1e3,
    latency.max / 1e3, e.connect, e.read, e.write, e.status, e.timeout))
end
