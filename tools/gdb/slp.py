"""libslp tasklet inspection for gdb.

Load it into a gdb session debugging a live process that uses libslp (libslp.so or libslp.a):

    (gdb) source tools/gdb/slp.py

or add that line to ~/.gdbinit. It needs a gdb built with Python 3 (tested with gdb 13) on
x86-64 Linux, and a libslp that exports slp_dump and slp_tasklet_debug_context
(both calls are made in the inferior, so libslp needs no debug information, though with it
the libslp frames of a backtrace show source lines).

Commands
--------
slp tasklets
    Lists the tasklets of the *selected thread* (select another one with `thread N` first):
    a header with libslp's thread id, the number of tasklets and the run count, then one line
    per tasklet, numbered, with its address, name and state. The running tasklet comes first
    (marked `*`), then the run queue in order, then the blocked and paused ones; a blocked
    tasklet shows what it waits on ("blocked receiving on channel 0x... (balance -1)").
    Tasklets created paused that never ran are listed as "paused (never started)" (they have
    no frames yet: `slp bt` refuses them).
    It calls slp_dump() in the inferior, on the selected thread.

slp bt TASKLET [BT-ARGS...]
    Prints the backtrace of a suspended tasklet (blocked, runnable but not running, or paused
    after it ran). TASKLET is
      - a number from `slp tasklets` (the selected thread's listing),
      - an expression giving the tasklet pointer: an address (0x55d0c1a2b730) or a variable
        of the program (`t_receiver`, `'file.c'::handle`, `conn->task`),
      - or a tasklet name as `slp tasklets` shows it (used when no expression matches).
    BT-ARGS are passed to gdb's `bt` (`full`, `-full`, a frame count such as `10`, ...).
    How it works: slp_tasklet_debug_context() in the inferior gives the instruction, stack and
    frame pointers the tasklet saved where it switched away inside libslp; the command saves
    the selected thread's $pc, $sp, $rbp (and $orig_rax, which gdb clobbers when $pc is
    written), loads the tasklet's values into frame 0, runs `bt`, then writes the saved
    values back, checks them, and reselects the frame that was selected. The process can be
    continued normally afterwards. The listing stops at the tasklet's first frame (libslp's
    entry on the tasklet stack): what gdb would show below it is stale data from the last
    switch. The running tasklet has no saved context: use plain `bt` for it. A main tasklet
    that is not running (the thread is inside a tasklet) has its frames on the thread's own
    stack: they show at the bottom of the thread's plain `bt`, below the running tasklet.

set slp scheduler-locking on|off   (default on)
show slp scheduler-locking
    While the commands call functions in the inferior, gdb's `scheduler-locking` is set to
    `on` so that only the selected thread runs: the other threads do not move while you look.
    With `off`, gdb's own setting is left alone (normally all threads run during the call).
    Turn it off if a call ever hangs (another stopped thread holding a lock that slp_dump
    needs, such as a channel's); interrupt the hung call with Ctrl-C first.

Notes
-----
* The inferior calls need a live process (not a core file) and malloc() in it: the text
  buffer is malloc'ed and freed again. Do not use the commands while the selected thread is
  stopped inside malloc/free or inside libslp itself (the scheduler's state may be half
  updated there); step out of it first (`finish`).
* gdb's `unwindonsignal` is turned on during the calls, so a fault inside a call (a stale
  tasklet address, say) is reported and undone instead of leaving the thread inside it; and
  your breakpoints are disabled during the calls (re-enabled after), so that one inside
  malloc or libslp does not stop a call halfway.
* x86-64 only (slp_tasklet_debug_context is x86-64 only).

Example
-------
    (gdb) slp tasklets
    gdb thread 1 (LWP 4242), libslp thread 2: 4 tasklets, runcount 2
      #  address         name      state
    * 0  0x55555555a470  main      running
      1  0x55555555a990  yielder   runnable
      2  0x55555555a860  parked    paused
      3  0x55555555a730  receiver  blocked receiving on channel 0x55555555a6a0 (balance -1)
    (gdb) slp bt 3              # or: slp bt 0x55555555a730 / slp bt t_receiver / slp bt receiver
"""

import re
import struct

import gdb

