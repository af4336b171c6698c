# tests/gdb/commands.gdb - the gdb session of tests/gdb/run.sh (gdb -batch -nx, with
# tools/gdb/slp.py sourced first by run.sh). Debugs tests/gdb/target.c.
#
# Prints the plain command outputs (run.sh greps them too) and one "CHECK ok: ..." or
# "CHECK FAILED: ..." line per check made here; run.sh fails on any FAILED line, on a missing
# ok line, and unless the program ran to its end ("target: all done", exited normally).
set pagination off
set confirm off
set width 0
python
try:
    gdb.execute("set debuginfod enabled off", to_string=True)
except gdb.error:
    pass

import re

CHECKS = {"ok": 0, "failed": 0}


def check(cond, what):
    CHECKS["ok" if cond else "failed"] += 1
    print("CHECK %s: %s" % ("ok" if cond else "FAILED", what))


def run(cmd):
    """Runs a gdb command, echoes its output, returns it."""
    print("(gdb) " + cmd)
    out = gdb.execute(cmd, to_string=True)
    print(out, end="")
    return out


def run_error(cmd):
    """Runs a command that must fail; returns its error message."""
    print("(gdb) " + cmd)
    try:
        out = gdb.execute(cmd, to_string=True)
    except gdb.error as e:
        print("error: %s" % e)
        return str(e)
    print(out, end="")
    return ""


def regs():
    """The selected thread's general registers (all of them, as `info registers` shows)."""
    return gdb.execute("info registers", to_string=True)


def listing(out):
    """{name: (number, address, state)} from `slp tasklets` output."""
    rows = {}
    for line in out.splitlines():
        m = re.match(r"^[* ]\s*(\d+)\s+(0x[0-9a-f]+)\s+(\S+)\s+(.*)$", line)
        if m:
            rows[m.group(3)] = (int(m.group(1)), m.group(2), m.group(4))
    return rows


def frames_in_order(out, names):
    """True if each name appears in a frame line of `out`, in this order (innermost first)."""
    pos = -1
    for n in names:
        m = re.search(r"^#\d+ .*\b%s \(" % re.escape(n), out[pos + 1:], re.M)
        if not m:
            return False
        pos = pos + 1 + m.start()
    return True
end

# --- before the program runs / before libslp is loaded --------------------------------------
python
e = run_error("slp tasklets")
check("not being run" in e, "slp tasklets without a process says the program is not being run")
end
starti
python
e = run_error("slp tasklets")
# (a program linked with libslp.a has libslp from the start, but not yet the C library)
check("libslp is not loaded" in e or "not available in the process yet" in e,
      "slp tasklets before libslp (or libc) is loaded says so")
end

# --- checkpoint 1: the main tasklet runs -----------------------------------------------------
break checkpoint
continue
python
out = run("slp tasklets")
rows = listing(out)
check(rows.get("main", (0, 0, ""))[2] == "running", "main is listed as running")
check(rows.get("yielder", (0, 0, ""))[2] == "runnable", "yielder is listed as runnable")
check(rows.get("parked", (0, 0, ""))[2] == "paused", "parked is listed as paused")
check(rows.get("receiver", (0, 0, ""))[2].startswith("blocked receiving on channel 0x"),
      "receiver is listed as blocked receiving on a channel")
check(rows.get("fresh", (0, 0, ""))[2] == "paused (never started)",
      "the never-started tasklet is listed as paused (never started)")
chan = int(gdb.parse_and_eval("(unsigned long) chan"))
check(("channel 0x%x (balance -1)" % chan) in rows.get("receiver", (0, 0, ""))[2],
      "receiver waits on the program's channel, balance -1")
recv_addr = rows.get("receiver", (0, "0x0", ""))[1]
check(int(recv_addr, 16) == int(gdb.parse_and_eval("(unsigned long) t_receiver")),
      "the listed address of receiver is the program's t_receiver")

# slp bt by the address from the listing; the registers must come back exactly.
before = regs()
frame_before = gdb.selected_frame()
out = run("slp bt " + recv_addr)
check(frames_in_order(out, ["slp_channel_receive", "level_two", "level_one", "receiver_fn"]),
      "slp bt <address> shows slp_channel_receive <- level_two <- level_one <- receiver_fn")
check("(end of the tasklet's stack)" in out, "the backtrace stops at the tasklet's entry")
check(regs() == before, "all registers of thread 1 are unchanged after slp bt")
check(gdb.selected_frame() == frame_before, "the selected frame is unchanged after slp bt")

# By number, by name, by program variable; with bt arguments; from an outer frame.
out = run("slp bt %d" % rows["receiver"][0])
check(frames_in_order(out, ["level_two", "level_one"]), "slp bt <number> works")
out = run("slp bt receiver")
check(frames_in_order(out, ["level_two", "level_one"]), "slp bt <name> works")
out = run("slp bt parked")
check(frames_in_order(out, ["slp_schedule_remove", "park_here", "parked_fn"]),
      "slp bt of the paused tasklet shows park_here <- parked_fn")
