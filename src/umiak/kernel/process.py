"""Processes and tasks (threads). A VM holds a tree of processes (pid 1 is the
program `umiak run` started); each has its own address space, fd table, cwd,
credentials, limits and signal actions, and one or more tasks, each with its own
vCPU and host thread. A process whose tasks have all ended is a zombie (no host
thread, no vCPU, no memory) until its parent reaps it.

Locking: one kernel lock (`kernel.lock`, a plain Lock) guards all kernel state;
the run loop holds it while a syscall or fault is handled and drops it while
the vCPU runs guest code. A task that must wait does so on its own condition
(`task.cond`, bound to the kernel lock) through `Task.wait`, so every blocking
call sleeps, times out and is interrupted by signals the same way.
"""

import os
import threading
import time
from typing import TYPE_CHECKING

from umiak.kernel import abi
from umiak.kernel.files import FdTable
from umiak.kernel.mm import AddressSpace
from umiak.records import field, record

if TYPE_CHECKING:
    from umiak.kernel.syscalls.event import SignalFd
    from umiak.kernel.syscalls.pidfd import PidFd
    from umiak.kernel.syscalls.time import GuestTimer


CAP_LAST_CAP = 40                      # CAP_CHECKPOINT_RESTORE, Linux 5.9+
CAP_ALL = (1 << (CAP_LAST_CAP + 1)) - 1
CAP_SYS_TIME = 25
# What root has in the VM: everything but setting the clock (clock_settime is EPERM, as in a container).
ROOT_CAPS = CAP_ALL & ~(1 << CAP_SYS_TIME)


@record
class Credentials:
    """The ids and capabilities of a process; the rules that change them are syscalls/creds.py.
    File access checks use the effective uid (fsuid follows it but for setfsuid)."""
    uid: int = 0
    gid: int = 0
    euid: int = 0
    egid: int = 0
    groups: list[int] = field(default_factory=list)
    suid: int = 0                    # saved set-user-ID
    sgid: int = 0
    fsuid: int = 0
    fsgid: int = 0
    cap_effective: int = ROOT_CAPS   # bit n = capability n
    cap_permitted: int = ROOT_CAPS
    cap_inheritable: int = 0
    keepcaps: bool = False           # prctl(PR_SET_KEEPCAPS)

    def capable(self, cap: int) -> bool:
        return bool(self.cap_effective >> cap & 1)

    def become(self, uid: int, gid: int) -> None:
        """Every id is uid / gid, with the capabilities Linux gives that uid at exec."""
        self.uid = self.euid = self.suid = self.fsuid = uid
        self.gid = self.egid = self.sgid = self.fsgid = gid
        self.cap_effective = self.cap_permitted = ROOT_CAPS if uid == 0 else 0


def host_nofile() -> list[int]:
    """RLIMIT_NOFILE of umiak's own process: what the program would get natively (a program
    sizing itself by the hard limit opens as many descriptors as it would on the host)."""
    import resource
    try:
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    except (OSError, ValueError):
        return [1024, 1 << 20]
    inf = abi.RLIM_INFINITY
    return [inf if soft < 0 else soft, inf if hard < 0 else hard]