_STATUS_NAMES = {
    0: "SLP_OK",
    -1: "SLP_E_INVALID",
    -2: "SLP_E_NOMEM",
    -3: "SLP_E_STATE",
    -4: "SLP_E_WRONG_THREAD",
    -5: "SLP_E_DEADLOCK",
    -6: "SLP_E_CLOSED",
    -7: "SLP_E_KILLED",
    -8: "SLP_E_TIMEOUT",
    -9: "SLP_E_WOULD_BLOCK",
    -10: "SLP_E_SWITCH_TRAP",
    -11: "SLP_E_DEAD",
    -12: "SLP_E_PANIC",
}

# Prototypes of the functions called in the inferior. The casts make the calls work whether
# or not gdb has debug information (types) for libslp and libc.
_PROTO = {
    "slp_dump": "int (*)(char *, unsigned long, unsigned long *)",
    "slp_tasklet_debug_context": "int (*)(void *, unsigned long *, unsigned long *, unsigned long *)",
    "slp_last_error": "const char *(*)(void)",
    "slp_tasklet_is_main": "_Bool (*)(void *)",
    "slp_tasklet_alive": "_Bool (*)(void *)",
    "slp_tasklet_thread_id": "long (*)(void *)",
    "slp_tasklet_name": "const char *(*)(void *)",
    "malloc": "void *(*)(unsigned long)",
    "free": "void (*)(void *)",
}

_HEADER_RE = re.compile(r"^thread (-?\d+): (\d+) tasklets, runcount (-?\d+)$")
# "  * 'name' (0x...) running" / "    0x... paused" (unnamed tasklets show only the address).
_LINE_RE = re.compile(
    r"^  (?P<mark>[* ]) (?:'(?P<name>.*)' \((?P<addr>0x[0-9a-fA-F]+)\)|(?P<addr2>0x[0-9a-fA-F]+)) "
    r"(?P<state>\S.*)$"
)


class SlpError(gdb.GdbError):
    """An error reported to the user without a Python traceback."""


# ---------------------------------------------------------------------------------------------
# Settings
# ---------------------------------------------------------------------------------------------


class _SetSlp(gdb.Command):
    """Settings of the libslp commands (tools/gdb/slp.py)."""

    def __init__(self):
        super().__init__("set slp", gdb.COMMAND_DATA, gdb.COMPLETE_NONE, True)


class _ShowSlp(gdb.Command):
    """Settings of the libslp commands (tools/gdb/slp.py)."""

    def __init__(self):
        super().__init__("show slp", gdb.COMMAND_DATA, gdb.COMPLETE_NONE, True)


class _SchedulerLocking(gdb.Parameter):
    """Whether only the selected thread runs while the slp commands call into the inferior."""

    set_doc = "Set whether only the selected thread runs during the slp commands' inferior calls."
    show_doc = "Show whether only the selected thread runs during the slp commands' inferior calls."

    def __init__(self):
        super().__init__("slp scheduler-locking", gdb.COMMAND_DATA, gdb.PARAM_BOOLEAN)
        self.value = True

    def get_show_string(self, svalue):
        return "Scheduler locking during the slp commands' inferior calls is %s." % svalue


# ---------------------------------------------------------------------------------------------
# Inferior calls
# ---------------------------------------------------------------------------------------------


def _param(name):
    try:
        return gdb.parameter(name)
    except (gdb.error, RuntimeError):
        return None


def _bool_word(v):
    return "on" if v else "off"


class _CallEnv:
    """Context for calling functions in the inferior: C expression syntax (the selected frame
    may be Rust code inside libslp), unwindonsignal on, the user's breakpoints disabled, and
    (by default) scheduler-locking on. Restores every setting it changed."""

    def __enter__(self):
        self._restore = []
        lang = _param("language")
        if lang is not None and lang not in ("c", "auto", "local"):
            self._restore.append("set language %s" % lang)
        elif lang in ("auto", "local"):
            self._restore.append("set language auto")
        else:
            self._restore.append("set language c")
        gdb.execute("set language c", to_string=True)
        uos = _param("unwindonsignal")
        if uos is not None and not uos:
            gdb.execute("set unwindonsignal on", to_string=True)
            self._restore.append("set unwindonsignal off")
        # A user breakpoint inside malloc or libslp would stop the call halfway and leave the
        # thread inside it: disable them all during the calls.
        self._disabled = []
        for b in gdb.breakpoints() or ():
            try:
                if b.is_valid() and b.enabled:
                    b.enabled = False
                    self._disabled.append(b)
            except (gdb.error, RuntimeError):
                pass
        if _slp_scheduler_locking.value:
            sl = _param("scheduler-locking")
            if sl is not None and sl != "on":
                try:
                    gdb.execute("set scheduler-locking on", to_string=True)
                    self._restore.append("set scheduler-locking %s" % sl)
                except gdb.error:
                    pass  # e.g. a target that cannot lock; the call still works
        return self

    def __exit__(self, *exc):
        for b in self._disabled:
            try:
                if b.is_valid():
                    b.enabled = True
            except (gdb.error, RuntimeError):
                pass
        for cmd in reversed(self._restore):
            try:
                gdb.execute(cmd, to_string=True)
            except gdb.error:
                pass
        return False


