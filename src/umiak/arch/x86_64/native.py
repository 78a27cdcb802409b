"""Host machine code called from Python or from native hooks: written into a private page
once, then made read+execute, so no page of umiak's is writable and executable at once."""

import ctypes
import mmap

PAGE = 4096


class CodePage:
    """One page of the host's machine code; `address` is where it starts. Keep the object
    alive as long as anything may call into it."""

    def __init__(self, code: bytes):
        if len(code) > PAGE:
            raise ValueError("machine code larger than a page")
        self._page = mmap.mmap(-1, PAGE, prot=mmap.PROT_READ | mmap.PROT_WRITE)
        self._page[:len(code)] = code
        self.address = ctypes.addressof(ctypes.c_char.from_buffer(self._page))
        libc = ctypes.CDLL(None, use_errno=True)
        libc.mprotect.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int)
        if libc.mprotect(self.address, PAGE, mmap.PROT_READ | mmap.PROT_EXEC):
            raise OSError(ctypes.get_errno(), "mprotect")

    def function(self, restype, *argtypes, offset: int = 0):
        """A ctypes function at offset (CFUNCTYPE: the GIL is released for the call)."""
        fn = ctypes.CFUNCTYPE(restype, *argtypes)(self.address + offset)
        fn._keep = self   # type: ignore[attr-defined]  # the code lives as long as the function
        return fn