class Process:
    """What Linux shares between the threads of one thread group."""

    def __init__(self, kernel, pid: int, mm: AddressSpace, fds: FdTable, cwd: str):
        self.kernel = kernel
        self.pid = pid
        self.ppid = 1
        self.pgid = pid
        self.sid = pid
        self.mm = mm
        self.fds = fds
        self.cwd = cwd                 # guest path, absolute, normalised
        self.umask = 0o022
        self.exe = ""                  # guest path of the program (/proc/self/exe)
        self.argv: list[bytes] = []
        self.envp: list[bytes] = []
        self.auxv: list[tuple[int, int]] = []
        self.creds = Credentials()
        self.sigactions: dict[int, tuple[int, int, int, int]] = {}  # signo -> (handler, flags, restorer, mask)
        self.rlimits: dict[int, list[int]] = {
            abi.RLIMIT_STACK: [8 << 20, abi.RLIM_INFINITY],
            abi.RLIMIT_NOFILE: host_nofile(),   # a configured kernel sets the soft one (FD_LIMIT)
            abi.RLIMIT_CORE: [0, abi.RLIM_INFINITY],
            abi.RLIMIT_NPROC: [63336, 63336],
            abi.RLIMIT_MEMLOCK: [8 << 20, 8 << 20],
            abi.RLIMIT_SIGPENDING: [63336, 63336],
            abi.RLIMIT_MSGQUEUE: [819200, 819200],
            abi.RLIMIT_RTPRIO: [0, 0],
            abi.RLIMIT_NICE: [0, 0],
        }
        self.tasks: dict[int, "Task"] = {}
        self.comm = b""
        self.start_time = 0.0
        self.pending = 0                       # process-directed pending signals
        self.siginfo: dict[int, list[bytes]] = {}
        self.exiting = False                   # exit_group or a fatal signal is under way
        self.exit_status = 0
        self.exit_signal = 0
        self.done = threading.Event()          # set when the last task has ended
        self.threads: list[threading.Thread] = []
        self.leader: "Task | None" = None
        # Timers (syscalls/time.py): setitimer's by ITIMER_* (each made on first use) and
        # timer_create's by timer id.
        self.itimers: dict[int, GuestTimer] = {}
        self.posix_timers: dict[int, GuestTimer] = {}
        # Open signalfds (syscalls/event.py), woken by signals.send when a signal in their mask
        # arrives; a signalfd leaves the list when its last reference closes.
        self.signalfds: list[SignalFd] = []
        self.membarrier_registered = False     # MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED was done
        self.parent: "Process | None" = None
        self.children: list["Process"] = []
        self.child_signal = abi.SIGCHLD        # sent to the parent at exit (clone's exit signal)
        self.zombie = False                    # every task ended; waits to be reaped
        self.did_exec = False                  # setpgid on a child that has exec'd is EACCES
        self.vfork_parent: "Task | None" = None   # sleeps in vfork until this process execs or exits
        self.cutime = self.cstime = 0.0        # CPU time of reaped children
        self.pdeath_signal = 0                 # PR_SET_PDEATHSIG: sent when the parent ends
        self.subreaper = False                 # PR_SET_CHILD_SUBREAPER: orphans below come here
        self.pidfds: list[PidFd] = []          # open pidfds naming this process (woken at its end)
        self.fs_peers: list[Process] | None = None   # processes sharing cwd and umask (CLONE_FS)
        # Job control (kernel/jobctl.py): stopped by a stop signal; a stop or a continue
        # that wait4(WUNTRACED / WCONTINUED) has yet to report.
        self.stopped = False
        self.stop_signal = 0
        self.stop_report = False
        self.cont_report = False

    def wait_status(self) -> int:
        """The status word wait4 reports for a zombie: exit code << 8, or the signal that killed it."""
        if self.exit_signal:
            return self.exit_signal & 0x7F
        return (self.exit_status & 0xFF) << 8

    def set_fs(self, cwd: str | None = None, umask: int | None = None) -> None:
        """chdir/fchdir/umask: the change reaches every process that shares this one's
        fs_struct (clone with CLONE_FS)."""
        for p in self.fs_peers or (self,):
            if cwd is not None:
                p.cwd = cwd
            if umask is not None:
                p.umask = umask

    def release_vfork(self) -> None:
        """The vfork parent may run again (this child exec'd or exited). Kernel lock held."""
        parent, self.vfork_parent = self.vfork_parent, None
        if parent is not None:
            parent.wake()


