"""Kestra's KV store tasks (`io.kestra.plugin.core.kv.*`): Set, Get, Delete, GetKeys, Put, PurgeKV."""

from __future__ import annotations

import json
from fnmatch import fnmatchcase
from typing import Any, ClassVar

from kestractl.errors import TaskError
from kestractl.expressions import render_typed
from kestractl.expressions_text import to_json, to_text
from kestractl.kv import KVStore, KVType, convert
from kestractl.model import deep_merge, utcnow
from kestractl.namespaces import KV, in_storage
from kestractl.tasks.base import RunContext, RunnableTask
from kestractl.tasks.properties import Prop
from kestractl.tasks.registry import register

ERROR_ON_MISSING = Prop("Whether to fail if there is no value for the given key.", type="boolean", default=False)


def plain(value: Any) -> Any:
    """A value as task outputs hold it: Kestra's JSON forms (instants and durations as ISO text)."""
    return json.loads(to_json(value))


class KVTask(RunnableTask):
    """A task on KV stores: quick, run on the executor's thread."""

    inline = True


class NamespaceKVTask(KVTask):
    """A KV task on one namespace's store."""

    properties: ClassVar[dict[str, Prop]] = {
        "namespace": Prop("The namespace of the KV store.", type="string", default="{{ flow.namespace }}")
    }

    def namespace(self, ctx: RunContext) -> str:
        return str(ctx.prop("namespace"))

    def store(self, ctx: RunContext) -> KVStore:
        return KVStore(ctx.storage, self.namespace(ctx))

    def missing(self, ctx: RunContext, key: str) -> TaskError:
        return TaskError(
            f"No value found for key '{key}' in namespace '{self.namespace(ctx)}' and `errorOnMissing` is set to true"
        )


@register
class Set(NamespaceKVTask):
    """Create or modify a Key-Value pair."""

    type_name = "io.kestra.plugin.core.kv.Set"
    properties = {
        "key": Prop("The key for which to set the value.", type="string", required=True),
        "value": Prop("The value to map to the key (a lone `{{ expression }}` keeps its type).", required=True),
        "overwrite": Prop(
            "Whether to overwrite or fail if a value for the given key already exists.", type="boolean", default=True
        ),
        "ttl": Prop("Optional Time-To-Live for the key-value pair; without it the pair never expires.", "duration"),
        "kvType": Prop("The type to store a text value as.", type="string", values=tuple(KVType.__members__)),
    }

    def run(self, ctx: RunContext) -> dict[str, Any] | None:
        raw = self.spec["value"]
        value = render_typed(raw if isinstance(raw, str) else to_text(raw), ctx.variables)  # Property<String>
        if self.spec.get("kvType") is not None:
            value = convert(value, ctx.prop("kvType"))
        store, key, ttl = self.store(ctx), str(ctx.prop("key")), ctx.prop("ttl")
        store.put(key, value, ttl=ttl, overwrite=ctx.prop("overwrite"))
        return None


@register
class Get(NamespaceKVTask):
    """Fetch a value by key; outputs `value`, of the type it was stored with."""

    type_name = "io.kestra.plugin.core.kv.Get"
    properties = {
        "key": Prop("The key for which to get the value.", type="string", required=True),
        "errorOnMissing": ERROR_ON_MISSING,
    }
    outputs = {"value": "The value, of the type it was stored with (absent when there is none)."}

    def run(self, ctx: RunContext) -> dict[str, Any] | None:
        key = str(ctx.prop("key"))
        found = self.store(ctx).get(key)
        if found is None and ctx.prop("errorOnMissing"):
            raise self.missing(ctx, key)
        return {} if found is None or found.value is None else {"value": plain(found.value)}


@register
class Delete(NamespaceKVTask):
    """Delete a key; outputs `deleted`."""

    type_name = "io.kestra.plugin.core.kv.Delete"
    properties = {
        "key": Prop("The key for which to delete the value.", type="string", required=True),
        "errorOnMissing": ERROR_ON_MISSING,
    }
    outputs = {"deleted": "Whether a key was deleted."}

    def run(self, ctx: RunContext) -> dict[str, Any] | None:
        key = str(ctx.prop("key"))
        deleted = self.store(ctx).delete(key)
        if not deleted and ctx.prop("errorOnMissing"):
            raise self.missing(ctx, key)
        return {"deleted": deleted}


@register
class GetKeys(NamespaceKVTask):
    """List the keys of a namespace (not expired), optionally those starting with `prefix`."""

    type_name = "io.kestra.plugin.core.kv.GetKeys"
    properties = {"prefix": Prop("Only the keys starting with this prefix.", type="string")}
    outputs = {"keys": "The keys."}

    def run(self, ctx: RunContext) -> dict[str, Any] | None:
        prefix = ctx.prop("prefix") or ""
        return {"keys": [e.key for e in self.store(ctx).list() if e.key.startswith(prefix)]}


@register
class Put(NamespaceKVTask):
    """Update a key (Kestra 1.x): maps are deep merged into the stored map, `[{key, value}]` entries patch
    (dotted) fields, a single `[{value: X}]` replaces the value; the expiration and description are kept."""

    type_name = "io.kestra.plugin.core.kv.Put"
    properties = {
        "key": Prop("Key to update.", type="string", required=True),
        "value": Prop(
            "Value payload to write: maps are deep merged and entry lists can replace or patch JSON fields.",
            required=True,
        ),
        "errorOnMissing": Prop(
            "Fail when the key is absent (false: a new key-value pair is created).", type="boolean", default=False
        ),
    }

    def run(self, ctx: RunContext) -> dict[str, Any] | None:
        store, key = self.store(ctx), str(ctx.prop("key"))
        entry, current = store.entry(key), store.get(key)
        if current is None and ctx.prop("errorOnMissing"):
            raise self.missing(ctx, key)
        try:
            merged = merge_values(current.value if current else None, self.rendered_value(ctx))
        except ValueError as error:
            raise TaskError(str(error)) from None
        expiration, description = (entry.expiration_date, entry.description) if entry else (None, None)
        store.put(key, merged, expiration=expiration, description=description)
        return None

    def rendered_value(self, ctx: RunContext) -> Any:
        """Property<Object>: maps and lists render item by item; a text is rendered typed (`{{ 42 }}` is 42)."""
        value = self.spec["value"]
        return render_typed(value, ctx.variables) if isinstance(value, str) else ctx.render(value)


