"""The JSON Schema of a flow (draft 7, shaped as Kestra's `/api/v1/plugins/schemas/flow`), for editors.

It is generated from the declarations the parser checks flows with, never from a list of its own: each task's,
polling trigger's and plugin condition's `Prop`s (kestractl's and the installed plugins'), the core triggers',
conditions' and inputs' property tables, and the flow's own keys. As in Kestra's schema, each type is a definition
keyed by its type name whose `type` is a `const` (what editors complete and discriminate by), unions are `oneOf`,
descriptions are also `markdownDescription`, and a typed property the parser renders also takes an expression
string. A key the parser refuses is refused here (`additionalProperties: false`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from typing import Any, TypeVar

from kestractl.inputs import ID_PATTERN, INPUT_PROPERTIES, INPUT_TYPE_PROPERTIES, INPUT_TYPES
from kestractl.parser import CONCURRENCY_BEHAVIORS, FLOW_ID_RE, FLOW_PROPERTIES, NAMESPACE_RE
from kestractl.tasks import registry
from kestractl.tasks.base import COMMON_PROPERTIES, TASK_ID_RE, Task
from kestractl.tasks.properties import TEXT_FORMS, Declared, Prop, declared
from kestractl.tasks.reference import default_text, summary
from kestractl.triggers import conditions, validate
from kestractl.triggers.conditions import Condition
from kestractl.triggers.polling import PollingTrigger

D = TypeVar("D", bound=Declared)
Definition = tuple[str, dict[str, Any]]
DRAFT_7 = "http://json-schema.org/draft-07/schema#"
FLOW = "io.kestra.core.models.flows.Flow"
TASK = "io.kestra.core.models.tasks.Task"
TRIGGER = "io.kestra.core.models.triggers.AbstractTrigger"
CONDITION = "io.kestra.core.models.conditions.Condition"
INPUT = "io.kestra.core.models.flows.Input"
# What the parser takes for a rendered value (`Property<T>`) in place of the declared kind: Kestra's schema says
# `.*{{.*}}.*`; kestractl also renders `{% %}` tags.
EXPRESSION = r"\{\{|\{%"
_JSON_TYPES: dict[str, Any] = {
    "string": ["string", "number", "boolean"],  # a scalar reads as its text, as Jackson reads it
    "duration": "string",
    **{kind: kind for kind in ("integer", "number", "boolean", "object", "array")},
}
# Common keys of tasks and triggers the parser refuses whatever their value (`workerGroup`, Enterprise Edition
# only): left out, so refused here too.
_TASK_KEYS = {name: prop for name, prop in COMMON_PROPERTIES.items() if name != "workerGroup"}
_TRIGGER_KEYS = {name: prop for name, prop in validate.COMMON.items() if name != "workerGroup"}


def flow_schema() -> dict[str, Any]:
    """The flow's schema: the root `$ref`s the flow definition, as Kestra's does."""
    return _document(FLOW)


def _document(root: str) -> dict[str, Any]:
    definitions: dict[str, Any] = {FLOW: _flow()}
    for union, members in _unions().items():
        definitions[union] = {"oneOf": [_ref(name) for name in sorted(members)]}
        definitions.update(members)
    return {"$schema": DRAFT_7, **_ref(root), "definitions": definitions}


def schema_of(kind: str) -> dict[str, Any] | None:
    """Kestra's `/plugins/schemas/{type}` for the types kestractl has: flow, task, trigger; None otherwise."""
    roots = {"flow": FLOW, "task": TASK, "trigger": TRIGGER}
    return _document(roots[kind]) if kind in roots else None


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/definitions/{name}"}


def _list_of(name: str, prop: Prop) -> dict[str, Any]:
    return {**_described(prop), "type": "array", "items": _ref(name)}


# ---------------------------------------------------------------- properties


def property_schema(prop: Prop) -> dict[str, Any]:
    """A declared property: its kind (or enumeration), the text forms the parser coerces, and an expression when
    it is rendered (Kestra's `$dynamic`); with its description and default."""
    return {**_described(prop), **_kind(prop), "$dynamic": prop.dynamic}


