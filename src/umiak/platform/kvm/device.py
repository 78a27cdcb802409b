"""Opening /dev/kvm, with errors that say how to fix the problem."""

import errno
import os

KVM_PATH = "/dev/kvm"


def open_kvm() -> int:
    """Open /dev/kvm or raise PlatformUnavailable with the fix in the message."""
    from umiak.errors import PlatformUnavailable
    try:
        return os.open(KVM_PATH, os.O_RDWR | os.O_CLOEXEC)
    except FileNotFoundError:
        raise PlatformUnavailable(
            f"{KVM_PATH} does not exist: enable virtualization (VT-x/AMD-V, or nested "
            "virtualization for a VM) and load the kvm module, or use --platform=emu") from None
    except PermissionError:
        raise PlatformUnavailable(
            f"no permission to open {KVM_PATH}: add yourself to its group "
            f"(sudo usermod -aG kvm $USER, then log in again) or use --platform=emu") from None
    except OSError as e:
        if e.errno == errno.ENXIO or e.errno == errno.ENODEV:
            raise PlatformUnavailable(f"{KVM_PATH} has no driver behind it: load kvm_intel, "
                                      "kvm_amd or kvm_pvm, or use --platform=emu") from None
        raise PlatformUnavailable(f"cannot open {KVM_PATH}: {e.strerror}") from None


def kvm_problem() -> str | None:
    """None when KVM can be used here, else a one-line reason with the fix."""
    from umiak.errors import PlatformUnavailable
    try:
        fd = open_kvm()
    except PlatformUnavailable as e:
        return str(e)
    os.close(fd)
    return None


def flavour() -> str:
    """'pvm' or 'hardware' (VMX/SVM): the one place where the two differ is named here.

    Under PVM a `syscall` from ring 3 stays at CPL3 and `sysretq` cannot be used, so
    the host returns from a syscall by writing RIP/RFLAGS itself. Under VMX/SVM the
    entry stub runs at CPL0 and returns with its own `sysretq`. UMIAK_KVM_FLAVOUR
    overrides the detection.
    """
    forced = os.environ.get("UMIAK_KVM_FLAVOUR")
    if forced in ("pvm", "hardware"):
        return forced
    if os.path.isdir("/sys/module/kvm_pvm"):
        return "pvm"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    flags = line.split()
                    return "hardware" if ("vmx" in flags or "svm" in flags) else "pvm"
    except OSError:
        pass
    return "hardware"