def _fn(name):
    return "((%s) %s)" % (_PROTO[name], name)


def _call(name, *args):
    """Calls `name(args...)` in the inferior (inside a _CallEnv) and returns the gdb.Value."""
    expr = "%s(%s)" % (_fn(name), ", ".join(str(a) for a in args))
    try:
        return gdb.parse_and_eval(expr)
    except gdb.error as e:
        msg = str(e)
        if "signaled while in a function called from GDB" in msg:
            # unwindonsignal undid the call; gdb's own advice (turn it off) does not apply.
            sig = re.search(r"\bsignal (SIG\w+)", msg)
            msg = "it got %s and gdb undid the call (bad pointer, or the process state is " \
                "inconsistent here)" % (sig.group(1) if sig else "a signal")
        raise SlpError("slp: calling %s() in the inferior failed: %s" % (name, msg)) from None


def _read(addr, n):
    return gdb.selected_inferior().read_memory(addr, n).tobytes()


def _last_error():
    try:
        v = _call("slp_last_error")
        return v.string() if int(v) != 0 else ""
    except (SlpError, gdb.error, gdb.MemoryError):
        return ""


def _status_text(st):
    name = _STATUS_NAMES.get(st, "user code %d" % st if st > 0 else "status %d" % st)
    msg = _last_error()
    return "%s%s" % (name, ": " + msg if msg else "")


class _Buffer:
    """A block malloc'ed in the inferior, freed on exit."""

    def __init__(self, size):
        self.size = size
        self.addr = 0

    def __enter__(self):
        self.addr = int(_call("malloc", self.size))
        if self.addr == 0:
            raise SlpError("slp: malloc(%d) in the inferior returned NULL" % self.size)
        return self

    def __exit__(self, *exc):
        if self.addr:
            try:
                _call("free", "(void *) %d" % self.addr)
            except SlpError as e:
                gdb.write("slp: warning: %s\n" % e, gdb.STDERR)
        return False


def _check_live():
    """Errors out unless there is a live, stopped thread and libslp is loaded in it."""
    inf = gdb.selected_inferior()
    if inf is None or inf.pid == 0:
        raise SlpError("slp: the program is not being run (start it, or attach to the process)")
    th = gdb.selected_thread()
    if th is None:
        raise SlpError("slp: no thread is selected")
    if th.is_running():
        raise SlpError("slp: the selected thread is running: interrupt it first")
    if th.is_exited():
        raise SlpError("slp: the selected thread has exited")
    _check_where_stopped()
    with _CallEnv():
        for sym in ("slp_dump", "slp_tasklet_debug_context"):
            try:
                gdb.parse_and_eval("(long) &%s" % sym)
            except gdb.error:
                if sym == "slp_dump":
                    try:
                        gdb.parse_and_eval("(long) &slp_version")
                    except gdb.error:
                        raise SlpError(
                            "slp: libslp is not loaded in this process (no symbol slp_dump); "
                            "if it is linked dynamically, stop after it is loaded "
                            "(e.g. `break main`, `run`)"
                        ) from None
                raise SlpError(
                    "slp: this libslp has no %s(): it is older than the gdb support "
                    "(tools/gdb/slp.py needs slp_dump and slp_tasklet_debug_context)" % sym
                ) from None
        for sym in ("malloc", "free"):
            try:
                gdb.parse_and_eval("(long) &%s" % sym)
            except gdb.error:
                raise SlpError(
                    "slp: %s() is not available in the process yet (the C library is not "
                    "loaded): stop later, e.g. `break main`, `run`" % sym
                ) from None


