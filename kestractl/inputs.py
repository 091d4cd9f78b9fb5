"""Kestra flow inputs: declaration checks, typing, validation and defaults (Kestra's `FlowInputOutput`).

Values arrive as strings (CLI `--input k=v`, HTTP form fields) or already typed (JSON bodies, YAML
defaults, subflow inputs). Each type has a parser to a comparable Python value and a dumper to the
JSON value stored on the execution; messages print values the way Java's `toString` does, so they
read like Kestra's: "Invalid input for `<id>`, <reason>, but received `<value>`".
"""

from __future__ import annotations

import copy
import functools
import json
import re
import struct
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kestractl.errors import InputError, unrecognized
from kestractl.javatext import java_double
from kestractl.model import Input
from kestractl.tasks.properties import Prop

if TYPE_CHECKING:
    import yaml

StoreFile = Callable[[str, Path], str]
Render = Callable[[str, dict[str, Any]], Any]

INPUT_TYPES = frozenset(
    {
        "STRING",
        "ENUM",
        "SELECT",
        "MULTISELECT",
        "INT",
        "FLOAT",
        "BOOLEAN",
        "BOOL",
        "DATETIME",
        "DATE",
        "TIME",
        "DURATION",
        "FILE",
        "JSON",
        "YAML",
        "URI",
        "SECRET",
        "ARRAY",
        "EMAIL",
    }
)
ID_PATTERN = "^[a-zA-Z0-9][.a-zA-Z0-9_-]*$"
# Patterns, not compiled ones: `re` compiles each on first use, so a flow pays only for the input types it has.
_URI = r"[a-z]+://(?:www\.)?[-a-zA-Z0-9@:%._+~#=]{1,256}\.[a-zA-Z0-9()]{1,6}\b[-a-zA-Z0-9()@:%_+.~#?&/=]*"
_EMAIL = r"|[a-zA-Z0-9_!#$%&’*+/=?`{|}~^.-]+@[a-zA-Z0-9.-]+"
_INT = r"[+-]?[0-9]+"
_FLOAT = r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?[fFdD]?"
_DATE = r"\d{4}-\d{2}-\d{2}"
_TIME = r"(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?"
_INSTANT = r"(?i)(\d{4}-\d{2}-\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(Z|([+-])(\d{2}):(\d{2})(?::(\d{2}))?)"
_DURATION = (
    r"(?i)([-+]?)P(?:([-+]?[0-9]+)D)?(T(?:([-+]?[0-9]+)H)?(?:([-+]?[0-9]+)M)?(?:([-+]?[0-9]+)(?:[.,]([0-9]{0,9}))?S)?)?"
)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_NANO = 10**9


class _Invalid(Exception):
    """A value refused by a parser or a validator; the text is Kestra's `<reason>`."""


@functools.cache
def _yaml_loader() -> type[yaml.SafeLoader]:
    """YAML input values as Jackson reads them: timestamps stay strings (and JSON-serialisable). Built on first
    use: PyYAML is only imported by flows that have YAML inputs."""
    import yaml

    class _YamlLoader(yaml.SafeLoader):
        yaml_implicit_resolvers = {
            first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
            for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
        }

    return _YamlLoader


# ---------------------------------------------------------------- Java value types and their text


@dataclass(frozen=True, order=True)
class _Instant:
    """`java.time.Instant`: epoch seconds plus nanoseconds, printed like `Instant.toString()`."""

    seconds: int
    nanos: int = 0

    @classmethod
    def of(cls, moment: datetime) -> _Instant:
        delta = moment - _EPOCH
        return cls(delta.days * 86400 + delta.seconds, delta.microseconds * 1000)

    def __str__(self) -> str:
        d = _EPOCH + timedelta(seconds=self.seconds)
        stamp = f"{d.year:04d}-{d.month:02d}-{d.day:02d}T{d.hour:02d}:{d.minute:02d}:{d.second:02d}"
        return stamp + _grouped_fraction(self.nanos) + "Z"


@dataclass(frozen=True, order=True)
class _Time:
    """`java.time.LocalTime` as nanoseconds of the day."""

    nanos: int

    def parts(self) -> tuple[int, int, int, int]:
        seconds, nanos = divmod(self.nanos, _NANO)
        return seconds // 3600, seconds // 60 % 60, seconds % 60, nanos

    def __str__(self) -> str:
        """`LocalTime.toString()` (used in messages): seconds left out when they are zero."""
        hours, minutes, seconds, nanos = self.parts()
        text = f"{hours:02d}:{minutes:02d}"
        return text + (f":{seconds:02d}" + _grouped_fraction(nanos) if seconds or nanos else "")

    def iso(self) -> str:
        """ISO_LOCAL_TIME, what Jackson stores on the execution: always seconds, shortest fraction."""
        hours, minutes, seconds, nanos = self.parts()
        fraction = f".{nanos:09d}".rstrip("0") if nanos else ""
        return f"{hours:02d}:{minutes:02d}:{seconds:02d}{fraction}"


