"""procfs and a small sysfs. Contents are made when a file is opened, from the kernel's state.

/proc/self, /proc/thread-self, /proc/<pid>/{exe,cwd,root,fd/,fdinfo/,cmdline,environ,comm,
stat,statm,status,limits,maps,auxv,mounts,mountinfo,task/<tid>/{comm,stat,status}},
/proc/{cpuinfo,meminfo,stat,uptime,loadavg,version,filesystems,mounts,self/...},
/proc/sys/kernel/{hostname,ostype,osrelease,version,pid_max,threads-max,random/boot_id,
random/uuid,ngroups_max}, /proc/sys/vm/overcommit_memory, /proc/sys/fs/{file-max,nr_open};
/sys/devices/system/cpu/{online,possible,present,cpuN/}.
"""

import os
import stat as _stat
import struct
import time

from umiak.kernel import abi
from umiak.kernel.abi import CLK_TCK, PROC_SUPER_MAGIC, SYSFS_MAGIC
from umiak.kernel.errors import ENOENT, SyscallError
from umiak.kernel.vfs.core import Loc, Mount
from umiak.kernel.vfs.nodes import FileNode, SynthDir, SynthFile, SynthFS, SynthLink, SynthNode, makedev
from umiak.kernel.mm import KERNEL_VMA, MMAP_MIN_ADDR


def _uuid4() -> str:
    """A random (version 4) UUID as text, as uuid.uuid4() gives: the uuid module imports
    platform, whose regular expressions cost ~5 ms of the start of every program that
    looks in /proc."""
    n = int.from_bytes(os.urandom(16), "big") & ~(0xF000 << 64) & ~(0xC000 << 48) | 0x4000 << 64 | 0x8000 << 48
    h = f"{n:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


PID_MAX = 4194304


def _boottime() -> float:
    return time.clock_gettime(time.CLOCK_BOOTTIME)   # the guest's clocks are the host's


def _release() -> tuple[str, str]:
    from umiak.kernel.syscalls.process import LINUX_RELEASE, LINUX_VERSION
    return LINUX_RELEASE.decode(), LINUX_VERSION.decode()


class _TaskDir(SynthDir):
    """/proc/<pid>/task/<tid>: kept while the same task lives (a tid may be reused)."""

    def __init__(self, fs, entries, task):
        super().__init__(fs, entries)
        self.task = task


class _PidDir(SynthDir):
    """/proc/<pid>: kept while the same process holds the pid (a pid is reused once reaped)."""

    def __init__(self, fs, entries, proc):
        super().__init__(fs, entries)
        self.proc = proc


class _FdLink(SynthLink):
    """/proc/<pid>/fd/<n>: kept while the same open file sits at that fd."""

    def __init__(self, fs, f, jump):
        super().__init__(fs, f.link_text, jump, size=64)
        self.file = f


