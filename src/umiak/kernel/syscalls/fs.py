"""File-descriptor and file-system syscalls: read(2), write(2), open(2) and their family."""

import os

from umiak.kernel import abi
from umiak.kernel.abi import s32, s64
from umiak.kernel.errors import EBADF, EFAULT, EINVAL, SyscallError

MAX_RW = 0x7FFFF000  # Linux caps one read/write at this many bytes


def sys_read(task, fd, buf, count):
    """read(2)"""
    f = task.fds.get(s32(fd))
    if not f.readable():
        raise SyscallError(EBADF)
    data = f.read(min(count, MAX_RW, 1 << 20))
    task.mm.write(buf, data)
    return len(data)


def sys_write(task, fd, buf, count):
    """write(2)"""
    f = task.fds.get(s32(fd))
    if not f.writable():
        raise SyscallError(EBADF)
    return f.write(task.mm.read(buf, min(count, MAX_RW)))


def _iovecs(task, iov, iovcnt):
    if iovcnt > 1024:
        raise SyscallError(EINVAL)
    raw = task.mm.read(iov, 16 * iovcnt)
    return [abi.IOVEC.unpack_from(raw, 16 * i) for i in range(iovcnt)]


def sys_writev(task, fd, iov, iovcnt):
    """writev(2): one write of the gathered buffers, so lines stay whole."""
    f = task.fds.get(s32(fd))
    if not f.writable():
        raise SyscallError(EBADF)
    data = b"".join(task.mm.read(base, ln) for base, ln in _iovecs(task, iov, iovcnt))
    return f.write(data) if data else 0


def sys_readv(task, fd, iov, iovcnt):
    """readv(2)"""
    f = task.fds.get(s32(fd))
    if not f.readable():
        raise SyscallError(EBADF)
    vecs = _iovecs(task, iov, iovcnt)
    data = f.read(sum(ln for _, ln in vecs))
    done = 0
    for base, ln in vecs:
        part = data[done:done + ln]
        if not part:
            break
        task.mm.write(base, part)
        done += len(part)
    return done


def sys_close(task, fd):
    """close(2)"""
    task.fds.close(s32(fd))
    return 0


def sys_lseek(task, fd, offset, whence):
    """lseek(2)"""
    return task.fds.get(s32(fd)).lseek(s64(offset), s32(whence))


def encode_stat(st: os.stat_result) -> bytes:
    return abi.STAT.pack(
        st.st_dev, st.st_ino, st.st_nlink, st.st_mode, st.st_uid, st.st_gid, 0,
        getattr(st, "st_rdev", 0), st.st_size, getattr(st, "st_blksize", 4096),
        getattr(st, "st_blocks", 0),
        int(st.st_atime), st.st_atime_ns % 1_000_000_000,
        int(st.st_mtime), st.st_mtime_ns % 1_000_000_000,
        int(st.st_ctime), st.st_ctime_ns % 1_000_000_000)


def sys_fstat(task, fd, statbuf):
    """fstat(2)"""
    st = task.fds.get(s32(fd)).stat()
    task.mm.write(statbuf, encode_stat(st))
    return 0


def sys_ioctl(task, fd, req, arg):
    """ioctl(2): terminal requests are passed to host terminals; FIONBIO/FIOCLEX here."""
    f = task.fds.get(s32(fd))
    req &= 0xFFFFFFFF
    if req == abi.FIOCLEX:
        task.fds.cloexec.add(s32(fd))
        return 0
    if req == abi.FIONCLEX:
        task.fds.cloexec.discard(s32(fd))
        return 0
    if req == abi.FIONBIO:
        on = task.mm.read_u32(arg)
        f.flags = (f.flags | abi.O_NONBLOCK) if on else (f.flags & ~abi.O_NONBLOCK)
        return 0
    return f.ioctl(task, req, arg)


__all__ = ["EFAULT"]
