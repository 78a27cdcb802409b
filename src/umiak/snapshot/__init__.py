"""Snapshots of a running program, and restoring them in a fresh VM (issue 16).

A snapshot is what the program can observe of its kernel, taken at one point:
its address space (every mapping, with its file's identity; the pages it wrote),
its registers, FPU/SSE state and FS/GS bases, its signal state, its open files,
cwd, credentials, limits and auxv. Restoring builds a new VM (either platform:
the state is the architecture's, not the hypervisor's) with that process in it
and continues where the snapshot was taken.

Points (`umiak snapshot --at`):
  entry   the executable's AT_ENTRY is reached (ld.so has loaded and relocated
          everything; for a static program, its first instruction). A one-byte
          int3 is planted there and the original byte put back at the trap.
  init    (the prelinked cache's, for static programs) an int3 at the executable's
          .init, which the C runtime calls once its start is done, before any
          constructor and main; restored as after entry.
  syscall the program's first system call, before it is served: the registers are
          those of its `syscall` instruction, which the restored program executes.
          A static program has then done its start-up work (glibc: probing the CPU,
          its IFUNC and static-PIE relocations) and asked the kernel nothing yet.
  ready   the program calls the marker syscall 0x554d0001 (kernel.SNAPSHOT_MARKER, "UM"
          and 1): under umiak it is a no-op returning 0 (natively it is ENOSYS).
          `syscall(0x554d0001);` in C, `ctypes.CDLL(None).syscall(0x554d0001)` in
          Python.
  signal  `umiak snapshot` gets SIGUSR2: the snapshot is taken the next time the
          program is in user mode.

Restoring maps every VMA again as it was: a file mapping opens its file by path (it
must be the same inode, size and mtime) and makes only its stored pages now, the
others come in from the file on first touch as after mmap; anonymous pages that had
a frame get one again (free frames are zero) with the stored content. [vvar] and
[vdso] are the restoring VM's own, at the same address. Registers, FS/GS, the XSAVE
image, signal mask, handlers and pending signals, rlimits, creds, umask and cwd are
set back; stdio fds are the restoring run's stdin/stdout/stderr; other files are
opened again by path at their offset. pid and tid are 1, as in every umiak VM. A
program restored at its entry point draws new AT_RANDOM bytes and stack canary
(_reseed), as every exec does (before any TLS exists: all 16 bytes). Pages are made
in runs: consecutive frames, their page-table entries written a leaf table at a time
and their content copied once per run; the pages the first restore of a snapshot
faulted in are made at once by the next ones (_prefault), read from their file a run
at a time.

Moving between platforms: the saved state is the architecture's, but a program that
chose code for the CPU it started on (glibc's ifuncs, ld.so's XSAVE area size) may
fail on a CPU with other features (kvm -> emu: SIGILL; emu -> kvm: a dynamic glibc
program's lazy binding overflows its stack). Static and musl programs move freely.
Any program moves when the snapshot is taken with `--cpu=baseline`: one CPU model
both platforms present (umiak.arch.x86_64.cpumodel). The header records the model
("cpu") and a restore presents it again; a host that cannot (a CPU without one of its
features) or a contrary --cpu is refused with one line.

What is refused (one line, status 125): more than one thread or process, armed
timers, an open pipe/socket/directory/in-memory file (close it before the point),
a mapping of a file that is not a host file (memfd, tmpfs).

File format (version FORMAT_VERSION, all integers little-endian):

    0   8  magic b"UMIAKSNP"
    8   4  format version (u32)
    12  4  0 (reserved)
    16  8  H: length of the header (u64)
    24  8  P: length of the page blob (u64)
    32  4  crc32 of the header
    36  4  crc32 of the page blob
    40  H  header: UTF-8 JSON (keys below)
    40+H P pages, 4096 bytes each, referred to by index from the header

Header: "umiak" (version), "platform" it was taken on, "cpu" (model), "reason", "mem_size",
"process" (exe, comm, argv/envp/auxv, cwd, umask, creds, rlimits, sigactions,
pending signals), "task" (18 registers in struct kvm_regs order, fs/gs base,
XSAVE image in hex, sigmask, sigaltstack, robust list, clear_child_tid), "mm"
(brk, stack and mmap tops, vdso base, layout seed, "vmas"), "fds" and "extra"
(free-form, e.g. the prelinked cache's dependency list). A VMA lists its
[start, end), prot, flags, name, chunk; a file mapping its guest path, offset,
(st_dev, st_ino, size, mtime_ns); "backed" is the runs [vpn, count] of pages
that had frames, "data" the pairs [vpn, page index] of the pages whose content
is stored (for a file mapping: only the pages that differ from the file; for
anonymous memory: the non-zero pages). A file that changed since the snapshot
(another inode, size or mtime) makes the restore fail.
"""

