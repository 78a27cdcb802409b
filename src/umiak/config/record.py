"""What one run used: syscalls, ioctl requests, fcntl/prctl commands, socket families,
/proc, /sys paths and the shared libraries opened, across all threads (`umiak run
--record-config`, `umiak config app`: the libraries beyond the ELF closure are the ones
loaded with dlopen, which static analysis cannot see).

A Recorder sits where the tracer sits (Kernel.dispatch's enter/exit hooks) and
wraps the strace tracer when there is one, so both see every call. It only counts
in `enter` (no timing, no decoding), so a recorded run is barely slower.
"""

# syscall number -> index of its path argument (calls that name a file)
PATH_ARG = {2: 0, 4: 0, 6: 0, 21: 0, 59: 0, 76: 0, 80: 0, 89: 0, 137: 0, 188: 0, 191: 0, 194: 0,
            257: 1, 262: 1, 267: 1, 269: 1, 322: 1, 332: 1, 437: 1, 439: 1}
IOCTL, FCNTL, PRCTL, SOCKET, SOCKETPAIR = 16, 72, 157, 41, 53
CLONE, CLONE3, FORK, VFORK = 56, 435, 57, 58
OPENS = (2, 257, 437)   # open, openat, openat2: a shared library is recorded when one succeeds


def _is_library(p: bytes) -> bool:
    base = p.rsplit(b"/", 1)[-1]
    return base.endswith(b".so") or b".so." in base


class _Open:
    """enter's token for an open of a shared library: exit records it if the open worked."""
    __slots__ = ("path", "inner")

    def __init__(self, path: str, inner):
        self.path, self.inner = path, inner


class Recorder:
    """The tracer interface (enter, exit, exec, signal, exited, finish), recording only."""

    def __init__(self, inner=None):
        self.inner = inner                     # the strace tracer, if the run has one
        self.counts: dict[int, int] = {}       # syscall number -> calls
        self.ioctls: set[int] = set()
        self.fcntls: set[int] = set()
        self.prctls: set[int] = set()
        self.families: set[int] = set()
        self.paths: set[str] = set()           # /proc and /sys paths (and /dev ones)
        self.libraries: set[str] = set()       # shared libraries opened (guest paths, as named)
        self.new_processes = 0                 # clones without CLONE_THREAD, forks, vforks
        self.exit_status: int | None = None
        self.exit_signal = 0

    def enter(self, task, nr: int, args):
        c = self.counts
        c[nr] = c.get(nr, 0) + 1
        if nr in PATH_ARG:
            try:
                p = task.mm.read_cstr(args[PATH_ARG[nr]], 4096)
                if p.startswith((b"/proc", b"/sys", b"/dev")):
                    self.paths.add(p.decode("utf-8", "replace"))
                elif nr in OPENS and _is_library(p):
                    inner = self.inner
                    return _Open(p.decode("utf-8", "surrogateescape"),
                                 None if inner is None else inner.enter(task, nr, args))
            except Exception:  # noqa: BLE001 - a bad pointer is the handler's business
                pass
        elif nr == IOCTL:
            self.ioctls.add(args[1] & 0xFFFFFFFF)
        elif nr == FCNTL:
            self.fcntls.add(args[1] & 0xFFFFFFFF)
        elif nr == PRCTL:
            self.prctls.add(args[0] & 0xFFFFFFFF)
        elif nr in (SOCKET, SOCKETPAIR):
            self.families.add(args[0] & 0xFFFF)
        elif nr in (CLONE, CLONE3, FORK, VFORK):
            try:   # (glibc's fork is a clone: only the flags tell a process from a thread)
                flags = args[0] if nr == CLONE else task.mm.read_u64(args[0]) if nr == CLONE3 else 0
            except Exception:  # noqa: BLE001 - a bad pointer is the handler's business
                flags = -1   # (counted as a thread)
            from umiak.kernel.abi import CLONE_THREAD
            if not flags & CLONE_THREAD:
                self.new_processes += 1
        inner = self.inner
        return None if inner is None else inner.enter(task, nr, args)

    def exit(self, task, call, ret) -> None:
        if isinstance(call, _Open):
            if isinstance(ret, int) and ret >= 0:
                self.libraries.add(call.path)
            call = call.inner
        if self.inner is not None:
            self.inner.exit(task, call, ret)

    def exec(self, task, path, argv, envp_addr, nenv) -> None:
        if self.inner is not None:
            self.inner.exec(task, path, argv, envp_addr, nenv)

    def signal(self, task, signo, code, addr, info=None) -> None:
        if self.inner is not None:
            self.inner.signal(task, signo, code, addr, info)

    def exited(self, task, status, signal) -> None:
        if self.inner is not None:
            self.inner.exited(task, status, signal)

    def finish(self) -> None:
        if self.inner is not None:
            self.inner.finish()

    # -- results -----------------------------------------------------------------------
    def syscall_names(self) -> dict[str, int]:
        from umiak.kernel.syscalls.table import NAMES
        return {NAMES.get(nr, f"syscall_{nr}"): n for nr, n in sorted(self.counts.items())}

    def merge(self, other: "Recorder") -> None:
        for nr, n in other.counts.items():
            self.counts[nr] = self.counts.get(nr, 0) + n
        self.ioctls |= other.ioctls
        self.fcntls |= other.fcntls
        self.prctls |= other.prctls
        self.families |= other.families
        self.paths |= other.paths
        self.libraries |= other.libraries
        self.new_processes += other.new_processes

    def as_dict(self) -> dict:
        return {"syscalls": self.syscall_names(), "ioctl": sorted(self.ioctls), "fcntl": sorted(self.fcntls),
                "prctl": sorted(self.prctls), "families": sorted(self.families), "paths": sorted(self.paths),
                "libraries": sorted(self.libraries)}


__all__ = ["Recorder"]
