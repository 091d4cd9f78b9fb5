"""Kestra's KV store tasks (`io.kestra.plugin.core.kv.*`): Set, Get, Delete, GetKeys, Put, PurgeKV."""

from __future__ import annotations

import json
from fnmatch import fnmatchcase
from typing import Any, ClassVar

from kestractl.durations import is_duration, parse_duration
from kestractl.errors import TaskError
from kestractl.expressions import render_typed
from kestractl.expressions_text import to_json, to_text
from kestractl.kv import KVStore, KVType, convert, namespaces
from kestractl.model import deep_merge, utcnow
from kestractl.tasks.base import RunContext, RunnableTask
from kestractl.tasks.registry import register

NAMESPACE = "The namespace of the KV store; by default, the flow's namespace."
ERROR_ON_MISSING = "Whether to fail if there is no value for the given key."


def plain(value: Any) -> Any:
    """A value as task outputs hold it: Kestra's JSON forms (instants and durations as ISO text)."""
    return json.loads(to_json(value))


def dynamic(value: Any) -> bool:
    return "{{" in str(value)


class KVTask(RunnableTask):
    """What every KV task shares: rendered text and flags."""

    inline = True

    def text(self, ctx: RunContext, name: str, default: str | None = None) -> str:
        value = self.spec.get(name, default)
        if value is None:
            raise TaskError(f"{name}: required")
        return str(ctx.render(value))

    def flag(self, ctx: RunContext, name: str, default: bool) -> bool:
        return ctx.render_flag(self.spec.get(name), default)


class NamespaceKVTask(KVTask):
    """A KV task on one namespace's store."""

    properties: ClassVar[dict[str, str]] = {"namespace": NAMESPACE}

    def namespace(self, ctx: RunContext) -> str:
        return self.text(ctx, "namespace", ctx.flow.namespace)

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
        "key": "The key for which to set the value.",
        "value": "The value to map to the key (a lone `{{ expression }}` keeps its type).",
        "overwrite": "Whether to overwrite or fail if a value for the given key already exists (default true).",
        "ttl": "Optional Time-To-Live (ISO duration) for the key-value pair; without it the pair never expires.",
        "kvType": "The type to store a text value as: STRING, NUMBER, BOOLEAN, DATETIME, DATE, DURATION or JSON.",
    }
    required = ("key", "value")

    @classmethod
    def validate(cls, spec: dict[str, Any]) -> list[str]:
        problems = super().validate(spec)
        ttl, kv_type = spec.get("ttl"), spec.get("kvType")
        if ttl is not None and not dynamic(ttl) and not is_duration(ttl):
            problems.append(f"ttl: `{ttl}` is not an ISO-8601 duration (e.g. PT1H)")
        if kv_type is not None and not dynamic(kv_type) and str(kv_type).upper() not in KVType.__members__:
            problems.append(f"kvType: must be one of {', '.join(KVType.__members__)}, not `{kv_type}`")
        return problems

    def run(self, ctx: RunContext) -> dict[str, Any] | None:
        raw = self.spec["value"]
        value = render_typed(raw if isinstance(raw, str) else to_text(raw), ctx.variables)  # Property<String>
        if self.spec.get("kvType") is not None:
            value = convert(value, self.text(ctx, "kvType"))
        ttl = parse_duration(self.text(ctx, "ttl")) if self.spec.get("ttl") is not None else None
        self.store(ctx).put(self.text(ctx, "key"), value, ttl=ttl, overwrite=self.flag(ctx, "overwrite", True))
        return None


@register
class Get(NamespaceKVTask):
    """Fetch a value by key; outputs `value`, of the type it was stored with."""

    type_name = "io.kestra.plugin.core.kv.Get"
    properties = {"key": "The key for which to get the value.", "errorOnMissing": ERROR_ON_MISSING}
    required = ("key",)

    def run(self, ctx: RunContext) -> dict[str, Any] | None:
        key = self.text(ctx, "key")
        found = self.store(ctx).get(key)
        if found is None and self.flag(ctx, "errorOnMissing", False):
            raise self.missing(ctx, key)
        return {} if found is None or found.value is None else {"value": plain(found.value)}