from __future__ import annotations

import json
import os
import struct
import zlib
from typing import TYPE_CHECKING

from umiak.errors import UmiakError

if TYPE_CHECKING:
    from umiak.kernel.files import Mapping
    from umiak.kernel.kernel import Kernel
    from umiak.kernel.process import Task

MAGIC = b"UMIAKSNP"
FORMAT_VERSION = 1
_HEAD = struct.Struct("<8sIIQQII")
PAGE = 4096
_ZERO = bytes(PAGE)


class SnapshotError(UmiakError):
    """The program's state cannot be snapshot, or a file is not a usable snapshot."""


class Snapshot:
    """A snapshot in memory: the header (dict) and the page blob."""

    def __init__(self, header: dict, pages: bytes | memoryview):
        self.header = header
        self.pages = pages
        # Pages a restored run faulted in (vpns): the next restore of this
        # snapshot maps them at once (see _prefault). Filled by the first restore; the
        # prelinked cache keeps it next to its entry.
        self.touched: set[int] | None = None
        # What each restore would work out again from the header: per VMA record, its
        # data pages as runs and the runs of its backed pages that hold no data.
        self.runs: dict[int, tuple[list, list]] = {}

    def to_bytes(self) -> bytes:
        return self._head() + self.pages

    def _head(self) -> bytes:
        """The file up to the pages: fixed part and header."""
        head = json.dumps(self.header, separators=(",", ":")).encode()
        return _HEAD.pack(MAGIC, FORMAT_VERSION, 0, len(head), len(self.pages),
                          zlib.crc32(head), zlib.crc32(self.pages)) + head

    def save(self, path: str) -> None:
        """Write atomically (a temporary file renamed), so a reader never sees half."""
        tmp = f"{path}.{os.getpid()}.tmp"
        try:
            with open(tmp, "wb") as f:
                f.write(self._head())
                f.write(self.pages)
            os.replace(tmp, path)
        except OSError as e:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise SnapshotError(f"cannot write snapshot {path}: {e.strerror}") from None

    @classmethod
    def from_bytes(cls, data: bytes | memoryview, name: str = "snapshot") -> "Snapshot":
        if len(data) < _HEAD.size or bytes(data[:8]) != MAGIC:
            raise SnapshotError(f"{name}: not a umiak snapshot")
        _m, version, _r, hlen, plen, hcrc, pcrc = _HEAD.unpack_from(data)
        if version != FORMAT_VERSION:
            raise SnapshotError(f"{name}: snapshot format {version}, this umiak reads {FORMAT_VERSION}")
        end = _HEAD.size + hlen
        if len(data) != end + plen:
            raise SnapshotError(f"{name}: truncated or corrupt snapshot")
        head, pages = data[_HEAD.size:end], data[end:]
        if zlib.crc32(head) != hcrc or zlib.crc32(pages) != pcrc:
            raise SnapshotError(f"{name}: corrupt snapshot (checksum mismatch)")
        try:
            header = json.loads(bytes(head))
        except ValueError:
            raise SnapshotError(f"{name}: corrupt snapshot header") from None
        if not isinstance(header, dict) or "mm" not in header or "task" not in header:
            raise SnapshotError(f"{name}: corrupt snapshot header")
        return cls(header, pages)

    @classmethod
    def load(cls, path: str) -> "Snapshot":
        """Read a snapshot file, its pages mapped (read from the page cache as restores
        copy them), not read into one more copy."""
        import mmap
        try:
            with open(path, "rb") as f:
                size = os.fstat(f.fileno()).st_size
                data: bytes | memoryview = memoryview(mmap.mmap(f.fileno(), size, mmap.MAP_PRIVATE, mmap.PROT_READ)) \
                    if size >= _HEAD.size else f.read()
        except OSError as e:
            raise SnapshotError(f"{path}: {e.strerror}") from None
        return cls.from_bytes(data, path)


