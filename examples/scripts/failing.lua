-- failing.lua: a script that raises an error after a while. The error ends this script only:
-- the host catches it (lua_pcall in the script's tasklet), reports it, and the game goes on.
print("working for 50 ms")
sleep(0.05)
local function explode()
  error("boom")
end
explode()
print("never printed")
