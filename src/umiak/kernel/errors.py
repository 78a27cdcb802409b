"""How a syscall handler fails, and how a guest program ends."""

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
    """Linux's name for an errno value (EAGAIN, not EWOULDBLOCK), as strace prints it."""
    return ERRNO_NAMES.get(code) or f"E{code}"


class ExitGroup(BaseException):
    """The whole guest program ends with a wait status (already 128+signal for signals)."""

    def __init__(self, status: int, signal: int = 0):
        self.status = status
        self.signal = signal


class ThreadExit(BaseException):
    """One guest thread ends (exit(2)); the program goes on if other threads remain."""

    def __init__(self, code: int):
        self.code = code


# Linux x86-64's errno values (asm-generic/errno-base.h and errno.h), written out: a guest
# sees these numbers whatever the host's errno module says.
EPERM, ENOENT, ESRCH, EINTR, EIO, ENXIO = 1, 2, 3, 4, 5, 6
E2BIG, ENOEXEC, EBADF, ECHILD, EAGAIN, ENOMEM = 7, 8, 9, 10, 11, 12
EACCES, EFAULT, ENOTBLK, EBUSY, EEXIST, EXDEV = 13, 14, 15, 16, 17, 18
ENODEV, ENOTDIR, EISDIR, EINVAL, ENFILE, EMFILE = 19, 20, 21, 22, 23, 24
ENOTTY, ETXTBSY, EFBIG, ENOSPC, ESPIPE, EROFS = 25, 26, 27, 28, 29, 30
EMLINK, EPIPE, EDOM, ERANGE = 31, 32, 33, 34
EDEADLK, ENAMETOOLONG, ENOLCK, ENOSYS, ENOTEMPTY, ELOOP = 35, 36, 37, 38, 39, 40
ENOMSG, EIDRM, ECHRNG, EL2NSYNC, EL3HLT, EL3RST = 42, 43, 44, 45, 46, 47
ELNRNG, EUNATCH, ENOCSI, EL2HLT, EBADE, EBADR = 48, 49, 50, 51, 52, 53
EXFULL, ENOANO, EBADRQC, EBADSLT, EBFONT, ENOSTR = 54, 55, 56, 57, 59, 60
ENODATA, ETIME, ENOSR, ENONET, ENOPKG, EREMOTE = 61, 62, 63, 64, 65, 66
ENOLINK, EADV, ESRMNT, ECOMM, EPROTO, EMULTIHOP = 67, 68, 69, 70, 71, 72
EDOTDOT, EBADMSG, EOVERFLOW, ENOTUNIQ, EBADFD, EREMCHG = 73, 74, 75, 76, 77, 78
ELIBACC, ELIBBAD, ELIBSCN, ELIBMAX, ELIBEXEC, EILSEQ = 79, 80, 81, 82, 83, 84
ERESTART, ESTRPIPE, EUSERS, ENOTSOCK, EDESTADDRREQ, EMSGSIZE = 85, 86, 87, 88, 89, 90
EPROTOTYPE, ENOPROTOOPT, EPROTONOSUPPORT, ESOCKTNOSUPPORT, EOPNOTSUPP, EPFNOSUPPORT = 91, 92, 93, 94, 95, 96
EAFNOSUPPORT, EADDRINUSE, EADDRNOTAVAIL, ENETDOWN, ENETUNREACH, ENETRESET = 97, 98, 99, 100, 101, 102
ECONNABORTED, ECONNRESET, ENOBUFS, EISCONN, ENOTCONN, ESHUTDOWN = 103, 104, 105, 106, 107, 108
ETOOMANYREFS, ETIMEDOUT, ECONNREFUSED, EHOSTDOWN, EHOSTUNREACH, EALREADY = 109, 110, 111, 112, 113, 114
EINPROGRESS, ESTALE, EUCLEAN, ENOTNAM, ENAVAIL, EISNAM = 115, 116, 117, 118, 119, 120
EREMOTEIO, EDQUOT, ENOMEDIUM, EMEDIUMTYPE, ECANCELED, ENOKEY = 121, 122, 123, 124, 125, 126
EKEYEXPIRED, EKEYREVOKED, EKEYREJECTED, EOWNERDEAD, ENOTRECOVERABLE, ERFKILL = 127, 128, 129, 130, 131, 132
EHWPOISON = 133
EWOULDBLOCK, EDEADLOCK, ENOTSUP = EAGAIN, EDEADLK, EOPNOTSUPP   # aliases (ENOTSUP is the C library's)

# The kernel's internal restart codes: a handler returns them when a signal interrupts a call;
# the signal code turns them into a restart or EINTR, and strace shows them by name.
ERESTARTSYS, ERESTARTNOINTR, ERESTARTNOHAND, ERESTART_RESTARTBLOCK = 512, 513, 514, 516

# number -> name, without the aliases (strace's names: EAGAIN, EDEADLK, EOPNOTSUPP)
ERRNO_NAMES = {v: k for k, v in list(globals().items())
               if k.startswith("E") and isinstance(v, int) and v < 512
               and k not in ("EWOULDBLOCK", "EDEADLOCK", "ENOTSUP")}