# -- capture ---------------------------------------------------------------------------
def capture(kernel: "Kernel", task: "Task", regs: list[int], reason: str, extra: dict | None = None) -> Snapshot:
    """The snapshot of task's process, its user registers being `regs`. Kernel lock held."""
    from umiak import __version__
    proc = task.process
    live = [p for p in kernel.processes.values() if not p.zombie]
    if len(live) > 1:
        raise SnapshotError(f"cannot snapshot: the program has {len(live)} processes (only one can be saved)")
    if len(proc.tasks) > 1:
        raise SnapshotError(f"cannot snapshot: the program has {len(proc.tasks)} threads (only one can be saved)")
    timers = [t for t in [*proc.itimers.values(), *proc.posix_timers.values()] if getattr(t, "handle", None)]
    if timers or proc.posix_timers:
        raise SnapshotError("cannot snapshot: the program has timers (alarm, setitimer, timer_create)")
    blob: list[bytes] = []
    vcpu = task.vcpu
    assert vcpu is not None
    if kernel.rewriter is not None:
        kernel.rewriter.undo(proc.mm)   # the program's own code, no trampolines (kernel/rewrite.py)
    header = {
        "umiak": __version__,
        "platform": kernel.platform.name,
        "cpu": kernel.platform.cpu_model,
        "reason": reason,
        "mem_size": kernel.options.mem_size,
        "vdso": kernel.vdso is not None,
        "process": _process_state(proc),
        "task": {
            "regs": [r & 0xFFFF_FFFF_FFFF_FFFF for r in regs],
            "fs_base": vcpu.get_fs_base(), "gs_base": vcpu.get_gs_base(),
            "fpu": vcpu.get_fpu().hex(),
            "sigmask": task.sigmask, "sigaltstack": list(task.sigaltstack),
            "robust_list": list(task.robust_list), "clear_child_tid": task.clear_child_tid,
            "pending": task.pending, "siginfo": _infos(task.siginfo),
        },
        "mm": _mm_state(proc.mm, blob),
        "fds": _fd_state(kernel, proc),
        "extra": extra or {},
    }
    return Snapshot(header, b"".join(blob))


def _infos(d: dict) -> dict:
    return {str(k): [b.hex() for b in v] for k, v in d.items()}


def _process_state(proc) -> dict:
    from umiak.records import asdict
    return {
        "exe": proc.exe, "comm": proc.comm.hex(), "cwd": proc.cwd, "umask": proc.umask,
        "argv": [a.hex() for a in proc.argv], "envp": [e.hex() for e in proc.envp],
        "auxv": [list(kv) for kv in proc.auxv],
        "creds": asdict(proc.creds),
        "rlimits": {str(k): list(v) for k, v in proc.rlimits.items()},
        "sigactions": {str(k): list(v) for k, v in proc.sigactions.items()},
        "pending": proc.pending, "siginfo": _infos(proc.siginfo),
        "did_exec": proc.did_exec, "subreaper": proc.subreaper, "pdeath_signal": proc.pdeath_signal,
    }


def _file_ident(mapping) -> list[int]:
    st = os.fstat(mapping.fd)
    return [st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns]