@dataclass(frozen=True, order=True)
class _Duration:
    """`java.time.Duration` as nanoseconds, printed like `Duration.toString()` (`PT5M6S`, `PT24H`)."""

    nanos: int

    def __str__(self) -> str:
        if self.nanos == 0:
            return "PT0S"
        seconds, nanos = divmod(self.nanos, _NANO)  # Java keeps floor seconds and positive nanos
        effective = seconds + 1 if seconds < 0 and nanos > 0 else seconds
        hours, rest = _java_divmod(effective, 3600)
        minutes, secs = _java_divmod(rest, 60)
        out = "PT" + (f"{hours}H" if hours else "") + (f"{minutes}M" if minutes else "")
        if secs == 0 and nanos == 0:
            return out
        out += "-0" if seconds < 0 < nanos and secs == 0 else str(secs)
        if nanos:
            out += "." + str(2 * _NANO - nanos if seconds < 0 else _NANO + nanos).rstrip("0")[1:]
        return out + "S"


def _java_divmod(a: int, b: int) -> tuple[int, int]:
    """Java's truncating `/` and `%`."""
    q = abs(a) // b * (1 if a >= 0 else -1)
    return q, a - q * b


def _grouped_fraction(nanos: int) -> str:
    """Java's fraction for Instant/LocalTime: 3, 6 or 9 digits, none when zero."""
    if not nanos:
        return ""
    if nanos % 1_000_000 == 0:
        return f".{nanos // 1_000_000:03d}"
    return f".{nanos // 1000:06d}" if nanos % 1000 == 0 else f".{nanos:09d}"


def java_str(value: Any) -> str:
    """`String.valueOf` of the Java object a value stands for: `null`, `true`, `[a, b]`, `{k=v}`, `1.0E10`."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return java_double(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(java_str(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{java_str(k)}={java_str(v)}" for k, v in value.items()) + "}"
    if isinstance(value, datetime) and value.tzinfo is not None:
        return str(_Instant.of(value))
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def _to_float32(value: float) -> float:
    """Round like Java's `Float`, kept as the shortest decimal that reads back (what Jackson prints)."""
    single: float = struct.unpack("<f", struct.pack("<f", value))[0]  # OverflowError past Float.MAX_VALUE
    for digits in range(1, 10):
        candidate = float(f"{single:.{digits}g}")
        if struct.unpack("<f", struct.pack("<f", candidate))[0] == single:
            return candidate
    return single


def _plain(value: Any) -> Any:
    """A YAML/Python value made JSON-serialisable (dates become ISO strings)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, date):
        return java_str(value)
    return value


# ---------------------------------------------------------------- per-type parsers


@dataclass(frozen=True)
class _Ctx:
    """What parsing and validation need besides the value."""

    kind: str
    input_id: str = ""
    item_type: str | None = None
    required: bool = True
    store_file: StoreFile | None = None
    props: Mapping[str, Any] = field(default_factory=dict)


def _expected(ctx: _Ctx, value: Any) -> _Invalid:
    return _Invalid(f"Expected `{ctx.kind}` but received `{java_str(value)}`")


def _parse_text(value: Any, ctx: _Ctx) -> Any:
    """STRING, ENUM, SELECT, EMAIL, SECRET: Kestra keeps the value; scalars become their Java text."""
    if value is None or isinstance(value, dict | list):
        return value
    return java_str(value)


def _parse_uri(value: Any, ctx: _Ctx) -> str:
    if not isinstance(value, str) or not re.fullmatch(_URI, value):
        raise _expected(ctx, value)
    return value


def _parse_int(value: Any, ctx: _Ctx) -> int:
    """`Integer.valueOf`: ASCII digits with an optional sign, 32-bit."""
    if isinstance(value, str) and not re.fullmatch(_INT, value):
        raise _Invalid(f'For input string: "{value}"')
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise _expected(ctx, value)
    number = int(value)
    if not -(2**31) <= number < 2**31:
        raise _Invalid(f'For input string: "{value}"')
    return number


def _parse_float(value: Any, ctx: _Ctx) -> float:
    """`Float.valueOf(value.toString())`: trimmed decimal text, 32-bit (NaN/Infinity refused: not JSON)."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise _expected(ctx, value)
    text = java_str(value).strip()
    if not re.fullmatch(_FLOAT, text):
        raise _Invalid(f'For input string: "{text}"' if text else "empty String")
    try:
        return _to_float32(float(text.rstrip("fFdD")))
    except OverflowError:
        raise _expected(ctx, value) from None


