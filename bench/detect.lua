-- wrk script for bench/bench_detect.py: alert ingestion. Each request
-- carries KX_DETECT_BATCH alerts in one of three formats (KX_DETECT_KIND):
--   webhook  Alertmanager's webhook notification, payload version "4"
--            (one alert group per request: every alert in it shares the
--            alertname; groupKey, groupLabels, commonLabels as Alertmanager
--            writes them), POSTed to Klaxon's /v1/alerts/alertmanager;
--   v2       Alertmanager API v2 postable alerts (a JSON array, as
--            Prometheus sends them), POSTed to /api/v2/alerts of Klaxon or
--            of Alertmanager itself;
--   ev2      PagerDuty Events v2, one trigger event per request (as
--            PagerDuty clients send), POSTed to /v2/enqueue; dedup_key is
--            the alert's identity.
-- KX_DETECT_REPEAT percent of the alerts are repeats (they fold into an
-- alert already there), spread evenly over the requests; the others are
-- new. The repeated alerts are KX_DETECT_POOL per alertname and per wrk
-- thread, 20 alertnames (BenchRule0..19), so every identity is sent again
-- and again. The same request sequence for every kind: the same alerts.
-- Authorization: Bearer KX_DETECT_KEY (webhook, v2; none when empty);
-- ev2 carries it as routing_key. KX_DETECT_STARTS / KX_DETECT_ENDS are the
-- alerts' startsAt / endsAt (v2; the webhook's endsAt is the zero time,
-- as Alertmanager writes firing alerts). Prints one RESULT line in done().
local kind = os.getenv("KX_DETECT_KIND") or "v2"
local batch = tonumber(os.getenv("KX_DETECT_BATCH") or "1")
local repeat_pct = tonumber(os.getenv("KX_DETECT_REPEAT") or "0")
local pool = tonumber(os.getenv("KX_DETECT_POOL") or "50")
local key = os.getenv("KX_DETECT_KEY") or ""
local path = os.getenv("KX_DETECT_PATH") or "/api/v2/alerts"
local starts = os.getenv("KX_DETECT_STARTS") or "2026-01-01T00:00:00.000Z"
local ends = os.getenv("KX_DETECT_ENDS") or "2026-01-01T01:00:00.000Z"
local run = os.getenv("KX_BENCH_RUN") or "0"
local groups = 20

local threads = {}
tid = 0
local reqno = 0     -- requests built by this thread
local seq = 0       -- alerts built by this thread
local rep = {}      -- per alertname: repeats sent so far

wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
if key ~= "" and kind ~= "ev2" then
  wrk.headers["Authorization"] = "Bearer " .. key
end
if kind == "webhook" then
  wrk.headers["User-Agent"] = "Alertmanager/0.25.0"
end

setup = function(thread)
  table.insert(threads, thread)
  thread:set("tid", #threads)
end

-- Is the seq-th alert (0-based) a repeat? Bresenham: exactly repeat_pct
-- of every 100, evenly spread.
local function is_repeat(j)
  return math.floor((j + 1) * repeat_pct / 100) > math.floor(j * repeat_pct / 100)
end

-- The identity of the next alert in group g: instance label, fingerprint
-- (16 hex digits, stable per label set, as Alertmanager's), severity.
local function next_alert(g)
  local j = seq
  seq = seq + 1
  if is_repeat(j) then
    local n = rep[g] or 0
    rep[g] = n + 1
    local p = n % pool
    return string.format("pool-%d-%d", tid, p), string.format("1%03x%02x%010x", tid % 4096, g, p),
      (p % 5 == 0) and "critical" or "warning"
  end
  return string.format("new-%s-%d-%d", run, tid, j), string.format("2%03x%012x", tid % 4096, j),
    (j % 5 == 0) and "critical" or "warning"
end

local function labels_json(g, inst, sev)
  return string.format(
    '{"alertname":"BenchRule%d","instance":"%s","job":"node","service":"payments","severity":"%s"}',
    g, inst, sev)
end

local function annotations_json(g, inst)
  return string.format(
    '{"description":"Filesystem / on %s has less than 5%% space left (rule %d).",' ..
    '"summary":"Disk almost full on %s"}', inst, g, inst)
end

request = function()
  reqno = reqno + 1
  local g = (reqno + tid) % groups
  if kind == "ev2" then
    local inst, fp, sev = next_alert(g)
    local body = string.format(
      '{"routing_key":"%s","event_action":"trigger","dedup_key":"BenchRule%d/%s",' ..
      '"payload":{"summary":"Disk almost full on %s","source":"%s","severity":"%s",' ..
      '"component":"disk","group":"node","class":"BenchRule%d",' ..
      '"custom_details":{"free":"4%%","rule":"BenchRule%d"}},' ..
      '"client":"bench","client_url":"http://127.0.0.1/bench"}',
      key, g, inst, inst, inst, sev == "critical" and "critical" or "warning", g, g)
    return wrk.format("POST", path, nil, body)
  end
  local parts = {}
  for i = 1, batch do
    local inst, fp, sev = next_alert(g)
    local labels = labels_json(g, inst, sev)
    local ann = annotations_json(g, inst)
    if kind == "webhook" then
      parts[i] = string.format(
        '{"status":"firing","labels":%s,"annotations":%s,"startsAt":"%s",' ..
        '"endsAt":"0001-01-01T00:00:00Z","generatorURL":"http://prometheus.local:9090/graph?g0.expr=disk",' ..
        '"fingerprint":"%s"}', labels, ann, starts, fp)
    else
      parts[i] = string.format(
        '{"annotations":%s,"endsAt":"%s","startsAt":"%s",' ..
        '"generatorURL":"http://prometheus.local:9090/graph?g0.expr=disk","labels":%s}',
        ann, ends, starts, labels)
    end
  end
  local body
  if kind == "webhook" then
    body = string.format(
      '{"receiver":"klaxon","status":"firing","alerts":[%s],' ..
      '"groupLabels":{"alertname":"BenchRule%d"},' ..
      '"commonLabels":{"alertname":"BenchRule%d","job":"node","service":"payments"},' ..
      '"commonAnnotations":{},"externalURL":"http://alertmanager.local:9093","version":"4",' ..
      '"groupKey":"{}:{alertname=\\"BenchRule%d\\"}","truncatedAlerts":0}\n',
      table.concat(parts, ","), g, g, g)
  else
    body = "[" .. table.concat(parts, ",") .. "]"
  end
  return wrk.format("POST", path, nil, body)
end

done = function(summary, latency, requests)
  io.write(string.format("RESULT requests=%d duration_us=%d p50_us=%d p99_us=%d errors=%d non2xx=%d\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    summary.errors.status))
end
