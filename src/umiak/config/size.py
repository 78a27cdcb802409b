"""`umiak config size`: the "kernel size" of configs, the figure OSv gives as "loader.elf
is N KB and uses M MB": syscalls present, components y/m/n, and, measured in a fresh
`umiak run` at the moment the program's first instruction is about to run, the Python
modules and source lines imported, their bytecode bytes, the host RSS, and the time
from the process's start.
"""

import json
import os
import subprocess
import sys
import tempfile
import time

from umiak.errors import UmiakError

# Runs `umiak run ...` (argv) in this fresh interpreter and records, when the kernel is
# about to run the first task, what is imported and the RSS. Nothing is imported
# before the command line starts but the kernel module it would import anyway.
_PROBE = r"""
import os, sys, time
from umiak.kernel import kernel as _k
_orig = _k.Kernel.run
def _run(self, task):
    t = time.time()
    import resource
    ru = resource.getrusage(resource.RUSAGE_SELF)
    mods = {n: getattr(m, "__file__", None) for n, m in list(sys.modules.items())}
    rss = 0
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1]) * 1024
    _data.update(t=t, cpu=ru.ru_utime + ru.ru_stime, rss=rss, modules=mods)
    _dump()
    return _orig(self, task)
_data = {}
def _dump():
    import json
    with open(os.environ["UMIAK_SIZE_OUT"], "w") as f:
        json.dump(_data, f)
def _at_exit():   # what the whole run imported (modules made on first use included)
    if _data:
        _data["exit_modules"] = {n: getattr(m, "__file__", None) for n, m in list(sys.modules.items())}
        _dump()
import atexit
atexit.register(_at_exit)
_k.Kernel.run = _run
from umiak.cli import main
sys.exit(main(sys.argv[1:]))
"""


def _file_cost(path: str | None, cache: dict) -> tuple[int, int]:
    """(source lines, marshalled bytecode bytes) of a module's source file (0, 0 if none)."""
    if not path or not path.endswith(".py"):
        return 0, 0
    if path not in cache:
        import marshal
        try:
            with open(path, "rb") as f:
                src = f.read()
            cache[path] = (src.count(b"\n"), len(marshal.dumps(compile(src, path, "exec"))))
        except (OSError, SyntaxError, ValueError):
            cache[path] = (0, 0)
    return cache[path]


