"""Kestra's deprecated State store (`io.kestra.plugin.core.state.*`): a JSON map per flow (or namespace), kept in
the namespace's KV store under Kestra's key, `<flow>_states_tasks-states_<name>[_<hash of taskrun.value>]`."""

from __future__ import annotations

import json
from typing import Any, ClassVar

from kestractl.errors import TaskError
from kestractl.kv import KVStore
from kestractl.model import deep_merge
from kestractl.storage import slugify
from kestractl.tasks.base import RunContext
from kestractl.tasks.kv import KVTask
from kestractl.tasks.properties import Prop
from kestractl.tasks.registry import register

ERROR_ON_MISSING = Prop("Raise an error if the state is not found.", type="boolean", default=False)


class StateTask(KVTask):
    properties: ClassVar[dict[str, Prop]] = {
        "name": Prop("The name of the state file.", type="string", default="default"),
        "namespace": Prop(
            "Share the state with the whole namespace instead of this flow only.", type="boolean", default=False
        ),
        "taskrunValue": Prop("Isolate the state by `taskrun.value` inside an Each loop.", type="boolean", default=True),
    }

    def store(self, ctx: RunContext) -> KVStore:
        return KVStore(ctx.storage, ctx.flow.namespace)

    def key(self, ctx: RunContext) -> str:
        """Kestra's `StateStore` key: flow-scoped unless `namespace: true`; Each values hashed (murmur3)."""
        flow = "" if ctx.prop("namespace") else slugify(ctx.flow.id) + "_"
        key = f"{flow}states_tasks-states_{ctx.prop('name')}"
        value = ctx.task_run.value if ctx.task_run is not None else None
        if value is not None and ctx.prop("taskrunValue"):
            import mmh3  # Guava's murmur3_128, as Kestra's `Hashing.hashToString`

            key += "_" + mmh3.hash_bytes(value.encode("utf-8")).hex()
        return key

    def state(self, ctx: RunContext) -> dict[str, Any] | None:
        found = self.store(ctx).get(self.key(ctx))
        if found is None:
            return None
        raw = found.value
        data = json.loads(raw.decode("utf-8") if isinstance(raw, bytes) else raw)
        return data if isinstance(data, dict) else {}


@register
class Set(StateTask):
    """Merge `data` into the state; outputs `count` (its entries) and `key` (where it is kept)."""

    type_name = "io.kestra.plugin.core.state.Set"
    aliases = ("io.kestra.core.tasks.states.Set",)
    properties = {"data": Prop("The data to be stored in the state store (merged into what is there).", type="object")}
    outputs = {"count": "The number of entries in the state.", "key": "The key where the state is kept."}

    def run(self, ctx: RunContext) -> dict[str, Any] | None:
        merged = deep_merge(self.state(ctx) or {}, ctx.render(self.spec.get("data") or {}))
        key = self.key(ctx)
        self.store(ctx).put(key, json.dumps(merged, separators=(",", ":")).encode("utf-8"))
        return {"count": len(merged), "key": key}


@register
class Get(StateTask):
    """Read the state; outputs `count` and `data`."""

    type_name = "io.kestra.plugin.core.state.Get"
    aliases = ("io.kestra.core.tasks.states.Get",)
    properties = {"errorOnMissing": ERROR_ON_MISSING}
    outputs = {"count": "The number of entries in the state.", "data": "The state."}

    def run(self, ctx: RunContext) -> dict[str, Any] | None:
        data = self.state(ctx)
        if data is None and ctx.prop("errorOnMissing"):
            raise TaskError(f"State {self.key(ctx)} not found")
        return {"count": len(data or {}), "data": data or {}}


@register
class Delete(StateTask):
    """Delete the state; outputs `deleted`."""

    type_name = "io.kestra.plugin.core.state.Delete"
    aliases = ("io.kestra.core.tasks.states.Delete",)
    properties = {"errorOnMissing": ERROR_ON_MISSING}
    outputs = {"deleted": "Whether a state was deleted."}

    def run(self, ctx: RunContext) -> dict[str, Any] | None:
        deleted = self.store(ctx).delete(self.key(ctx))
        if not deleted and ctx.prop("errorOnMissing"):
            raise TaskError(f"Unable to find the state file '{ctx.prop('name')}'")
        return {"deleted": deleted}
