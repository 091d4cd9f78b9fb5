"""The Jinja side of `kestractl.expressions`: the sandboxed environment with Pebble's runtime rules (strict
undefined values that still answer `is defined`, map keys before attributes, Java-like arithmetic, output-size
guards) and Kestra's global functions. Imported on the first template that is more than text and `{{ path }}`s.
"""

from __future__ import annotations

import json
import random
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any

import yaml
from jinja2 import ChainableUndefined, Template, Undefined, pass_context
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment

from kestractl.expressions import (
    MAX_LOOP_ITEMS,
    MAX_RENDER_SECONDS,
    Budget,
    loop_budget,
    render,
    within_limit,
)
from kestractl.expressions_dates import format_date, zone
from kestractl.expressions_filters import FILTERS, TESTS, regex_replaced_size
from kestractl.expressions_functions import FUNCTIONS
from kestractl.expressions_text import require, to_json, to_text
from kestractl.model import new_id
from kestractl.pebble_syntax import pebble_to_jinja

_MAX_RANGE = 100_000
_MAX_RENDER_DEPTH = 100


# ---------------------------------------------------------------- undefined values


class PebbleUndefined(ChainableUndefined):
    """Pebble's strictVariables: using a missing value fails, but `a.b.c is defined` still works.

    Attribute and item access on an undefined return itself (so tests and `??` can look at a
    whole chain); printing, comparing, iterating, measuring or testing its truth raise.
    """

    __slots__ = ()
    _fail = Undefined._fail_with_undefined_error
    __iter__ = __str__ = __len__ = __bool__ = __contains__ = _fail
    __eq__ = __ne__ = __hash__ = _fail

    @property
    def _undefined_message(self) -> str:
        """Say which name is missing and, for maps, which keys exist."""
        hint, obj, name = self._undefined_hint, self._undefined_obj, self._undefined_name
        if hint:
            return hint
        if isinstance(obj, Mapping):
            keys = ", ".join(str(k) for k in list(obj)[:20])
            return f"'{name}' is undefined (" + (f"existing keys: {keys})" if keys else "the map is empty)")
        if isinstance(obj, list | tuple) and isinstance(name, int):
            return f"index {name} is out of range (the list has {len(obj)} items)"
        if obj is None:
            return f"'{name}' is undefined (the value is null)"
        return f"'{name}' is undefined"


# ---------------------------------------------------------------- the environment


def _numbers(op: str, left: Any, right: Any) -> tuple[Any, Any]:
    numeric = (int, float, Decimal)
    if not isinstance(left, numeric) or not isinstance(right, numeric):
        raise TypeError(f"invalid operands for '{op}': {_describe(left)} and {_describe(right)}")
    if isinstance(left, Decimal) != isinstance(right, Decimal):
        return Decimal(str(left)), Decimal(str(right))
    return left, right


def _describe(value: Any) -> str:
    text = "null" if value is None else to_json(value) if not isinstance(value, str) else repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _java_divide(left: Any, right: Any) -> Any:
    """Java division: whole numbers divide to a whole number, truncated toward zero."""
    if isinstance(left, int) and isinstance(right, int):
        quotient = abs(left) // abs(right)
        return quotient if (left >= 0) == (right >= 0) else -quotient
    return left / right


def _java_remainder(left: Any, right: Any) -> Any:
    """Java `%`: the remainder takes the sign of the dividend."""
    if isinstance(left, int) and isinstance(right, int):
        rest = abs(left) % abs(right)
        return rest if left >= 0 else -rest
    return left - right * int(left / right)


def _arithmetic(op: str, left: Any, right: Any) -> Any:
    """Pebble's `OperatorUtils`: `+` joins text and lists, numbers follow Java's rules."""
    require(left)
    require(right)
    if op == "+" and (isinstance(left, str) or isinstance(right, str)):
        return _kc_concat(left, right)
    if op in "+-" and isinstance(left, list):
        others = right if isinstance(right, list | tuple) else [right]
        if op == "+":
            within_limit(len(left) + len(others), "the list")
            return [*left, *others]
        return [v for v in left if v not in others]
    left, right = _numbers(op, left, right)
    if op == "**" and (abs(right) > 1000 or _bits(left) * abs(right) > 100_000):
        raise ValueError("the result of ** would be too large")
    if op == "*" and _bits(left) + _bits(right) > 200_000:
        raise ValueError("the result of * would be too large")
    operations: dict[str, Callable[[Any, Any], Any]] = {
        "+": lambda a, b: a + b,
        "-": lambda a, b: a - b,
        "*": lambda a, b: a * b,
        "/": _java_divide,
        "%": _java_remainder,
        "//": lambda a, b: a // b,
        "**": lambda a, b: a**b,
    }
    return operations[op](left, right)


