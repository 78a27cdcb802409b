"""The vDSO: clocks read inside the VM from the TSC, so clock_gettime costs no exit.

The image (vdso.so, built from vdso.S by build.sh, all beside this file) is mapped
with its [vvar] page just below it. The host writes the clock parameters into
[vvar] under a sequence lock at start and once a second after that.
"""

import struct
import time
import os

from umiak.kernel import abi
from umiak.kernel.abi import MAP_ANONYMOUS, MAP_PRIVATE

VVAR = struct.Struct("<I4xQQqq")   # seq, base_tsc, mult (32.32), base_ns, realtime offset
REFRESH_S = 1.0


def vdso_image() -> bytes:
    # A plain read: importlib.resources costs ~25 ms of start-up.
    with open(os.path.join(os.path.dirname(__file__), "vdso.so"), "rb") as f:
        return f.read()


class VdsoClock:
    """Keeps one VM's [vvar] page in step with the host's clocks."""

    def __init__(self, kernel, mm, base: int | None = None):
        self.kernel = kernel
        self.vvar_pa = mm.frames.alloc()   # the clock's own reference to the VM's one [vvar]
        self.map(mm, base)
        self.ram = mm.ram
        self.seq = 0
        self.mult = 0
        self.first: tuple[int, int] | None = None   # (host tsc, monotonic ns) at the first refresh, to measure the rate
        self.last: tuple[int, int] | None = None    # (guest tsc, guest ns) published last
        self.stopped = False
        self.handle: object = None
        self.rt_offset = 0
        self.clock: tuple[int, int] | None = None

    def map(self, mm, base: int | None = None) -> int:
        """Map [vvar] and [vdso] into an address space (every process has them), at base
        when given (a restored snapshot). The one [vvar] frame of the VM is behind each;
        the clock holds a reference of its own."""
        image = vdso_image()
        size = abi.page_up(len(image))
        if base is None:
            base = mm.find_free(size + 4096) + 4096
        mm.mmap(base - 4096, 4096, abi.PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | abi.MAP_FIXED, name="[vvar]")
        mm.mmap(base, size, abi.PROT_READ | abi.PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS | abi.MAP_FIXED,
                name="[vdso]")
        mm.write(base, image, force=True)
        mm.put_frame(base - 4096, self.vvar_pa)
        self.base = mm.vdso_base = base
        return base

    def start(self, khz: int, offset: int) -> None:
        """khz: the guest TSC rate; offset: guest TSC minus host TSC."""
        self.clock = (khz, offset)
        self.offset = offset
        self.mult = (1_000_000 << 32) // khz
        self.refresh()

    def refresh(self) -> None:
        from umiak.arch.x86_64.tsc import host_rdtsc
        tsc = host_rdtsc()
        mono = time.monotonic_ns()
        real = time.time_ns()
        if self.first is None:
            self.first = (tsc, mono)
        elif mono - self.first[1] > 2_000_000_000:
            # Measure the real rate against the host's monotonic clock.
            self.mult = ((mono - self.first[1]) << 32) // max(1, tsc - self.first[0])
        gtsc = tsc + self.offset
        if self.last is not None:
            # Never let the guest's clock step back: continue from where it would be now.
            ltsc, lns = self.last
            guest_now = lns + (((gtsc - ltsc) * self.mult) >> 32)
            mono = max(mono, guest_now)
        self.last = (gtsc, mono)
        self._publish(gtsc, mono, real - time.monotonic_ns())
        if not self.stopped:
            self.handle = self.kernel.timers.add(time.monotonic() + REFRESH_S, self.refresh)

    def stop(self) -> None:
        """The address space is going away (execve): no more refreshes."""
        self.stopped = True
        self.kernel.timers.cancel(self.handle)

    def now_ns(self) -> int | None:
        """CLOCK_MONOTONIC as the guest's vDSO computes it now (None before the first refresh)."""
        if self.last is None:
            return None
        from umiak.arch.x86_64.tsc import host_rdtsc
        ltsc, lns = self.last
        return lns + (((host_rdtsc() + self.offset - ltsc) * self.mult) >> 32)

    def _publish(self, base_tsc: int, base_ns: int, rt_offset: int) -> None:
        self.rt_offset = rt_offset
        ram, pa = self.ram, self.vvar_pa
        self.seq += 1
        ram[pa:pa + 4] = (self.seq & 0xFFFFFFFF).to_bytes(4, "little")   # odd: being written
        ram[pa + 8:pa + VVAR.size] = VVAR.pack(0, base_tsc & abi.MASK64, self.mult, base_ns, rt_offset)[8:]
        self.seq += 1
        ram[pa:pa + 4] = (self.seq & 0xFFFFFFFF).to_bytes(4, "little")