def _parse_bool(value: Any, ctx: _Ctx) -> bool:
    """`Boolean.valueOf`: only "true" (any case) is true; "yes" is false."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        return value.lower() == "true"
    raise _expected(ctx, value)


def _parse_datetime(value: Any, ctx: _Ctx) -> _Instant:
    """`Instant.parse`: date, `T`, time with seconds, optional fraction, and `Z` or an offset."""
    if isinstance(value, datetime) and value.tzinfo is not None:
        return _Instant.of(value)
    match = re.fullmatch(_INSTANT, value) if isinstance(value, str) else None
    if not match:
        raise _expected(ctx, value)
    day, hh, mm, ss, fraction, _zone, sign, oh, om, os_ = match.groups()
    offset = timedelta(hours=int(oh or 0), minutes=int(om or 0), seconds=int(os_ or 0))
    try:
        moment = datetime.combine(date.fromisoformat(day), datetime.min.time()).replace(
            hour=int(hh), minute=int(mm), second=int(ss), tzinfo=timezone(-offset if sign == "-" else offset)
        )
    except ValueError:
        raise _expected(ctx, value) from None
    return _Instant(_Instant.of(moment).seconds, int((fraction or "0").ljust(9, "0")))


def _parse_date(value: Any, ctx: _Ctx) -> date:
    """`LocalDate.parse`: strictly `YYYY-MM-DD`."""
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    if isinstance(value, str) and re.fullmatch(_DATE, value):
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
    raise _expected(ctx, value)


def _parse_time(value: Any, ctx: _Ctx) -> _Time:
    """`LocalTime.parse`: `HH:MM`, `HH:MM:SS` or with up to 9 fraction digits."""
    match = re.fullmatch(_TIME, value) if isinstance(value, str) else None
    if not match:
        raise _expected(ctx, value)
    hours, minutes, seconds = (int(g or 0) for g in match.groups()[:3])
    if hours > 23 or minutes > 59 or seconds > 59:
        raise _expected(ctx, value)
    nanos = int((match.group(4) or "0").ljust(9, "0"))
    return _Time(((hours * 60 + minutes) * 60 + seconds) * _NANO + nanos)


def _parse_duration(value: Any, ctx: _Ctx) -> _Duration:
    """`Duration.parse`: `PnDTnHnMn.nS`, integer parts only except seconds."""
    if isinstance(value, timedelta):
        return _Duration(value // timedelta(microseconds=1) * 1000)
    match = re.fullmatch(_DURATION, value) if isinstance(value, str) else None
    if not match or (match.group(3) or "").upper() == "T" or not any(match.group(i) for i in (2, 4, 5, 6)):
        raise _expected(ctx, value)
    days, hours, minutes, seconds = (int(match.group(i) or 0) for i in (2, 4, 5, 6))
    fraction = int((match.group(7) or "").ljust(9, "0"))
    if (match.group(6) or "").startswith("-"):
        fraction = -fraction
    nanos = (((days * 24 + hours) * 60 + minutes) * 60 + seconds) * _NANO + fraction
    return _Duration(-nanos if match.group(1) == "-" else nanos)


def _parse_file(value: Any, ctx: _Ctx) -> str:
    """A `kestra://` URI is kept; anything else is a local path put into storage by `store_file`."""
    if not isinstance(value, str):
        raise _expected(ctx, value)
    if value.startswith("kestra://"):
        return value
    path = Path(value)
    try:
        exists = path.is_file()
    except (OSError, ValueError) as error:  # a name the OS cannot look up (too long, NUL byte) is still bad input
        raise _Invalid(
            f"`{value[:80]}` is not a usable file path ({getattr(error, 'strerror', None) or error})"
        ) from None
    if not exists:
        raise _Invalid(f"the file `{value}` does not exist")
    if ctx.store_file is None:
        raise _Invalid(f"no storage to upload the file `{value}` to")
    return ctx.store_file(ctx.input_id, path)


def _parse_json(value: Any, ctx: _Ctx) -> Any:
    """JSON text parsed; a value that is already structured (YAML default, JSON body) is kept."""
    if not isinstance(value, str):
        return _plain(value)
    try:
        return json.loads(value, parse_constant=_refuse_constant)
    except ValueError:
        raise _expected(ctx, value) from None


def _refuse_constant(name: str) -> Any:
    raise ValueError(name)


def _parse_yaml(value: Any, ctx: _Ctx) -> Any:
    if not isinstance(value, str):
        return _plain(value)
    import yaml

    try:
        return _plain(yaml.load(value, Loader=_yaml_loader()))  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError:
        raise _expected(ctx, value) from None


def _parse_list(value: Any, ctx: _Ctx) -> list[Any]:
    """ARRAY/MULTISELECT: a list, or JSON text of one; each element parsed as `itemType`."""
    items = value
    if isinstance(value, str):
        try:
            items = json.loads(value)
        except ValueError:
            raise _expected(ctx, value) from None
    if not isinstance(items, list | tuple):
        raise _expected(ctx, value)
    if ctx.item_type is None:
        return [_plain(item) for item in items]
    if ctx.item_type not in _KINDS:
        raise _Invalid(f"unknown item type `{ctx.item_type}`")
    element_ctx = _Ctx(ctx.item_type, ctx.input_id, store_file=ctx.store_file)
    out = []
    for item in items:
        try:
            out.append(_typed(item, element_ctx))
        except _Invalid:
            raise _Invalid(f"Unable to parse array element as `{ctx.item_type}` on `{java_str(item)}`") from None
    return out


@dataclass(frozen=True)
class _Kind:
    """One input type: raw value -> comparable Python value -> JSON value stored on the execution."""

    parse: Callable[[Any, _Ctx], Any]
    dump: Callable[[Any], Any] = lambda typed: typed


_KINDS: dict[str, _Kind] = {
    **{name: _Kind(_parse_text) for name in ("STRING", "ENUM", "SELECT", "EMAIL", "SECRET")},
    "URI": _Kind(_parse_uri),
    "INT": _Kind(_parse_int),
    "FLOAT": _Kind(_parse_float),
    "BOOLEAN": _Kind(_parse_bool),
    "BOOL": _Kind(_parse_bool),
    "DATETIME": _Kind(_parse_datetime, str),
    "DATE": _Kind(_parse_date, date.isoformat),
    "TIME": _Kind(_parse_time, _Time.iso),
    "DURATION": _Kind(_parse_duration, str),
    "FILE": _Kind(_parse_file),
    "JSON": _Kind(_parse_json),
    "YAML": _Kind(_parse_yaml),
    "ARRAY": _Kind(_parse_list),
    "MULTISELECT": _Kind(_parse_list),
}


def _kind(name: str) -> _Kind:
    if name not in _KINDS:
        raise _Invalid(f"unknown type `{name}`")
    return _KINDS[name]


def _typed(value: Any, ctx: _Ctx) -> Any:
    """Parse then dump: the JSON value of `value` under `ctx.kind`."""
    kind = _kind(ctx.kind)
    return kind.dump(kind.parse(value, ctx))


# ---------------------------------------------------------------- per-type validation

_BOUNDS = {
    "INT": ("min", "max", "it must be more than", "it must be less than"),
    "FLOAT": ("min", "max", "it must be more than", "it must be less than"),
    "DURATION": ("min", "max", "It must be more than", "It must be less than"),
    "DATE": ("after", "before", "it must be after", "it must be before"),
    "DATETIME": ("after", "before", "it must be after", "it must be before"),
    "TIME": ("after", "before", "it must be after", "it must be before"),
}


def _check_bounds(typed: Any, ctx: _Ctx) -> None:
    """min/max or after/before, printed with Java's toString of the bound."""
    low, high, low_text, high_text = _BOUNDS[ctx.kind]
    parse = _KINDS[ctx.kind].parse
    if ctx.props.get(low) is not None and typed < (bound := parse(ctx.props[low], ctx)):
        raise _Invalid(f"{low_text} `{java_str(bound)}`")
    if ctx.props.get(high) is not None and typed > (bound := parse(ctx.props[high], ctx)):
        raise _Invalid(f"{high_text} `{java_str(bound)}`")