class Task:
    """One guest thread: a vCPU and the per-thread kernel state."""

    def __init__(self, process: Process, tid: int):
        self.process = process
        self.kernel = process.kernel
        self.mm = process.mm
        self.fds = process.fds
        self.tid = tid
        self.vcpu = None
        self.sigmask = 0
        self.clear_child_tid = 0
        self.robust_list = (0, 0)
        self.sigaltstack = (0, 2, 0)  # sp, flags (SS_DISABLE), size
        self.comm = process.comm
        self.pending = 0              # thread-directed pending signals
        self.siginfo: dict[int, list[bytes]] = {}
        self.has_signal = False       # a deliverable signal is pending (checked after each syscall)
        self.fault_error = 0          # error code and vector of the last fault, for sigcontext
        self.fault_trapno = 0
        self.cond = threading.Condition(process.kernel.lock)
        self.in_guest = False
        self.host_thread = None       # threading ident of the host thread driving the vCPU
        self.cpu_start = 0.0
        self.restart_nr = None        # syscall to restart if a signal handler has SA_RESTART
        self.restart_nohand = False   # ... only if no handler runs (ERESTARTNOHAND: sleeps, pause)
        self.restart_always = False   # ... even after a handler without SA_RESTART (ERESTARTNOINTR: clone)
        self.restart_block = None     # how restart_syscall continues an interrupted sleep (Linux's)
        self.killed = False           # another thread's execve ends this one
        self.saved_sigmask = None     # mask to restore after a handler (rt_sigsuspend)
        self.nice = 0                 # setpriority(2): per thread, inherited by new threads
        self.ioprio = 0               # ioprio_set(2): IOPRIO_CLASS_NONE until set
        self.mempolicy = (0, 0)       # set_mempolicy(2): (mode with flags, node mask)
        self._wake_fd: int | None = None   # eventfd that interrupts a host poll in Task.wait
        self.sleeping = False         # in Task.wait (/proc's S state)
        self.no_wait = False          # served on the exitless poller: a wait is WouldBlock instead
        self._polling = False
        process.tasks[tid] = self
        process.kernel.tasks[tid] = self

    # -- signals --------------------------------------------------------------
    def recompute_pending(self) -> None:
        """Refresh has_signal. Caller holds the kernel lock."""
        p = self.process
        blockable = ~self.sigmask | (1 << 8) | (1 << 18)  # SIGKILL, SIGSTOP cannot be blocked
        self.has_signal = bool((self.pending | p.pending) & blockable) or p.exiting or self.killed or p.stopped

    def set_sigmask(self, mask: int) -> None:
        self.sigmask = mask & ~((1 << 8) | (1 << 18))
        self.recompute_pending()

    def interrupt(self) -> None:
        """Make the task notice a signal or an exit: wake its wait, kick its vCPU.

        Caller holds the kernel lock."""
        self.recompute_pending()
        self.wake()
        if self.in_guest and self.vcpu is not None:
            self.vcpu.kick()

    def wake(self) -> None:
        """Wake the task from Task.wait. Caller holds the kernel lock."""
        self.cond.notify_all()
        if self._polling and self._wake_fd is not None:
            os.eventfd_write(self._wake_fd, 1)

    def wait(self, ready, timeout: float | None = None, interruptible: bool = True,
             host_fds: list[tuple[int, int]] | None = None) -> bool:
        """Sleep until ready() is true (or a host fd in host_fds is ready); False on
        timeout. EINTR (as ERESTARTSYS) when a signal arrives. Caller holds the kernel
        lock; it is released while asleep."""
        self.sleeping = True   # /proc's S state
        try:
            return self._wait(ready, timeout, interruptible, host_fds)
        finally:
            self.sleeping = False

    def _wait(self, ready, timeout: float | None = None, interruptible: bool = True,
              host_fds: list[tuple[int, int]] | None = None) -> bool:
        from umiak.kernel.errors import ERESTARTSYS, SyscallError
        deadline = None if timeout is None else time.monotonic() + timeout
        while not ready():
            if self.process.exiting or self.killed:
                raise TaskKilled()
            if interruptible and self.has_signal:
                raise SyscallError(ERESTARTSYS)
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                return False
            if self.no_wait:
                raise WouldBlock()
            if host_fds:
                if self._poll_host(host_fds, left):
                    return True
            elif left is None:
                self.cond.wait()
            else:
                self.cond.wait(left)
        return True

    def _poll_host(self, host_fds: list[tuple[int, int]], left: float | None) -> bool:
        """Poll host fds plus this task's wake fd with the kernel lock released."""
        import select
        wake_fd = self._wake_fd
        if wake_fd is None:
            wake_fd = self._wake_fd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
        p = select.poll()
        for fd, ev in host_fds:
            p.register(fd, ev)
        p.register(wake_fd, select.POLLIN)
        lock = self.kernel.lock
        self._polling = True
        lock.release()
        try:
            got = p.poll(None if left is None else max(0, int(left * 1000 + 0.999)))
        except InterruptedError:
            got = []
        finally:
            lock.acquire()
            self._polling = False
        woke = False
        for fd, _ in got:
            if fd == wake_fd:
                try:
                    os.eventfd_read(wake_fd)
                except BlockingIOError:
                    pass
            else:
                woke = True
        return woke


class WouldBlock(BaseException):
    """A call served on the exitless poller (kernel/fastcalls.py) would wait: it is handed
    back, and the vCPU's own thread makes it again from the start. Raised before the wait,
    so what the call did until then must be undone as for a signal (ERESTARTSYS)."""


class TaskKilled(BaseException):
    """The process is ending (exit_group or a fatal signal in another thread): unwind this task."""
