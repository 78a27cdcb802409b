"""Scheduling: affinity, policies, priorities, yield, getcpu(2), membarrier(2).

vCPUs are host threads scheduled by the host; these calls report the VM's CPUs
and accept what they cannot change, as a container's kernel would.
"""

import os

from umiak.kernel.abi import (MEMBARRIER_CMD_GLOBAL, MEMBARRIER_CMD_PRIVATE_EXPEDITED, MEMBARRIER_CMD_QUERY,
                              MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, SCHED_BATCH, SCHED_FIFO, SCHED_IDLE,
                              SCHED_OTHER, SCHED_RESET_ON_FORK, SCHED_RR, TIMESPEC, s32)
from umiak.kernel.errors import EINVAL, EPERM, ESRCH, SyscallError


def _check_pid(task, pid) -> None:
    pid = s32(pid)
    if pid < 0:
        raise SyscallError(EINVAL)
    if pid not in (0, task.process.pid) and pid not in task.process.tasks:
        raise SyscallError(ESRCH)


def sys_sched_getaffinity(task, pid, size, mask):
    """sched_getaffinity(2): one CPU per vCPU the VM may use."""
    if s32(pid) not in (0, task.process.pid, task.tid) and s32(pid) not in task.process.tasks:
        raise SyscallError(ESRCH)
    ncpu = task.kernel.ncpus
    nbytes = max(8, ((ncpu + 63) // 64) * 8)
    if size < nbytes or size & 7:
        raise SyscallError(EINVAL)
    bits = (1 << ncpu) - 1
    task.mm.write(mask, bits.to_bytes(nbytes, "little"))
    return nbytes


def sys_sched_setaffinity(task, pid, size, mask):
    """sched_setaffinity(2): accepted; vCPUs are scheduled by the host."""
    if s32(pid) not in (0, task.process.pid) and s32(pid) not in task.process.tasks:
        raise SyscallError(ESRCH)
    task.mm.read(mask, min(size, 128))
    return 0


def sys_sched_yield(task):
    """sched_yield(2)"""
    os.sched_yield()
    return 0


def sys_getpriority(task, which, who):
    """getpriority(2): returns 20 - nice, as the raw syscall does."""
    return 20


def sys_setpriority(task, which, who, prio):
    """setpriority(2): accepted."""
    return 0


def sys_sched_getparam(task, pid, param):
    """sched_getparam(2)"""
    _check_pid(task, pid)
    task.mm.write_u32(param, 0)
    return 0


def sys_sched_setparam(task, pid, param):
    """sched_setparam(2): only priority 0 (SCHED_OTHER)."""
    _check_pid(task, pid)
    if task.mm.read_u32(param) != 0:
        raise SyscallError(EINVAL)
    return 0


def sys_sched_getscheduler(task, pid):
    """sched_getscheduler(2)"""
    _check_pid(task, pid)
    return SCHED_OTHER


def sys_sched_setscheduler(task, pid, policy, param):
    """sched_setscheduler(2): SCHED_OTHER/BATCH/IDLE accepted; real-time policies EPERM."""
    _check_pid(task, pid)
    policy = s32(policy) & ~SCHED_RESET_ON_FORK
    if policy in (SCHED_FIFO, SCHED_RR):
        raise SyscallError(EPERM)
    if policy not in (SCHED_OTHER, SCHED_BATCH, SCHED_IDLE):
        raise SyscallError(EINVAL)
    return 0


def sys_sched_get_priority_max(task, policy):
    """sched_get_priority_max(2)"""
    p = s32(policy)
    if p in (SCHED_FIFO, SCHED_RR):
        return 99
    if p in (SCHED_OTHER, SCHED_BATCH, SCHED_IDLE):
        return 0
    raise SyscallError(EINVAL)


def sys_sched_get_priority_min(task, policy):
    """sched_get_priority_min(2)"""
    p = s32(policy)
    if p in (SCHED_FIFO, SCHED_RR):
        return 1
    if p in (SCHED_OTHER, SCHED_BATCH, SCHED_IDLE):
        return 0
    raise SyscallError(EINVAL)


def sys_sched_rr_get_interval(task, pid, tp):
    """sched_rr_get_interval(2)"""
    _check_pid(task, pid)
    task.mm.write(tp, TIMESPEC.pack(0, 100_000_000))
    return 0


def sys_getcpu(task, cpu, node, cache):
    """getcpu(2): a stable CPU number per thread within the VM's CPUs (vCPUs float on the host)."""
    c = (task.tid - 1) % max(1, task.kernel.ncpus)
    if cpu:
        task.mm.write_u32(cpu, c)
    if node:
        task.mm.write_u32(node, 0)
    return 0


_SUPPORTED = (MEMBARRIER_CMD_GLOBAL | MEMBARRIER_CMD_PRIVATE_EXPEDITED
              | MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED)


def sys_membarrier(task, cmd, flags, cpu_id):
    """membarrier(2): query, global and private expedited. Every exit to the host is a
    full barrier for that vCPU, and vCPUs in the guest are kicked out of it."""
    cmd = s32(cmd)
    if cmd == MEMBARRIER_CMD_QUERY:
        return _SUPPORTED
    if cmd == MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED:
        task.process.membarrier_registered = True
        return 0
    if cmd == MEMBARRIER_CMD_PRIVATE_EXPEDITED:
        if not task.process.membarrier_registered:
            raise SyscallError(EPERM)
        _kick_others(task)
        return 0
    if cmd == MEMBARRIER_CMD_GLOBAL:
        _kick_others(task)
        return 0
    raise SyscallError(EINVAL)


def _kick_others(task) -> None:
    for t in task.process.tasks.values():
        if t is not task and t.in_guest and t.vcpu is not None:
            t.vcpu.kick()
