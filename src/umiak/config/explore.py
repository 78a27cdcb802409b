"""Exploration (Loupe's method): which traced syscalls a program really needs.

For each syscall a traced run used, the program is rerun under the kernel of that run
(only the calls it used) with that one call answered -ENOSYS (CONFIG_SYSCALLS_STUB),
then, if that failed, with 0 and no effect (CONFIG_SYSCALLS_FAKE). Unlike Loupe, which
stubs one call on Linux, the rest of the kernel is already the app's: a stub whose
fallback needs a call the program never made (no brk: glibc tries mmap) fails. A trial passes when the check passes:
  - no --check: status, stdout and stderr equal those of the full kernel's run;
  - --check CMD: `sh -c CMD` exits 0. It runs after the program ended, with the
    program's stdout on its stdin and UMIAK_STATUS, UMIAK_STDOUT, UMIAK_STDERR (file
    names) in its environment; with --serve it runs while the program runs (a
    server it talks to), and the program is stopped (SIGTERM) when it ends.
needed = neither passed; stub = -ENOSYS passed; fake = only 0 passed. Calls the full
kernel does not implement are stubs already. Because a set of calls may not be
stubbable at once (Loupe's caveat), the whole app kernel is checked last; while it
fails, stubbed and faked calls are made needed again one at a time, from the last; then
all but the last of those are tried back at once (usually one call is the culprit).

Each trial is a fresh `python -m umiak run --config TRIAL` process (a crashed or
hung trial cannot take the exploration down). A trial's config is the traced one with
one string changed, so the explorer resolves the traced config once and caches each
trial's frozen form itself: a trial loads it with marshal instead of kconfiglib
parsing it (~0.7 s of each trial). With --serve, a server that exits while the check
still runs fails the trial at once (the check would only wait for it to its timeout).
"""

import os
import subprocess
import sys
import tempfile

from umiak.errors import UmiakError

NEVER_TRIED = {"exit_group", "exit"}   # answering these 0 leaves a program running past its end