def _mm_state(mm, blob: list[bytes]) -> dict:
    from umiak.kernel.files import MappedHostFile
    ram = mm.ram
    pages = mm.pages
    vmas = []
    for v in mm.vmas:
        rec: dict = {"start": v.start, "end": v.end, "prot": v.prot, "flags": v.flags, "name": v.name,
                     "chunk": v.chunk, "next_fault": v.next_fault}
        if v.name in ("[vvar]", "[vdso]"):
            vmas.append(rec)   # made again by the restoring VM's vDSO
            continue
        lo, hi = v.start >> 12, v.end >> 12
        vpns = sorted(k for k in (range(lo, hi) if hi - lo <= len(pages) else pages) if lo <= k < hi and k in pages)
        rec["backed"] = _runs(vpns)
        data = []
        if v.file is not None:
            if not isinstance(v.file, MappedHostFile):
                raise SnapshotError(f"cannot snapshot: a mapping of {v.name or 'an in-memory file'} "
                                    "(only host files can be mapped again)")
            rec["file"] = {"path": v.file.path, "offset": v.offset, "ident": _file_ident(v.file),
                           "writable": v.file.writable}
            if v.cache is not None:   # MAP_SHARED: the file holds the data once written back
                mm._flush_shared(v, v.start, v.end)
                vmas.append(rec)
                continue
            file_data = v.file.pread(v.offset, v.end - v.start) if vpns else b""
            if len(file_data) % PAGE:
                file_data += bytes(PAGE - len(file_data) % PAGE)
            for k in vpns:
                pa = pages[k] & ~0xFFF
                page = bytes(ram[pa:pa + PAGE])   # bytes == bytes is a memcmp (a memoryview's is not)
                off = (k << 12) - v.start
                if page != (file_data[off:off + PAGE] or _ZERO):
                    data.append([k, len(blob)])
                    blob.append(page)
        else:
            for k in vpns:
                pa = pages[k] & ~0xFFF
                page = bytes(ram[pa:pa + PAGE])
                if page != _ZERO:
                    data.append([k, len(blob)])
                    blob.append(page)
        rec["data"] = data
        vmas.append(rec)
    return {"brk_start": mm.brk_start, "brk_end": mm.brk_end, "stack_top": mm.stack_top,
            "mmap_top": mm.mmap_top, "vdso_base": mm.vdso_base, "layout_seed": mm.layout_seed,
            "stack_vma": mm.stack_vma.start if mm.stack_vma is not None else None, "vmas": vmas}


def _runs(vpns: list[int]) -> list[list[int]]:
    out: list[list[int]] = []
    for k in vpns:
        if out and out[-1][0] + out[-1][1] == k:
            out[-1][1] += 1
        else:
            out.append([k, 1])
    return out


def _fd_state(kernel, proc) -> list[dict]:
    import stat as _stat

    from umiak.kernel import abi
    from umiak.kernel.files import HostFile
    out = []
    ids: dict[int, int] = {}
    for n, f in sorted(proc.fds.files.items()):
        rec: dict = {"fd": n, "cloexec": n in proc.fds.cloexec, "same": ids.setdefault(id(f), n)}
        if rec["same"] != n:
            out.append(rec)
            continue
        if isinstance(f, HostFile) and not f.owned and f.fd in kernel.stdio:
            rec["stdio"] = kernel.stdio.index(f.fd)
        elif isinstance(f, HostFile) and f.owned and f.loc is not None and f.is_regular():
            rec.update(path=f.loc.path, flags=f.flags & ~(abi.O_CREAT | abi.O_EXCL | abi.O_TRUNC),
                       offset=f.lseek(0, os.SEEK_CUR))
        else:
            what = "a pipe" if f.pipe is not None else "an in-memory file" if f.inode is not None else None
            if what is None and isinstance(f, HostFile):
                try:
                    mode = os.fstat(f.fd).st_mode
                    what = "a socket" if _stat.S_ISSOCK(mode) else "a directory" if _stat.S_ISDIR(mode) else None
                except OSError:
                    pass
            if what is None and "socket" in type(f).__name__.lower():
                what = "a socket"
            what = what or f"a {type(f).__name__.lower().removesuffix('file') or 'special'} file"
            name = f" ({f.path})" if f.path else ""
            raise SnapshotError(f"cannot snapshot: fd {n} is {what}{name}; close it before the snapshot point")
        out.append(rec)
    return out


# -- restore -----------------------------------------------------------------------------
def cpu_model(snap: Snapshot, wanted: str | None) -> str:
    """The CPU model to restore snap under: the one it was taken with (older files: host).
    --cpu may repeat it, not change it (the program chose its code for that CPU)."""
    model = snap.header.get("cpu", "host")
    if model not in ("host", "baseline"):
        raise SnapshotError(f"the snapshot needs CPU model {model!r}, which this umiak does not know")
    if wanted is not None and wanted != model:
        raise SnapshotError(f"the snapshot was taken with --cpu={model}: restore it without --cpu={wanted}")
    return model