class ProcFS(SynthFS):
    magic = PROC_SUPER_MAGIC
    fstype = "proc"

    def __init__(self, kernel):
        super().__init__(makedev(0, 22))
        self.kernel = kernel
        self.anon_mount = Mount(self, "", readonly=False)   # for files reached through fd/N
        self._pid_dirs: dict[int, _PidDir] = {}
        self._task_dirs: dict[tuple[int, int], _TaskDir] = {}
        self.boot_id = _uuid4()
        self._self = SynthLink(self, lambda: str(self._current_pid()), size=0)
        self._thread_self = SynthLink(self, lambda: "%d/task/%d" % self._current_ids(), size=0)
        f = lambda fn, mode=0o444: SynthFile(self, fn, mode)  # noqa: E731
        k = kernel
        sys_kernel = {
            "hostname": f(lambda t: k.hostname + "\n", 0o644),
            "domainname": f(lambda t: k.domainname + "\n", 0o644),
            "ostype": f(lambda t: "Linux\n"),
            "osrelease": f(lambda t: _release()[0] + "\n"),
            "version": f(lambda t: _release()[1] + "\n"),
            "pid_max": f(lambda t: f"{PID_MAX}\n", 0o644),
            "threads-max": f(lambda t: f"{k.options.max_threads}\n", 0o644),
            "ngroups_max": f(lambda t: "65536\n"),
            "cap_last_cap": f(lambda t: "40\n"),
            "random": SynthDir(self, {
                "boot_id": f(lambda t: self.boot_id + "\n"),
                "uuid": f(lambda t: _uuid4() + "\n"),
                "entropy_avail": f(lambda t: "256\n"),
                "poolsize": f(lambda t: "256\n"),
            }),
        }
        sys_vm = {
            "overcommit_memory": f(lambda t: "0\n", 0o644),
            "overcommit_ratio": f(lambda t: "50\n", 0o644),
            "max_map_count": f(lambda t: "65530\n", 0o644),
        }
        sys_fs = {
            "file-max": f(lambda t: "9223372036854775807\n", 0o644),
            "nr_open": f(lambda t: "1073741816\n", 0o644),
            "pipe-max-size": f(lambda t: "1048576\n", 0o644),
        }
        self._fixed = {
            "self": self._self,
            "thread-self": self._thread_self,
            "mounts": SynthLink(self, "self/mounts", size=0),
            "cpuinfo": f(lambda t: _cpuinfo(k)),
            "meminfo": f(lambda t: _meminfo(k)),
            "stat": f(lambda t: _proc_stat(k)),
            "uptime": f(lambda t: "%.2f %.2f\n" % (_boottime(), _boottime() * k.ncpus)),
            "loadavg": f(lambda t: _loadavg(k)),
            "version": f(lambda t: "Linux version %s (umiak) %s\n" % _release()),
            "filesystems": f(lambda t: _FILESYSTEMS),
            "sys": SynthDir(self, {
                "kernel": SynthDir(self, sys_kernel),
                "vm": SynthDir(self, sys_vm),
                "fs": SynthDir(self, sys_fs),
            }),
        }
        self.root = SynthDir(self, self._root_entries)

    def _current_ids(self) -> tuple[int, int]:
        task = self.kernel.current_task()
        if task is not None:
            return task.process.pid, task.tid
        pid = self._current_pid()
        return pid, pid

    def _current_pid(self) -> int:
        task = self.kernel.current_task()
        if task is not None:
            return task.process.pid
        procs = self.kernel.processes
        return next(iter(procs)) if procs else 1

    def _root_entries(self) -> dict:
        out = dict(self._fixed)
        for pid, proc in list(self.kernel.processes.items()):
            out[str(pid)] = self._pid_dir(pid, proc)
        return out

    def _pid_dir(self, pid: int, proc) -> SynthDir:
        d = self._pid_dirs.get(pid)
        if d is None or d.proc is not proc:
            d = self._pid_dirs[pid] = self._make_pid_dir(proc)
        return d

    def _make_pid_dir(self, proc) -> _PidDir:
        def jump_path(getpath):
            def jump(vfs, task):
                path = getpath()
                if not path:
                    raise SyscallError(ENOENT)
                return vfs.resolve(None, abi.AT_FDCWD, path, True)
            return jump

        fd_links: dict[int, _FdLink] = {}

        def fd_entries() -> dict:
            out = {}
            for n, f in sorted(proc.fds.files.items()):
                link = fd_links.get(n)
                if link is None or link.file is not f:
                    link = fd_links[n] = self._fd_link(f)
                out[str(n)] = link
            for n in list(fd_links):
                if n not in proc.fds.files:
                    del fd_links[n]
            return out

        def fdinfo_entries() -> dict:
            return {str(n): SynthFile(self, lambda t, n=n: _fdinfo(proc, n), 0o400)
                    for n in sorted(proc.fds.files)}

        def task_entries() -> dict:
            return {str(tid): self._task_dir(proc, t) for tid, t in list(proc.tasks.items())}

        leader = lambda: proc.tasks.get(proc.pid) or proc.leader  # noqa: E731
        entries = {
            "exe": SynthLink(self, lambda: proc.exe, jump_path(lambda: proc.exe), size=0),
            "cwd": SynthLink(self, lambda: proc.cwd, jump_path(lambda: proc.cwd), size=0),
            "root": SynthLink(self, "/", jump_path(lambda: "/"), size=0),
            "fd": SynthDir(self, fd_entries, mode=0o500),
            "fdinfo": SynthDir(self, fdinfo_entries, mode=0o500),
            "task": SynthDir(self, task_entries, mode=0o555),
            "cmdline": SynthFile(self, lambda task: b"".join(a + b"\0" for a in proc.argv)),
            "environ": SynthFile(self, lambda task: b"".join(a + b"\0" for a in proc.envp), mode=0o400),
            "auxv": SynthFile(self, lambda task: _auxv(proc), mode=0o400),
            "comm": _comm_file(self, leader, proc),
            "stat": SynthFile(self, lambda task: _stat_line(self.kernel, proc, leader())),
            "statm": SynthFile(self, lambda task: _statm(proc)),
            "status": SynthFile(self, lambda task: _status(proc, leader())),
            "limits": SynthFile(self, lambda task: _limits(proc)),
            "maps": SynthFile(self, lambda task: _maps(proc)),
            "mounts": SynthFile(self, lambda task: _mounts(self.kernel)),
            "mountinfo": SynthFile(self, lambda task: _mountinfo(self.kernel)),
            "cgroup": SynthFile(self, lambda task: "0::/\n"),
            "oom_score_adj": SynthFile(self, lambda task: "0\n", mode=0o644),
            "loginuid": SynthFile(self, lambda task: "4294967295\n", mode=0o644),
        }
        d = _PidDir(self, entries, proc)
        d.uid, d.gid = proc.creds.euid, proc.creds.egid
        return d

    def _task_dir(self, proc, task) -> SynthDir:
        key = (proc.pid, task.tid)
        d = self._task_dirs.get(key)
        if d is not None and d.task is task:
            return d
        d = _TaskDir(self, {
            "comm": _comm_file(self, lambda: task, proc),
            "stat": SynthFile(self, lambda t: _stat_line(self.kernel, proc, task)),
            "status": SynthFile(self, lambda t: _status(proc, task)),
        }, task)
        d.uid, d.gid = proc.creds.euid, proc.creds.egid
        self._task_dirs[key] = d
        return d

    def _fd_link(self, f) -> _FdLink:
        fs = self

        def jump(vfs, task):
            if f.loc is not None:
                return f.loc
            return Loc(f.link_text(), FileNode(f), fs.anon_mount, None)

        link = _FdLink(self, f, jump)
        acc = f.flags & abi.O_ACCMODE
        link.mode = _stat.S_IFLNK | {abi.O_RDONLY: 0o500, abi.O_WRONLY: 0o300}.get(acc, 0o700)
        return link


