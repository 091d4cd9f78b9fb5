"""Run the benchmark scenarios and print the table (and JSON): `python -m benchmarks [--quick] [--json F]`.

`--quick` runs every scenario with small sizes and few repeats (CI uses it so the suite cannot rot);
its figures are not the ones to quote.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import sys
import time
import traceback
from pathlib import Path

from benchmarks.harness import Figure

# name -> module; the order is the (start-up first, idle memory last).
SCENARIOS = {
    "startup": "benchmarks.startup",
    "onefile": "benchmarks.onefile",
    "tasks": "benchmarks.tasks",
    "peer": "benchmarks.peer",
    "server": "benchmarks.server",
    "scheduler": "benchmarks.scheduler",
    "distributed": "benchmarks.distributed",
    "fanout": "benchmarks.fanout",
    "watch": "benchmarks.watch",
    "serdes": "benchmarks.serdes",
    "ui_execution": "benchmarks.ui_execution",
    "ui": "benchmarks.ui",
    "idle": "benchmarks.idle",
}


def _number(value: float | None) -> str:
    if value is None:
        return "-"
    if value == 0 or abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:.3g}" if abs(value) < 1 else f"{value:.1f}"


def table(figures: list[Figure]) -> str:
    """A plain-text table, also pasted into README's Performance section."""
    header = ["scenario", "figure", "median", "baseline", "ratio", "target", "met"]
    rows = [
        [
            f.scenario,
            f.name,
            f"{_number(f.value)} {f.unit}" if f.value is not None else "-",
            f"{_number(f.baseline)} {f.unit} ({f.baseline_name})" if f.baseline is not None else "-",
            f"{f.ratio:.3g}×" if f.ratio is not None else "-",
            f.target or "-",
            {True: "yes", False: "NO", None: "-"}[f.met],
        ]
        for f in figures
    ]
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    cells = [[str(c).ljust(w) for c, w in zip(row, widths, strict=True)] for row in [header, *rows]]
    lines = ["| " + " | ".join(row) + " |" for row in cells]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    lines += [f"- {f.scenario}, {f.name}: {f.note}" for f in figures if f.value is None]  # why a figure is "-"
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, few repeats (CI)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--only", nargs="+", choices=sorted(SCENARIOS), help="run just these scenarios")
    args = parser.parse_args()
    figures: list[Figure] = []
    failed: list[str] = []
    for name in args.only or SCENARIOS:
        started = time.perf_counter()
        print(f"# {name} ...", file=sys.stderr, flush=True)
        try:
            found = importlib.import_module(SCENARIOS[name]).run(args.quick)
        except Exception:
            traceback.print_exc()
            failed.append(name)
            continue
        figures.extend(found)
        print(f"# {name}: {time.perf_counter() - started:.1f} s", file=sys.stderr, flush=True)
        for figure in found:
            print(f"#   {figure.name}: {_number(figure.value)} {figure.unit} (target {figure.target})", file=sys.stderr)
    print(table(figures))
    if args.json:
        machine = {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()}
        report = {"quick": args.quick, "machine": machine, "failed": failed, "figures": [f.as_json() for f in figures]}
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    if failed:
        print(f"scenarios that failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
