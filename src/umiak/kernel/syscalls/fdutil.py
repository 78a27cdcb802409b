"""What the file syscall families share: argument decoding (paths, I/O fds), the
open-file limit, SIGPIPE on a broken pipe, a partial count that wins over the error,
and the byte limits of one transfer.

Paths are resolved by the VFS (`kernel.vfs`), never by the host; who may change
what is vfs/permissions.py.
"""

import os

from umiak.kernel import abi
from umiak.kernel.abi import s32
from umiak.kernel.errors import EBADF, EPIPE, SyscallError
from umiak.kernel.vfs.core import PATH_MAX

MAX_RW = 0x7FFFF000      # Linux caps one read/write at this many bytes
CHUNK = 1 << 20          # bytes copied per step between a file and guest memory
NS = 1_000_000_000


def path_arg(task, addr) -> str:
    """A path argument: EFAULT for a bad pointer, ENAMETOOLONG at PATH_MAX."""
    return os.fsdecode(task.mm.read_cstr(addr, PATH_MAX))


def vfs_of(task):
    """The VM's mount table and path walk."""
    return task.kernel.vfs


def nofile_limit(task) -> int:
    """RLIMIT_NOFILE as the fd table enforces it (read again: setrlimit may have changed it)."""
    lim = task.process.rlimits.get(abi.RLIMIT_NOFILE, [1024])[0]
    task.fds.limit = min(lim, 1 << 20)
    return task.fds.limit


def io_file(task, fd):
    """The file of an I/O call (EBADF also for O_PATH descriptors)."""
    return task.fds.get_io(s32(fd))


def sigpipe(task, f, fn):
    """fn(), and on EPIPE from a pipe or a host pipe/terminal SIGPIPE to the writing thread
    before the error (sockets send their own, honouring MSG_NOSIGNAL)."""
    try:
        return fn()
    except SyscallError as e:
        if e.errno == EPIPE and f.sigpipe_on_epipe:
            from umiak.kernel.signals import make_siginfo, send
            # Linux's pipe_write: send_sig(SIGPIPE, current, 0), so SI_USER from the writer itself
            send(task.kernel, task.process, abi.SIGPIPE,
                 make_siginfo(abi.SIGPIPE, 0, pid=task.process.pid, uid=task.process.creds.uid), task)
        raise


def io_result(done: int, err: SyscallError) -> int:
    """A transfer that fails after moving some bytes reports those bytes and drops the
    error, as Linux does (gVisor's HandleIOError); with nothing moved, the error."""
    if done:
        return done
    raise err


def check_readable(f):
    if not f.readable():
        raise SyscallError(EBADF)


def check_writable(f):
    if not f.writable():
        raise SyscallError(EBADF)


def owner_of(task) -> tuple[int, int]:
    c = task.process.creds
    return c.euid, c.egid