def merge_values(existing: Any, new: Any) -> Any:
    if isinstance(new, list) and _is_entry_list(new):
        return _merge_entries(existing, new)
    if isinstance(existing, dict) and isinstance(new, dict):
        return deep_merge(existing, new)
    return new


def _is_entry_list(items: list[Any]) -> bool:
    return bool(items) and all(isinstance(i, dict) and "value" in i and set(i) <= {"key", "value"} for i in items)


def _merge_entries(existing: Any, entries: list[dict[str, Any]]) -> Any:
    keyed = [e for e in entries if e.get("key") is not None]
    if len(keyed) < len(entries):
        if len(entries) > 1:
            raise ValueError("`value` entries without `key` can only be used as a single replacement item.")
        return entries[0]["value"]
    updates: dict[str, Any] = {}
    for entry in keyed:
        if not isinstance(entry["key"], str) or not entry["key"].strip():
            raise ValueError("Each keyed `value` entry must have a non-empty string `key`.")
        *parents, last = entry["key"].split(".")
        node = updates
        for part in parents:
            node = node.setdefault(part, {})
        node[last] = entry["value"]
    if existing is None:
        return updates
    if not isinstance(existing, dict):
        raise ValueError("Cannot apply keyed `value` updates to a non-JSON existing KV value.")
    return deep_merge(existing, updates)


@register
class PurgeKV(KVTask):
    """Delete keys (by default the expired ones) across namespaces; outputs `size`, the count deleted."""

    type_name = "io.kestra.plugin.core.kv.PurgeKV"
    properties = {
        "namespaces": Prop("Namespaces to delete keys from; if not set, all namespaces are considered.", "array"),
        "namespacePattern": Prop(
            "Glob pattern of the namespaces to delete keys from (instead of `namespaces`).", "string"
        ),
        "keyPattern": Prop("Delete only keys matching this glob pattern, e.g. 'AI_*'.", type="string"),
        "includeChildNamespaces": Prop(
            "Also delete keys from the child namespaces of `namespaces`.", type="boolean", default=True
        ),
        "behavior": Prop(
            "How keys are purged: `{type: key, expiredOnly: true}` (default) or `{type: version, ...}`.", "object"
        ),
        "expiredOnly": Prop(
            "Deprecated (use `behavior.expiredOnly`): delete only expired keys.", type="boolean", default=True
        ),
    }
    outputs = {"size": "The number of keys deleted."}

    @classmethod
    def validate(cls, spec: dict[str, Any]) -> list[str]:
        """`namespaces` and `namespacePattern` exclude each other."""
        problems = super().validate(spec)
        if spec.get("namespaces") and spec.get("namespacePattern"):
            problems.append("namespacePattern: " + _BOTH)
        return problems

    def run(self, ctx: RunContext) -> dict[str, Any] | None:
        chosen = self.namespaces(ctx)
        ctx.info(f"purging {len(chosen)} namespaces: [{', '.join(chosen)}]")
        expired_only, by_version = self.behavior(ctx)
        pattern = ctx.prop("keyPattern") or ""
        count, now = 0, utcnow()
        for namespace in [] if by_version else chosen:
            store = KVStore(ctx.storage, namespace)
            for entry in store.list(include_expired=True):
                if (not expired_only or entry.expired(now)) and (not pattern or fnmatchcase(entry.key, pattern)):
                    count += store.delete(entry.key)
        ctx.info(f"purged {count} keys")
        return {"size": count}

    def namespaces(self, ctx: RunContext) -> list[str]:
        """Every namespace holding keys, filtered by `namespaces` (and children) or `namespacePattern`."""
        wanted = [str(n) for n in ctx.render(self.spec.get("namespaces") or [])]
        pattern = ctx.prop("namespacePattern") or ""
        if wanted and pattern:
            raise TaskError(_BOTH)
        existing = sorted(name for name, kinds in in_storage(ctx.storage).items() if KV in kinds)
        if pattern:
            return [n for n in existing if fnmatchcase(n, pattern)]
        if not wanted:
            return existing
        children = ctx.prop("includeChildNamespaces")
        return [n for n in existing if any(n == w or (children and n.startswith(w + ".")) for w in wanted)]

    def behavior(self, ctx: RunContext) -> tuple[bool, bool]:
        """(expired only, by version). kestractl keeps one version per key, the one Kestra never purges."""
        if self.spec.get("expiredOnly") is not None:
            return ctx.prop("expiredOnly"), False
        behavior = ctx.render(self.spec.get("behavior") or {})
        kind = str(behavior.get("type", "key")).lower() if isinstance(behavior, dict) else ""
        if kind not in ("key", "version"):
            raise TaskError(f"behavior.type: must be `key` or `version`, not `{kind}`")
        return str(behavior.get("expiredOnly", True)).lower() == "true", kind == "version"


_BOTH = "Properties `namespaces` and `namespacePattern` can't be used at the same time — use one or the other."