def _comm_file(fs, get_task, proc) -> SynthFile:
    """comm: the thread's name (prctl PR_SET_NAME); writing it renames the thread."""
    def content(t):
        return _name(get_task(), proc).encode() + b"\n"

    def store(data: bytes) -> None:
        who = get_task()
        name = data[:15].split(b"\0")[0]      # Linux keeps a trailing newline, as written
        if who is not None:
            who.comm = name
        if who is None or who.tid == proc.pid:
            proc.comm = name

    return SynthFile(fs, content, 0o644, store=store)


def _name(who, proc) -> str:
    """The thread's name (who: a Task, or None for the process's)."""
    name = (who.comm if who is not None else b"") or proc.comm
    return name.split(b"\0")[0][:15].decode(errors="replace")


def _vm(proc) -> dict:
    """Sizes in kB from the address space."""
    mm = proc.mm
    vmas = list(mm.vmas)
    size = sum(v.end - v.start for v in vmas) // 1024
    pages = mm.pages
    rss = len(pages) * 4
    stack = sum(v.end - v.start for v in vmas if v.name == "[stack]") // 1024
    data = sum(v.end - v.start for v in vmas if v.file is None and v.name not in ("[stack]", "[vdso]", "[vvar]")
               and v.prot & abi.PROT_WRITE) // 1024
    exe = sum(v.end - v.start for v in vmas if v.file is not None and v.prot & abi.PROT_EXEC
              and v.name == proc.exe) // 1024
    lib = sum(v.end - v.start for v in vmas if v.file is not None and v.prot & abi.PROT_EXEC) // 1024 - exe
    file_rss = 0
    for v in vmas:
        if v.file is not None:
            file_rss += sum(1 for va in range(v.start, v.end, 4096) if (va >> 12) in pages) * 4
    return dict(size=size, rss=rss, stack=stack, data=data, exe=exe, lib=max(0, lib), file_rss=file_rss)


_STATES = {"R": "R (running)", "S": "S (sleeping)", "T": "T (stopped)", "Z": "Z (zombie)"}


