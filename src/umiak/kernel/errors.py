"""How a syscall handler fails, and how a guest program ends."""

import errno as _errno
import os


class SyscallError(Exception):
    """Raised by a handler; the guest sees -errno."""

    __slots__ = ("errno",)

    def __init__(self, code: int):
        self.errno = code

    def __str__(self) -> str:
        return f"{errno_name(self.errno)} ({os.strerror(self.errno)})"


class GuestOutOfMemory(Exception):
    """The kernel has no guest frame (or page-table page) left to back a page.

    Not a guest error: Linux's OOM killer would end the program with SIGKILL, and
    Kernel._task_main does that with a hint to raise -m. Deliberately not a
    SyscallError, so no `except SyscallError` mistakes it for EFAULT or a guest
    errno; where Linux fails the call instead (mmap, brk), mm.py says ENOMEM."""


def errno_name(code: int) -> str:
    return _errno.errorcode.get(code, f"E{code}")


class ExitGroup(BaseException):
    """The whole guest program ends with a wait status (already 128+signal for signals)."""

    def __init__(self, status: int, signal: int = 0):
        self.status = status
        self.signal = signal


class ThreadExit(BaseException):
    """One guest thread ends (exit(2)); the program goes on if other threads remain."""

    def __init__(self, code: int):
        self.code = code


EFAULT = _errno.EFAULT
EINVAL = _errno.EINVAL
ENOMEM = _errno.ENOMEM
ENOSYS = _errno.ENOSYS
EBADF = _errno.EBADF
ENOENT = _errno.ENOENT
EPERM = _errno.EPERM
EACCES = _errno.EACCES
EEXIST = _errno.EEXIST
ENOTDIR = _errno.ENOTDIR
EISDIR = _errno.EISDIR
ENOTTY = _errno.ENOTTY
ESPIPE = _errno.ESPIPE
EROFS = _errno.EROFS
ERANGE = _errno.ERANGE
EAGAIN = _errno.EAGAIN
EINTR = _errno.EINTR
ESRCH = _errno.ESRCH
ENAMETOOLONG = _errno.ENAMETOOLONG
ELOOP = _errno.ELOOP
EXDEV = _errno.EXDEV
ENOTEMPTY = _errno.ENOTEMPTY
EMFILE = _errno.EMFILE
EOPNOTSUPP = _errno.EOPNOTSUPP
ENODATA = _errno.ENODATA
ENOTSUP = _errno.ENOTSUP
ECHILD = _errno.ECHILD
ENOEXEC = _errno.ENOEXEC
E2BIG = _errno.E2BIG
EOVERFLOW = _errno.EOVERFLOW
EPIPE = _errno.EPIPE
ENOSPC = _errno.ENOSPC
EFBIG = _errno.EFBIG
EBUSY = _errno.EBUSY
ENXIO = _errno.ENXIO
ENODEV = _errno.ENODEV
EMLINK = _errno.EMLINK
ETIMEDOUT = _errno.ETIMEDOUT
EDEADLK = _errno.EDEADLK
ENOLCK = _errno.ENOLCK
EIO = _errno.EIO
EWOULDBLOCK = _errno.EWOULDBLOCK
EILSEQ = _errno.EILSEQ
ESTALE = _errno.ESTALE
EDOM = _errno.EDOM
ETXTBSY = _errno.ETXTBSY
EINPROGRESS = _errno.EINPROGRESS
EALREADY = _errno.EALREADY
ENOTSOCK = _errno.ENOTSOCK
ECONNREFUSED = _errno.ECONNREFUSED
ENOTCONN = _errno.ENOTCONN
EAFNOSUPPORT = _errno.EAFNOSUPPORT
EPROTONOSUPPORT = _errno.EPROTONOSUPPORT
EADDRINUSE = _errno.EADDRINUSE
EDESTADDRREQ = _errno.EDESTADDRREQ
ECONNRESET = _errno.ECONNRESET
EISCONN = _errno.EISCONN
EMSGSIZE = _errno.EMSGSIZE
ENOPROTOOPT = _errno.ENOPROTOOPT
EPROTOTYPE = _errno.EPROTOTYPE
EOWNERDEAD = _errno.EOWNERDEAD
EBADFD = _errno.EBADFD
EFBIG = _errno.EFBIG
EPFNOSUPPORT = _errno.EPFNOSUPPORT
EIDRM = _errno.EIDRM
ENOTBLK = _errno.ENOTBLK
ENOMSG = _errno.ENOMSG
ERESTARTSYS = 512  # internal: restart the call if SA_RESTART, else EINTR
