"""Reading and writing: read(2), write(2), pread64(2), pwrite64(2), readv(2), writev(2),
preadv(2), pwritev(2), preadv2(2), pwritev2(2) and lseek(2)."""

from umiak.kernel import abi
from umiak.kernel.abi import UIO_MAXIOV, s32, s64
from umiak.kernel.errors import EAGAIN, EINVAL, EOPNOTSUPP, SyscallError
from umiak.kernel.syscalls.fdutil import (CHUNK, MAX_RW, check_readable, check_writable, io_file, io_result,
                                          sigpipe)
from umiak.kernel.abi import POLLIN, POLLOUT
from umiak.kernel.files import HostFile

FIRST_STEP = 64 << 10    # bytes _read_direct asks the file for first



def _wait_io(task, f, events, op, deadlock):
    """op(), waiting while it raises EAGAIN unless O_NONBLOCK (umiak.kernel.waiting).
    An internal pipe that nothing can ever make ready (one thread, one process, no
    timer armed that could signal it) would wait forever: deadlock() instead."""
    try:
        return op()
    except SyscallError as e:
        if e.errno != EAGAIN or f.flags & abi.O_NONBLOCK:
            raise
    from umiak.kernel.waiting import blocking, nothing_can_wake
    if f.pipe is not None and nothing_can_wake(task):
        return deadlock()
    return blocking(task, f, events, op)


def _read_into(task, f, buf, count, reader, pos: int | None = None) -> int:
    """Copy what reader(done, n) gives into guest memory; regular files loop until count or EOF.
    Given pos (the file offset, -1 for the file position), a file that reads fully is read
    straight into guest memory instead (_read_direct)."""
    count = min(count, MAX_RW)
    if count == 0:
        return 0
    full = f.full_reads
    if full and pos is not None:
        return _read_direct(task, f, buf, count, pos)
    total = 0
    while total < count:
        n = min(count - total, CHUNK)
        if total == 0 and not full:
            data = _wait_io(task, f, POLLIN, lambda n=n: reader(0, n), lambda: f.read_deadlock())
        else:
            data = reader(total, n)
        if not data:
            break
        try:
            task.mm.write(buf + total, data)
        except SyscallError as e:
            return io_result(total, e)
        total += len(data)
        if len(data) < n or not full:
            break
    return total


def _read_direct(task, f, buf, count, pos: int) -> int:
    """A regular file's read into guest memory with no bytes in between: the host (or the
    page cache) fills views of the guest frames behind the buffer (mm.write_views), a
    run of present writable pages at a time. A page that is not ready is touched as the
    program's own store would (backed, or copied if copy-on-write); where that faults the
    read ends, as Linux's copy_to_user does: the bytes before the bad page, else EFAULT
    -- or 0 at the end of the file, where Linux copies nothing -- the offset not moved.
    The window starts at 64 KiB and doubles with each full read up to CHUNK, so a large
    buffer and a small file cost the pages the data fills, not the buffer's."""
    mm = task.mm
    total = 0
    step = FIRST_STEP
    while total < count:
        views, n = mm.write_views(buf + total, min(count - total, step))
        if n == 0:
            try:
                mm.touch_write(buf + total)
            except SyscallError:
                if total or _at_end(f, pos):
                    return total
                raise
            continue
        got = f.readinto(views) if pos < 0 else f.preadinto(pos + total, views)
        total += got
        if got < n:
            break
        if step < CHUNK:
            step <<= 1
    return total


def _at_end(f, pos: int) -> bool:
    """Nothing to read at pos (-1: the file position), so a bad buffer gives 0, not EFAULT."""
    try:
        return not f.pread(f.lseek(0, abi.SEEK_CUR) if pos < 0 else pos, 1)
    except SyscallError:
        return False


def _write_all(task, f, data: bytes, writer) -> int:
    """A blocking write to a pipe, terminal or device: all of it, waiting for room between parts."""
    total = 0
    while total < len(data):
        try:
            rest = data[total:]
            n = _wait_io(task, f, POLLOUT, lambda at=total, rest=rest: writer(at, rest),
                         lambda rest=rest: f.write_unbounded(rest))
        except SyscallError as e:
            return io_result(total, e)
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
        except SyscallError as e:
            return io_result(total, e)
        try:
            done = writer(total, data)
        except SyscallError as e:
            return io_result(total, e)
        total += done
        if done < n:
            break
    return total