def _state(proc, who) -> str:
    """Z a zombie, T stopped by a signal, S asleep in a blocking call, else R."""
    if proc.zombie:
        return "Z"
    if proc.stopped:
        return "T"
    return "S" if getattr(who, "sleeping", False) else "R"


def _status(proc, who) -> str:
    """/proc/<pid>[/task/<tid>]/status; who is the thread (the leader for the process's file)."""
    c = proc.creds
    vm = _vm(proc)
    tid = who.tid
    groups = " ".join(map(str, c.groups))
    sigblk = who.sigmask
    ign = cgt = 0
    for signo, act in proc.sigactions.items():
        if act[0] == abi.SIG_IGN:
            ign |= 1 << (signo - 1)
        elif act[0] != 0:
            cgt |= 1 << (signo - 1)
    pend = who.pending
    ncpu = proc.kernel.ncpus
    cpus_hex = format((1 << ncpu) - 1, "x")
    state = _STATES[_state(proc, who)]
    return (f"Name:\t{_name(who, proc)}\nUmask:\t{proc.umask:04o}\nState:\t{state}\n"
            f"Tgid:\t{proc.pid}\nNgid:\t0\nPid:\t{tid}\nPPid:\t{proc.ppid}\nTracerPid:\t0\n"
            f"Uid:\t{c.uid}\t{c.euid}\t{c.suid}\t{c.fsuid}\nGid:\t{c.gid}\t{c.egid}\t{c.sgid}\t{c.fsgid}\n"
            f"FDSize:\t{max(64, 1 << max(0, len(proc.fds.files) - 1).bit_length())}\nGroups:\t{groups}\n"
            f"NStgid:\t{proc.pid}\nNSpid:\t{tid}\nNSpgid:\t{proc.pgid}\n"
            f"NSsid:\t{proc.sid}\n"
            f"VmPeak:\t{vm['size']:8d} kB\nVmSize:\t{vm['size']:8d} kB\nVmLck:\t       0 kB\n"
            f"VmPin:\t       0 kB\nVmHWM:\t{vm['rss']:8d} kB\nVmRSS:\t{vm['rss']:8d} kB\n"
            f"RssAnon:\t{vm['rss'] - vm['file_rss']:8d} kB\nRssFile:\t{vm['file_rss']:8d} kB\n"
            f"RssShmem:\t       0 kB\nVmData:\t{vm['data']:8d} kB\nVmStk:\t{vm['stack']:8d} kB\n"
            f"VmExe:\t{vm['exe']:8d} kB\nVmLib:\t{vm['lib']:8d} kB\nVmPTE:\t{max(4, vm['rss'] // 512):8d} kB\n"
            f"VmSwap:\t       0 kB\nHugetlbPages:\t       0 kB\nCoreDumping:\t0\nTHP_enabled:\t1\n"
            f"Threads:\t{max(1, len(proc.tasks))}\n"
            f"SigQ:\t0/63336\nSigPnd:\t{pend:016x}\nShdPnd:\t{proc.pending:016x}\n"
            f"SigBlk:\t{sigblk:016x}\nSigIgn:\t{ign:016x}\nSigCgt:\t{cgt:016x}\n"
            f"CapInh:\t{c.cap_inheritable:016x}\nCapPrm:\t{c.cap_permitted:016x}\n"
            f"CapEff:\t{c.cap_effective:016x}\n"
            "CapBnd:\t000001ffffffffff\nCapAmb:\t0000000000000000\nNoNewPrivs:\t0\nSeccomp:\t0\n"
            "Seccomp_filters:\t0\nSpeculation_Store_Bypass:\tthread vulnerable\n"
            f"Cpus_allowed:\t{cpus_hex}\nCpus_allowed_list:\t{_cpu_list(ncpu)}\n"
            "Mems_allowed:\t1\nMems_allowed_list:\t0\n"
            "voluntary_ctxt_switches:\t0\nnonvoluntary_ctxt_switches:\t0\n")


def _cpu_list(n: int) -> str:
    return "0" if n <= 1 else f"0-{n - 1}"


