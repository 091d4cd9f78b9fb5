"""Flow YAML → `Flow`, collecting every problem with its file, line and field path.

`tasks[2].message: required` is the shape of every message, prefixed by `file:line:` when the
line is known. Nothing here touches the store: validation is the same for deploy and validate.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping
from typing import Any

import yaml

from kestractl.errors import ValidationError, unknown_type, unrecognized
from kestractl.inputs import INPUT_TYPES, parse_input
from kestractl.javatext import utf16_text
from kestractl.model import Flow, Output, deep_merge, label_pairs, label_text
from kestractl.tasks import registry, templating
from kestractl.tasks.base import COMMON_KEYS, Task, dynamic, id_problem
from kestractl.tasks.properties import Prop

FLOW_ID_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9._-]*$")
NAMESPACE_RE = re.compile(r"^[a-z0-9][a-z0-9._-]*$")


def _key(description: str, kind: str = "any", required: bool = False, default: Any = None) -> Prop:
    """A key of the flow itself: never rendered."""
    return Prop(description, kind, required, default, dynamic=False)


# A flow's keys (Kestra's `Flow`): any other is refused; the flow schema describes them from here.
FLOW_PROPERTIES: dict[str, Prop] = {
    "id": _key("The flow's id, unique in its namespace.", "string", required=True),
    "namespace": _key("The flow's namespace: dot-separated, lower case (e.g. company.team).", "string", required=True),
    "revision": _key("Set by the server on each change; ignored when deployed.", "integer"),
    "description": _key("A description of the flow (Markdown).", "string"),
    "labels": _key("Labels of the flow's executions: a map, or a list of {key, value}."),
    "inputs": _key("The values an execution is started with.", "array"),
    "variables": _key("Values the tasks read as `{{ vars.name }}`.", "object"),
    "tasks": _key("The tasks run, in order.", "array", required=True),
    "errors": _key("Tasks run when a task fails.", "array"),
    "listeners": _key("Deprecated (off in Kestra since 0.12): checked, never run.", "array"),
    "triggers": _key("What starts the flow besides a user: schedules, flows, webhooks, polls.", "array"),
    "pluginDefaults": _key("Default property values for the tasks of a type (or a type prefix).", "array"),
    "taskDefaults": _key("Deprecated name of `pluginDefaults`.", "array"),
    "concurrency": _key("At most `limit` running executions; the next ones QUEUE, CANCEL or FAIL.", "object"),
    "outputs": _key("The flow's outputs: {id, type, value} rendered when the execution ends.", "array"),
    "retry": _key("How a failed execution is retried.", "object"),
    "disabled": _key("A disabled flow cannot be executed and its triggers do not fire.", "boolean", default=False),
    "sla": _key("Service-level checks: {id, type (MAX_DURATION, EXECUTION_ASSERTION), ...}.", "array"),
    "deleted": _key("Set by the server when a flow is deleted.", "boolean"),
    "tenantId": _key("The tenant (kestractl has one: main).", "string"),
    "finally": _key("Tasks run when the execution ends, whatever its state.", "array"),
    "afterExecution": _key("Tasks run after the execution ended, in its final state.", "array"),
    "workerGroup": _key("Worker groups are an Enterprise Edition feature.", "object"),
}
FLOW_KEYS = frozenset(FLOW_PROPERTIES)


class LineDict(dict[str, Any]):
    """A YAML mapping that remembers the line of each key (1-based)."""

    line: int = 0
    key_lines: dict[str, int]


class LineList(list[Any]):
    line: int = 0


# Aliases to maps and lists a document may use, as SnakeYAML (Kestra's parser) allows: more is a "billion laughs".
MAX_COLLECTION_ALIASES = 50


class _JavaText(yaml.constructor.SafeConstructor):
    def construct_scalar(self, node: yaml.ScalarNode | yaml.MappingNode) -> Any:
        """`"\\ud83d\\ude00"` is one character to Jackson; PyYAML leaves two halves that UTF-8 cannot store."""
        value = super().construct_scalar(node)
        return utf16_text(value) if isinstance(value, str) else value


class _Loader(_JavaText, yaml.SafeLoader):
    """Safe YAML that keeps line numbers and leaves dates as the text the user wrote."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.collection_aliases = 0

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        """Count aliases to collections: each one multiplies what the document expands to."""
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()  # type: ignore[no-untyped-call]
            if isinstance(self.anchors.get(event.anchor), yaml.CollectionNode):
                self.collection_aliases += 1
                if self.collection_aliases > MAX_COLLECTION_ALIASES:
                    raise yaml.composer.ComposerError(
                        None, None, f"more than {MAX_COLLECTION_ALIASES} aliases to maps or lists", event.start_mark
                    )
        return super().compose_node(parent, index)