def measure(cfg_args: list[str], program: str, runs: int) -> dict:
    """Start `umiak run CFG_ARGS PROGRAM` `runs` times; the best start time and RSS."""
    pkg_parent = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env = dict(os.environ)
    env["PYTHONPATH"] = pkg_parent + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    # As a user meets it: with Python's bytecode cache (one uncounted run writes it, and
    # resolves the config into the frozen cache).
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    subprocess.run([sys.executable, "-c", "import sys; from umiak.cli import main; sys.exit(main(sys.argv[1:]))",
                    "run", *cfg_args, program], env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    best: dict = {}
    cache: dict = {}
    for _ in range(max(1, runs)):
        with tempfile.NamedTemporaryFile(prefix="umiak-size-", suffix=".json", delete=False) as tf:
            out = tf.name
        env["UMIAK_SIZE_OUT"] = out
        try:
            t0 = time.time()
            p = subprocess.run([sys.executable, "-c", _PROBE, "run", *cfg_args, program], env=env,
                               stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            try:
                with open(out, encoding="utf-8") as f:
                    data = json.load(f)
            except (OSError, ValueError):
                err = p.stderr.decode(errors="replace").strip().splitlines()
                raise UmiakError(f"size {' '.join(cfg_args) or '(no config)'}: the run did not start: "
                                 f"{err[-1] if err else 'status ' + str(p.returncode)}") from None
        finally:
            try:
                os.unlink(out)
            except OSError:
                pass
        start = data["t"] - t0
        mods = data["modules"]
        umiak = {n: f for n, f in mods.items() if n == "umiak" or n.startswith("umiak.")}
        lines = byts = 0
        for f in umiak.values():
            a, b = _file_cost(f, cache)
            lines, byts = lines + a, byts + b
        all_lines = sum(_file_cost(f, cache)[0] for f in mods.values())
        at_exit = {n: f for n, f in data.get("exit_modules", {}).items() if n == "umiak" or n.startswith("umiak.")}
        row = {"modules": len(mods), "umiak_modules": len(umiak), "umiak_lines": lines, "all_lines": all_lines,
               "exit_umiak_modules": len(at_exit),
               "exit_umiak_lines": sum(_file_cost(f, cache)[0] for f in at_exit.values()),
               "umiak_bytecode": byts, "rss": data["rss"], "start": start, "cpu": data["cpu"],
               "net_modules": sorted(n for n in umiak if ".net" in n),
               "kconfiglib": "kconfiglib" in mods}
        if not best or start < best["start"]:
            best = dict(row, rss=min(best.get("rss", row["rss"]), row["rss"]),
                        cpu=min(best.get("cpu", row["cpu"]), row["cpu"]))
        else:
            best["rss"], best["cpu"] = min(best["rss"], row["rss"]), min(best["cpu"], row["cpu"])
    return best


def _static_counts(cfg) -> tuple[int, tuple[int, int, int]]:
    from umiak.config.rules import COMPONENT_SYSCALLS, OTHER_COMPONENTS
    from umiak.kernel.syscalls.table import SYSCALLS
    comps = list(COMPONENT_SYSCALLS) + [c for c in OTHER_COMPONENTS if c not in COMPONENT_SYSCALLS]
    if cfg is None:   # no config: the full kernel (the full profile's components)
        from umiak.config import load
        _, counts = _static_counts(load(profile="full"))
        return sum(1 for e in SYSCALLS.values() if e[1]), counts
    vals = [cfg.value(c) for c in comps]
    return len(cfg.syscalls), (vals.count("y"), vals.count("m"), len(vals) - vals.count("y") - vals.count("m"))


def size_command(args) -> int:
    from umiak.config import load, profile_names
    targets: list[tuple[str, list[str], object]] = []
    for name in args.profile:
        targets.append((name, ["--profile", name], load(profile=name)))
    for path in args.config:
        targets.append((path, ["--config", path], load(config=path)))
    if not targets:
        targets = [(n, ["--profile", n], load(profile=n)) for n in profile_names()]
        targets.insert(0, ("(none)", [], None))
    program = args.program or "/bin/true"
    rows = []
    for label, cfg_args, cfg in targets:
        present, (y, m, n) = _static_counts(cfg)
        env_kc = os.environ.pop("KCONFIG_CONFIG", None) if not cfg_args else None
        try:
            fig = measure(cfg_args, program, args.runs)
        finally:
            if env_kc is not None:
                os.environ["KCONFIG_CONFIG"] = env_kc
        rows.append(dict(fig, config=label, syscalls=present, y=y, m=m, n=n))
    if args.json:
        print(json.dumps(rows, indent=1))
        return 0
    head = ("config", "syscalls", "y/m/n", "modules", "umiak mods", "umiak lines", "bytecode KB",
            "RSS MB", "start ms", "CPU ms", "mods at exit", "lines at exit")
    table = [head] + [(r["config"], str(r["syscalls"]), f"{r['y']}/{r['m']}/{r['n']}", str(r["modules"]),
                       str(r["umiak_modules"]), str(r["umiak_lines"]), f"{r['umiak_bytecode'] / 1024:.0f}",
                       f"{r['rss'] / (1 << 20):.1f}", f"{r['start'] * 1000:.0f}", f"{r['cpu'] * 1000:.0f}",
                       str(r["exit_umiak_modules"]), str(r["exit_umiak_lines"]))
                      for r in rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(head))]
    for row in table:
        print("  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True))))
    print(f"(at the first guest instruction of {program}; best of {args.runs} runs, bytecode cache warm; "
          "start: wall time from the interpreter's start; CPU: its user+system time by then;\n"
          " at exit: umiak's modules and source lines the whole run imported, those made on first use included)")
    return 0
