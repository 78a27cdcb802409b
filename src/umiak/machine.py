"""The embeddable API: a `Machine` runs programs, each in a fresh micro-VM.

    from umiak import Machine
    with Machine(mem_size=256 << 20) as m:
        status = m.run(["./hello", "world"])
        result = m.run_captured(["./hello"])   # .status, .stdout, .stderr

Each run creates a fresh VM (platform), kernel and process; nothing is shared
between runs or between Machines, so many programs can run one after another,
or at once on several threads, in one process. close() (or leaving the `with`)
releases every host resource the Machine holds; see Machine.
"""

import atexit
import functools
import os
import sys
import threading
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING

from umiak.errors import UmiakError
from umiak.options import RunOptions
from umiak.records import record, replace

if TYPE_CHECKING:
    from umiak.kernel.files import File
    from umiak.kernel.kernel import Kernel
    from umiak.platform.base import Platform

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


@record
class RunResult:
    status: int
    stdout: bytes
    stderr: bytes


def resolve_program(name: str, search_path: str | None = None) -> str:
    """The host path of the program, searched in PATH like a shell when it has no '/'."""
    if "/" in name:
        return os.path.abspath(name)
    for d in (search_path or os.environ.get("PATH", DEFAULT_PATH)).split(":"):
        cand = os.path.join(d or ".", name)
        if os.path.isfile(cand) and os.access(cand, os.X_OK):
            return os.path.abspath(cand)
    raise UmiakError(f"{name}: command not found")


def default_environment(extra: dict[str, str] | None) -> dict[str, str]:
    env = {"PATH": DEFAULT_PATH, "HOME": "/root"}
    for k in ("TERM", "LANG", "LC_ALL", "TZ"):
        if k in os.environ:
            env[k] = os.environ[k]
    if extra:
        env.update(extra)
    return env