def _bits(value: Any) -> int:
    """Size of an integer operand: numbers beyond Java's long are refused before Python computes them."""
    return abs(value).bit_length() if isinstance(value, int) else 64


class _PebbleEnvironment(ImmutableSandboxedEnvironment):
    """A sandbox where map keys win over Python attributes and arithmetic is Pebble's."""

    intercepted_binops = frozenset({"+", "-", "*", "/", "//", "%", "**"})

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        return _arithmetic(operator, left, right)

    def getattr(self, obj: Any, attribute: str) -> Any:
        """`outputs.t.values` is the key `values`, not `dict.values`; undefined chains stay undefined."""
        if isinstance(obj, Undefined):
            return obj
        if isinstance(obj, Mapping) and not isinstance(obj, Undefined) and attribute in obj:
            return obj[attribute]
        return super().getattr(obj, attribute)

    def getitem(self, obj: Any, argument: Any) -> Any:
        """`map['key']` only ever reads a key."""
        if isinstance(obj, Undefined):
            return obj
        if isinstance(obj, Mapping) and not isinstance(obj, Undefined):
            try:
                return obj[argument]
            except (KeyError, TypeError):
                return self.undefined(obj=obj, name=argument)
        return super().getitem(obj, argument)

    def call(__self, __context: Context, __obj: Any, *args: Any, **kwargs: Any) -> Any:  # noqa: N805 - Jinja's
        """Text methods that grow a string (`'a'.center(10**9)`) are sized before Python allocates them."""
        method = getattr(__obj, "__wrapped__", __obj)  # the sandbox wraps `str.format` in a function of its own
        owner = getattr(method, "__self__", None)
        if isinstance(owner, str):
            args = _sized_text_call(owner, getattr(method, "__name__", ""), args, kwargs)
        return super().call(__context, __obj, *args, **kwargs)


def _sized_text_call(text: str, method: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, ...]:
    """Check the size a text method would produce; returns the arguments (an iterable is read only once)."""
    first = args[0] if args else None
    if method in ("center", "ljust", "rjust", "zfill") and isinstance(first, int):
        within_limit(first, f"`{method}`")
    elif method == "expandtabs":
        within_limit(len(text) + text.count("\t") * (first if isinstance(first, int) else 8), "`expandtabs`")
    elif method == "replace" and len(args) >= 2 and isinstance(first, str) and isinstance(args[1], str):
        within_limit(_replaced_size(text, first, args[1]), "`replace`")
    elif method == "join" and args:
        items = list(args[0])
        within_limit(sum(len(to_text(i)) for i in items) + len(text) * len(items), "`join`")
        args = (items, *args[1:])
    elif method == "translate" and isinstance(first, Mapping):
        longest = max((len(v) for v in first.values() if isinstance(v, str)), default=1)
        within_limit(len(text) * longest, "`translate`")
    elif method in ("format", "format_map"):
        within_limit(_formatted_size(text, [*args, *kwargs.values()]), "`format`")
    return args


def _replaced_size(text: str, old: str, new: str) -> int:
    hits = text.count(old) if old else len(text) + 1
    return len(text) + hits * (len(new) - len(old))


def _formatted_size(text: str, arguments: list[Any]) -> int:
    """An upper bound for `str.format`: every field holds the longest argument, padded to the widest width
    (written in the text, or taken from the arguments when a width is itself a field, `{:{}}`)."""
    fields = re.findall(r"\{[^{}]*(?:\{[^{}]*\}[^{}]*)*\}", text)
    widths = [int(n) for field in fields for n in re.findall(r"\d+", field)]
    if any(field.count("{") > 1 for field in fields):
        widths += [a for a in arguments if isinstance(a, int)]
    longest = max((len(to_text(a)) for a in arguments if isinstance(a, str)), default=20)
    return len(text) + len(fields) * max(longest, *widths, 20)


# ---------------------------------------------------------------- helpers the rewritten code calls

_held = threading.local()


def _kc_hold(value: Any, null_too: bool) -> bool:
    """Keep the left side of `??` for `_kc_take` when it is present (evaluated only once)."""
    if isinstance(value, Undefined) or (null_too and value is None):
        return False
    _held.__dict__.setdefault("stack", []).append(value)
    return True


def _kc_take() -> Any:
    return _held.stack.pop()


def _kc_concat(left: Any, right: Any) -> str:
    head, tail = to_text(left), to_text(right)
    within_limit(len(head) + len(tail), "the text")
    return head + tail


