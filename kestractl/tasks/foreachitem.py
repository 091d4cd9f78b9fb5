"""ForEachItem: split a file of items into batches and run one subflow execution per batch.

As in Kestra it owns three hidden children, run one after the other: `<id>_split` (writes the
batches and a `splits.txt` listing their URIs), `<id>_items` (starts one child execution per
batch and counts their states) and `<id>_merge` (concatenates the children's flow outputs).
The parent waiting on its children is a row, not a thread: 10,000 batches cost no thread each.
"""

from __future__ import annotations

import contextlib
import io
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, BinaryIO, ClassVar

from kestractl.errors import TaskError
from kestractl.model import Execution, State, TaskRun
from kestractl.storage.packed import PACK, PackWriter, member_name, packable
from kestractl.tasks.base import ExecutableTask, RunContext, RunnableTask, Task
from kestractl.tasks.flow import LEGACY, _ListFlowable, child_final_state, render_labels, static
from kestractl.tasks.properties import Prop
from kestractl.tasks.registry import register
from kestractl.tasks.splitter import batches, parse_size, split

TYPE = "io.kestra.plugin.core.flow.ForEachItem"


@register
class ForEachItem(_ListFlowable):
    type_name = TYPE
    aliases = (LEGACY + "ForEachItem",)
    properties = {
        "items": Prop("The kestra:// file to split, one item per line.", type="string", required=True),
        "batch": Prop("How to batch the items: `rows`, `bytes` or `partitions`, and `separator`.", type="object"),
        "namespace": Prop("The namespace of the flow started for each batch.", type="string", required=True),
        "flowId": Prop("The id of the flow started for each batch.", type="string", required=True),
        "revision": Prop("The revision to start (the latest by default).", type="integer", dynamic=False),
        "inputs": Prop(
            "The inputs of each subflow (each value rendered); `{{ taskrun.items }}` is the batch's file.",
            type="object",
            dynamic=False,
        ),
        "labels": Prop("Labels added to each subflow's execution (a map or a list of key/value)."),
        "wait": Prop("Wait for the subflows to end.", type="boolean", default=True, dynamic=False),
        "transmitFailed": Prop("Fail this task when a subflow fails.", type="boolean", default=True, dynamic=False),
        "inheritLabels": Prop(
            "Give the subflows this execution's labels.", type="boolean", default=False, dynamic=False
        ),
    }
    outputs = {
        "numberOfBatches": "On `<id>_items`: the number of batches (one subflow execution each).",
        "iterations": "On `<id>_items`: the subflow executions counted by state.",
        "splits": "On `<id>_split`: a file listing the batches' URIs.",
        "subflowOutputs": "On `<id>_merge`: the subflows' outputs, one ION line each.",
    }
    required: ClassVar[tuple[str, ...]] = ()
    child_lists: ClassVar[tuple[str, ...]] = ("errors",)

    def __init__(self, spec: dict[str, Any], children: dict[str, list[Task]] | None = None) -> None:
        super().__init__(spec, children)
        hidden: list[Task] = [
            _Split({"id": f"{self.id}_split", "type": f"{TYPE}$ForEachItemSplit"}, parent=self),
            _Items({"id": f"{self.id}_items", "type": f"{TYPE}$ForEachItemExecutable"}, parent=self),
            _Merge({"id": f"{self.id}_merge", "type": f"{TYPE}$ForEachItemMergeOutputs"}, parent=self),
        ]
        self.children = {**self.children, "tasks": hidden}

    @classmethod
    def validate(cls, spec: dict[str, Any]) -> list[str]:
        """The declarations' checks, then inside `batch`: counts of at least 1, a readable size."""
        problems = super().validate(spec)
        batch = spec.get("batch")
        if not isinstance(batch, dict):  # absent, an expression, or not a map (the declaration says it)
            return problems
        for key in ("rows", "partitions"):
            value = batch.get(key)
            if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
                if not (isinstance(value, str) and "{{" in value):
                    problems.append(f"batch.{key}: must be a whole number >= 1, not `{value}`")
        if batch.get("bytes") is not None:
            try:
                parse_size(batch["bytes"])
            except ValueError as exc:
                problems.append(f"batch.bytes: {exc}")
        return problems


class _Hidden(Task):
    """A child that ForEachItem makes for itself; it reads its settings from the parent's spec."""

    def __init__(self, spec: dict[str, Any], parent: ForEachItem) -> None:
        super().__init__(spec)
        self.parent = parent

    def own_outputs(self, ctx: RunContext, suffix: str) -> dict[str, Any]:
        outputs = ctx.variables.get("outputs", {}).get(f"{self.parent.id}_{suffix}")
        return outputs if isinstance(outputs, dict) else {}


class _Split(_Hidden, RunnableTask):
    def run(self, ctx: RunContext) -> dict[str, Any] | None:
        spec = self.parent.spec
        items = str(ctx.render(spec["items"]))
        if not items.startswith("kestra://"):
            raise TaskError(f"Unable to split the items from {items}, this is not an internal storage URI!")
        source = ctx.storage.local_copy(items)
        if not source.is_file():
            raise TaskError(f"Unable to split the items from {items}: file not found")
        extension = Path(source.name).suffix or ".tmp"
        # The batches sit beside the listing: one storage path checked, not one per batch (a third of the split).
        listing, listing_uri = ctx.output_file("splits.txt")
        names = _write_batches(source, f"{listing.parent}{os.sep}", extension, ctx.render(spec.get("batch") or {}))
        base = listing_uri.rsplit("/", 1)[0]
        listing.write_text("".join(f"{base}/{name}\n" for name in names))
        ctx.info(f"{len(names)} batch(es) from {items}")
        return {"splits": listing_uri}


