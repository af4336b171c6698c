-- consumer.lua: receives numbers from the producer until -1 and does some slow work on each
-- one: about 25,000 Lua VM instructions, two and a half watchdog slices, so the host
-- interrupts it twice per value and it picks up where it stopped in the next frame.
local total, count = 0, 0
while true do
  local v = receive()
  if v < 0 then break end
  local checksum = 0
  for k = 1, 5000 do
    checksum = (checksum * 31 + k * v) % 1000003
  end
  total = total + v
  count = count + 1
  print(("got %d (checksum %d), total %d"):format(v, checksum, total))
end
print(("done: %d values, total %d"):format(count, total))
