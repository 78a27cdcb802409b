"""Memory syscalls: mmap(2), munmap(2), mprotect(2), brk(2), madvise(2) and friends."""

from umiak.kernel import abi
from umiak.kernel.abi import (MAP_ANONYMOUS, MAP_FIXED, MAP_FIXED_NOREPLACE, MAP_PRIVATE, MAP_SHARED,
                              MAP_SHARED_VALIDATE, MAP_TYPE, PROT_EXEC, PROT_READ, PROT_WRITE, s32, s64)
from umiak.kernel.errors import EACCES, EINVAL, ENODEV, ENOMEM, EOPNOTSUPP, SyscallError

PAGE = 4096
_KNOWN_MAP_FLAGS = (MAP_TYPE | MAP_FIXED | MAP_ANONYMOUS | abi.MAP_32BIT | abi.MAP_GROWSDOWN
                    | abi.MAP_DENYWRITE | abi.MAP_EXECUTABLE | abi.MAP_LOCKED | abi.MAP_NORESERVE
                    | abi.MAP_POPULATE | abi.MAP_NONBLOCK | abi.MAP_STACK | abi.MAP_HUGETLB
                    | abi.MAP_SYNC | MAP_FIXED_NOREPLACE)


def sys_mmap(task, addr, length, prot, flags, fd, offset):
    """mmap(2). MAP_HUGETLB gets small pages; MAP_32BIT is honoured as a hint below 2 GiB."""
    flags = s32(flags)
    prot = s32(prot)
    offset = s64(offset)
    kind = flags & MAP_TYPE
    if kind not in (MAP_SHARED, MAP_PRIVATE, MAP_SHARED_VALIDATE):
        raise SyscallError(EINVAL)
    if kind == MAP_SHARED_VALIDATE and flags & ~_KNOWN_MAP_FLAGS:
        raise SyscallError(EOPNOTSUPP)
    if offset & (PAGE - 1) or length == 0:
        raise SyscallError(EINVAL)
    if abi.page_up(length) == 0 or length > (1 << 47):
        raise SyscallError(ENOMEM)
    mm = task.mm
    file = None
    if not flags & MAP_ANONYMOUS:
        f = task.fds.get(s32(fd))
        if not f.readable():
            raise SyscallError(EACCES)
        if kind != MAP_PRIVATE and prot & PROT_WRITE and not f.writable():
            raise SyscallError(EACCES)
        file = f.mmap_file()
        if file is None:
            raise SyscallError(ENODEV)
    if flags & abi.MAP_32BIT and not flags & (MAP_FIXED | MAP_FIXED_NOREPLACE) and not addr:
        addr = 0x40000000
    name = file.path if file is not None else ""
    return mm.mmap(addr, length, prot, flags, file, offset, name)


def sys_munmap(task, addr, length):
    """munmap(2)"""
    task.mm.munmap(addr, length, user=True)
    return 0


def sys_mprotect(task, addr, length, prot):
    """mprotect(2). PROT_GROWSDOWN/GROWSUP are accepted and ignored."""
    prot = s32(prot)
    if prot & ~(PROT_READ | PROT_WRITE | PROT_EXEC | abi.PROT_GROWSDOWN | abi.PROT_GROWSUP | 0x10 | 0x20):
        raise SyscallError(EINVAL)
    task.mm.mprotect(addr, length, prot & (PROT_READ | PROT_WRITE | PROT_EXEC))
    return 0


def sys_brk(task, addr):
    """brk(2): returns the (possibly unchanged) break, as the raw syscall does."""
    return task.mm.brk(addr)


def sys_madvise(task, addr, length, advice):
    """madvise(2). MADV_DONTNEED/FREE on private anonymous memory zero it as Linux does."""
    if addr & (PAGE - 1):
        raise SyscallError(EINVAL)
    advice = s32(advice)
    if advice in (abi.MADV_DONTNEED, abi.MADV_FREE):
        task.mm.zap(addr, abi.page_up(length))
    elif advice in (abi.MADV_DONTFORK, abi.MADV_DOFORK, abi.MADV_WIPEONFORK, abi.MADV_KEEPONFORK):
        task.mm.fork_advice(addr, abi.page_up(length), advice)
    return 0


def sys_msync(task, addr, length, flags):
    """msync(2): write back MAP_SHARED file pages in the range."""
    if addr & (PAGE - 1) or flags & ~7 or (flags & 5) == 5:
        raise SyscallError(EINVAL)
    task.mm.msync(addr, abi.page_up(length))
    return 0


def sys_mremap(task, old_addr, old_size, new_size, flags, new_addr):
    """mremap(2)"""
    return task.mm.mremap(old_addr, old_size, new_size, s32(flags), new_addr)


def sys_mincore(task, addr, length, vec):
    """mincore(2): every mapped page counts as resident."""
    if addr & (PAGE - 1):
        raise SyscallError(EINVAL)
    n = abi.page_up(length) // PAGE
    out = bytearray(n)
    for i in range(n):
        if task.mm.find_vma(addr + i * PAGE) is None:
            raise SyscallError(ENOMEM)
        out[i] = 1 if ((addr >> 12) + i) in task.mm.pages else 0
    task.mm.write(vec, bytes(out))
    return 0


def _noop(task, *a):
    return 0


sys_mlock = sys_munlock = sys_mlockall = sys_munlockall = sys_mlock2 = _noop


# -- memory protection keys: as on a CPU without PKU (the VM's CPU model has none) ------------

def sys_pkey_alloc(task, flags, access_rights):
    """pkey_alloc(2): no key to give (ENOSPC), as Linux on a CPU without protection keys;
    glibc's pkey_alloc reports it and programs fall back to plain mprotect."""
    if flags or access_rights & ~3:
        raise SyscallError(EINVAL)
    from umiak.kernel.errors import ENOSPC
    raise SyscallError(ENOSPC)


def sys_pkey_free(task, pkey):
    """pkey_free(2): no key was ever allocated."""
    raise SyscallError(EINVAL)


def sys_pkey_mprotect(task, addr, length, prot, pkey):
    """pkey_mprotect(2): key -1 is mprotect(2); no other key exists."""
    if s32(pkey) != -1:
        raise SyscallError(EINVAL)
    return sys_mprotect(task, addr, length, prot)