def _check_pattern(typed: Any, ctx: _Ctx) -> None:
    pattern = ctx.props.get("validator")
    if pattern is not None and not (isinstance(typed, str) and re.fullmatch(str(pattern), typed)):
        raise _Invalid(f"it must match the pattern `{pattern}`")


def _check_email(typed: Any, ctx: _Ctx) -> None:
    if not (isinstance(typed, str) and re.fullmatch(_EMAIL, typed)):
        raise _Invalid("The input must be a valid email")


def _choices(raw: Any) -> list[str] | None:
    return None if raw is None else [java_str(v) for v in raw]


def _check_choice(typed: Any, ctx: _Ctx) -> None:
    """ENUM/SELECT: Kestra only enforces `values` on required inputs (and SELECT may allow custom values)."""
    values = _choices(ctx.props.get("values"))
    if values is None or typed in values or not ctx.required or ctx.props.get("allowCustomValue") is True:
        return
    raise _Invalid(f"it must match the values `{java_str(values)}`")


def _check_multi(typed: list[Any], ctx: _Ctx) -> None:
    values, options = _choices(ctx.props.get("values")), _choices(ctx.props.get("options"))
    if values is not None and options is not None:
        raise _Invalid("you can't define both `values` and `options`")
    allowed = values if values is not None else options
    if allowed is None or ctx.props.get("allowCustomValue") is True:
        return
    for item in typed:
        if item not in allowed:
            raise _Invalid(f"it must match the values `{java_str(allowed)}`")