def _stat_line(kernel, proc, who) -> str:
    """/proc/<pid>[/task/<tid>]/stat: 52 fields as Linux prints them; who is the thread."""
    tid = who.tid
    vm = _vm(proc)
    t = os.times()
    utime, stime = int(t.user * CLK_TCK), int(t.system * CLK_TCK)
    started = proc.start_time or time.monotonic()
    start_ticks = int((_boottime() - (time.monotonic() - started)) * CLK_TCK)
    mm = proc.mm
    brk_start = mm.brk_start
    stack = mm.stack_vma.end if mm.stack_vma is not None else 0
    rlim = proc.rlimits.get(abi.RLIMIT_AS, [abi.RLIM_INFINITY])[0]
    sigblk = who.sigmask
    nice = who.nice
    fields = [
        _state(proc, who), proc.ppid, proc.pgid, proc.sid, 0, -1, 4194560,
        0, 0, 0, 0, utime, stime, 0, 0, 20 + nice, nice, max(1, len(proc.tasks)), 0, start_ticks,
        vm["size"] * 1024, vm["rss"] // 4, rlim if rlim != abi.RLIM_INFINITY else 18446744073709551615,
        1, 1, stack, 0, 0, 0, sigblk & 0x7FFFFFFF, 0, 0, 0, 0, 0, 17, 0, 0, 0, 0, 0, 0,
        0, 0, brk_start, 0, 0, 0, 0, 0,
    ]
    return f"{tid} ({_name(who, proc)}) " + " ".join(str(x) for x in fields) + "\n"


def _statm(proc) -> str:
    vm = _vm(proc)
    return f"{vm['size'] // 4} {vm['rss'] // 4} {vm['file_rss'] // 4} {vm['exe'] // 4} 0 {vm['data'] // 4} 0\n"


_LIMITS = [
    ("Max cpu time", abi.RLIMIT_CPU, "seconds"),
    ("Max file size", abi.RLIMIT_FSIZE, "bytes"),
    ("Max data size", abi.RLIMIT_DATA, "bytes"),
    ("Max stack size", abi.RLIMIT_STACK, "bytes"),
    ("Max core file size", abi.RLIMIT_CORE, "bytes"),
    ("Max resident set", abi.RLIMIT_RSS, "bytes"),
    ("Max processes", abi.RLIMIT_NPROC, "processes"),
    ("Max open files", abi.RLIMIT_NOFILE, "files"),
    ("Max locked memory", abi.RLIMIT_MEMLOCK, "bytes"),
    ("Max address space", abi.RLIMIT_AS, "bytes"),
    ("Max file locks", abi.RLIMIT_LOCKS, "locks"),
    ("Max pending signals", abi.RLIMIT_SIGPENDING, "signals"),
    ("Max msgqueue size", abi.RLIMIT_MSGQUEUE, "bytes"),
    ("Max nice priority", abi.RLIMIT_NICE, ""),
    ("Max realtime priority", abi.RLIMIT_RTPRIO, ""),
    ("Max realtime timeout", abi.RLIMIT_RTTIME, "us"),
]


def _limits(proc) -> str:
    def show(v):
        return "unlimited" if v == abi.RLIM_INFINITY or v >= (1 << 63) else str(v)
    out = [f"{'Limit':<25} {'Soft Limit':<20} {'Hard Limit':<20} {'Units':<10}\n"]
    for name, res, unit in _LIMITS:
        soft, hard = proc.rlimits.get(res, [abi.RLIM_INFINITY, abi.RLIM_INFINITY])
        out.append(f"{name:<25} {show(soft):<20} {show(hard):<20} {unit:<10}\n")
    return "".join(out)


def _auxv(proc) -> bytes:
    return b"".join(struct.pack("<QQ", k, v) for k, v in list(proc.auxv) + [(0, 0)])


def _fdinfo(proc, n: int) -> str:
    f = proc.fds.files.get(n)
    if f is None:
        raise SyscallError(ENOENT)
    pos = getattr(f, "pos", None)
    if pos is None:
        fd = getattr(f, "fd", None)
        try:
            pos = os.lseek(fd, 0, os.SEEK_CUR) if isinstance(fd, int) and fd >= 0 else 0
        except OSError:
            pos = 0
    flags = f.flags | (abi.O_CLOEXEC if n in proc.fds.cloexec else 0)
    try:
        st = f.stat()
        ino = st.st_ino
    except SyscallError:
        ino = 0
    return f"pos:\t{pos}\nflags:\t0{flags:o}\nmnt_id:\t{_mnt_id(f)}\nino:\t{ino}\n"


def _mnt_id(f) -> int:
    loc = f.loc
    if loc is None:
        return 15
    return 20 + (hash(loc.mount.path) & 0xFF)