def _kc_contains(container: Any, item: Any) -> bool:
    """Pebble `contains`: substring of text, key of a map, element(s) of a list."""
    require(container)
    require(item)
    if container is None:
        return False
    if isinstance(container, str):
        return to_text(item) in container
    pool = list(container.keys()) if isinstance(container, Mapping) else list(container)
    wanted = item if isinstance(item, list | tuple) else [item]
    return all(w in pool for w in wanted)


def _kc_is_in(item: Any, container: Any) -> bool:
    """Kestra's `isIn`: the item's text equals the text of an element of a list, or of a key or value of a map."""
    require(item)
    require(container)
    if item is None or container is None or isinstance(container, str):
        return False
    text = to_text(item)
    pool = [*container.keys(), *container.values()] if isinstance(container, Mapping) else container
    return any(to_text(element) == text for element in pool)


def _kc_iter(value: Any) -> Any:
    """What `{% for %}` walks: maps give `{key, value}` entries like Pebble, null gives nothing."""
    require(value)
    if value is None:
        return []
    if isinstance(value, Mapping):
        value = [{"key": k, "value": v} for k, v in value.items()]
    elif isinstance(value, str) or not hasattr(value, "__iter__"):
        return [value]
    budget = loop_budget.get(None)
    return value if budget is None else _counted(value, budget)


def _counted(items: Any, budget: Budget) -> Iterator[Any]:
    """Each item is charged as the loop takes it (nested loops cost the product of their sizes); the clock
    is looked at every 1,024 items, for loop bodies that are slow rather than many."""
    for item in items:
        budget.items -= 1
        if budget.items < 0:
            raise ValueError(f"the loops of this expression take more than {MAX_LOOP_ITEMS:,} iterations")
        if not budget.items & 1023 and time.monotonic() > budget.deadline:
            raise ValueError(f"the loops of this expression take more than {MAX_RENDER_SECONDS} seconds")
        yield item


