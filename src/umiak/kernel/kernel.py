"""The kernel: the syscall dispatch table, the run loop of a task, faults and exit.

One Kernel serves one VM (one Machine). Handlers are `sys_<name>(task, *args)`
functions in `kernel/syscalls/<family>.py`, found through the one table in
`syscalls/table.py`, and receive raw 64-bit register values. Kernel.dispatch is
the one place a handler is called (the tracer hooks in around it).
"""

import functools
import importlib
import os
import sys
import threading
import time
from typing import TYPE_CHECKING

from umiak.kernel import abi
from umiak.kernel.errors import EAGAIN, ENOMEM, ENOSYS, ExitGroup, GuestOutOfMemory, SyscallError, ThreadExit
from umiak.kernel.frames import FrameAllocator
from umiak.kernel.syscalls.table import ABSENT, MAX_NR, SYSCALLS
from umiak.platform.base import ExitKind

if TYPE_CHECKING:
    from collections.abc import Callable

    from umiak.kernel.fastcalls import FastCalls
    from umiak.kernel.mm import AddressSpace
    from umiak.kernel.net.stack import NetStack
    from umiak.kernel.process import Process, Task
    from umiak.kernel.jobctl import Terminal
    from umiak.kernel.rewrite import Rewriter
    from umiak.kernel.syscalls.futex import Waiter
    from umiak.kernel.timers import TimerQueue
    from umiak.kernel.vfs.core import VFS
    from umiak.kernel.vfs.memfs import MemFS
    from umiak.loader.vdso import VdsoClock
    from umiak.trace.tracer import Tracer

# CPU exception vector -> (signal, si_code) when user code faults.
FAULT_SIGNALS = {
    0: (abi.SIGFPE, 1), 16: (abi.SIGFPE, 0), 19: (abi.SIGFPE, 0),
    1: (abi.SIGTRAP, 2), 3: (abi.SIGTRAP, 0x80),
    6: (abi.SIGILL, 2), 13: (abi.SIGSEGV, 0x80), 12: (abi.SIGBUS, 0x80),
    17: (abi.SIGBUS, 1), 14: (abi.SIGSEGV, abi.SEGV_MAPERR),
}


def _adapt(handler):
    """Give every handler the (task, a0..a5) shape, so dispatch never slices."""
    n = handler.__code__.co_argcount - 1
    if handler.__code__.co_flags & 0x04 or n >= 6:   # *args or all six
        return handler
    return {
        0: lambda t, a, b, c, d, e, f: handler(t),
        1: lambda t, a, b, c, d, e, f: handler(t, a),
        2: lambda t, a, b, c, d, e, f: handler(t, a, b),
        3: lambda t, a, b, c, d, e, f: handler(t, a, b, c),
        4: lambda t, a, b, c, d, e, f: handler(t, a, b, c, d),
        5: lambda t, a, b, c, d, e, f: handler(t, a, b, c, d, e),
    }[n]


def build_handlers(families: "set[str] | frozenset[str] | None" = None) -> list:
    """The dispatch list: nr -> handler(task, a0..a5), one callable in every slot.

    The table (syscalls/table.py) stays the one truth about each number; this list is
    only its executable form, one per Kernel. A row whose family is enabled
    (`families` None = all) starts as a stub that, on its first call, imports that
    family's module and binds the function value `sys_<name>` into every slot of
    the family (in the calling task's kernel.handlers), so after the first call of a
    family dispatch is one list index and one call. Why not import every family in
    table.py: a kernel configured without a component never imports its module, a
    hello world imports only the few families it uses (start-up stays fast), and the
    table keeps its plain-data layout. That a row with a family resolves to an existing
    function (and every `sys_*` has a row) is proved by tests/unit/test_syscall_table.py,
    not at run time.

    Rows without a handler (or of a disabled family) return -ENOSYS: warned once and
    listed at exit, or silently for ABSENT rows. Numbers that have no row (the hole
    335-423 Linux never assigned) get the unknown-syscall path, as do numbers past
    the end (Kernel.dispatch).

    Every slot's callable depends on the table alone, never on a kernel, so the
    unbound list is made once per process (per family set) and each Kernel copies it:
    making ~450 closures took ~1.5 ms of every start."""
    return list(_unbound(None if families is None else frozenset(families)))


@functools.cache
def _unbound(families: "frozenset[str] | None") -> tuple:
    table: list = [None] * MAX_NR
    for nr in range(MAX_NR):
        row = SYSCALLS.get(nr)
        if row is None:
            table[nr] = _unknown(nr)
            continue
        name, family, status, _note = row
        if family and (families is None or family in families):
            table[nr] = _stub(family, nr)
        elif status == ABSENT:
            table[nr] = _absent
        else:
            table[nr] = _enosys(name)
    return tuple(table)


@functools.cache
def _family(family: str) -> tuple:
    """(nr, adapted handler) of every row of a family: its module imported (once per process)."""
    mod = importlib.import_module(f"umiak.kernel.syscalls.{family}")
    return tuple((n, _adapt(getattr(mod, f"sys_{name}")))
                 for n, (name, fam, _status, _note) in SYSCALLS.items() if fam == family)


def _stub(family: str, nr: int):
    def first_call(task, a, b, c, d, e, f):
        table = task.kernel.handlers
        for n, handler in _family(family):
            table[n] = handler
        return table[nr](task, a, b, c, d, e, f)
    return first_call


SNAPSHOT_MARKER = 0x554D0001   # "ready" for `umiak snapshot --at ready` (umiak.snapshot)


def _snapshot_marker(task, a, b, c, d, e, f):
    """The snapshot marker: a no-op returning 0, unless `umiak snapshot` waits for it."""
    hook = task.kernel.snapshot_hook
    return 0 if hook is None else hook(task, "ready")