_VALIDATORS: dict[str, Callable[[Any, _Ctx], None]] = {
    **dict.fromkeys(_BOUNDS, _check_bounds),
    "STRING": _check_pattern,
    "SECRET": _check_pattern,
    "EMAIL": _check_email,
    "ENUM": _check_choice,
    "SELECT": _check_choice,
    "MULTISELECT": _check_multi,
}


# ---------------------------------------------------------------- declarations


def _ctx_for(inp: Input, store_file: StoreFile | None = None, props: Mapping[str, Any] | None = None) -> _Ctx:
    item = inp.props.get("itemType") or ("STRING" if inp.type == "MULTISELECT" else None)
    return _Ctx(inp.type, inp.id, item, inp.required, store_file, inp.props if props is None else props)


def parse_input(raw: Any) -> tuple[Input | None, list[str]]:
    """One item of `inputs:`; problems are "field: reason". None when the id or the type is unusable."""
    if not isinstance(raw, Mapping):
        return None, [f"an input must be a map with `id` and `type`, got `{java_str(raw)}`"]
    data = dict(raw)
    ident, legacy = data.pop("id", None), data.pop("name", None)
    ident = legacy if ident is None else ident
    kind = data.pop("type", None)
    problems = _id_problems(ident)
    if kind is None:
        problems.append("type: required")
    elif not isinstance(kind, str) or kind not in INPUT_TYPES:
        problems.append(f"type: unknown input type `{kind}`")
    required = data.pop("required", True)
    if isinstance(required, str) and required.lower() in ("true", "false"):
        required = required.lower() == "true"
    if not isinstance(required, bool):
        problems.append(f"required: must be true or false, got `{java_str(required)}`")
        required = True
    if problems and (not isinstance(kind, str) or kind not in INPUT_TYPES or not isinstance(ident, str | int)):
        return None, problems
    description = data.pop("description", None)
    inp = Input(
        id=str(ident),
        type=kind,
        required=required,
        defaults=data.pop("defaults", None),
        description=None if description is None else str(description),
        props=data,
    )
    return (None if problems else inp), problems + _prop_problems(inp)


def _id_problems(ident: Any) -> list[str]:
    if ident is None or ident == "":
        return ["id: required"]
    if isinstance(ident, bool) or not isinstance(ident, str | int):
        return [f"id: must be a string, got `{java_str(ident)}`"]
    return [] if re.fullmatch(ID_PATTERN, str(ident)) else [f"id: `{ident}` does not match {ID_PATTERN}"]


# Keys every input has (`name`: the deprecated id); the flow schema describes inputs from these declarations.
INPUT_PROPERTIES: dict[str, Prop] = {
    "id": Prop("The input's id: `{{ inputs.id }}` in the flow.", "string", dynamic=False),
    "type": Prop("The input's type.", "string", required=True, dynamic=False),
    "required": Prop(
        "Whether an execution must give a value (or have a default).", "boolean", default=True, dynamic=False
    ),
    "defaults": Prop("The value when the execution gives none.", dynamic=False),
    "description": Prop("What the input is for (Markdown), shown in the UI.", "string", dynamic=False),
    "name": Prop("Deprecated: the input's id.", "string", dynamic=False),
    "displayName": Prop("The label the UI shows (at most 64 characters).", "string", dynamic=False),
    "dependsOn": Prop("Show the input when `condition` holds over the `inputs` it depends on.", "object"),
    "prefill": Prop("A value the UI shows first that the user may change (the input stays required).", dynamic=False),
}
_BOUNDS_OF = {"INT": "integer", "FLOAT": "number", "DURATION": "duration"}
_VALIDATOR = {"validator": Prop("A regular expression the value must match.", "string", dynamic=False)}
_VALUES = Prop("The values to choose from.", "array", dynamic=False)
_CHOICE = {
    "values": _VALUES,
    "expression": Prop("An expression that renders the values to choose from.", "string"),
    "allowCustomValue": Prop("The user may give a value that is not in the list.", "boolean", default=False),
    "autoSelectFirst": Prop("The UI selects the first value.", "boolean", default=False),
}


