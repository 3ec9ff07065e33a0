"""A synthetic policy repository of any size, for bench/ and for the tests that count work.

    python bench/synthetic.py TABLES DIR

Per table: 10 columns (three of them tagged), a mask on one of its columns by qualified name,
a `filter` on the user's region, and every third table a `restrict` to purposes. Repository-
wide: tag masks, column-name masks, a conditional mask, 20 users in two groups, and five
projects whose sources cover every table. Tables are written 100 to a file
(`catalog/fNNN.veil`), so "one file changed" is one file of 100 tables.
"""

from __future__ import annotations

import sys
from pathlib import Path

TABLES_PER_FILE = 100


def people() -> str:
    out = [
        "purpose Fraud",
        "purpose Audit",
        "group analysts, auditors",
    ]
    out += [
        f'user u{i} {{ groups {"auditors" if i % 4 == 0 else "analysts"}; region "EU", "US"; '
        f'email "u{i}@example.com" }}'
        for i in range(20)
    ]
    return "\n".join(out) + "\n"


def table_block(t: int) -> str:
    schema = f"s{t // TABLES_PER_FILE}"
    name = f"{schema}.t{t}"
    lines = [
        f"table {name} {{",
        "  id bigint",
        "  card varchar(19) tags pii.card",
        "  email varchar(254) tags pii.email",
        "  phone varchar(32) tags pii",
        "  amount decimal(12,2)",
        "  region varchar(8)",
        "  note text tags pii",
        "  placed_at timestamp",
        "  ok boolean",
        "  score integer",
        "}",
        f"filter {name} where region in user.region unless purpose Fraud",
        f"mask {name}.phone with show_last(2) unless purpose Fraud",
    ]
    if t % 3 == 0:
        lines.append(f"restrict {name} to purpose Audit, purpose Fraud")
    return "\n".join(lines) + "\n"


def policies() -> str:
    return (
        "\n".join(
            [
                "mask tagged pii with null",
                "mask tagged pii.card with show_last(4) unless purpose Fraud",
                "mask email with hash unless purpose Fraud or group auditors",
                "mask amount with round(100) for group analysts",
                'mask note with constant("[redacted]") when ok = true unless purpose Audit',
            ]
        )
        + "\n"
    )


def projects(tables: int) -> str:
    out = []
    for p in range(5):
        names = [f"s{t // TABLES_PER_FILE}.t{t}" for t in range(p, tables, 5)]
        sources = ",\n    ".join(", ".join(names[i : i + 8]) for i in range(0, len(names), 8))
        purpose = "Fraud" if p % 2 == 0 else "Audit"
        out.append(
            f"project p{p} {{\n  purposes {purpose}\n  members u{p + 1}, u{p + 6}\n"
            f"  sources {sources}\n}}"
        )
    return "\n\n".join(out) + "\n"


def files(tables: int, per_file: int = TABLES_PER_FILE) -> dict[str, str]:
    """Relative path -> text of every file of the repository."""
    out = {"people.veil": people(), "policies.veil": policies(), "projects.veil": projects(tables)}
    for start in range(0, tables, per_file):
        end = min(tables, start + per_file)
        out[f"catalog/f{start // per_file:03d}.veil"] = "".join(
            table_block(t) for t in range(start, end)
        )
    return out


def write(tables: int, root: Path, per_file: int = TABLES_PER_FILE) -> Path:
    for rel, text in files(tables, per_file).items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root


if __name__ == "__main__":
    write(int(sys.argv[1]), Path(sys.argv[2]))
