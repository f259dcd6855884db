-- wrk script: each request declares a new incident (POST /v1/incidents).
-- Token from the environment (KLAXON_TOKEN); prints p50/p99 in done().
local token = os.getenv("KLAXON_TOKEN")
local counter = 0
wrk.method = "POST"
wrk.headers["Authorization"] = "Bearer " .. token
wrk.headers["Content-Type"] = "application/json"

request = function()
  counter = counter + 1
  local body = string.format(
    '{"title":"bench incident %d","severity":"P3","types":["QUEUE"],"labels":{"client":"bench","n":"%d"}}',
    counter, counter)
  return wrk.format("POST", "/v1/incidents", nil, body)
end

done = function(summary, latency, requests)
  io.write(string.format("RESULT rps=%.1f p50_us=%d p99_us=%d errors=%d requests=%d\n",
    summary.requests / (summary.duration / 1e6), latency:percentile(50), latency:percentile(99),
    summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.write
      + summary.errors.timeout, summary.requests))
end
