-- wrk script: each request asks the gate about one action (POST
-- /v1/gate/check) with its own account (1,000 of them), target and
-- idempotency key, so nothing is a duplicate. The same bytes go to nginx.
-- Token from KLAXON_TOKEN; KX_BENCH_RUN makes keys unique across runs.
-- Prints one RESULT line in done().
local token = os.getenv("KLAXON_TOKEN") or "none"
local run = os.getenv("KX_BENCH_RUN") or "0"
local threads = {}
local counter = 0
tid = 0
wrk.method = "POST"
wrk.headers["Authorization"] = "Bearer " .. token
wrk.headers["Content-Type"] = "application/json"

setup = function(thread)
  table.insert(threads, thread)
  thread:set("tid", #threads)
end

request = function()
  counter = counter + 1
  local body = string.format(
    '{"labels":{"client":"acme","account":"@a%d","platform":"instagram","lane":"api",' ..
    '"action":"comment","target":"post/%d"},"idempotency_key":"r%s-t%d-%d"}',
    counter % 1000, counter, run, tid, counter)
  return wrk.format("POST", "/v1/gate/check", nil, body)
end

done = function(summary, latency, requests)
  io.write(string.format("RESULT rps=%.1f p50_us=%d p99_us=%d errors=%d non2xx=%d requests=%d\n",
    summary.requests / (summary.duration / 1e6), latency:percentile(50), latency:percentile(99),
    summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.write
      + summary.errors.timeout, summary.errors.status, summary.requests))
end
