"""File-descriptor and file-system syscalls: read(2), write(2), open(2) and their family.

Paths are resolved by the VFS (`kernel.vfs`), never by the host. Changes go to
the file system of the mount (the root's in-memory overlay, tmpfs, a writable
volume's host directory); a read-only volume gives EROFS after the errors Linux
checks first (ENOENT/ENOTDIR of the parent, EEXIST of the new name...).
"""

import os
import stat as _stat

from umiak.kernel import abi
from umiak.kernel.abi import s32, s64
from umiak.kernel.errors import (E2BIG, EAGAIN, EBADF, EBUSY, EEXIST, EFAULT, EINVAL, EISDIR, EMFILE, ENOENT,
                                 ENOTDIR, ENOTEMPTY, EOPNOTSUPP, EPERM, ERANGE, EROFS, EXDEV,
                                 SyscallError)
from umiak.kernel.waiting import POLLIN, POLLOUT
from umiak.kernel.vfs.core import LAST_DOT, LAST_DOTDOT, LAST_NORM, LAST_ROOT, PATH_MAX

MAX_RW = 0x7FFFF000      # Linux caps one read/write at this many bytes
CHUNK = 1 << 20          # bytes copied per step between a file and guest memory
NS = 1_000_000_000
UIO_MAXIOV = 1024

# f_flags kept by an open file (F_GETFL shows them); O_CLOEXEC lives in the fd table
OPEN_KEEP = (abi.O_ACCMODE | abi.O_APPEND | abi.O_NONBLOCK | abi.O_DSYNC | abi.O_ASYNC | abi.O_DIRECT
             | abi.O_LARGEFILE | abi.O_DIRECTORY | abi.O_NOFOLLOW | abi.O_NOATIME | abi.O_SYNC | abi.O_PATH)
SETFL_MASK = abi.O_APPEND | abi.O_NONBLOCK | abi.O_ASYNC | abi.O_DIRECT | abi.O_NOATIME
O_PATH_KEEP = abi.O_PATH | abi.O_DIRECTORY | abi.O_NOFOLLOW
VALID_OPEN = 0o37777777 & ~0o10   # every flag Linux knows (openat2 refuses the rest)


# -- helpers ------------------------------------------------------------------------

def _path(task, addr) -> str:
    """A path argument: EFAULT for a bad pointer, ENAMETOOLONG at PATH_MAX."""
    return os.fsdecode(task.mm.read_cstr(addr, PATH_MAX))


def _vfs(task):
    return task.kernel.vfs


def _nofile(task) -> int:
    lim = task.process.rlimits.get(abi.RLIMIT_NOFILE, [1024])[0]
    task.fds.limit = min(lim, 1 << 20)
    return task.fds.limit


