"""The platform contract, driven with raw x86-64 snippets (no kernel, no loader).

Every test that takes `platform` runs on kvm and emu (skipped where unusable),
so the software CPU is held to the behaviour of the hardware one. The snippets
are assembled at test time with GNU as (binutils).
"""

import shutil
import subprocess
import threading
import time

import pytest

from umiak.platform import ExitKind, open_platform

CODE, DATA, STACK_TOP = 0x400000, 0x600000, 0x800000
PROT_R, PROT_W, PROT_X = 1, 2, 4

pytestmark = pytest.mark.skipif(shutil.which("as") is None or shutil.which("objcopy") is None,
                                reason="GNU as/objcopy (binutils) are needed to assemble the test snippets")


def asm(tmp_path, source: str) -> bytes:
    src = tmp_path / "snippet.s"
    src.write_text(".intel_syntax noprefix\n.globl _start\n_start:\n" + source + "\n")
    subprocess.run(["as", "--64", "-o", tmp_path / "snippet.o", src], check=True)
    subprocess.run(["objcopy", "-O", "binary", "-j", ".text", tmp_path / "snippet.o", tmp_path / "snippet.bin"],
                   check=True)
    return (tmp_path / "snippet.bin").read_bytes()


class Guest:
    """A platform with the snippet at CODE (r-x), one stack page (rw-) and free frames to hand out."""

    def __init__(self, name: str, code: bytes):
        self.code = code
        self.pending = False
        self.p = open_platform(name, 64 << 20)
        self.next = self.p.usable[0]
        self.code_pa = self.frame(code)
        for i in range(0, len(code), 4096):
            self.p.map_page(CODE + i, self.code_pa + i, PROT_R | PROT_X)
        self.stack_pa = self.frame()
        self.p.map_page(STACK_TOP - 4096, self.stack_pa, PROT_R | PROT_W)
        self.v = self.p.create_vcpu(CODE, STACK_TOP)

    def frame(self, data: bytes = b"") -> int:
        pa = self.next
        n = max(1, (len(data) + 4095) // 4096)
        self.next += n * 4096
        self.p.ram[pa:pa + len(data)] = data
        return pa

    def syscall(self):
        """Run to the next syscall (answering a previous one with 0 unless ret() did)."""
        if self.pending:
            self.ret(0)
        kind = self.v.run()
        assert kind == ExitKind.SYSCALL, (kind, getattr(self.v, "error", ""), self._fault())
        self.pending = True
        return self.v.syscall_args()

    def ret(self, value: int) -> None:
        self.v.set_syscall_result(value)
        self.pending = False

    def fault(self):
        if self.pending:
            self.ret(0)
        kind = self.v.run()
        assert kind == ExitKind.FAULT, (kind, self.v.error)
        return self.v.fault()

    def _fault(self):
        try:
            return self.v.fault()
        except Exception:  # noqa: BLE001 - only for the assertion message
            return None

    def close(self):
        self.p.close()


@pytest.fixture
def guest(platform, tmp_path):
    made = []

    def make(source: str) -> Guest:
        g = Guest(platform, asm(tmp_path, source))
        made.append(g)
        return g
    yield make
    for g in made:
        g.close()


# -- syscalls -----------------------------------------------------------------
def test_syscall_args_result_and_user_rip(guest):
    g = guest("""
        mov eax, 39
        mov rdi, 1
        mov rsi, 2
        mov rdx, 3
        mov r10, 4
        mov r8, 5
        mov r9, 6
        syscall
    after:
        mov rdi, rax
        mov eax, 60
        syscall
    """)
    assert g.syscall() == (39, 1, 2, 3, 4, 5, 6)
    regs = g.v.get_regs()
    assert regs[16] == CODE + g.code.index(b"\x0f\x05") + 2  # after the first syscall instruction
    assert regs[6] == STACK_TOP
    g.ret(1234)
    nr, rdi, *_ = g.syscall()
    assert (nr, rdi) == (60, 1234)


def test_set_regs_moves_execution(guest):
    g = guest("""
        mov eax, 1
        syscall
        mov eax, 2
        syscall
    there:
        mov rdi, rbx
        mov eax, 3
        syscall
    """)
    assert g.syscall()[0] == 1
    regs = g.v.get_regs()
    regs[16] = CODE + 14  # `there`
    regs[1] = 0xABCDEF
    g.v.set_regs(regs)
    g.pending = False  # set_regs replaced the whole user state
    assert g.syscall()[:2] == (3, 0xABCDEF)


def test_negative_result_is_64_bit(guest):
    g = guest("mov eax, 1\nsyscall\nmov rdi, rax\nmov eax, 2\nsyscall")
    g.syscall()
    g.ret(-38)
    assert g.syscall()[1] == (1 << 64) - 38


# -- faults -----------------------------------------------------------------
def test_read_of_unmapped_page_then_resume(guest):
    g = guest(f"""
        mov rax, [{DATA + 8:#x}]
        mov rdi, rax
        mov eax, 1
        syscall
    """)
    f = g.fault()
    assert (f.vector, f.error_code, f.address, f.rip) == (14, 4, DATA + 8, CODE)
    pa = g.frame((0).to_bytes(8, "little") + (777).to_bytes(8, "little"))
    g.p.map_page(DATA, pa, PROT_R)
    g.v.resume_fault()
    assert g.syscall()[:2] == (1, 777)


def test_write_to_unmapped_page(guest):
    g = guest(f"mov qword ptr [{DATA:#x}], 1")
    f = g.fault()
    assert (f.vector, f.error_code, f.address) == (14, 6, DATA)


def test_write_after_lowering_to_read_only(guest):
    g = guest(f"""
        mov qword ptr [{DATA:#x}], 5
        mov eax, 1
        syscall
        mov qword ptr [{DATA:#x}], 6
        mov eax, 2
        syscall
    """)
    pa = g.frame()
    g.p.map_page(DATA, pa, PROT_R | PROT_W)
    assert g.syscall()[0] == 1
    g.p.map_page(DATA, pa, PROT_R)
    g.p.invalidate([pa])
    f = g.fault()
    assert (f.vector, f.error_code, f.address) == (14, 7, DATA)
    assert g.p.ram[pa] == 5
    g.p.map_page(DATA, pa, PROT_R | PROT_W)
    g.v.resume_fault()
    assert g.syscall()[0] == 2
    assert g.p.ram[pa] == 6


def test_unmap_is_seen(guest):
    g = guest(f"""
        mov rax, [{DATA:#x}]
        mov eax, 1
        syscall
        mov rax, [{DATA:#x}]
    """)
    pa = g.frame()
    g.p.map_page(DATA, pa, PROT_R)
    g.syscall()
    g.p.unmap_page(DATA)
    g.p.invalidate([pa])
    f = g.fault()
    assert (f.vector, f.error_code, f.address) == (14, 4, DATA)


def test_execute_non_executable_page(guest):
    g = guest(f"mov rax, {DATA:#x}\njmp rax")
    g.p.map_page(DATA, g.frame(b"\x90"), PROT_R | PROT_W)
    f = g.fault()
    assert (f.vector, f.error_code, f.address, f.rip) == (14, 0x15, DATA, DATA)


def test_kernel_area_is_not_user_accessible(guest):
    g = guest("mov rax, 0x400000000000\nmov rax, [rax]")
    f = g.fault()
    assert f.vector == 14 and f.error_code & 4 and f.address == 0x400000000000


@pytest.mark.parametrize("source, vector", [
    ("ud2", 6),
    ("xor ecx, ecx\ndiv ecx", 0),
    ("cli", 13),
    ("hlt", 13),
    ("mov rax, 0x123456789abcdef0\nmov rax, [rax]", 13),  # non-canonical
])
def test_cpu_exceptions(guest, source, vector):
    g = guest(source)
    f = g.fault()
    assert f.vector == vector
    assert f.rip == g.v.get_regs()[16]


def test_int3_reports_rip_after_it(guest):
    g = guest("nop\nint3\nmov eax, 9\nsyscall")
    f = g.fault()
    assert (f.vector, f.rip) == (3, CODE + 2)
    g.v.resume_fault()
    assert g.syscall()[0] == 9


def test_many_faults_in_a_row(guest):
    """Exceptions the host handles must not pile up (Unicorn: into a double fault)."""
    g = guest(f"""
        mov rbx, {DATA:#x}
        mov rcx, 40
    1:  mov rax, [rbx]
        xor edx, edx
        div rdx
        add rbx, 4096
        dec rcx
        jnz 1b
        mov eax, 1
        syscall
    """)
    pa = g.frame()
    for i in range(40):
        f = g.fault()
        assert (f.vector, f.address) == (14, DATA + i * 4096)
        g.p.map_page(DATA + i * 4096, pa, PROT_R)
        g.v.resume_fault()
        f = g.fault()
        assert f.vector == 0
        regs = g.v.get_regs()
        regs[16] += 3  # skip `div rdx`
        g.v.set_regs(regs)
    assert g.syscall()[0] == 1


# -- segment bases ------------------------------------------------------------
def test_fs_and_gs_base(guest):
    g = guest("""
        mov rdi, fs:[0]
        mov rsi, gs:[8]
        mov eax, 1
        syscall
    """)
    pa = g.frame((1111).to_bytes(8, "little") + (2222).to_bytes(8, "little"))
    g.p.map_page(DATA, pa, PROT_R)
    g.v.set_fs_base(DATA)
    g.v.set_gs_base(DATA)
    assert (g.v.get_fs_base(), g.v.get_gs_base()) == (DATA, DATA)
    assert g.syscall()[:3] == (1, 1111, 2222)


# -- memory: aliases, discard, code changes -------------------------------------
def test_shared_frame_at_two_addresses(guest):
    g = guest(f"""
        mov qword ptr [{DATA:#x}], 42
        mov rdi, [{DATA + 0x10000:#x}]
        mov eax, 1
        syscall
    """)
    pa = g.frame()
    g.p.map_page(DATA, pa, PROT_R | PROT_W)
    g.p.map_page(DATA + 0x10000, pa, PROT_R)
    assert g.syscall()[:2] == (1, 42)


def test_discarded_frame_reads_zero_and_new_code_runs(guest, tmp_path):
    """A frame freed and reused for other code at the same address runs the new code."""
    g = guest(f"""
        mov rax, {DATA:#x}
        call rax
        mov eax, 2
        syscall
        mov rax, {DATA:#x}
        call rax
        mov eax, 3
        syscall
    """)
    first = asm(tmp_path, "mov edi, 111\nmov eax, 1\nsyscall\nret")
    second = asm(tmp_path, "mov edi, 222\nmov eax, 1\nsyscall\nret")
    pa = g.frame(first)
    g.p.map_page(DATA, pa, PROT_R | PROT_X)
    assert g.syscall()[:2] == (1, 111)
    assert g.syscall()[0] == 2
    g.p.unmap_page(DATA)
    g.p.discard([pa])
    assert bytes(g.p.ram[pa:pa + 4096]) == bytes(4096)
    g.p.ram[pa:pa + len(second)] = second
    g.p.map_page(DATA, pa, PROT_R | PROT_X)
    assert g.syscall()[:2] == (1, 222)
    assert g.syscall()[0] == 3


def test_self_modifying_code(guest):
    """The guest patches an instruction it already ran (a JIT does this)."""
    g = guest(f"""
        mov rbx, {DATA:#x}
        call rbx
        mov byte ptr [rbx + 1], 77
        call rbx
        mov eax, 2
        syscall
    """)
    pa = g.frame(b"\xbf\x05\x00\x00\x00" + b"\xb8\x01\x00\x00\x00" + b"\x0f\x05" + b"\xc3")  # mov edi,5; mov eax,1; syscall; ret
    g.p.map_page(DATA, pa, PROT_R | PROT_W | PROT_X)
    assert g.syscall()[:2] == (1, 5)
    assert g.syscall()[:2] == (1, 77)


# -- FPU state ----------------------------------------------------------------
def test_fpu_image_round_trip(guest):
    g = guest("""
        mov rax, 0x1122334455667788
        movq xmm3, rax
        mov eax, 1
        syscall
        movq rdi, xmm3
        mov eax, 2
        syscall
    """)
    g.syscall()
    img = bytearray(g.v.get_fpu())
    assert len(img) >= 576
    assert int.from_bytes(img[160 + 3 * 16:168 + 3 * 16], "little") == 0x1122334455667788
    img[160 + 3 * 16:168 + 3 * 16] = (0x0102030405060708).to_bytes(8, "little")
    g.v.set_fpu(bytes(img))
    assert g.syscall()[:2] == (2, 0x0102030405060708)


def test_initial_fpu_state_is_linux(guest):
    """FCW 0x37f (64-bit precision, exceptions masked) and MXCSR 0x1f80, as execve leaves them."""
    g = guest("""
        sub rsp, 16
        fnstcw [rsp]
        stmxcsr [rsp + 4]
        movzx edi, word ptr [rsp]
        mov esi, [rsp + 4]
        mov eax, 1
        syscall
    """)
    assert g.syscall()[:3] == (1, 0x37F, 0x1F80)


# -- kick -----------------------------------------------------------------------
def test_kick_interrupts_a_running_loop(guest):
    g = guest("1: jmp 1b")
    timer = threading.Timer(0.2, g.v.kick)
    timer.start()
    t = time.monotonic()
    assert g.v.run() == ExitKind.INTERRUPTED
    assert time.monotonic() - t < 5
    timer.join()


def test_kick_before_run(guest):
    g = guest("mov eax, 1\nsyscall")
    g.v.kick()
    assert g.v.run() == ExitKind.INTERRUPTED
    assert g.syscall()[0] == 1


# -- emu only: what the software CPU claims ---------------------------------------
@pytest.fixture
def emu_guest(tmp_path):
    from umiak.platform import available_platforms
    problem = available_platforms()["emu"]
    if problem:
        pytest.skip(f"emu platform not usable: {problem}")
    made = []

    def make(source: str) -> Guest:
        g = Guest("emu", asm(tmp_path, source))
        made.append(g)
        return g
    yield make
    for g in made:
        g.close()


def test_emu_avx_is_not_claimed_and_faults(emu_guest):
    g = emu_guest("""
        mov eax, 1
        xor ecx, ecx
        cpuid
        mov edi, ecx
        mov eax, 7
        xor ecx, ecx
        cpuid
        mov esi, ebx
        mov eax, 1
        syscall
        vaddps ymm0, ymm1, ymm2
    """)
    _, ecx1, ebx7, *_ = g.syscall()
    assert not ecx1 & (1 << 28), "AVX claimed"
    assert not ecx1 & (1 << 12), "FMA claimed"
    assert not ebx7 & (1 << 5), "AVX2 claimed"
    assert not ebx7 & (1 << 16), "AVX-512F claimed"
    assert g.fault().vector == 6


# Each CPUID bit the emulated CPU reports, with an instruction that needs it.
CLAIMED = [
    ("1.ecx", 0, "SSE3", "haddps xmm0, xmm1"),
    ("1.ecx", 9, "SSSE3", "pshufb xmm0, xmm1"),
    ("1.ecx", 19, "SSE4.1", "pblendw xmm0, xmm1, 3"),
    ("1.ecx", 20, "SSE4.2", "pcmpistri xmm0, xmm1, 0"),
    ("1.ecx", 23, "POPCNT", "popcnt rax, rbx"),
    ("1.ecx", 22, "MOVBE", "movbe rax, [rsp - 8]"),
    ("1.ecx", 25, "AES", "aesenc xmm0, xmm1"),
    ("1.ecx", 1, "PCLMUL", "pclmulqdq xmm0, xmm1, 0"),
    ("1.ecx", 13, "CX16", "lea rdi, [rsp - 64]\nand rdi, -16\ncmpxchg16b [rdi]"),
    ("1.ecx", 30, "RDRAND", "rdrand rax"),
    ("7.ebx", 3, "BMI1", "andn rax, rbx, rcx"),
    ("7.ebx", 8, "BMI2", "pdep rax, rbx, rcx"),
    ("1.ecx", 26, "XSAVE", "xgetbv"),
]


@pytest.mark.parametrize("leaf, bit, name, insn", CLAIMED, ids=[c[2] for c in CLAIMED])
def test_emu_claimed_features_run(emu_guest, leaf, bit, name, insn):
    g = emu_guest(f"""
        mov eax, {leaf.split('.')[0]}
        xor ecx, ecx
        cpuid
        mov edi, {'ecx' if leaf.endswith('ecx') else 'ebx'}
        mov eax, 1
        syscall
        xor ecx, ecx
        {insn}
        mov eax, 2
        syscall
    """)
    reg = g.syscall()[1]
    if not reg >> bit & 1:
        pytest.skip(f"{name} not claimed by this CPU model")
    g.ret(0)
    kind = g.v.run()
    assert kind == ExitKind.SYSCALL, f"{name} is claimed but faults: {g.v.fault() if kind == ExitKind.FAULT else g.v.error}"


def test_emu_syscall_round_trip_speed(emu_guest, capsys):
    """20000 syscalls from a raw loop; prints the round trip (the figure, not a strict gate)."""
    n = 20000
    g = emu_guest(f"""
        mov r12, {n}
    1:  mov eax, 110
        syscall
        dec r12
        jnz 1b
        mov eax, 60
        syscall
    """)
    v = g.v
    t = time.perf_counter()
    for _ in range(n):
        v.run()
        v.syscall_args()
        v.set_syscall_result(1)
    per = (time.perf_counter() - t) / n * 1e6
    assert g.syscall()[0] == 60
    with capsys.disabled():
        print(f"\n[emu] syscall round trip: {per:.2f} us")
    assert per < 200


# -- several vCPUs (threads) ------------------------------------------------------
def add_vcpu(g: Guest, n: int):
    """Another vCPU at CODE with its own stack page at STACK_TOP - n * 64 KiB."""
    top = STACK_TOP - n * 0x10000
    g.p.map_page(top - 4096, g.frame(), PROT_R | PROT_W)
    return g.p.create_vcpu(CODE, top)


def run_to_exit(v, out: dict, key) -> None:
    """Run v on this host thread, answering syscalls with 0, until exit (60); record its rdi."""
    while True:
        kind = v.run()
        if kind == ExitKind.SYSCALL:
            nr, rdi, *_ = v.syscall_args()
            if nr == 60:
                out[key] = rdi
                return
            v.set_syscall_result(0)
        elif kind != ExitKind.INTERRUPTED:
            out[key] = (kind, getattr(v, "error", ""), v.fault() if kind == ExitKind.FAULT else None)
            return


def run_threads(vcpus, timeout=120.0) -> dict:
    out: dict = {}
    threads = [threading.Thread(target=run_to_exit, args=(v, out, i), daemon=True) for i, v in enumerate(vcpus)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout)
    assert not any(t.is_alive() for t in threads), f"threads hung: {out}"
    return out


def map_data(g: Guest) -> int:
    pa = g.frame(bytes(4096))
    g.p.map_page(DATA, pa, PROT_R | PROT_W)
    return pa


ATOMIC_LOOP = f"""
        mov rbx, {DATA}
        mov r12, 100000
    1:  mov eax, 1
        lock xadd qword ptr [rbx], rax
        mov rax, qword ptr [rbx + 8]
    2:  lea rdx, [rax + 1]
        lock cmpxchg qword ptr [rbx + 8], rdx
        jnz 2b
        mov ecx, 20
    3:  dec ecx
        jnz 3b
        dec r12
        jnz 1b
        xor edi, edi
        mov eax, 60
        syscall
"""


def check_atomic_loop(g: Guest, slice_=None) -> None:
    pa = map_data(g)
    vcpus = [g.v] + [add_vcpu(g, i) for i in range(1, 4)]
    if slice_ is not None:
        g.p.slice = slice_
    out = run_threads(vcpus)
    assert out == {0: 0, 1: 0, 2: 0, 3: 0}, out
    ram = g.p.ram
    assert int.from_bytes(ram[pa:pa + 8], "little") == 400000
    assert int.from_bytes(ram[pa + 8:pa + 16], "little") == 400000


def test_atomic_increments_from_four_vcpus(guest):
    """4 vCPUs on 4 host threads, 100000 `lock xadd` and 100000 `lock cmpxchg` increments each
    on shared counters (with some work between, so the emu platform preempts mid-loop)."""
    g = guest(ATOMIC_LOOP)
    check_atomic_loop(g)
    if g.p.name == "emu":
        assert g.p.switches > 4, "the vCPUs never took turns mid-loop"


def test_emu_many_preemptions_are_exact(emu_guest):
    """Hundreds of time-slice ends: each must resume exactly where it stopped (an emu_stop
    from another thread leaves a stale RIP in Unicorn 2.1.4, which ran increments twice)."""
    g = emu_guest(ATOMIC_LOOP)
    check_atomic_loop(g, slice_=0.0002)
    assert g.p.switches > 20


REG_CHECK = """
        mov rax, {seed}
        mov rbx, rax
        inc rbx
        lea rcx, [rax + 2]
        lea rdx, [rax + 3]
        lea rsi, [rax + 4]
        lea rbp, [rax + 5]
        lea r8, [rax + 6]
        lea r9, [rax + 7]
        lea r10, [rax + 8]
        lea r11, [rax + 9]
        lea r13, [rax + 11]
        lea r14, [rax + 12]
        lea r15, [rax + 13]
        movq xmm3, rax
        mov r12, {loops}
    1:  cmp rbx, {seed} + 1
        jne 9f
        cmp r15, {seed} + 13
        jne 9f
        cmp r9, {seed} + 7
        jne 9f
        movq rdi, xmm3
        cmp rdi, {seed}
        jne 9f
        dec r12
        jnz 1b
        xor edi, edi
        mov eax, 60
        syscall
    9:  mov edi, 1
        mov eax, 60
        syscall
"""


def test_vcpus_keep_their_own_registers_under_preemption(emu_guest):
    """Each vCPU checks its own GPRs and xmm3 in a long loop while others are switched in and out."""
    sources = [REG_CHECK.format(seed=(i + 1) << 24, loops=2000000) for i in range(3)]
    # One snippet per vCPU: place three copies and start each vCPU at its own.
    g = emu_guest("jmp 1f\n1:")
    codes = []
    for src in sources:
        code = asm_text(src)
        codes.append(code)
    vcpus = []
    for i, code in enumerate(codes):
        base = CODE + 0x10000 * (i + 1)
        pa = g.frame(code)
        for off in range(0, len(code), 4096):
            g.p.map_page(base + off, pa + off, PROT_R | PROT_X)
        top = STACK_TOP - (i + 1) * 0x10000
        g.p.map_page(top - 4096, g.frame(), PROT_R | PROT_W)
        vcpus.append(g.p.create_vcpu(base, top))
    out = run_threads(vcpus)
    assert out == {0: 0, 1: 0, 2: 0}, out
    assert g.p.switches > 3


def asm_text(source: str) -> bytes:
    import tempfile
    from pathlib import Path
    with tempfile.TemporaryDirectory() as d:
        return asm(Path(d), source)


SYSCALL_LOOP = """
        mov r12, {n}
    1:  mov eax, 110
        syscall
        dec r12
        jnz 1b
        mov eax, 60
        syscall
"""


def syscall_loop(v, n: int) -> None:
    for _ in range(n):
        v.run()
        v.syscall_args()
        v.set_syscall_result(1)


def test_emu_thread_costs(emu_guest, capsys):
    """The figures in the emu module docstring: vCPU context switch, syscall round trip with
    1 and 4 vCPUs, CPU-bound throughput of 2 vCPUs vs 1 (printed, loosely gated)."""
    n = 20000
    g = emu_guest(SYSCALL_LOOP.format(n=4 * n))
    p, v = g.p, g.v
    t = time.perf_counter()
    syscall_loop(v, n)
    one = (time.perf_counter() - t) / n * 1e6
    # Three more vCPUs that exist but do not run (as threads blocked in the kernel).
    others = [add_vcpu(g, i) for i in range(1, 4)]
    t = time.perf_counter()
    syscall_loop(v, n)
    idle4 = (time.perf_counter() - t) / n * 1e6
    # Two vCPUs run alternately from one host thread: every run() switches contexts.
    w = others[0]
    t = time.perf_counter()
    for _ in range(n // 2):
        syscall_loop(v, 1)
        syscall_loop(w, 1)
    alternating = (time.perf_counter() - t) / n * 1e6
    assert p._acquire(None)
    t = time.perf_counter()
    for _ in range(n // 2):
        p._load(v)
        p._load(w)
    switch = (time.perf_counter() - t) / n * 1e6
    p._release()
    # Four vCPUs on four host threads, all making syscalls: wall time per syscall.
    t = time.perf_counter()
    threads = [threading.Thread(target=syscall_loop, args=(x, n // 4)) for x in [v] + others]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    busy4 = (time.perf_counter() - t) / n * 1e6

    loop = f"""
        mov r12, {10_000_000}
        mov rax, 88172645463325252
    1:  mov rdx, rax
        shl rdx, 13
        xor rax, rdx
        mov rdx, rax
        shr rdx, 7
        xor rax, rdx
        dec r12
        jnz 1b
        mov eax, 60
        syscall
    """
    g1 = emu_guest(loop)
    t = time.perf_counter()
    assert g1.syscall()[0] == 60
    single = time.perf_counter() - t
    g3 = emu_guest(loop)
    add_vcpu(g3, 1)   # exists, never runs: the cost of the block hook alone
    t = time.perf_counter()
    assert g3.syscall()[0] == 60
    hooked = time.perf_counter() - t
    g2 = emu_guest(loop)
    vs = [g2.v, add_vcpu(g2, 1)]
    t = time.perf_counter()
    run_threads(vs)
    double = time.perf_counter() - t
    throughput = 2 * single / double
    with capsys.disabled():
        print(f"\n[emu] syscall round trip: 1 vCPU {one:.2f} us, 4 vCPUs (3 idle) {idle4:.2f} us, "
              f"4 busy threads {busy4:.2f} us per syscall; context switch {switch:.2f} us "
              f"(2 vCPUs alternating from one thread: {alternating:.2f} us per run); "
              f"CPU-bound loop {single * 1e3:.0f} ms on 1 vCPU, {hooked * 1e3:.0f} ms with the block hook; "
              f"2 threads vs 1: {throughput:.2f}x throughput ({g2.p.switches} switches)")
    assert throughput < 1.5   # one engine: no parallel speed-up (a sanity check of the design)


def test_kick_reaches_a_vcpu_waiting_for_the_engine(emu_guest):
    """With a long time slice the second vCPU waits for the engine; a kick ends its
    run() at once, and a kick ends the running one too."""
    g = emu_guest("1: jmp 1b")
    w = add_vcpu(g, 1)
    g.p.slice = 30.0
    got = {}

    def run(v, key):
        t = time.monotonic()
        got[key] = (v.run(), time.monotonic() - t)

    a = threading.Thread(target=run, args=(g.v, "running"))
    a.start()
    while not g.v._running:
        time.sleep(0.001)
    b = threading.Thread(target=run, args=(w, "waiting"))
    b.start()
    time.sleep(0.1)
    assert "waiting" not in got
    t = time.monotonic()
    w.kick()
    b.join(5)
    assert got["waiting"][0] == ExitKind.INTERRUPTED and time.monotonic() - t < 0.5
    g.v.kick()
    a.join(5)
    assert got["running"][0] == ExitKind.INTERRUPTED


def test_each_vcpu_reports_its_own_fault_and_syscall(guest):
    """Two vCPUs stop at different places; what each reports is its own."""
    g = guest(f"""
        cmp rsp, {STACK_TOP}
        jne 1f
        mov rax, qword ptr [0x900000]
    1:  mov eax, 39
        mov rdi, rsp
        syscall
        mov eax, 60
        syscall
    """)
    w = add_vcpu(g, 1)
    assert w.run() == ExitKind.SYSCALL
    assert g.v.run() == ExitKind.FAULT
    assert w.syscall_args()[:2] == (39, STACK_TOP - 0x10000)
    f = g.v.fault()
    assert (f.vector, f.address) == (14, 0x900000)
    assert w.get_regs()[6] == STACK_TOP - 0x10000 and g.v.get_regs()[6] == STACK_TOP
    w.set_syscall_result(7)
    assert w.run() == ExitKind.SYSCALL and w.syscall_args()[0] == 60
    assert w.get_regs()[0] == 60