def restore(kernel: "Kernel", snap: Snapshot) -> "Task":
    """Build the snapshot's process in kernel's (fresh) VM; returns its task, ready to run."""
    from umiak.kernel.errors import SyscallError
    try:
        return _restore(kernel, snap)
    except (KeyError, TypeError, ValueError, IndexError) as e:
        raise SnapshotError(f"corrupt snapshot ({type(e).__name__}: {e})") from None
    except SyscallError as e:
        raise SnapshotError(f"cannot restore the snapshot: {os.strerror(e.errno)}") from None


def _restore(kernel, snap: Snapshot):
    import fcntl

    from umiak.kernel import abi
    from umiak.kernel.errors import SyscallError
    from umiak.kernel.files import FdTable, File, HostFile
    from umiak.kernel.process import Process, Task
    h = snap.header
    opts = kernel.options
    ps, ts, ms = h["process"], h["task"], h["mm"]
    mm = kernel.new_mm()
    fds = FdTable()
    proc = Process(kernel, 1, mm, fds, ps["cwd"])
    proc.ppid = 0
    proc.exe = ps["exe"]
    proc.comm = bytes.fromhex(ps["comm"])
    proc.umask = ps["umask"]
    proc.argv = [bytes.fromhex(a) for a in ps["argv"]]
    proc.envp = [bytes.fromhex(e) for e in ps["envp"]]
    proc.auxv = [(int(k), int(v)) for k, v in ps["auxv"]]
    for k, v in ps["creds"].items():
        setattr(proc.creds, k, v)
    import time
    proc.start_time = time.monotonic()
    proc.did_exec, proc.subreaper, proc.pdeath_signal = ps["did_exec"], ps["subreaper"], ps["pdeath_signal"]
    kernel.processes[proc.pid] = proc
    if kernel.config is not None:
        kernel.config.boot(kernel, proc)
    proc.rlimits = {int(k): list(v) for k, v in ps["rlimits"].items()}
    fds.limit = min(proc.rlimits[abi.RLIMIT_NOFILE][0], 1 << 20)
    proc.sigactions = {int(k): tuple(v) for k, v in ps["sigactions"].items()}
    proc.pending = ps["pending"]
    proc.siginfo = {int(k): [bytes.fromhex(b) for b in v] for k, v in ps["siginfo"].items()}
    if opts.net != "host":
        from umiak.kernel import net
        net.start(kernel)
    task = Task(proc, proc.pid)
    task.nice = os.getpriority(os.PRIO_PROCESS, 0)
    proc.leader = task
    kernel._enable_exitless()   # as a normal start does (the snapshot holds no rewritten site)
    vcpu = task.vcpu = kernel.platform.create_vcpu(0, 0, mm.platform)
    kernel.vdso = None
    clock = kernel.platform.tsc_clock(vcpu) if opts.vdso else None
    vdso = None
    if opts.vdso and h["vdso"]:
        from umiak.loader.vdso import VdsoClock
        vdso = kernel.vdso = VdsoClock(kernel, mm, base=ms["vdso_base"])
    _restore_mm(kernel, task, mm, ms, snap.pages, vdso is not None, snap.runs)
    if snap.touched:
        _prefault(mm, snap.touched)
    else:
        _record_touches(mm, snap)
    # Files: stdio is this run's; regular files are opened again by path.
    made: dict[int, File] = {}
    for rec in h["fds"]:
        n = rec["fd"]
        if rec["same"] != n:
            f = made.get(rec["same"])
            if f is not None:
                fds.install_at(n, f, rec["cloexec"])
            continue
        if "stdio" in rec:
            hfd = kernel.stdio[rec["stdio"]]
            try:
                mode = fcntl.fcntl(hfd, fcntl.F_GETFL) & (abi.O_ACCMODE | abi.O_APPEND | abi.O_NONBLOCK)
            except OSError:
                continue
            f = HostFile(hfd, mode, f"/dev/fd/{rec['stdio']}")
        else:
            try:
                f = kernel.vfs.open(task, abi.AT_FDCWD, rec["path"], rec["flags"] & ~abi.O_CLOEXEC)
            except SyscallError as e:
                raise SnapshotError(f"cannot restore fd {n}: {rec['path']}: {os.strerror(e.errno)}") from None
            f.lseek(rec["offset"], os.SEEK_SET)
        made[n] = f
        fds.install_at(n, f, rec["cloexec"])
    if h.get("reason") in ("entry", "init", "syscall"):
        _reseed(mm, proc, ts["fs_base"])
    # Registers, FPU, signal state.
    vcpu.set_regs([int(r) for r in ts["regs"]])
    vcpu.set_fs_base(ts["fs_base"])
    vcpu.set_gs_base(ts["gs_base"])
    vcpu.set_fpu(bytes.fromhex(ts["fpu"]))
    task.set_sigmask(ts["sigmask"])
    task.sigaltstack = tuple(ts["sigaltstack"])
    task.robust_list = tuple(ts["robust_list"])
    task.clear_child_tid = ts["clear_child_tid"]
    task.pending = ts["pending"]
    task.siginfo = {int(k): [bytes.fromhex(b) for b in v] for k, v in ts["siginfo"].items()}
    task.recompute_pending()
    if vdso is not None and clock is not None:
        vdso.start(*clock)
    return task


