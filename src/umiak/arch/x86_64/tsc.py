"""The host's time-stamp counter, read from Python through four bytes of machine code."""

import ctypes

_CODE = bytes.fromhex("0f31" "48c1e220" "4809d0" "c3")  # rdtsc; shl rdx,32; or rax,rdx; ret
_rdtsc = None


def host_rdtsc() -> int:
    global _rdtsc
    if _rdtsc is None:
        from umiak.arch.x86_64.native import CodePage
        _rdtsc = CodePage(_CODE).function(ctypes.c_uint64)
    return _rdtsc()
