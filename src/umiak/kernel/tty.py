"""A terminal's state and line discipline (Linux's struct tty + N_TTY), for pseudo-terminals.

One `Tty` is a pty pair: the master (the terminal emulator's side: `script`,
`expect`, `tmux`) writes what the user types and reads what the program shows;
the slave is the program's terminal. Input from the master goes through the input
flags (ICRNL, IGNCR, ...), ISIG (VINTR/VQUIT/VSUSP signal the foreground process
group), canonical line editing (VERASE, VWERASE, VKILL, VEOF) and echo; output from
the slave goes through OPOST (ONLCR, OCRNL). The ioctls of both ends act on this
one state, as Linux's real_tty: termios, window size (SIGWINCH), controlling
terminal (TIOCSCTTY/TIOCNOTTY) and the foreground process group.

Job control: `term` is the pty's jobctl.Terminal (its session and foreground group,
0: none; `session` and `pgrp` read and set it), so a background group of the session
that reads the slave gets SIGTTIN, and one that writes it with TOSTOP set, changes its
termios, flushes it or sets its foreground group gets SIGTTOU, as on a host terminal.
Not done: IXON flow stops (^S/^Q are swallowed), VLNEXT, packet mode, VTIME timeouts
(VMIN 0 reads return at once).
"""

import struct
from collections import deque

from umiak.kernel import abi
from umiak.kernel import jobctl
from umiak.kernel.errors import EAGAIN, EINVAL, EIO, ENOTTY, EPERM, ESRCH, SyscallError
from umiak.kernel.jobctl import Terminal
from umiak.kernel.waiting import WaitQueue

# termios flags (asm-generic/termbits.h)
IGNBRK, BRKINT, IGNPAR, PARMRK, INPCK, ISTRIP, INLCR, IGNCR, ICRNL = 1, 2, 4, 8, 0o20, 0o40, 0o100, 0o200, 0o400
IXON = 0o2000
OPOST, ONLCR, OCRNL = 1, 4, 0o10
ISIG, ICANON, ECHO, ECHOE, ECHOK, ECHONL, NOFLSH, TOSTOP = 1, 2, 0o10, 0o20, 0o40, 0o100, 0o200, 0o400
ECHOCTL, ECHOKE, IEXTEN = 0o1000, 0o4000, 0o100000
B38400, CS8, CREAD = 0o17, 0o60, 0o200
VINTR, VQUIT, VERASE, VKILL, VEOF, VTIME, VMIN, VSWTC = 0, 1, 2, 3, 4, 5, 6, 7
VSTART, VSTOP, VSUSP, VEOL, VREPRINT, VDISCARD, VWERASE, VLNEXT, VEOL2 = 8, 9, 10, 11, 12, 13, 14, 15, 16
NCCS = 19
INIT_CC = b"\003\034\177\025\004\000\001\000\021\023\032\000\022\017\027\026\000\000\000"

TERMIOS = struct.Struct("<IIIIB19s")        # struct termios (TCGETS): 36 bytes
TERMIOS2 = struct.Struct("<IIIIB19sII")     # struct termios2 (TCGETS2): + c_ispeed, c_ospeed
from umiak.kernel.abi import (  # noqa: E402  (the ioctl numbers live in the one ABI module)
    TCFLSH, TCGETS, TCGETS2, TCSBRK, TCSBRKP, TCSETS, TCSETS2, TCSETSF, TCSETSF2, TCSETSW, TCSETSW2,
    TCXONC, TIOCCBRK, TIOCEXCL, TIOCGETD, TIOCGPGRP, TIOCGSID,
    TIOCGWINSZ, TIOCNOTTY, TIOCNXCL, TIOCOUTQ, TIOCSBRK, TIOCSCTTY, TIOCSETD, TIOCSPGRP, TIOCSWINSZ, WINSIZE,
)

TCIFLUSH, TCOFLUSH, TCIOFLUSH = 0, 1, 2

BUF_MAX = 65536     # bytes a queue holds before writers wait
CAP_SYS_ADMIN = 21
OUTER_SESSION = 1   # the session of the program umiak started: its terminal is the host's


