-- runaway.lua: a script with a bug that never returns. Without preemption it would freeze
-- the game; here the watchdog interrupts it every frame once it has used its budget, and the
-- host kills it after it has overrun the budget in too many frames in a row.
print("entering an endless loop")
while true do end