def encode_stat(st) -> bytes:
    a, m, c = st.st_atime_ns, st.st_mtime_ns, st.st_ctime_ns
    return abi.STAT.pack(
        st.st_dev, st.st_ino, st.st_nlink, st.st_mode, st.st_uid, st.st_gid, 0,
        getattr(st, "st_rdev", 0), st.st_size, getattr(st, "st_blksize", 4096),
        getattr(st, "st_blocks", 0), a // NS, a % NS, m // NS, m % NS, c // NS, c % NS)


def encode_statx(st, mask: int, mount_root: bool = False) -> bytes:
    a, m, c = st.st_atime_ns, st.st_mtime_ns, st.st_ctime_ns
    rdev = getattr(st, "st_rdev", 0)
    attrs = abi.STATX_ATTR_MOUNT_ROOT if mount_root else 0
    return abi.STATX.pack(
        abi.STATX_BASIC_STATS | abi.STATX_MNT_ID, getattr(st, "st_blksize", 4096), attrs,
        st.st_nlink, st.st_uid, st.st_gid, st.st_mode & 0xFFFF, 0,
        st.st_ino, st.st_size, getattr(st, "st_blocks", 0), abi.STATX_ATTR_MOUNT_ROOT,
        a // NS, a % NS, 0, 0, c // NS, c % NS, m // NS, m % NS,
        os.major(rdev), os.minor(rdev), os.major(st.st_dev), os.minor(st.st_dev),
        1, 0, 0)


def _io_file(task, fd):
    """The file of an I/O call (EBADF also for O_PATH descriptors)."""
    return task.fds.get_io(s32(fd))


def _wait_io(task, f, events, op, deadlock):
    """op(), waiting while it raises EAGAIN unless O_NONBLOCK (umiak.kernel.waiting).
    An internal pipe with one thread in the program can never become ready: deadlock()."""
    try:
        return op()
    except SyscallError as e:
        if e.errno != EAGAIN or f.flags & abi.O_NONBLOCK:
            raise
    if getattr(f, "pipe", None) is not None and len(task.process.tasks) <= 1:
        return deadlock()
    from umiak.kernel.waiting import blocking
    return blocking(task, f, events, op)


def _read_into(task, f, buf, count, reader) -> int:
    """Copy what reader(n) gives into guest memory; regular files loop until count or EOF."""
    count = min(count, MAX_RW)
    if count == 0:
        return 0
    total = 0
    full = f.full_reads
    while total < count:
        n = min(count - total, CHUNK)
        if total == 0 and not full:
            data = _wait_io(task, f, POLLIN, lambda: reader(0, n), lambda: f.read_deadlock())
        else:
            data = reader(total, n)
        if not data:
            break
        try:
            task.mm.write(buf + total, data)
        except SyscallError:
            if total:
                return total
            raise
        total += len(data)
        if len(data) < n or not full:
            break
    return total


def _write_all(task, f, data: bytes, writer) -> int:
    """A blocking write to a pipe, terminal or device: all of it, waiting for room between parts."""
    total = 0
    while total < len(data):
        try:
            n = _wait_io(task, f, POLLOUT, lambda: writer(total, data[total:]),
                         lambda: f.write_unbounded(data[total:]))
        except SyscallError:
            if total:
                return total
            raise
        total += n
        if n == 0 or f.flags & abi.O_NONBLOCK:
            break
    return total


def _write_from(task, f, buf, count, writer) -> int:
    count = min(count, MAX_RW)
    if not f.full_reads:
        return _write_all(task, f, task.mm.read(buf, count), writer)
    total = 0
    while total < count:
        n = min(count - total, CHUNK)
        try:
            data = task.mm.read(buf + total, n)
        except SyscallError:
            if total:
                return total
            raise
        try:
            done = writer(total, data)
        except SyscallError:
            if total:
                return total
            raise
        total += done
        if done < n:
            break
    return total


def _sigpipe(task, f, fn):
    """fn(), and on EPIPE from a pipe or a host pipe/terminal SIGPIPE to the writing thread
    before the error (sockets send their own, honouring MSG_NOSIGNAL)."""
    from umiak.kernel.errors import EPIPE
    try:
        return fn()
    except SyscallError as e:
        if e.errno == EPIPE and (hasattr(f, "pipe") or type(f).__name__ == "HostFile"):
            from umiak.kernel.signals import make_siginfo, send
            # Linux's pipe_write: send_sig(SIGPIPE, current, 0), so SI_USER from the writer itself
            send(task.kernel, task.process, abi.SIGPIPE,
                 make_siginfo(abi.SIGPIPE, 0, pid=task.process.pid, uid=task.process.creds.uid), task)
        raise


def _check_readable(f):
    if not f.readable():
        raise SyscallError(EBADF)


def _check_writable(f):
    if not f.writable():
        raise SyscallError(EBADF)


# -- read and write ---------------------------------------------------------------

def sys_read(task, fd, buf, count):
    """read(2)"""
    f = _io_file(task, fd)
    _check_readable(f)
    return _read_into(task, f, buf, count, lambda done, n: f.read(n))


def sys_write(task, fd, buf, count):
    """write(2): SIGPIPE and EPIPE on a pipe without readers."""
    f = _io_file(task, fd)
    _check_writable(f)
    if count == 0:
        return 0
    return _sigpipe(task, f, lambda: _write_from(task, f, buf, count, lambda done, data: f.write(data)))


def sys_pread64(task, fd, buf, count, pos):
    """pread64(2)"""
    pos = s64(pos)
    if pos < 0:
        raise SyscallError(EINVAL)
    f = _io_file(task, fd)
    _check_readable(f)
    return _read_into(task, f, buf, count, lambda done, n: f.pread(pos + done, n))


def sys_pwrite64(task, fd, buf, count, pos):
    """pwrite64(2)"""
    pos = s64(pos)
    if pos < 0:
        raise SyscallError(EINVAL)
    f = _io_file(task, fd)
    _check_writable(f)
    if count == 0:
        return 0
    return _write_from(task, f, buf, count, lambda done, data: f.pwrite(pos + done, data))


def _iovecs(task, iov, iovcnt):
    iovcnt = s32(iovcnt)
    if iovcnt < 0 or iovcnt > UIO_MAXIOV:
        raise SyscallError(EINVAL)
    if iovcnt == 0:
        return []
    raw = task.mm.read(iov, 16 * iovcnt)
    vecs = [abi.IOVEC.unpack_from(raw, 16 * i) for i in range(iovcnt)]
    total = 0
    for _, ln in vecs:
        if ln >> 63:
            raise SyscallError(EINVAL)
        total += ln
    if total > MAX_RW:   # Linux truncates the total to MAX_RW
        out, left = [], MAX_RW
        for base, ln in vecs:
            out.append((base, min(ln, left)))
            left -= out[-1][1]
        vecs = out
    return vecs


def _readv(task, f, vecs, reader) -> int:
    if not f.full_reads:       # one read (one wait) for all the buffers, then scatter
        want = sum(ln for _, ln in vecs)
        if want == 0:
            return 0
        data = _wait_io(task, f, POLLIN, lambda: reader(0, want), lambda: f.read_deadlock())
        done = 0
        for base, ln in vecs:
            part = data[done:done + ln]
            if not part:
                break
            task.mm.write(base, part)
            done += len(part)
        return done
    done = 0
    for base, ln in vecs:
        if ln == 0:
            continue
        got = _read_into(task, f, base, ln, lambda d, n, off=done: reader(off + d, n))
        done += got
        if got < ln:
            break
    return done


def _writev(task, f, vecs, writer) -> int:
    # gathered into one write so that lines reach a pipe or terminal whole
    parts = []
    for base, ln in vecs:
        if ln:
            try:
                parts.append(task.mm.read(base, ln))
            except SyscallError:
                if not parts:
                    raise
                break
    data = b"".join(parts)
    if not data:
        return 0
    if not f.full_reads:
        return _write_all(task, f, data, writer)
    done = 0
    while done < len(data):
        n = writer(done, data[done:done + CHUNK * 16])
        done += n
        if n == 0:
            break
    return done


def sys_readv(task, fd, iov, iovcnt):
    """readv(2)"""
    f = _io_file(task, fd)
    _check_readable(f)
    return _readv(task, f, _iovecs(task, iov, iovcnt), lambda off, n: f.read(n))


def sys_writev(task, fd, iov, iovcnt):
    """writev(2): one write of the gathered buffers, so lines stay whole."""
    f = _io_file(task, fd)
    _check_writable(f)
    vecs = _iovecs(task, iov, iovcnt)
    return _sigpipe(task, f, lambda: _writev(task, f, vecs, lambda off, data: f.write(data)))


def _rwf(flags):
    if flags & ~(abi.RWF_HIPRI | abi.RWF_DSYNC | abi.RWF_SYNC | abi.RWF_NOWAIT | abi.RWF_APPEND):
        raise SyscallError(EOPNOTSUPP)


def sys_preadv(task, fd, iov, iovcnt, pos_l, pos_h):
    """preadv(2)"""
    return sys_preadv2(task, fd, iov, iovcnt, pos_l, pos_h, 0)


def sys_pwritev(task, fd, iov, iovcnt, pos_l, pos_h):
    """pwritev(2)"""
    return sys_pwritev2(task, fd, iov, iovcnt, pos_l, pos_h, 0)


def _vector_io(task, fd, iov, iovcnt, pos_l, flags, check):
    """The checks preadv2 and pwritev2 share, in Linux's order: (file, offset, iovecs)."""
    pos = s64(pos_l)
    f = _io_file(task, fd)
    _rwf(flags & 0xFFFFFFFF)
    if pos < -1:
        raise SyscallError(EINVAL)
    check(f)
    return f, pos, _iovecs(task, iov, iovcnt)


def sys_preadv2(task, fd, iov, iovcnt, pos_l, pos_h, flags):
    """preadv2(2): the RWF_* hints are accepted and ignored; offset -1 reads at the file position."""
    f, pos, vecs = _vector_io(task, fd, iov, iovcnt, pos_l, flags, _check_readable)
    if pos == -1:
        return _readv(task, f, vecs, lambda off, n: f.read(n))
    f.pread(pos, 0)          # ESPIPE for pipes before anything is read
    return _readv(task, f, vecs, lambda off, n: f.pread(pos + off, n))


def sys_pwritev2(task, fd, iov, iovcnt, pos_l, pos_h, flags):
    """pwritev2(2): the RWF_* hints are accepted and ignored; offset -1 writes at the file position."""
    f, pos, vecs = _vector_io(task, fd, iov, iovcnt, pos_l, flags, _check_writable)
    if pos == -1:
        return _sigpipe(task, f, lambda: _writev(task, f, vecs, lambda off, data: f.write(data)))
    f.pwrite(pos, b"")
    return _writev(task, f, vecs, lambda off, data: f.pwrite(pos + off, data))


# -- open and close ------------------------------------------------------------------

def _do_open(task, dirfd, path_addr, flags, mode, resolve=0):
    path = _path(task, path_addr)
    if flags & abi.O_CREAT and flags & abi.O_DIRECTORY and (flags & abi.O_TMPFILE) != abi.O_TMPFILE:
        raise SyscallError(EINVAL)
    if (flags & abi.O_TMPFILE) == abi.O_TMPFILE and not flags & (abi.O_WRONLY | abi.O_RDWR):
        raise SyscallError(EINVAL)
    if flags & abi.O_PATH:
        flags &= O_PATH_KEEP | abi.O_CLOEXEC
    else:
        flags |= abi.O_LARGEFILE
    nofile = _nofile(task)
    if len(task.fds.files) >= nofile and all(i in task.fds.files for i in range(nofile)):
        raise SyscallError(EMFILE)    # Linux takes the fd number before it looks up the path
    f = _vfs(task).open(task, dirfd, path, flags, mode, resolve)
    f.flags = flags & (O_PATH_KEEP if flags & abi.O_PATH else OPEN_KEEP)
    try:
        return task.fds.install(f, bool(flags & abi.O_CLOEXEC))
    except SyscallError:
        f.close()
        raise


def sys_open(task, path, flags, mode):
    """open(2)"""
    return _do_open(task, abi.AT_FDCWD, path, s32(flags), mode & 0xFFFFFFFF)


def sys_openat(task, dirfd, path, flags, mode):
    """openat(2)"""
    return _do_open(task, s32(dirfd), path, s32(flags), mode & 0xFFFFFFFF)


def sys_creat(task, path, mode):
    """creat(2)"""
    return _do_open(task, abi.AT_FDCWD, path, abi.O_CREAT | abi.O_WRONLY | abi.O_TRUNC, mode & 0xFFFFFFFF)


def sys_openat2(task, dirfd, path, how, size):
    """openat2(2): RESOLVE_CACHED is ignored (the walk never needs to block)."""
    if size < abi.OPEN_HOW.size:
        raise SyscallError(EINVAL)
    if size > abi.PAGE_SIZE:
        raise SyscallError(E2BIG)
    raw = task.mm.read(how, size)
    if any(raw[abi.OPEN_HOW.size:]):
        raise SyscallError(E2BIG)
    flags, mode, resolve = abi.OPEN_HOW.unpack_from(raw)
    if flags & ~VALID_OPEN or flags >> 32:
        raise SyscallError(EINVAL)
    if resolve & ~abi.RESOLVE_NO_XDEV & ~abi.RESOLVE_NO_MAGICLINKS & ~abi.RESOLVE_NO_SYMLINKS \
            & ~abi.RESOLVE_BENEATH & ~abi.RESOLVE_IN_ROOT & ~abi.RESOLVE_CACHED:
        raise SyscallError(EINVAL)
    creating = flags & abi.O_CREAT or (flags & abi.O_TMPFILE) == abi.O_TMPFILE
    if (mode and not creating) or mode & ~0o7777:
        raise SyscallError(EINVAL)
    if resolve & abi.RESOLVE_BENEATH and resolve & abi.RESOLVE_IN_ROOT:
        raise SyscallError(EINVAL)
    if flags & abi.O_PATH and flags & ~(O_PATH_KEEP | abi.O_CLOEXEC | abi.O_LARGEFILE):
        raise SyscallError(EINVAL)
    return _do_open(task, s32(dirfd), path, flags, mode, resolve)


def sys_close(task, fd):
    """close(2)"""
    task.fds.close(s32(fd))
    return 0


def sys_close_range(task, first, last, flags):
    """close_range(2): CLOSE_RANGE_UNSHARE has nothing to unshare (one fd table)."""
    first &= 0xFFFFFFFF
    last &= 0xFFFFFFFF
    if flags & ~(abi.CLOSE_RANGE_UNSHARE | abi.CLOSE_RANGE_CLOEXEC) or first > last:
        raise SyscallError(EINVAL)
    fds = task.fds
    for fd in sorted(n for n in fds.files if first <= n <= last):
        if flags & abi.CLOSE_RANGE_CLOEXEC:
            fds.cloexec.add(fd)
        else:
            fds.close(fd)
    return 0


def sys_lseek(task, fd, offset, whence):
    """lseek(2)"""
    f = _io_file(task, fd)
    whence = whence & 0xFFFFFFFF
    if whence > abi.SEEK_HOLE:
        raise SyscallError(EINVAL)
    return f.lseek(s64(offset), whence)


# -- stat -------------------------------------------------------------------------------

def sys_fstat(task, fd, statbuf):
    """fstat(2)"""
    st = task.fds.get(s32(fd)).stat()
    task.mm.write(statbuf, encode_stat(st))
    return 0


def _stat_path(task, dirfd, path_addr, statbuf, flags):
    if flags & ~(abi.AT_SYMLINK_NOFOLLOW | abi.AT_NO_AUTOMOUNT | abi.AT_EMPTY_PATH):
        raise SyscallError(EINVAL)
    # a NULL path with AT_EMPTY_PATH is the dirfd itself (Linux 6.11)
    path = "" if not path_addr and flags & abi.AT_EMPTY_PATH else _path(task, path_addr)
    st = _vfs(task).stat(task, dirfd, path, flags)
    task.mm.write(statbuf, encode_stat(st))
    return 0


def sys_stat(task, path, statbuf):
    """stat(2)"""
    return _stat_path(task, abi.AT_FDCWD, path, statbuf, 0)


def sys_lstat(task, path, statbuf):
    """lstat(2)"""
    return _stat_path(task, abi.AT_FDCWD, path, statbuf, abi.AT_SYMLINK_NOFOLLOW)


def sys_newfstatat(task, dirfd, path, statbuf, flags):
    """newfstatat(2)"""
    return _stat_path(task, s32(dirfd), path, statbuf, s32(flags))


def sys_statx(task, dirfd, path, flags, mask, buf):
    """statx(2): no birth time (the host's is not read)."""
    flags = s32(flags)
    if flags & ~(abi.AT_SYMLINK_NOFOLLOW | abi.AT_NO_AUTOMOUNT | abi.AT_EMPTY_PATH | abi.AT_STATX_SYNC_TYPE):
        raise SyscallError(EINVAL)
    if flags & abi.AT_STATX_SYNC_TYPE == abi.AT_STATX_SYNC_TYPE:
        raise SyscallError(EINVAL)
    if mask & abi.STATX__RESERVED:
        raise SyscallError(EINVAL)
    p = _path(task, path) if path else ""
    if not path and not flags & abi.AT_EMPTY_PATH:
        raise SyscallError(EFAULT)
    vfs = _vfs(task)
    loc, f = vfs.resolve_fd_or_path(task, s32(dirfd), p, not flags & abi.AT_SYMLINK_NOFOLLOW,
                                    bool(flags & abi.AT_EMPTY_PATH))
    if f is not None:
        st, loc = f.stat(), f.loc
    else:
        st = loc.node.stat()
    mount_root = loc is not None and loc.path == loc.mount.path
    task.mm.write(buf, encode_statx(st, mask, mount_root))
    return 0


# -- directories ----------------------------------------------------------------------

def _getdents(task, fd, dirp, count, wide: bool):
    f = task.fds.get_io(s32(fd))
    entries = f.dir_entries()
    count &= 0xFFFFFFFF
    out = bytearray()
    pos = getattr(f, "dir_pos", 0)
    while pos < len(entries):
        ino, dtype, name = entries[pos]
        bname = os.fsencode(name)
        if wide:
            reclen = (19 + len(bname) + 1 + 7) & ~7
            rec = ino.to_bytes(8, "little") + (pos + 1).to_bytes(8, "little") + reclen.to_bytes(2, "little") \
                + bytes([dtype]) + bname
        else:
            reclen = (18 + len(bname) + 2 + 7) & ~7
            rec = ino.to_bytes(8, "little") + (pos + 1).to_bytes(8, "little") + reclen.to_bytes(2, "little") + bname
        rec = rec + bytes(reclen - len(rec))
        if not wide:
            rec = rec[:-1] + bytes([dtype])
        if len(out) + reclen > count:
            if not out:
                raise SyscallError(EINVAL)
            break
        out += rec
        pos += 1
    task.mm.write(dirp, bytes(out))
    f.dir_pos = pos
    return len(out)


def sys_getdents64(task, fd, dirp, count):
    """getdents64(2): d_off is the index of the next entry."""
    return _getdents(task, fd, dirp, count, True)


def sys_getdents(task, fd, dirp, count):
    """getdents(2)"""
    return _getdents(task, fd, dirp, count, False)


def sys_readlink(task, path, buf, bufsiz):
    """readlink(2)"""
    return sys_readlinkat(task, abi.AT_FDCWD & abi.MASK64, path, buf, bufsiz)


def sys_readlinkat(task, dirfd, path, buf, bufsiz):
    """readlinkat(2)"""
    bufsiz = s32(bufsiz)
    if bufsiz <= 0:
        raise SyscallError(EINVAL)
    p = _path(task, path)
    dirfd = s32(dirfd)
    vfs = _vfs(task)
    if not p:
        if dirfd == abi.AT_FDCWD:
            raise SyscallError(ENOENT)
        f = task.fds.get(dirfd)
        if f.loc is None or not _stat.S_ISLNK(f.loc.node.mode):
            raise SyscallError(ENOENT)
        target = f.loc.node.readlink()
    else:
        target = vfs.readlink(task, dirfd, p)
    data = os.fsencode(target)[:bufsiz]
    task.mm.write(buf, data)
    return len(data)


def sys_getcwd(task, buf, size):
    """getcwd(2): the working directory with symlinks resolved, as the kernel keeps it."""
    data = os.fsencode(_vfs(task).cwd(task).path) + b"\0"
    if size < len(data):
        raise SyscallError(ERANGE)
    task.mm.write(buf, data)
    return len(data)


def sys_chdir(task, path):
    """chdir(2)"""
    vfs = _vfs(task)
    loc = vfs.resolve(task, abi.AT_FDCWD, _path(task, path), True)
    if not loc.is_dir:
        raise SyscallError(ENOTDIR)
    vfs.check_access(task, loc, abi.X_OK)
    task.process.cwd = loc.path
    return 0


def sys_fchdir(task, fd):
    """fchdir(2)"""
    f = task.fds.get(s32(fd))
    if f.loc is None or not f.loc.is_dir:
        raise SyscallError(ENOTDIR)
    _vfs(task).check_access(task, f.loc, abi.X_OK)
    task.process.cwd = f.loc.path
    return 0


def _access(task, dirfd, path_addr, mode, flags):
    if mode & ~7:
        raise SyscallError(EINVAL)
    if flags & ~(abi.AT_EACCESS | abi.AT_SYMLINK_NOFOLLOW | abi.AT_EMPTY_PATH):
        raise SyscallError(EINVAL)
    vfs = _vfs(task)
    loc, f = vfs.resolve_fd_or_path(task, dirfd, _path(task, path_addr),
                                    not flags & abi.AT_SYMLINK_NOFOLLOW, bool(flags & abi.AT_EMPTY_PATH))
    if f is not None:
        loc = f.loc
        if loc is None:
            return 0
    if mode:
        vfs.check_access(task, loc, mode, effective=bool(flags & abi.AT_EACCESS))
    return 0


def sys_access(task, path, mode):
    """access(2)"""
    return _access(task, abi.AT_FDCWD, path, s32(mode), 0)


def sys_faccessat(task, dirfd, path, mode):
    """faccessat(2)"""
    return _access(task, s32(dirfd), path, s32(mode), 0)


def sys_faccessat2(task, dirfd, path, mode, flags):
    """faccessat2(2)"""
    return _access(task, s32(dirfd), path, s32(mode), s32(flags))


# -- descriptors -------------------------------------------------------------------------

def sys_ioctl(task, fd, req, arg):
    """ioctl(2): terminal requests go to host terminals only; FIONBIO/FIOCLEX/FIONREAD here."""
    fd = s32(fd)
    f = task.fds.get_io(fd)
    req &= 0xFFFFFFFF
    if req == abi.FIOCLEX:
        task.fds.cloexec.add(fd)
        return 0
    if req == abi.FIONCLEX:
        task.fds.cloexec.discard(fd)
        return 0
    if req == abi.FIONBIO:
        on = task.mm.read_u32(arg)
        f.flags = (f.flags | abi.O_NONBLOCK) if on else (f.flags & ~abi.O_NONBLOCK)
        return 0
    if req == abi.FIOASYNC:
        on = task.mm.read_u32(arg)
        f.flags = (f.flags | abi.O_ASYNC) if on else (f.flags & ~abi.O_ASYNC)
        return 0
    if req == abi.FIONREAD:
        n = f.available()
        task.mm.write_u32(arg, n)
        return 0
    return f.ioctl(task, req, arg)


def sys_dup(task, fd):
    """dup(2)"""
    f = task.fds.get(s32(fd))
    _nofile(task)
    return task.fds.install(f)


def sys_dup2(task, oldfd, newfd):
    """dup2(2)"""
    oldfd, newfd = s32(oldfd), s32(newfd)
    if oldfd == newfd:
        task.fds.get(oldfd)
        return newfd
    return sys_dup3(task, oldfd, newfd, 0)


def sys_dup3(task, oldfd, newfd, flags):
    """dup3(2)"""
    oldfd, newfd, flags = s32(oldfd), newfd & 0xFFFFFFFF, s32(flags)
    if flags & ~abi.O_CLOEXEC:
        raise SyscallError(EINVAL)
    if oldfd == newfd:
        raise SyscallError(EINVAL)
    if newfd >= _nofile(task):
        raise SyscallError(EBADF)
    f = task.fds.get(oldfd)
    task.fds.install_at(newfd, f, bool(flags & abi.O_CLOEXEC))
    return newfd


FLOCK = __import__("struct").Struct("<hh4xqqi4x")   # struct flock: 32 bytes, l_start aligned
F_RDLCK, F_WRLCK, F_UNLCK = 0, 1, 2
PATH_FCNTL = (abi.F_DUPFD, abi.F_DUPFD_CLOEXEC, abi.F_GETFD, abi.F_SETFD, abi.F_GETFL)


def _locks(task):
    """The VM's lock table, remembered by the fd table so close(2) can drop locks."""
    vfs = _vfs(task)
    table = getattr(vfs, "locks", None)
    if table is None:
        from umiak.kernel.vfs.locks import LockTable
        table = vfs.locks = LockTable()
    task.fds.locks = table
    task.fds.lock_pid = task.process.pid
    return table


def _record_lock(task, f, cmd, arg):
    """F_GETLK/F_SETLK/F_SETLKW and their F_OFD_* forms (see vfs/locks.py)."""
    from umiak.kernel.vfs.locks import INF, file_key
    l_type, whence, start, length, pid = task.mm.read_struct(arg, FLOCK)
    ofd = cmd in (abi.F_OFD_GETLK, abi.F_OFD_SETLK, abi.F_OFD_SETLKW)
    if l_type not in (F_RDLCK, F_WRLCK, F_UNLCK) or whence > abi.SEEK_END:
        raise SyscallError(EINVAL)
    if ofd and pid != 0:
        raise SyscallError(EINVAL)
    getting = cmd in (abi.F_GETLK, abi.F_OFD_GETLK)
    if not getting and (l_type == F_RDLCK and not f.readable() or l_type == F_WRLCK and not f.writable()):
        raise SyscallError(EBADF)
    base = 0 if whence == abi.SEEK_SET else f.lseek(0, abi.SEEK_CUR) if whence == abi.SEEK_CUR else f.size()
    begin = base + start
    if length > 0:
        lo, hi = begin, begin + length
    elif length < 0:
        lo, hi = begin + length, begin
    else:
        lo, hi = begin, INF
    if lo < 0:
        raise SyscallError(EINVAL)
    table = _locks(task)
    key = file_key(f)
    owner = ("ofd", id(f)) if ofd else ("posix", task.process.pid)
    if getting:
        if l_type == F_UNLCK:
            raise SyscallError(EINVAL)
        lk = table.conflict(key, owner, l_type, lo, hi)
        if lk is None:
            task.mm.write_struct(arg, FLOCK, F_UNLCK, whence, start, length, pid)
        else:
            o, t, s_, e_ = lk
            task.mm.write_struct(arg, FLOCK, t, abi.SEEK_SET, s_, 0 if e_ >= INF else e_ - s_,
                                 o[1] if o[0] == "posix" else -1)
        return 0
    table.lock(task, key, owner, l_type, lo, hi, cmd in (abi.F_SETLKW, abi.F_OFD_SETLKW))
    return 0


def sys_flock(task, fd, op):
    """flock(2): locks of the open file description, in the VM (not seen by host processes);
    a wait that only this thread could end gives EDEADLK rather than hanging the VM."""
    f = task.fds.get(s32(fd))
    op = s32(op)
    if f.flags & abi.O_PATH:
        raise SyscallError(EBADF)
    from umiak.kernel.vfs.locks import LOCK_EX, LOCK_NB, LOCK_SH, LOCK_UN, file_key
    if op & ~(LOCK_SH | LOCK_EX | LOCK_NB | LOCK_UN) or (op & ~LOCK_NB) not in (LOCK_SH, LOCK_EX, LOCK_UN):
        raise SyscallError(EINVAL)
    _locks(task).flock(task, file_key(f), f, op)
    return 0


F_SEALS = 1 | 2 | 4 | 8 | 16


def _seals(task, f, cmd, arg):
    """F_ADD_SEALS/F_GET_SEALS on memfd and tmpfs files."""
    inode = getattr(f, "inode", None)
    if inode is None:
        raise SyscallError(EINVAL)
    if cmd == abi.F_GET_SEALS:
        return inode.seals
    arg &= 0xFFFFFFFF
    if arg & ~F_SEALS:
        raise SyscallError(EINVAL)
    if not f.writable():
        raise SyscallError(EPERM)
    if inode.seals & 1:           # F_SEAL_SEAL
        raise SyscallError(EPERM)
    inode.seals |= arg
    return 0


def sys_fcntl(task, fd, cmd, arg):
    """fcntl(2): record locks are the VM's (vfs/locks.py); F_SETOWN/F_GETOWN are recorded only;
    seals on memfd/tmpfs files."""
    fd, cmd = s32(fd), s32(cmd)
    fds = task.fds
    f = fds.get(fd)
    if f.flags & abi.O_PATH and cmd not in PATH_FCNTL:
        raise SyscallError(EBADF)
    if cmd in (abi.F_DUPFD, abi.F_DUPFD_CLOEXEC):
        lim = _nofile(task)
        if arg >= lim:
            raise SyscallError(EINVAL)
        return fds.install(f, cmd == abi.F_DUPFD_CLOEXEC, lowest=arg)
    if cmd == abi.F_GETFD:
        return abi.FD_CLOEXEC if fd in fds.cloexec else 0
    if cmd == abi.F_SETFD:
        if arg & abi.FD_CLOEXEC:
            fds.cloexec.add(fd)
        else:
            fds.cloexec.discard(fd)
        return 0
    if cmd == abi.F_GETFL:
        return f.flags & ~abi.O_CLOEXEC
    if cmd == abi.F_SETFL:
        arg = s32(arg)
        new = (f.flags & ~SETFL_MASK) | (arg & SETFL_MASK)
        setfl = getattr(f, "set_host_flags", None)
        if setfl is not None:
            setfl(new)
        f.flags = new
        return 0
    if cmd in (abi.F_GETLK, abi.F_SETLK, abi.F_SETLKW, abi.F_OFD_GETLK, abi.F_OFD_SETLK, abi.F_OFD_SETLKW):
        return _record_lock(task, f, cmd, arg)
    if cmd in (abi.F_GETPIPE_SZ, abi.F_SETPIPE_SZ):
        pipe = getattr(f, "pipe", None)
        if pipe is None:
            raise SyscallError(EBADF)
        if cmd == abi.F_SETPIPE_SZ:
            size = arg & 0xFFFFFFFF
            if size > 1 << 30:
                raise SyscallError(EINVAL)
            want = max(4096, 1 << max(0, (size - 1).bit_length()))
            if want < len(pipe.buf):
                raise SyscallError(EBUSY)
            pipe.capacity = want
        return pipe.capacity
    if cmd == abi.F_GETOWN:
        return getattr(f, "owner", 0)
    if cmd == abi.F_SETOWN:
        f.owner = s32(arg)
        return 0
    if cmd in (abi.F_ADD_SEALS, abi.F_GET_SEALS):
        return _seals(task, f, cmd, arg)
    raise SyscallError(EINVAL)


def _pipe(task, fdsaddr, flags):
    flags = s32(flags)
    if flags & ~(abi.O_CLOEXEC | abi.O_NONBLOCK | abi.O_DIRECT):
        raise SyscallError(EINVAL)
    from umiak.kernel.vfs.pipe import make_pipe
    c = task.process.creds
    r, w = make_pipe(task.kernel, flags, c.euid, c.egid)
    _nofile(task)
    cloexec = bool(flags & abi.O_CLOEXEC)
    fds = task.fds
    rfd = fds.install(r, cloexec)
    try:
        wfd = fds.install(w, cloexec)
    except SyscallError:
        fds.close(rfd)
        raise
    try:
        task.mm.write(fdsaddr, rfd.to_bytes(4, "little") + wfd.to_bytes(4, "little"))
    except SyscallError:
        fds.close(rfd)
        fds.close(wfd)
        raise
    return 0


def sys_pipe(task, fds):
    """pipe(2): see vfs/pipe.py for what an empty pipe does with one thread."""
    return _pipe(task, fds, 0)


def sys_pipe2(task, fds, flags):
    """pipe2(2)"""
    return _pipe(task, fds, flags)


# -- file systems and syncing ----------------------------------------------------------------

def _statfs(task, loc, buf):
    info, readonly = _vfs(task).statfs(loc)
    flags = info.get("f_flags", abi.ST_RELATIME) | (abi.ST_RDONLY if readonly else 0)
    fsid = info.get("f_fsid", (0, 0))
    task.mm.write(buf, abi.STATFS.pack(
        info["f_type"], info["f_bsize"], info["f_blocks"], info["f_bfree"], info["f_bavail"],
        info["f_files"], info["f_ffree"], fsid[0], fsid[1], info["f_namelen"], info["f_frsize"], flags))
    return 0


def sys_statfs(task, path, buf):
    """statfs(2): a read-only mount has ST_RDONLY in f_flags."""
    loc = _vfs(task).resolve(task, abi.AT_FDCWD, _path(task, path), True)
    return _statfs(task, loc, buf)


def sys_fstatfs(task, fd, buf):
    """fstatfs(2)"""
    f = task.fds.get(s32(fd))
    if f.loc is None:
        from umiak.kernel.vfs.hostfs import host_statfs
        fd_ = getattr(f, "fd", None)
        info = host_statfs(fd_) if fd_ is not None else dict(
            f_type=0x50495045, f_bsize=4096, f_blocks=0, f_bfree=0, f_bavail=0, f_files=0,
            f_ffree=0, f_namelen=255, f_frsize=4096)
        flags = info.get("f_flags", 0)
        fsid = info.get("f_fsid", (0, 0))
        task.mm.write(buf, abi.STATFS.pack(
            info["f_type"], info["f_bsize"], info["f_blocks"], info["f_bfree"], info["f_bavail"],
            info["f_files"], info["f_ffree"], fsid[0], fsid[1], info["f_namelen"], info["f_frsize"], flags))
        return 0
    return _statfs(task, f.loc, buf)


def sys_sync(task):
    """sync(2)"""
    return 0


def sys_syncfs(task, fd):
    """syncfs(2)"""
    task.fds.get(s32(fd))
    return 0


def sys_fsync(task, fd):
    """fsync(2)"""
    _io_file(task, fd).sync()
    return 0


def sys_fdatasync(task, fd):
    """fdatasync(2)"""
    _io_file(task, fd).sync()
    return 0


# -- changes to the tree (EROFS on the read-only root, after Linux's earlier errors) ---------

def _exists(vfs, parent, name) -> bool:
    try:
        vfs.child(parent, name)
        return True
    except SyscallError as e:
        if e.errno in (ENOENT,):
            return False
        raise


def _owner(task) -> tuple[int, int]:
    c = task.process.creds
    return c.euid, c.egid


def _may_create(task, parent) -> None:
    """Write and search permission on the directory that gets a new name."""
    _vfs(task).check_access(task, parent, abi.W_OK | abi.X_OK)


def _may_delete(task, parent, loc) -> None:
    """Linux's may_delete: write and search on the directory, and in a sticky directory
    (/tmp) only the owner of the file or of the directory (or root) may remove it."""
    vfs = _vfs(task)
    vfs.check_access(task, parent, abi.W_OK | abi.X_OK)
    euid = task.process.creds.euid
    if euid != 0 and parent.node.mode & _stat.S_ISVTX:
        if loc.node.stat().st_uid != euid and parent.node.stat().st_uid != euid:
            raise SyscallError(EPERM)


def _may_change_attrs(task, loc, what: str, uid: int = -1, gid: int = -1) -> None:
    """chmod/utime need the owner (or root); chown needs root, or the owner giving the
    file to one of its own groups."""
    c = task.process.creds
    if c.euid == 0 or loc is None:
        return
    st = loc.node.stat()
    if what == "chown":
        if uid != -1 and uid != st.st_uid or st.st_uid != c.euid:
            raise SyscallError(EPERM)
        if gid != -1 and gid != c.egid and gid not in c.groups and gid != st.st_gid:
            raise SyscallError(EPERM)
    elif st.st_uid != c.euid:
        raise SyscallError(EPERM)


def _fs_op(loc, op: str):
    """The file system's method for a change, EROFS on a read-only mount, EPERM if it has none."""
    if loc.mount.readonly:
        raise SyscallError(EROFS)
    fn = getattr(loc.node, op, None)
    if fn is None:
        raise SyscallError(EPERM)
    return fn


def _create_at(task, dirfd, path, must_not_exist=True):
    """Linux's filename_create: the parent must exist; EEXIST before EROFS."""
    vfs = _vfs(task)
    parent, name, kind = vfs.resolve_parent(task, dirfd, path)
    if kind != LAST_NORM:
        raise SyscallError(EEXIST)
    if _exists(vfs, parent, name):
        raise SyscallError(EEXIST)
    if path.endswith("/"):
        raise SyscallError(ENOENT)
    return parent, name


def sys_mkdirat(task, dirfd, path, mode):
    """mkdirat(2)"""
    vfs = _vfs(task)
    p = _path(task, path)
    parent, name, kind = vfs.resolve_parent(task, s32(dirfd), p)
    if kind != LAST_NORM or _exists(vfs, parent, name):
        raise SyscallError(EEXIST)
    fn = _fs_op(parent, "mkdir")
    vfs.check_access(task, parent, abi.W_OK | abi.X_OK)
    fn(name, (mode & 0o7777) & ~task.process.umask, owner=_owner(task))
    return 0


def sys_mkdir(task, path, mode):
    """mkdir(2)"""
    return sys_mkdirat(task, abi.AT_FDCWD & abi.MASK64, path, mode)


def sys_mknodat(task, dirfd, path, mode, dev):
    """mknodat(2)"""
    mode &= 0xFFFFFFFF
    p = _path(task, path)
    ftype = mode & abi.S_IFMT
    if ftype not in (0, abi.S_IFREG, abi.S_IFCHR, abi.S_IFBLK, abi.S_IFIFO, abi.S_IFSOCK):
        raise SyscallError(EINVAL)
    if ftype == abi.S_IFDIR:
        raise SyscallError(EPERM)
    parent, name = _create_at(task, s32(dirfd), p)
    fn = _fs_op(parent, "mknod")
    _may_create(task, parent)
    if ftype in (abi.S_IFCHR, abi.S_IFBLK) and task.process.creds.euid != 0:
        raise SyscallError(EPERM)
    fn(name, mode & ~task.process.umask, dev, owner=_owner(task))
    return 0


def sys_mknod(task, path, mode, dev):
    """mknod(2)"""
    return sys_mknodat(task, abi.AT_FDCWD & abi.MASK64, path, mode, dev)


def sys_symlinkat(task, target, dirfd, path):
    """symlinkat(2)"""
    t = _path(task, target)
    p = _path(task, path)
    if not t:
        raise SyscallError(ENOENT)
    parent, name = _create_at(task, s32(dirfd), p)
    fn = _fs_op(parent, "symlink")
    _may_create(task, parent)
    fn(name, t, owner=_owner(task))
    return 0


def sys_symlink(task, target, path):
    """symlink(2)"""
    return sys_symlinkat(task, target, abi.AT_FDCWD & abi.MASK64, path)


def sys_linkat(task, olddirfd, oldpath, newdirfd, newpath, flags):
    """linkat(2)"""
    flags = s32(flags)
    if flags & ~(abi.AT_SYMLINK_FOLLOW | abi.AT_EMPTY_PATH):
        raise SyscallError(EINVAL)
    vfs = _vfs(task)
    op = _path(task, oldpath)
    np_ = _path(task, newpath)
    old, f = vfs.resolve_fd_or_path(task, s32(olddirfd), op, bool(flags & abi.AT_SYMLINK_FOLLOW),
                                    bool(flags & abi.AT_EMPTY_PATH))
    if f is not None:
        old = f.loc
        if old is None:
            raise SyscallError(ENOENT)
    if old.is_dir:
        raise SyscallError(EPERM)
    parent, name = _create_at(task, s32(newdirfd), np_)
    fn = _fs_op(parent, "link")
    if parent.mount is not old.mount:
        raise SyscallError(EXDEV)
    _may_create(task, parent)
    fn(name, old.node)
    return 0


def sys_link(task, oldpath, newpath):
    """link(2)"""
    at = abi.AT_FDCWD & abi.MASK64
    return sys_linkat(task, at, oldpath, at, newpath, 0)


def sys_unlinkat(task, dirfd, path, flags):
    """unlinkat(2)"""
    flags = s32(flags)
    if flags & ~abi.AT_REMOVEDIR:
        raise SyscallError(EINVAL)
    vfs = _vfs(task)
    p = _path(task, path)
    parent, name, kind = vfs.resolve_parent(task, s32(dirfd), p)
    if flags & abi.AT_REMOVEDIR:
        if kind == LAST_DOT:
            raise SyscallError(EINVAL)
        if kind == LAST_DOTDOT:
            raise SyscallError(ENOTEMPTY)
        if kind == LAST_ROOT:
            raise SyscallError(EBUSY)
        if parent.mount.readonly:
            raise SyscallError(EROFS)
        loc = vfs.child(parent, name)
        if not loc.is_dir:
            raise SyscallError(ENOTDIR)
        if loc.mount is not parent.mount:
            raise SyscallError(EBUSY)
        fn = _fs_op(parent, "rmdir")
        _may_delete(task, parent, loc)
        fn(name)
        return 0
    if kind != LAST_NORM:
        raise SyscallError(EISDIR)
    if parent.mount.readonly:
        raise SyscallError(EROFS)
    loc = vfs.child(parent, name)
    if p.endswith("/"):
        raise SyscallError(EISDIR if loc.is_dir else ENOTDIR)
    if loc.is_dir:
        raise SyscallError(EISDIR)
    if loc.mount is not parent.mount:
        raise SyscallError(EBUSY)
    fn = _fs_op(parent, "unlink")
    _may_delete(task, parent, loc)
    fn(name)
    return 0


def sys_unlink(task, path):
    """unlink(2)"""
    return sys_unlinkat(task, abi.AT_FDCWD & abi.MASK64, path, 0)


def sys_rmdir(task, path):
    """rmdir(2)"""
    return sys_unlinkat(task, abi.AT_FDCWD & abi.MASK64, path, abi.AT_REMOVEDIR)


def sys_renameat2(task, olddirfd, oldpath, newdirfd, newpath, flags):
    """renameat2(2)"""
    flags &= 0xFFFFFFFF
    if flags & ~(abi.RENAME_NOREPLACE | abi.RENAME_EXCHANGE | abi.RENAME_WHITEOUT):
        raise SyscallError(EINVAL)
    if flags & abi.RENAME_NOREPLACE and flags & abi.RENAME_EXCHANGE:
        raise SyscallError(EINVAL)
    vfs = _vfs(task)
    op = _path(task, oldpath)
    np_ = _path(task, newpath)
    oparent, oname, okind = vfs.resolve_parent(task, s32(olddirfd), op)
    nparent, nname, nkind = vfs.resolve_parent(task, s32(newdirfd), np_)
    if oparent.mount is not nparent.mount:
        raise SyscallError(EXDEV)
    if okind != LAST_NORM:
        raise SyscallError(EBUSY)
    if nkind != LAST_NORM:
        raise SyscallError(EEXIST if flags & abi.RENAME_NOREPLACE else EBUSY)
    if oparent.mount.readonly:
        raise SyscallError(EROFS)
    old = vfs.child(oparent, oname)
    if flags & abi.RENAME_NOREPLACE and _exists(vfs, nparent, nname):
        raise SyscallError(EEXIST)
    if old.mount is not oparent.mount:
        raise SyscallError(EBUSY)       # a mount point
    fn = _fs_op(oparent, "rename")
    _may_delete(task, oparent, old)
    _may_create(task, nparent)
    fn(oname, nparent.node, nname, flags)
    return 0


def sys_renameat(task, olddirfd, oldpath, newdirfd, newpath):
    """renameat(2)"""
    return sys_renameat2(task, olddirfd, oldpath, newdirfd, newpath, 0)


def sys_rename(task, oldpath, newpath):
    """rename(2)"""
    at = abi.AT_FDCWD & abi.MASK64
    return sys_renameat2(task, at, oldpath, at, newpath, 0)


def _change_loc(task, dirfd, path_addr, follow: bool, empty_ok: bool, op: str, *args):
    """Apply a change of attributes (chmod, chown, utime) to what a path or AT_EMPTY_PATH names."""
    vfs = _vfs(task)
    loc, f = vfs.resolve_fd_or_path(task, dirfd, _path(task, path_addr), follow, empty_ok)
    if f is not None:
        return _change_file(task, f, op, *args)
    _may_change(task, loc, op, args)
    _fs_op(loc, op)(*args)
    return 0


def _change_file(task, f, op: str, *args):
    loc = f.loc
    if loc is None:
        inode = getattr(f, "inode", None)     # memfd: its inode keeps the change
        if inode is not None:
            getattr(inode, op)(*args)
        return 0                              # pipes and stdio: nothing to keep
    if not loc.mount.readonly and not hasattr(loc.node, op):
        return 0
    _may_change(task, loc, op, args)
    _fs_op(loc, op)(*args)
    return 0


def _may_change(task, loc, op: str, args) -> None:
    if loc.mount.readonly:
        raise SyscallError(EROFS)
    if op == "chown":
        _may_change_attrs(task, loc, "chown", *args)
    elif op == "utime" and args[0] is None or op == "utime" and all(
            n in (UTIME_NOW, UTIME_OMIT) for _, n in args[0]):
        # setting the times to now needs the owner or write permission
        if task.process.creds.euid != 0 and loc.node.stat().st_uid != task.process.creds.euid:
            _vfs(task).check_access(task, loc, abi.W_OK)
    else:
        _may_change_attrs(task, loc, op)


def sys_fchmodat(task, dirfd, path, mode):
    """fchmodat(2)"""
    return _change_loc(task, s32(dirfd), path, True, False, "chmod", mode & 0o7777)


def sys_chmod(task, path, mode):
    """chmod(2)"""
    return sys_fchmodat(task, abi.AT_FDCWD & abi.MASK64, path, mode)


def sys_fchmod(task, fd, mode):
    """fchmod(2)"""
    return _change_file(task, task.fds.get_io(s32(fd)), "chmod", mode & 0o7777)


def sys_fchownat(task, dirfd, path, uid, gid, flags):
    """fchownat(2): kept by the file system (in memory on the root and tmpfs)."""
    flags = s32(flags)
    if flags & ~(abi.AT_SYMLINK_NOFOLLOW | abi.AT_EMPTY_PATH):
        raise SyscallError(EINVAL)
    return _change_loc(task, s32(dirfd), path, not flags & abi.AT_SYMLINK_NOFOLLOW,
                       bool(flags & abi.AT_EMPTY_PATH), "chown", s32(uid), s32(gid))


def sys_chown(task, path, uid, gid):
    """chown(2)"""
    return sys_fchownat(task, abi.AT_FDCWD & abi.MASK64, path, uid, gid, 0)


def sys_lchown(task, path, uid, gid):
    """lchown(2)"""
    return sys_fchownat(task, abi.AT_FDCWD & abi.MASK64, path, uid, gid, abi.AT_SYMLINK_NOFOLLOW)


def sys_fchown(task, fd, uid, gid):
    """fchown(2)"""
    return _change_file(task, task.fds.get_io(s32(fd)), "chown", s32(uid), s32(gid))


UTIME_NOW, UTIME_OMIT = (1 << 30) - 1, (1 << 30) - 2


def _utimes(task, dirfd, path, ts, flags):
    if ts is not None and all(n == UTIME_OMIT for _, n in ts):
        return 0
    if not path:
        return _change_file(task, task.fds.get(s32(dirfd)), "utime", ts)
    return _change_loc(task, s32(dirfd), path, not flags & abi.AT_SYMLINK_NOFOLLOW,
                       bool(flags & abi.AT_EMPTY_PATH), "utime", ts)


def sys_utimensat(task, dirfd, path, times, flags):
    """utimensat(2)"""
    flags = s32(flags)
    if flags & ~(abi.AT_SYMLINK_NOFOLLOW | abi.AT_EMPTY_PATH):
        raise SyscallError(EINVAL)
    ts = None
    if times:
        raw = task.mm.read(times, 32)
        ts = [abi.TIMESPEC.unpack_from(raw, 0), abi.TIMESPEC.unpack_from(raw, 16)]
        for _, nsec in ts:
            if not (0 <= nsec < NS) and nsec not in (UTIME_NOW, UTIME_OMIT):
                raise SyscallError(EINVAL)
    return _utimes(task, dirfd, path, ts, flags)


def _timevals(task, addr):
    """Two struct timeval -> the timespecs utimensat takes (None: now)."""
    if not addr:
        return None
    raw = task.mm.read(addr, 32)
    out = []
    for i in (0, 16):
        sec, usec = abi.TIMESPEC.unpack_from(raw, i)
        if not 0 <= usec < 1_000_000:
            raise SyscallError(EINVAL)
        out.append((sec, usec * 1000))
    return out


def sys_futimesat(task, dirfd, path, times):
    """futimesat(2)"""
    if not path:
        raise SyscallError(EFAULT)
    return _utimes(task, dirfd, path, _timevals(task, times), 0)


def sys_utimes(task, path, times):
    """utimes(2)"""
    return sys_futimesat(task, abi.AT_FDCWD & abi.MASK64, path, times)


def sys_utime(task, path, times):
    """utime(2): struct utimbuf {actime, modtime} in seconds."""
    ts = None
    if times:
        a, m = task.mm.read_struct(times, __import__("struct").Struct("<qq"))
        ts = [(a, 0), (m, 0)]
    if not path:
        raise SyscallError(EFAULT)
    return _utimes(task, abi.AT_FDCWD & abi.MASK64, path, ts, 0)


def sys_truncate(task, path, length):
    """truncate(2)"""
    length = s64(length)
    if length < 0:
        raise SyscallError(EINVAL)
    vfs = _vfs(task)
    loc = vfs.resolve(task, abi.AT_FDCWD, _path(task, path), True)
    if loc.is_dir:
        raise SyscallError(EISDIR)
    if not _stat.S_ISREG(loc.node.mode):
        raise SyscallError(EINVAL)
    fn = _fs_op(loc, "truncate")
    vfs.check_access(task, loc, abi.W_OK)
    fn(length)
    return 0


def sys_ftruncate(task, fd, length):
    """ftruncate(2)"""
    length = s64(length)
    if length < 0:
        raise SyscallError(EINVAL)
    f = _io_file(task, fd)
    if not f.writable() or not _stat.S_ISREG(f.stat().st_mode):
        raise SyscallError(EINVAL)
    f.truncate(length)
    return 0


__all__ = ["EFAULT", "encode_stat", "LAST_ROOT", "LAST_DOTDOT"]


# -- copying between files ------------------------------------------------------------------

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
        except SyscallError:
            if total:
                break
            raise
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
    """sendfile(2)"""
    fin = _io_file(task, in_fd)
    _check_readable(fin)
    pos = None
    if offset:
        pos = s64(task.mm.read_u64(offset))
        fin.pread(0, 0)          # ESPIPE for pipes
        if pos < 0:
            raise SyscallError(EINVAL)
    fout = _io_file(task, out_fd)
    _check_writable(fout)
    if fin.stat() is not None and _stat.S_ISDIR(fin.stat().st_mode):
        raise SyscallError(EINVAL)
    n, pos, _ = _sigpipe(task, fout, lambda: _copy(task, fin, fout, pos, None, min(count, MAX_RW)))
    if offset:
        task.mm.write_u64(offset, pos)
    return n


def sys_copy_file_range(task, fd_in, off_in, fd_out, off_out, length, flags):
    """copy_file_range(2)"""
    if flags & 0xFFFFFFFF:
        raise SyscallError(EINVAL)
    fin = _io_file(task, fd_in)
    fout = _io_file(task, fd_out)
    _check_readable(fin)
    _check_writable(fout)
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


# -- the rest of the family ------------------------------------------------------------------

def sys_chroot(task, path):
    """chroot(2): a unikernel's root is fixed by --root, so changing it is EPERM (after
    Linux's path errors); chroot to the current root succeeds and changes nothing."""
    vfs = _vfs(task)
    loc = vfs.resolve(task, abi.AT_FDCWD, _path(task, path), True)
    if not loc.is_dir:
        raise SyscallError(ENOTDIR)
    vfs.check_access(task, loc, abi.X_OK)
    if loc.path == "/" and loc.mount is vfs.root.mount:
        return 0
    raise SyscallError(EPERM)


FALLOC_FL_KEEP_SIZE, FALLOC_FL_PUNCH_HOLE = 0x01, 0x02
FALLOC_KNOWN = 0x01 | 0x02 | 0x04 | 0x08 | 0x10 | 0x20 | 0x40


def sys_fallocate(task, fd, mode, offset, length):
    """fallocate(2): modes 0, KEEP_SIZE and PUNCH_HOLE|KEEP_SIZE; ENOSPC from the host's disk."""
    mode, offset, length = s32(mode), s64(offset), s64(length)
    if offset < 0 or length <= 0 or mode & ~FALLOC_KNOWN:
        raise SyscallError(EINVAL)
    if mode & FALLOC_FL_PUNCH_HOLE and not mode & FALLOC_FL_KEEP_SIZE:
        raise SyscallError(EOPNOTSUPP)
    f = _io_file(task, fd)
    if not f.writable():
        raise SyscallError(EBADF)
    st = f.stat()
    if _stat.S_ISDIR(st.st_mode):
        raise SyscallError(EISDIR)
    if _stat.S_ISFIFO(st.st_mode):
        raise SyscallError(abi_espipe())
    if not _stat.S_ISREG(st.st_mode):
        import errno
        raise SyscallError(errno.ENODEV)
    if f.loc is not None and f.loc.mount.readonly:
        raise SyscallError(EROFS)
    allocate = getattr(f, "allocate", None)
    if allocate is not None:
        allocate(mode, offset, length)
        return 0
    hfd = getattr(f, "fd", None)
    if not isinstance(hfd, int):
        raise SyscallError(EOPNOTSUPP)
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.fallocate(hfd, ctypes.c_int(mode), ctypes.c_long(offset), ctypes.c_long(length)) != 0:
        raise SyscallError(ctypes.get_errno() or EINVAL)
    return 0


def abi_espipe() -> int:
    from umiak.kernel.errors import ESPIPE
    return ESPIPE


def sys_sync_file_range(task, fd, offset, nbytes, flags):
    """sync_file_range(2): the data goes to the host's page cache at each write already."""
    if s64(offset) < 0 or s64(nbytes) < 0 or flags & ~7:
        raise SyscallError(EINVAL)
    f = _io_file(task, fd)
    st = f.stat()
    if not (_stat.S_ISREG(st.st_mode) or _stat.S_ISDIR(st.st_mode) or _stat.S_ISLNK(st.st_mode)
            or _stat.S_ISBLK(st.st_mode)):
        raise SyscallError(abi_espipe())
    return 0


MFD_NAME_MAX = 249


def sys_memfd_create(task, name, flags):
    """memfd_create(2): an anonymous tmpfs file (MFD_HUGETLB is EINVAL: no huge pages)."""
    from umiak.kernel.vfs.memfs import MFD_ALLOW_SEALING, MFD_CLOEXEC, MFD_EXEC, MFD_NOEXEC_SEAL, make_memfd
    flags &= 0xFFFFFFFF
    if flags & ~(MFD_CLOEXEC | MFD_ALLOW_SEALING | MFD_NOEXEC_SEAL | MFD_EXEC):
        raise SyscallError(EINVAL)
    if flags & MFD_NOEXEC_SEAL and flags & MFD_EXEC:
        raise SyscallError(EINVAL)
    try:
        raw = task.mm.read_cstr(name, MFD_NAME_MAX + 1)
    except SyscallError as e:
        if e.errno == EFAULT:
            raise
        raise SyscallError(EINVAL) from None
    if len(raw) > MFD_NAME_MAX:
        raise SyscallError(EINVAL)
    _nofile(task)
    f = make_memfd(task.kernel, os.fsdecode(raw), flags, _owner(task))
    if flags & MFD_NOEXEC_SEAL:
        f.inode.mode &= ~0o111
        f.inode.seals |= 32    # F_SEAL_EXEC
        if not flags & MFD_ALLOW_SEALING:
            f.inode.seals &= ~1
    return task.fds.install(f, bool(flags & MFD_CLOEXEC))


SPLICE_F_MOVE, SPLICE_F_NONBLOCK, SPLICE_F_MORE, SPLICE_F_GIFT = 1, 2, 4, 8


def _is_pipe(f) -> bool:
    if hasattr(f, "pipe"):
        return True
    try:
        return _stat.S_ISFIFO(f.stat().st_mode)
    except SyscallError:
        return False


def sys_splice(task, fd_in, off_in, fd_out, off_out, length, flags):
    """splice(2): one side a pipe, as Linux requires; the data is copied (no page moving)."""
    from umiak.kernel.errors import ESPIPE
    from umiak.kernel.waiting import blocking
    if flags & ~0xF:
        raise SyscallError(EINVAL)
    fin = _io_file(task, fd_in)
    fout = _io_file(task, fd_out)
    _check_readable(fin)
    _check_writable(fout)
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
        n, pos_in, pos_out = _sigpipe(task, fout, copy)
    else:
        n, pos_in, pos_out = _sigpipe(task, fout, lambda: blocking(task, fin, POLLIN, copy))
    if off_in:
        task.mm.write_u64(off_in, pos_in)
    if off_out:
        task.mm.write_u64(off_out, pos_out)
    return n


def sys_vmsplice(task, fd, iov, nr_segs, flags):
    """vmsplice(2): user memory into a pipe (as writev) or out of one (as readv); copied."""
    f = _io_file(task, fd)
    if not _is_pipe(f):
        raise SyscallError(EBADF)
    if f.writable():
        return sys_writev(task, fd, iov, nr_segs)
    return sys_readv(task, fd, iov, nr_segs)
