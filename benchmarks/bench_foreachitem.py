"""ForEachItem at scale: a 1,000,000-line file in batches of 10,000 (100 subflow executions).

Prints the time to split (the `<id>_split` task run) and to finish, and the peak RSS of the
`kestractl execute` process, against `split -l 10000` on the same file in the same run.

Usage: .venv/bin/python benchmarks/bench_foreachitem.py [--lines N] [--rows N]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

KESTRACTL = str(Path(sys.executable).parent / "kestractl")
CHILD = """id: bench-child
namespace: bench
inputs:
  - id: items
    type: STRING
tasks:
  - id: size
    type: io.kestra.plugin.core.debug.Return
    format: "{{ fileSize(inputs.items) }}"
"""
PARENT = """id: bench-parent
namespace: bench
inputs:
  - id: file
    type: FILE
tasks:
  - id: each
    type: io.kestra.plugin.core.flow.ForEachItem
    items: "{{{{ inputs.file }}}}"
    batch:
      rows: {rows}
    namespace: bench
    flowId: bench-child
    inputs:
      items: "{{{{ taskrun.items }}}}"
"""


def seconds(state: dict[str, object]) -> float:
    histories = state["histories"]
    assert isinstance(histories, list)
    start = datetime.fromisoformat(histories[0]["date"].replace("Z", "+00:00"))
    end = datetime.fromisoformat(histories[-1]["date"].replace("Z", "+00:00"))
    return (end - start).total_seconds()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="kbench-fei-") as tmp:
        root = Path(tmp)
        data = root / "items.txt"
        with data.open("w") as fh:
            fh.writelines(f"{i:>20}\n" for i in range(1, args.lines + 1))
        env = dict(os.environ, KESTRACTL_HOME=str(root / "home"), NO_COLOR="1")
        (root / "child.yaml").write_text(CHILD)
        (root / "parent.yaml").write_text(PARENT.format(rows=args.rows))
        subprocess.run(
            [KESTRACTL, "flow", "deploy", str(root / "child.yaml"), str(root / "parent.yaml")],
            env=env,
            check=True,
            stdout=subprocess.DEVNULL,
        )
        (root / "split").mkdir()
        started = time.perf_counter()
        subprocess.run(["split", "-l", str(args.rows), str(data), str(root / "split" / "part-")], check=True)
        split_l = time.perf_counter() - started
        started = time.perf_counter()
        done = subprocess.run(
            [KESTRACTL, "execute", "bench", "bench-parent", "--input", f"file={data}", "--json"],
            env=env,
            capture_output=True,
            text=True,
        )
        total = time.perf_counter() - started
        peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        execution = json.loads(done.stdout)
        runs = {r["taskId"]: r for r in execution["taskRunList"]}
        split_s = seconds(runs["each_split"]["state"])
        batches = runs["each_items"]["outputs"]["numberOfBatches"]
    size_mb = args.lines * 21 / 1e6
    print(
        f"file:        {args.lines:,} lines ({size_mb:.0f} MB), batches of {args.rows:,} -> {batches} subflows,"
        f" final state {execution['state']['current']}"
    )
    print(f"(medians of {args.repeat} runs)")
    print(f"split:       ForEachItem {split_s:6.2f} s   split -l {split_l:6.2f} s   ratio {split_s / split_l:5.1f}x")
    print(f"to the end:  {total:6.2f} s for the whole execute (start-up, split, {batches} subflows, merge)")
    print(f"peak RSS:    {peak_mb:6.1f} MB (kestractl execute process)")


if __name__ == "__main__":
    main()