out = run("slp bt t_yielder")
check(frames_in_order(out, ["slp_schedule", "yield_here", "yielder_fn"]),
      "slp bt of the runnable tasklet shows yield_here <- yielder_fn")
gdb.execute("frame 1", to_string=True)
before = regs()
out = run("slp bt t_receiver full")
check(frames_in_order(out, ["level_two", "level_one"]) and "v = " in out,
      "slp bt t_receiver full shows level_two's locals")
check(gdb.selected_frame().level() == 1 and regs() == before,
      "frame 1 stays selected and its registers unchanged")
gdb.execute("frame 0", to_string=True)

# The user's breakpoints inside the functions the commands call must not stop the calls.
bps = [gdb.Breakpoint(f, internal=False) for f in ("slp_dump", "slp_tasklet_debug_context")]
out = run("slp bt receiver")
check(frames_in_order(out, ["level_two", "level_one"]) and all(b.enabled and b.hit_count == 0 for b in bps),
      "user breakpoints on slp_dump / slp_tasklet_debug_context neither stop the commands nor stay disabled")
for b in bps:
    b.delete()

# Refusals.
e = run_error("slp bt 0")
check("is running on this thread" in e, "slp bt of the running tasklet is refused (use bt)")
e = run_error("slp bt t_fresh")
check("never run" in e, "slp bt of a never-started tasklet is refused")
e = run_error("slp bt 9")
check("no tasklet #9" in e, "slp bt with a number beyond the listing is refused")
e = run_error("slp bt no_such_tasklet")
check("neither an expression" in e, "slp bt with an unknown name is refused")
e = run_error("slp bt")
check("usage" in e, "slp bt without an argument prints the usage")

# --- the worker thread: its scheduler, while it waits in a futex system call ----------------
gdb.execute("thread 2", to_string=True)
orig_rax = int(gdb.parse_and_eval("$orig_rax"))
before = regs()
out = run("slp tasklets")
rows = listing(out)
check(rows.get("w_receiver", (0, 0, ""))[2].startswith("blocked receiving on channel 0x"),
      "thread 2's listing shows w_receiver blocked receiving")
check("receiver" not in rows, "thread 2's listing does not show thread 1's tasklets")
out = run("slp bt w_receiver")
check(frames_in_order(out, ["worker_level_two", "worker_receiver_fn"]),
      "slp bt on thread 2 shows worker_level_two <- worker_receiver_fn")
check(regs() == before and int(gdb.parse_and_eval("$orig_rax")) == orig_rax,
      "thread 2's registers (and $orig_rax %d, its interrupted system call) are unchanged" % orig_rax)
out = run("slp bt t_receiver")
check(frames_in_order(out, ["level_two", "level_one"]),
      "slp bt of thread 1's tasklet works from thread 2")
gdb.execute("thread 1", to_string=True)
end

# --- checkpoint 2: a tasklet (yielder) runs, main waits in slp_run --------------------------
continue
python
out = run("slp tasklets")
rows = listing(out)
check(rows.get("yielder", (0, 0, ""))[2] == "running", "at checkpoint 2 yielder is running")
check(rows.get("main", (0, 0, ""))[2] == "waiting in slp_run", "at checkpoint 2 main waits in slp_run")
e = run_error("slp bt main")
check("main tasklet" in e, "slp bt of a main tasklet is refused (its frames are the thread's)")
before = regs()
out = run("slp bt receiver")
check(frames_in_order(out, ["level_two", "level_one", "receiver_fn"]),
      "slp bt works while another tasklet runs")
check(regs() == before, "registers unchanged after slp bt at checkpoint 2")
gdb.execute("thread 2", to_string=True)
e = run_error("slp bt t_yielder")
check("is running there" in e, "from thread 2, slp bt of thread 1's running tasklet is refused")
gdb.execute("thread 1", to_string=True)

# A pointer that is no tasklet at all: the call faults in the inferior, gdb unwinds it
# (unwindonsignal), and the program must not see the fault.
before = regs()
e = run_error("slp bt (void *) 16")
check("calling slp_tasklet_debug_context() in the inferior failed" in e,
      "slp bt of a bad pointer reports the fault of the inferior call")
check(regs() == before, "registers unchanged after the faulting call")
end

# --- checkpoint 0: all four tasklets have ended ----------------------------------------------
continue
python
out = run("slp tasklets")
rows = listing(out)
check(list(rows) == ["main"], "at checkpoint 0 only main is listed")
e = run_error("slp bt t_receiver")
check("is dead" in e, "slp bt of a dead tasklet is refused")
print("CHECKS: %d ok, %d failed" % (CHECKS["ok"], CHECKS["failed"]))
end

# --- to the end: the program must finish normally --------------------------------------------
delete
continue