def _restore_mm(kernel, task, mm, ms: dict, blob: bytes | memoryview, have_vdso: bool,
                runs: dict[int, tuple[list, list]]) -> None:
    from umiak.kernel import abi
    from umiak.kernel.mm import PROT_MASK, Vma
    mm.brk_start, mm.brk_end = ms["brk_start"], ms["brk_end"]
    mm.stack_top, mm.mmap_top = ms["stack_top"], ms["mmap_top"]
    mm.layout_seed = ms["layout_seed"]
    if not have_vdso:
        mm.vdso_base = ms["vdso_base"]
    blob_view = memoryview(blob)
    opened: dict[tuple, Mapping] = {}   # one Mapping per file, as the VMAs split from one mmap share it
    for n_rec, rec in enumerate(ms["vmas"]):
        start, end = rec["start"], rec["end"]
        if rec["name"] in ("[vvar]", "[vdso]"):
            if have_vdso:
                continue
            rec = dict(rec, backed=[], data=[])   # no vDSO here: the program falls back to syscalls
        if not mm._is_free(start, end):
            raise SnapshotError(f"cannot restore: the mapping at {start:#x}-{end:#x} does not fit this platform's layout")
        vma = Vma(start, end, rec["prot"], rec["flags"], rec["name"], chunk=rec["chunk"])
        vma.next_fault = rec["next_fault"]
        fr = rec.get("file")
        if fr is not None:
            key = (fr["path"], bool(fr.get("writable")))
            if key not in opened:
                opened[key] = _open_mapping(kernel, task, fr)
            vma.file, vma.offset = opened[key], fr["offset"]
            if rec["flags"] & abi.MAP_SHARED:
                vma.cache = vma.file.page_cache()
                if vma.cache is not None:
                    vma.cache.mappers.add(mm)
        mm._insert(vma)
        if rec["start"] == ms["stack_vma"]:
            mm.stack_vma = vma
        prot = vma.prot & PROT_MASK
        if fr is not None:
            # Unwritten file pages come in from the file on first touch (a chunk per fault,
            # as after mmap) or by _prefault; only the pages that differ are made now.
            data = rec.get("data", ())
            if data:
                limit = (start + abi.page_up(max(0, opened[key].size() - vma.offset))) >> 12
                if max(k for k, _i in data) >= limit:   # past the end of the file now
                    raise SnapshotError(f"cannot restore: {fr['path']} changed since the snapshot")
                for k, i, n in _runs_of(runs, n_rec, rec)[0]:
                    _back(mm, k, n, prot, filled=True)
                    _write(mm, k, n, blob_view[i * PAGE:(i + n) * PAGE])
            continue
        # Anonymous memory: every page that had a frame has one again, with the stored
        # content where it was not zero, and zero elsewhere (free frames are zero, but in
        # a recycled VM those the run before had are cleared as they are handed out).
        data_runs, zero_runs = _runs_of(runs, n_rec, rec)
        for k, n in rec["backed"]:
            _back(mm, k, n, prot, filled=True)
        for k, i, n in data_runs:
            _write(mm, k, n, blob_view[i * PAGE:(i + n) * PAGE])
        for k, n in zero_runs:
            _scrub(mm, k, n)


