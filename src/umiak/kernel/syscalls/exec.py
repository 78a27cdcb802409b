"""execve(2) and execveat(2): replace the program in this VM with another.

The calling thread survives and every other thread ends (as Linux's de_thread),
the address space is emptied and loaded afresh, close-on-exec descriptors are
closed, and handled signals go back to their default action.
"""

import os

from umiak.errors import ExecFormatError
from umiak.kernel import abi
from umiak.kernel.abi import s32
from umiak.kernel.errors import E2BIG, EFAULT, EINVAL, ELOOP, ENOEXEC, ENOENT, SyscallError

MAX_ARG_STRINGS = 0x7FFFFFFF
MAX_ARG_BYTES = 2 << 20


def _strings(task, addr: int) -> list[bytes]:
    out: list[bytes] = []
    total = 0
    if not addr:
        return out
    while True:
        p = task.mm.read_u64(addr + 8 * len(out))
        if not p:
            return out
        s = task.mm.read_cstr(p, MAX_ARG_BYTES)
        total += len(s) + 1
        if total > MAX_ARG_BYTES or len(out) >= MAX_ARG_STRINGS:
            raise SyscallError(E2BIG)
        out.append(s)


def _do_execve(task, dirfd: int, path: bytes, argv_ptr: int, envp_ptr: int, flags: int):
    from umiak.kernel.kernel import REGS_SET
    from umiak.loader.binfmt import TooManyInterpreters, resolve_program
    if flags & ~(abi.AT_EMPTY_PATH | abi.AT_SYMLINK_NOFOLLOW):
        raise SyscallError(EINVAL)
    argv = _strings(task, argv_ptr)
    envp = _strings(task, envp_ptr)
    name = os.fsdecode(path)
    if not name:
        raise SyscallError(ENOENT)
    if dirfd != abi.AT_FDCWD and not name.startswith("/"):
        base = task.fds.get(dirfd)
        loc = base.loc
        if loc is None:
            raise SyscallError(ENOENT)
        name = loc.path.rstrip("/") + "/" + name
    vfs = task.kernel.vfs
    opened = {}

    def read(p: str) -> bytes:
        f = vfs.open_exec(task, p)
        opened[p] = f
        return f.pread(0, f.size())
    try:
        image, elf_path, argv = resolve_program(read, name, argv or [path])
        exe = opened[elf_path].loc if elf_path in opened else None
    except TooManyInterpreters:
        raise SyscallError(ELOOP) from None
    except ExecFormatError:
        raise SyscallError(ENOEXEC) from None
    finally:
        for f in opened.values():   # read whole: a fork-heavy program must not pile up host fds
            f.close()
    exe_path = exe.path if exe is not None else elf_path
    task.kernel.exec_image(task, image, exe_path, name, argv, envp)
    return REGS_SET


def sys_execve(task, filename, argv, envp):
    """execve(2)"""
    if not filename:
        raise SyscallError(EFAULT)
    return _do_execve(task, abi.AT_FDCWD, task.mm.read_cstr(filename), argv, envp, 0)


def sys_execveat(task, dirfd, filename, argv, envp, flags):
    """execveat(2)"""
    return _do_execve(task, s32(dirfd), task.mm.read_cstr(filename), argv, envp, s32(flags))