class Machine:
    """Runs programs with fixed options, each in a fresh VM.

    Lifecycle: use it as a context manager, or call close(). With `prewarm` (the
    default for the API; the CLI turns it off) the next run's VM is built on a
    background thread after each run; close() waits for it and releases it, and
    returns once every VM the Machine ran has given its host resources back. A run
    after close() is an error. A Machine that is never closed is closed at
    interpreter exit (or, without waiting, when it is garbage-collected).

    Threads: a Machine may be used from any thread, and runs may overlap (each has
    its own VM); close() waits for runs in progress on other threads.
    """

    def __init__(self, options: RunOptions | None = None, **overrides):
        options = options or RunOptions()
        for k in overrides:
            if not hasattr(options, k):
                raise TypeError(f"unknown option {k!r}")
        # A copy when overridden: the caller's RunOptions (perhaps another Machine's) stays as it was.
        self.options = replace(options, **overrides) if overrides else options
        self.platform_name: str | None = None
        self.platform_reason = ""
        self.last_kernel: Kernel | None = None
        self._cond = threading.Condition()   # guards the fields below
        self._warm: _WarmVM | None = None
        self._running = 0
        self._live: dict = {}               # kernel -> guest process, of the runs in progress
        self._closed = False
        self._umiak_build: str | None = None   # the snapshot cache's key part for umiak itself
        self._snapshots: dict = {}             # the snapshot cache's files read (cache._load)
        self._at_exit: Callable[[], None] | None = None   # registered with atexit by the first run

    def __enter__(self) -> "Machine":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def closed(self) -> bool:
        return self._closed

    def run(self, argv: list[str], stdio: tuple[int, int, int] | None = None, err_out=None) -> int:
        """Run argv[0] with argv; returns the exit status as a shell would report it."""
        with self._cond:
            if self._closed:
                raise UmiakError("this Machine is closed")
            self._running += 1
            if self._at_exit is None:
                # Unique per Machine, so close() unregisters this one only.
                at_exit = self._at_exit = functools.partial(_close_at_exit, weakref.ref(self))
                atexit.register(at_exit)
        try:
            return self._run(argv, stdio, err_out)
        finally:
            with self._cond:
                self._running -= 1
                self._cond.notify_all()

    def _run(self, argv: list[str], stdio, err_out) -> int:
        from umiak.kernel.errors import ExitGroup
        from umiak.kernel.kernel import Kernel
        from umiak.platform import choose_platform, open_platform
        opts = self.options
        if not argv:
            raise UmiakError("no program given")
        cfg = opts.kernel_config
        if cfg is not None:   # a configured kernel: refuse what it lacks (umiak.config.runtime)
            from umiak.config.runtime import check_options
            opts = check_options(cfg, opts)
        from umiak.loader.binfmt import resolve_program as resolve_binary
        argv_b = [os.fsencode(a) if isinstance(a, str) else a for a in argv]
        _check_volumes(opts)
        restore = opts.extra.get("restore")   # a umiak.snapshot.Snapshot to continue from
        from_guest = restore is None and (opts.root is not None or opts.image_root is not None)
        if restore is None and not from_guest:
            # The guest's / is the host's: find and check the program before any VM exists.
            # A PATH given with --env is the one the program's own lookups use: find it there
            # too (as `env PATH=... prog` does), else a shim on it runs another interpreter.
            search = (opts.env or {}).get("PATH")
            path = resolve_program(argv[0], search)
            execfn = argv[0] if "/" in argv[0] else path
            image, elf_path, argv_b = resolve_binary(
                lambda p: _read_program(p, argv[0] if p == path else p), path, argv_b)
            if cfg is not None and elf_path != path:
                from umiak.config.runtime import check_script
                check_script(cfg, argv[0])
            exe_path = os.path.realpath(elf_path)   # /proc/self/exe is the resolved path, as on Linux
        self.platform_name, self.platform_reason = choose_platform(opts.platform)
        if opts.extra.get("snapshot_cache") and restore is None and not from_guest:
            from umiak.snapshot.cache import build_id, prepare   # the prelinked snapshot cache
            if self._umiak_build is None:
                self._umiak_build = build_id()
            opts = prepare(opts, self.platform_name, image, exe_path, argv_b, default_environment(opts.env),
                           self._umiak_build, self._snapshots)
            restore = opts.extra.get("restore")
        cpu = opts.cpu or "host"
        if restore is not None:
            from umiak.snapshot import cpu_model
            cpu = cpu_model(restore, opts.cpu)
        platform = (self._take_warm(self.platform_name, opts.mem_size, cpu)
                    or open_platform(self.platform_name, opts.mem_size, cpu))
        err_out = err_out if err_out is not None else sys.stderr
        kernel = Kernel(opts, platform, stdio or opts.stdio or (0, 1, 2), err_out)
        self.last_kernel = kernel
        if from_guest:
            try:
                search = (opts.env or {}).get("PATH") if opts.extra.get("exact_env") else None
                image, exe_path, argv_b, execfn = _load_from_guest(kernel, argv[0], argv_b, search)
            except BaseException:
                kernel.shutdown()
                platform.close()
                raise
        if opts.verbose:
            kernel.warn(f"platform {platform.describe()} ({self.platform_reason}), "
                        f"{opts.mem_size >> 20} MiB guest RAM")
        status, signal = 0, 0
        try:
            if opts.strace or opts.syscall_summary:
                from umiak.trace import make_tracer
                kernel.tracer = make_tracer(opts, err_out)
            recorder = opts.extra.get("recorder")   # --record-config (umiak.config.record)
            if recorder is not None:
                recorder.inner, kernel.tracer = kernel.tracer, recorder
            if opts.extra.get("tracer") is not None:   # e.g. umiak run --record-missing
                kernel.tracer = opts.extra["tracer"]
            if restore is not None:
                from umiak.snapshot import restore as restore_snapshot
                task = restore_snapshot(kernel, restore)
            else:
                env = dict(opts.env or {}) if opts.extra.get("exact_env") else default_environment(opts.env)
                task = kernel.spawn(image, exe_path, argv_b, env, execfn)
                # Ignored at umiak's own start (`nohup`): ignored in the program, as across
                # execve (a prelinked snapshot holds them already: they are in its key).
                from umiak.kernel.abi import SIG_IGN
                for signo in opts.extra.get("ignored_signals", ()):
                    task.process.sigactions[signo] = (SIG_IGN, 0, 0, 0)
            started = opts.extra.get("started")   # e.g. umiak oci: holds the program until `start`
            if started is not None:
                started(kernel, task)
            hook = opts.extra.get("snapshot_hook")   # umiak snapshot, the prelinked cache
            if hook is not None:
                kernel.snapshot_hook = hook
                hook.started(kernel, task)
            with self._cond:
                self._live[kernel] = task.process
            with _forward_host_signals(kernel, task.process):
                status = kernel.run(task)
            signal = kernel.exit_signal
        except ExitGroup as eg:
            status, signal = eg.status, eg.signal
        finally:
            with self._cond:
                self._live.pop(kernel, None)
            try:
                kernel.finish(status, signal)
                xl = getattr(platform, "exitless", None)
                if opts.verbose and xl is not None:
                    kernel.warn(xl.summary())   # the share of calls served without a VM exit
            finally:
                kernel.shutdown()
                # This VM serves the next run when it can be kept (Platform.recycle; extra
                # {"recycle": False} says never, to compare); else the next run's VM is built
                # after this one, not competing with it for the GIL.
                if not (opts.prewarm and opts.extra.get("recycle", True) and not kernel.threads
                        and self._keep(platform, cpu, kernel.frames.used_end)):
                    platform.close()
                    if opts.prewarm:
                        self._warm_up(self.platform_name, opts.mem_size, cpu)
        return status

    # -- a warm VM for the next run ------------------------------------------------
    def _warm_up(self, name: str, mem_size: int, cpu: str = "host") -> None:
        """Start building the next run's VM while the caller goes on (once per Machine)."""
        with self._cond:
            if self._closed or self._warm is not None:
                return
            self._warm = _WarmVM(name, mem_size, cpu)

    def _keep(self, platform, cpu: str, used_end: int) -> bool:
        """Keep the VM that ran for the next run, if it can be recycled and none waits."""
        with self._cond:
            if self._closed or self._warm is not None or not platform.recycle(used_end):
                return False
            self._warm = _WarmVM(platform.name, platform.mem_size, cpu, platform)
            return True

    def _take_warm(self, name: str, mem_size: int, cpu: str = "host"):
        with self._cond:
            warm, self._warm = self._warm, None
        if warm is None:
            return None
        plat = warm.take()
        if plat is not None and (warm.name, warm.mem_size, warm.cpu) != (name, mem_size, cpu):
            plat.close()
            return None
        return plat

    def close(self) -> None:
        """Refuse further runs, wait for runs in progress, release the warm VM, and wait
        until every VM this Machine ran has given its host resources back. Idempotent."""
        self._close(None)

    def _close(self, stop_after: float | None) -> None:
        """close(); with stop_after, runs still going after that many seconds are stopped
        (as by SIGKILL) and waited for as long again, then left behind."""
        with self._cond:
            self._closed = True
            if stop_after is not None and not self._cond.wait_for(lambda: not self._running, stop_after):
                for kernel, process in list(self._live.items()):
                    _stop_guest(kernel, process, 128 + 9, "the interpreter is exiting: stopping the VM")
                if not self._cond.wait_for(lambda: not self._running, stop_after):
                    return
            while self._running:
                self._cond.wait()
            warm, self._warm = self._warm, None
            at_exit, self._at_exit = self._at_exit, None
        if warm is not None:
            plat = warm.take()
            if plat is not None:
                plat.close()
        if at_exit is not None:
            atexit.unregister(at_exit)
        self.last_kernel = None
        from umiak.platform import wait_released
        wait_released()

    def __del__(self):
        # Garbage, never closed: nothing runs, nobody waits; the warm VM closes itself.
        # getattr: __init__ may have failed (a bad option) before it set these.
        warm, self._warm = getattr(self, "_warm", None), None
        if warm is not None:
            warm.abandon()
        at_exit = getattr(self, "_at_exit", None)
        if at_exit is not None:
            atexit.unregister(at_exit)

    def run_captured(self, argv: list[str], input: bytes = b"") -> RunResult:
        """Run with stdin from `input` and stdout/stderr captured (umiak's own messages go to stderr too)."""
        import tempfile
        with tempfile.TemporaryFile() as fin, tempfile.TemporaryFile() as fout, \
                tempfile.TemporaryFile() as ferr:
            fin.write(input)
            fin.seek(0)
            err_stream = open(os.dup(ferr.fileno()), "w", closefd=True)
            try:
                status = self.run(argv, (fin.fileno(), fout.fileno(), ferr.fileno()), err_stream)
            finally:
                err_stream.flush()
                err_stream.close()
            fout.seek(0)
            ferr.seek(0)
            return RunResult(status, fout.read(), ferr.read())


