"""The host's time-stamp counter, read from Python through four bytes of machine code."""

import ctypes
import mmap

_CODE = bytes.fromhex("0f31" "48c1e220" "4809d0" "c3")  # rdtsc; shl rdx,32; or rax,rdx; ret
_rdtsc = None


def host_rdtsc() -> int:
    global _rdtsc
    if _rdtsc is None:
        buf = mmap.mmap(-1, 4096, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
        buf.write(_CODE)
        addr = ctypes.addressof(ctypes.c_char.from_buffer(buf))
        fn = ctypes.CFUNCTYPE(ctypes.c_uint64)(addr)
        fn._keep = buf   # type: ignore[attr-defined]  # the code's buffer lives as long as the function
        _rdtsc = fn
    return _rdtsc()