_MALLOC_RE = re.compile(r"^(__GI_)?(__libc_|_int_)?(malloc|free|realloc|calloc|memalign|posix_memalign)(_\w+)?$")
_SLP_ENTRY_RE = re.compile(r"(^|::)(slp_[a-z0-9_]+)$")


def _check_where_stopped():
    """Refuses to call malloc when the thread is inside the allocator (it could deadlock on
    the arena lock); warns when the thread is inside a libslp call (its scheduler may be in
    the middle of an update). Looks at the frames of the running tasklet only."""
    warned = False
    try:
        f = gdb.newest_frame()
        for _ in range(64):
            if f is None:
                break
            name = f.name() or ""
            if "corosensei" in name:
                break  # the root of a tasklet stack: what is below belongs to its resumer
            if _MALLOC_RE.match(name):
                raise SlpError(
                    "slp: the selected thread is inside the allocator (frame #%d, %s): calling "
                    "malloc() from gdb could deadlock; step out of it first (`finish`)"
                    % (_frame_level(f), name)
                )
            m = _SLP_ENTRY_RE.search(name)
            if m and not warned:
                gdb.write(
                    "slp: warning: the selected thread is inside libslp (frame #%d, %s): what it "
                    "reports may be in the middle of an update\n" % (_frame_level(f), m.group(2)),
                    gdb.STDERR,
                )
                warned = True
            f = f.older()
    except gdb.error:
        pass


# ---------------------------------------------------------------------------------------------
# The dump
# ---------------------------------------------------------------------------------------------


class _Tasklet:
    def __init__(self, index, addr, name, state, running):
        self.index = index
        self.addr = addr
        self.name = name  # None when unnamed
        self.state = state
        self.running = running

    def label(self):
        return "'%s' (0x%x)" % (self.name, self.addr) if self.name is not None else "0x%x" % self.addr


class _Dump:
    def __init__(self, text):
        self.text = text
        self.thread_id = None
        self.count = None
        self.runcount = None
        self.tasklets = []
        self.unparsed = []
        for line in text.splitlines():
            m = _HEADER_RE.match(line)
            if m and self.thread_id is None:
                self.thread_id = int(m.group(1))
                self.count = int(m.group(2))
                self.runcount = int(m.group(3))
                continue
            m = _LINE_RE.match(line)
            if m:
                addr = int(m.group("addr") or m.group("addr2"), 16)
                self.tasklets.append(
                    _Tasklet(len(self.tasklets), addr, m.group("name"), m.group("state"), m.group("mark") == "*")
                )
            elif line.strip():
                self.unparsed.append(line)

    def find_addr(self, addr):
        for t in self.tasklets:
            if t.addr == addr:
                return t
        return None


def _dump():
    """slp_dump() on the selected thread; returns a _Dump."""
    with _CallEnv():
        size = 4096
        for _ in range(4):
            with _Buffer(16 + size) as b:
                st = int(_call("slp_dump", "(char *) %d" % (b.addr + 16), size, "(unsigned long *) %d" % b.addr))
                needed = struct.unpack("<Q", _read(b.addr, 8))[0]
                if st == 0:
                    raw = _read(b.addr + 16, max(0, min(needed, size) - 1))
                    return _Dump(raw.split(b"\0", 1)[0].decode("utf-8", "replace"))
                if st != -2:  # anything but "buffer too small"
                    raise SlpError("slp: slp_dump() failed: %s" % _status_text(st))
            size = needed + 1024  # the dump may grow between the calls
        raise SlpError("slp: slp_dump() kept needing a bigger buffer (last: %d bytes)" % needed)


def _thread_desc():
    th = gdb.selected_thread()
    lwp = th.ptid[1] or th.ptid[2]
    return "gdb thread %d (LWP %d)" % (th.num, lwp)


# ---------------------------------------------------------------------------------------------
# Commands
# ---------------------------------------------------------------------------------------------


class _Slp(gdb.Command):
    """libslp tasklet inspection (tools/gdb/slp.py).

slp tasklets                  list the selected thread's tasklets (name, state, what each waits on)
slp bt TASKLET [BT-ARGS...]   backtrace of a suspended tasklet (number, address/expression or name)
set slp scheduler-locking     on (default): only the selected thread runs during the inferior calls"""

    def __init__(self):
        super().__init__("slp", gdb.COMMAND_STACK, gdb.COMPLETE_NONE, True)

    def invoke(self, arg, from_tty):
        gdb.execute("help slp")


