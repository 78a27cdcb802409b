"""The software-CPU platform: Unicorn (QEMU's TCG) runs the guest; no /dev/kvm needed.

See machine.py for the design. Importing this package does not import unicorn;
`emu_problem()` does, only to check that it is there.
"""

UNICORN_VERSION = "2.1.4"


def emu_problem() -> str | None:
    """None when the emu platform can run here, else a one-line reason with the fix."""
    try:
        import unicorn
    except ImportError:
        return f"the unicorn package is not installed: pip install unicorn=={UNICORN_VERSION}"
    except OSError as e:  # the shared library inside the wheel failed to load
        return f"the unicorn library cannot be loaded ({e}): pip install --force-reinstall unicorn=={UNICORN_VERSION}"
    version = getattr(unicorn, "__version__", "")
    if not version.startswith("2."):
        return f"unicorn {version} is too old (need 2.x): pip install unicorn=={UNICORN_VERSION}"
    return None