def _kind(prop: Prop) -> dict[str, Any]:
    exact: dict[str, Any] = {"enum": list(prop.values)} if prop.values else _typed(prop.type)
    texts = [] if prop.values else [f"^\\s*(?:{TEXT_FORMS[prop.type]})\\s*$"] if prop.type in TEXT_FORMS else []
    takes_any_text = not prop.values and prop.type in ("string", "duration", "any")
    texts += [EXPRESSION] if prop.dynamic and not takes_any_text else []
    if not texts:
        return exact
    return {"oneOf": [exact, {"type": "string", "pattern": "|".join(f"(?:{text})" for text in texts)}]}


def _typed(kind: str) -> dict[str, Any]:
    if kind == "any":
        return {}
    return {"type": _JSON_TYPES[kind], **({"format": "duration"} if kind == "duration" else {})}


def _described(prop: Prop) -> dict[str, Any]:
    """`description`, and Kestra's `markdownDescription` (what VS Code shows) with the default appended."""
    out: dict[str, Any] = {"description": prop.description} if prop.description else {}
    if prop.default is not None:
        out["default"] = json.loads(json.dumps(prop.default, default=str))  # a plugin's default may be any value
        shown = f"Default value is : `{default_text(prop.default)}`"
        out["markdownDescription"] = f"{prop.description}\n\n{shown}" if prop.description else shown
    elif prop.description:
        out["markdownDescription"] = prop.description
    return out


def _matching(pattern: str) -> dict[str, str]:
    """An id: a string of this pattern (the parser takes no other scalar there)."""
    return {"type": "string", "pattern": pattern}


def _properties(props: Mapping[str, Prop]) -> dict[str, Any]:
    return {name: property_schema(prop) for name, prop in props.items()}


def _required(props: Mapping[str, Prop], *more: str) -> list[str]:
    return sorted({*(name for name, prop in props.items() if prop.required), *more})