def _range(low: str, high: str, kind: str) -> dict[str, Prop]:
    return {
        low: Prop(
            f"The value must not be {'less' if low == 'min' else 'earlier'} than this.", _BOUNDS_OF.get(kind, "string")
        ),
        high: Prop(
            f"The value must not be {'more' if high == 'max' else 'later'} than this.", _BOUNDS_OF.get(kind, "string")
        ),
    }


# Each type's own keys, as Kestra's Input classes declare them.
INPUT_TYPE_PROPERTIES: dict[str, dict[str, Prop]] = {
    "STRING": _VALIDATOR,
    "SECRET": _VALIDATOR,
    **{kind: _range("min", "max", kind) for kind in ("INT", "FLOAT", "DURATION")},
    **{kind: _range("after", "before", kind) for kind in ("DATE", "DATETIME", "TIME")},
    "ENUM": {"values": _VALUES},
    "SELECT": _CHOICE,
    "MULTISELECT": {**_CHOICE, "options": Prop("Deprecated: the values to choose from.", "array", dynamic=False)},
    "ARRAY": {"itemType": Prop("The type of each item.", values=tuple(sorted(INPUT_TYPES - {"ARRAY"})), dynamic=False)},
    "FILE": {
        "extension": Prop("Deprecated: the file name's extension.", "string"),
        "allowedFileExtensions": Prop("The file name extensions accepted (e.g. .csv).", "array"),
    },
}


def _unknown_props(inp: Input) -> list[str]:
    own = INPUT_TYPE_PROPERTIES.get(inp.type, {})
    return [
        f"{key}: {unrecognized(key, f'{inp.type} input')}"
        for key in inp.props
        if key not in INPUT_PROPERTIES and key not in own
    ]


def _prop_problems(inp: Input) -> list[str]:
    """Type-specific keys, bounds and defaults, checked the way Kestra deserialises them."""
    props, problems = inp.props, _unknown_props(inp)
    if len(str(props.get("displayName") or "")) > 64:
        problems.append("displayName: size must be between 0 and 64")
    problems += _depends_on_problems(props.get("dependsOn"))
    check = _TYPE_CHECKS.get(inp.type)
    problems += check(props) if check else []
    if inp.type == "FILE" and inp.defaults is not None:
        problems.append("defaults: no `defaults` can be set for inputs of type 'FILE'")
    ctx = _ctx_for(inp)
    for key in _BOUNDS.get(inp.type, ())[:2]:
        problems += _parse_problem(key, props.get(key), ctx)
    if inp.type != "FILE" and not any(p.startswith("itemType:") for p in problems):
        problems += _parse_problem("defaults", inp.defaults, ctx)
    return problems


def _parse_problem(key: str, value: Any, ctx: _Ctx) -> list[str]:
    if value is None:
        return []
    try:
        _KINDS[ctx.kind].parse(value, ctx)
    except _Invalid as exc:
        return [f"{key}: {exc}"]
    return []


def _depends_on_problems(depends: Any) -> list[str]:
    if depends is None:
        return []
    if not isinstance(depends, Mapping):
        return ["dependsOn: must be a map with `inputs` and `condition`"]
    ids, condition = depends.get("inputs"), depends.get("condition")
    problems = []
    if ids is not None and not (isinstance(ids, list) and all(isinstance(i, str) for i in ids)):
        problems.append("dependsOn.inputs: must be a list of input ids")
    if condition is not None and not isinstance(condition, str):
        problems.append("dependsOn.condition: must be an expression string")
    return problems


def _item_type_problems(props: Mapping[str, Any], *, required: bool) -> list[str]:
    item = props.get("itemType")
    if item is None:
        return ["itemType: required for ARRAY"] if required else []
    if not isinstance(item, str) or item not in INPUT_TYPES:
        return [f"itemType: unknown input type `{item}`"]
    return ["itemType: `itemType` cannot be `ARRAY`"] if item == "ARRAY" else []


def _values_problems(props: Mapping[str, Any], kind: str, *keys: str) -> list[str]:
    problems = [f"{k}: must be a list" for k in keys if k in props and not isinstance(props[k], list)]
    if all(props.get(k) is None for k in keys) and (kind == "ENUM" or props.get("expression") is None):
        problems.append(f"values: required for {kind}" + ("" if kind == "ENUM" else " (or `expression`)"))
    return problems


