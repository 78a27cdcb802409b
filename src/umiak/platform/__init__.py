"""CPU platforms: the guest CPU and guest memory behind one interface.

`kvm` runs guest code natively under hardware virtualization; `emu` runs it on
Unicorn's software CPU. Nothing above this package knows which one runs.
"""

from umiak.platform.base import ExitKind, Fault, Platform, Vcpu

__all__ = ["ExitKind", "Fault", "Platform", "Vcpu", "open_platform", "available_platforms", "platform_problem",
           "wait_released"]

PLATFORM_NAMES = ("kvm", "emu")


def platform_problem(name: str) -> str | None:
    """None when the named platform can run here, else why not (for a user to read)."""
    if name == "kvm":
        from umiak.platform.kvm.device import kvm_problem
        return kvm_problem()
    if name == "emu":
        from umiak.platform.emu import emu_problem
        return emu_problem()
    return f"unknown platform {name!r} (choose from {', '.join(PLATFORM_NAMES)}, auto)"


def available_platforms() -> dict[str, str | None]:
    """Each platform name mapped to None when usable here, else why not."""
    return {name: platform_problem(name) for name in PLATFORM_NAMES}


def choose_platform(name: str = "auto") -> tuple[str, str]:
    """Resolve 'auto' (kvm when usable, else emu); returns (name, reason)."""
    from umiak.errors import PlatformUnavailable
    if name != "auto":
        problem = platform_problem(name)
        if problem:
            raise PlatformUnavailable(f"platform {name}: {problem}")
        return name, f"{name} requested"
    kvm = platform_problem("kvm")
    if kvm is None:
        return "kvm", "auto: /dev/kvm is usable"
    emu = platform_problem("emu")
    if emu is None:
        return "emu", f"auto: kvm unusable ({kvm})"
    raise PlatformUnavailable(f"no platform can run here: kvm: {kvm}; emu: {emu}")


def open_platform(name: str, mem_size: int, cpu: str = "host") -> Platform:
    """Create a fresh VM of the named platform with mem_size bytes of guest RAM, presenting
    the CPU model cpu (umiak.arch.x86_64.cpumodel: host or baseline)."""
    if name == "kvm":
        from umiak.platform.kvm.machine import KvmPlatform
        return KvmPlatform(mem_size, cpu)
    if name == "emu":
        from umiak.platform.emu.machine import EmuPlatform
        return EmuPlatform(mem_size, cpu)
    raise ValueError(name)


def wait_released() -> None:
    """Return once every VM closed so far has given its host resources back (KVM closes
    VM fds on a background thread, so that a finished run returns at once)."""
    import sys
    kvm = sys.modules.get("umiak.platform.kvm.machine")
    if kvm is not None:
        kvm.wait_closed()
