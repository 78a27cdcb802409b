"""Where a snapshot is taken: the hook `Kernel.snapshot_hook` calls (see umiak.snapshot)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from umiak.kernel import abi
from umiak.platform.base import RAX, RIP


class SnapshotPoint:
    """Takes one snapshot at `at` (entry | init | syscall | ready | signal) and hands it to `taken`.

    stop: end the program once it is taken (`umiak snapshot`), else let it go on (the
    prelinked cache's first run). An error is kept in .error and ends the program.
    expect (at syscall): the numbers the first call may have, another is an error (the
    prelinked cache's: a C runtime's start, brk or arch_prctl).
    init (the prelinked cache's point "init"): where a static program's .init lies from its
    entry point; the int3 goes there (the C runtime calls _init before any constructor
    and main)."""

    def __init__(self, at: str, taken, stop: bool = True, extra=None, expect: frozenset[int] | None = None,
                 init: int | None = None):
        self.at = at
        self.expect = expect
        self.init = init
        self.taken = taken
        self.stop = stop
        self.extra = extra            # callable(kernel, task) -> dict stored in the header
        self.entry = -1
        self._byte = b""
        self.error: Exception | None = None
        self.on_error: Callable[[Exception], None] | None = None   # when the program goes on (stop False)
        self.done = False
        self.requested = False        # --at signal: SIGUSR2 came
        self.kernel: Any = None       # the Kernel, from started() on

    def started(self, kernel, task) -> None:
        """The program is loaded: plant the int3 at AT_ENTRY (entry) or its .init (init)."""
        self.kernel = kernel
        if self.at in ("entry", "init"):
            self.entry = dict(task.process.auxv)[abi.AT_ENTRY] + (self.init or 0)
            mm = task.mm
            self._byte = mm.read(self.entry, 1)
            mm.write(self.entry, b"\xcc", force=True)
        elif self.at == "syscall":
            kernel.tracer = _FirstSyscall(self, kernel.tracer)

    def signal(self) -> None:
        """SIGUSR2 reached umiak (another thread): stop the program soon, in user mode."""
        k = self.kernel
        if k is None or self.at != "signal" or self.done:
            return
        with k.lock:
            self.requested = True
            for t in list(k.tasks.values()):
                if t.vcpu is not None:
                    t.vcpu.kick()   # a vCPU not in the guest now stops at its next run

    def __call__(self, task, reason: str):
        if reason == "entry" and self.at == "init":
            reason = "init"   # the kernel says "entry" of every int3
        if reason != self.at or self.done or reason == "signal" and not self.requested:
            return 0 if reason == "ready" else False
        vcpu = task.vcpu
        regs = vcpu.get_regs()
        if reason in ("entry", "init"):
            if regs[RIP] not in (self.entry, self.entry + 1):
                return False   # some other int3: the program's own SIGTRAP
            task.mm.write(self.entry, self._byte, force=True)
            _drop_code(task.mm, self.entry)
            regs[RIP] = self.entry
            vcpu.set_regs(regs)
        elif reason == "ready":
            regs[RAX] = 0   # the marker returns 0 in the restored program
        self.done = True
        self.kernel.snapshot_hook = None
        from umiak.kernel.errors import ExitGroup
        from umiak.snapshot import SnapshotError, capture
        try:
            if reason == "syscall":
                # Back at the `syscall` instruction, rax still the number: the restored
                # program makes the call itself (its rcx and r11 are the instruction's).
                if self.kernel.rewriter is not None:
                    self.kernel.rewriter.undo(task.mm)
                regs[RIP] -= 2
                if task.mm.read(regs[RIP], 2) != b"\x0f\x05":
                    raise SnapshotError("cannot snapshot: the first system call was not made by a `syscall` instruction")
                if self.expect is not None and regs[RAX] not in self.expect:
                    raise SnapshotError(f"uncacheable: the first system call is {regs[RAX]}, not a C runtime's start")
            extra = self.extra(self.kernel, task) if self.extra is not None else None
            self.taken(capture(self.kernel, task, regs, reason, extra))
        except Exception as e:  # noqa: BLE001 - reported by the caller, one line
            self.error = e
            if self.stop:
                raise ExitGroup(125, 0) from None
            if self.on_error is not None:
                self.on_error(e)
        if self.stop:
            raise ExitGroup(0, 0)
        return 0 if reason == "ready" else True


def _drop_code(mm, va: int) -> None:
    """The int3 was executed: a software CPU may hold a translation of it. Mapping the
    page again makes every platform forget translated code of it."""
    e = mm.pages.get(va >> 12)
    if e is None:
        return
    plat = mm.platform
    vma = mm.find_vma(va)
    prot = mm.pte_prot(vma, e) if vma is not None else e & 7   # copy-on-write stays read-only
    plat.unmap_page(va & ~0xFFF)
    plat.map_page(va & ~0xFFF, e & ~0xFFF, prot)
    plat.invalidate([e & ~0xFFF])


class _FirstSyscall:
    """The tracer of --at syscall: the program's first system call takes the snapshot
    before it is served, on the vCPU's own thread (where the registers are: an exitless
    poller hands the call back), then gives way to the tracer it stands in front of."""

    def __init__(self, point: SnapshotPoint, inner):
        self.point, self.inner = point, inner

    def enter(self, task, nr: int, args):
        kernel = self.point.kernel
        if kernel.tracer is self:
            if task.no_wait:
                from umiak.kernel.process import WouldBlock
                raise WouldBlock()
            kernel.tracer = self.inner
            kernel.tracer_changed()
            self.point(task, "syscall")
        return self.inner.enter(task, nr, args) if self.inner is not None else None

    def exit(self, task, call, ret) -> None:
        if self.inner is not None:
            self.inner.exit(task, call, ret)

    def __getattr__(self, name: str):   # exec, exited, signal, retract, finish
        inner = self.__dict__.get("inner")
        return getattr(inner, name) if inner is not None else (lambda *a, **k: None)