def _definition(name: str, title: str, properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    """One type: an object whose `type` is the constant `name`, closed to undeclared keys."""
    const = {"const": name, "description": f"`{name}`"}
    body: dict[str, Any] = {"type": "object", "title": title or name.rsplit(".", 1)[-1]}
    body |= {"markdownDescription": title} if title else {}
    body |= {"properties": {**properties, "type": const}, "required": sorted({"type", *required})}
    return {**body, "additionalProperties": False}


def _deprecated(definition: dict[str, Any], current: str) -> dict[str, Any]:
    """An alias's definition: the type's, with its own `const` and the current name to use instead."""
    message = f"Deprecated type name: use `{current}`."
    return {**definition, "deprecationMessage": message, "$deprecated": True}


# ---------------------------------------------------------------- the flow and its unions


def _flow() -> dict[str, Any]:
    props = _properties(FLOW_PROPERTIES)
    props |= {name: _list_of(TASK, FLOW_PROPERTIES[name]) for name in ("tasks", "errors", "finally", "afterExecution")}
    props["tasks"]["minItems"] = 1
    props["inputs"] = _list_of(INPUT, FLOW_PROPERTIES["inputs"])
    props["triggers"] = _list_of(TRIGGER, FLOW_PROPERTIES["triggers"])
    props["id"] |= _matching(FLOW_ID_RE.pattern)
    props["namespace"] |= _matching(NAMESPACE_RE.pattern)
    props["concurrency"] |= _concurrency()
    props["pluginDefaults"]["items"] = props["taskDefaults"]["items"] = _plugin_default()
    required = _required(FLOW_PROPERTIES)
    return {"type": "object", "title": "Flow", "properties": props, "required": required, "additionalProperties": False}


def _concurrency() -> dict[str, Any]:
    limit = {"type": "integer", "minimum": 1, "description": "The most executions running at once."}
    behavior = {"enum": list(CONCURRENCY_BEHAVIORS), "default": "QUEUE", "description": "What the next one does."}
    properties = {"limit": limit, "behavior": behavior}
    return {"type": "object", "properties": properties, "required": ["limit"], "additionalProperties": False}


def _plugin_default() -> dict[str, Any]:
    """An item of `pluginDefaults`: the properties given to the tasks of a type (or of a type name prefix)."""
    properties = {
        "type": {"type": "string", "description": "A task type, or the start of type names (io.kestra.plugin.core)."},
        "values": {"type": "object", "description": "The properties, merged under each task's own."},
        "forced": {"type": "boolean", "default": False, "description": "Merged over each task's own instead."},
    }
    return {"type": "object", "properties": properties, "required": ["type", "values"]}


def _unions() -> dict[str, dict[str, Any]]:
    """Task, trigger, condition and input: each a `oneOf` of its types' definitions, by type name."""
    types = registry.every_type()
    polling = {name: cls for name, cls in types.items() if issubclass(cls, PollingTrigger)}
    plugin_conditions = {name: cls for name, cls in types.items() if issubclass(cls, Condition)}
    return {
        TASK: dict(_declared(registry.all_types(plugins=True), _task)),
        TRIGGER: dict(_core_triggers()) | dict(_declared(polling, _polling_trigger)),
        CONDITION: dict(_core_conditions()) | dict(_declared(plugin_conditions, _plugin_condition)),
        INPUT: {f"{INPUT}-{kind}": _input(kind) for kind in sorted(INPUT_TYPES)},
    }


def _declared(types: Mapping[str, type[D]], build: Callable[[type[D], str], dict[str, Any]]) -> Iterator[Definition]:
    """A definition per public type name (an alias's marked deprecated), from its class's declarations."""
    for name, cls in sorted(types.items()):
        if "$" not in name:  # internal types, as Kestra's `isInternal`
            definition = build(cls, name)
            yield name, definition if name == cls.type_name else _deprecated(definition, cls.type_name)


# ---------------------------------------------------------------- tasks, triggers, conditions, inputs


def _task(cls: type[Task], name: str) -> dict[str, Any]:
    props = _properties(_TASK_KEYS) | _properties(cls.all_properties()) | _child_lists(cls)
    props["id"] |= _matching(TASK_ID_RE.pattern)
    required = _required({**_TASK_KEYS, **cls.all_properties()}, *cls.required)
    return _definition(name, summary(cls), props, required)


def _child_lists(cls: type[Task]) -> dict[str, Any]:
    """A flowable task's child task lists; lists whose items are not plain tasks (a Dag's {task, dependsOn}: the
    type reads its lists itself) are only arrays."""
    plain = getattr(cls.child_specs, "__func__", None) is getattr(Task.child_specs, "__func__", None)
    described = {name: Prop(f"The `{name}` tasks.", "array") for name in cls.child_lists}
    return {name: _list_of(TASK, prop) if plain else property_schema(prop) for name, prop in described.items()}


def _core_triggers() -> Iterator[Definition]:
    for names in validate.CORE_TRIGGERS:
        current = names[0]
        own = validate.OWN[current.rsplit(".", 1)[-1]]
        for name in names:
            definition = _trigger(name, "", own)
            yield name, definition if name == current else _deprecated(definition, current)


def _polling_trigger(cls: type[PollingTrigger], name: str) -> dict[str, Any]:
    return _trigger(name, summary(cls), cls.all_properties())


def _trigger(name: str, title: str, own: Mapping[str, Prop]) -> dict[str, Any]:
    declarations = {**_TRIGGER_KEYS, **own}
    props = _properties(declarations)
    for key in ("conditions", "scheduleConditions"):
        props.update({key: _list_of(CONDITION, declarations[key])} if key in props else {})
    props["id"] |= _matching(TASK_ID_RE.pattern)
    return _definition(name, title, props, _required(declarations))


def _core_conditions() -> Iterator[Definition]:
    current_prefix = conditions.PREFIXES[0]
    for name, short in sorted(conditions.SHORT_NAMES.items()):
        props = _properties({key: declared(text) for key, text in conditions.PROPERTIES[short].items()})
        if "conditions" in props:  # Not and Or: a list; MultipleCondition: a map of name to condition
            nested = {"type": "object", "additionalProperties": _ref(CONDITION)}
            props["conditions"] |= (
                nested if short == "MultipleCondition" else {"type": "array", "items": _ref(CONDITION)}
            )
        definition = _definition(name, "", props, [])
        current = current_prefix + short
        yield name, definition if name == current else _deprecated(definition, current)


def _plugin_condition(cls: type[Condition], name: str) -> dict[str, Any]:
    return _definition(name, summary(cls), _properties(cls.all_properties()), _required(cls.all_properties()))


def _input(kind: str) -> dict[str, Any]:
    """An input of one type; its id may still be given as the deprecated `name`."""
    declarations = {**INPUT_PROPERTIES, **INPUT_TYPE_PROPERTIES.get(kind, {})}
    props = _properties(declarations)
    props["id"] |= _matching(ID_PATTERN)
    props["name"] |= _matching(ID_PATTERN)
    definition = _definition(kind, f"{kind} input", props, _required(declarations))
    return {**definition, "anyOf": [{"required": ["id"]}, {"required": ["name"]}]}
