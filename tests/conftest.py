"""pytest wiring: which platforms to test, and the build-variant parameter.

A test that takes a `platform` argument runs once per platform:
  --platform=kvm,emu  or  UMIAK_TEST_PLATFORMS=kvm,emu   (explicit: must be usable)
  default: every platform umiak knows, skipped with the reason where unusable here.
Tests marked `exit_modes` also run on "kvm-exits" (every syscall a VM exit: kvm, the default,
serves calls without exits where that pays), "kvm-exitless" (the exitless path forced on) and
"kvm-norewrite" (the same, syscall sites not rewritten) where kvm runs: a small chosen subset,
so the whole suite is not run once per mode (harness.PLATFORM_MODES; naming one of them in
--platform runs every test in that mode).
A test that takes a `variant` argument runs once per build variant of the guest
programs (harness.VARIANTS).
"""

import os
import sys
from functools import lru_cache
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
if str(SRC) not in sys.path:
    sys.path.insert(0, str(SRC))

import harness  # noqa: E402  (tests/ is on sys.path: rootdir-relative conftest)


def pytest_addoption(parser):
    parser.addoption("--platform", action="store", default=None,
                     help="comma-separated umiak platforms to test (kvm, emu); "
                          "default: $UMIAK_TEST_PLATFORMS or every usable platform")


@lru_cache(maxsize=None)
def platform_problems() -> dict[str, str | None]:
    """platform name -> None when usable here, else why not (umiak's own words)."""
    try:
        from umiak.platform import PLATFORM_NAMES, platform_problem
    except Exception as e:  # umiak not importable at all: every test will say so
        return {"kvm": f"umiak.platform not importable: {e}"}
    problems = {}
    for name in PLATFORM_NAMES:
        try:
            problems[name] = platform_problem(name)
        except Exception as e:  # a platform still being written
            problems[name] = f"{type(e).__name__}: {e}"
    return problems


def requested_platforms(config) -> list[str] | None:
    text = config.getoption("--platform") or os.environ.get("UMIAK_TEST_PLATFORMS")
    if not text:
        return None
    return [p.strip() for p in text.split(",") if p.strip()]


def pytest_configure(config):
    config.addinivalue_line("markers", "exit_modes: also run on kvm-exits, kvm-exitless and kvm-norewrite (kvm, the default, is exitless auto)")
    _default_signals()


def _default_signals():
    """Signals this run was started with ignored (`nohup`, a shell's `&`) get their default
    action back: native runs and umiak (which passes SIG_IGN on, as execve does) both inherit
    them, and the tests that send SIGHUP or SIGINT expect the default."""
    import signal
    from umiak.cli import _ignored_signals
    for signo in _ignored_signals():
        try:
            signal.signal(signo, signal.default_int_handler if signo == signal.SIGINT else signal.SIG_DFL)
        except (OSError, ValueError):   # a number the host does not let Python set
            continue


def pytest_generate_tests(metafunc):
    if "platform" in metafunc.fixturenames:
        wanted = requested_platforms(metafunc.config)
        names = wanted if wanted else list(platform_problems())
        if metafunc.definition.get_closest_marker("exit_modes") and "kvm" in names:
            names = names + [m for m in harness.EXTRA_MODES if m not in names]
        metafunc.parametrize("platform", names, indirect=True)
    if "variant" in metafunc.fixturenames:
        metafunc.parametrize("variant", list(harness.VARIANTS))


@pytest.fixture
def platform(request, monkeypatch):
    """The umiak platform name; a mode (kvm-exits, kvm-exitless, kvm-norewrite) is kvm with its
    environment set for the test (umiak processes and in-process VMs alike)."""
    name = request.param
    base, extra = harness.platform_env(name)
    problem = platform_problems().get(base, f"unknown platform {name!r}")
    if problem:
        if requested_platforms(request.config):
            pytest.fail(f"platform {name} was requested but is not usable: {problem}")
        pytest.skip(f"platform {name} not usable here: {problem}")
    for k, v in extra.items():
        monkeypatch.setenv(k, v)
    return base


@pytest.fixture(scope="module")
def private_cache(tmp_path_factory):
    """A test module's own XDG cache (frozen configs, static-analysis results, snapshots),
    so its first runs resolve and nothing it caches reaches other modules; no
    KCONFIG_CONFIG from the environment."""
    old = os.environ.get("XDG_CACHE_HOME")
    os.environ["XDG_CACHE_HOME"] = str(tmp_path_factory.mktemp("cache"))
    os.environ.pop("KCONFIG_CONFIG", None)
    yield
    if old is None:
        os.environ.pop("XDG_CACHE_HOME", None)
    else:
        os.environ["XDG_CACHE_HOME"] = old
