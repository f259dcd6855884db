-- wrk script: POST /v1/audit/events with an NDJSON batch read from the file
-- in KX_BENCH_BODY; every "%R%" in it becomes a per-request value, so that
-- each event's idempotency key is new. Token from KLAXON_TOKEN.
-- Prints one RESULT line in done().
local f = assert(io.open(os.getenv("KX_BENCH_BODY"), "rb"))
local tmpl = f:read("*a")
f:close()
local run = os.getenv("KX_BENCH_RUN") or "0"
local counter = 0
tid = 0
local threads = {}
wrk.method = "POST"
wrk.headers["Authorization"] = "Bearer " .. (os.getenv("KLAXON_TOKEN") or "none")
wrk.headers["Content-Type"] = "application/x-ndjson"

setup = function(thread)
  table.insert(threads, thread)
  thread:set("tid", #threads)
end

request = function()
  counter = counter + 1
  local tag = string.format("%s.%d.%d", run, tid, counter)
  local body = tmpl:gsub("%%R%%", tag)
  return wrk.format("POST", "/v1/audit/events", nil, body)
end

done = function(summary, latency, requests)
  io.write(string.format("RESULT requests=%d duration_us=%d p50_us=%d p99_us=%d errors=%d non2xx=%d\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    summary.errors.status))
end
