"""Control-register bits, MSR numbers and segment selectors (the values Linux uses)."""

CR0_PE = 1 << 0
CR0_MP = 1 << 1
CR0_ET = 1 << 4
CR0_NE = 1 << 5
CR0_WP = 1 << 16
CR0_AM = 1 << 18
CR0_PG = 1 << 31

CR4_PAE = 1 << 5
CR4_PGE = 1 << 7
CR4_OSFXSR = 1 << 9
CR4_OSXMMEXCPT = 1 << 10
CR4_FSGSBASE = 1 << 16
CR4_OSXSAVE = 1 << 18

EFER_SCE = 1 << 0
EFER_LME = 1 << 8
EFER_LMA = 1 << 10
EFER_NXE = 1 << 11

MSR_STAR = 0xC0000081
MSR_LSTAR = 0xC0000082
MSR_CSTAR = 0xC0000083
MSR_SFMASK = 0xC0000084
MSR_FS_BASE = 0xC0000100
MSR_GS_BASE = 0xC0000101
MSR_KERNEL_GS_BASE = 0xC0000102

# RFLAGS
RFLAGS_RESERVED = 1 << 1
RFLAGS_TF = 1 << 8
RFLAGS_IF = 1 << 9
RFLAGS_DF = 1 << 10
RFLAGS_NT = 1 << 14
RFLAGS_AC = 1 << 18
RFLAGS_IOPL = 3 << 12
SYSCALL_FLAG_MASK = RFLAGS_TF | RFLAGS_DF | RFLAGS_IF | RFLAGS_IOPL | RFLAGS_AC | RFLAGS_NT

# GDT layout of Linux x86-64 so that selectors seen by the program (e.g. in
# signal frames) are the ones it would see on Linux.
KERNEL_CS = 0x10
KERNEL_DS = 0x18
USER32_CS = 0x23
USER_DS = 0x2B
USER_CS = 0x33
TSS_SEL = 0x40

# Exception vectors
VEC_DE, VEC_DB, VEC_NMI, VEC_BP, VEC_OF, VEC_BR, VEC_UD, VEC_NM = range(8)
VEC_DF, VEC_TS, VEC_NP, VEC_SS, VEC_GP, VEC_PF = 8, 10, 11, 12, 13, 14
VEC_MF, VEC_AC, VEC_MC, VEC_XM = 16, 17, 18, 19
VECTORS_WITH_ERROR_CODE = frozenset({8, 10, 11, 12, 13, 14, 17, 21, 29, 30})

# Page-fault error code bits
PF_PRESENT = 1
PF_WRITE = 2
PF_USER = 4
PF_INSTR = 16


def initial_fpu(image: bytes) -> bytes:
    """An XSAVE image of the FPU state a new program starts with (FCW 0x37f, MXCSR 0x1f80),
    the size of image and its MXCSR_MASK (the CPU's)."""
    fresh = bytearray(len(image))
    fresh[0:2] = (0x37F).to_bytes(2, "little")
    fresh[24:28] = (0x1F80).to_bytes(4, "little")
    fresh[28:32] = image[28:32]
    return bytes(fresh)
