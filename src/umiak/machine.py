"""The embeddable API: one `Machine` runs one program in its own micro-VM.

    from umiak import Machine
    status = Machine(mem_size=256 << 20).run(["./hello", "world"])
    result = Machine().run_captured(["./hello"])   # .status, .stdout, .stderr

Each run creates a fresh VM (platform), kernel and process; nothing is shared
between runs, so many machines can run one after another in one process.
"""

import os
import sys
from dataclasses import dataclass

from umiak.errors import UmiakError
from umiak.options import RunOptions

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


@dataclass
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
    """A micro-VM factory with fixed options; each run() boots a fresh VM."""

    def __init__(self, options: RunOptions | None = None, **overrides):
        self.options = options or RunOptions()
        for k, v in overrides.items():
            if not hasattr(self.options, k):
                raise TypeError(f"unknown option {k!r}")
            setattr(self.options, k, v)
        self.platform_name: str | None = None
        self.platform_reason = ""
        self.last_kernel = None
        self._warm = None   # (platform name, memory size, builder thread, {"platform": ...})

    def run(self, argv: list[str], stdio: tuple[int, int, int] | None = None, err_out=None) -> int:
        """Run argv[0] with argv; returns the exit status as a shell would report it."""
        from umiak.kernel.errors import ExitGroup
        from umiak.kernel.kernel import Kernel
        from umiak.platform import choose_platform, open_platform
        opts = self.options
        if not argv:
            raise UmiakError("no program given")
        from umiak.loader.binfmt import resolve_program as resolve_binary
        argv_b = [a.encode() if isinstance(a, str) else a for a in argv]
        _check_volumes(opts)
        if opts.root is None:
            # The guest's / is the host's: find and check the program before any VM exists.
            execfn = argv[0] if "/" in argv[0] else resolve_program(argv[0])
            path = resolve_program(argv[0])
            image, elf_path, argv_b = resolve_binary(
                lambda p: _read_program(p, argv[0] if p == path else p), path, argv_b)
            exe_path = os.path.realpath(elf_path)   # /proc/self/exe is the resolved path, as on Linux
        self.platform_name, self.platform_reason = choose_platform(opts.platform)
        platform = self._take_warm(self.platform_name, opts.mem_size) or open_platform(self.platform_name, opts.mem_size)
        err_out = err_out if err_out is not None else sys.stderr
        kernel = Kernel(opts, platform, stdio or opts.stdio or (0, 1, 2), err_out)
        self.last_kernel = kernel
        if opts.root is not None:
            try:
                image, exe_path, argv_b, execfn = _load_from_guest(kernel, argv[0], argv_b)
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
            task = kernel.spawn(image, exe_path, argv_b, default_environment(opts.env), execfn)
            with _forward_host_signals(kernel, task.process):
                status = kernel.run(task)
            signal = kernel.exit_signal
        except ExitGroup as eg:
            status, signal = eg.status, eg.signal
        finally:
            try:
                kernel.finish(status, signal)
            finally:
                kernel.shutdown()
                platform.close()
                if opts.prewarm:
                    self._warm_up(self.platform_name, opts.mem_size)
        return status

    # -- a warm VM for the next run ------------------------------------------------
    def _warm_up(self, name: str, mem_size: int) -> None:
        """Build the next run's VM on a background thread while the caller goes on."""
        import threading
        from umiak.platform import open_platform
        box: dict = {}

        def build():
            try:
                plat = open_platform(name, mem_size)
                prepare = getattr(plat, "prepare", None)
                if prepare is not None:
                    prepare()
                box["platform"] = plat
            except Exception:  # noqa: BLE001 - the next run simply builds its own
                pass
        t = threading.Thread(target=build, name="umiak-warm-vm", daemon=True)
        t.start()
        self._warm = (name, mem_size, t, box)

    def _take_warm(self, name: str, mem_size: int):
        warm, self._warm = self._warm, None
        if warm is None:
            return None
        wname, wsize, t, box = warm
        t.join()
        plat = box.get("platform")
        if plat is not None and (wname, wsize) != (name, mem_size):
            plat.close()
            return None
        return plat

    def close(self) -> None:
        """Release the warm VM, if one is waiting."""
        plat = self._take_warm(None, None) if self._warm is not None else None
        if plat is not None:
            plat.close()

    def __del__(self):
        try:
            self.close()
        except Exception:  # noqa: BLE001
            pass

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


class _forward_host_signals:
    """While the guest runs, SIGINT/SIGTERM/SIGHUP/SIGQUIT to umiak go to the guest.

    A second Ctrl-C within a second kills the VM (status 130), so a guest that
    ignores SIGINT or is deadlocked can always be stopped.
    """

    SIGNALS = ("SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT")

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
        import threading
        import time
        now = time.monotonic()
        force = signo == 2 and now - self.last_int < 1.0
        if signo == 2:
            self.last_int = now
        # The handler may run while this thread holds the kernel lock: act from another thread.
        threading.Thread(target=self._deliver, args=(signo, force), daemon=True).start()

    def _deliver(self, signo: int, force: bool) -> None:
        from umiak.kernel.signals import make_siginfo
        k, p = self.kernel, self.process
        with k.lock:
            if p.exiting:
                return
            if force:
                k.warn("second interrupt: stopping the VM")
                p.exiting = True
                p.exit_status, p.exit_signal = 128 + signo, 0
                for t in p.tasks.values():
                    t.interrupt()
                if not p.tasks:
                    p.done.set()
                return
            k.host_signal(signo, make_siginfo(signo, 0x80))


def _load_from_guest(kernel, name: str, argv_b: list[bytes]):
    """With --root the program is a guest path: find it (PATH as a shell would) and read it
    through the guest's file system. Returns (image, resolved exe path, argv, execfn)."""
    from umiak.kernel.errors import SyscallError
    from umiak.loader.binfmt import resolve_program as resolve_binary
    vfs = kernel.vfs
    opened = {}

    def read(p: str) -> bytes:
        try:
            f = vfs.open_exec(None, p)
        except SyscallError as e:
            raise UmiakError(f"{name if p == path else p}: {os.strerror(e.errno)}") from None
        opened[p] = f
        return f.pread(0, f.size())

    path = name
    if "/" not in name:
        for d in DEFAULT_PATH.split(":"):
            try:
                vfs.open_exec(None, f"{d}/{name}").close()
            except SyscallError:
                continue
            path = f"{d}/{name}"
            break
        else:
            raise UmiakError(f"{name}: command not found")
    image, elf_path, argv_b = resolve_binary(read, path, argv_b)
    f = opened.get(elf_path)
    exe = getattr(getattr(f, "loc", None), "path", None) or getattr(f, "path", elf_path)
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