def _multiselect_problems(props: Mapping[str, Any]) -> list[str]:
    problems = _item_type_problems(props, required=False) + _values_problems(props, "MULTISELECT", "values", "options")
    if props.get("values") is not None and props.get("options") is not None:
        problems.append("values: you can't define both `values` and `options`")
    return problems


def _validator_problems(props: Mapping[str, Any]) -> list[str]:
    pattern = props.get("validator")
    if pattern is None:
        return []
    try:
        re.compile(str(pattern))
    except re.error as exc:
        return [f"validator: invalid regex `{pattern}` ({exc})"]
    return []


_TYPE_CHECKS: dict[str, Callable[[Mapping[str, Any]], list[str]]] = {
    "ARRAY": lambda p: _item_type_problems(p, required=True),
    "MULTISELECT": _multiselect_problems,
    "SELECT": lambda p: _values_problems(p, "SELECT", "values"),
    "ENUM": lambda p: _values_problems(p, "ENUM", "values"),
    "STRING": _validator_problems,
    "SECRET": _validator_problems,
}


# ---------------------------------------------------------------- resolution


def _problem(input_id: str, reason: str, raw: Any, what: str = "input") -> str:
    return f"Invalid {what} for `{input_id}`, {reason}, but received `{java_str(raw)}`"


@dataclass
class _Resolved:
    enabled: bool
    value: Any = None
    problem: str | None = None
    props: Mapping[str, Any] | None = None  # with SELECT/MULTISELECT `values` rendered from `expression`


class _Resolver:
    """Resolves each declared input once, its `dependsOn` inputs first (Kestra's `resolveInputValue`)."""

    def __init__(
        self,
        declared: list[Input],
        provided: Mapping[str, Any],
        store_file: StoreFile | None,
        render: Render | None,
    ) -> None:
        self.by_id = {inp.id: inp for inp in declared}
        self.provided, self.store_file, self.render = provided or {}, store_file, render
        self.done: dict[str, _Resolved] = {}
        self.active: set[str] = set()

    def resolve(self, inp: Input) -> _Resolved:
        if inp.id in self.done:
            return self.done[inp.id]
        if inp.id in self.active:  # a cycle: the flow validator reports it; do not loop
            return _Resolved(True)
        self.active.add(inp.id)
        try:
            self.done[inp.id] = self._compute(inp)
        finally:
            self.active.discard(inp.id)
        return self.done[inp.id]

    def _compute(self, inp: Input) -> _Resolved:
        raw = self.provided.get(inp.id)
        raw = inp.defaults if raw is None else raw
        depends = inp.props.get("dependsOn") or {}
        deps = {i: self.resolve(self.by_id[i]) for i in depends.get("inputs") or () if i in self.by_id and i != inp.id}
        if not all(d.enabled for d in deps.values()):
            return _Resolved(False)
        scope = _nest({i: d.value for i, d in deps.items()})
        if self.provided.get(inp.id) is None and isinstance(raw, str) and "{{" in raw and self.render is not None:
            try:  # Kestra >= 0.24 renders `defaults` when the execution is created
                raw = self.render(raw, scope)
            except Exception as exc:
                return _Resolved(True, None, _problem(inp.id, f"Cannot render 'defaults'. Cause: {exc}", raw))
        if depends.get("condition") and self.render is not None:
            try:
                if self.render(depends["condition"], scope) is not True:
                    return _Resolved(False)
            except Exception:  # Kestra disables an input whose condition cannot be rendered
                return _Resolved(False)
        try:
            props = self._rendered_props(inp, scope)
            if raw is None:
                if inp.required:
                    return _Resolved(True, None, _problem(inp.id, "missing required input", None), props)
                return _Resolved(True, props=props)
            ctx = _ctx_for(inp, self.store_file, props)
            kind = _kind(inp.type)
            typed = kind.parse(raw, ctx)
            validator = _VALIDATORS.get(inp.type)
            if validator is not None:
                validator(typed, ctx)
            return _Resolved(True, kind.dump(typed), props=props)
        except _Invalid as exc:
            return _Resolved(True, None, _problem(inp.id, str(exc), raw))

    def _rendered_props(self, inp: Input, scope: dict[str, Any]) -> Mapping[str, Any]:
        """SELECT/MULTISELECT `expression` rendered into `values` when a renderer is given."""
        expression = inp.props.get("expression")
        if expression is None or self.render is None or inp.type not in ("SELECT", "MULTISELECT"):
            return inp.props
        try:
            result = self.render(expression, scope)
        except Exception as exc:
            raise _Invalid(f"Cannot render 'expression'. Cause: {exc}") from None
        if not isinstance(result, list):
            name = type(result).__name__ if result is not None else "<null>"
            raise _Invalid(f"Invalid expression result. Expected a list of strings, but received {name}")
        return {**inp.props, "values": [java_str(v) for v in result if v is not None]}


