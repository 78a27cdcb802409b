"""Scheduling: affinity, policies, priorities, yield, getcpu(2), membarrier(2).

vCPUs are host threads scheduled by the host; these calls report the VM's CPUs
and accept what they cannot change, as a container's kernel would.
"""

import os

from umiak.kernel import abi
from umiak.kernel.abi import (MEMBARRIER_CMD_GLOBAL, MEMBARRIER_CMD_PRIVATE_EXPEDITED, MEMBARRIER_CMD_QUERY,
                              MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, SCHED_BATCH, SCHED_FIFO, SCHED_IDLE,
                              SCHED_OTHER, SCHED_RESET_ON_FORK, SCHED_RR, TIMESPEC, s32)
from umiak.kernel.errors import EACCES, EINVAL, EPERM, ESRCH, SyscallError


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


PRIO_PROCESS, PRIO_PGRP, PRIO_USER = 0, 1, 2
CAP_SYS_NICE = 23


def _prio_targets(task, which: int, who: int) -> list:
    """The tasks setpriority/getpriority name: a thread (PRIO_PROCESS: nice is per thread, as
    Linux's), every thread of a process group, or of a real uid."""
    who = s32(who)
    procs = task.kernel.processes.values()
    if which == PRIO_PROCESS:
        if who == 0:
            return [task]
        return [p.tasks[who] for p in procs if who in p.tasks]
    if which == PRIO_PGRP:
        pgid = who or task.process.pgid
        return [t for p in procs if p.pgid == pgid for t in p.tasks.values()]
    if which == PRIO_USER:
        uid = task.process.creds.uid if who == 0 else who & 0xFFFFFFFF
        return [t for p in procs if p.creds.uid == uid for t in p.tasks.values()]
    raise SyscallError(EINVAL)


def sys_getpriority(task, which, who):
    """getpriority(2): 20 - nice of the highest-priority task named, as the raw syscall returns."""
    targets = _prio_targets(task, s32(which), who)
    if not targets:
        raise SyscallError(ESRCH)
    return 20 - min(t.nice for t in targets)


def sys_setpriority(task, which, who, prio):
    """setpriority(2): the nice value (-20..19) of the tasks named; lowering it needs
    CAP_SYS_NICE or RLIMIT_NICE (EACCES), another user's task CAP_SYS_NICE (EPERM). It is
    kept and reported; the host schedules the vCPUs as it likes."""
    targets = _prio_targets(task, s32(which), who)
    if not targets:
        raise SyscallError(ESRCH)
    nice = max(-20, min(19, s32(prio)))
    c = task.process.creds
    privileged = c.capable(CAP_SYS_NICE)
    floor = 20 - task.process.rlimits.get(abi.RLIMIT_NICE, [0, 0])[0]
    for t in targets:
        tc = t.process.creds
        if not privileged and c.euid not in (tc.uid, tc.euid):
            raise SyscallError(EPERM)
        if nice < t.nice and not privileged and nice < floor:
            raise SyscallError(EACCES)
    for t in targets:
        t.nice = nice
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


# -- I/O priorities ----------------------------------------------------------------------

IOPRIO_WHO_PROCESS, IOPRIO_WHO_PGRP, IOPRIO_WHO_USER = 1, 2, 3
IOPRIO_CLASS_NONE, IOPRIO_CLASS_RT, IOPRIO_CLASS_BE, IOPRIO_CLASS_IDLE = 0, 1, 2, 3
CAP_SYS_ADMIN = 21


def _io_targets(task, which: int, who: int) -> list:
    if which not in (IOPRIO_WHO_PROCESS, IOPRIO_WHO_PGRP, IOPRIO_WHO_USER):
        raise SyscallError(EINVAL)
    targets = _prio_targets(task, which - 1, who)   # the same selection as setpriority's
    if not targets:
        raise SyscallError(ESRCH)
    return targets


def sys_ioprio_get(task, which, who):
    """ioprio_get(2): the value ioprio_set stored (per thread); the host schedules the I/O."""
    targets = _io_targets(task, s32(which), who)
    return max(t.ioprio for t in targets) if s32(which) != IOPRIO_WHO_PROCESS else targets[0].ioprio


def sys_ioprio_set(task, which, who, ioprio):
    """ioprio_set(2): class NONE (data 0), RT (CAP_SYS_ADMIN or CAP_SYS_NICE), BE, IDLE; kept."""
    prio = s32(ioprio)
    cls, data = (prio >> 13) & 7, prio & 0x1FFF
    if prio < 0 or prio >> 16:
        raise SyscallError(EINVAL)
    c = task.process.creds
    if cls == IOPRIO_CLASS_RT and not (c.capable(CAP_SYS_ADMIN) or c.capable(CAP_SYS_NICE)):
        raise SyscallError(EPERM)
    if cls > IOPRIO_CLASS_IDLE or cls == IOPRIO_CLASS_NONE and data:
        raise SyscallError(EINVAL)
    for t in _io_targets(task, s32(which), who):
        t.ioprio = prio
    return 0


# -- sched_setattr(2) / sched_getattr(2) -----------------------------------------------------

SCHED_ATTR_SIZE_VER0, SCHED_ATTR_SIZE_VER1 = 48, 56


def _sched_task(task, pid):
    _check_pid(task, pid)
    pid = s32(pid)
    return task if pid in (0, task.tid) else task.process.tasks.get(pid, task)


def sys_sched_getattr(task, pid, attr, size, flags):
    """sched_getattr(2): SCHED_OTHER with the thread's nice value."""
    if not attr or s32(flags) != 0 or size < SCHED_ATTR_SIZE_VER0 or size > 4096:
        raise SyscallError(EINVAL)
    t = _sched_task(task, pid)
    n = min(size, SCHED_ATTR_SIZE_VER1)
    import struct
    data = struct.pack("<IIQiIQQQII", n, SCHED_OTHER, 0, t.nice, 0, 0, 0, 0, 0, 1024)
    task.mm.write(attr, data[:n])
    return 0


def sys_sched_setattr(task, pid, attr, flags):
    """sched_setattr(2): SCHED_OTHER/BATCH/IDLE with a nice value (kept as setpriority's);
    real-time and deadline policies EPERM, as sched_setscheduler."""
    import struct
    if not attr or s32(flags) != 0:
        raise SyscallError(EINVAL)
    size = task.mm.read_u32(attr) or SCHED_ATTR_SIZE_VER0
    if size < SCHED_ATTR_SIZE_VER0 or size > 4096:
        task.mm.write_u32(attr, SCHED_ATTR_SIZE_VER1)
        raise SyscallError(7)   # E2BIG
    _size, policy, sflags, nice, prio = struct.unpack("<IIQiI", task.mm.read(attr, 24))
    t = _sched_task(task, pid)
    if policy in (SCHED_FIFO, SCHED_RR, 6):   # 6: SCHED_DEADLINE
        raise SyscallError(EPERM)
    if policy not in (SCHED_OTHER, SCHED_BATCH, SCHED_IDLE) or prio != 0 or sflags & ~0x7F:
        raise SyscallError(EINVAL)
    nice = max(-20, min(19, nice))
    if nice < t.nice and not task.process.creds.capable(CAP_SYS_NICE):
        raise SyscallError(EPERM)
    t.nice = nice
    return 0