class Tty:
    """A pty pair's terminal state, queues and job-control fields (see the module doc)."""

    def __init__(self, kernel, index: int):
        self.kernel = kernel
        self.index = index
        self.iflag, self.oflag, self.cflag = ICRNL | IXON, OPOST | ONLCR, B38400 | CS8 | CREAD
        self.lflag = ISIG | ICANON | ECHO | ECHOE | ECHOK | ECHOCTL | ECHOKE | IEXTEN
        self.line = 0
        self.cc = bytearray(INIT_CC)
        self.ispeed = self.ospeed = 38400
        self.winsize = (0, 0, 0, 0)
        self.term = Terminal()  # the session it controls and its foreground group (job control)
        self.detached: set[int] = set()   # pids that left it with TIOCNOTTY (not leaders)
        self.lines: deque[bytes] = deque()   # completed canonical lines, for the slave to read
        self.raw = bytearray()  # non-canonical input, for the slave to read
        self.edit = bytearray()  # the canonical line being typed
        self.out = bytearray()  # what the slave wrote and the echo, for the master to read
        self.locked = True      # TIOCSPTLCK: the slave cannot be opened
        self.master_open = True
        self.slave_opens = 0
        self.slave_ever = False
        self.waitq = WaitQueue()

    @property
    def session(self) -> int:
        """sid of the session this is the controlling terminal of (0: none)."""
        return self.term.sid

    @session.setter
    def session(self, sid: int) -> None:
        self.term.sid = sid

    @property
    def pgrp(self) -> int:
        """The foreground process group (0: none)."""
        return self.term.pgrp

    @pgrp.setter
    def pgrp(self, pgrp: int) -> None:
        self.term.pgrp = pgrp

    def job_control(self, task, signo: int) -> None:
        """A background group of the session this controls reading (SIGTTIN) or changing
        (SIGTTOU) the terminal through the slave: stopped, EIO, or let through (jobctl)."""
        if task is not None and self.is_ctty_of(task.process):
            if signo == abi.SIGTTIN:
                jobctl.check_read(task, self.term)
            else:
                jobctl.check_change(task, self.term)

    # -- queues ---------------------------------------------------------------------
    def canonical(self) -> bool:
        return bool(self.lflag & ICANON)

    def input_len(self) -> int:
        return sum(map(len, self.lines)) + len(self.raw) + len(self.edit)

    def slave_readable(self) -> bool:
        return bool(self.lines) if self.canonical() else bool(self.raw) or self.cc[VMIN] == 0

    def master_write(self, data: bytes) -> int:
        """What the user typed: through the input flags, ISIG, line editing and echo."""
        room = BUF_MAX - self.input_len()
        if room <= 0:
            raise SyscallError(EAGAIN)
        data = data[:room]
        for c in data:
            self._receive(c)
        self.waitq.notify()
        return len(data)

    def _receive(self, c: int) -> None:
        iflag, lflag, cc = self.iflag, self.lflag, self.cc
        if iflag & ISTRIP:
            c &= 0x7F
        if c == 13:
            if iflag & IGNCR:
                return
            if iflag & ICRNL:
                c = 10
        elif c == 10 and iflag & INLCR:
            c = 13
        if iflag & IXON and c and c in (cc[VSTART], cc[VSTOP]):
            return
        if lflag & ISIG and c and c in (cc[VINTR], cc[VQUIT], cc[VSUSP]):
            if not lflag & NOFLSH:
                self.lines.clear()
                self.raw.clear()
                self.edit.clear()
                self.out.clear()
            self._echo(c)
            signo = abi.SIGINT if c == cc[VINTR] else abi.SIGQUIT if c == cc[VQUIT] else abi.SIGTSTP
            self.signal_pgrp(signo)
            return
        if not lflag & ICANON:
            self.raw.append(c)
            self._echo(c)
            return
        if c and c == cc[VERASE] or (lflag & IEXTEN and c and c == cc[VWERASE]):
            self._erase(word=c != cc[VERASE])
            return
        if c and c == cc[VKILL]:
            if lflag & ECHO and not (lflag & ECHOKE and lflag & ECHOE):
                self._echo(c)
                if lflag & ECHOK:
                    self._emit(b"\n")
                self.edit.clear()
            else:
                while self.edit:
                    self._rubout()
            return
        if c and c == cc[VEOF]:
            self.lines.append(bytes(self.edit))   # ends the line without itself (EOF when empty)
            self.edit.clear()
            return
        self.edit.append(c)
        if c == 10 or (c and c in (cc[VEOL], cc[VEOL2])):
            self.lines.append(bytes(self.edit))
            self.edit.clear()
            if lflag & ECHONL and not lflag & ECHO:
                self._emit(b"\n")
        self._echo(c)

    def _erase(self, word: bool) -> None:
        """VERASE takes one character back, VWERASE the blanks then the word before them."""
        if not word:
            if self.edit:
                self._rubout()
            return
        while self.edit and self.edit[-1] in b" \t":
            self._rubout()
        while self.edit and self.edit[-1] not in b" \t":
            self._rubout()

    def _rubout(self) -> None:
        c = self.edit.pop()
        if self.lflag & ECHO:
            if self.lflag & ECHOE:
                ctl = self.lflag & ECHOCTL and (c < 32 and c not in (9, 10) or c == 127)
                self._emit(b"\b \b\b \b" if ctl else b"\b \b")
            else:
                self._echo(self.cc[VERASE])

    def _echo(self, c: int) -> None:
        if not self.lflag & ECHO:
            return
        if self.lflag & ECHOCTL and (c < 32 and c not in (9, 10) or c == 127):
            self._emit(bytes((94, c ^ 0x40)))
        else:
            self._emit(bytes((c,)))

    def _emit(self, data: bytes) -> None:
        """Output processing (OPOST) into the master's queue."""
        if self.oflag & OPOST:
            if self.oflag & OCRNL:
                data = data.replace(b"\r", b"\n")
            if self.oflag & ONLCR:
                data = data.replace(b"\n", b"\r\n")
        self.out += data

    def slave_write(self, data: bytes) -> int:
        room = BUF_MAX - len(self.out)
        if room <= 0:
            raise SyscallError(EAGAIN)
        data = data[:room]
        self._emit(data)
        self.waitq.notify()
        return len(data)

    def slave_read(self, n: int) -> bytes:
        if self.canonical():
            if not self.lines:
                raise SyscallError(EAGAIN)
            line = self.lines.popleft()
            if len(line) > n:
                self.lines.appendleft(line[n:])
                line = line[:n]
            self.waitq.notify()
            return line
        if not self.raw:
            if self.cc[VMIN] == 0:
                return b""
            raise SyscallError(EAGAIN)
        out = bytes(self.raw[:n])
        del self.raw[:n]
        self.waitq.notify()
        return out

    def master_read(self, n: int) -> bytes:
        if self.out:
            out = bytes(self.out[:n])
            del self.out[:n]
            self.waitq.notify()
            return out
        if self.slave_ever and not self.slave_opens:
            raise SyscallError(EIO)
        raise SyscallError(EAGAIN)

    def set_canonical(self, on: bool) -> None:
        """ICANON changed: typed text moves between the line queue and the raw queue."""
        if on:
            if self.raw:
                self.edit[:0] = self.raw
                self.raw.clear()
        else:
            self.raw[:0] = b"".join(self.lines) + bytes(self.edit)
            self.lines.clear()
            self.edit.clear()

    def flush(self, queue: int, master: bool) -> None:
        """TCFLSH: the input queue of the side asking (the master's input is the output)."""
        inp = queue in (TCIFLUSH, TCIOFLUSH)
        outp = queue in (TCOFLUSH, TCIOFLUSH)
        if master:
            inp, outp = outp, inp
        if inp:
            self.lines.clear()
            self.raw.clear()
            self.edit.clear()
        if outp:
            self.out.clear()
        self.waitq.notify()

    # -- signals and sessions -------------------------------------------------------
    def signal_pgrp(self, signo: int, pgrp: int = 0) -> None:
        from umiak.kernel.signals import make_siginfo, send
        pgrp = pgrp or self.pgrp
        if not pgrp:
            return
        info = make_siginfo(signo, abi.SI_KERNEL)
        for p in list(self.kernel.processes.values()):
            if p.pgid == pgrp and not p.zombie:
                send(self.kernel, p, signo, info)

    def hangup(self) -> None:
        """The master closed: the slave reads EOF, writes EIO; the session leader gets SIGHUP."""
        from umiak.kernel.signals import make_siginfo, send
        if self.session:
            leader = self.kernel.processes.get(self.session)
            if leader is not None and not leader.zombie:
                for signo in (abi.SIGHUP, abi.SIGCONT):
                    send(self.kernel, leader, signo, make_siginfo(signo, abi.SI_KERNEL))
        self.session = self.pgrp = 0
        self.waitq.notify()

    def is_ctty_of(self, proc) -> bool:
        return bool(self.session) and self.session == proc.sid and proc.pid not in self.detached

    def maybe_acquire(self, proc) -> None:
        """open(2) without O_NOCTTY by a session leader without a terminal: it becomes its own."""
        if proc.pid == proc.sid and proc.sid != OUTER_SESSION and not self.session \
                and controlling_tty(self.kernel, proc) is None:
            self.session, self.pgrp = proc.sid, proc.pgid
            self.detached.clear()

    # -- ioctl ----------------------------------------------------------------------
    def ioctl(self, task, req: int, arg: int, master: bool) -> int:
        mm = task.mm
        proc = task.process
        if req in (TCGETS, TCGETS2):
            vals = (self.iflag, self.oflag, self.cflag, self.lflag, self.line, bytes(self.cc))
            if req == TCGETS:
                mm.write(arg, TERMIOS.pack(*vals))
            else:
                mm.write(arg, TERMIOS2.pack(*vals, self.ispeed, self.ospeed))
            return 0
        if not master and req in (TCSETS, TCSETSW, TCSETSF, TCSETS2, TCSETSW2, TCSETSF2, TCFLSH, TIOCSPGRP):
            self.job_control(task, abi.SIGTTOU)
        if req in (TCSETS, TCSETSW, TCSETSF, TCSETS2, TCSETSW2, TCSETSF2):
            two = req in (TCSETS2, TCSETSW2, TCSETSF2)
            vals = mm.read_struct(arg, TERMIOS2 if two else TERMIOS)
            if req in (TCSETSF, TCSETSF2):
                self.flush(TCIFLUSH, master=False)
            was = self.canonical()
            self.iflag, self.oflag, self.cflag, self.lflag, self.line = vals[:5]
            self.cc[:] = vals[5]
            if two:
                self.ispeed, self.ospeed = vals[6], vals[7]
            if was != self.canonical():
                self.set_canonical(self.canonical())
            self.waitq.notify()
            return 0
        if req == TIOCGWINSZ:
            mm.write(arg, WINSIZE.pack(*self.winsize))
            return 0
        if req == TIOCSWINSZ:
            ws = mm.read_struct(arg, WINSIZE)
            if ws != self.winsize:
                self.winsize = ws
                self.signal_pgrp(abi.SIGWINCH)
            return 0
        if req in (TCSBRK, TCSBRKP, TIOCSBRK, TIOCCBRK, TIOCEXCL, TIOCNXCL, TCXONC):
            return 0
        if req == TCFLSH:
            if arg not in (TCIFLUSH, TCOFLUSH, TCIOFLUSH):
                raise SyscallError(EINVAL)
            self.flush(arg, master)
            return 0
        if req == TIOCOUTQ:
            mm.write_u32(arg, 0 if master else len(self.out))
            return 0
        if req == TIOCGETD:
            mm.write_u32(arg, self.line)
            return 0
        if req == TIOCSETD:
            if mm.read_u32(arg) != 0:
                raise SyscallError(EINVAL)
            return 0
        if req == TIOCSCTTY:
            return self._sctty(proc, arg)
        if req == TIOCNOTTY:
            if master or not self.is_ctty_of(proc):
                raise SyscallError(ENOTTY)
            if proc.pid == proc.sid:
                pgrp = self.pgrp
                self.session = self.pgrp = 0
                self.signal_pgrp(abi.SIGHUP, pgrp)
                self.signal_pgrp(abi.SIGCONT, pgrp)
            else:
                self.detached.add(proc.pid)
            return 0
        if req == TIOCGPGRP:
            if not master and not self.is_ctty_of(proc):
                raise SyscallError(ENOTTY)
            mm.write_u32(arg, self.pgrp)
            return 0
        if req == TIOCSPGRP:
            return self._spgrp(proc, mm, arg)
        if req == TIOCGSID:
            if (not master and not self.is_ctty_of(proc)) or not self.session:
                raise SyscallError(ENOTTY)
            mm.write_u32(arg, self.session)
            return 0
        raise SyscallError(ENOTTY)

    def _sctty(self, proc, arg: int) -> int:
        current = controlling_tty(self.kernel, proc)
        if current is self:
            return 0
        if proc.pid != proc.sid or current is not None or proc.sid == OUTER_SESSION:
            raise SyscallError(EPERM)
        if self.session and self.session != proc.sid:
            if not (arg == 1 and proc.creds.capable(CAP_SYS_ADMIN)):
                raise SyscallError(EPERM)
        self.session, self.pgrp = proc.sid, proc.pgid
        self.detached.clear()
        return 0

    def _spgrp(self, proc, mm, arg: int) -> int:
        if not self.is_ctty_of(proc):
            raise SyscallError(ENOTTY)
        pgrp = abi.s32(mm.read_u32(arg))
        if pgrp < 0:
            raise SyscallError(EINVAL)
        members = [p for p in self.kernel.processes.values() if p.pgid == pgrp and not p.zombie]
        if not members:
            raise SyscallError(ESRCH)
        if members[0].sid != proc.sid:
            raise SyscallError(EPERM)
        self.pgrp = pgrp
        return 0


def controlling_tty(kernel, proc) -> "Tty | None":
    """The pty that is proc's controlling terminal, or None (no pty; perhaps the host's)."""
    devpts = getattr(kernel, "devpts", None)
    if devpts is None:
        return None
    for tty in devpts.ttys.values():
        if tty.is_ctty_of(proc):
            return tty
    return None