class _WarmVM:
    """A VM being built on a background thread for a Machine's next run.

    The thread is not a daemon: the interpreter waits for it at exit rather than
    finalise under it (Unicorn's initialisation crashes when cut short)."""

    def __init__(self, name: str, mem_size: int, cpu: str = "host", ready: "Platform | None" = None):
        self.name, self.mem_size, self.cpu = name, mem_size, cpu
        self._platform: Platform | None = ready   # ready: a recycled VM, nothing to build
        self._abandoned = False
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        if ready is None:
            self._thread = threading.Thread(target=self._build, name="umiak-warm-vm")
            self._thread.start()

    def _build(self) -> None:
        from umiak.platform import open_platform
        try:
            plat = open_platform(self.name, self.mem_size, self.cpu)
            plat.prepare()
        except Exception:  # noqa: BLE001 - the next run simply builds its own
            return
        with self._lock:
            if not self._abandoned:
                self._platform = plat
                return
        plat.close()

    def take(self):
        """Wait for the VM; it is the caller's now (None if it could not be built)."""
        if self._thread is not None:
            self._thread.join()
        plat, self._platform = self._platform, None
        return plat

    def abandon(self) -> None:
        """Nobody will take the VM: close it now, or once built, without waiting."""
        with self._lock:
            self._abandoned = True
            plat, self._platform = self._platform, None
        if plat is not None:
            plat.close()