def _range(start: int, end: int, step: int = 1) -> list[int]:
    """Pebble's `range(a, b)`: both ends included."""
    for value in (start, end, step):
        require(value)
    if step == 0:
        raise ValueError("range step must not be 0")
    stop = end + 1 if step > 0 else end - 1
    if abs((stop - start) // step) > _MAX_RANGE:
        raise ValueError(f"range is too large (more than {_MAX_RANGE} items)")
    return list(range(start, stop, step))


# ---------------------------------------------------------------- global functions


def _now(timeZone: str | None = None, format: str | None = None, **_: Any) -> Any:
    """`now()`: the current instant (printed in ISO), or formatted text when `format` is given."""
    current = datetime.now(zone(timeZone))
    return current if format is None else format_date(current, format)


def _from_json(value: Any) -> Any:
    """`fromJson(text)`: parse JSON text; other values pass through."""
    require(value)
    if isinstance(value, str | bytes):
        return json.loads(value)
    return value


def _from_yaml(value: Any) -> Any:
    require(value)
    return yaml.safe_load(value) if isinstance(value, str | bytes) else value


def _random_int(lower: int, upper: int) -> int:
    """`randomInt(lower, upper)`: lower included, upper excluded, like Kestra."""
    if upper < lower:
        raise ValueError("in 'randomInt()' upper is less than lower")
    return lower if upper == lower else random.randrange(int(lower), int(upper))


def _extreme(pick: Callable[..., Any]) -> Callable[..., Any]:
    def function(*values: Any) -> Any:
        """`max(a, b, ...)` / `min(...)`, or of a single list."""
        items = list(values[0]) if len(values) == 1 and isinstance(values[0], list | tuple) else values
        for item in items:
            require(item)
        return pick(items)

    return function


def _variables(context: Context) -> dict[str, Any]:
    return {k: v for k, v in context.get_all().items() if k not in _GLOBALS}


@pass_context
def _render_function(context: Context, template: Any, recursive: bool = True) -> Any:
    """`render(text)`: render a string (e.g. a flow variable) with the current variables."""
    require(template)
    if not isinstance(template, str):
        return template
    variables = context.get_all()
    result = render(template, variables)
    for _ in range(_MAX_RENDER_DEPTH):
        if not recursive or result == template:
            break
        template, result = result, render(result, variables)
    return result


@pass_context
def _render_once(context: Context, template: Any) -> Any:
    return _render_function(context, template, recursive=False)


@pass_context
def _fetch_context(context: Context) -> dict[str, Any]:
    """`fetchContext()`: the variables as a map (functions left out)."""
    return {k: v for k, v in _variables(context).items() if not callable(v)}


@pass_context
def _print_context(context: Context) -> str:
    return to_json(_fetch_context(context))


_GLOBALS: dict[str, Any] = {
    "now": _now,
    "fromJson": _from_json,
    "json": _from_json,
    "jsonDecode": _from_json,
    "yaml": _from_yaml,
    "id": new_id,
    "randomInt": _random_int,
    "range": _range,
    "max": _extreme(max),
    "min": _extreme(min),
    "render": _render_function,
    "renderOnce": _render_once,
    "printContext": _print_context,
    "fetchContext": _fetch_context,
    **FUNCTIONS,
    "_kc_hold": _kc_hold,
    "_kc_take": _kc_take,
    "_kc_concat": _kc_concat,
    "_kc_contains": _kc_contains,
    "_kc_is_in": _kc_is_in,
    "_kc_iter": _kc_iter,
    "_kc_range": _range,
}


def _sized(name: str, filter_: Callable[..., Any], size: Callable[..., int]) -> Callable[..., Any]:
    """A filter that checks the size it would produce before producing it."""

    def guarded(value: Any, *args: Any, **kwargs: Any) -> Any:
        within_limit(size(value, *args, **kwargs), f"`{name}`")
        return filter_(value, *args, **kwargs)

    return guarded


def _format_width(value: Any, *args: Any, **_: Any) -> int:
    """The widest field of a `%` format (`%100s`; `*` takes its width from the arguments)."""
    text = to_text(value)
    widths = [int(n) for n in re.findall(r"%(?:\([^)]*\))?[-#0 +]*(\d+)", text)]
    if "*" in text:
        widths += [a for a in args if isinstance(a, int)]
    return max(widths, default=0)


def _indented_size(value: Any, amount: Any = 0, prefix: Any = " ", *_: Any, **__: Any) -> int:
    text = to_text(value)
    lines = text.count("\n") + text.count("\r") + 2
    return len(text) + lines * int(amount) * len(to_text(prefix))


def _joined_size(value: Any, separator: Any = "", *_: Any, **__: Any) -> int:
    items = value if isinstance(value, list | tuple) else []
    return sum(len(to_text(i)) for i in items) + len(to_text(separator)) * len(items)


def _replace_filter_size(
    value: Any, pairs: Any, replacement: Any = None, regexp: bool = False, *_: Any, **__: Any
) -> int:
    """Kestra's `replace` (a map of replacements, or one pair) on text; literal or regular expression."""
    if not isinstance(value, str):
        return 0
    table = pairs if isinstance(pairs, Mapping) else {pairs: replacement}
    size = len(value)
    for old, new in table.items():
        old_text, new_text = to_text(old), to_text(new)
        hits = len(re.findall(old_text, value)) if regexp else value.count(old_text) if old_text else size + 1
        size += hits * max(0, len(new_text) - (0 if regexp else len(old_text)))
    return size


def _wrapped_size(
    value: Any, width: Any = 79, break_long: Any = True, wrapstring: Any = None, *_: Any, **__: Any
) -> int:
    text, joint = to_text(value), to_text(wrapstring) if wrapstring is not None else "\n"
    return len(text) + (len(text) // max(1, int(width)) + 1) * len(joint)


# The size each filter that can build long text would produce, checked before it runs (see `_sized`).
_FILTER_SIZES: dict[str, Callable[..., int]] = {
    "center": lambda v, width=80, *_, **__: int(width),
    "format": _format_width,
    "batch": lambda v, linecount, fill_with=None, *_, **__: 0 if fill_with is None else int(linecount),
    "indent": _indented_size,
    "nindent": _indented_size,
    "join": _joined_size,
    "replace": _replace_filter_size,
    "wordwrap": _wrapped_size,
    "urlencode": lambda v, *_, **__: 3 * len(to_text(v)),
    "regexReplace": regex_replaced_size,
}


def _environment() -> _PebbleEnvironment:
    env = _PebbleEnvironment(
        autoescape=False,
        finalize=to_text,
        keep_trailing_newline=True,
        undefined=PebbleUndefined,
        cache_size=0,
    )
    env.filters.update(FILTERS)
    env.filters.update({name: _sized(name, env.filters[name], size) for name, size in _FILTER_SIZES.items()})
    env.tests.update(TESTS)
    for name in ("lipsum", "cycler", "joiner"):
        env.globals.pop(name, None)
    env.globals.update(_GLOBALS)
    return env


ENV = _environment()


def compile_template(source: str) -> Template:
    """Jinja's compiled form of a Pebble template.

    Jinja chains a template's globals to the environment's (a `ChainMap`, so that later changes show); every
    render copies them into its context, and copying a `ChainMap` key by key was half the cost of rendering a
    short template. Ours are set once, at import: a plain copy gives the same names and values."""
    template = ENV.from_string(pebble_to_jinja(source))
    template.globals = dict(template.globals)
    return template
