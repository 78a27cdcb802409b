"""Which Kconfig component each syscall belongs to (its `depends on`), by Linux name.

Names, not table.py's family column, decide it: families are module names and
change as modules split, while a syscall's name and purpose do not. A syscall
no rule names belongs to the core (always there unless its own symbol is off).
"""

import fnmatch

# component symbol -> syscall name globs
COMPONENT_SYSCALLS: dict[str, tuple[str, ...]] = {
    "SIGNALS": ("rt_sig*", "sigaltstack", "kill", "tkill", "tgkill", "pause"),
    "POSIX_TIMERS": ("timer_*",),
    "ITIMERS": ("getitimer", "setitimer", "alarm"),
    "FUTEX": ("futex", "futex_*"),
    "EVENTFD": ("eventfd", "eventfd2"),
    "SIGNALFD": ("signalfd", "signalfd4"),
    "TIMERFD": ("timerfd_*",),
    "MEMFD": ("memfd_create",),
    "SYSVIPC": ("shm*", "sem*", "msg*"),
    "POSIX_MQUEUE": ("mq_*",),
    "INOTIFY_USER": ("inotify_*",),
    "EPOLL": ("epoll_*",),
    "POLL": ("poll", "ppoll"),
    "SELECT": ("select", "pselect6"),
    "FILE_LOCKS": ("flock",),
    "XATTR": ("*xattr",),
    "THREADS": ("clone", "clone3"),
    "EXECVE": ("execve", "execveat"),
    "PROCESSES": ("fork", "vfork", "wait4", "waitid", "pidfd_*"),
    "NET": ("socket", "socketpair", "bind", "connect", "listen", "accept", "accept4", "getsockname",
            "getpeername", "sendto", "recvfrom", "sendmsg", "recvmsg", "sendmmsg", "recvmmsg",
            "shutdown", "setsockopt", "getsockopt"),
}

# Families whose every syscall belongs to one component when no name rule says otherwise.
FAMILY_COMPONENTS = {"net": "NET"}

# Component symbols with a menu entry but no syscalls, for `umiak config show`.
OTHER_COMPONENTS = ("FCNTL_LOCKS", "PLATFORM_KVM", "PLATFORM_EMU", "LOADER_DYNAMIC", "BINFMT_SCRIPT", "VDSO", "ASLR",
                    "HOSTFS", "OVERLAY_ROOT", "EXT4", "TMPFS", "DEVFS", "PROCFS", "SYSFS", "IDENTITY_FILES",
                    "VOLUMES", "NET_UNIX", "NET_INET", "NET_INET6", "NET_NETLINK", "NET_MODE_HOST",
                    "NET_MODE_PRIVATE", "NET_MODE_NONE", "STRACE", "SYSCALL_SUMMARY", "VERBOSE")

VALUES = ("GUEST_MEMORY_MB", "MAX_THREADS", "PIPE_BUFFER_SIZE", "FAULT_AROUND_MAX_PAGES",
          "EMU_TIME_SLICE_US", "FD_LIMIT")


def component_of(name: str, family: str | None) -> str | None:
    """The component symbol a syscall depends on, or None for the core."""
    for comp, globs in COMPONENT_SYSCALLS.items():
        if any(fnmatch.fnmatchcase(name, g) for g in globs):
            return comp
    return FAMILY_COMPONENTS.get(family or "")


def syscall_symbol(name: str) -> str:
    return "SYSCALL_" + name.upper()
