"""How long parsing, checking and compiling take as a repository grows. Prints figures; asserts
nothing (tests assert behaviour, never wall-clock time).

    python bench/bench_compile.py [--tables 10 100 500]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from veil.api import check, compile_program


def repository(tables: int) -> str:
    """A synthetic repository: `tables` tables of 8 columns, tags, masks, rules and projects."""
    out = ["purpose Fraud", "purpose Audit", "group analysts, auditors"]
    out += [f'user u{i} {{ groups analysts; region "EU", "US" }}' for i in range(20)]
    for t in range(tables):
        out.append(
            f"table s{t % 10}.t{t} {{\n  id bigint\n  card varchar(19) tags pii.card\n"
            "  email varchar(254) tags pii.email\n  amount decimal(12,2)\n  region varchar(8)\n"
            "  note text tags pii\n  placed_at timestamp\n  ok boolean\n}"
        )
        out.append(f"filter s{t % 10}.t{t} where region in user.region unless purpose Fraud")
        if t % 3 == 0:
            out.append(f"restrict s{t % 10}.t{t} to purpose Audit, purpose Fraud")
    out += [
        "mask tagged pii with null",
        "mask tagged pii.card with show_last(4) unless purpose Fraud",
        "mask email with hash unless purpose Fraud or group auditors",
        "mask amount with round(100) for group analysts",
    ]
    for p in range(5):
        sources = ", ".join(f"s{t % 10}.t{t}" for t in range(p, tables, 5))
        out.append(
            f"project p{p} {{\n  purposes Fraud\n  members u{p}, u{p + 5}\n  sources {sources}\n}}"
        )
    return "\n".join(out) + "\n"


def timed(fn: object, repeat: int) -> float:
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()  # type: ignore[operator]
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tables", type=int, nargs="+", default=[10, 100, 500])
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    print(
        f"{'tables':>7} {'check s':>9} {'postgres s':>11} {'snowflake s':>12} "
        f"{'databricks s':>13} {'pg script KiB':>14}"
    )
    for n in args.tables:
        with tempfile.TemporaryDirectory() as d:
            path = Path(d) / "repo.veil"
            path.write_text(repository(n), encoding="utf-8")
            checked = check([path])
            assert checked.program is not None, checked.diagnostics[:3]
            program = checked.program
            t_check = timed(lambda p=path: check([p]), args.repeat)
            row = [t_check]
            size = 0
            for target in ("postgres", "snowflake", "databricks"):
                row.append(timed(lambda t=target, p=program: compile_program(p, t), args.repeat))
                if target == "postgres":
                    size = len((compile_program(program, target)[0] or "").encode()) // 1024
            print(
                f"{n:>7} {row[0]:>9.3f} {row[1]:>11.3f} {row[2]:>12.3f} {row[3]:>13.3f} {size:>14}"
            )


if __name__ == "__main__":
    main()
