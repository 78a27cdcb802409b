"""The tracer: prints each syscall as strace does, and counts them for -c.

Kernel.dispatch calls `enter` before a handler and `exit` after it, then
`signal` for a fatal signal, `exited` when a task ends and `finish` at the
end. Lines are written when the call returns (one write and a flush each), so
they interleave with the program's own output. A call that another thread's
line overtakes is shown strace's way: `futex(... <unfinished ...>`, later
`<... futex resumed>) = 0`.
"""

import fnmatch
import re
import threading
import time

from umiak.kernel.syscalls.table import NAMES
from umiak.trace import decode

COLUMN = 40   # strace's -a default: where " = result" starts


def syscall_name(nr: int) -> str:
    name = NAMES.get(nr)
    return name if name is not None else f"syscall_{nr:#x}"


# A few of strace's classes for --trace=%name.
CLASSES = {
    "memory": {"brk", "mmap", "munmap", "mprotect", "mremap", "madvise", "msync", "mincore", "mlock",
               "munlock", "mlockall", "munlockall", "mbind", "get_mempolicy", "set_mempolicy",
               "pkey_mprotect", "remap_file_pages"},
    "signal": {"rt_sigaction", "rt_sigprocmask", "rt_sigreturn", "rt_sigsuspend", "rt_sigpending",
               "rt_sigtimedwait", "rt_sigqueueinfo", "rt_tgsigqueueinfo", "sigaltstack", "kill", "tkill",
               "tgkill", "pause", "signalfd", "signalfd4"},
    "process": {"clone", "clone3", "fork", "vfork", "execve", "execveat", "exit", "exit_group", "wait4",
                "waitid", "kill", "tkill", "tgkill", "rt_sigqueueinfo", "rt_tgsigqueueinfo",
                "pidfd_open", "pidfd_send_signal"},
}
PATH_ARGS = {"path"}


def _file_class() -> set[str]:
    """%file: calls that take a file name, as strace's class."""
    return {n for n, spec in decode.SPECS.items() if any(k.partition(":")[0] in PATH_ARGS for k in spec)}


def _desc_class() -> set[str]:
    """%desc: calls that take a file descriptor."""
    return {n for n, spec in decode.SPECS.items() if any(k.partition(":")[0] in ("fd", "dirfd") for k in spec)} | \
        {"pipe", "pipe2", "epoll_create", "epoll_create1", "eventfd", "eventfd2", "memfd_create", "socket",
         "socketpair"}


class Filter:
    """Which syscalls to show: globs separated by ',' or '|'. A leading '!' negates the
    whole list, as in strace (`!write|read` = all but those); '!glob' later in a list
    leaves that glob out. '%file', '%desc', '%memory', '%process', '%signal' name classes."""

    def __init__(self, text: str | None):
        self.include: list[re.Pattern] = []
        self.exclude: list[re.Pattern] = []
        self.include_all = True
        self._cache: dict[int, bool] = {}
        if not text:
            return
        text = text.strip()
        if text.startswith("trace="):
            text = text[6:]
        negate_all = text.startswith("!")
        if negate_all:
            text = text[1:]
        for word in re.split(r"[,|]", text):
            word = word.strip()
            if not word:
                continue
            negate = negate_all or word.startswith("!")
            if word.startswith("!"):
                word = word[1:].strip()
            rx = self._pattern(word)
            (self.exclude if negate else self.include).append(rx)
        self.include_all = not self.include

    @staticmethod
    def _pattern(word: str) -> re.Pattern:
        if word.startswith("%"):
            cls = word[1:]
            names = {"file": _file_class, "desc": _desc_class}.get(cls, lambda: CLASSES.get(cls))()
            if names is None:
                raise ValueError(f"unknown syscall class %{cls} (known: %file, %desc, %memory, %process, %signal)")
            return re.compile("|".join(sorted(re.escape(n) for n in names)) + r"\Z")
        if word in ("all", "*"):
            return re.compile(r".*\Z")
        return re.compile(fnmatch.translate(word))

    def __call__(self, nr: int) -> bool:
        hit = self._cache.get(nr)
        if hit is None:
            name = syscall_name(nr)
            hit = (self.include_all or any(p.match(name) for p in self.include)) and \
                not any(p.match(name) for p in self.exclude)
            self._cache[nr] = hit
        return hit


