-- The benchmark's votes at a chosen rate (the half-load round): wrk_votes.lua, and each
-- connection waits about pause_ms between requests, spread uniformly so that the
-- connections do not march in step. A separate file because wrk decides whether a script
-- paces its requests before it passes the arguments.
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(here .. "wrk_votes.lua")

function delay()
  return math.random(0, 2 * pause_ms)
end
