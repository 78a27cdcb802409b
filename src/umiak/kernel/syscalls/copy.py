"""Copying between files in the kernel: sendfile(2), copy_file_range(2), splice(2),
vmsplice(2)."""

import os
import stat as _stat

from umiak.kernel import abi
from umiak.kernel.abi import SPLICE_F_NONBLOCK, s32, s64
from umiak.kernel.errors import EAGAIN, EBADF, EINVAL, EISDIR, EPIPE, ESPIPE, SyscallError
from umiak.kernel.syscalls.fdutil import (CHUNK, MAX_RW, check_readable, check_writable, io_file, io_result,
                                          sigpipe)
from umiak.kernel.files import HostFile
from umiak.kernel.syscalls.rw import direct, readv_file, writev_file
from umiak.kernel.abi import POLLIN


def _copy(task, fin, fout, pos_in, pos_out, count) -> tuple[int, int, int]:
    """Copy up to count bytes; pos None means the file's own offset. Returns (n, pos_in, pos_out)."""
    total = 0
    full = fin.full_reads
    while total < count:
        n = min(count - total, CHUNK)
        data = fin.read(n) if pos_in is None else fin.pread(pos_in, n)
        if not data:
            break
        try:
            done = fout.write(data) if pos_out is None else fout.pwrite(pos_out, data)
        except SyscallError as e:
            io_result(total, e)
            break
        if pos_in is not None:
            pos_in += done
        elif done < len(data):
            fin.lseek(done - len(data), abi.SEEK_CUR)
        if pos_out is not None:
            pos_out += done
        total += done
        if done < len(data) or len(data) < n or not full:
            break
    return total, pos_in, pos_out


def sys_sendfile(task, out_fd, in_fd, offset, count):
    """sendfile(2). A regular host file to a non-blocking host socket (a web server's
    reply) is the host's own sendfile: no bytes through Python."""
    fin = io_file(task, in_fd)
    check_readable(fin)
    fout = task.fds.files.get(s32(out_fd))
    host = (fout is not None and direct(fout) and fin.__class__ is HostFile and fin._is_regular()
            and not (fin.caches and fin._cache() is not None))
    pos = None
    if offset:
        pos = s64(task.mm.read_u64(offset))
        if not host:
            fin.pread(0, 0)          # ESPIPE for pipes
        if pos < 0:
            raise SyscallError(EINVAL)
    if host:
        n = _host_sendfile(fout, fin, pos, min(count, MAX_RW))
        if pos is not None:
            pos += n
    else:
        fout = io_file(task, out_fd)
        check_writable(fout)
        st = fin.stat()
        if st is not None and _stat.S_ISDIR(st.st_mode):
            raise SyscallError(EINVAL)
        n, pos, _ = sigpipe(task, fout, lambda: _copy(task, fin, fout, pos, None, min(count, MAX_RW)))
    if offset:
        task.mm.write_u64(offset, pos)
    return n


def _host_sendfile(sock, fin, pos: int | None, count: int) -> int:
    """sendfile(2) between two host descriptors, from pos (None: the file's position, moved on)."""
    try:
        return os.sendfile(sock.fd, fin.fd, pos, count)
    except BlockingIOError:
        raise SyscallError(EAGAIN) from None
    except OSError as e:
        if e.errno == EPIPE:
            from umiak.kernel.net.base import sigpipe as socket_sigpipe
            socket_sigpipe(sock)
        raise SyscallError(e.errno or EINVAL) from None


def sys_copy_file_range(task, fd_in, off_in, fd_out, off_out, length, flags):
    """copy_file_range(2)"""
    if flags & 0xFFFFFFFF:
        raise SyscallError(EINVAL)
    fin = io_file(task, fd_in)
    fout = io_file(task, fd_out)
    check_readable(fin)
    check_writable(fout)
    if fout.flags & abi.O_APPEND:
        raise SyscallError(EBADF)
    min_, mout = fin.stat().st_mode, fout.stat().st_mode
    if _stat.S_ISDIR(min_) or _stat.S_ISDIR(mout):
        raise SyscallError(EISDIR)
    if not _stat.S_ISREG(min_) or not _stat.S_ISREG(mout):
        raise SyscallError(EINVAL)
    pin = s64(task.mm.read_u64(off_in)) if off_in else None
    pout = s64(task.mm.read_u64(off_out)) if off_out else None
    if (pin is not None and pin < 0) or (pout is not None and pout < 0):
        raise SyscallError(EINVAL)
    n, pin, pout = _copy(task, fin, fout, pin, pout, min(length, MAX_RW))
    if off_in:
        task.mm.write_u64(off_in, pin)
    if off_out:
        task.mm.write_u64(off_out, pout)
    return n




