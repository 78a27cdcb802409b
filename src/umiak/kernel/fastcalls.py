"""Which system calls a platform's poller thread may serve without a VM exit (kvm's
exitless path, platform/kvm/exitless.py), and serving them through the one dispatcher.

The poller serves a call on its own host thread while the calling vCPU spins in its
stub, so the call must finish at once and must not need the vCPU: nothing that may
block (a read of an empty pipe, a futex wait, sleeps, accept), nothing that reads or
writes registers or changes the task (exit, clone, execve, rt_sigreturn, arch_prctl,
signal masks), and nothing for a thread with a signal pending. An open is served: only a
FIFO's can wait, and a wait on the poller is WouldBlock (Task.wait), raised before it and
undone as for a signal, so the call is handed back and made again. So are epoll_wait and
poll whatever their timeout: what is ready now is answered here (a busy server's waits),
and one that would wait is handed back before it changed anything (epoll_pwait with a
signal mask only polls: the mask is the task's). A non-blocking listener's accept is
served (a new connection is one more file), and socket options are set and read (a
server sets several on each connection). A signal action may
change (rt_sigaction: a table entry; a signal it makes deliverable is one pending, which
the reply reports), and ioctl may ask what a file is (TCGETS, FIONREAD, ...), not wait
for it (TCSETSW drains output) nor make the terminal signal anyone (TIOCSPGRP). Everything
else is answered "take the real exit" and served by the vCPU's own thread as before.
strace, --syscall-summary and an app kernel's table see both paths alike: both call
Kernel.dispatch under the kernel lock.
"""

from typing import Any

from umiak.kernel import abi
from umiak.kernel.abi import FUTEX_CMD_MASK
from umiak.kernel.errors import EINTR, ERESTARTSYS
from umiak.kernel.process import WouldBlock
from umiak.kernel.syscalls.table import NUMBERS

# Calls that never block and never need the vCPU, whatever their arguments.
ALWAYS = (
    "getpid", "getppid", "gettid", "getuid", "geteuid", "getgid", "getegid", "getpgrp", "getpgid",
    "getsid", "getgroups", "getresuid", "getresgid", "uname", "sysinfo", "times", "getrusage",
    "clock_gettime", "clock_getres", "gettimeofday", "time", "getcpu", "sched_getaffinity",
    "getcwd", "umask", "getrlimit", "getrandom", "fstat", "newfstatat", "stat", "lstat", "statx",
    "access", "faccessat", "faccessat2", "readlink", "readlinkat", "lseek", "close", "dup", "dup3",
    "mmap", "munmap", "mprotect", "brk", "madvise", "getdents64", "fstatfs", "statfs",
    "epoll_ctl", "sched_getscheduler", "sched_getparam", "getpriority", "capget", "rt_sigaction",
    "setsockopt", "getsockopt", "getsockname", "getpeername",
)
# I/O on a file descriptor: only when the file cannot make the call wait.
FD_IO = ("read", "write", "pread64", "pwrite64", "readv", "writev", "preadv", "pwritev",
         "recvfrom", "sendto", "accept", "accept4")
OPENS = ("open", "openat", "openat2", "creat")
FCNTL_SAFE = frozenset((0, 1, 2, 3, 4, 1030))   # F_DUPFD F_GETFD F_SETFD F_GETFL F_SETFL F_DUPFD_CLOEXEC
FUTEX_WAKES = frozenset((1, 5, 10))            # FUTEX_WAKE, FUTEX_WAKE_OP, FUTEX_WAKE_BITSET
# TCGETS TIOCGPGRP TIOCGWINSZ FIONREAD FIONBIO FIONCLEX FIOCLEX: questions, and fd flags
IOCTL_SAFE = frozenset((0x5401, 0x540F, 0x5413, 0x541B, 0x5421, 0x5450, 0x5451))


