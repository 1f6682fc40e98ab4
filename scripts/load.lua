-- wrk script for scripts/load: replays the request bodies in BODIES (one JSON body per line)
-- against PATH_ (a /v1/vdc method), round robin from a per-thread offset. With RATE set (requests
-- per second over all connections), each connection waits between requests so that the total
-- stays near RATE. done() prints one JSON line with throughput, latency percentiles and errors.

local bodies = {}
local index = 0
local path = os.getenv("WALLET_PATH")
local rate = tonumber(os.getenv("RATE") or "0")
local connections = tonumber(os.getenv("CONNECTIONS") or "1")
local thread_counter = 0

function setup(thread)
  thread_counter = thread_counter + 1
  thread:set("offset", thread_counter * 7919)
end

function init(args)
  for line in io.lines(os.getenv("BODIES")) do
    bodies[#bodies + 1] = line
  end
  index = offset or 0
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
end

function request()
  index = index + 1
  return wrk.format(nil, path, nil, bodies[(index % #bodies) + 1])
end

function delay()
  if rate > 0 then
    return math.floor(connections * 1000 / rate)
  end
  return 0
end

function done(summary, latency, requests)
  local seconds = summary.duration / 1e6
  local errors = summary.errors.connect + summary.errors.read + summary.errors.write
    + summary.errors.status + summary.errors.timeout
  io.write(string.format(
    '{"requests": %d, "seconds": %.2f, "rps": %.1f, "p50_ms": %.2f, "p99_ms": %.2f, "max_ms": %.2f, "errors": %d, "non_2xx": %d}\n',
    summary.requests, seconds, summary.requests / seconds,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, latency.max / 1000,
    errors, summary.errors.status))
end