def _runs_of(runs: dict, n_rec: int, rec: dict) -> tuple[list, list]:
    """(data runs, runs of backed pages without data) of a VMA record, worked out once per Snapshot."""
    got = runs.get(n_rec)
    if got is None:
        data_runs = _data_runs(rec.get("data", ()))
        with_data = {k + j for k, _i, n in data_runs for j in range(n)}
        zero = [k + j for k, n in rec.get("backed", ()) for j in range(n) if k + j not in with_data]
        got = runs[n_rec] = (data_runs, _runs(zero))
    return got


def _data_runs(data) -> list[tuple[int, int, int]]:
    """[vpn, page index] pairs as runs (vpn, index, count): capture stores them in order."""
    out: list[list[int]] = []
    for k, i in data:
        if out and out[-1][0] + out[-1][2] == k and out[-1][1] + out[-1][2] == i:
            out[-1][2] += 1
        else:
            out.append([k, i, 1])
    return [(k, i, n) for k, i, n in out]


def _back(mm, vpn: int, n: int, prot: int, filled: bool = False) -> None:
    """Frames for the n pages from vpn (none backed yet), mapped with prot: consecutive
    frames where the allocator has them, their entries written a leaf table at a time.
    filled: the caller writes (_write) or clears (_scrub) every page of them."""
    from umiak.arch.x86_64.paging import PageTables, pte_bits
    frames, pages = mm.frames, mm.pages
    pa = frames.alloc_run(n, filled)
    segs = [(vpn, pa, n)] if pa is not None else [(vpn + j, frames.alloc(), 1) for j in range(n)]
    pt = getattr(mm.platform, "pt", None)
    for k, pa, c in segs:
        pages.update(zip(range(k, k + c), range(pa | prot, pa + c * PAGE, PAGE), strict=True))
        if not prot:
            continue
        if isinstance(pt, PageTables):
            pt.fill(k << 12, pa, c, pte_bits(prot))
        else:
            for j in range(c):
                mm.platform.map_page((k + j) << 12, pa + j * PAGE, prot)


def _frame_runs_of(mm, vpn: int, n: int):
    """(page offset j, frame, count) for the (backed) n pages from vpn, consecutive frames as one run."""
    pages = mm.pages
    j = 0
    while j < n:
        pa = pages[vpn + j] & ~0xFFF
        c = 1
        while j + c < n and pages[vpn + j + c] & ~0xFFF == pa + c * PAGE:
            c += 1
        yield j, pa, c
        j += c


def _write(mm, vpn: int, n: int, data) -> None:
    """Copy data into the (backed) n pages from vpn: one copy per run of consecutive frames."""
    ram = mm.ram
    for j, pa, c in _frame_runs_of(mm, vpn, n):
        ram[pa:pa + c * PAGE] = data[j * PAGE:(j + c) * PAGE]


def _scrub(mm, vpn: int, n: int) -> None:
    """Clear the (backed, filled=True) n pages from vpn that hold no data, where they may
    hold a recycled VM's old content."""
    frames = mm.frames
    for _j, pa, c in _frame_runs_of(mm, vpn, n):
        frames.scrub(pa, c * PAGE)