def _write_batches(source: Path, folder: str, extension: str, batch: dict[str, Any]) -> list[str]:
    """The batches written into `folder`; their names. By rows or bytes they go one after the other into the
    folder's pack, which the storage serves as files of their own (one file made, not one per batch); partitions
    are dealt a line to each in turn, so they are files."""
    rows = int(batch["rows"]) if batch.get("rows") else None
    size = parse_size(batch["bytes"]) if batch.get("bytes") else None
    separator = str(batch.get("separator", "\n"))
    if batch.get("partitions") or not packable(extension):
        return _files(source, folder, extension, rows, size, int(batch.get("partitions") or 0), separator)
    with source.open("rb") as fh:
        return _pack(folder, extension, batches(fh, rows=rows, size=size, separator=separator.encode()))


def _pack(folder: str, extension: str, contents: Iterator[bytes]) -> list[str]:
    """The folder's pack, written under another name then renamed: a split run again (a restart) never shows
    readers half a pack, and a failed one leaves nothing."""
    partial = f"{folder}{PACK}.{os.getpid()}.part"
    try:
        with open(partial, "wb") as out:
            pack = PackWriter(out, extension)
            names = [pack.add(data) for data in contents]
            pack.close()
        os.replace(partial, folder + PACK)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(partial)
    return names


def _files(
    source: Path, folder: str, extension: str, rows: int | None, size: int | None, partitions: int, separator: str
) -> list[str]:
    names: list[str] = []

    def opener(index: int) -> BinaryIO:
        names.append(member_name(index, extension))
        # A str, not a Path per batch, and a buffer size given: no isatty asked per file.
        return open(folder + names[-1], "wb", buffering=io.DEFAULT_BUFFER_SIZE)

    split(source, opener, rows=rows, size=size, partitions=partitions or None, separator=separator)
    return names


class _Items(_Hidden, ExecutableTask):
    def subflow_requests(self, ctx: RunContext) -> Iterator[dict[str, Any]]:
        spec = self.parent.spec
        listing = self.own_outputs(ctx, "split").get("splits")
        uris = ctx.storage.read_bytes(listing).decode().split() if listing else []
        namespace, flow_id = ctx.render(spec["namespace"]), ctx.render(spec["flowId"])
        labels = render_labels(ctx, spec.get("labels"))
        taskrun = dict(ctx.variables.get("taskrun") or {})
        # The same for every batch: looked up once, not 10,000 times (a static property converts on each read).
        inherit, revision, inputs = static(self.parent, "inheritLabels"), spec.get("revision"), spec.get("inputs")
        for iteration, uri in enumerate(uris):  # from 0 since Kestra 1.1 (as ForEach)
            extra = {"taskrun": {**taskrun, "items": uri, "iteration": iteration}}
            yield (
                {
                    "namespace": namespace,
                    "flowId": flow_id,
                    "revision": revision,
                    "inputs": ctx.render(inputs, extra) if inputs else {},
                    "labels": labels,
                    "inheritLabels": inherit,
                    "triggerVariables": {"iteration": iteration},
                }
            )

    def subflows_started(self, run: TaskRun, child_ids: list[str]) -> State | None:
        if not child_ids:
            return State.SUCCESS
        run.outputs = {
            "numberOfBatches": len(child_ids),
            "iterations": {"CREATED": len(child_ids), "RUNNING": 0},
        }
        return None if static(self.parent, "wait") else State.SUCCESS

    def subflow_ended(
        self, run: TaskRun, child: Execution, ctx: Callable[[], RunContext], child_ctx: Callable[[], RunContext]
    ) -> State | None:
        outputs = run.outputs or {}
        counts = outputs.setdefault("iterations", {})
        counts["CREATED"] = max(0, counts.get("CREATED", 0) - 1)
        state = child.state.current.value
        counts[state] = counts.get(state, 0) + 1
        if child.outputs:
            self._keep_outputs(ctx(), child, outputs)
        # Children still to end, or none awaited: the static `wait` is read once, at the last end.
        if counts["CREATED"] or counts.get("RUNNING") or not static(self.parent, "wait"):
            return None
        worst = next((s for s in (State.FAILED, State.KILLED, State.WARNING) if counts.get(s.value)), State.SUCCESS)
        return child_final_state(self.parent, worst)

    def _keep_outputs(self, ctx: RunContext, child: Execution, outputs: dict[str, Any]) -> None:
        """One ION line per child, named by its iteration so the merge keeps the batches' order."""
        from kestractl.ion import dumps

        iteration = int(((child.trigger or {}).get("variables") or {}).get("iteration", 0))
        path, uri = ctx.output_file(f"outputs/{iteration:08d}.ion")
        path.write_text(dumps(child.outputs) + "\n")
        ctx.storage.upload(path, uri)  # written by the executor, not a worker's task run: stored now
        outputs["subflowOutputsBaseUri"] = "kestra://" + ctx._run_path("outputs")


class _Merge(_Hidden, RunnableTask):
    def run(self, ctx: RunContext) -> dict[str, Any] | None:
        base = self.own_outputs(ctx, "items").get("subflowOutputsBaseUri")
        merged, uri = ctx.output_file("outputs.ion")
        with merged.open("wb") as out:
            folder = ctx.storage.local_folder(base) if base else None
            for part in sorted(folder.glob("*.ion")) if folder and folder.is_dir() else []:
                out.write(part.read_bytes())
        return {"subflowOutputs": uri}