@register
class Delete(NamespaceKVTask):
    """Delete a key; outputs `deleted`."""

    type_name = "io.kestra.plugin.core.kv.Delete"
    properties = {"key": "The key for which to delete the value.", "errorOnMissing": ERROR_ON_MISSING}
    required = ("key",)

    def run(self, ctx: RunContext) -> dict[str, Any] | None:
        key = self.text(ctx, "key")
        deleted = self.store(ctx).delete(key)
        if not deleted and self.flag(ctx, "errorOnMissing", False):
            raise self.missing(ctx, key)
        return {"deleted": deleted}


@register
class GetKeys(NamespaceKVTask):
    """List the keys of a namespace (not expired), optionally those starting with `prefix`."""

    type_name = "io.kestra.plugin.core.kv.GetKeys"
    properties = {"prefix": "Only the keys starting with this prefix."}

    def run(self, ctx: RunContext) -> dict[str, Any] | None:
        prefix = self.text(ctx, "prefix", "")
        return {"keys": [e.key for e in self.store(ctx).list() if e.key.startswith(prefix)]}


@register
class Put(NamespaceKVTask):
    """Update a key (Kestra 1.x): maps are deep merged into the stored map, `[{key, value}]` entries patch
    (dotted) fields, a single `[{value: X}]` replaces the value; the expiration and description are kept."""

    type_name = "io.kestra.plugin.core.kv.Put"
    properties = {
        "key": "Key to update.",
        "value": "Value payload to write: maps are deep merged and entry lists can replace or patch JSON fields.",
        "errorOnMissing": "Fail when the key is absent (default false: a new key-value pair is created).",
    }
    required = ("key", "value")

    def run(self, ctx: RunContext) -> dict[str, Any] | None:
        store, key = self.store(ctx), self.text(ctx, "key")
        entry, current = store.entry(key), store.get(key)
        if current is None and self.flag(ctx, "errorOnMissing", False):
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
        "namespaces": "Namespaces to delete keys from; if not set, all namespaces are considered.",
        "namespacePattern": "Glob pattern of the namespaces to delete keys from (instead of `namespaces`).",
        "keyPattern": "Delete only keys matching this glob pattern, e.g. 'AI_*'.",
        "includeChildNamespaces": "Also delete keys from the child namespaces of `namespaces` (default true).",
        "behavior": "How keys are purged: `{type: key, expiredOnly: true}` (default) or `{type: version, ...}`.",
        "expiredOnly": "Deprecated (use `behavior.expiredOnly`): delete only expired keys (default true).",
    }

    @classmethod
    def validate(cls, spec: dict[str, Any]) -> list[str]:
        problems = super().validate(spec)
        if spec.get("namespaces") and spec.get("namespacePattern"):
            problems.append("namespacePattern: " + _BOTH)
        return problems

    def run(self, ctx: RunContext) -> dict[str, Any] | None:
        chosen = self.namespaces(ctx)
        ctx.info(f"purging {len(chosen)} namespaces: [{', '.join(chosen)}]")
        expired_only, by_version = self.behavior(ctx)
        pattern = self.text(ctx, "keyPattern", "")
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
        pattern = self.text(ctx, "namespacePattern", "")
        if wanted and pattern:
            raise TaskError(_BOTH)
        existing = namespaces(ctx.storage)
        if pattern:
            return [n for n in existing if fnmatchcase(n, pattern)]
        if not wanted:
            return existing
        children = self.flag(ctx, "includeChildNamespaces", True)
        return [n for n in existing if any(n == w or (children and n.startswith(w + ".")) for w in wanted)]

    def behavior(self, ctx: RunContext) -> tuple[bool, bool]:
        """(expired only, by version). kestractl keeps one version per key, the one Kestra never purges."""
        if self.spec.get("expiredOnly") is not None:
            return self.flag(ctx, "expiredOnly", True), False
        behavior = ctx.render(self.spec.get("behavior") or {})
        kind = str(behavior.get("type", "key")).lower() if isinstance(behavior, dict) else ""
        if kind not in ("key", "version"):
            raise TaskError(f"behavior.type: must be `key` or `version`, not `{kind}`")
        return str(behavior.get("expiredOnly", True)).lower() == "true", kind == "version"


_BOTH = "Properties `namespaces` and `namespacePattern` can't be used at the same time — use one or the other."