# libyaml ships in PyYAML's wheels; a build without it falls back to the Python parser (same results, slower).
_CSafeLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _FastLoader(_JavaText, _CSafeLoader):  # type: ignore[valid-type,misc]
    """The same reading on libyaml, ten times faster; used for documents without anchors (see `_parse`)."""


def _kind_name(kind: type[yaml.Node]) -> str:
    return kind.__name__.removesuffix("Node").lower()


def _expect_kind(node: yaml.Node, kind: type[yaml.Node]) -> None:
    """`!!map ''` or `!!seq x`: PyYAML's own constructors refuse a tag on the wrong kind of node; ours must too."""
    if not isinstance(node, kind):
        problem = f"expected a {_kind_name(kind)}, but found {_kind_name(type(node))}"
        raise yaml.constructor.ConstructorError(None, None, problem, node.start_mark)


def _construct_mapping(loader: _Loader, node: yaml.MappingNode) -> LineDict:
    _expect_kind(node, yaml.MappingNode)
    written = {id(key) for key, _ in node.value}  # keys merged in by `<<:` may be overridden; written ones not
    loader.flatten_mapping(node)
    out = LineDict()
    out.line = node.start_mark.line + 1
    out.key_lines = {}
    seen: set[str] = set()
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        text = key if isinstance(key, str) else _scalar_text(key)
        if id(key_node) in written:
            if text in seen:  # Kestra's parser (Jackson, strict duplicate detection) refuses these
                raise yaml.constructor.ConstructorError(None, None, f"duplicate key `{text}`", key_node.start_mark)
            seen.add(text)
        out[text] = loader.construct_object(value_node, deep=True)
        out.key_lines[text] = key_node.start_mark.line + 1
    return out


