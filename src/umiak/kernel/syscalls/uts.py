"""The VM's UTS names: sethostname(2) and setdomainname(2) (uname(2) reads them).

The VM is its own UTS namespace: a change is seen by uname, gethostname and
/proc/sys/kernel/{hostname,domainname} inside the VM, never on the host.
"""

import os

from umiak.kernel.abi import s32
from umiak.kernel.errors import EINVAL, EPERM, SyscallError

CAP_SYS_ADMIN = 21
NEW_UTS_LEN = 64


def _name(task, addr, length) -> str:
    """Linux's checks: CAP_SYS_ADMIN (EPERM) first, then the length (EINVAL), then the copy."""
    if not task.process.creds.capable(CAP_SYS_ADMIN):
        raise SyscallError(EPERM)
    n = s32(length)
    if not 0 <= n <= NEW_UTS_LEN:
        raise SyscallError(EINVAL)
    raw = task.mm.read(addr, n) if n else b""
    return os.fsdecode(raw.split(b"\0", 1)[0])


def sys_sethostname(task, name, length):
    """sethostname(2)"""
    task.kernel.hostname = _name(task, name, length)
    return 0


def sys_setdomainname(task, name, length):
    """setdomainname(2)"""
    task.kernel.domainname = _name(task, name, length)
    return 0