def _maps(proc) -> str:
    lines = []
    for v in list(proc.mm.vmas):
        if v.start < MMAP_MIN_ADDR or v.name == KERNEL_VMA:
            continue   # umiak's own (kernel/rewrite.py): no mapping of the program is there
        prot = v.prot
        perms = ("r" if prot & abi.PROT_READ else "-") + ("w" if prot & abi.PROT_WRITE else "-") \
            + ("x" if prot & abi.PROT_EXEC else "-") + ("s" if v.flags & abi.MAP_SHARED else "p")
        off, dev, ino = 0, 0, 0
        if v.file is not None:
            off = v.offset
            ident = getattr(v.file, "ident", None)
            if ident is not None:
                try:
                    dev, ino = ident()
                except (OSError, SyscallError):
                    pass
        name = v.name or ""
        line = f"{v.start:08x}-{v.end:08x} {perms} {off:08x} {os.major(dev):02x}:{os.minor(dev):02x} {ino}"
        lines.append(f"{line:<72} {name}" if name else line + " ")
    return "".join(ln + "\n" for ln in lines)




def _mounts(kernel) -> str:
    vfs = kernel.vfs
    out = []
    for path, m in sorted(vfs.mounts.items()):
        kind = m.fs.fstype
        src = {"proc": "proc", "devtmpfs": "udev", "sysfs": "sysfs", "tmpfs": "tmpfs",
               "overlay": "overlay"}.get(kind, "umiak")
        out.append(f"{src} {path} {kind} {'ro' if m.readonly else 'rw'},relatime 0 0\n")
    return "".join(out)


def _mountinfo(kernel) -> str:
    vfs = kernel.vfs
    ids = {}
    out = []
    for i, path in enumerate(sorted(vfs.mounts)):
        ids[path] = 20 + i
    for path, m in sorted(vfs.mounts.items()):
        parent = path.rsplit("/", 1)[0] or "/"
        while parent not in ids and parent != "/":
            parent = parent.rsplit("/", 1)[0] or "/"
        kind = m.fs.fstype
        dev = m.fs.dev
        opts = "ro" if m.readonly else "rw"
        out.append(f"{ids[path]} {ids.get(parent, 1) if path != '/' else 1} {os.major(dev)}:{os.minor(dev)} / "
                   f"{path} {opts},relatime - {kind} {kind} {opts}\n")
    return "".join(out)


_FILESYSTEMS = ("nodev\tsysfs\nnodev\ttmpfs\nnodev\tproc\nnodev\tdevtmpfs\nnodev\tpipefs\n"
                "nodev\tsockfs\nnodev\toverlay\n\thostfs\n")


def _cpuinfo(kernel) -> str:
    """The host's description of its first CPU, once for each of the VM's vCPUs."""
    try:
        with open("/proc/cpuinfo") as f:
            first = f.read().split("\n\n")[0]
    except OSError:
        first = "processor\t: 0\nvendor_id\t: GenuineIntel\nmodel name\t: umiak vCPU"
    n = kernel.ncpus
    out = []
    for i in range(n):
        lines = []
        for line in first.splitlines():
            key = line.split(":", 1)[0].strip()
            if key == "processor":
                line = f"processor\t: {i}"
            elif key in ("core id",):
                line = f"core id\t\t: {i}"
            elif key in ("apicid", "initial apicid"):
                line = f"{key}\t: {i}" if key == "apicid" else f"{key}\t: {i}"
            elif key == "siblings":
                line = f"siblings\t: {n}"
            elif key == "cpu cores":
                line = f"cpu cores\t: {n}"
            elif key == "physical id":
                line = "physical id\t: 0"
            lines.append(line)
        out.append("\n".join(lines) + "\n\n")
    return "".join(out)


