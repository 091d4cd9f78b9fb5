"""A flow input as a form control: which widget each Kestra input type gets, and its default written the way
that widget holds it. The execute form's template draws these; `static/execute.js` reads them back into the
multipart form `/api/v1/executions` takes."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from kestractl.inputs import java_str
from kestractl.model import Input
from kestractl.parser import to_plain

# Input type → (partial under templates/inputs/, the <input type> it uses when it is one).
WIDGETS: dict[str, tuple[str, str]] = {
    "STRING": ("text", "text"),
    "URI": ("text", "url"),
    "EMAIL": ("text", "email"),
    "INT": ("text", "number"),
    "FLOAT": ("text", "number"),
    "DATE": ("text", "date"),
    "TIME": ("text", "time"),
    "DURATION": ("text", "text"),
    "SECRET": ("text", "password"),
    "DATETIME": ("datetime", "datetime-local"),
    "BOOLEAN": ("boolean", "checkbox"),
    "BOOL": ("boolean", "checkbox"),
    "SELECT": ("select", ""),
    "ENUM": ("select", ""),
    "MULTISELECT": ("multiselect", ""),
    "ARRAY": ("textarea", ""),
    "JSON": ("textarea", ""),
    "YAML": ("textarea", ""),
    "FILE": ("file", "file"),
}
PLACEHOLDERS = {"DURATION": "PT1H", "ARRAY": "one value per line, or a JSON array", "JSON": '{"key": "value"}'}


@dataclass(frozen=True)
class Control:
    id: str
    type: str
    widget: str
    html_type: str
    label: str
    required: bool
    description: str | None
    default: str  # the default as the widget's text ("" when none, or when it is an expression)
    expression_default: str | None  # a `{{ … }}` default the server renders when the field is left empty
    choices: list[str] = field(default_factory=list)
    chosen: list[str] = field(default_factory=list)
    custom: bool = False  # SELECT/MULTISELECT `allowCustomValue`
    depends: bool = False  # has `dependsOn`: hidden until the server says it is enabled
    placeholder: str = ""
    step: str = ""
    minimum: str = ""
    maximum: str = ""


def control_for(inp: Input) -> Control:
    widget, html_type = WIDGETS.get(inp.type, ("text", "text"))
    props = inp.props
    dynamic = isinstance(inp.defaults, str) and "{{" in inp.defaults
    default = "" if inp.defaults is None or dynamic else _text(inp.type, inp.defaults)
    choices = [java_str(v) for v in (props.get("values") or props.get("options") or []) if v is not None]
    return Control(
        id=inp.id,
        type=inp.type,
        widget=widget,
        html_type=html_type,
        label=str(props.get("displayName") or inp.id),
        required=inp.required,
        description=inp.description,
        default=default,
        expression_default=inp.defaults if dynamic else None,
        choices=choices,
        chosen=_chosen(inp, choices),
        custom=props.get("allowCustomValue") is True,
        depends=bool(props.get("dependsOn")),
        placeholder=PLACEHOLDERS.get(inp.type, ""),
        step={"INT": "1", "FLOAT": "any"}.get(inp.type, ""),
        minimum=_bound(props.get("min")),
        maximum=_bound(props.get("max")),
    )


def _text(kind: str, value: Any) -> str:
    """A default as its widget's text: JSON for JSON, one item a line for an ARRAY of plain values."""
    if kind == "ARRAY" and isinstance(value, list) and all(_plain_line(v) for v in value):
        return "\n".join(java_str(v) for v in value)
    if kind in ("JSON", "ARRAY") and not isinstance(value, str):
        return json.dumps(value, indent=2, default=str)
    if kind == "YAML" and not isinstance(value, str):
        import yaml

        return str(yaml.safe_dump(to_plain(value), sort_keys=False, default_flow_style=False, allow_unicode=True))
    return java_str(value)


def _plain_line(value: Any) -> bool:
    return isinstance(value, str | int | float) and not isinstance(value, bool) and "\n" not in str(value)


def _chosen(inp: Input, choices: list[str]) -> list[str]:
    """The choices selected at first: the default, else the first one when `autoSelectFirst` says so."""
    if isinstance(inp.defaults, list):
        return [java_str(v) for v in inp.defaults]
    if inp.defaults is not None:
        return [java_str(inp.defaults)]
    return choices[:1] if inp.props.get("autoSelectFirst") is True else []


def _bound(value: Any) -> str:
    return str(value) if isinstance(value, int | float) and not isinstance(value, bool) else ""