def _job_control(task, f) -> None:
    """A read of umiak's terminal by a background job: SIGTTIN (kernel/jobctl.py)."""
    term = f.terminal(task.kernel)
    if term is not None:
        from umiak.kernel.jobctl import check_read
        check_read(task, term)


def direct(f) -> bool:
    """A description whose read(2) and write(2) are one host call each (File.direct_io):
    a host socket the guest made non-blocking."""
    return f.direct_io and bool(f.flags & abi.O_NONBLOCK)


def _direct_views(task, f, buf, count) -> "list[memoryview] | None":
    """The guest memory a direct read of f fills in place, or None: the generic path (not
    such a file, or a buffer that is not all present and writable in place)."""
    if f is None or not direct(f) or not 0 < count <= FIRST_STEP:
        return None
    views, n = task.mm.write_views(buf, count)
    return views if n == count else None


def sys_read(task, fd, buf, count, *_):
    """read(2). A regular host file opened for reading goes straight to _read_direct: no
    terminal to ask about job control, nothing to wait for. What bulk reads are made of --
    at most 64 KiB into a buffer writable in place, no host file mapped MAP_SHARED -- is
    one readv (HostFile.readinto), with no generic read path in between."""
    f = task.fds.files.get(fd)
    if f.__class__ is HostFile and f._regular and not f.flags & (abi.O_PATH | abi.O_WRONLY):
        if count <= FIRST_STEP and not f.caches:
            views, n = task.mm.write_views(buf, count)
            if n == count:
                n = f.readinto(views)   # one readv (HostFile.readinto: no page cache here)
            else:
                n = _read_direct(task, f, buf, count, -1)
        else:
            n = _read_direct(task, f, buf, min(count, MAX_RW), -1)
    elif (views := _direct_views(task, f, buf, count)) is not None:
        n = f.readinto(views)   # one host recv (HostSocket.readinto)
    else:
        f = io_file(task, fd)
        check_readable(f)
        if f.__class__ is HostFile:
            _job_control(task, f)
        n = _read_into(task, f, buf, count, lambda done, n: f.read(n), -1)
    if n > 0 and task.kernel.inotify is not None:
        from umiak.kernel.inotify import IN_ACCESS, file_event
        file_event(task, f, IN_ACCESS)
    return n


def sys_write(task, fd, buf, count):
    """write(2): SIGPIPE and EPIPE on a pipe without readers. A non-blocking socket's is
    one host send of the bytes (File.direct_io)."""
    f = io_file(task, fd)
    if direct(f) and 0 < count <= FIRST_STEP:
        return f.write(task.mm.read(buf, count))
    check_writable(f)
    if count == 0:
        return 0
    n = sigpipe(task, f, lambda: _write_from(task, f, buf, count, lambda done, data: f.write(data)))
    if n > 0 and task.kernel.inotify is not None:
        _modified(task, f)
    return n


def _modified(task, f) -> None:
    from umiak.kernel.inotify import IN_MODIFY, file_event
    file_event(task, f, IN_MODIFY)


def sys_pread64(task, fd, buf, count, pos):
    """pread64(2)"""
    pos = s64(pos)
    if pos < 0:
        raise SyscallError(EINVAL)
    f = io_file(task, fd)
    check_readable(f)
    return _read_into(task, f, buf, count, lambda done, n: f.pread(pos + done, n), pos)


def sys_pwrite64(task, fd, buf, count, pos):
    """pwrite64(2)"""
    pos = s64(pos)
    if pos < 0:
        raise SyscallError(EINVAL)
    f = io_file(task, fd)
    check_writable(f)
    if count == 0:
        return 0
    n = _write_from(task, f, buf, count, lambda done, data: f.pwrite(pos + done, data))
    if n > 0 and task.kernel.inotify is not None:
        _modified(task, f)
    return n


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


def _readv(task, f, vecs, reader, pos: int | None = None) -> int:
    """readv/preadv: reader(offset into the call, n), or given pos (-1: the file position) a
    regular file straight into each buffer (_read_direct); a bad buffer after some bytes
    ends the call with those bytes, as Linux."""
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
        try:
            got = _read_into(task, f, base, ln, lambda d, n, off=done: reader(off + d, n),
                             None if pos is None else pos if pos < 0 else pos + done)
        except SyscallError as e:
            return io_result(done, e)
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
            except SyscallError as e:
                io_result(len(parts), e)    # what was gathered before the bad buffer is written
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
    f = io_file(task, fd)
    if f.__class__ is HostFile:
        _job_control(task, f)
    return readv_file(task, f, iov, s32(iovcnt))


