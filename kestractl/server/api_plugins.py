"""The endpoints editors call (Kestra's `PluginController`, `/configs`, the Pebble lists), so Kestra's VS Code
extension works against `kestractl server standalone`: it downloads the flow schema, lists and documents the
plugins, checks the server (`/configs`) and completes `{{ }}` expressions.

Everything here is read from the flow schema (`kestractl.flow_schema`), generated once per process: the types,
their titles, their properties, their aliases; the types' classes add their outputs and Markdown docs.
"""

from __future__ import annotations

import functools
from typing import Any

from kestractl import __version__
from kestractl.errors import NotFoundError, unknown_type
from kestractl.server.http import Request, Response, Router

PLUGINS = "/api/v1/plugins"
# As Kestra's PluginController: the documents change only with the installed plugins.
CACHED = {"Cache-Control": "public, max-age=3600"}
# Union of the flow schema → the list it is in a Kestra plugin entry.
_KINDS = {
    "io.kestra.core.models.tasks.Task": "tasks",
    "io.kestra.core.models.triggers.AbstractTrigger": "triggers",
    "io.kestra.core.models.conditions.Condition": "conditions",
}


def add_routes(router: Router) -> None:
    router.add("GET", PLUGINS + "/schemas/{type}", schemas)
    router.add("GET", PLUGINS, lambda request: _cached(_plugins(subgroups=False)))
    router.add("GET", PLUGINS + "/groups/subgroups", lambda request: _cached(_plugins(subgroups=True)))
    router.add("GET", PLUGINS + "/icons", lambda request: _cached(_icons()))
    router.add("GET", PLUGINS + "/icons/groups", lambda request: _cached(_group_icons()))
    router.add("GET", PLUGINS + "/{cls}", documentation)
    router.add("GET", "/api/v1/configs", lambda request: Response(body=_configs()))
    router.add("GET", "/api/v1/pebble/filters", lambda request: _cached(_pebble("filters")))
    router.add("GET", "/api/v1/pebble/functions", lambda request: _cached(_pebble("functions")))


def _cached(body: Any) -> Response:
    return Response(body=body, headers=CACHED)


@functools.cache
def _schema(kind: str) -> dict[str, Any] | None:
    from kestractl.flow_schema import schema_of

    return schema_of(kind)


def schemas(request: Request) -> Response:
    """`/plugins/schemas/{type}`: the JSON Schema of a flow, a task or a trigger (draft 7)."""
    kind = request.path_params["type"]
    schema = _schema(kind)
    if schema is None:
        raise NotFoundError(f"No schema of type `{kind}`: kestractl has flow, task and trigger")
    return _cached(schema)


def _definitions() -> dict[str, dict[str, Any]]:
    schema = _schema("flow")
    assert schema is not None
    definitions: dict[str, dict[str, Any]] = schema["definitions"]
    return definitions


@functools.cache
def _types() -> dict[str, tuple[str, dict[str, Any]]]:
    """Every task, trigger and condition type name → its kind and its definition."""
    definitions = _definitions()
    return {
        member["$ref"].rsplit("/", 1)[-1]: (kind, definitions[member["$ref"].rsplit("/", 1)[-1]])
        for union, kind in _KINDS.items()
        for member in definitions[union]["oneOf"]
    }


def _group(name: str) -> str:
    """The plugin a type belongs to, as Kestra groups them: `io.kestra.plugin.<plugin>`."""
    return ".".join(name.split(".")[:4])


def _plugins(subgroups: bool) -> list[dict[str, Any]]:
    """Kestra's plugin entries: one per plugin, and with `subgroups` one per package inside it."""
    entries: dict[tuple[str, str | None], dict[str, Any]] = {}
    for name, (kind, definition) in sorted(_types().items()):
        package = name.rpartition(".")[0]
        keys = [(_group(name), None)] + ([(_group(name), package)] if subgroups and package != _group(name) else [])
        for group, subgroup in keys:
            entry = entries.setdefault((group, subgroup), _entry(group, subgroup))
            if definition.get("$deprecated"):
                entry["aliases"].append(name)
            else:
                entry[kind].append({"cls": name, "title": definition.get("markdownDescription"), "deprecated": None})
    return list(entries.values())


def _entry(group: str, subgroup: str | None) -> dict[str, Any]:
    title = (subgroup or group).rsplit(".", 1)[-1]
    lists: dict[str, Any] = {kind: [] for kind in (*_KINDS.values(), "aliases")}
    return {"name": group.rsplit(".", 1)[-1], "title": title, "group": group, "subGroup": subgroup, **lists}


def _icons() -> dict[str, dict[str, Any]]:
    """Kestra's icon entries per type (kestractl ships no icons: `icon` is null, editors show none)."""
    from kestractl.tasks import registry

    tasks = registry.all_types(plugins=True)
    return {
        name: {"name": name.rsplit(".", 1)[-1], "icon": None, "flowable": name in tasks and tasks[name].is_flowable}
        for name in _types()
    }


def _group_icons() -> dict[str, dict[str, Any]]:
    groups = {_group(name) for name in _types()}
    return {group: {"name": "plugin-icon", "icon": None, "flowable": False} for group in sorted(groups)}


def documentation(request: Request) -> Response:
    """`/plugins/{cls}`: a type's Markdown documentation and its schema (properties and outputs)."""
    from kestractl.tasks import reference, registry

    name = request.path_params["cls"]
    found = _types().get(name)
    if found is None:
        raise NotFoundError(unknown_type("plugin", name))
    definition = found[1]
    cls = registry.resolve_any(name)
    markdown = reference.doc(cls) if cls else f"### `{name}`\n\n{definition.get('markdownDescription', '')}\n"
    outputs = {key: {"description": text} for key, text in (cls.outputs if cls else {}).items()}
    properties = {key: definition.get(key) for key in ("title", "markdownDescription", "properties", "required")}
    schema = {"properties": {**properties, "description": definition.get("markdownDescription")}, "definitions": {}}
    return _cached({"markdown": markdown, "schema": {**schema, "outputs": {"properties": outputs}}})


def _configs() -> dict[str, Any]:
    """Kestra's `/configs` (the extension's check that the server answers, and its version)."""
    flags = ("isTaskRunEnabled", "isAnonymousUsageEnabled", "isTemplateEnabled", "isCustomDashboardsEnabled")
    return {"version": __version__, "commitId": None, **dict.fromkeys(flags, False), "systemNamespace": "system"}


def _pebble(kind: str) -> list[str]:
    """The names of the filters or functions expressions may use, for `{{ }}` completion: the environment's, and the
    functions a task's context adds (`kv`, `read` ...)."""
    from kestractl.expressions_env import ENV
    from kestractl.expressions_functions import FUNCTIONS

    names = set(ENV.filters) if kind == "filters" else {*ENV.globals, *FUNCTIONS}
    return sorted(name for name in names if not name.startswith("_"))
