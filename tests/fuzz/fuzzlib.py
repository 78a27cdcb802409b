"""The syscall fuzzer's host side: what a call looks like, how a batch is encoded, and the
hypothesis strategies and trace mutations that make batches.

A batch is a file read by tests/guest/fuzz_syscalls.c: b"UFZ1", a u32 count, a u32 of
flags (0), then per call a u32 number, u16 payload offset and length in the arena, six
u64 arguments and the payload. Pointers are absolute: the guest maps its arena at ARENA.

Some calls would end or stall the harness itself rather than test umiak; `sanitize`
rewrites them (SKIPPED lists the numbers never issued, the rest of the rules are there).
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass

ARENA = 0x10000000
ARENA_SIZE = 0x10000
GUARD = ARENA + ARENA_SIZE          # PROT_NONE
UNMAPPED = GUARD + 0x1000           # nothing there
HOLE = 0x20000000                   # where memory calls may map and unmap (nothing of the harness)
MAX_PAYLOAD = 512

# Never issued: they end the harness (exit, exit_group, execve, execveat), run a second
# copy of it on a random stack (clone, clone3, vfork), restore a random signal frame
# (rt_sigreturn), wait with SIGALRM possibly blocked (rt_sigsuspend), or forbid the
# harness's own calls from then on (seccomp).
SKIPPED = {60: "exit", 231: "exit_group", 59: "execve", 322: "execveat", 56: "clone",
           435: "clone3", 58: "vfork", 15: "rt_sigreturn", 130: "rt_sigsuspend", 317: "seccomp",
           462: "mseal"}

KILL_FAMILY = {62: 1, 200: 1, 234: 2, 129: 1, 297: 2, 424: 1}   # nr -> index of the signal argument
SIG_WAITS_WITH_MASK = {270: 5, 271: 3, 281: 4, 441: 4}         # pselect6, ppoll, epoll_pwait(2): mask arg
MM_CALLS = {9, 10, 11, 25, 28, 216, 329, 440, 12, 30}           # address argument 0 stays in HOLE/ARENA
PROTECTED_FDS = (1, 2)                                          # the harness logs to 1; errors to 2
RLIMIT_ALLOWED = (1, 3, 4, 7, 8, 13, 14)                        # FSIZE STACK CORE NOFILE MEMLOCK NICE RTPRIO

FDS = [0, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 20, 63, 64, 1023, 1024, 65535,
       0x7FFFFFFF, 0xFFFFFFFF, 0xFFFFFF9C, 0xFFFFFFFFFFFFFF9C, 2**63, 2**64 - 1]   # ...9C: AT_FDCWD
POINTERS = [0, 1, 8, 0xFFF, 0x1000, ARENA, ARENA + 1, ARENA + 3, ARENA + 8, ARENA + 0xFF8,
            ARENA + 0x1000, ARENA + ARENA_SIZE - 1, ARENA + ARENA_SIZE - 8, GUARD, GUARD - 1,
            UNMAPPED, HOLE, 0x7FFFFFFFF000, 0x7FFFFFFFFFFF, 0x800000000000, 0xFFFF800000000000,
            0xFFFFFFFFFF600000, 0xFFFFFFFFFFFFF000, 2**64 - 1]
LENGTHS = [0, 1, 2, 7, 8, 15, 16, 64, 255, 256, 4095, 4096, 4097, 8192, ARENA_SIZE - 1,
           ARENA_SIZE, ARENA_SIZE + 1, 2**31 - 1, 2**31, 2**32 - 1, 2**32, 2**63 - 1, 2**63,
           2**64 - 1]
PATHS = [b"/", b".", b"..", b"/tmp", b"/tmp/fz", b"/tmp/new", b"/tmp/dir/x", b"/dev/null",
         b"/dev/zero", b"/dev/full", b"/dev/tty", b"/proc/self/fd/1", b"/proc/self/mem",
         b"/proc/self/maps", b"/proc/self/root", b"/proc/1/status", b"/sys", b"/etc/passwd",
         b"/vol", b"/vol/f", b"/vol/../../..", b"", b"a" * 300, b"/" * 5000, b"/tmp/" + b"x" * 256,
         b"/nonexistent/deep/path", b"/tmp/fz/notdir", b"\xff\xfe"]


# Syscall number -> indexes of its path arguments (by name in umiak's table), so paths
# land where the kernel reads them more often than chance would put them there.
PATH_ARGS_BY_NAME = {
    "open": (0,), "creat": (0,), "openat": (1,), "openat2": (1,), "stat": (0,), "lstat": (0,),
    "newfstatat": (1,), "statx": (1,), "access": (0,), "faccessat": (1,), "faccessat2": (1,),
    "mkdir": (0,), "mkdirat": (1,), "mknod": (0,), "mknodat": (1,), "unlink": (0,), "unlinkat": (1,),
    "rmdir": (0,), "rename": (0, 1), "renameat": (1, 3), "renameat2": (1, 3), "link": (0, 1),
    "linkat": (1, 3), "symlink": (0, 1), "symlinkat": (0, 2), "readlink": (0,), "readlinkat": (1,),
    "chmod": (0,), "fchmodat": (1,), "chown": (0,), "lchown": (0,), "fchownat": (1,), "truncate": (0,),
    "chdir": (0,), "chroot": (0,), "statfs": (0,), "utimensat": (1,), "utimes": (0,), "utime": (0,),
    "futimesat": (1,), "getxattr": (0, 1), "lgetxattr": (0, 1), "setxattr": (0, 1), "lsetxattr": (0, 1),
    "listxattr": (0,), "llistxattr": (0,), "removexattr": (0, 1), "lremovexattr": (0, 1),
    "fgetxattr": (1,), "fsetxattr": (1,), "fremovexattr": (1,), "inotify_add_watch": (1,),
    "name_to_handle_at": (1,), "memfd_create": (0,), "mount": (0, 1, 2), "umount2": (0,),
    "swapon": (0,), "acct": (0,), "open_tree": (1,), "pivot_root": (0, 1), "fanotify_mark": (4,),
}


def path_args(names: dict[int, str]) -> dict[int, tuple[int, ...]]:
    return {nr: PATH_ARGS_BY_NAME[name] for nr, name in names.items() if name in PATH_ARGS_BY_NAME}


@dataclass
class Call:
    nr: int
    args: list[int]
    payload: bytes = b""
    poff: int = 0

    def encode(self) -> bytes:
        args = [a & (2**64 - 1) for a in self.args]
        return struct.pack("<IHH6Q", self.nr & 0xFFFFFFFF, self.poff, len(self.payload), *args) + self.payload


def encode_batch(calls: list[Call]) -> bytes:
    return b"UFZ1" + struct.pack("<II", len(calls), 0) + b"".join(c.encode() for c in calls)


def sanitize(call: Call) -> Call | None:
    """The call as the harness may issue it, or None (never issued). Rules, each for a
    reason the harness gives up rather than umiak: see SKIPPED and the constants above."""
    nr, a = call.nr, list(call.args) + [0] * (6 - len(call.args))
    if nr in SKIPPED:
        return None
    if call.poff + len(call.payload) > ARENA_SIZE:
        call = Call(nr, a, call.payload[:max(0, ARENA_SIZE - call.poff)], call.poff)
    if nr in KILL_FAMILY and a[KILL_FAMILY[nr]] & 0xFFFFFFFF in (9, 19):   # SIGKILL, SIGSTOP
        a[KILL_FAMILY[nr]] = 0
    if nr in SIG_WAITS_WITH_MASK:
        a[SIG_WAITS_WITH_MASK[nr]] = 0
    if nr in MM_CALLS and nr != 12:
        if not (HOLE <= a[0] < HOLE + (1 << 30) or ARENA <= a[0] < ARENA + ARENA_SIZE or a[0] == 0
                or a[0] >= 0x800000000000):
            a[0] = HOLE + (a[0] & 0xFFFFF000 & ((1 << 28) - 1))
        if nr == 25:                      # mremap's new address (MREMAP_FIXED)
            a[4] = HOLE + (a[4] & 0xFFFF000)
    if nr == 12 and a[0] and a[0] < HOLE:                          # brk below the harness's end
        a[0] = 0
    if nr == 3 and a[0] & 0xFFFFFFFF in PROTECTED_FDS:             # close
        a[0] = 99
    if nr in (33, 292) and a[1] & 0xFFFFFFFF in PROTECTED_FDS:     # dup2, dup3
        a[1] = 98
    if nr == 436 and (a[0] & 0xFFFFFFFF) <= 2:                     # close_range from 3 up
        a[0] = 3
    if nr == 158 and a[0] in (0x1001, 0x1002):                     # arch_prctl ARCH_SET_GS/FS
        a[0] = 0x1003
    if nr == 157 and a[0] == 22:                                   # prctl PR_SET_SECCOMP
        a[0] = 0
    if nr in (160, 302):                                           # setrlimit, prlimit64
        i = 1 if nr == 302 else 0
        if a[i] not in RLIMIT_ALLOWED:
            a[i] = RLIMIT_ALLOWED[a[i] % len(RLIMIT_ALLOWED)]
    if nr in (310, 311) and a[0] != 0:                             # process_vm_*: never our own memory
        a[0] = 99999
    return Call(nr, a[:6], call.payload, call.poff)


# -- hypothesis strategies ------------------------------------------------------------
#
# Hypothesis draws, per call, its number and a 32-bit seed; the arguments come from
# random.Random(seed) over the vocabularies above. Two draws a call instead of thirty
# keep generation cheaper than running the batch, and shrinking still works where it
# matters: it drops calls from a failing batch and moves numbers and seeds to simpler ones.

INTS = [0, 1, 2, 3, 0x40, 0x80, 0x100, 0x800, 0x80000, 0x1000000, 0xFFFFFFFF, 2**63, 2**64 - 1, 2**31]
POFFS = [0, 64, 4096 - 8, 4096, ARENA_SIZE - 16, ARENA_SIZE - 1]
WORDS = [0, 1, 8, 4096, ARENA, ARENA + 64, GUARD, 2**64 - 1, 2**31]
IOCTLS = [0x541B, 0x5421, 0x5451, 0x5450, 0x80086601, 0x40086602, 0x80087601, 0xC0185879, 0x4B3A, 0x5606,
          0x800454D2, 0x400454CA, 0xAE01]
SOCKOPT_LEVELS = [0, 1, 6, 17, 41, 255, 263, 277, 0xFFFF]


def _arg(r) -> int:
    k = r.randrange(8)
    if k == 0:
        return r.choice(FDS)
    if k == 1:
        return r.choice(POINTERS)
    if k == 2:
        return r.choice(LENGTHS)
    if k == 3:
        return r.choice(INTS)
    if k == 4:
        return r.randrange(65)
    if k == 5:
        return 1 << r.randrange(32)
    if k == 6:
        return r.randrange(3, 21)
    return r.getrandbits(64)


def _payload(r) -> bytes:
    k = r.randrange(3)
    if k == 0:
        return r.choice(PATHS) + b"\0"
    if k == 1:
        n = r.choice([0, 1, 4, 8, 16, 64, 256, MAX_PAYLOAD])
        return bytes(r.getrandbits(8) for _ in range(n))
    return struct.pack("<16Q", *(r.choice(WORDS) for _ in range(16)))[:8 * r.randrange(17)]


def expand(nr: int, seed: int, paths: dict[int, tuple[int, ...]]) -> Call:
    """The call with number nr that seed stands for."""
    import random
    r = random.Random(seed)
    args = [_arg(r) for _ in range(6)]
    off = r.choice(POFFS)
    if nr in paths and r.randrange(5):
        # Its path arguments point at paths packed in the payload; the fd before an *at
        # path is AT_FDCWD or a real directory or file more often than not.
        names = [r.choice(PATHS) for _ in paths[nr]]
        off = min(off, ARENA_SIZE - sum(len(n) + 1 for n in names))
        at = off
        for i, name in zip(paths[nr], names, strict=True):
            args[i] = ARENA + at
            at += len(name) + 1
            if i > 0 and r.randrange(2):
                args[i - 1] = r.choice([0xFFFFFF9C, 10, 3, 9])
        return Call(nr, args, b"".join(n + b"\0" for n in names), off)
    data = _payload(r)
    # Calls that multiplex many operations on a small selector: the selector from its real
    # range and the object a real fd, so each operation's own code is reached.
    if nr == 16:                                   # ioctl
        args[0] = r.randrange(17)
        args[1] = r.choice([r.randrange(0x5401, 0x5461), r.randrange(0x8901, 0x8A00), r.choice(IOCTLS),
                            r.getrandbits(32)])
    elif nr == 72:                                 # fcntl
        args[0], args[1] = r.randrange(17), r.choice([r.randrange(49), r.randrange(1024, 1035)])
    elif nr in (54, 55):                           # setsockopt, getsockopt
        args[0], args[1], args[2], args[3] = r.randrange(3, 17), r.choice(SOCKOPT_LEVELS), r.randrange(81), ARENA
        args[4] = ARENA + 0x100 if nr == 55 else r.choice([0, 1, 4, 8, 16, 64, 4096, 2**32 - 1])
        if nr == 55:   # optlen, a u32 in the arena
            data = (data + bytes(0x100))[:0x100] + struct.pack("<I", r.choice([0, 1, 4, 8, 64, 2**31]))
            off = 0
    elif nr == 157:                                # prctl
        args[0] = r.randrange(81)
    elif nr == 202:                                # futex
        args[0] = r.choice([ARENA, ARENA + 4, ARENA + 1, GUARD, 0])
        args[1] = r.randrange(14) | r.choice([0, 128, 256, 384])
    elif nr == 233:                                # epoll_ctl
        args[0], args[1], args[2] = r.randrange(3, 17), r.randrange(5), r.randrange(3, 17)
    elif nr == 41:                                 # socket
        args[0], args[1] = r.choice([1, 2, 10, 16, 17, 0, 38, 40, 44]), r.randrange(7) | r.choice([0, 0x800, 0x80000])
    elif r.randrange(3) == 0:
        args[0] = r.choice([r.randrange(3, 21), r.choice(FDS)])   # most calls take an fd first
    if r.randrange(2):   # half the time a pointer argument points at the payload
        args[r.randrange(6)] = ARENA + off
    return Call(nr, args, data, off)


def strategies(known: dict[int, str]):
    """(calls strategy, batch strategy) over the syscall numbers umiak knows (and a few it does not)."""
    from hypothesis import strategies as st
    nrs = sorted(n for n in known if n not in SKIPPED)
    # About 2% numbers umiak does not know (past the table, x32's, 32-bit all-ones).
    numbers = st.sampled_from(nrs + [451, 500, 1000, 0x40000000, 0x40000001, 2**31 - 1, 2**32 - 1])
    paths = path_args(known)
    calls = st.builds(lambda nr, seed: expand(nr, seed, paths), numbers, st.integers(0, 2**32 - 1))
    return calls, st.lists(calls, min_size=8, max_size=60)


# -- mutating the calls real programs make --------------------------------------------

TRACE_LINE = re.compile(r"^(?:\[pid\s+\d+\]\s*)?([a-z_0-9]+)\((.*)\)\s+=\s")


def parse_trace(text: str, numbers: dict[str, int]) -> list[Call]:
    """Calls of a --strace log, as far as their arguments are plain: numbers kept, strings
    become the payload (a pointer to it), anything else (structs, flags) a pointer into the arena."""
    calls = []
    for line in text.splitlines():
        m = TRACE_LINE.match(line)
        if not m or m.group(1) not in numbers:
            continue
        args, payload = [], b""
        for tok in _split_args(m.group(2)):
            if tok.startswith('"'):
                payload = _unquote(tok)[:MAX_PAYLOAD - 1] + b"\0"
                args.append(ARENA)
            elif re.fullmatch(r"-?\d+|0x[0-9a-f]+", tok):
                args.append(int(tok, 0) & (2**64 - 1))
            elif tok == "NULL":
                args.append(0)
            elif tok == "AT_FDCWD":
                args.append(0xFFFFFF9C)
            else:
                args.append(ARENA + 256)
        calls.append(Call(numbers[m.group(1)], (args + [0] * 6)[:6], payload, 0))
    return calls


def _split_args(text: str) -> list[str]:
    out, depth, cur, quoted, esc = [], 0, "", False, False
    for ch in text:
        if quoted:
            cur += ch
            if esc:
                esc = False
            elif ch == "\\":
                esc = True
            elif ch == '"':
                quoted = False
            continue
        if ch == '"':
            quoted = True
        elif ch in "[{(":
            depth += 1
        elif ch in "]})":
            depth -= 1
        elif ch == "," and depth == 0:
            out.append(cur.strip())
            cur = ""
            continue
        cur += ch
    if cur.strip():
        out.append(cur.strip())
    return out


def _unquote(tok: str) -> bytes:
    body = tok[1:tok.rindex('"')] if tok.count('"') >= 2 else tok[1:]
    try:
        return body.encode("latin-1").decode("unicode_escape").encode("latin-1")
    except (UnicodeDecodeError, UnicodeEncodeError):
        return body.encode("utf-8", "replace")


def mutation_strategy(corpus: list[Call], known: dict[int, str]):
    """Batches of real calls, each kept, or with one argument or its payload replaced
    (from a seed, as expand), mixed with random calls."""
    from hypothesis import strategies as st
    import random
    random_calls, _ = strategies(known)

    def mutate(c: Call, how: int, seed: int) -> Call:
        r = random.Random(seed)
        args, payload = list(c.args), c.payload
        if how == 1:
            args[r.randrange(6)] = _arg(r)
        elif how == 2:
            payload = r.choice(PATHS) + b"\0"
        elif how == 3:
            payload = bytes(b ^ r.getrandbits(8) for b in payload[:64]) + payload[64:]
        return Call(c.nr, args, payload, c.poff)

    mutated = st.builds(mutate, st.sampled_from(corpus), st.integers(0, 3), st.integers(0, 2**32 - 1))
    return st.lists(st.one_of(mutated, mutated, mutated, random_calls), min_size=8, max_size=60)
