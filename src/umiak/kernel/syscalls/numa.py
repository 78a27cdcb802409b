"""NUMA memory policy: set_mempolicy(2), get_mempolicy(2), mbind(2).

The VM has one memory node (node 0), as a machine without NUMA: a policy naming node 0 is
accepted and reported back (per thread, as Linux's), placement changes nothing, and a node
that does not exist is EINVAL. jemalloc, numactl-aware servers and JVMs ask these.
"""

from umiak.kernel.abi import s32
from umiak.kernel.errors import EFAULT, EINVAL, SyscallError

MPOL_DEFAULT, MPOL_PREFERRED, MPOL_BIND, MPOL_INTERLEAVE, MPOL_LOCAL = 0, 1, 2, 3, 4
MPOL_PREFERRED_MANY, MPOL_WEIGHTED_INTERLEAVE = 5, 6
MPOL_MODE_FLAGS = (1 << 15) | (1 << 14) | (1 << 13)   # STATIC_NODES, RELATIVE_NODES, NUMA_BALANCING
MPOL_F_NODE, MPOL_F_ADDR, MPOL_F_MEMS_ALLOWED = 1, 2, 4
MAX_NUMNODES = 1024


def _read_mask(task, nodemask, maxnode) -> int:
    """The node bits of a nodemask of maxnode bits (Linux uses maxnode - 1 of them)."""
    if not nodemask or maxnode <= 1:
        return 0
    bits = maxnode - 1
    if bits > MAX_NUMNODES * 8:
        raise SyscallError(EINVAL)
    nbytes = (bits + 63) // 64 * 8
    mask = int.from_bytes(task.mm.read(nodemask, nbytes), "little")
    return mask & ((1 << bits) - 1)


def _check_policy(mode: int, mask: int) -> int:
    base = mode & ~MPOL_MODE_FLAGS
    if mode < 0 or base > MPOL_WEIGHTED_INTERLEAVE:
        raise SyscallError(EINVAL)
    if mask & ~1:
        raise SyscallError(EINVAL)          # only node 0 exists
    if base in (MPOL_DEFAULT, MPOL_LOCAL):
        if mask or mode & MPOL_MODE_FLAGS:
            raise SyscallError(EINVAL)
    elif base != MPOL_PREFERRED and not mask:
        raise SyscallError(EINVAL)
    return base


def sys_set_mempolicy(task, mode, nodemask, maxnode):
    """set_mempolicy(2): kept per thread for get_mempolicy."""
    mode = s32(mode)
    mask = _read_mask(task, nodemask, maxnode)
    base = _check_policy(mode, mask)
    if base == MPOL_PREFERRED and not mask:
        mode = MPOL_LOCAL                     # "preferred, no node" is local allocation, as Linux says
    task.mempolicy = (0, 0) if base == MPOL_DEFAULT else (mode, mask)
    return 0


def sys_get_mempolicy(task, policy, nodemask, maxnode, addr, flags):
    """get_mempolicy(2): the thread's policy, node 0 for any page, {0} as the allowed nodes."""
    flags = s32(flags)
    if flags & ~(MPOL_F_NODE | MPOL_F_ADDR | MPOL_F_MEMS_ALLOWED):
        raise SyscallError(EINVAL)
    if nodemask and maxnode < 1:
        raise SyscallError(EINVAL)
    mode, mask = task.mempolicy
    if flags & MPOL_F_MEMS_ALLOWED:
        if flags & (MPOL_F_NODE | MPOL_F_ADDR):
            raise SyscallError(EINVAL)
        mode, mask = 0, 1
    elif flags & MPOL_F_ADDR:
        if task.mm.find_vma(addr) is None:
            raise SyscallError(EFAULT)
        if flags & MPOL_F_NODE:
            mode = 0                          # the node of the page: the only one
    elif flags & MPOL_F_NODE:
        if mode & ~MPOL_MODE_FLAGS != MPOL_INTERLEAVE:
            raise SyscallError(EINVAL)
        mode = 0                              # the next interleave node
    elif addr:
        raise SyscallError(EINVAL)
    if policy:
        task.mm.write_u32(policy, mode & 0xFFFFFFFF)
    if nodemask:
        nbytes = (maxnode - 1 + 63) // 64 * 8 if maxnode > 1 else 8
        task.mm.write(nodemask, (mask if maxnode > 1 else 0).to_bytes(nbytes, "little"))
    return 0


def sys_mbind(task, addr, length, mode, nodemask, maxnode, flags):
    """mbind(2): checked as Linux, then nothing to move (one node)."""
    if addr & 0xFFF or s32(flags) & ~7:
        raise SyscallError(EINVAL)
    _check_policy(s32(mode), _read_mask(task, nodemask, maxnode))
    return 0