def _close_at_exit(ref) -> None:
    """A Machine still open at interpreter exit: a run in progress there (on a daemon
    thread) gets a second to end, then is stopped."""
    machine = ref()
    if machine is not None:
        machine._close(stop_after=1.0)


def _stop_guest(kernel, process, status: int, why: str) -> None:
    """End the guest program at once with `status` (its tasks are interrupted)."""
    with kernel.lock:
        if process.exiting:
            return
        kernel.warn(why)
        process.exiting = True
        process.exit_status, process.exit_signal = status, 0
        for t in process.tasks.values():
            t.interrupt()
        if not process.tasks:
            process.done.set()


class _forward_host_signals:
    """While the guest runs, SIGINT/SIGTERM/SIGHUP/SIGQUIT to umiak go to the guest, and
    SIGTSTP (Ctrl-Z) when a shell in the VM has a job in the terminal's foreground.

    A second Ctrl-C within a second kills the VM (status 130), so a guest that
    ignores SIGINT or is deadlocked can always be stopped.
    """

    SIGNALS = ("SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT", "SIGTSTP")

    def __init__(self, kernel, process):
        self.kernel, self.process = kernel, process
        self.saved = {}
        self.last_int = 0.0

    def __enter__(self):
        import signal
        import threading
        if threading.current_thread() is not threading.main_thread():
            return self
        for name in self.SIGNALS:
            signo = getattr(signal, name)
            self.saved[signo] = signal.signal(signo, self._handler)
        return self

    def __exit__(self, *exc):
        import signal
        for signo, old in self.saved.items():
            signal.signal(signo, old)
        return False

    def _handler(self, signo, frame):
        import signal
        import threading
        import time
        if signo == 20 and not self._guest_job_in_foreground():
            self._stop_self()
            return
        now = time.monotonic()
        # (not when umiak was started with SIGINT ignored, as a shell's `&` does: then the
        # program ignores it too, and the host's Ctrl-C was never meant for it)
        force = signo == 2 and now - self.last_int < 1.0 and self.saved.get(2) is not signal.SIG_IGN
        if signo == 2:
            self.last_int = now
        # The handler may run while this thread holds the kernel lock: act from another thread.
        threading.Thread(target=self._deliver, args=(signo, force), daemon=True).start()

    def _guest_job_in_foreground(self) -> bool:
        """A shell in the VM gave the terminal to one of its jobs (Ctrl-Z is for that job)."""
        from umiak.kernel.jobctl import foreground_group
        try:
            fg = foreground_group(self.kernel)   # reads only; the lock may be held by this thread
        except RuntimeError:                     # a table changed under the read
            return False
        return fg is not None and fg != self.process.pgid

    def _stop_self(self) -> None:
        """Ctrl-Z with no job of the VM in the foreground: umiak itself stops, as any
        program does (the host shell's job control), and goes on when continued."""
        import os
        import signal
        signal.signal(signal.SIGTSTP, signal.SIG_DFL)
        try:
            os.kill(os.getpid(), signal.SIGTSTP)
        finally:
            signal.signal(signal.SIGTSTP, self._handler)

    def _deliver(self, signo: int, force: bool) -> None:
        from umiak.kernel.signals import make_siginfo
        k, p = self.kernel, self.process
        with k.lock:
            if p.exiting:
                return
            if not force:
                k.host_signal(signo, make_siginfo(signo, 0x80))
                return
        _stop_guest(k, p, 128 + signo, "second interrupt: stopping the VM")


