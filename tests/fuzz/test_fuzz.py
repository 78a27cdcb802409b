"""Syscall fuzzing: batches of random syscalls (hypothesis, seeded, shrinking) and of
mutated real ones (the --strace of existing guest programs) run by a guest harness
(tests/guest/fuzz_syscalls.c) in VMs of one Python process (tests/fuzz/driver.py).

Pass: umiak never fails itself (status 125, "internal error", a traceback, Machine.run
raising), no batch hangs (BATCH_DEADLINE), and the driver process's open fds and threads
do not grow across batches (RSS is bounded too). The guest program's own outcome (an
errno, a signal it got) is not judged: it is what the fuzzing is for.

Short in CI; the long run (the seed varies with UMIAK_FUZZ_SEED):
    UMIAK_FUZZ_EXAMPLES=100000 UMIAK_TEST_PLATFORMS=kvm python3 -m pytest -q tests/fuzz
"""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from harness import BUILD, EXIT_UMIAK_FAILURE, build, run_umiak, umiak_env

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402

import fuzzlib  # noqa: E402  (tests/fuzz is on sys.path: pytest's rootdir-relative import)

HERE = Path(__file__).resolve().parent
EXAMPLES = int(os.environ.get("UMIAK_FUZZ_EXAMPLES", "25"))
SEED = os.environ.get("UMIAK_FUZZ_SEED")
BATCH_DEADLINE = 30.0
FD_GROWTH, THREAD_GROWTH, RSS_GROWTH_KIB = 6, 2, 64 << 10   # as tests/test_soak.py (a background fd closer)
TRACED = [("files", []), ("net_unix", []), ("more_calls", [])]
STATS = {"calls": 0, "batches": 0}


def _settings():
    kw = dict(max_examples=EXAMPLES, deadline=None, database=None, print_blob=True,
              suppress_health_check=list(HealthCheck))
    if SEED is None:
        kw["derandomize"] = True
    return settings(**kw)


def _seeded(f):
    return hypothesis.seed(int(SEED))(f) if SEED is not None else f


