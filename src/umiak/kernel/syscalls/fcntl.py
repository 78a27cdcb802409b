"""Operations on a descriptor: fcntl(2) (flags, record and OFD locks, pipe sizes,
seals), flock(2) and ioctl(2)."""

from umiak.kernel import abi
from umiak.kernel.abi import s32
from umiak.kernel.errors import EACCES, EBADF, EBUSY, EINVAL, EPERM, SyscallError
from umiak.kernel.syscalls.fdutil import nofile_limit, vfs_of

SETFL_MASK = abi.O_APPEND | abi.O_NONBLOCK | abi.O_ASYNC | abi.O_DIRECT | abi.O_NOATIME


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


PATH_FCNTL = (abi.F_DUPFD, abi.F_DUPFD_CLOEXEC, abi.F_GETFD, abi.F_SETFD, abi.F_GETFL)


def _locks(task):
    """The VM's lock table, remembered by the fd table so close(2) can drop locks."""
    vfs = vfs_of(task)
    table = vfs.locks
    if table is None:
        from umiak.kernel.vfs.locks import LockTable
        table = vfs.locks = LockTable()
    task.fds.locks = table
    task.fds.lock_pid = task.process.pid
    return table


def _record_lock(task, f, cmd, arg):
    """F_GETLK/F_SETLK/F_SETLKW and their F_OFD_* forms (see vfs/locks.py)."""
    from umiak.kernel.vfs.locks import INF, file_key
    l_type, whence, start, length, pid = task.mm.read_struct(arg, abi.FLOCK)
    ofd = cmd in (abi.F_OFD_GETLK, abi.F_OFD_SETLK, abi.F_OFD_SETLKW)
    if l_type not in (abi.F_RDLCK, abi.F_WRLCK, abi.F_UNLCK) or whence > abi.SEEK_END:
        raise SyscallError(EINVAL)
    if ofd and pid != 0:
        raise SyscallError(EINVAL)
    getting = cmd in (abi.F_GETLK, abi.F_OFD_GETLK)
    if not getting and (l_type == abi.F_RDLCK and not f.readable() or l_type == abi.F_WRLCK and not f.writable()):
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
        if l_type == abi.F_UNLCK:
            raise SyscallError(EINVAL)
        lk = table.conflict(key, owner, l_type, lo, hi)
        if lk is None:
            task.mm.write_struct(arg, abi.FLOCK, abi.F_UNLCK, whence, start, length, pid)
        else:
            o, t, s_, e_ = lk
            task.mm.write_struct(arg, abi.FLOCK, t, abi.SEEK_SET, s_, 0 if e_ >= INF else e_ - s_,
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
    inode = f.inode
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
        lim = nofile_limit(task)
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
        f.set_host_flags(new)
        f.flags = new
        return 0
    if cmd in (abi.F_GETLK, abi.F_SETLK, abi.F_SETLKW, abi.F_OFD_GETLK, abi.F_OFD_SETLK, abi.F_OFD_SETLKW):
        cfg = task.kernel.config
        if cfg is not None and not cfg.has("FCNTL_LOCKS"):
            # Linux built without CONFIG_FILE_LOCKING: getting a lock EINVAL, setting one EACCES.
            raise SyscallError(EINVAL if cmd in (abi.F_GETLK, abi.F_OFD_GETLK) else EACCES)
        return _record_lock(task, f, cmd, arg)
    if cmd in (abi.F_GETPIPE_SZ, abi.F_SETPIPE_SZ):
        pipe = f.pipe
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
        return f.owner
    if cmd == abi.F_SETOWN:
        f.owner = s32(arg)
        return 0
    if cmd in (abi.F_ADD_SEALS, abi.F_GET_SEALS):
        return _seals(task, f, cmd, arg)
    raise SyscallError(EINVAL)
