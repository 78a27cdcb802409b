"""Everything that shapes one run, as given on the command line or to `Machine`."""

from umiak.records import field, record


@record
class RunOptions:
    mem_size: int = 1 << 30            # guest RAM in bytes (-m)
    platform: str = "auto"             # kvm | emu | auto
    env: dict[str, str] | None = None  # guest environment; None = a clean default
    cwd: str | None = None             # guest working directory; None = the host's
    aslr: bool = True
    hostname: str = "umiak"
    verbose: bool = False
    strace: bool = False
    strace_file: str | None = None
    trace_filter: str | None = None    # globs separated by ',' or '|'
    strace_timestamps: bool = False    # relative timestamps on each strace line
    syscall_summary: bool = False
    # Host fds the guest gets as 0, 1, 2 (None: umiak's own stdin/stdout/stderr).
    stdio: tuple[int, int, int] | None = None
    cpus: int | None = None            # vCPUs the guest may use (default: the host's cores)
    cpu: str | None = None             # CPU model (umiak.arch.x86_64.cpumodel): host | baseline; None: host, or a snapshot's
    prewarm: bool = True               # Machine: build the next run's VM in the background (close() releases it)
    vdso: bool = True                  # serve clocks from a vDSO inside the guest when the CPU allows
    rewrite: bool = True               # with the exitless path: rewritten syscall sites (--no-rewrite)
    max_threads: int = 4096            # clone beyond this gives EAGAIN
    # File systems (umiak.kernel.vfs): the guest's root (None: the host's /, read-only) and
    # volumes "HOST:GUEST[:ro]" (or (host, guest, readonly) tuples) mounted over it.
    root: str | None = None
    image_root: str | None = None      # an ext2/3/4 image file as / (umiak.kernel.vfs.ext4), instead of root
    volumes: list = field(default_factory=list)
    tmpfs: list = field(default_factory=list)     # guest paths of extra tmpfs mounts (/tmp always has one)
    net: str = "host"                  # host | private | none (--net)
    publish: list = field(default_factory=list)   # (host addr, host port, guest port, "tcp"|"udp") (-p)
    uid: int = 0
    gid: int = 0
    # The kernel's configuration (umiak.config.load: a FrozenConfig); None: the full kernel.
    kernel_config: object = None
    extra: dict = field(default_factory=dict)


def parse_size(text: str) -> int:
    """'256M', '1G', '65536', '512k' -> bytes."""
    units = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}
    t = text.strip().lower().rstrip("ib").rstrip("b") if text.strip().lower().endswith(("ib", "b")) else text.strip().lower()
    if t and t[-1] in units:
        return int(float(t[:-1]) * units[t[-1]])
    return int(t)


def split_program_args(argv: list[str]) -> tuple[list[str], list[str]]:
    """(umiak's own arguments, the program's) of a command line `... -- ARGS`: what follows
    the first `--` is the program's, never parsed as umiak's options."""
    if "--" not in argv:
        return argv, []
    i = argv.index("--")
    return argv[:i], argv[i + 1:]
