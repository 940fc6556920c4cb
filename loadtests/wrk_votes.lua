-- wrk script of the benchmark: every request is a fresh (voter, category) pair, so every
-- vote is accepted (a 409 would measure the duplicate path instead).
-- Arguments (after --): voters file, ballots file, first index, span[, pause in ms].
-- Thread t sends the indices first + t * span, first + t * span + 1, ...: threads never
-- overlap, however unevenly they progress.
--   voters file:  one line per voter: cookie \t csrf \t client address
--   ballots file: one line per category: its nominations, comma-separated
-- Request i goes to voter i % V in category (i / V) % C: consecutive requests come from
-- different voters (spread over shards), and no pair repeats before V * C requests.
local voters = {}
local ballots = {}
local counter = 0
local threads = {}
pause_ms = 0  -- read by wrk_votes_paced.lua

function setup(thread)
  thread:set("id", #threads)
  table.insert(threads, thread)
end

function init(args)
  for line in io.lines(args[1]) do
    local cookie, csrf, ip = line:match("([^\t]*)\t([^\t]*)\t(.*)")
    table.insert(voters, {"wsis_session=" .. cookie, csrf, ip})
  end
  for line in io.lines(args[2]) do
    local noms = {}
    for nom in line:gmatch("[^,]+") do table.insert(noms, nom) end
    table.insert(ballots, noms)
  end
  counter = tonumber(args[3]) + id * tonumber(args[4])
  pause_ms = tonumber(args[5]) or 0
  math.randomseed(id + 1)
end

function request()
  local i = counter
  counter = counter + 1
  local v = i % #voters
  local voter = voters[v + 1]
  local noms = ballots[(math.floor(i / #voters) % #ballots) + 1]
  local nom = noms[(v % #noms) + 1]
  return wrk.format("POST", "/api/votes", {
    ["Content-Type"] = "application/json",
    ["Cookie"] = voter[1],
    ["X-CSRF-Token"] = voter[2],
    ["X-Forwarded-For"] = voter[3],
  }, '{"nomination":"' .. nom .. '"}')
end

function done(summary, latency, requests)
  io.write(string.format("LAT p50=%.3f p95=%.3f p99=%.3f\n",
    latency:percentile(50) / 1000, latency:percentile(95) / 1000, latency:percentile(99) / 1000))
end
