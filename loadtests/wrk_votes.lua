-- wrk script: each request is a fresh (voter, category) pair, so every vote is accepted.
-- Lines of the input file: cookie \t csrf \t body
local lines = {}
local counter = 0
local threads = {}

function setup(thread)
  thread:set("id", #threads)
  table.insert(threads, thread)
end

function init(args)
  local path = args[1]
  for line in io.lines(path) do
    local cookie, csrf, body = line:match("([^\t]*)\t([^\t]*)\t(.*)")
    table.insert(lines, {cookie, csrf, body})
  end
  nthreads = tonumber(args[2]) or 1
  counter = id
end

function request()
  local entry = lines[(counter % #lines) + 1]
  counter = counter + nthreads
  return wrk.format("POST", "/api/votes", {
    ["Content-Type"] = "application/json",
    ["Cookie"] = "wsis_session=" .. entry[1],
    ["X-CSRF-Token"] = entry[2],
  }, entry[3])
end

function done(summary, latency, requests)
  io.write(string.format("LAT p50=%.3f p95=%.3f p99=%.3f\n",
    latency:percentile(50) / 1000, latency:percentile(95) / 1000, latency:percentile(99) / 1000))
end
