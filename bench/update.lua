-- wrk script: each request changes one of the incidents named in
-- KX_BENCH_IDS (comma-separated): a timeline note, or an impact update
-- every other request. Prints p50/p99 in done().
local token = os.getenv("KLAXON_TOKEN")
local ids = {}
for id in string.gmatch(os.getenv("KX_BENCH_IDS") or "", "[^,]+") do ids[#ids + 1] = id end
local counter = 0
wrk.headers["Authorization"] = "Bearer " .. token
wrk.headers["Content-Type"] = "application/json"

request = function()
  counter = counter + 1
  local id = ids[(counter % #ids) + 1]
  if counter % 2 == 0 then
    return wrk.format("POST", "/v1/incidents/" .. id .. "/timeline", nil,
      string.format('{"text":"bench note %d"}', counter))
  end
  return wrk.format("POST", "/v1/incidents/" .. id .. "/impact", nil,
    string.format('{"users":%d}', counter))
end

done = function(summary, latency, requests)
  io.write(string.format("RESULT rps=%.1f p50_us=%d p99_us=%d errors=%d requests=%d\n",
    summary.requests / (summary.duration / 1e6), latency:percentile(50), latency:percentile(99),
    summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.write
      + summary.errors.timeout, summary.requests))
end