NOTE = ("umiak: seconds are host wall-clock time spent serving each call in umiak's Python kernel "
        "(strace -c counts system time in the Linux kernel)")


class Stat:
    __slots__ = ("calls", "errors", "seconds")

    def __init__(self):
        self.calls = 0
        self.errors = 0
        self.seconds = 0.0


class Tracer:
    def __init__(self, out, strace: bool = True, trace_filter: str | None = None,
                 timestamps: bool = False, summary: bool = False, close_out: bool = False):
        self.out = out
        self.close_out = close_out
        self.strace = strace
        self.selected = Filter(trace_filter)
        self.timestamps = timestamps
        self.summary = summary
        self.stats: dict[int, Stat] = {}
        self.lock = threading.RLock()
        self.last_stamp: float | None = None
        # tid -> [name, entry text (with prefix), shown as <unfinished ...> yet, entry arguments]
        self.inflight: dict[int, list] = {}

    # -- the kernel's interface -------------------------------------------------------
    def enter(self, task, nr: int, args) -> list | None:
        """Kernel.dispatch calls this before the handler; what it returns goes to `exit`.
        The entry line is only prepared here (it is printed when the call returns,
        or as `<unfinished ...>` if another thread's line comes first)."""
        if not self.selected(nr):
            return None
        c = decode.Call(task, nr, syscall_name(nr), args)
        rest_at = 6
        if self.strace:
            head = self._prefix(task, time.monotonic()) + c.name + "("
            parts, rest_at = decode.entry_args(c)
            with self.lock:
                self.inflight[task.tid] = [c.name, head + ", ".join(parts), False, parts]
        return [c, rest_at, time.perf_counter()]

    def exit(self, task, call: list | None, ret) -> None:
        """After the handler: ret is its result, or None for a call that never returns
        (exit_group; strace shows `= ?` and -c leaves it out)."""
        if call is None:
            return
        c, rest_at, t0 = call
        if ret is not None and self.summary:
            self._count(c.nr, time.perf_counter() - t0, isinstance(ret, int) and -4096 < ret < 0)
        if self.strace:
            c.ret = ret
            self._finish_line(task, c, ret, rest_at)

    def retract(self, task, call: list | None) -> None:
        """The call is made again from the start (kernel/fastcalls.py, WouldBlock): its
        entry line, not printed yet (the poller holds the kernel lock), is dropped."""
        if call is not None and self.strace:
            with self.lock:
                self.inflight.pop(task.tid, None)

    def exec(self, task, path: str, argv: list[bytes], envp_addr: int, nenv: int) -> None:
        """strace's first line, for the program umiak starts: execve("./prog", ["./prog"], 0x7ff... /* 3 vars */) = 0."""
        if not self.selected(59):
            return
        if self.summary:
            self._count(59, 0.0, False)   # strace -c counts the execve it started the program with
        if not self.strace:
            return
        items = [decode.quote(a[:decode.MAX_STRLEN]) + ("..." if len(a) > decode.MAX_STRLEN else "")
                 for a in argv[:decode.MAX_ARRAY]]
        if len(argv) > decode.MAX_ARRAY:
            items.append("...")
        env = f"{decode.ptr(envp_addr)} /* {nenv} var{'s' if nenv != 1 else ''} */"
        line = f"{self._prefix(task)}execve({decode.quote(path.encode())}, [{', '.join(items)}], {env}) "
        with self.lock:
            self._emit(task.tid, line.ljust(COLUMN) + "= 0\n")

    def signal(self, task, signo: int, code: int, addr: int, info: bytes | None = None) -> None:
        """A signal being delivered (or killing the program); info is the raw siginfo_t if known."""
        if self.strace:
            self._line(task, decode.siginfo(signo, code, addr, info))

    def exited(self, task, status: int, signal: int) -> None:
        if not self.strace:
            return
        if signal:
            self._line(task, f"+++ killed by {decode.signame(signal)} +++")
        else:
            self._line(task, f"+++ exited with {status} +++")

    def finish(self) -> None:
        try:
            if self.summary:
                self._write(self.summary_table())
        finally:
            if self.close_out:
                try:
                    self.out.close()
                except OSError:
                    pass

    # -- counting ------------------------------------------------------------------
    def _count(self, nr: int, seconds: float, failed: bool) -> None:
        st = self.stats.get(nr)
        if st is None:
            st = self.stats[nr] = Stat()
        st.calls += 1
        st.seconds += seconds
        if failed:
            st.errors += 1

    # -- lines -----------------------------------------------------------------------
    def _prefix(self, task, stamp: float | None = None) -> str:
        """[pid  N] while the VM has more than one task (threads of any process, as strace -f
        prints while it traces more than one), then -r's relative time."""
        tasks = getattr(task.kernel, "tasks", None)
        if tasks is None:
            tasks = getattr(task.process, "tasks", ())
        pre = f"[pid {task.tid:5d}] " if len(tasks or ()) > 1 else ""
        if self.timestamps:
            if stamp is None:
                stamp = time.monotonic()
            rel = 0.0 if self.last_stamp is None else max(0.0, stamp - self.last_stamp)
            self.last_stamp = stamp
            pre += f"{int(rel):6d}.{int(rel * 1e6) % 1000000:06d} "
        return pre

    def _finish_line(self, task, c, ret, rest_at: int) -> None:
        with self.lock:
            name, entry, unfinished, parts = self.inflight.pop(task.tid)
            try:
                res = decode.result(c) if ret is not None else "?"
            except Exception:  # noqa: BLE001 - never let a decoder bug stop the program
                res = str(ret)
            more = decode.exit_args(c, rest_at) if ret is not None else []
            if unfinished:
                head = self._prefix(task) + f"<... {name} resumed>"
                if more:
                    head += (", " if parts else "") + ", ".join(more)
                line = head + ") "
            else:
                line = entry + (", " if parts and more else "") + ", ".join(more) + ") "
            if len(line) < COLUMN:
                line += " " * (COLUMN - len(line))
            self._emit(task.tid, line + "= " + res + _absent_mark(task, c.nr) + "\n")

    def _line(self, task, text: str) -> None:
        with self.lock:
            self._emit(task.tid, self._prefix(task) + text + "\n")

    def _emit(self, tid: int, text: str) -> None:
        """Write a line; calls of other threads still running are first shown as unfinished."""
        if self.inflight:
            for other, rec in self.inflight.items():
                if other != tid and not rec[2]:
                    rec[2] = True
                    text = rec[1] + " <unfinished ...>\n" + text
        self._write(text)

    def _write(self, text: str) -> None:
        try:
            self.out.write(text)
            self.out.flush()
        except (OSError, ValueError):
            pass

    # -- summary -----------------------------------------------------------------------
    def summary_table(self) -> str:
        """strace -c's table; times are host wall-clock time inside umiak's Python kernel."""
        rows = sorted(self.stats.items(), key=lambda kv: (-kv[1].seconds, -kv[1].calls, kv[0]))
        total_s = sum(s.seconds for _, s in rows)
        total_c = sum(s.calls for _, s in rows)
        total_e = sum(s.errors for _, s in rows)
        dash = "------ ----------- ----------- --------- --------- ----------------"
        lines = [NOTE, "% time     seconds  usecs/call     calls    errors syscall", dash]

        def row(pct, secs, calls, errors, name):
            usecs = int(secs * 1e6 / calls) if calls else 0
            err = f"{errors:9d}" if errors else " " * 9
            return f"{pct:6.2f} {secs:11.6f} {usecs:11d} {calls:9d} {err} {name}"

        for nr, s in rows:
            pct = 100.0 * s.seconds / total_s if total_s else 0.0
            lines.append(row(pct, s.seconds, s.calls, s.errors, syscall_name(nr)))
        lines.append(dash)
        lines.append(row(100.0, total_s, total_c, total_e, "total"))
        return "\n".join(lines) + "\n"


def _absent_mark(task, nr: int) -> str:
    """' <not in this kernel>' for a call its kernel config left out (umiak.config.runtime
    marks those handlers `absent`)."""
    handlers = getattr(task.kernel, "handlers", None)
    h = handlers[nr] if handlers is not None and 0 <= nr < len(handlers) else None
    return " <not in this kernel>" if getattr(h, "absent", False) else ""