class Trials:
    def __init__(self, argv: list[str], check: str | None, serve: bool, timeout: float, platform: str,
                 root: str | None, workdir: str):
        self.argv, self.check, self.serve, self.timeout = argv, check, serve, timeout
        self.platform, self.root, self.dir = platform, root, workdir
        self.n = 0
        self.baseline: tuple | None = None
        self.runs = 0
        self.limit = timeout    # a trial's time limit: --trial-timeout, then scaled to the baselines
        self.elapsed = 0.0      # the last trial's duration

    def scale_limit(self, *durations: float) -> None:
        """A trial that takes far longer than the full kernel's runs hung (a faked accept4, a
        stubbed write its client waits for): fail it at 3x the slowest baseline plus 1 s
        (at least 3 s, at most --trial-timeout) instead of waiting for --trial-timeout."""
        self.limit = min(self.timeout, max(3.0, 3 * max(durations) + 1))

    def _cmd(self, config: str) -> tuple[list[str], dict]:
        pkg_parent = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        env = dict(os.environ)
        env["PYTHONPATH"] = pkg_parent + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        env.pop("KCONFIG_CONFIG", None)
        cmd = [sys.executable, "-m", "umiak", "run", "--config", config, "--platform", self.platform]
        if self.root:
            cmd += ["--root", self.root]
        return cmd + self.argv, env

    def run(self, fragment: str) -> tuple[int, bytes, bytes]:
        """Run the program under the full kernel changed by `fragment` (.config lines)."""
        self.n += 1
        self.runs += 1
        cfg = os.path.join(self.dir, f"trial{self.n}.config")
        with open(cfg, "w", encoding="utf-8") as f:
            f.write(fragment)
        return self.run_config(cfg)

    def run_config(self, cfg: str) -> tuple[int, bytes, bytes]:
        import time
        start = time.monotonic()
        try:
            return self._run_config(cfg)
        finally:
            self.elapsed = time.monotonic() - start

    def _run_config(self, cfg: str) -> tuple[int, bytes, bytes]:
        cmd, env = self._cmd(cfg)
        out_p, err_p = os.path.join(self.dir, "stdout"), os.path.join(self.dir, "stderr")
        with open(out_p, "wb") as out, open(err_p, "wb") as err:
            proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=err, env=env,
                                    start_new_session=True)
            status = None
            check_status = None
            limit = self.limit
            if self.check and self.serve:
                check_status = self._serve_check(proc, out_p, err_p)
                if proc.poll() is None:
                    proc.terminate()
                limit = min(limit, 2.0)   # the check has decided; a server slow to stop only costs time
            try:
                status = proc.wait(limit)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
                status = -1
        with open(out_p, "rb") as f:
            stdout = f.read()
        with open(err_p, "rb") as f:
            stderr = f.read()
        if check_status is not None:
            return (0 if check_status == 0 else 1), stdout, stderr
        return status, stdout, stderr

    def _run_check(self, status, out_p: str, err_p: str, stdout: bytes | None) -> int:
        env = dict(os.environ, UMIAK_STDOUT=out_p, UMIAK_STDERR=err_p,
                   UMIAK_STATUS="" if status is None else str(status))
        try:
            r = subprocess.run(["sh", "-c", self.check or "true"], input=stdout, env=env, timeout=self.timeout + 5,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            return 124
        return r.returncode

    def _serve_check(self, proc, out_p: str, err_p: str) -> int:
        """The check run while the program serves; the program ending first ends it (after a
        moment: its last answers may still be on their way)."""
        import time
        env = dict(os.environ, UMIAK_STDOUT=out_p, UMIAK_STDERR=err_p, UMIAK_STATUS="")
        check = subprocess.Popen(["sh", "-c", self.check or "true"], env=env, stdin=subprocess.DEVNULL,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + self.limit
        ended = None
        while True:
            try:
                return check.wait(0.05)
            except subprocess.TimeoutExpired:
                pass
            now = time.monotonic()
            if ended is None and proc.poll() is not None:
                ended = now
            if now > deadline or (ended is not None and now - ended > 0.5):
                _kill_group(check)
                return 124

    def passes(self, result: tuple[int, bytes, bytes]) -> bool:
        status, stdout, stderr = result
        if status == -1:
            return False   # timed out
        if self.check:
            if self.serve:
                return status == 0
            return self._run_check(status, os.path.join(self.dir, "stdout"), os.path.join(self.dir, "stderr"),
                                   stdout) == 0
        return result == self.baseline


def check_once(check: str, timeout: float) -> int:
    """Run a --serve check once (the traced run's): its status, 124 when it timed out."""
    proc = subprocess.Popen(["sh", "-c", check], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True,
                            env=dict(os.environ, UMIAK_STATUS="", UMIAK_STDOUT=os.devnull, UMIAK_STDERR=os.devnull))
    try:
        return proc.wait(timeout + 5)
    except subprocess.TimeoutExpired:
        _kill_group(proc)
        return 124


def _kill_group(proc) -> None:
    """Kill a check and whatever it started (a client still waiting for the server)."""
    import signal
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except OSError:
        pass
    proc.wait()


def explore(argv: list[str], recorder, check: str | None = None, serve: bool = False, timeout: float = 20.0,
            platform: str = "auto", root: str | None = None, progress=None,
            only: set[str] | None = None) -> dict[str, str]:
    """syscall name -> needed | stub | fake, for every call the traced run used (with `only`,
    --explore-only: just those are tried; the other traced calls stay needed)."""
    from umiak.kernel.syscalls.table import NUMBERS, SYSCALLS
    if recorder is None:
        raise UmiakError("--explore needs a traced run")
    if serve and not check:
        raise UmiakError("--serve needs --check CMD (the client that exercises the program)")
    if only is not None:
        bad = sorted(n for n in only if n not in NUMBERS)
        if bad:
            raise UmiakError(f"--explore-only: unknown syscall {bad[0]!r}")
    say = progress or (lambda msg: print(f"umiak: {msg}", file=sys.stderr))
    names = list(recorder.syscall_names())
    result: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="umiak-explore-") as d:
        t = Trials(argv, check, serve, timeout, platform, root, d)
        base = t.run("")
        t.baseline = base
        durations = [t.elapsed]
        if not t.passes(base):
            raise UmiakError(f"--explore: {' '.join(argv)} does not pass its check under the full kernel "
                             f"(status {base[0]}); nothing to explore")
        # Trials run under the traced kernel (only the calls the run used), not the full one:
        # a stub whose fallback needs a call the program never made (brk -> mmap) must fail.
        from umiak.config.app import AppFacts, write_app_config
        traced_facts = AppFacts(argv)
        traced_facts.traced, traced_facts.methods = recorder, ["the traced run"]
        base_cfg = os.path.join(d, "traced.config")
        write_app_config(traced_facts, base_cfg)
        with open(base_cfg, encoding="utf-8") as f:
            base_text = f.read()
        from umiak.config.build import freeze
        base_frozen = freeze(base_cfg)
        t.runs += 1
        if not t.passes(t.run_config(base_cfg)):
            raise UmiakError(f"--explore: {' '.join(argv)} does not pass its check under the kernel of its "
                             "traced run (the run may not be repeatable)")
        t.scale_limit(*durations, t.elapsed)

        def under(sym: str, name: str) -> str:
            """The traced config with `name` in CONFIG_<sym>, its frozen form cached already."""
            line = f'CONFIG_{sym}=""\n'
            if line not in base_text or base_frozen["symbols"].get(sym) != "":
                raise UmiakError(f"--explore: CONFIG_{sym} missing from the traced config")
            text = base_text.replace(line, f'CONFIG_{sym}="{name}"\n')
            from umiak.config import store
            store(text.encode(), dict(base_frozen, symbols=dict(base_frozen["symbols"], **{sym: name})))
            return text
        for name in names:
            nr = NUMBERS.get(name)
            if nr is None or not SYSCALLS[nr][1]:
                result[name] = "stub"   # the full kernel answers -ENOSYS already
                continue
            if name in NEVER_TRIED or (only is not None and name not in only):
                result[name] = "needed"
                continue
            if t.passes(t.run(under("SYSCALLS_STUB", name))):
                result[name] = "stub"
            elif t.passes(t.run(under("SYSCALLS_FAKE", name))):
                result[name] = "fake"
            else:
                result[name] = "needed"
        say(f"explored {len(names)} syscalls in {t.runs} trials: "
            + ", ".join(f"{k} {sum(1 for v in result.values() if v == k)}" for k in ("needed", "stub", "fake")))
        # all at once: the app kernel itself
        def app_kernel_passes(classes: dict[str, str]) -> bool:
            facts = AppFacts(argv)
            facts.traced, facts.explored, facts.methods = recorder, dict(classes), ["exploration"]
            cfg = os.path.join(d, "app.config")
            write_app_config(facts, cfg)
            t.runs += 1
            return t.passes(t.run_config(cfg))
        candidates = [n for n in names if result[n] in ("stub", "fake") and NUMBERS.get(n) is not None
                      and SYSCALLS[NUMBERS[n]][1]]
        popped: list[tuple[str, str]] = []
        while not app_kernel_passes(result):
            if not candidates:
                raise UmiakError("--explore: the program fails under its explored kernel even with every "
                                 "traced call implemented")
            back = candidates.pop()
            popped.append((back, result[back]))
            result[back] = "needed"
        if len(popped) > 1:
            # Usually one call is the culprit, the last one made needed: one more trial puts the
            # others back (python3 -c: 13 calls were made needed, fcntl alone had to be).
            others = dict(result, **dict(popped[:-1]))
            if app_kernel_passes(others):
                result, popped = others, popped[-1:]
        for back, kind in popped:
            say(f"{back} cannot be {'stubbed' if kind == 'stub' else 'faked'} together with the others: needed")
    return result


__all__ = ["explore"]