def _reseed(mm, proc, fs_base: int) -> None:
    """A program restored at its entry point gets its own randomness, as every exec does:
    new first 8 bytes of AT_RANDOM and the stack protector's canary made from them again
    (glibc: those bytes with the low byte zero; musl: with the second byte zero), at fs:0x28
    (no frame that holds the old one is live at the entry point). AT_RANDOM's last 8 bytes,
    glibc's pointer guard, stay: the libraries' constructors may hold pointers mangled
    with it (__cxa_atexit), as processes forked from one zygote share theirs. A program
    with no TLS yet (fs base 0) has made nothing of them: all 16 bytes are drawn again."""
    from umiak.kernel import abi
    from umiak.kernel.errors import SyscallError
    addr = dict(proc.auxv).get(abi.AT_RANDOM)
    if not addr:
        return
    try:
        if not fs_base:
            mm.write(addr, os.urandom(16), force=True)
            return
        old = mm.read(addr, 8)
        fresh = bytearray(os.urandom(8))
        mm.write(addr, bytes(fresh), force=True)
        canary = mm.read(fs_base + 0x28, 8)
        for zero in (0, 1):   # glibc's, then musl's form of a canary drawn from the old bytes
            form = bytearray(old)
            form[zero] = 0
            if canary == bytes(form):
                fresh[zero] = 0
                mm.write(fs_base + 0x28, bytes(fresh), force=True)
                return
    except SyscallError:   # not mapped: a program with no TLS yet
        return


_PREFAULT_CHUNK = 16   # pages: what the first fault in a VMA brings in (mm.FAULT_CHUNK_MIN)


def _record_touches(mm, snap: Snapshot) -> None:
    """Note the pages this run faults in, for the next restore (_prefault)."""
    touched: set[int] = set()
    snap.touched = touched
    inner = mm.handle_fault

    def handle_fault(addr: int, write: bool, execute: bool):
        done = inner(addr, write, execute)
        if done is True:
            touched.add(addr >> 12)
        return done
    mm.handle_fault = handle_fault   # this address space only (Kernel.handle_fault calls it)


def _prefault(mm, touched: set[int]) -> None:
    """Map now the pages the last restore faulted in (from the file, or zero), the chunk
    around each as its fault did, so this run starts without those exits: per VMA, the
    runs of pages, each read from its file in one call."""
    from umiak.kernel.mm import PROT_MASK
    want: dict[int, tuple] = {}
    for vpn in sorted(touched):
        v = mm.find_vma(vpn << 12)
        if v is None:   # a mapping made after the snapshot: not there yet
            continue
        lo = vpn & ~(_PREFAULT_CHUNK - 1)
        got = want.setdefault(id(v), (v, set()))[1]
        got.update(range(max(v.start >> 12, lo), min(v.end >> 12, lo + _PREFAULT_CHUNK)))
    pages = mm.pages
    for v, vpns in want.values():
        if v.cache is not None:   # MAP_SHARED of a page cache: its own frames
            for k in vpns:
                mm._populate(v, k << 12, (k + 1) << 12)
            continue
        limit = v.end >> 12
        if v.file is not None:   # pages past the end of the file stay unbacked (SIGBUS)
            from umiak.kernel import abi
            limit = min(limit, (v.start + abi.page_up(max(0, v.file.size() - v.offset))) >> 12)
        prot = v.prot & PROT_MASK
        for k, n in _runs(sorted(k for k in vpns if k < limit and k not in pages)):
            _back(mm, k, n, prot, filled=v.file is not None)   # file pages are written whole
            if v.file is not None:
                _write(mm, k, n, memoryview(v.file.pread(v.offset + (k << 12) - v.start, n * PAGE).ljust(n * PAGE, b"\0")))


def _open_mapping(kernel, task, fr: dict):
    """The Mapping of a mapped file, opened again by path and checked to be the same file."""
    from umiak.kernel import abi
    from umiak.kernel.errors import SyscallError
    path = fr["path"]
    flags = abi.O_RDWR if fr.get("writable") else abi.O_RDONLY
    try:
        f = kernel.vfs.open(task, abi.AT_FDCWD, path, flags)
    except SyscallError as e:
        raise SnapshotError(f"cannot restore: {path}: {os.strerror(e.errno)}") from None
    try:
        m = f.mmap_file()
    finally:
        f.close()
    if m is None or not hasattr(m, "fd"):
        raise SnapshotError(f"cannot restore: {path} is no longer a host file")
    if _file_ident(m) != list(fr["ident"]):
        raise SnapshotError(f"cannot restore: {path} changed since the snapshot")
    return m
