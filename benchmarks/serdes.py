"""Scenario 9, serdes streams: a CSV file → ION → CSV round trip (`csv.CsvToIon` then `csv.IonToCsv`) through
`kestractl execute`, 1,000,000 rows (20,000 with `--quick`).

Time: the execution's own duration (start-up and the FILE input's upload excluded), against Python's `csv` module
reading the same file and writing it back in this process. Memory: the peak RSS of the whole `kestractl execute`
process (GNU time's, see `harness.peak_run`), against the same flow on a 10-row file: conversions run row by row,
so the peak must not grow with the file.
"""

from __future__ import annotations

import csv
import json
import time
from pathlib import Path

from benchmarks.harness import KESTRACTL, Figure, cli_env, kestractl, median, peak_run, scratch
from kestractl.model import parse_iso

FLOW = """id: roundtrip
namespace: bench
inputs:
  - id: file
    type: FILE
tasks:
  - id: to_ion
    type: io.kestra.plugin.serdes.csv.CsvToIon
    from: "{{ inputs.file }}"
  - id: to_csv
    type: io.kestra.plugin.serdes.csv.IonToCsv
    from: "{{ outputs.to_ion.uri }}"
"""
RSS_LIMIT = 150.0  # MB


def write_csv(path: Path, rows: int) -> None:
    """Rows like exports have: ids, names, e-mails, amounts, dates, and now and then a quoted comma or quote."""
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["id", "name", "email", "amount", "created", "note"])
        for i in range(rows):
            note = f'said "hi", {i}' if i % 10 == 0 else f"note {i}"
            writer.writerow([i, f"user {i}", f"user{i}@example.com", f"{i % 1000}.{i % 100:02d}", "2024-01-15", note])


def execute(home: Path, source: Path) -> tuple[float, float]:
    """(the execution's duration in seconds, the process's peak RSS in MB) of one `kestractl execute`."""
    out = home.parent / "execution.json"
    command = [KESTRACTL, "execute", "bench", "roundtrip", "--input", f"file={source}", "--json"]
    _, peak = peak_run(command, cli_env(home), out)
    state = json.loads(out.read_text())["state"]
    if state["current"] != "SUCCESS":
        raise RuntimeError(f"the round trip ended {state['current']}")
    duration = (parse_iso(state["endDate"]) - parse_iso(state["startDate"])).total_seconds()  # type: ignore[operator]
    return duration, peak


def csv_module(source: Path, target: Path) -> float:
    """Seconds for Python's csv module to read every row and write it back."""
    started = time.perf_counter()
    with source.open(newline="") as fh, target.open("w", newline="") as out:
        csv.writer(out, lineterminator="\n").writerows(csv.reader(fh))
    return time.perf_counter() - started


def run(quick: bool) -> list[Figure]:
    rows, repeat = (20_000, 1) if quick else (1_000_000, 3)
    with scratch("serdes") as folder:
        home, source, small = folder / "home", folder / "rows.csv", folder / "small.csv"
        home.mkdir()
        (folder / "flow.yaml").write_text(FLOW)
        kestractl(home, "flow", "deploy", str(folder / "flow.yaml"))
        write_csv(source, rows)
        write_csv(small, 10)
        baseline = median([csv_module(source, folder / "copy.csv") for _ in range(repeat)])
        small_rss = execute(home, small)[1]
        measured = [execute(home, source) for _ in range(repeat)]
        seconds, rss = median([m[0] for m in measured]), max(m[1] for m in measured)
    return [
        Figure("serdes", f"{rows:,}-row CSV → ION → CSV, `kestractl execute`", seconds, "s", baseline,
               "csv module read+write", "≤ 10× baseline", seconds <= 10 * baseline),
        Figure("serdes", f"peak RSS of that round trip ({rows:,} rows)", rss, "MB", small_rss,
               "same flow, 10 rows", f"≤ {RSS_LIMIT:.0f} MB", rss <= RSS_LIMIT),
    ]  # fmt: skip
