-- counter.lua: counts to 5, sleeping 30 ms of game time between numbers. sleep() blocks only
-- this script's tasklet: the other scripts and the host's frame loop go on meanwhile.
for i = 1, 5 do
  print("count " .. i)
  sleep(0.03)
end
print("done counting")