def sys_writev(task, fd, iov, iovcnt):
    """writev(2): one write of the gathered buffers, so lines stay whole."""
    f = io_file(task, fd)
    n = writev_file(task, f, iov, s32(iovcnt))
    if n > 0 and task.kernel.inotify is not None:
        _modified(task, f)
    return n


def readv_file(task, f, iov: int, iovcnt: int) -> int:
    """readv(2) from an open file (also vmsplice(2) out of a pipe)."""
    check_readable(f)
    return _readv(task, f, _iovecs(task, iov, iovcnt), lambda off, n: f.read(n), -1)


def writev_file(task, f, iov: int, iovcnt: int) -> int:
    """writev(2) to an open file (also vmsplice(2) into a pipe)."""
    check_writable(f)
    vecs = _iovecs(task, iov, iovcnt)
    return sigpipe(task, f, lambda: _writev(task, f, vecs, lambda off, data: f.write(data)))


def _rwf(flags):
    if flags & ~(abi.RWF_HIPRI | abi.RWF_DSYNC | abi.RWF_SYNC | abi.RWF_NOWAIT | abi.RWF_APPEND):
        raise SyscallError(EOPNOTSUPP)


def sys_preadv(task, fd, iov, iovcnt, pos_l, pos_h):
    """preadv(2)"""
    return _preadv2(task, s32(fd), iov, s32(iovcnt), s64(pos_l), 0)


def sys_pwritev(task, fd, iov, iovcnt, pos_l, pos_h):
    """pwritev(2)"""
    return _pwritev2(task, s32(fd), iov, s32(iovcnt), s64(pos_l), 0)


def sys_preadv2(task, fd, iov, iovcnt, pos_l, pos_h, flags):
    """preadv2(2): the RWF_* hints are accepted and ignored; offset -1 reads at the file position."""
    return _preadv2(task, s32(fd), iov, s32(iovcnt), s64(pos_l), flags & 0xFFFFFFFF)


def sys_pwritev2(task, fd, iov, iovcnt, pos_l, pos_h, flags):
    """pwritev2(2): the RWF_* hints are accepted and ignored; offset -1 writes at the file position."""
    return _pwritev2(task, s32(fd), iov, s32(iovcnt), s64(pos_l), flags & 0xFFFFFFFF)


def _vector_io(task, fd: int, iov: int, iovcnt: int, pos: int, flags: int, check):
    """The checks preadv2 and pwritev2 share, in Linux's order: (file, iovecs)."""
    f = io_file(task, fd)
    _rwf(flags)
    if pos < -1:
        raise SyscallError(EINVAL)
    check(f)
    return f, _iovecs(task, iov, iovcnt)


def _preadv2(task, fd: int, iov: int, iovcnt: int, pos: int, flags: int) -> int:
    f, vecs = _vector_io(task, fd, iov, iovcnt, pos, flags, check_readable)
    if pos == -1:
        return _readv(task, f, vecs, lambda off, n: f.read(n), -1)
    f.pread(pos, 0)          # ESPIPE for pipes before anything is read
    return _readv(task, f, vecs, lambda off, n: f.pread(pos + off, n), pos)


def _pwritev2(task, fd: int, iov: int, iovcnt: int, pos: int, flags: int) -> int:
    f, vecs = _vector_io(task, fd, iov, iovcnt, pos, flags, check_writable)
    if pos == -1:
        n = sigpipe(task, f, lambda: _writev(task, f, vecs, lambda off, data: f.write(data)))
    else:
        f.pwrite(pos, b"")
        n = _writev(task, f, vecs, lambda off, data: f.pwrite(pos + off, data))
    if n > 0 and task.kernel.inotify is not None:
        _modified(task, f)
    return n


def sys_lseek(task, fd, offset, whence):
    """lseek(2)"""
    f = io_file(task, fd)
    whence = whence & 0xFFFFFFFF
    if whence > abi.SEEK_HOLE:
        raise SyscallError(EINVAL)
    return f.lseek(s64(offset), whence)