class _SlpTasklets(gdb.Command):
    """List the selected thread's libslp tasklets.

Usage: slp tasklets
One line per tasklet: a number (usable with `slp bt N`), its address, its name and its
state - running (marked *), runnable, blocked receiving/sending on channel 0x... (balance b),
paused. The running one comes first, then the run queue in order, then blocked and paused
tasklets. Select another thread with `thread N` to list its tasklets. Never-started paused
tasklets are listed as "paused (never started)". Calls slp_dump() in the inferior."""

    def __init__(self):
        super().__init__("slp tasklets", gdb.COMMAND_STACK, gdb.COMPLETE_NONE)

    def invoke(self, arg, from_tty):
        if arg.strip():
            raise SlpError("slp tasklets takes no argument (select the thread with `thread N`)")
        _check_live()
        d = _dump()
        if d.thread_id is not None:
            gdb.write(
                "%s, libslp thread %d: %d tasklets, runcount %d\n"
                % (_thread_desc(), d.thread_id, d.count, d.runcount)
            )
        if d.tasklets:
            wa = max(len("address"), max(len("0x%x" % t.addr) for t in d.tasklets))
            wn = max(len("name"), max(len(t.name or "-") for t in d.tasklets))
            wi = len(str(len(d.tasklets) - 1))
            gdb.write("  %*s  %-*s  %-*s  %s\n" % (wi, "#", wa, "address", wn, "name", "state"))
            for t in d.tasklets:
                gdb.write(
                    "%s %*d  %-*s  %-*s  %s\n"
                    % ("*" if t.running else " ", wi, t.index, wa, "0x%x" % t.addr, wn, t.name or "-", t.state)
                )
        for line in d.unparsed:
            gdb.write(line + "\n")
        if d.thread_id is None and not d.tasklets:
            gdb.write(d.text if d.text.endswith("\n") else d.text + "\n")


def _resolve(spec, dump):
    """The tasklet address for `spec`: a listing number, an expression, or a listed name."""
    if re.fullmatch(r"\d+", spec) and int(spec) < max(len(dump.tasklets), 4096):
        i = int(spec)
        if i >= len(dump.tasklets):
            raise SlpError(
                "slp: no tasklet #%d in this thread's listing (%d listed; see `slp tasklets`)"
                % (i, len(dump.tasklets))
            )
        return dump.tasklets[i].addr
    # An expression that names a listed tasklet wins; then a listed name (a tasklet called
    # "receiver" beats an unrelated symbol of that name, such as one in ld.so); then any
    # other non-NULL pointer or integer (another thread's tasklet, say).
    expr_addr, expr_error = None, None
    try:
        with _CallEnv():
            v = gdb.parse_and_eval(spec)
            code = v.type.strip_typedefs().code
            if code in (gdb.TYPE_CODE_PTR, gdb.TYPE_CODE_INT):
                expr_addr = int(v.cast(gdb.lookup_type("unsigned long")))
            else:
                expr_error = "its type is %s, not a pointer" % v.type
    except gdb.error as e:
        expr_error = str(e)
    if expr_addr is not None and dump.find_addr(expr_addr) is not None:
        return expr_addr
    name = spec[1:-1] if len(spec) >= 2 and spec[0] == spec[-1] and spec[0] in "'\"" else spec
    matches = [t for t in dump.tasklets if t.name == name]
    if len(matches) == 1:
        return matches[0].addr
    if len(matches) > 1:
        raise SlpError(
            "slp: %d tasklets are named '%s' here: use a number or an address (%s)"
            % (len(matches), name, ", ".join("#%d 0x%x" % (t.index, t.addr) for t in matches))
        )
    if expr_addr is not None:
        return expr_addr
    raise SlpError(
        "slp: `%s` is neither an expression (%s) nor the name of a tasklet of this thread "
        "(see `slp tasklets`)" % (spec, expr_error)
    )