def _load_from_guest(kernel, name: str, argv_b: list[bytes], search_path: str | None = None):
    """With --root the program is a guest path: find it (in search_path, else the default
    PATH, as a shell would) and read it through the guest's file system. Returns (image,
    resolved exe path, argv, execfn)."""
    from umiak.kernel.errors import SyscallError
    from umiak.loader.binfmt import resolve_program as resolve_binary
    vfs = kernel.vfs
    opened: dict[str, File] = {}

    def read(p: str) -> bytes:
        try:
            f = vfs.open_exec(None, p)
        except SyscallError as e:
            raise UmiakError(f"{name if p == path else p}: {os.strerror(e.errno)}") from None
        opened[p] = f
        return f.pread(0, f.size())

    path = name
    if "/" not in name:
        for d in (search_path or DEFAULT_PATH).split(":"):
            try:
                vfs.open_exec(None, f"{d or '.'}/{name}").close()
            except SyscallError:
                continue
            path = f"{d}/{name}"
            break
        else:
            raise UmiakError(f"{name}: command not found")
    image, elf_path, argv_b = resolve_binary(read, path, argv_b)
    f = opened.get(elf_path)
    exe = elf_path if f is None else (f.loc.path if f.loc is not None else f.path) or elf_path
    return image, exe, argv_b, path


def _check_volumes(opts) -> None:
    """A volume whose host side is missing is an error before the VM starts."""
    from umiak.kernel.vfs import parse_volume
    for spec in opts.volumes:
        try:
            host, guest, _ro = parse_volume(spec) if isinstance(spec, str) else spec
        except ValueError as e:
            raise UmiakError(str(e)) from None
        if not os.path.exists(host):
            raise UmiakError(f"volume {spec}: {host}: No such file or directory")
    if opts.root is not None and not os.path.isdir(opts.root):
        raise UmiakError(f"--root {opts.root}: not a directory")


def _read_program(host_path: str, name: str) -> bytes:
    try:
        if os.path.isdir(host_path):
            raise UmiakError(f"{name}: Is a directory")
        if not os.access(host_path, os.X_OK) and os.path.exists(host_path):
            raise UmiakError(f"{name}: Permission denied (not executable)")
        with open(host_path, "rb") as f:
            return f.read()
    except FileNotFoundError:
        raise UmiakError(f"{name}: No such file or directory") from None
    except PermissionError:
        raise UmiakError(f"{name}: Permission denied") from None
    except OSError as e:
        raise UmiakError(f"{name}: {e.strerror}") from None
