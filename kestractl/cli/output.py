"""Everything the CLI prints: rich tables and colours on a terminal, plain text when piped or NO_COLOR."""

from __future__ import annotations

import json
import os
import sys
import threading
from typing import Any

from kestractl.model import Execution, LogEntry, State, TaskRun, iso, iso_duration

STATE_STYLES = {
    State.SUCCESS: "green",
    State.WARNING: "yellow",
    State.FAILED: "red",
    State.KILLED: "red",
    State.RUNNING: "cyan",
    State.PAUSED: "magenta",
    State.SKIPPED: "dim",
    State.RETRYING: "yellow",
    State.CREATED: "blue",
    State.RESTARTED: "blue",
    State.KILLING: "red",
}
LEVEL_STYLES = {"TRACE": "dim", "DEBUG": "dim", "INFO": "", "WARN": "yellow", "ERROR": "red"}
_print_lock = threading.Lock()


def fancy(stream: Any = None) -> bool:
    """Colours and tables only for a real terminal without NO_COLOR."""
    stream = stream or sys.stdout
    return "NO_COLOR" not in os.environ and hasattr(stream, "isatty") and stream.isatty()


def console(stderr: bool = False) -> Any:
    from rich.console import Console

    stream = sys.stderr if stderr else sys.stdout
    return Console(file=stream, no_color=not fancy(stream), highlight=False, soft_wrap=True)


def echo(text: str = "", err: bool = False) -> None:
    stream = sys.stderr if err else sys.stdout
    stream.write(text + "\n")
    stream.flush()


def print_json(data: Any) -> None:
    echo(json.dumps(data, indent=2, default=str))


def error(message: str) -> None:
    stream = sys.stderr
    prefix = "\x1b[31mError:\x1b[0m " if fancy(stream) else "Error: "
    stream.write(prefix + message + "\n")
    stream.flush()


def log_line(entry: LogEntry, stderr: bool = False, colour: bool | None = None) -> None:
    """One streamed log line: time, level, task id, message (multi-line messages indented); `colour`, `fancy`
    of the stream when the caller already knows it (a stream that streams 10,000 lines asks once)."""
    stream = sys.stderr if stderr else sys.stdout
    stamp = (iso(entry.timestamp) or "")[11:23]
    task = entry.task_id or "-"
    message = entry.message.replace("\n", "\n" + " " * 4)
    line = f"{stamp} {entry.level:<5} {task} {message}"
    if fancy(stream) if colour is None else colour:
        style = {"WARN": "33", "ERROR": "31", "TRACE": "2", "DEBUG": "2"}.get(entry.level)
        line = f"\x1b[2m{stamp}\x1b[0m {_ansi(entry.level.ljust(5), style)} \x1b[1m{task}\x1b[0m {message}"
    with _print_lock:
        stream.write(line + "\n")
        stream.flush()


def _ansi(text: str, code: str | None) -> str:
    return f"\x1b[{code}m{text}\x1b[0m" if code else text


def table(columns: list[str], rows: list[list[str]], title: str | None = None) -> None:
    if not fancy():
        echo("\t".join(columns))
        for row in rows:
            echo("\t".join(row))
        return
    from rich.table import Table

    out = Table(title=title, header_style="bold")
    for column in columns:
        out.add_column(column)
    for row in rows:
        out.add_row(*row)
    console().print(out)


def state_text(state: State) -> str:
    style = STATE_STYLES.get(state)
    return f"[{style}]{state.value}[/{style}]" if style and fancy() else state.value


def duration(run_state: Any) -> str:
    start, end = run_state.start_date, run_state.end_date
    return iso_duration(end - start) if start and end else ""


def execution_summary(execution: Execution) -> str:
    return (
        f"{execution.id}  {execution.namespace}.{execution.flow_id}  rev {execution.flow_revision}  "
        f"{execution.state.current.value}  {duration(execution.state)}"
    )


def execution_tree(execution: Execution) -> None:
    """Task runs indented under their parents, with value, state, duration, attempts and outputs."""
    children: dict[str | None, list[TaskRun]] = {}
    for run in execution.task_runs:
        children.setdefault(run.parent_task_run_id, []).append(run)
    lines = [
        f"Execution {execution.id}  {execution.namespace}.{execution.flow_id} (revision "
        f"{execution.flow_revision})  {state_text(execution.state.current)}  {duration(execution.state)}"
    ]
    if execution.inputs:
        lines.append(f"  inputs: {json.dumps(execution.inputs, default=str)}")

    def walk(parent: str | None, depth: int) -> None:
        for run in children.get(parent, []):
            value = f" [{run.value}]" if run.value is not None else ""
            attempts = f"  attempts {len(run.attempts)}" if len(run.attempts) > 1 else ""
            lines.append(
                f"{'  ' * depth}├─ {run.task_id}{value}  {state_text(run.state.current)}  "
                f"{duration(run.state)}{attempts}"
            )
            if run.outputs:
                lines.append(f"{'  ' * depth}│    outputs: {json.dumps(run.outputs, default=str)[:300]}")
            walk(run.id, depth + 1)

    walk(None, 1)
    if execution.outputs:
        lines.append(f"  outputs: {json.dumps(execution.outputs, default=str)}")
    if fancy():
        console().print("\n".join(lines))
    else:
        echo("\n".join(lines))


class BatchProgress:
    """A progress bar per task run that reports batches (ForEachItem's `numberOfBatches`). Rich's progress
    display is built with the first bar: a flow without batches never imports it."""

    def __init__(self) -> None:
        self._progress: Any = None
        self._bars: dict[str, Any] = {}

    def _start(self) -> Any:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[states]}"),
            TimeElapsedColumn(),
            console=console(stderr=True),
            transient=False,
        )
        progress.start()
        return progress

    def update(self, execution: Execution, runs: list[TaskRun]) -> None:
        for run in runs:
            outputs = run.outputs or {}
            total, counts = outputs.get("numberOfBatches"), outputs.get("iterations")
            if not isinstance(total, int) or not isinstance(counts, dict):
                continue
            if self._progress is None:
                self._progress = self._start()
            if run.id not in self._bars:
                self._bars[run.id] = self._progress.add_task(run.task_id, total=total, states="")
            done = sum(v for k, v in counts.items() if k not in ("CREATED", "RUNNING"))
            states = " ".join(f"{k} {v}" for k, v in counts.items() if v and k not in ("CREATED", "RUNNING"))
            self._progress.update(self._bars[run.id], completed=done, states=states)

    def close(self) -> None:
        if self._progress is not None:
            self._progress.stop()