def _label_of(addr):
    """'name' (0x...) for a tasklet that is not in the listing, from slp_tasklet_name."""
    name = ""
    try:
        with _CallEnv():
            v = _call("slp_tasklet_name", "(void *) %d" % addr)
            name = v.string() if int(v) else ""
    except (SlpError, gdb.error, gdb.MemoryError, UnicodeDecodeError):
        pass
    return "'%s' (0x%x)" % (name, addr) if name else "0x%x" % addr


def _why_not_suspended(addr, dump):
    """A message for SLP_E_STATE from slp_tasklet_debug_context."""
    t = dump.find_addr(addr)
    label = t.label() if t else _label_of(addr)
    if t is not None and t.running:
        return "tasklet %s is running on this thread: its frames are the thread's own, use `bt`" % label
    with _CallEnv():
        try:
            if bool(_call("slp_tasklet_is_main", "(void *) %d" % addr)):
                return (
                    "tasklet %s is a main tasklet: its frames are on its thread's own stack "
                    "(the bottom of that thread's `bt`)" % label
                )
            if not bool(_call("slp_tasklet_alive", "(void *) %d" % addr)):
                return "tasklet %s is dead (it has no stack any more)" % label
            owner = int(_call("slp_tasklet_thread_id", "(void *) %d" % addr))
        except SlpError:
            return "tasklet %s is not suspended (running, never started, dead or a main tasklet)" % label
    if dump.thread_id is not None and owner != dump.thread_id:
        return (
            "tasklet %s belongs to libslp thread %d and is running there: select that thread and use `bt`"
            % (label, owner)
        )
    return "tasklet %s has never run (created paused and not started): it has no frames yet" % label


def _root_level():
    """The level of the frame below the tasklet's entry, or None. corosensei's CFI links the
    root of a tasklet stack to the stack of whoever resumed it last, which gdb shows as a
    signal frame ("<signal handler called>") whose newer frame is in libslp, like frame #0
    (the switch point); what follows it is stale while the tasklet is suspended."""
    try:
        f = gdb.newest_frame()
        lib = gdb.solib_name(f.pc())
        newer = None
        for level in range(4096):
            if f is None:
                return None
            if f.type() == gdb.SIGTRAMP_FRAME and newer is not None and gdb.solib_name(newer.pc()) == lib:
                return level
            newer, f = f, f.older()
    except gdb.error:
        return None
    return None


def _trim_bt(text, root):
    """Cuts `bt` output at frame #root (see _root_level)."""
    if root is None:
        return text
    lines = text.splitlines(True)
    for i, line in enumerate(lines):
        if re.match(r"^#%d\s" % root, line):
            return "".join(lines[:i]) + "(end of the tasklet's stack)\n"
    return text


def _regs_to_save(frame):
    names = ["rip", "rsp", "rbp"]
    try:
        frame.read_register("orig_rax")
        names.append("orig_rax")  # written as -1 by gdb whenever $pc is written (amd64-linux)
    except ValueError:
        pass
    return names


def _set_reg(name, value):
    gdb.execute("set var $%s = (long) %d" % (name, _signed64(value)), to_string=True)


def _signed64(v):
    v &= (1 << 64) - 1
    return v - (1 << 64) if v >= 1 << 63 else v


def _frame_level(frame):
    try:
        return frame.level()
    except AttributeError:  # gdb < 11
        n, f = 0, frame
        while f.newer() is not None:
            f = f.newer()
            n += 1
        return n