class FastCalls:
    """The kernel's side of an exitless platform: may_serve(nr) and serve(vcpu, ...)."""

    def __init__(self, kernel):
        self.kernel = kernel
        table = kernel.handlers
        def present(names):
            return frozenset(NUMBERS[n] for n in names if n in NUMBERS and NUMBERS[n] < len(table))
        self.always = present(ALWAYS)
        self.fd_io = present(FD_IO)
        self.opens = present(OPENS)
        self.sendfile = NUMBERS["sendfile"]
        self.fcntl = NUMBERS["fcntl"]
        self.ioctl = NUMBERS["ioctl"]
        self.futex = NUMBERS["futex"]
        self.epoll_wait = present(("epoll_wait", "epoll_pwait"))
        self.poll = NUMBERS["poll"]
        self.epoll_wait_nr = NUMBERS["epoll_wait"]
        self.always |= self.opens
        self.nrs = self.always | self.fd_io | self.epoll_wait | {self.fcntl, self.futex, self.poll, self.ioctl,
                                                                 self.sendfile}
        self._owners: dict[int, Any] = {}   # id(vcpu) -> the task it runs

    def guest_futex(self) -> bool:
        """Whether the stubs may answer futex waits and private wakes in the guest
        (platform/kvm/exitless.py): only where the host would serve them unseen and alike,
        with no tracer (strace, --syscall-summary, a snapshot point) and futex in the kernel."""
        k = self.kernel
        if k.tracer is not None:
            return False
        if k.config is not None and k.config.syscalls.get("futex") not in ("y", "m"):
            return False
        return not getattr(k.handlers[self.futex], "absent", False)

    def may_serve(self, nr: int) -> bool:
        """Whether a call with this number may be served by the poller (arguments unseen)."""
        return nr in self.nrs

    def _owner(self, vcpu):
        task = self._owners.get(id(vcpu))
        # A vCPU is reused by a later task once its task ended (and left kernel.tasks).
        if task is not None and task.vcpu is vcpu and self.kernel.tasks.get(task.tid) is task:
            return task
        for t in self.kernel.tasks.values():
            if t.vcpu is vcpu:
                self._owners[id(vcpu)] = t
                return t
        return None

    def _allowed(self, task, nr: int, a: int, b: int, c: int, d: int, e: int) -> bool:
        if nr in self.always:
            return True
        if nr in self.fd_io:
            return _cannot_wait(task, a)
        if nr == self.sendfile:
            return _cannot_wait(task, a) and _cannot_wait(task, b)
        if nr == self.futex:
            return (b & FUTEX_CMD_MASK & 0x7F) in FUTEX_WAKES
        if nr == self.fcntl:
            return b in FCNTL_SAFE
        if nr == self.ioctl:
            return (b & 0xFFFFFFFF) in IOCTL_SAFE
        if nr in self.epoll_wait:   # a wait is WouldBlock here: only what is ready now is served
            return nr == self.epoll_wait_nr or e == 0 or abi.s32(d) == 0   # a signal mask: only polling
        return nr == self.poll

    def serve(self, vcpu, nr: int, a: int, b: int, c: int, d: int, e: int, f: int, at: int = 0):
        """Serve the call on this (the poller's) thread: (result, a signal is pending now),
        or None for "take the real exit". at: where it returns to (its site, for rewrite.py)."""
        k = self.kernel
        with k.lock:
            task = self._owner(vcpu)
            if (task is None or task.has_signal or task.killed or task.process.exiting
                    or task.restart_nr is not None or not self._allowed(task, nr, a, b, c, d, e)):
                return None
            if k.rewriter is not None and k.rewriter.first_call(task, at):
                return None   # the real exit, where the call's site can be rewritten
            cur = k._current
            cur.task = task
            task.no_wait = True
            try:
                ret = k.dispatch(task, nr, a, b, c, d, e, f)
            except WouldBlock:
                return None   # an open of a FIFO: the vCPU's thread makes it, and waits
            finally:
                task.no_wait = False
                cur.task = None
            if not isinstance(ret, int):
                raise RuntimeError(f"syscall {nr} replaced the registers on the poller")
            if ret == -ERESTARTSYS:   # cannot happen for a call that does not wait
                ret = -EINTR
            return ret, task.has_signal


def _cannot_wait(task, fd: int) -> bool:
    """I/O on fd returns at once: a regular file, or one opened O_NONBLOCK."""
    f = task.fds.files.get(abi.s32(fd))
    return f is not None and bool(f.flags & abi.O_NONBLOCK or f.is_regular())
