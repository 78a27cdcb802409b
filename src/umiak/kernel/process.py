"""Processes and tasks (threads). umiak runs one program per VM, so there is one
process; it may have many tasks, each with its own vCPU."""

from dataclasses import dataclass, field

from umiak.kernel import abi
from umiak.kernel.files import FdTable
from umiak.kernel.mm import AddressSpace


@dataclass
class Credentials:
    uid: int = 0
    gid: int = 0
    euid: int = 0
    egid: int = 0
    groups: list[int] = field(default_factory=list)


class Process:
    """What Linux shares between the threads of one thread group."""

    def __init__(self, kernel, pid: int, mm: AddressSpace, fds: FdTable, cwd: str):
        self.kernel = kernel
        self.pid = pid
        self.ppid = 1
        self.pgid = pid
        self.sid = pid
        self.mm = mm
        self.fds = fds
        self.cwd = cwd                 # guest path, absolute, normalised
        self.umask = 0o022
        self.exe = ""                  # guest path of the program (/proc/self/exe)
        self.argv: list[bytes] = []
        self.envp: list[bytes] = []
        self.auxv: list[tuple[int, int]] = []
        self.creds = Credentials()
        self.sigactions: dict[int, tuple[int, int, int, int]] = {}  # signo -> (handler, flags, restorer, mask)
        self.rlimits: dict[int, list[int]] = {
            abi.RLIMIT_STACK: [8 << 20, abi.RLIM_INFINITY],
            abi.RLIMIT_NOFILE: [1024, 1024 * 1024],
            abi.RLIMIT_CORE: [0, abi.RLIM_INFINITY],
            abi.RLIMIT_NPROC: [63336, 63336],
            abi.RLIMIT_MEMLOCK: [8 << 20, 8 << 20],
            abi.RLIMIT_SIGPENDING: [63336, 63336],
            abi.RLIMIT_MSGQUEUE: [819200, 819200],
            abi.RLIMIT_RTPRIO: [0, 0],
            abi.RLIMIT_NICE: [0, 0],
        }
        self.tasks: dict[int, "Task"] = {}
        self.comm = b""
        self.start_time = 0.0


class Task:
    """One guest thread: a vCPU and the per-thread kernel state."""

    def __init__(self, process: Process, tid: int):
        self.process = process
        self.kernel = process.kernel
        self.mm = process.mm
        self.fds = process.fds
        self.tid = tid
        self.vcpu = None
        self.sigmask = 0
        self.clear_child_tid = 0
        self.robust_list = (0, 0)
        self.sigaltstack = (0, 2, 0)  # sp, flags (SS_DISABLE), size
        self.comm = process.comm
        process.tasks[tid] = self