def _unknown(nr: int):
    return lambda task, a, b, c, d, e, f: task.kernel.unknown_syscall(task, nr)


def _absent(task, a, b, c, d, e, f) -> int:
    return -ENOSYS


def _enosys(name: str):
    return lambda task, a, b, c, d, e, f: task.kernel.note_enosys(name)


REGS_SET = object()  # returned by handlers that replaced all registers (rt_sigreturn, execve)
NR_RESTART_SYSCALL = 219   # what a call that returned ERESTART_RESTARTBLOCK is restarted as


class _Current(threading.local):
    """Per host thread: the task it runs, None on threads that run no task."""
    task = None


class Kernel:
    # Made on first use by their subsystems (None until then): the ptys (vfs/devpts.py),
    # inotify watches (inotify.py: the VFS hooks test this), SysV IPC objects (sysvipc.py)
    # and POSIX message queues (syscalls/mqueue.py).
    devpts = None
    inotify = None
    sysvipc = None
    mqueues = None

    def __init__(self, options, platform, stdio: tuple[int, int, int], err_out=None):
        self.options = options
        self.platform = platform
        self.stdio = stdio
        self.err_out = err_out if err_out is not None else sys.stderr  # umiak's own messages
        self.frames = FrameAllocator(platform.usable[0], platform.usable[1], platform.discard,
                                     platform.dirty_end, platform.clear)
        platform.more_tables = self.frames.alloc   # page tables past the platform's pool
        self._layout_seeds: dict[int, int] = {}   # page-table root -> its address-space layout
        from umiak.kernel.pagecache import PageCaches
        self.page_caches = PageCaches(self.frames, platform.ram)   # host files mapped MAP_SHARED
        self.boot_time = time.time()
        self.boot_monotonic = time.monotonic()
        self.hostname = options.hostname       # the VM's UTS names (sethostname/setdomainname)
        self.domainname = "(none)"
        self.unimplemented: dict[str, int] = {}
        self.warned: set[str] = set()      # warn_once keys
        self.tracer: Tracer | None = None   # set by the Machine for --strace / --syscall-summary
        self.processes: dict[int, Process] = {}   # pid -> Process, zombies included
        self.tasks: dict[int, Task] = {}          # tid -> live Task of any process
        self.last_pid = 1
        self.threads: set = set()                # host threads of the tasks started by clone
        self.pid_max = 32768                     # /proc/sys/kernel/pid_max
        self.oom_victim: Process | None = None   # killed for its memory, not gone yet
        self._vfs: VFS | None = None           # built on first use (the vfs property)
        self.exit_signal = 0
        self.config = options.kernel_config   # umiak.config; None: the full kernel
        # A configured kernel dispatches only its syscalls (umiak.config.runtime).
        self.handlers = build_handlers() if self.config is None else self.config.dispatch_table(self)
        self.lock = threading.Lock()   # the kernel lock: see process.py
        self._timers: TimerQueue | None = None   # the timer thread, started on first use (timers)
        self.vdso: VdsoClock | None = None       # the clock page of the vDSO, when options.vdso
        self._current = _Current()   # .task: the task this host thread runs (set by _loop)
        self.ncpus = options.cpus or os.cpu_count() or 1
        # Inode numbers of pipes and sockets, and minors of the anonymous devices (st_dev) of
        # in-memory file systems: per VM, as Linux numbers them per boot.
        import itertools
        self.pipe_inos = itertools.count(0x4001)
        self.socket_inos = itertools.count(0x10001)
        self.anon_minors = itertools.count(41)
        self.cpu_features = platform.cpu_features()
        # Futex waiters by guest address of the futex word (syscalls/futex.py).
        self.futexes: dict[object, list[Waiter]] = {}
        # Host waiters of private keys by bucket ((uaddr >> 2) & 63), and the bits of the
        # buckets that have any, for a platform whose guest answers wakes (futex_hint).
        self.futex_buckets = [0] * 64
        self.futex_bits = 0
        self.futex_hint: Callable[[int], None] | None = None
        self.fast: "FastCalls | None" = None   # the exitless path's side (kernel/fastcalls.py)
        self.terminals: dict[int, "Terminal"] = {}   # host ttys' job-control state, by device (jobctl.py)
        # Built on first use, by net.vm_stack and memfs.make_memfd: most programs need neither.
        self._net: NetStack | None = None
        self._memfd_fs: MemFS | None = None   # the internal tmpfs memfd_create's files live on
        # `umiak snapshot` (umiak.snapshot.point): called at the snapshot marker syscall, an
        # int3 it planted, and interrupted exits; None on every other run.
        self.snapshot_hook = None
        self.rewriter: "Rewriter | None" = None   # rewritten syscall sites (kernel/rewrite.py), with the exitless path

    def spawn(self, image, host_path: str, argv: list[bytes], env: dict[str, str], execfn: str | None = None):
        """Create the program's process and first task, loaded and ready to run."""
        from umiak.kernel.files import FdTable, HostFile
        from umiak.kernel.process import Process, Task
        from umiak.loader.exec import exec_program, setup_address_space
        opts = self.options
        mm = self.new_mm()
        setup_address_space(mm, opts.aslr)
        fds = FdTable()
        import fcntl
        for i, hfd in enumerate(self.stdio):
            try:
                mode = fcntl.fcntl(hfd, fcntl.F_GETFL) & (abi.O_ACCMODE | abi.O_APPEND | abi.O_NONBLOCK)
            except OSError:
                continue  # closed on the host: closed in the guest too
            fds.install_at(i, HostFile(hfd, mode, f"/dev/fd/{i}"))
        cwd = opts.cwd or ("/" if opts.image_root else os.getcwd())   # an image has none of the host's paths
        proc = Process(self, 1, mm, fds, os.path.normpath(cwd))
        proc.ppid = 0
        proc.exe = host_path
        # comm is the name execve was given (Linux's bprm->filename), not the resolved file.
        proc.comm = os.fsencode(os.path.basename(execfn or host_path))[:15]
        proc.creds.become(opts.uid, opts.gid)
        proc.start_time = time.monotonic()
        self.processes[proc.pid] = proc
        fds.limit = min(proc.rlimits[abi.RLIMIT_NOFILE][0], 1 << 20)
        if self.config is not None:
            self.config.boot(self, proc)   # the config's values: fd limit, fault-around, platform
        if opts.net != "host":
            from umiak.kernel import net
            net.start(self)   # before the program reads /etc/resolv.conf
        envp = [os.fsencode(f"{k}={v}") for k, v in env.items()]
        task = Task(proc, proc.pid)
        task.nice = os.getpriority(os.PRIO_PROCESS, 0)   # inherited from umiak, as a child's is
        proc.leader = task
        self._enable_exitless()
        vcpu = task.vcpu = self.platform.create_vcpu(0, 0, mm.platform)
        self.vdso = None
        clock = self.platform.tsc_clock(task.vcpu) if opts.vdso else None
        if opts.vdso:
            # Without a TSC clock the vDSO's functions fall back to the real syscalls.
            from umiak.loader.vdso import VdsoClock
            vdso = self.vdso = VdsoClock(self, mm)
        entry, sp = exec_program(self, proc, image, host_path, argv, envp, self._read_interp, opts.aslr, execfn)
        regs = [0] * 18
        regs[16], regs[6], regs[17] = entry, sp, 2   # rip, rsp, rflags
        vcpu.set_regs(regs)
        if self.tracer is not None:
            self.tracer.exec(task, execfn or host_path, argv, sp + 8 * (len(argv) + 2), len(envp))
        if clock is not None:
            vdso.start(*clock)   # clock is only made with opts.vdso
        return task

    def spawn_process(self, image, exe_path: str, argv: list[bytes], envp: list[bytes], execfn: str,
                      stdio: tuple[int, int, int], cwd: str, uid: int, gid: int, groups=()) -> "Process":
        """A new process started from the host while the VM runs (as `docker exec` enters a
        container): its own address space, the host fds `stdio` as 0, 1, 2 (owned: closed
        when it ends), no parent (ppid 0, as a process that entered a PID namespace from
        outside; reaped at its end). Wait on .done, then read .exit_status. Kernel lock held."""
        import fcntl

        from umiak.kernel.files import FdTable, HostFile
        from umiak.kernel.process import Process, Task
        from umiak.loader.exec import exec_program, setup_address_space
        mm = self.new_mm()
        setup_address_space(mm, self.options.aslr)
        if self.vdso is not None:
            self.vdso.map(mm)
        fds = FdTable()
        for i, hfd in enumerate(stdio):
            mode = fcntl.fcntl(hfd, fcntl.F_GETFL) & (abi.O_ACCMODE | abi.O_APPEND | abi.O_NONBLOCK)
            fds.install_at(i, HostFile(hfd, mode, f"/dev/fd/{i}", owned=True))
        init = self.processes.get(1)
        pid = self.alloc_pid()
        proc = Process(self, pid, mm, fds, os.path.normpath(cwd))
        proc.ppid, proc.parent = 0, None
        proc.creds.become(uid, gid)
        proc.creds.groups = list(groups)
        if init is not None:
            proc.rlimits = {k: list(v) for k, v in init.rlimits.items()}
        fds.limit = min(proc.rlimits[abi.RLIMIT_NOFILE][0], 1 << 20)
        proc.start_time = time.monotonic()
        if os.isatty(stdio[0]):
            # A terminal of its own (docker exec -t): it leads a new session (sid = pgid = pid,
            # as Process makes it) whose controlling terminal that is, as runc's setsid + TIOCSCTTY.
            from umiak.kernel.jobctl import Terminal
            self.terminals[os.fstat(stdio[0]).st_rdev] = Terminal(pid, pid)
        task = Task(proc, pid)
        task.nice = os.getpriority(os.PRIO_PROCESS, 0)
        proc.leader = task
        vcpu = None
        try:
            vcpu = task.vcpu = self.platform.create_vcpu(0, 0, mm.platform)
            entry, sp = exec_program(self, proc, image, exe_path, argv, envp, self._read_interp,
                                     self.options.aslr, execfn)
        except BaseException:
            self.tasks.pop(pid, None)
            if vcpu is not None:
                vcpu.close()
            mm.release()
            for n in list(fds.files):
                fds.close(n)
            raise
        proc.exe = exe_path
        proc.comm = task.comm = os.fsencode(os.path.basename(execfn or exe_path))[:15]
        regs = [0] * 18
        regs[16], regs[6], regs[17] = entry, sp, 2   # rip, rsp, rflags
        vcpu.set_regs(regs)
        self.processes[pid] = proc
        self.start_thread(task)
        return proc

    def _enable_exitless(self) -> None:
        """Let the platform serve calls without VM exits where it pays (kvm under PVM, a
        host core to spare): 'auto' unless CONFIG_EXITLESS_ON/OFF or UMIAK_EXITLESS=y|n|auto
        says otherwise (see the README, Exitless system calls)."""
        enable = getattr(self.platform, "enable_exitless", None)
        if enable is None:
            return
        mode = os.environ.get("UMIAK_EXITLESS", "")
        if mode not in ("y", "n", "auto"):
            mode = "auto"
            if self.config is not None:
                if self.config.value("EXITLESS_ON") == "y":
                    mode = "y"
                elif self.config.value("EXITLESS_OFF") == "y":
                    mode = "n"
        if mode == "n":
            return
        from umiak.kernel.fastcalls import FastCalls
        fast = FastCalls(self)
        rewrite = self.options.rewrite and os.environ.get("UMIAK_REWRITE", "y") != "n"
        if not enable(fast.serve, fast.may_serve, mode, rewrite):
            return
        self.fast = fast
        self.futex_hint = self.platform.exitless.set_waiters
        if rewrite:
            from umiak.kernel.rewrite import Rewriter
            from umiak.platform.kvm.exitless import RW_PTR_OFF
            self.rewriter = Rewriter(self, fast.may_serve, RW_PTR_OFF)
            self.platform.exitless.rewriter = self.rewriter

    def tracer_changed(self) -> None:
        """The guest may answer futex calls itself only while no tracer wants to see them."""
        if self.fast is not None:
            self.platform.exitless.set_futex(self.fast.guest_futex())

    def alloc_pid(self) -> int:
        """The next free pid after the last one given, wrapping to 300 past pid_max, as
        Linux's; a number still used by a task, a zombie or a group or session is skipped."""
        n = self.last_pid
        for _ in range(self.pid_max):
            n = n + 1 if n + 1 < self.pid_max else 300
            if n in self.tasks or n in self.processes:
                continue
            if any(p.pgid == n or p.sid == n for p in self.processes.values()):
                continue
            self.last_pid = n
            return n
        raise SyscallError(EAGAIN)

    def _read_interp(self, path: str) -> bytes:
        """The program interpreter (PT_INTERP), read through the guest's file system."""
        from umiak.errors import ExecFormatError
        if self.config is not None and not self.config.has("LOADER_DYNAMIC"):
            raise ExecFormatError(f"interpreter {path}: dynamic programs are not in this kernel "
                                  "(CONFIG_LOADER_DYNAMIC is not set)")
        task = self.current_task() or next(iter(self.processes[1].tasks.values()), None)
        try:
            f = self.vfs.open_exec(task, path)
            try:
                return f.pread(0, f.size())
            finally:
                f.close()
        except SyscallError as e:
            raise ExecFormatError(f"interpreter {path}: {os.strerror(e.errno)}") from None

    def exec_image(self, task, image, exe_path: str, execfn: str, argv: list[bytes], envp: list[bytes]) -> None:
        """execve's point of no return: this task alone, a fresh address space, the new program.
        Caller holds the kernel lock."""
        from umiak.loader.exec import exec_program, setup_address_space
        proc = task.process
        others = [t for t in proc.tasks.values() if t is not task]
        for t in others:
            t.killed = True
            t.interrupt()
        task.wait(lambda: len(proc.tasks) == 1, interruptible=False)
        if task is not proc.leader:
            del proc.tasks[task.tid]
            self.tasks.pop(task.tid, None)
            task.tid = proc.pid
            proc.tasks[task.tid] = task
            self.tasks[task.tid] = task
            proc.leader = task
        old = proc.mm
        self.drop_mm(proc, old)     # first, so its page-table root can serve the new space
        mm = self.new_mm()
        proc.mm = task.mm = mm
        task.vcpu.set_root(mm.platform)
        setup_address_space(mm, self.options.aslr)
        if self.vdso is not None:
            self.vdso.map(mm)
        others = [p for p in self.processes.values() if p is not proc and not p.zombie]
        if any(p.fds is proc.fds for p in others):     # CLONE_FILES: execve unshares the table
            from umiak.kernel.files import FdTable
            fds = FdTable(proc.fds.limit)
            for n, f in proc.fds.files.items():
                fds.install_at(n, f, n in proc.fds.cloexec)
            proc.fds = task.fds = fds
        if any(p.sigactions is proc.sigactions for p in others):   # CLONE_SIGHAND: unshared too
            proc.sigactions = dict(proc.sigactions)
        for timer in proc.posix_timers.values():   # execve deletes POSIX timers (itimers stay)
            timer.cancel()
        proc.posix_timers.clear()
        for fd in sorted(proc.fds.cloexec):
            if fd in proc.fds.files:
                proc.fds.close(fd)
        for signo, act in list(proc.sigactions.items()):
            if act[0] != abi.SIG_IGN:
                del proc.sigactions[signo]
        task.sigaltstack = (0, 2, 0)
        task.clear_child_tid, task.robust_list = 0, (0, 0)
        entry, sp = exec_program(self, proc, image, exe_path, argv, envp, self._read_interp,
                                 self.options.aslr, execfn)
        vcpu = task.vcpu
        regs = [0] * 18
        regs[16], regs[6], regs[17] = entry, sp, 2
        vcpu.set_regs(regs)
        vcpu.set_fs_base(0)
        vcpu.set_gs_base(0)
        from umiak.arch.x86_64.cpu import initial_fpu
        vcpu.set_fpu(initial_fpu(vcpu.get_fpu()))
        proc.exe = exe_path
        proc.comm = task.comm = os.fsencode(os.path.basename(execfn or exe_path))[:15]
        proc.did_exec = True
        proc.release_vfork()

    def new_mm(self) -> "AddressSpace":
        """An empty address space on a page-table root of its own.

        Page tables are never freed (PVM), so a reused root keeps the tables its last
        user built; programs loaded on it get that user's random layout again (one
        per root, as zygote-forked processes share one), so the tables fit and the
        table pool does not grow with every exec."""
        import random
        from umiak.kernel.mm import AddressSpace
        root = self.platform.new_root()
        mm = AddressSpace(root, self.frames, 0, list(self.platform.reserved_va))
        seed = self._layout_seeds.get(root.cr3)
        if seed is None:
            seed = self._layout_seeds[root.cr3] = random.SystemRandom().getrandbits(62)
        mm.layout_seed = seed
        return mm

    def drop_mm(self, proc, mm, final: bool = False) -> None:
        """proc stops using mm (exit, execve): free it unless another process shares it (vfork).
        final: pid 1 exited, the VM ends (AddressSpace.release)."""
        if not any(p.mm is mm and p is not proc and not p.zombie for p in self.processes.values()):
            mm.release(final)

    def shutdown(self) -> None:
        """Release what the VM held on the host (files it opened, the timer thread)."""
        if self._timers is not None:
            self._timers.stop()
        if self._net is not None:
            from umiak.kernel import net
            net.stop(self)
        for proc in self.processes.values():
            for fd in list(proc.fds.files):
                try:
                    proc.fds.close(fd)
                except Exception:  # noqa: BLE001 - closing must go on
                    pass
        if self._vfs is not None:
            self._vfs.close()
        self.frames.retire()   # what its files free later (the garbage collector) stays theirs

    def current_task(self):
        """The task whose host thread is calling (None off the task threads)."""
        return self._current.task

    @property
    def timers(self):
        """The VM's timer thread (started on first use)."""
        if self._timers is None:
            from umiak.kernel.timers import TimerQueue
            self._timers = TimerQueue(self.lock)
        return self._timers

    @property
    def vfs(self):
        """The mount table (built on first use: most of it is lazy)."""
        if self._vfs is None:
            from umiak.kernel.vfs import build_vfs
            self._vfs = build_vfs(self)
        return self._vfs

    # -- dispatch ---------------------------------------------------------------
    def dispatch(self, task, nr: int, a: int, b: int, c: int, d: int, e: int, f: int):
        """Serve one syscall: the only place a handler is called. The tracer's enter
        and exit hooks wrap that call; a SyscallError becomes -errno."""
        if nr < MAX_NR:
            handler = self.handlers[nr]
        else:
            nr, handler = self._beyond(nr)
        tracer = self.tracer
        if tracer is None:
            try:
                return handler(task, a, b, c, d, e, f)
            except SyscallError as err:
                return -err.errno
        call = tracer.enter(task, nr, (a, b, c, d, e, f))
        try:
            ret = handler(task, a, b, c, d, e, f)
        except SyscallError as err:
            ret = -err.errno
        except BaseException as exc:
            from umiak.kernel.process import WouldBlock
            if isinstance(exc, WouldBlock):
                tracer.retract(task, call)   # handed back by the exitless poller: made again
            else:
                tracer.exit(task, call, None)   # exit_group(0) = ?
            raise
        tracer.exit(task, call, ret)
        return ret

    def _beyond(self, nr: int):
        """A number past the table: Linux looks at eax only (a number with high bits
        set is the call in its low 32), else it is unknown."""
        low = nr & 0xFFFFFFFF
        if low < MAX_NR:
            return low, self.handlers[low]
        if low == SNAPSHOT_MARKER:
            return nr, _snapshot_marker
        return nr, _unknown(nr)

    def note_enosys(self, name: str) -> int:
        n = self.unimplemented.get(name, 0)
        if n == 0:
            self.warn(f"unimplemented syscall {name}: returning -ENOSYS")
        self.unimplemented[name] = n + 1
        return -ENOSYS

    def unknown_syscall(self, task, nr: int) -> int:
        name = f"syscall_{nr}"
        if name not in self.unimplemented:
            self.warn(f"unknown syscall number {nr}: returning -ENOSYS")
        self.unimplemented[name] = self.unimplemented.get(name, 0) + 1
        return -ENOSYS

    def warn_once(self, key: str, msg: str) -> None:
        """warn() the first time for key in this VM (a condition that may recur in a loop)."""
        if key not in self.warned:
            self.warned.add(key)
            self.warn(msg)

    def warn(self, msg: str) -> None:
        try:
            self.err_out.write(f"umiak: {msg}\n")
            self.err_out.flush()
        except (OSError, ValueError):
            pass

    # -- running ----------------------------------------------------------------
    def run(self, task) -> int:
        """Run the program whose first task is `task` on the calling thread until every
        task has ended; returns the exit status as a shell reports it."""
        proc = task.process
        self._task_main(task)
        while not proc.done.wait(0.2):   # other threads still run; stay responsive to Ctrl-C
            pass
        # pid 1 has ended: every other process was killed (a PID namespace); let them go.
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            with self.lock:
                if all(p.zombie for p in self.processes.values()):
                    break
            time.sleep(0.002)
        for t in list(self.threads):
            t.join(timeout=2)
        self.exit_signal = proc.exit_signal
        return proc.exit_status

    def start_thread(self, task) -> None:
        """Give a new task its own host thread (its vCPU must already exist)."""
        import threading
        t = threading.Thread(target=self._thread_main, args=(task,), name=f"umiak-task-{task.tid}", daemon=True)
        self.threads.add(t)
        t.start()

    def _thread_main(self, task) -> None:
        try:
            self._task_main(task)
        finally:
            self.threads.discard(threading.current_thread())

    def _task_main(self, task) -> None:
        from umiak.kernel.process import TaskKilled
        status, signal, whole = 0, 0, False
        try:
            self._loop(task)
        except ExitGroup as eg:
            status, signal, whole = eg.status, eg.signal, True
        except ThreadExit as te:
            status = te.code & 0xFF
        except TaskKilled:
            pass
        except GuestOutOfMemory:
            # Frames or page tables ran out while backing a touched page and this process
            # is the largest (oom_kill): Linux's OOM killer ends it with SIGKILL. A guest's
            # own error never gets here (a bad signal frame is SIGSEGV); anything else is a bug.
            self.warn(self._oom_message(task.process))
            status, signal, whole = 128 + abi.SIGKILL, abi.SIGKILL, True
        except Exception as exc:  # noqa: BLE001 - a kernel bug must not become a traceback
            status, whole = self._internal_error(task, exc), True
        self._task_ended(task, status, signal, whole)

    def _task_ended(self, task, status: int, signal: int, whole: bool) -> None:
        proc = task.process
        with self.lock:
            if whole and not proc.exiting:
                proc.exiting = True
                proc.exit_status, proc.exit_signal = status, signal
                if self.tracer is not None:
                    self.tracer.exited(task, status, signal)
                for t in proc.tasks.values():
                    if t is not task:
                        t.interrupt()
            elif not whole and not proc.exiting:
                if self.tracer is not None and len(proc.tasks) > 1:
                    self.tracer.exited(task, status, 0)
                from umiak.kernel.syscalls.futex import exit_robust_list, wake
                try:
                    exit_robust_list(task)
                except GuestOutOfMemory:   # the thread is gone either way
                    pass
                if task.clear_child_tid:
                    try:
                        task.mm.write_u32(task.clear_child_tid, 0)
                        wake(task, task.clear_child_tid, 1)
                    except (SyscallError, GuestOutOfMemory):
                        pass
            proc.tasks.pop(task.tid, None)
            for t in proc.tasks.values():   # an execve may be waiting for the others to go
                t.wake()
            if task._wake_fd is not None:
                os.close(task._wake_fd)
                task._wake_fd = None
            if not proc.tasks:
                if not proc.exiting:
                    proc.exit_status = status
                    if self.tracer is not None:
                        self.tracer.exited(task, status, 0)
                try:
                    self._process_ended(proc)
                except Exception as exc:  # noqa: BLE001 - a kernel bug must not become a traceback
                    self._internal_error(task, exc)
                proc.done.set()
            self.tasks.pop(task.tid, None)
        if task.vcpu is not None and (task is not proc.leader or proc.pid != 1):
            task.vcpu.close()

    # -- the process tree -----------------------------------------------------------
    def _process_ended(self, proc) -> None:
        """The last task of proc ended: free what it held, hand its children to pid 1,
        tell its parent. Kernel lock held."""
        proc.zombie = True
        proc.release_vfork()
        if proc.pid == 1:
            self.frames.ending()   # the VM ends with it: its frames are not given back one by one
        if proc.fs_peers is not None:   # CLONE_FS: the others keep sharing without it
            proc.fs_peers.remove(proc)
        for timer in [*proc.itimers.values(), *proc.posix_timers.values()]:
            timer.cancel()   # a zombie's alarm never fires
        if not any(p.fds is proc.fds and not p.zombie for p in self.processes.values()):
            for fd in list(proc.fds.files):
                try:
                    proc.fds.close(fd)
                except Exception:  # noqa: BLE001 - an fd's host close failing must not stop the exit
                    pass
        self.drop_mm(proc, proc.mm, final=proc.pid == 1)
        # Orphans go to the nearest living subreaper above (PR_SET_CHILD_SUBREAPER), or pid 1.
        init = proc.parent
        while init is not None and (init.zombie or not init.subreaper):
            init = init.parent
        if init is None:
            init = self.processes.get(1)
        if init is proc or init is None or init.zombie:
            init = None
        from umiak.kernel.signals import make_siginfo, send
        for c in proc.children:
            c.parent, c.ppid = init, 0
            if init is not None:
                c.ppid = init.pid
                init.children.append(c)
            if c.pdeath_signal and not c.zombie:
                send(self, c, c.pdeath_signal, make_siginfo(c.pdeath_signal, 0x80))
        orphans, proc.children = proc.children, []
        for c in orphans:
            if c.zombie:
                self._notify_parent(c)
        if proc.pid == 1:
            self.kill_all(exclude=proc)
        if proc.pidfds:
            from umiak.kernel.syscalls.pidfd import process_ended
            process_ended(proc)
        if proc.pid != 1:
            self._notify_parent(proc)

    def host_signal(self, signo: int, info: bytes) -> None:
        """A signal sent to `umiak run` itself. SIGINT, SIGQUIT and SIGTSTP (a terminal's
        Ctrl-C, Ctrl-\\ and Ctrl-Z) go to the foreground group of pid 1's terminal (pid 1's
        own group until a shell in the VM hands the terminal to a job), as a terminal sends
        them; the others (SIGTERM as from `docker stop`, SIGHUP) go to pid 1. Lock held."""
        from umiak.kernel.jobctl import foreground_group
        from umiak.kernel.signals import send
        init = self.processes.get(1)
        if init is None or init.zombie:
            return
        targets = [init]
        if signo in (abi.SIGINT, abi.SIGQUIT, abi.SIGTSTP):
            fg = foreground_group(self) or init.pgid
            targets = [p for p in self.processes.values() if p.pgid == fg and not p.zombie]
        for p in targets:
            send(self, p, signo, info)

    def oom_kill(self, task) -> bool:
        """No frame is free for task: SIGKILL the process with the largest resident set, as
        Linux's OOM killer does. True when that is another process (or one is already being
        killed), so the task may retry; False when it is the task's own (the caller ends it).
        Kernel lock held."""
        from umiak.kernel.signals import make_siginfo, send
        victim = self.oom_victim
        if victim is not None and not victim.zombie:
            return victim is not task.process
        alive = [p for p in self.processes.values() if not p.zombie and not p.exiting and p.tasks]
        if not alive:
            return False
        victim = max(alive, key=lambda p: (len(p.mm.pages), -p.pid))
        if victim is task.process:
            return False
        self.oom_victim = victim
        self.warn(self._oom_message(victim))
        send(self, victim, abi.SIGKILL, make_siginfo(abi.SIGKILL, abi.SI_KERNEL))
        return True

    def _oom_message(self, victim) -> str:
        return (f"guest out of memory ({self.options.mem_size >> 20} MiB; raise it with -m): killed process "
                f"{victim.pid} ({victim.comm.decode(errors='replace')}), "
                f"{len(victim.mm.pages) * 4096 >> 20} MiB resident")

    def kill_all(self, exclude=None) -> None:
        """SIGKILL every process but exclude (pid 1 ended: the PID namespace goes). Lock held."""
        for p in list(self.processes.values()):
            if p is exclude or p.zombie or p.exiting:
                continue
            p.exiting = True
            p.exit_status, p.exit_signal = 128 + abi.SIGKILL, abi.SIGKILL
            for t in p.tasks.values():
                t.interrupt()

    def _notify_parent(self, child) -> None:
        """A child became a zombie: SIGCHLD (its exit signal) to the parent and wake its waits;
        reaped at once when the parent ignores SIGCHLD or set SA_NOCLDWAIT, or has none."""
        from umiak.kernel.signals import make_siginfo, send
        parent = child.parent
        if parent is None or parent.zombie:
            self.reap(child)
            return
        sig = child.child_signal
        handler, flags = parent.sigactions.get(abi.SIGCHLD, (abi.SIG_DFL, 0, 0, 0))[:2]
        autoreap = sig == abi.SIGCHLD and (handler == abi.SIG_IGN or flags & abi.SA_NOCLDWAIT)
        if autoreap and handler == abi.SIG_IGN:
            sig = 0
        if sig:
            send(self, parent, sig, make_siginfo(sig, child_code(child), extra=child_info(child)))
        for t in parent.tasks.values():
            t.wake()
        if autoreap:
            self.reap(child)

    def reap(self, child) -> None:
        """Remove a zombie from the process table. Kernel lock held."""
        pid = child.pid
        if pid != 1 and self.processes.get(pid) is child:
            del self.processes[pid]
        parent = child.parent
        if parent is not None:
            if child in parent.children:
                parent.children.remove(child)
            parent.cutime += child.cutime
            parent.cstime += child.cstime

    def _loop(self, task) -> None:
        """The life of one task: run its vCPU, serve what stops it, deliver signals."""
        from umiak.kernel.errors import ERESTART_RESTARTBLOCK, ERESTARTNOHAND, ERESTARTNOINTR, ERESTARTSYS, EINTR
        from umiak.kernel.process import TaskKilled
        from umiak.kernel.signals import deliver
        import threading
        vcpu = task.vcpu
        run, args, set_result = vcpu.run, vcpu.syscall_args, vcpu.set_syscall_result
        if self.options.verbose and task is task.process.leader and task.process.pid == 1:
            run = self._count_start_exits(vcpu)
        dispatch = self.dispatch
        lock = self.lock
        proc = task.process
        task.host_thread = threading.get_ident()
        self._current.task = task
        self.tracer_changed()   # one set after the last thread's start, say
        SYSCALL, FAULT = ExitKind.SYSCALL, ExitKind.FAULT
        at_user = vcpu.at_user
        rw = self.rewriter
        while True:
            task.in_guest = True
            # A signal is delivered only where the user state is at hand: not while the
            # vCPU sits inside a kernel stub (it leaves the stub at its next exit).
            if task.has_signal and (proc.exiting or task.killed or at_user()):
                task.in_guest = False
                if proc.exiting or task.killed:
                    raise TaskKilled()
                deliver(task)
                continue
            kind = run()
            task.in_guest = False
            if kind is SYSCALL:
                nr, a, b, c, d, e, f = args()
                with lock:
                    if rw is not None:
                        rw.note(task, nr, vcpu.return_address())
                    try:
                        ret = dispatch(task, nr, a, b, c, d, e, f)
                    except GuestOutOfMemory:
                        if not self.oom_kill(task):
                            raise
                        ret = -ENOMEM   # the call needed a frame; another process is killed for it
                if ret is REGS_SET:
                    continue
                if ret == -ERESTARTSYS:
                    task.restart_nr, task.restart_nohand = nr, False
                    ret = -EINTR
                elif ret == -ERESTARTNOHAND:   # restarted unless a handler runs (a stop, say)
                    task.restart_nr, task.restart_nohand = nr, True
                    ret = -EINTR
                elif ret == -ERESTART_RESTARTBLOCK:   # the same, continued by restart_syscall
                    task.restart_nr, task.restart_nohand = NR_RESTART_SYSCALL, True
                    ret = -EINTR
                elif ret == -ERESTARTNOINTR:   # restarted after the signal, handler or not (clone)
                    task.restart_nr, task.restart_nohand, task.restart_always = nr, False, True
                    ret = -EINTR
                set_result(ret)
                if task.has_signal:
                    deliver(task)
                task.restart_nr, task.restart_always = None, False
            elif kind is FAULT:
                with lock:
                    try:
                        self.handle_fault(task)
                    except GuestOutOfMemory:
                        if not self.oom_kill(task):
                            raise
                        # Another process is being killed for its memory: the faulting
                        # instruction runs again once it had a moment to go.
                        task.cond.wait(0.005)
                if task.has_signal:
                    deliver(task)
            elif kind == ExitKind.INTERRUPTED:
                if proc.exiting or task.killed:
                    raise TaskKilled()
                if rw is not None:
                    with lock:
                        rw.fix_rip(task)
                if self.snapshot_hook is not None and at_user():
                    with lock:
                        self.snapshot_hook(task, "signal")
                if task.has_signal and vcpu.at_user():
                    deliver(task)
            else:
                self.warn(f"guest stopped: {vcpu.error}")
                raise ExitGroup(abi.SIGKILL + 128, abi.SIGKILL)

    def _count_start_exits(self, vcpu):
        """--verbose: vcpu.run, counting the exits until the program's first write(2)-like
        call and saying how many there were (the start-up cost, issue 16)."""
        inner, args = vcpu.run, vcpu.syscall_args
        counts = {ExitKind.SYSCALL: 0, ExitKind.FAULT: 0}
        other = [0]
        done = [False]
        writes = (1, 18, 20, 296, 328)   # write, pwrite64, writev, pwritev, pwritev2

        def run():
            kind = inner()
            if not done[0]:
                if kind is ExitKind.SYSCALL and args()[0] in writes:
                    done[0] = True
                    n_sys, n_flt = counts[ExitKind.SYSCALL], counts[ExitKind.FAULT]
                    self.warn(f"{n_sys + n_flt + other[0]} VM exits before the first write "
                              f"({n_sys} syscalls, {n_flt} faults, {other[0]} other)")
                elif kind in counts:
                    counts[kind] += 1
                else:
                    other[0] += 1
            return kind
        return run

    def _internal_error(self, task, exc: Exception) -> int:
        from umiak.errors import EXIT_UMIAK_FAILURE
        nr = task.vcpu.syscall_args()[0] if task.vcpu is not None else -1
        from umiak.kernel.syscalls.table import NAMES
        where = f" in {NAMES.get(nr, nr)}()" if nr in NAMES else ""
        self.warn(f"internal error{where}: {type(exc).__name__}: {exc}"
                  + ("" if self.options.verbose else " (run with --verbose for details)"))
        if self.options.verbose:
            import traceback
            traceback.print_exception(exc, file=self.err_out)
        return EXIT_UMIAK_FAILURE

    def handle_fault(self, task) -> None:
        """A CPU exception in user code: back a lazily mapped page, or raise the signal."""
        from umiak.kernel.signals import make_siginfo
        vcpu = task.vcpu
        fault = vcpu.fault()
        addr = 0
        if fault.vector == 14:
            err = fault.error_code
            done = task.mm.handle_fault(fault.address, bool(err & 2), bool(err & 16))
            if done is True:
                vcpu.resume_fault()
                return
            if done:   # past the end of a mapped file
                signo, code = abi.SIGBUS, 2   # BUS_ADRERR
            else:
                signo, code = abi.SIGSEGV, (abi.SEGV_ACCERR if err & 1 else abi.SEGV_MAPERR)
            addr = fault.address
        elif fault.vector == 3 and self.snapshot_hook is not None and self.snapshot_hook(task, "entry"):
            return
        else:
            signo, code = FAULT_SIGNALS.get(fault.vector, (abi.SIGSEGV, 0x80))
            if signo in (abi.SIGFPE, abi.SIGILL, abi.SIGBUS, abi.SIGTRAP) and fault.vector != 3:
                addr = fault.rip
        task.fault_error, task.fault_trapno = fault.error_code, fault.vector
        self.force_signal(task, signo, make_siginfo(signo, code, addr=addr), addr, fault.rip)

    def force_signal(self, task, signo: int, info: bytes, addr: int, rip: int) -> None:
        """A synchronous signal from a fault: delivered to its handler if it has one,
        else (or if blocked or ignored, as Linux's force_sig) the program ends."""
        from umiak.kernel.signals import bit, send
        proc = task.process
        handler = proc.sigactions.get(signo, (abi.SIG_DFL,))[0]
        if handler in (abi.SIG_DFL, abi.SIG_IGN) or task.sigmask & bit(signo):
            self.fatal_signal(task, signo, int.from_bytes(info[8:12], "little", signed=True), addr, rip)
        send(self, proc, signo, info, task)

    def fatal_signal(self, task, signo: int, code: int, addr: int, rip: int) -> None:
        """A signal the program does not handle ends it as Linux would (128+signal)."""
        if self.tracer is not None:
            self.tracer.signal(task, signo, code, addr)
        if self.options.verbose:
            name = abi.SIGNAL_NAMES.get(signo, str(signo))
            self.warn(f"{name} in task {task.tid}: fault address {addr:#x}, rip {rip:#x}")
        raise ExitGroup(128 + signo, signo)

    def finish(self, status: int, signal: int) -> None:
        """Flush what the guest wrote, print the shell's message for a fatal signal, list ENOSYS calls."""
        for proc in self.processes.values():
            try:
                proc.mm.sync_all()
            except Exception:  # noqa: BLE001 - never lose the exit status over a flush
                pass
        if signal:
            desc = abi.SIGNAL_DESCRIPTIONS.get(signal, f"Killed by signal {signal}")
            if desc:
                try:
                    self.err_out.write(desc + "\n")
                    self.err_out.flush()
                except (OSError, ValueError):
                    pass
        if self.unimplemented:
            calls = ", ".join(f"{n} ({c}x)" for n, c in sorted(self.unimplemented.items()))
            self.warn(f"unimplemented syscalls returned -ENOSYS: {calls}")
        if self.config is not None:
            self.config.finish(self)
        if self.tracer is not None:
            self.tracer.finish()


def child_info(child) -> bytes:
    """The union part of a SIGCHLD siginfo (and waitid's): si_pid, si_uid, si_status."""
    status = child.exit_signal or (child.exit_status & 0xFF)
    return abi.SIGCHLD_INFO.pack(child.pid, child.creds.uid, status, 0, 0)


def child_code(child) -> int:
    """si_code of a child's exit: CLD_EXITED, or CLD_KILLED (no core dumps in the VM)."""
    return abi.CLD_KILLED if child.exit_signal else abi.CLD_EXITED


__all__ = ["Kernel"]
