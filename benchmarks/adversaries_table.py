"""Side-by-side Markdown table of adversary results for several kits (pasted into BENCHMARKS.md).

    python benchmarks/adversaries_table.py benchmarks/results/adversaries-base.json \
        benchmarks/results/adversaries-robust.json
"""

from __future__ import annotations

import json
import sys


def key(row: dict) -> tuple:
    return (row["adversary"], row["param"], str(row.get("value")), row.get("steps"),
            row.get("alpha"))  # fmt: skip


def setting(row: dict) -> str:
    value = row.get("value")
    if isinstance(value, float) and row["param"] == "eps" and "linf" in row["adversary"]:
        value = f"{value * 255:.0f}/255"
    extra = [f"{k} {row[k]:g}" for k in ("steps", "alpha") if row.get(k) is not None]
    text = f"{row['param']} {value}" if value is not None else "-"
    return ", ".join([text, *extra])


def main(paths: list[str]) -> None:
    runs = [json.load(open(p)) for p in paths]
    kits = [r["meta"]["kit"] for r in runs]
    tables = [{key(row): row for row in r["rows"]} for r in runs]
    order = list(dict.fromkeys(k for t in tables for k in t))
    print("| adversary | setting | " + " | ".join(f"{k}: success (PSNR dB)" for k in kits) + " |")
    print("|---|---|" + "---|" * len(kits))
    for k in order:
        first = next(t[k] for t in tables if k in t)
        cells = []
        for t in tables:
            row = t.get(k)
            cells.append(f"{row['success_rate']:.0%} ({row['psnr']:.1f})" if row else "-")
        print(f"| {first['adversary']} | {setting(first)} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main(sys.argv[1:])