def _scalar_text(value: Any) -> str:
    """A non-string YAML key as Java would print it (`true`, `null`, `1`)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return "null" if value is None else str(value)


def _construct_sequence(loader: _Loader, node: yaml.SequenceNode) -> LineList:
    _expect_kind(node, yaml.SequenceNode)
    out = LineList(loader.construct_object(child, deep=True) for child in node.value)
    out.line = node.start_mark.line + 1
    return out


# YAML 1.2 booleans: only true/false. `id: no` or `on: yes` stay strings, as Kestra's parser reads them.
_Loader.yaml_implicit_resolvers = {
    key: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:bool"]
    for key, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)
_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _construct_sequence)


def _construct_text(loader: _Loader, node: yaml.ScalarNode) -> str:
    return str(loader.construct_scalar(node))


_Loader.add_constructor("tag:yaml.org,2002:timestamp", _construct_text)
_FastLoader.yaml_constructors = _Loader.yaml_constructors
_FastLoader.yaml_implicit_resolvers = _Loader.yaml_implicit_resolvers
_PYTHON_ONLY = ("&", "\t", "\ufeff")


def _parse(text: str) -> Any:
    """libyaml reads a document without anchors (so no alias can multiply it), tabs or byte-order marks (where
    it accepts what PyYAML and SnakeYAML refuse). Whatever it refuses is read again by the Python loader, whose
    messages, line numbers and alias cap are the ones we promise. (libyaml still takes a few oddities PyYAML
    refuses, such as a comment glued to a block indicator, `|#`.)"""
    if not any(mark in text for mark in _PYTHON_ONLY):
        try:
            return yaml.load(text, Loader=_FastLoader)  # noqa: S506 - a CSafeLoader
        except Exception:  # noqa: S110 - the Python loader below reports it
            pass
    return yaml.load(text, Loader=_Loader)  # noqa: S506 - _Loader is a SafeLoader


CONCURRENCY_BEHAVIORS = ("QUEUE", "CANCEL", "FAIL")
SLA_TYPES = ("MAX_DURATION", "EXECUTION_ASSERTION")
MAX_SOURCE_CHARS = 1_000_000
MAX_DEPTH = 64


def load_yaml(text: str, filename: str = "<flow>") -> Any:
    """Parse YAML; a syntax error becomes one `file:line: reason` ValidationError."""
    if len(text) > MAX_SOURCE_CHARS:
        raise ValidationError(f"{filename}: a flow may hold at most {MAX_SOURCE_CHARS:,} characters")
    try:
        data = _parse(text)
    except RecursionError:
        raise ValidationError(f"{filename}: nested more than {MAX_DEPTH} levels deep") from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = f":{mark.line + 1}" if mark else ""
        reason = exc.problem or exc.context or "invalid YAML"
        if mark and "\t" in _line_of(text, mark.line):
            reason = "a tab character is not allowed in YAML indentation; use spaces"
        raise ValidationError(f"{filename}{line}: {reason}") from None
    except yaml.YAMLError as exc:
        raise ValidationError(f"{filename}: invalid YAML: {' '.join(str(exc).split())}") from None
    except Exception as exc:  # PyYAML's constructors on a tag that does not fit (`!!int abc`, `!!seq x`)
        raise ValidationError(f"{filename}: invalid YAML value: {type(exc).__name__}: {exc}") from None
    if _depth(data) > MAX_DEPTH:
        raise ValidationError(f"{filename}: nested more than {MAX_DEPTH} levels deep")
    return data


def to_plain(data: Any) -> Any:
    """Plain dicts and lists (for JSON) from what `load_yaml` returns."""
    if isinstance(data, dict):
        return {k: to_plain(v) for k, v in data.items()}
    if isinstance(data, list | set | frozenset | tuple):
        return [to_plain(v) for v in data]
    if isinstance(data, bytes):
        return base64.b64encode(data).decode()
    return data


def _depth(data: Any) -> int:
    """How deep maps and lists nest (iterative: a hostile document must not blow the stack)."""
    deepest, stack, seen = 0, [(data, 1)], set()
    while stack:
        node, level = stack.pop()
        if isinstance(node, dict | list) and id(node) not in seen:  # aliases share nodes: walk each once
            seen.add(id(node))
            deepest = max(deepest, level)
            if level <= MAX_DEPTH:
                stack.extend((child, level + 1) for child in (node.values() if isinstance(node, dict) else node))
    return deepest


def _line_of(text: str, index: int) -> str:
    lines = text.splitlines()
    return lines[index] if 0 <= index < len(lines) else ""


class _Problems:
    """Collects `file:line: path: reason` messages."""

    def __init__(self, filename: str) -> None:
        self.filename = filename
        self.items: list[str] = []

    def add(self, path: str, reason: str, line: int | None = None) -> None:
        where = f"{self.filename}:{line}" if line else self.filename
        self.items.append(f"{where}: {path}: {reason}" if path else f"{where}: {reason}")


def _line(container: Any, key: str | int | None = None) -> int | None:
    if isinstance(container, LineDict) and isinstance(key, str) and key in container.key_lines:
        return container.key_lines[key]
    if isinstance(container, LineList) and isinstance(key, int) and key < len(container):
        item = container[key]
        if isinstance(item, LineDict | LineList):
            return item.line
    return getattr(container, "line", None) or None


def parse_flow(text: str, filename: str = "<flow>") -> Flow:
    """Parse and validate one flow document; raises ValidationError listing every problem."""
    data = load_yaml(text, filename)
    problems = _Problems(filename)
    if not isinstance(data, Mapping):
        raise ValidationError(f"{filename}: a flow must be a YAML mapping with id, namespace and tasks")
    try:
        flow = _build_flow(data, problems)
    except (TypeError, AttributeError, ValueError) as exc:  # a list or map where a plain value belongs
        raise ValidationError(f"{filename}: a value has the wrong type ({exc})") from None
    if problems.items:
        raise ValidationError(problems.items[0], problems.items)
    assert flow is not None
    flow.source = text
    return flow


def parse_task(text: str, task_id: str, filename: str = "<spec>") -> Task:
    """One task from YAML (TemplatedTask's rendered `spec`), checked as a task of a flow is; `task_id` is its id
    when the YAML gives none."""
    data = load_yaml(text, filename)
    if not isinstance(data, Mapping):
        raise ValidationError(f"{filename}: a task must be a YAML mapping with a type")
    problems = _Problems(filename)
    task = _task({"id": task_id, **data}, "spec", 1, problems, [], {})
    if task is None:
        raise ValidationError(problems.items[0], problems.items)
    return task


templating.use_parser(parse_task)


def _build_flow(data: Mapping[str, Any], problems: _Problems) -> Flow | None:
    for key in data:
        if key not in FLOW_KEYS:
            problems.add(key, unrecognized(key, "Flow"), _line(data, key))
    flow_id = _check_pattern(data, "id", FLOW_ID_RE, problems)
    namespace = _check_pattern(data, "namespace", NAMESPACE_RE, problems)
    defaults = _plugin_defaults(data, problems)
    seen: dict[str, str] = {}
    tasks = _task_list(data, "tasks", "tasks", problems, defaults, seen, required=True)
    errors = _task_list(data, "errors", "errors", problems, defaults, seen)
    finally_ = _task_list(data, "finally", "finally", problems, defaults, seen)
    after_execution = _task_list(data, "afterExecution", "afterExecution", problems, defaults, seen)
    inputs = _inputs(data, problems)
    triggers = _triggers(data, problems)
    _listeners(data, problems, defaults, seen)
    if flow_id and namespace:
        _recursive_calls(namespace, flow_id, [*tasks, *errors, *finally_, *after_execution], problems)
    if data.get("retry") is not None:
        for error in _retry_problems(data["retry"]):
            field, _, reason = error.partition(":")
            problems.add(f"retry.{field}", reason.strip(), _line(data, "retry"))
    flow = Flow(
        id=flow_id or "",
        namespace=namespace or "",
        tasks=tasks,
        errors=errors,
        finally_=finally_,
        after_execution=after_execution,
        description=data.get("description"),
        labels=_labels(data, problems),
        inputs=inputs,
        variables=_variables(data, problems),
        outputs=_outputs(data, problems),
        disabled=bool(data.get("disabled", False)),
        triggers=triggers,
        retry=data.get("retry"),
        concurrency=_concurrency(data, problems),
        sla=_sla(data, problems),
    )
    return flow


def _listeners(
    data: Mapping[str, Any], problems: _Problems, defaults: list[dict[str, Any]], seen: dict[str, str]
) -> None:
    """Listeners are deprecated and off by default in Kestra (since 0.12), so they never run; they must still
    be well formed: a list of {conditions, tasks, description} with at least one task each."""
    raw = data.get("listeners")
    if raw is None:
        return
    if not isinstance(raw, list):
        problems.add("listeners", "must be a list of {conditions, tasks}", _line(data, "listeners"))
        return
    for index, item in enumerate(raw):
        path, line = f"listeners[{index}]", _line(raw, index)
        if not isinstance(item, Mapping):
            problems.add(path, "a listener must be a map with `tasks`", line)
            continue
        for key in item:
            if key not in ("conditions", "tasks", "description"):
                problems.add(f"{path}.{key}", unrecognized(key, "Listener"), _line(item, key) or line)
        _task_list(item, "tasks", f"{path}.tasks", problems, defaults, seen, required=True)


def _recursive_calls(namespace: str, flow_id: str, tasks: list[Task], problems: _Problems) -> None:
    """A flow that starts itself as a subflow would never end: Kestra refuses it at deploy."""
    for task in (t for top in tasks for t in top.walk()):
        if task.is_executable and (task.spec.get("namespace"), task.spec.get("flowId")) == (namespace, flow_id):
            problems.add(f"tasks.{task.id}", f"Recursive call to flow [{namespace}.{flow_id}]", _line(task.spec))


def _concurrency(data: Mapping[str, Any], problems: _Problems) -> dict[str, Any] | None:
    """`concurrency: {limit, behavior}`: at most `limit` running executions; the next ones wait (QUEUE), are
    CANCELLED or FAILED."""
    raw = data.get("concurrency")
    if raw is None:
        return None
    line = _line(data, "concurrency")
    if not isinstance(raw, Mapping):
        problems.add("concurrency", "must be a map with `limit` and `behavior`", line)
        return None
    for key in raw:
        if key not in ("limit", "behavior"):
            problems.add(f"concurrency.{key}", unrecognized(str(key), "Concurrency"), line)
    limit, behavior = raw.get("limit"), str(raw.get("behavior", "QUEUE")).upper()
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        problems.add("concurrency.limit", f"must be a whole number >= 1, not `{limit}`", line)
    if behavior not in CONCURRENCY_BEHAVIORS:
        problems.add("concurrency.behavior", f"must be one of {', '.join(CONCURRENCY_BEHAVIORS)}", line)
    return {"limit": limit, "behavior": behavior}


def _sla(data: Mapping[str, Any], problems: _Problems) -> list[dict[str, Any]]:
    raw = data.get("sla") or []
    items = raw if isinstance(raw, list) else [None]
    for index, item in enumerate(items):
        if not isinstance(item, Mapping) or not item.get("id") or item.get("type") not in SLA_TYPES:
            problems.add(f"sla[{index}]", f"needs an `id` and a `type` ({', '.join(SLA_TYPES)})", _line(data, "sla"))
    return [dict(item) for item in items if isinstance(item, Mapping)]


def _variables(data: Mapping[str, Any], problems: _Problems) -> dict[str, Any]:
    raw = data.get("variables")
    if raw is not None and not isinstance(raw, Mapping):
        problems.add("variables", "must be a map of name to value", _line(data, "variables"))
        return {}
    return dict(raw or {})


def _check_pattern(data: Mapping[str, Any], key: str, pattern: re.Pattern[str], problems: _Problems) -> str | None:
    value = data.get(key)
    if value is None or value == "":
        problems.add(key, "required", _line(data, key) or 1)
        return None
    if not isinstance(value, str) or not pattern.match(value):
        problems.add(key, f"`{value}` does not match {pattern.pattern}", _line(data, key))
        return None
    return value


def _labels(data: Mapping[str, Any], problems: _Problems) -> list[tuple[str, str]]:
    pairs = label_pairs(data.get("labels"))
    if pairs is None:
        problems.add("labels", "must be a map or a list of {key, value}", _line(data, "labels"))
        return []
    return [(key, label_text(value)) for key, value in pairs]


def _inputs(data: Mapping[str, Any], problems: _Problems) -> list[Any]:
    raw = data.get("inputs") or []
    if not isinstance(raw, list):
        problems.add("inputs", "must be a list", _line(data, "inputs"))
        return []
    out, ids = [], set()
    for index, item in enumerate(raw):
        parsed, errors = parse_input(item)
        for error in errors:
            field, _, reason = error.partition(":")
            problems.add(
                f"inputs[{index}].{field}" if reason else f"inputs[{index}]", reason.strip() or error, _line(raw, index)
            )
        if parsed is not None:
            if parsed.id in ids:
                problems.add(f"inputs[{index}].id", f"duplicate input id `{parsed.id}`", _line(raw, index))
            ids.add(parsed.id)
            out.append(parsed)
    return out


def _outputs(data: Mapping[str, Any], problems: _Problems) -> list[Output]:
    raw = data.get("outputs") or []
    out = []
    for index, item in enumerate(raw if isinstance(raw, list) else []):
        if not isinstance(item, Mapping) or not item.get("id") or "value" not in item:
            problems.add(f"outputs[{index}]", "needs `id`, `type` and `value`", _line(raw, index))
            continue
        kind = str(item.get("type", "STRING")).upper()
        if kind not in INPUT_TYPES:
            problems.add(f"outputs[{index}].type", f"unknown output type `{kind}`", _line(raw, index))
        out.append(Output(str(item["id"]), kind, item["value"], item.get("description")))
    if raw and not isinstance(raw, list):
        problems.add("outputs", "must be a list", _line(data, "outputs"))
    return out


def _triggers(data: Mapping[str, Any], problems: _Problems) -> list[dict[str, Any]]:
    raw = data.get("triggers") or []
    if not isinstance(raw, list):
        problems.add("triggers", "must be a list", _line(data, "triggers"))
        return []
    if not raw:
        return []
    from kestractl.triggers.validate import validate_trigger  # imports the HTTP tasks: only for flows with triggers

    ids: set[str] = set()
    for index, item in enumerate(raw):
        for error in validate_trigger(item):
            problems.add(
                f"triggers[{index}].{error.split(':', 1)[0]}",
                error.split(":", 1)[1].strip(),
                _line(raw, index),
            )
        trigger_id = item.get("id") if isinstance(item, Mapping) else None
        if isinstance(trigger_id, str) and trigger_id in ids:
            problems.add(f"triggers[{index}].id", f"duplicate trigger id `{trigger_id}`", _line(raw, index))
        ids.add(str(trigger_id))
    return [dict(t) for t in raw if isinstance(t, Mapping)]


def _plugin_defaults(data: Mapping[str, Any], problems: _Problems) -> list[dict[str, Any]]:
    raw = data.get("pluginDefaults", data.get("taskDefaults")) or []
    key = "pluginDefaults" if "pluginDefaults" in data else "taskDefaults"
    if not isinstance(raw, list):
        problems.add(key, "must be a list of {type, values}", _line(data, key))
        return []
    out = []
    for index, item in enumerate(raw):
        if not isinstance(item, Mapping) or not item.get("type") or not isinstance(item.get("values"), Mapping):
            problems.add(f"{key}[{index}]", "needs `type` and `values`", _line(raw, index))
            continue
        out.append(dict(item))
    return out


def _apply_defaults(spec: Mapping[str, Any], defaults: list[dict[str, Any]]) -> dict[str, Any]:
    """Merge pluginDefaults whose type matches (exactly, by alias, or as a prefix) under the task."""
    cls = registry.resolve(str(spec.get("type")))
    merged = dict(spec)
    for default in defaults:
        dtype = str(default["type"])
        names = {str(spec.get("type", ""))} | ({cls.type_name} if cls else set())
        same = dtype in names or (cls is not None and registry.resolve(dtype) is cls)
        if not same and not any(name.startswith(dtype + ".") for name in names):
            continue
        values = dict(default["values"])
        merged = deep_merge(merged, values) if default.get("forced") else deep_merge(values, merged)
    return merged


def _task_list(
    container: Mapping[str, Any],
    key: str,
    path: str,
    problems: _Problems,
    defaults: list[dict[str, Any]],
    seen: dict[str, str],
    required: bool = False,
) -> list[Task]:
    raw = container.get(key)
    if raw is None or raw == []:
        if required:
            problems.add(path, "required (a non-empty list of tasks)", _line(container, key) or 1)
        return []
    if not isinstance(raw, list):
        problems.add(path, "must be a list of tasks", _line(container, key))
        return []
    tasks = []
    for index, item in enumerate(raw):
        task = _task(item, f"{path}[{index}]", _line(raw, index), problems, defaults, seen)
        if task is not None:
            tasks.append(task)
    return tasks


def _task(
    item: Any,
    path: str,
    line: int | None,
    problems: _Problems,
    defaults: list[dict[str, Any]],
    seen: dict[str, str],
) -> Task | None:
    if not isinstance(item, Mapping):
        problems.add(path, "a task must be a mapping with id and type", line)
        return None
    task_id, type_name = item.get("id"), item.get("type")
    ok = True
    if not task_id:
        problems.add(f"{path}.id", "required", line)
        ok = False
    elif problem := id_problem(task_id):
        problems.add(f"{path}.id", problem, _line(item, "id"))
        ok = False
    elif task_id in seen:
        problems.add(f"{path}.id", f"duplicate task id `{task_id}` (first used at {seen[task_id]})", _line(item, "id"))
        ok = False
    else:
        seen[task_id] = path
    if not type_name:
        problems.add(f"{path}.type", "required", line)
        return None
    cls = registry.resolve(str(type_name))
    if cls is None:
        problems.add(f"{path}.type", unknown_type("task", type_name), _line(item, "type"))
        return None
    spec = _apply_defaults(item, defaults)
    before = len(problems.items)
    for error in _common_problems(spec) + _unknown_properties(cls, item) + cls.validate(spec):
        field, _, reason = error.partition(":")
        problems.add(f"{path}.{field}", reason.strip(), _line(item, field.split(".")[0].split("[")[0]) or line)
    children = {}
    for name, child_raw in cls.child_specs(spec).items():
        children[name] = _task_list({name: child_raw}, name, f"{path}.{name}", problems, defaults, seen)
    return cls(spec, children) if ok and len(problems.items) == before else None


def _unknown_properties(cls: type[Task], item: Mapping[str, Any]) -> list[str]:
    """Keys the user wrote that the type does not declare (pluginDefaults may carry keys for other types)."""
    known = COMMON_KEYS | cls.all_properties().keys() | set(cls.child_lists)
    return [f"{key}: {unrecognized(str(key), cls.type_name)}" for key in item if key not in known]


def _common_problems(spec: Mapping[str, Any]) -> list[str]:
    from kestractl.durations import is_duration

    out = []
    if spec.get("workerGroup") is not None:
        out.append("workerGroup: Worker Group is an Enterprise Edition functionality")
    if spec.get("timeout") is not None and not dynamic(spec["timeout"]) and not is_duration(spec["timeout"]):
        out.append(f"timeout: `{spec['timeout']}` is not an ISO-8601 duration (e.g. PT30S)")
    retry = spec.get("retry")
    if retry is not None:
        out += [f"retry.{e}" for e in _retry_problems(retry)]
    return out


def _retry_problems(retry: Any) -> list[str]:
    from kestractl.durations import is_duration

    if not isinstance(retry, Mapping):
        return ["type: retry must be a mapping with a type"]
    kind = str(retry.get("type", "")).lower()
    if kind not in ("constant", "exponential", "random"):
        return [f"type: must be constant, exponential or random, not `{retry.get('type')}`"]
    out = []
    needs = {"constant": ["interval"], "exponential": ["interval"], "random": ["minInterval", "maxInterval"]}[kind]
    out += [f"{k}: required for {kind} retry" for k in needs if retry.get(k) is None]
    for key in ("interval", "maxInterval", "minInterval", "maxDuration"):
        if retry.get(key) is not None and not is_duration(retry[key]):
            out.append(f"{key}: `{retry[key]}` is not an ISO-8601 duration")
    attempts = retry.get("maxAttempt", retry.get("maxAttempts"))
    if attempts is not None and (not isinstance(attempts, int) or attempts < 1):
        out.append("maxAttempt: must be an integer >= 1")
    return out


def split_documents(text: str) -> list[str]:
    """Split a multi-document YAML file on `---` lines; single documents come back whole."""
    parts = re.split(r"(?m)^---[ \t]*$\n?", text)
    docs = [
        p for p in parts if p.strip() and not all(ln.strip().startswith("#") or not ln.strip() for ln in p.splitlines())
    ]
    return docs or [text]


def located(problem: str, filename: str) -> tuple[int | None, str]:
    """A problem's line and the rest of its text (`{filename}:12: tasks[0].message: required` → 12 and
    `tasks[0].message: required`): what lets the editor mark the line, as `flow validate` prints `file:line`."""
    match = re.match(rf"{re.escape(filename)}(?::(\d+))?: (.*)", problem, re.DOTALL)
    if match is None:
        return None, problem
    return (int(match.group(1)) if match.group(1) else None), match.group(2)
