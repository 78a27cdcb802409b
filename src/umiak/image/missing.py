"""`umiak run --record-missing`: every path the program looked up and did not find.

A tracer in the kernel's sense (Kernel.tracer: enter/exit around each syscall): for the
calls that look a path up (open, openat, stat family, access, execve, readlink, statx)
a result of ENOENT or ENOTDIR records the path, made absolute against the cwd or the
dirfd. At exit the sorted list goes to stderr (or --missing-file), one path a line:
what `umiak build --add-missing LIST` takes back.
"""

from __future__ import annotations

import posixpath

from umiak.kernel.abi import AT_FDCWD
from umiak.kernel.errors import ENOENT, ENOTDIR

# syscall number -> index of the path argument, index of the dirfd argument (or None)
PATH_CALLS = {2: (0, None), 4: (0, None), 6: (0, None), 21: (0, None), 59: (0, None), 89: (0, None),
              257: (1, 0), 262: (1, 0), 267: (1, 0), 269: (1, 0), 322: (1, 0), 332: (1, 0), 439: (1, 0)}
NOT_FOUND = (-ENOENT, -ENOTDIR)


class MissingRecorder:
    def __init__(self, out, close_out: bool = False):
        self.out, self.close_out = out, close_out
        self.paths: set[str] = set()

    def enter(self, task, nr: int, args):
        spec = PATH_CALLS.get(nr)
        if spec is None:
            return None
        try:
            from umiak.kernel.syscalls.fdutil import path_arg
            path = path_arg(task, args[spec[0]])
        except Exception:  # noqa: BLE001 - a bad pointer: the call fails by itself
            return None
        if not path:
            return None
        if not path.startswith("/"):
            base = task.process.cwd
            if spec[1] is not None:
                fd = args[spec[1]] & 0xFFFFFFFF
                fd = fd - (1 << 32) if fd & 0x80000000 else fd
                if fd != AT_FDCWD:
                    base = self._fd_path(task, fd)
                    if base is None:
                        return None
            path = posixpath.join(base, path)
        return posixpath.normpath(path)

    @staticmethod
    def _fd_path(task, fd: int) -> str | None:
        try:
            f = task.fds.get(fd)
        except Exception:  # noqa: BLE001
            return None
        loc = getattr(f, "loc", None)
        path = getattr(loc, "path", None) or getattr(f, "path", None)
        return path if isinstance(path, str) and path.startswith("/") else None

    def exit(self, task, call, ret) -> None:
        if call is not None and ret in NOT_FOUND:
            self.paths.add(call)

    def exec(self, task, path, argv, envp_addr, nenv) -> None:
        pass

    def signal(self, task, signo, code, addr, info=None) -> None:
        pass

    def exited(self, task, status, signal) -> None:
        pass

    def finish(self) -> None:
        try:
            self.out.write("".join(p + "\n" for p in sorted(self.paths)))
            self.out.flush()
        finally:
            if self.close_out:
                self.out.close()
