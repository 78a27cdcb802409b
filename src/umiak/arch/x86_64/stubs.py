"""Machine code of the guest's only kernel code: the syscall entry and exception stubs.

Both leave the guest by storing one byte to a guest-physical address with no
memory behind it (an MMIO exit, the cheapest exit under PVM). The host tells the
syscall store from the exception store by the address; the byte is the vector.

    syscall_entry:  mov byte [rip+to_mmio_syscall], 0   ; exit
                    sysretq                             ; reached on VMX/SVM only
    exc_N:          push 0                              ; only if no CPU error code
                    push N
                    mov byte [rip+to_mmio_exception], N ; exit; host reads the frame
                    add rsp, 16
                    iretq                               ; back to the (maybe edited) frame
"""

import struct

from umiak.arch.x86_64.cpu import VECTORS_WITH_ERROR_CODE

SYSCALL_STUB_SIZE = 16
EXC_STUB_SIZE = 32
NUM_VECTORS = 32


def _store_byte(here_after: int, target: int, value: int) -> bytes:
    # c6 05 disp32 imm8: the displacement counts from the end of the instruction.
    return b"\xc6\x05" + struct.pack("<i", target - here_after) + bytes([value])


def build_stubs(page_va: int, mmio_syscall_va: int, mmio_exception_va: int) -> tuple[bytes, int, list[int]]:
    """Returns (page image, syscall entry address, exception entry addresses)."""
    code = bytearray()
    code += _store_byte(page_va + 7, mmio_syscall_va, 0)
    code += b"\x48\x0f\x07"  # sysretq
    code += b"\xcc" * (SYSCALL_STUB_SIZE - len(code))
    entries = []
    for vec in range(NUM_VECTORS):
        start = len(code)
        entries.append(page_va + start)
        if vec not in VECTORS_WITH_ERROR_CODE:
            code += b"\x6a\x00"
        code += b"\x6a" + bytes([vec])
        code += _store_byte(page_va + len(code) + 7, mmio_exception_va, vec)
        code += b"\x48\x83\xc4\x10"  # add rsp, 16
        code += b"\x48\xcf"          # iretq
        code += b"\xcc" * (start + EXC_STUB_SIZE - len(code))
    assert len(code) <= 4096
    return bytes(code), page_va, entries