class Driver:
    """One driver process (restarted after a hang); batches go through files."""

    def __init__(self, platform: str):
        self.platform = platform
        self.program = str(build("fuzz_syscalls", "glibc-static"))
        self.dir = tempfile.TemporaryDirectory(prefix="umiak-fuzz-")
        self.volume = Path(self.dir.name) / "vol"
        self.volume.mkdir()
        self.n = 0
        self.proc: subprocess.Popen | None = None
        self.first: dict | None = None
        self.last: dict | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen([sys.executable, str(HERE / "driver.py"), self.platform, self.program,
                                      str(self.volume)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, env=umiak_env(), cwd=self.dir.name)
        self.first = None

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None

    def run(self, calls: list[fuzzlib.Call]) -> dict:
        if self.proc is None:
            self.start()
        assert self.proc is not None and self.proc.stdin is not None and self.proc.stdout is not None
        self.n += 1
        path = Path(self.dir.name) / f"batch{self.n % 4}"
        path.write_bytes(fuzzlib.encode_batch(calls))
        self.proc.stdin.write(f"{path}\n".encode())
        self.proc.stdin.flush()
        ready, _, _ = select.select([self.proc.stdout], [], [], BATCH_DEADLINE)
        line = self.proc.stdout.readline() if ready else b""
        if not line:
            err = b""
            if ready:   # the driver died
                err = self.proc.stderr.read() if self.proc.stderr else b""
            self.stop()
            # Kept where the test session's temporary files do not go (tests/.build is ignored by git).
            saved = BUILD / "fuzz-failures" / f"{'hang' if not ready else 'crash'}-{os.getpid()}-{self.n}"
            saved.parent.mkdir(parents=True, exist_ok=True)
            path.replace(saved)
            raise AssertionError(("hang: no result in %ss" % BATCH_DEADLINE if not ready else
                                  "the driver process died") + f" (batch kept as {saved})\n"
                                 + err.decode("utf-8", "replace")[-4000:])
        result = json.loads(line)
        STATS["calls"] += result["calls"]
        STATS["batches"] += 1
        if self.first is None:
            self.first = result
        self.last = result
        return result


@pytest.fixture(scope="module")
def drivers():
    made: dict[str, Driver] = {}
    yield made
    for d in made.values():
        d.stop()
        d.dir.cleanup()
    print(f"\nfuzz: {STATS['calls']} syscalls executed in {STATS['batches']} batches")


def _driver(drivers, platform) -> Driver:
    if platform not in drivers:
        drivers[platform] = Driver(platform)
    return drivers[platform]


def check(result: dict) -> None:
    """Only umiak's own failures fail: the guest's outcome is whatever Linux would make it."""
    err = result["stderr"]
    problems = [what for what, bad in [
        ("umiak's failure status 125", result["status"] == EXIT_UMIAK_FAILURE),
        ("Machine.run raised", result["status"] == -1),
        ("an internal error", "internal error" in err),
        ("a Python traceback", "Traceback" in err),
    ] if bad]
    assert not problems, f"{', '.join(problems)}: status {result['status']}\n{err}\nlast: {result['last']}"


def _issue(driver: Driver, calls: list[fuzzlib.Call]) -> None:
    sane = [c for c in (fuzzlib.sanitize(c) for c in calls) if c is not None]
    check(driver.run(sane))


def _fuzz(driver: Driver, batches) -> None:
    """Hypothesis draws batches and the driver's VM runs each; then the leak check."""
    @_seeded
    @_settings()
    @given(batches)
    def run(calls):
        _issue(driver, calls)

    run()
    _check_no_leak(driver)


def test_random_syscalls(platform, drivers):
    from umiak.kernel.syscalls.table import NAMES
    _, batches = fuzzlib.strategies(NAMES)
    _fuzz(_driver(drivers, platform), batches)


@pytest.fixture(scope="module")
def corpus() -> list[fuzzlib.Call]:
    """The calls the existing guest programs make, from umiak's own --strace (kvm when usable)."""
    from umiak.kernel.syscalls.table import NAMES
    numbers = {name: nr for nr, name in NAMES.items()}
    calls: list[fuzzlib.Call] = []
    with tempfile.TemporaryDirectory() as d:
        for name, args in TRACED:
            log = Path(d) / f"{name}.trace"
            run_umiak("auto", [build(name, "glibc-static"), *args], options=["--strace", f"--strace-file={log}"], cwd=d)
            if log.exists():
                calls += fuzzlib.parse_trace(log.read_text(errors="replace"), numbers)
    calls = [c for c in calls if c.nr not in fuzzlib.SKIPPED]
    assert len(calls) > 100, f"only {len(calls)} calls traced"
    return calls


def test_mutated_real_syscalls(platform, drivers, corpus):
    from umiak.kernel.syscalls.table import NAMES
    _fuzz(_driver(drivers, platform), fuzzlib.mutation_strategy(corpus, NAMES))


def _check_no_leak(driver: Driver) -> None:
    """A few more batches of harmless calls, then the driver's fds, threads, RSS against the first batch's."""
    for _ in range(3):
        check(driver.run([fuzzlib.Call(39, [0] * 6)]))   # getpid
    first, last = driver.first, driver.last
    assert first is not None and last is not None
    print(f"\nfuzz driver ({driver.platform}): fds {first['fds']} -> {last['fds']}, threads "
          f"{first['threads']} -> {last['threads']}, RSS {first['rss']} -> {last['rss']} KiB")
    assert last["fds"] <= first["fds"] + FD_GROWTH, (first, last)
    assert last["threads"] <= first["threads"] + THREAD_GROWTH, (first, last)
    assert last["rss"] <= first["rss"] + RSS_GROWTH_KIB, (first, last)
