"""procfs, small for now: /proc/self, /proc/<pid>/{exe,cwd,root,fd/,cmdline,environ,comm,
status,maps,mounts}, /proc/mounts. Contents are made when a file is opened."""

import stat as _stat

from umiak.kernel import abi
from umiak.kernel.errors import ENOENT, SyscallError
from umiak.kernel.vfs.core import Loc, Mount
from umiak.kernel.vfs.nodes import FileNode, SynthDir, SynthFile, SynthFS, SynthLink, makedev

PROC_SUPER_MAGIC = 0x9FA0


class ProcFS(SynthFS):
    magic = PROC_SUPER_MAGIC

    def __init__(self, kernel):
        super().__init__(makedev(0, 22))
        self.kernel = kernel
        self.anon_mount = Mount(self, "", readonly=False)   # for files reached through fd/N
        self._pid_dirs: dict[int, SynthDir] = {}
        self.root = SynthDir(self, self._root_entries)
        self._self = SynthLink(self, lambda: str(self._current_pid()), size=0)
        self._mounts_link = SynthLink(self, "self/mounts", size=0)

    def _current_pid(self) -> int:
        procs = self.kernel.processes
        return next(iter(procs)) if procs else 1

    def _root_entries(self) -> dict:
        out = {"self": self._self, "mounts": self._mounts_link}
        for pid, proc in list(self.kernel.processes.items()):
            out[str(pid)] = self._pid_dir(pid, proc)
        return out

    def _pid_dir(self, pid: int, proc) -> SynthDir:
        d = self._pid_dirs.get(pid)
        if d is None:
            d = self._pid_dirs[pid] = self._make_pid_dir(proc)
        return d

    def _make_pid_dir(self, proc) -> SynthDir:
        def jump_path(getpath):
            def jump(vfs, task):
                path = getpath()
                if not path:
                    raise SyscallError(ENOENT)
                return vfs.resolve(None, abi.AT_FDCWD, path, True)
            return jump

        fd_links: dict[int, SynthLink] = {}

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

        entries = {
            "exe": SynthLink(self, lambda: proc.exe, jump_path(lambda: proc.exe), size=0),
            "cwd": SynthLink(self, lambda: proc.cwd, jump_path(lambda: proc.cwd), size=0),
            "root": SynthLink(self, "/", jump_path(lambda: "/"), size=0),
            "fd": SynthDir(self, fd_entries, mode=0o500),
            "cmdline": SynthFile(self, lambda task: b"".join(a + b"\0" for a in proc.argv)),
            "environ": SynthFile(self, lambda task: b"".join(a + b"\0" for a in proc.envp), mode=0o400),
            "comm": SynthFile(self, lambda task: (proc.comm or b"").split(b"\0")[0][:15] + b"\n", mode=0o644),
            "status": SynthFile(self, lambda task: _status(proc)),
            "maps": SynthFile(self, lambda task: _maps(proc)),
            "mounts": SynthFile(self, lambda task: _mounts(self.kernel)),
        }
        d = SynthDir(self, entries)
        d.uid, d.gid = proc.creds.euid, proc.creds.egid
        return d

    def _fd_link(self, f) -> SynthLink:
        fs = self

        def jump(vfs, task):
            if f.loc is not None:
                return f.loc
            return Loc(f.link_text(), FileNode(f), fs.anon_mount, None)

        link = SynthLink(self, f.link_text, jump, size=64)
        acc = f.flags & abi.O_ACCMODE
        link.mode = _stat.S_IFLNK | {abi.O_RDONLY: 0o500, abi.O_WRONLY: 0o300}.get(acc, 0o700)
        link.file = f
        return link


def _status(proc) -> str:
    c = proc.creds
    name = (proc.comm or b"").split(b"\0")[0][:15].decode(errors="replace")
    return (f"Name:\t{name}\nUmask:\t{proc.umask:04o}\nState:\tR (running)\n"
            f"Tgid:\t{proc.pid}\nNgid:\t0\nPid:\t{proc.pid}\nPPid:\t{proc.ppid}\nTracerPid:\t0\n"
            f"Uid:\t{c.uid}\t{c.euid}\t{c.euid}\t{c.euid}\nGid:\t{c.gid}\t{c.egid}\t{c.egid}\t{c.egid}\n"
            f"FDSize:\t{max(64, len(proc.fds.files))}\nGroups:\t{' '.join(map(str, c.groups))}\n"
            f"Threads:\t{max(1, len(proc.tasks))}\n"
            "SigQ:\t0/63336\nSigPnd:\t0000000000000000\nShdPnd:\t0000000000000000\n"
            "CapInh:\t0000000000000000\nCapPrm:\t000001ffffffffff\nCapEff:\t000001ffffffffff\n"
            "CapBnd:\t000001ffffffffff\nCapAmb:\t0000000000000000\nNoNewPrivs:\t0\nSeccomp:\t0\n"
            "Cpus_allowed:\t1\nCpus_allowed_list:\t0\n")


def _maps(proc) -> str:
    lines = []
    for v in getattr(proc.mm, "vmas", []):
        prot = v.prot
        perms = ("r" if prot & abi.PROT_READ else "-") + ("w" if prot & abi.PROT_WRITE else "-") \
            + ("x" if prot & abi.PROT_EXEC else "-") + ("s" if v.flags & abi.MAP_SHARED else "p")
        off = v.offset if v.file is not None else 0
        name = v.name or ""
        line = f"{v.start:08x}-{v.end:08x} {perms} {off:08x} 00:00 0"
        lines.append(f"{line:<72} {name}" if name else line)
    return "".join(ln + "\n" for ln in lines)


def _mounts(kernel) -> str:
    vfs = kernel.vfs
    out = []
    for path, m in sorted(vfs.mounts.items()):
        kind = getattr(m.fs, "fstype", None) or {
            "ProcFS": "proc", "DevFS": "devtmpfs", "HostFS": "hostfs"}.get(type(m.fs).__name__, "none")
        src = {"proc": "proc", "devtmpfs": "udev"}.get(kind, "umiak")
        out.append(f"{src} {path} {kind} {'ro' if m.readonly else 'rw'},relatime 0 0\n")
    return "".join(out)


def make_procfs(kernel) -> ProcFS:
    return ProcFS(kernel)