def resolve_inputs(
    declared: list[Input],
    provided: Mapping[str, Any],
    *,
    store_file: StoreFile | None = None,
    render: Render | None = None,
) -> dict[str, Any]:
    """Typed, validated inputs of a new execution; dotted ids nested; undeclared keys dropped.

    `render(expression, inputs)` evaluates `dependsOn.condition` and SELECT/MULTISELECT `expression`;
    without it conditions count as true. Every bad input is reported in one InputError.
    """
    resolver = _Resolver(declared, provided, store_file, render)
    results = {inp.id: resolver.resolve(inp) for inp in declared}
    problems = [r.problem for r in results.values() if r.enabled and r.problem]
    if problems:
        raise InputError("; ".join(problems), problems)
    return _nest({key: r.value for key, r in results.items() if r.enabled})


@dataclass(frozen=True)
class InputCheck:
    """One input as a form about to be submitted sees it (Kestra's `InputAndValue`)."""

    input: Input
    props: Mapping[str, Any]  # the declaration's props, SELECT/MULTISELECT `values` rendered from `expression`
    value: Any
    enabled: bool
    is_default: bool
    problem: str | None


def check_inputs(
    declared: list[Input], provided: Mapping[str, Any], *, render: Render | None = None
) -> list[InputCheck]:
    """Every input resolved as `resolve_inputs` would, without raising and without storing files: what the
    execute form shows before submitting (which inputs `dependsOn` enables, their choices, their problems)."""
    resolver = _Resolver(declared, provided, None, render)
    checks = []
    for inp in declared:
        result = resolver.resolve(inp)
        is_default = provided.get(inp.id) is None and inp.defaults is not None
        props = inp.props if result.props is None else result.props
        checks.append(InputCheck(inp, props, result.value, result.enabled, is_default, result.problem))
    return checks


def _nest(flat: Mapping[str, Any]) -> dict[str, Any]:
    """Dotted ids become nested maps: `nested.more.int` -> {"nested": {"more": {"int": …}}}."""
    out: dict[str, Any] = {}
    for key, value in flat.items():
        *parents, last = key.split(".")
        target = out
        for part in parents:
            target = target.setdefault(part, {})
            if not isinstance(target, dict):
                raise InputError(f"Conflict at key: '{part}'. Map keys are: {java_str(list(flat))}")
        if last in target:
            raise InputError(f"Conflict at key: '{last}', Map keys are: {java_str(list(flat))}")
        target[last] = value
    return out


_IMMUTABLE = (str, int, float, type(None))


def input_defaults(declared: list[Input], inputs: Mapping[str, Any]) -> dict[str, Any]:
    """Execution inputs plus declared defaults where missing (Flow-trigger/webhook runs skip resolution)."""
    # A private copy: a task may change what it reads. Text and numbers need none (a child's one STRING input).
    flat = all(isinstance(value, _IMMUTABLE) for value in inputs.values())
    result = dict(inputs) if flat else copy.deepcopy(dict(inputs))
    for inp in declared:
        if inp.defaults is None or inp.id in result:
            continue
        *parents, last = inp.id.split(".")
        target: Any = result
        for part in parents:
            target = target.setdefault(part, {}) if isinstance(target, dict) else None
        if isinstance(target, dict) and last not in target:
            target[last] = _default_value(inp)
    return result


def _default_value(inp: Input) -> Any:
    """The default typed like Kestra's typed `defaults` field, or as written when it does not parse."""
    if inp.type in _KINDS and inp.type != "FILE":
        try:
            return _typed(inp.defaults, _ctx_for(inp))
        except _Invalid:
            pass
    return _plain(inp.defaults)


def type_output(output_type: str | None, value: Any, *, output_id: str | None = None) -> Any:
    """A rendered flow output typed like an input (no validation); InputError when it does not parse."""
    if output_type is None or value is None:
        return value
    if output_type not in _KINDS:
        raise InputError(f"unknown output type `{output_type}`")
    try:
        return _typed(value, _Ctx(output_type, output_id or ""))
    except _Invalid as exc:
        raise InputError(_problem(output_id, str(exc), value, "output") if output_id else str(exc)) from None
