"""A task type's properties, declared once (`Prop`): the parser checks a flow with them at deploy time, and the
task reference, `kestractl plugins doc` and the flow's JSON schema are generated from them.

A type may still declare a property by its description alone (`"name": "what it is"`): that reads as a `Prop`
of any type, optional and dynamic.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any, ClassVar

from kestractl.durations import is_duration, parse_duration

# The kinds a property may have, as JSON Schema names them (plus `duration`: ISO-8601 text).
KINDS = ("string", "integer", "number", "boolean", "duration", "object", "array", "any")
# The text a scalar kind also accepts, as Jackson coerces it (`"5"` is an integer); regular expressions that
# Python and ECMAScript read alike, so the flow's JSON schema gives editors the same ones.
TEXT_FORMS = {
    "integer": r"[-+]?\d+",
    "number": r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?",
    "boolean": r"[Tt][Rr][Uu][Ee]|[Ff][Aa][Ll][Ss][Ee]",
}


@dataclass(frozen=True)
class Prop:
    """One property: what it is, the value it takes, and whether it may be an expression."""

    description: str
    type: str = "any"
    required: bool = False
    default: Any = None
    # True when Kestra renders it (`Property<T>`): an expression is then checked only when it is rendered.
    dynamic: bool = True
    # The accepted values of an enumeration, as Kestra spells them.
    values: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.type not in KINDS:
            raise ValueError(f"Prop type must be one of {', '.join(KINDS)}, not {self.type!r}")


def declared(value: Prop | str) -> Prop:
    """A declaration in its full form (a bare description is an optional property of any type)."""
    return value if isinstance(value, Prop) else Prop(value)


def problems(spec: dict[str, Any], properties: dict[str, Prop]) -> list[str]:
    """`name: reason` for each missing required property and each static value of the wrong kind."""
    found = []
    for name, prop in properties.items():
        value = spec.get(name)
        if value is None:
            found += [f"{name}: required"] if prop.required else []
        elif not (prop.dynamic and _expression(value)):
            found += [f"{name}: {reason}" for reason in [_wrong_kind(prop, value)] if reason]
    return found


def coerce(name: str, prop: Prop, value: Any) -> Any:
    """A rendered value as its declared kind (`"5"` → 5 for an integer); raises ValueError naming the property."""
    reason = None if value is None else _wrong_kind(prop, value)
    if reason:
        raise ValueError(f"{name}: {reason}")
    if value is None or isinstance(value, bool) and prop.type == "boolean":
        return value
    convert = _CONVERSIONS.get(prop.type)
    return convert(value) if convert else value


def _number(value: Any) -> int | float:
    number = float(value)
    return int(number) if number.is_integer() and "." not in str(value) and "e" not in str(value).lower() else number


_CONVERSIONS: dict[str, Any] = {
    "integer": lambda value: int(str(value).strip()) if isinstance(value, str) else value,
    "number": lambda value: _number(value) if isinstance(value, str) else value,
    "boolean": lambda value: str(value).strip().lower() == "true",
    "string": lambda value: value if isinstance(value, str) else _scalar_text(value),
    "duration": lambda value: parse_duration(value),
}


def _scalar_text(value: Any) -> str:
    """How Jackson turns a YAML scalar into a string property (`true`, `5`, `1.5`)."""
    return ("true" if value else "false") if isinstance(value, bool) else str(value)


def _expression(value: Any) -> bool:
    return isinstance(value, str) and ("{{" in value or "{%" in value)


def _wrong_kind(prop: Prop, value: Any) -> str | None:
    """Why a value does not fit, or None. Scalars coerce as Jackson coerces them (`"5"` is an integer)."""
    if prop.values and str(value) not in prop.values:
        return f"must be one of {', '.join(prop.values)}, not `{value}`"
    if _fits(prop.type, value):
        return None
    if prop.type == "duration":  # the wording of every duration check in kestractl
        return f"`{_shown(value)}` is not an ISO-8601 duration (e.g. PT30S)"
    return f"expected {_ARTICLES[prop.type]}, not `{_shown(value)}`"


def _fits(kind: str, value: Any) -> bool:
    scalar = isinstance(value, str | int | float | bool)
    checks = {
        "string": scalar,
        "integer": isinstance(value, int) and not isinstance(value, bool) or _text_matches(value, "integer"),
        "number": isinstance(value, int | float) and not isinstance(value, bool) or _text_matches(value, "number"),
        "boolean": isinstance(value, bool) or _text_matches(value, "boolean"),
        "duration": isinstance(value, str) and is_duration(value),
        "object": isinstance(value, dict),
        "array": isinstance(value, list),
    }
    return checks.get(kind, True)


def _text_matches(value: Any, kind: str) -> bool:
    return isinstance(value, str) and re.fullmatch(TEXT_FORMS[kind], value.strip()) is not None


def _shown(value: Any) -> str:
    text = str(value)
    return text if len(text) <= 40 else text[:37] + "..."


_ARTICLES = {
    "string": "a string",
    "integer": "an integer",
    "number": "a number",
    "boolean": "a boolean (true or false)",
    "object": "a map",
    "array": "a list",
}


class Declared:
    """A type a flow names (a task, a polling trigger): its names and its declared properties and outputs, with the
    checks and the rendering that follow from them."""

    type_name: ClassVar[str] = ""
    aliases: ClassVar[tuple[str, ...]] = ()
    # The type's own properties, name → `Prop` (or its description alone); subclasses add to their bases' (see
    # `all_properties`). The parser checks each value against its `Prop`; the docs are generated from these.
    properties: ClassVar[Mapping[str, Prop | str]] = {}
    # What a run exposes (`outputs.<id>.<name>`, or `trigger.<name>`), name → description, for the docs.
    outputs: ClassVar[Mapping[str, str]] = {}
    # Names that must be present, child task lists included (a `Prop(required=True)` says it for a property).
    required: ClassVar[tuple[str, ...]] = ()

    spec: dict[str, Any]

    @classmethod
    def all_properties(cls) -> dict[str, Prop]:
        """The properties this type accepts: its own and every base class's (merged once per type)."""
        if "_merged" not in vars(cls):
            merged: dict[str, Prop] = {}
            for klass in reversed(cls.__mro__):
                merged.update({name: declared(value) for name, value in vars(klass).get("properties", {}).items()})
            cls._merged = merged
        return cls._merged

    _merged: ClassVar[dict[str, Prop]]

    @classmethod
    def validate(cls, spec: dict[str, Any]) -> list[str]:
        """Problems as `field: reason` (the parser prefixes the path): the declarations' checks; a type adds its
        own rules (between properties, or inside a map) by extending this."""
        props = cls.all_properties()
        missing = [f"{name}: required" for name in cls.required if spec.get(name) is None and name not in props]
        return missing + problems(
            spec, {n: replace(p, required=True) if n in cls.required else p for n, p in props.items()}
        )

    def rendered(self, name: str, render: Callable[[Any], Any]) -> Any:
        """Property `name` rendered, its default when absent, converted to its kind; ValueError names it."""
        prop = self.all_properties()[name]
        return coerce(name, prop, render(self.spec.get(name, prop.default)))
