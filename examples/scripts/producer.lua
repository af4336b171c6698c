-- producer.lua: sends four numbers to the consumer over the host's channel, one every 20 ms
-- of game time, then -1 to say it is done. send() blocks until the consumer receives.
for i = 1, 4 do
  local v = i * 10
  send(v)
  print("sent " .. v)
  sleep(0.02)
end
send(-1)
print("sent the end marker")
