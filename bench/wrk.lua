-- wrk script of `make bench` (bench/bench.py runs it on every listener).
--
--   BENCH_TOKEN=<jwt>        scenario 1: every request carries this token
--                            (a static request: wrk formats it once)
--   BENCH_TOKENS=<file>      scenario 2: one token a line; requests cycle
--                            through them in order, so with more tokens than
--                            cache entries an LRU or CLOCK cache never hits
--   BENCH_PATH (default /api/v1/order)
--
-- The requests are formatted once in init(), so the per-request Lua cost is
-- a table lookup. done() prints one line `BENCH_JSON {...}` with the counts
-- and latency percentiles (microseconds) for bench.py to parse.

local path = os.getenv("BENCH_PATH") or "/api/v1/order"
local tokens_file = os.getenv("BENCH_TOKENS")
local token = os.getenv("BENCH_TOKEN")

wrk.method = "GET"
wrk.path = path
if token and token ~= "" then
  wrk.headers["Authorization"] = "Bearer " .. token
end

if tokens_file and tokens_file ~= "" then
  local reqs = {}
  local n = 0
  local i = 0

  function init(args)
    for line in io.lines(tokens_file) do
      if line ~= "" then
        n = n + 1
        reqs[n] = wrk.format("GET", path, { ["Authorization"] = "Bearer " .. line })
      end
    end
    if n == 0 then
      error("no tokens in " .. tokens_file)
    end
  end

  function request()
    i = i + 1
    if i > n then
      i = 1
    end
    return reqs[i]
  end
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"duration_us":%d,"bytes":%d,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
    '"latency_us":{"mean":%.1f,"p50":%d,"p90":%d,"p99":%d,"p999":%d,"max":%d}}\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency.mean, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency:percentile(99.9), latency.max))
end
