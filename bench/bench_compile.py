"""How long checking and compiling take as a repository grows. Prints figures; asserts nothing
(tests assert the behaviour that decides performance, never wall-clock time).

    python bench/bench_compile.py [--tables 1000 2000] [--repeat 1] [--keep DIR]

For each size it writes the synthetic repository of bench/synthetic.py (10 columns per table,
tag and column masks, a filter per table, restrictions, five projects) and runs, each in a fresh
interpreter so that peak memory is that command's own:

* `veil check` as a user runs it, interpreter start-up included: cold (the check cache emptied
  first), on two processes and on one; again with nothing changed; after a comment is appended
  to one catalog file of 100 tables (its IR is unchanged); after a column is added to one table
  of that file (that file is checked again with the context files, the other files' results
  are read from the check cache: docs/performance.md, "Checking file by file");
* for each target, load + check + compile: CPU and wall seconds of the compile alone
  (`compile_program`), peak RSS of the process, and the script's size (on one process,
  `VEIL_JOBS=1`, and without the check cache, so the figures compare across sizes).

With `--repeat N` every figure is the median of N runs. The cache lives in the repository's
`.veil-cache/` folder (see docs/performance.md).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import synthetic  # noqa: E402

TARGETS = ("postgres", "snowflake", "databricks")


def child(target: str, repo: str) -> None:
    """One measured run in this process; prints one JSON object."""
    import resource

    from veil.api import check, compile_program

    wall0, cpu0 = time.perf_counter(), time.process_time()
    checked = check([repo])
    wall1, cpu1 = time.perf_counter(), time.process_time()
    if checked.program is None:
        raise SystemExit(f"the synthetic repository does not check: {checked.diagnostics[:3]}")
    out: dict[str, float] = {"check_wall": wall1 - wall0, "check_cpu": cpu1 - cpu0}
    if target != "check":
        sql, diags = compile_program(checked.program, target)
        if sql is None:
            raise SystemExit(f"{target} does not compile: {diags[:3]}")
        out["wall"] = time.perf_counter() - wall1
        out["cpu"] = time.process_time() - cpu1
        out["bytes"] = len(sql.encode())
    out["rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(out))


def run_child(target: str, repo: Path) -> dict[str, float]:
    done = subprocess.run(
        [sys.executable, __file__, "--child", target, str(repo)],
        check=True,
        capture_output=True,
        text=True,
        env={**os.environ, "VEIL_NO_CACHE": "1", "VEIL_JOBS": "1"},
    )
    result: dict[str, float] = json.loads(done.stdout.splitlines()[-1])
    return result


def veil_check(repo: Path, **env: str) -> tuple[float, float]:
    """Wall and CPU seconds of `veil check REPO` as a user runs it (interpreter start-up
    included; CPU is user + system time of the process and of the process it forks to parse
    on a second core, which a loaded machine barely changes)."""
    import resource

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-c", "from veil.cli import run; run()", "check", str(repo)],
        check=True,
        capture_output=True,
        cwd=repo,
        env={**os.environ, **env},
    )
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    return wall, cpu


def median(samples: list[dict[str, float]], key: str) -> float:
    return statistics.median(s[key] for s in samples)


WARM = (
    "cold (no .veil-cache)",
    "cold on one process (VEIL_JOBS=1)",
    "nothing changed",
    "a comment appended to one file",
    "a column added to one table",
)


def measure(tables: int, root: Path, repeat: int) -> None:
    repo = synthetic.write(tables, root / f"r{tables}")
    changed = repo / "catalog" / "f000.veil"
    original = changed.read_text()
    runs: dict[str, list[tuple[float, float]]] = {name: [] for name in WARM}
    for _ in range(repeat):
        changed.write_text(original)
        shutil.rmtree(repo / ".veil-cache", ignore_errors=True)
        runs[WARM[1]].append(veil_check(repo, VEIL_JOBS="1"))
        shutil.rmtree(repo / ".veil-cache", ignore_errors=True)
        runs[WARM[0]].append(veil_check(repo))
        runs[WARM[2]].append(veil_check(repo))
        changed.write_text(original + "\n# touched\n")
        runs[WARM[3]].append(veil_check(repo))
        column = original.replace("  score integer\n", "  score integer\n  extra text\n", 1)
        changed.write_text(column)
        runs[WARM[4]].append(veil_check(repo))
    changed.write_text(original)
    checks = [run_child("check", repo) for _ in range(repeat)]
    print(
        f"{tables:>6} tables  check: in-process {median(checks, 'check_cpu'):6.2f} s CPU "
        f"{median(checks, 'check_wall'):6.2f} s wall, {median(checks, 'rss_mb'):5.0f} MB peak"
    )
    for name in WARM:
        print(
            f"{'':>14}veil check, {name + ':':<36}"
            f"{statistics.median(c for _, c in runs[name]):6.2f} s CPU "
            f"{statistics.median(w for w, _ in runs[name]):6.2f} s wall"
        )
    for target in TARGETS:
        runs = [run_child(target, repo) for _ in range(repeat)]
        print(
            f"{'':>14}{target:<11} compile {median(runs, 'cpu'):6.2f} s CPU "
            f"{median(runs, 'wall'):6.2f} s wall, {median(runs, 'rss_mb'):5.0f} MB peak, "
            f"script {median(runs, 'bytes') / 2**20:7.2f} MiB"
        )


def main() -> None:
    if len(sys.argv) == 4 and sys.argv[1] == "--child":
        child(sys.argv[2], sys.argv[3])
        return
    ap = argparse.ArgumentParser()
    ap.add_argument("--tables", type=int, nargs="+", default=[1000, 2000])
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--keep", type=Path, help="write the repositories here and keep them")
    args = ap.parse_args()
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}")
    if args.keep:
        args.keep.mkdir(parents=True, exist_ok=True)
        for n in args.tables:
            measure(n, args.keep, args.repeat)
        return
    with tempfile.TemporaryDirectory() as d:
        for n in args.tables:
            measure(n, Path(d), args.repeat)


if __name__ == "__main__":
    main()