class _SlpBt(gdb.Command):
    """Print the backtrace of a suspended libslp tasklet.

Usage: slp bt TASKLET [BT-ARGS...]
TASKLET: a number from `slp tasklets`, an expression giving the tasklet pointer (an address or
a program variable), or a tasklet name from the listing. BT-ARGS go to gdb's `bt` (full, a
frame count, ...). Works for blocked, runnable-but-not-running and paused tasklets that ran.
Temporarily loads the tasklet's saved $pc/$sp/$rbp into the selected thread's frame 0 (from
slp_tasklet_debug_context() in the inferior), runs `bt`, then restores the registers exactly
(and $orig_rax) and the selected frame; the program can be continued normally."""

    def __init__(self):
        super().__init__("slp bt", gdb.COMMAND_STACK, gdb.COMPLETE_EXPRESSION)

    def invoke(self, arg, from_tty):
        argv = gdb.string_to_argv(arg)
        if not argv:
            raise SlpError("usage: slp bt TASKLET [BT-ARGS...]  (TASKLET: number, address or name; see `slp tasklets`)")
        # The tasklet spec is the first word, unless the whole argument is one expression
        # with spaces (e.g. `slp bt conn->tasks[ 2 ]`): then BT-ARGS cannot be given.
        spec, bt_args = argv[0], " ".join(argv[1:])
        _check_live()
        frame0 = gdb.newest_frame()
        arch = frame0.architecture().name()
        if "x86-64" not in arch:
            raise SlpError("slp bt: x86-64 only (this thread's architecture is %s)" % arch)
        dump = _dump()
        try:
            addr = _resolve(spec, dump)
        except SlpError:
            if len(argv) > 1:
                addr = _resolve(arg.strip(), dump)
                bt_args = ""
            else:
                raise
        if addr == 0:
            raise SlpError("slp bt: the tasklet pointer is NULL")
        t = dump.find_addr(addr)

        with _CallEnv():
            with _Buffer(24) as b:
                st = int(
                    _call(
                        "slp_tasklet_debug_context",
                        "(void *) %d" % addr,
                        "(unsigned long *) %d" % b.addr,
                        "(unsigned long *) %d" % (b.addr + 8),
                        "(unsigned long *) %d" % (b.addr + 16),
                    )
                )
                pc, sp, fp = struct.unpack("<QQQ", _read(b.addr, 24))
        if st == -3:
            raise SlpError("slp bt: " + _why_not_suspended(addr, dump))
        if st != 0:
            raise SlpError("slp bt: slp_tasklet_debug_context(0x%x) failed: %s" % (addr, _status_text(st)))
        if pc == 0 or sp == 0:
            raise SlpError("slp bt: tasklet 0x%x has no saved context (pc 0x%x, sp 0x%x)" % (addr, pc, sp))

        if t is not None:
            gdb.write("Tasklet %s, %s:\n" % (t.label(), t.state))
        else:
            gdb.write("Tasklet %s (not one of the selected thread's tasklets):\n" % _label_of(addr))
        self._bt_at(pc, sp, fp, bt_args)

    @staticmethod
    def _bt_at(pc, sp, fp, bt_args):
        selected = gdb.selected_frame()
        level = _frame_level(selected)
        frame0 = gdb.newest_frame()
        names = _regs_to_save(frame0)
        saved = {n: int(frame0.read_register(n)) & ((1 << 64) - 1) for n in names}
        frame0.select()  # $pc etc. below are frame 0's, i.e. the thread's real registers
        out, root = None, None
        try:
            with _CallEnv():
                _set_reg("rsp", sp)
                _set_reg("rbp", fp)
                _set_reg("rip", pc)
            gdb.execute("maintenance flush register-cache", to_string=True)
            gdb.newest_frame().select()
            out = gdb.execute(("bt " + bt_args).strip(), to_string=True)
            root = _root_level()
        finally:
            restore_error = None
            try:
                gdb.newest_frame().select()
                with _CallEnv():
                    _set_reg("rip", saved["rip"])  # first: writing $pc sets $orig_rax to -1
                    _set_reg("rsp", saved["rsp"])
                    _set_reg("rbp", saved["rbp"])
                    if "orig_rax" in saved:
                        _set_reg("orig_rax", saved["orig_rax"])
                gdb.execute("maintenance flush register-cache", to_string=True)
                f0 = gdb.newest_frame()
                now = {n: int(f0.read_register(n)) & ((1 << 64) - 1) for n in names}
                if now != saved:
                    restore_error = "registers differ after restoring: saved %s, now %s" % (
                        {k: hex(v) for k, v in saved.items()},
                        {k: hex(v) for k, v in now.items()},
                    )
                f = f0
                for _ in range(level):
                    older = f.older()
                    if older is None:
                        break
                    f = older
                f.select()
            except gdb.error as e:
                restore_error = str(e)
            if restore_error:
                raise SlpError(
                    "slp bt: COULD NOT RESTORE the thread's registers (%s); saved values: %s - "
                    "set them back by hand before continuing"
                    % (restore_error, ", ".join("$%s = 0x%x" % kv for kv in saved.items()))
                )
        if out is not None:
            gdb.write(_trim_bt(out, root))


_SetSlp()
_ShowSlp()
_slp_scheduler_locking = _SchedulerLocking()
_Slp()
_SlpTasklets()
_SlpBt()
