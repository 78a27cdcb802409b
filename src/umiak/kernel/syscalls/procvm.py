"""Another process's memory and files by pid: process_vm_readv(2), process_vm_writev(2),
kcmp(2). Every process of the VM may be named (all are the program's own)."""

from umiak.kernel import abi
from umiak.kernel.abi import UIO_MAXIOV, s32
from umiak.kernel.errors import EBADF, EFAULT, EINVAL, ESRCH, SyscallError


def _process(task, pid):
    p = task.kernel.processes.get(s32(pid))
    if p is None:
        for q in task.kernel.processes.values():
            if s32(pid) in q.tasks:
                return q
        raise SyscallError(ESRCH)
    return p


def _iovecs(task, addr, count) -> list[tuple[int, int]]:
    if count > UIO_MAXIOV:
        raise SyscallError(EINVAL)
    if count == 0:
        return []
    raw = task.mm.read(addr, 16 * count)
    return [abi.IOVEC.unpack_from(raw, 16 * i) for i in range(count)]


def _transfer(task, pid, lvec, liovcnt, rvec, riovcnt, flags, write: bool) -> int:
    if flags:
        raise SyscallError(EINVAL)
    local = _iovecs(task, lvec, liovcnt)
    remote = _iovecs(task, rvec, riovcnt)
    other = _process(task, pid).mm
    src_mm, dst_mm = (task.mm, other) if write else (other, task.mm)
    src, dst = (local, remote) if write else (remote, local)
    total = 0
    di, doff = 0, 0
    for base, length in src:
        off = 0
        while off < length:
            while di < len(dst) and doff >= dst[di][1]:
                di, doff = di + 1, 0
            if di >= len(dst):
                return total
            n = min(length - off, dst[di][1] - doff, 1 << 20)
            try:
                data = src_mm.read(base + off, n)
                dst_mm.write(dst[di][0] + doff, data)
            except SyscallError:
                if total == 0:
                    raise SyscallError(EFAULT) from None
                return total
            off += n
            doff += n
            total += n
    return total


def sys_process_vm_readv(task, pid, lvec, liovcnt, rvec, riovcnt, flags):
    """process_vm_readv(2)"""
    return _transfer(task, pid, lvec, liovcnt, rvec, riovcnt, flags, False)


def sys_process_vm_writev(task, pid, lvec, liovcnt, rvec, riovcnt, flags):
    """process_vm_writev(2)"""
    return _transfer(task, pid, lvec, liovcnt, rvec, riovcnt, flags, True)


KCMP_FILE, KCMP_VM, KCMP_FILES, KCMP_FS, KCMP_SIGHAND, KCMP_IO, KCMP_SYSVSEM = range(7)


def sys_kcmp(task, pid1, pid2, type_, idx1, idx2):
    """kcmp(2): 0 when the two name the same kernel object, else 1 or 2 (an order) as Linux."""
    p1, p2 = _process(task, pid1), _process(task, pid2)
    t = s32(type_)
    if t == KCMP_FILE:
        a, b = p1.fds.get(s32(idx1)), p2.fds.get(s32(idx2))
        if a is None or b is None:
            raise SyscallError(EBADF)
    elif t == KCMP_VM:
        a, b = p1.mm, p2.mm
    elif t == KCMP_FILES:
        a, b = p1.fds, p2.fds
    elif t in (KCMP_FS, KCMP_SIGHAND, KCMP_IO, KCMP_SYSVSEM):
        a, b = p1, p2          # shared by the threads of a process
    else:
        raise SyscallError(EINVAL)
    if a is b:
        return 0
    return 1 if id(a) < id(b) else 2