def _is_pipe(f) -> bool:
    if f.pipe is not None:
        return True
    try:
        return _stat.S_ISFIFO(f.stat().st_mode)
    except SyscallError:
        return False


def sys_splice(task, fd_in, off_in, fd_out, off_out, length, flags):
    """splice(2): one side a pipe, as Linux requires; the data is copied (no page moving)."""
    from umiak.kernel.waiting import blocking
    if flags & ~0xF:
        raise SyscallError(EINVAL)
    fin = io_file(task, fd_in)
    fout = io_file(task, fd_out)
    check_readable(fin)
    check_writable(fout)
    pin, pout = _is_pipe(fin), _is_pipe(fout)
    if not (pin or pout):
        raise SyscallError(EINVAL)
    if (pin and off_in) or (pout and off_out):
        raise SyscallError(ESPIPE)
    if fout.flags & abi.O_APPEND and off_out:
        raise SyscallError(EINVAL)
    pos_in = s64(task.mm.read_u64(off_in)) if off_in else None
    pos_out = s64(task.mm.read_u64(off_out)) if off_out else None
    if (pos_in is not None and pos_in < 0) or (pos_out is not None and pos_out < 0):
        raise SyscallError(EINVAL)
    count = min(length, MAX_RW)
    if count == 0:
        return 0

    def copy():
        return _copy(task, fin, fout, pos_in, pos_out, count)
    if flags & SPLICE_F_NONBLOCK:
        n, pos_in, pos_out = sigpipe(task, fout, copy)
    else:
        n, pos_in, pos_out = sigpipe(task, fout, lambda: blocking(task, fin, POLLIN, copy))
    if off_in:
        task.mm.write_u64(off_in, pos_in)
    if off_out:
        task.mm.write_u64(off_out, pos_out)
    return n


def sys_vmsplice(task, fd, iov, nr_segs, flags):
    """vmsplice(2): user memory into a pipe (as writev) or out of one (as readv); copied."""
    f = io_file(task, fd)
    if not _is_pipe(f):
        raise SyscallError(EBADF)
    if f.writable():
        return writev_file(task, f, iov, s32(nr_segs))
    return readv_file(task, f, iov, s32(nr_segs))


def sys_tee(task, fd_in, fd_out, length, flags):
    """tee(2): copy what one pipe holds into another without consuming it."""
    from umiak.kernel.errors import EAGAIN
    from umiak.kernel.waiting import blocking, nothing_can_wake
    if flags & ~0xF:
        raise SyscallError(EINVAL)
    fin = io_file(task, fd_in)
    fout = io_file(task, fd_out)
    if fin.pipe is None or fout.pipe is None or fin.pipe is fout.pipe:
        raise SyscallError(EINVAL)
    check_readable(fin)
    check_writable(fout)
    count = min(length, MAX_RW)
    if count == 0:
        return 0
    src, dst = fin.pipe, fout.pipe

    def copy() -> int:
        if not src.buf:
            if src.writers == 0:
                return 0
            raise SyscallError(EAGAIN)
        room = dst.capacity - len(dst.buf)
        if dst.readers == 0:
            from umiak.kernel.errors import EPIPE
            raise SyscallError(EPIPE)
        if room <= 0:
            raise SyscallError(EAGAIN)
        take = min(count, room)
        take = dst.charge(len(dst.buf) + take) - len(dst.buf)   # guest RAM for it (vfs/pipe.py)
        data = bytes(src.buf[:take])
        dst.buf += data
        dst.waitq.notify()
        return len(data)
    if flags & SPLICE_F_NONBLOCK or (fin.flags | fout.flags) & abi.O_NONBLOCK or nothing_can_wake(task):
        return sigpipe(task, fout, copy)
    return sigpipe(task, fout, lambda: blocking(task, fin, POLLIN, copy))