def _meminfo(kernel) -> str:
    total = kernel.frames.total_bytes // 1024
    free = kernel.frames.free_bytes // 1024
    fields = [
        ("MemTotal", total), ("MemFree", free), ("MemAvailable", free), ("Buffers", 0), ("Cached", 0),
        ("SwapCached", 0), ("Active", total - free), ("Inactive", 0), ("Active(anon)", total - free),
        ("Inactive(anon)", 0), ("Active(file)", 0), ("Inactive(file)", 0), ("Unevictable", 0),
        ("Mlocked", 0), ("SwapTotal", 0), ("SwapFree", 0), ("Dirty", 0), ("Writeback", 0),
        ("AnonPages", total - free), ("Mapped", 0), ("Shmem", 0), ("KReclaimable", 0), ("Slab", 0),
        ("SReclaimable", 0), ("SUnreclaim", 0), ("KernelStack", 0), ("PageTables", 0),
        ("NFS_Unstable", 0), ("Bounce", 0), ("WritebackTmp", 0), ("CommitLimit", total // 2),
        ("Committed_AS", total - free), ("VmallocTotal", 34359738367), ("VmallocUsed", 0),
        ("VmallocChunk", 0), ("Percpu", 0), ("HardwareCorrupted", 0), ("AnonHugePages", 0),
        ("ShmemHugePages", 0), ("ShmemPmdMapped", 0), ("FileHugePages", 0), ("FilePmdMapped", 0),
    ]
    out = "".join(f"{(k + ':'):<16}{v:8d} kB\n" for k, v in fields)
    return out + ("HugePages_Total:       0\nHugePages_Free:        0\nHugePages_Rsvd:        0\n"
                  "HugePages_Surp:        0\nHugepagesize:       2048 kB\nHugetlb:               0 kB\n"
                  "DirectMap4k:           0 kB\n")


def _proc_stat(kernel) -> str:
    t = os.times()
    n = kernel.ncpus
    up = _boottime()
    user, system = int(t.user * CLK_TCK), int(t.system * CLK_TCK)
    idle = max(0, int(up * CLK_TCK) * n - user - system)
    rows = [("cpu ", user, system, idle)]
    for i in range(n):
        rows.append((f"cpu{i}", user // n, system // n, idle // n))
    out = "".join(f"{name} {u} 0 {s} {i} 0 0 0 0 0 0\n" for name, u, s, i in rows)
    nthreads = sum(len(p.tasks) for p in kernel.processes.values())
    return out + (f"intr 0\nctxt 0\nbtime {int(time.time() - up)}\nprocesses {len(kernel.processes)}\n"
                  f"procs_running {max(1, nthreads)}\nprocs_blocked 0\nsoftirq 0 0 0 0 0 0 0 0 0 0 0\n")


def _loadavg(kernel) -> str:
    nthreads = sum(len(p.tasks) for p in kernel.processes.values())
    last = max(kernel.processes, default=1)
    last = max([last] + [t for p in kernel.processes.values() for t in p.tasks])
    return f"0.00 0.00 0.00 1/{max(1, nthreads)} {last}\n"


def make_procfs(kernel) -> ProcFS:
    return ProcFS(kernel)


# -- sysfs ----------------------------------------------------------------------------------

class SysFS(SynthFS):
    magic = SYSFS_MAGIC
    fstype = "sysfs"

    def __init__(self, kernel):
        super().__init__(makedev(0, 21))
        self.kernel = kernel
        n = kernel.ncpus
        cpus = _cpu_list(n) + "\n"
        f = lambda text: SynthFile(self, lambda t: text)  # noqa: E731
        cpu: dict[str, SynthNode] = {"online": f(cpus), "possible": f(cpus), "present": f(cpus),
               "offline": f("\n"), "kernel_max": f("8191\n")}
        for i in range(n):
            cpu[f"cpu{i}"] = SynthDir(self, {
                "online": f("1\n"),
                "topology": SynthDir(self, {
                    "core_id": f(f"{i}\n"), "physical_package_id": f("0\n"),
                    "thread_siblings_list": f(f"{i}\n"), "core_siblings_list": f(cpus),
                }),
            })
        node0 = SynthDir(self, {"cpulist": f(cpus)})
        self.root = SynthDir(self, {
            "devices": SynthDir(self, {"system": SynthDir(self, {
                "cpu": SynthDir(self, cpu),
                "node": SynthDir(self, {"online": f("0\n"), "possible": f("0\n"), "node0": node0}),
            })}),
            "fs": SynthDir(self, {"cgroup": SynthDir(self, {})}),
            "kernel": SynthDir(self, {"mm": SynthDir(self, {"transparent_hugepage": SynthDir(self, {
                "enabled": f("always [madvise] never\n")})})}),
            "class": SynthDir(self, {"net": SynthDir(self, {})}),
        }, mode=0o555)


def make_sysfs(kernel) -> SysFS:
    return SysFS(kernel)
