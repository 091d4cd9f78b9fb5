"""Kestra's Pebble template dialect (`{{ expressions }}`): the public API.

Most templates in flows are literal text with `{{ dotted.path }}`s; `PathsTemplate` reads those without Jinja.
Anything else is compiled by a sandboxed Jinja2 environment (`kestractl.expressions_env`, imported on first
use) after `kestractl.pebble_syntax` rewrites the operators Jinja lacks. Values print as Kestra prints them
(`kestractl.expressions_text.to_text`). Every failure becomes an `ExpressionError` naming the expression and
the reason, on one line.
"""

from __future__ import annotations

import contextvars
import functools
import re
import time
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from kestractl.errors import ExpressionError, KestraError
from kestractl.expressions_text import is_undefined, require, to_text

if TYPE_CHECKING:
    from jinja2 import Template

__all__ = ["ExpressionError", "is_truthy", "render", "render_typed", "render_value", "to_text"]

# Loop iterations one render may take, all loops together (each `range` is bounded, but nested loops multiply),
# and the time its loops may run.
MAX_LOOP_ITEMS = 1_000_000
MAX_RENDER_SECONDS = 30
# An expression's result is held in memory and stored with the execution: keep it bounded.
MAX_OUTPUT_CHARS = 10_000_000


class Budget:
    """What one render may still spend on loops: iterations, all loops together, and wall time."""

    __slots__ = ("deadline", "items")

    def __init__(self) -> None:
        self.items = MAX_LOOP_ITEMS
        self.deadline = time.monotonic() + MAX_RENDER_SECONDS


loop_budget: contextvars.ContextVar[Budget] = contextvars.ContextVar("loop_budget")


def within_limit(size: int, what: str) -> None:
    """Refuse a value before it is built: the output cap alone would only see it after the memory is spent."""
    if size > MAX_OUTPUT_CHARS:
        raise ValueError(f"{what} would be over {MAX_OUTPUT_CHARS:,} characters")


# ---------------------------------------------------------------- public API


@functools.lru_cache(maxsize=4096)
def _compile(source: str) -> Template | PathsTemplate:
    """Compiled templates by source: flows render the same strings again and again."""
    return PathsTemplate.of(source) or _jinja(source)


def _jinja(source: str) -> Template:
    from kestractl.expressions_env import compile_template  # Jinja, only for templates that need it

    return compile_template(source)


# `{{ name.key.key }}`: the commonest expression, read without Jinja (see `PathsTemplate`).
_PATH_RE = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)\s*\}\}")
# Names Pebble or Jinja read as something else than a variable: constants, `loop`, word operators.
_NOT_VARIABLES = frozenset(
    {"true", "false", "none", "null", "True", "False", "None", "loop"}
    | {"and", "or", "not", "in", "is", "if", "else", "contains", "isIn", "equals"}
)


class PathsTemplate:
    """A template made of literal text and `{{ dotted.path }}`s only, the shape of most templates in flows:
    Jinja compiles one in about a millisecond, this reads it in microseconds. Where a path is not a chain of
    map keys (a missing key, an attribute, an error), Jinja renders it, so the text or the error is Jinja's."""

    def __init__(self, source: str, pieces: list[tuple[str, tuple[str, ...]]], tail: str) -> None:
        self.source = source
        self.pieces = pieces
        self.tail = tail

    @classmethod
    def of(cls, source: str) -> PathsTemplate | None:
        """The template if `source` has this shape, else None."""
        pieces, position = [], 0
        for match in _PATH_RE.finditer(source):
            pieces.append((source[position : match.start()], tuple(match.group(1).split("."))))
            position = match.end()
        texts = [text for text, _ in pieces] + [source[position:]]
        if any(_special_text(text) for text in texts) or any(path[0] in _NOT_VARIABLES for _, path in pieces):
            return None
        return cls(source, pieces, texts[-1])

    def generate(self, variables: Mapping[str, Any]) -> Iterator[str]:
        try:
            text = "".join(before + to_text(_read_path(path, variables)) for before, path in self.pieces) + self.tail
        except Exception:  # Jinja's to render, or to report with its own message
            text = None
        if text is None or len(text) > MAX_OUTPUT_CHARS:
            yield from self._jinja.generate(variables)
        else:
            yield text

    @functools.cached_property
    def _jinja(self) -> Template:
        return _jinja(self.source)


def _special_text(text: str) -> bool:
    """Text Jinja would not copy as is: another tag, a comment, a brace that starts one, a newline it rewrites."""
    return "{{" in text or "{%" in text or "{#" in text or text.endswith("{") or "\r" in text


def _read_path(path: tuple[str, ...], variables: Mapping[str, Any]) -> Any:
    """What Jinja's lookup gives for a path of map keys (`_PebbleEnvironment.getattr`); KeyError otherwise."""
    value = variables[path[0]]
    for key in path[1:]:
        if not isinstance(value, Mapping) or is_undefined(value) or key not in value:
            raise KeyError(key)
        value = value[key]
    return value


def _syntax_error(error: BaseException) -> bool:
    from jinja2 import TemplateSyntaxError  # only failures get here: importing Jinja costs nothing that matters

    return isinstance(error, TemplateSyntaxError)


def _template_line(error: BaseException) -> int | None:
    """The template line an error happened on (Jinja rewrites tracebacks to point at it)."""
    if _syntax_error(error):
        return getattr(error, "lineno", None)
    line, tb = None, error.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == "<template>":
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


def _clip(text: str, limit: int = 160) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _failure(template: str, error: BaseException) -> ExpressionError:
    """One line: the expression (or its failing line) and the reason."""
    if _syntax_error(error):
        reason = "syntax error: " + re.sub(r" at \d+$", "", getattr(error, "message", None) or "")
    elif isinstance(error, KestraError):
        reason = error.message
    else:
        reason = str(error) or type(error).__name__
    lines = template.strip().splitlines() or [""]
    line = _template_line(error)
    if len(lines) == 1:
        where = f"`{_clip(lines[0].strip())}`"
    elif line and 0 < line <= len(template.splitlines()):
        where = f"`{_clip(template.splitlines()[line - 1].strip())}` (line {line})"
    else:
        where = f"`{_clip(' '.join(template.split()))}`"
    return ExpressionError(f"Unable to render {where}: {' '.join(reason.split())}")


def render(template: str, variables: Mapping[str, Any]) -> str:
    """Render one Pebble template string; text without `{{`/`{%` comes back untouched."""
    if "{{" not in template and "{%" not in template:
        return template
    budget = loop_budget.set(Budget()) if loop_budget.get(None) is None else None  # `render()` nests
    pieces, size = [], 0
    try:
        for piece in _compile(template).generate(variables):  # counted as it streams, not once it is whole
            size += len(piece)
            if size > MAX_OUTPUT_CHARS:
                break
            pieces.append(piece)
    except Exception as error:  # every failure becomes one user-facing error
        raise _failure(template, error) from error
    finally:
        if budget is not None:
            loop_budget.reset(budget)
    if size > MAX_OUTPUT_CHARS:
        raise ExpressionError(f"Unable to render `{template[:80]}`: the result is over {MAX_OUTPUT_CHARS:,} characters")
    return "".join(pieces)


# A whole text that is one `{{ expression }}`, nothing around it.
_LONE_RE = re.compile(r"\{\{((?:(?!\{\{|\}\}|\{%|%\}).)*)\}\}", re.S)


def render_typed(template: str, variables: Mapping[str, Any]) -> Any:
    """Kestra's `renderTyped`: a text that is one `{{ expression }}` keeps its value's type (a number, a map …);
    any other text renders to a string."""
    match = _LONE_RE.fullmatch(template)
    if match is None:
        return render(template, variables)
    value = _lone_path(match.group(1), variables)
    if value is _NOT_A_PATH:
        value = _typed(template, match.group(1), variables)
    return dict(value) if isinstance(value, Mapping) and not isinstance(value, dict) else value


_NOT_A_PATH = object()


def _lone_path(expression: str, variables: Mapping[str, Any]) -> Any:
    """The value of a `{{ dotted.path }}` read as `PathsTemplate` reads it, or `_NOT_A_PATH` for Jinja to do."""
    path = tuple(expression.strip().split("."))
    if not _PATH_RE.fullmatch("{{" + expression + "}}") or path[0] in _NOT_VARIABLES:
        return _NOT_A_PATH
    try:
        return _read_path(path, variables)
    except Exception:  # Jinja's to evaluate, or to report with its own message
        return _NOT_A_PATH


def _typed(template: str, expression: str, variables: Mapping[str, Any]) -> Any:
    """Jinja evaluates the expression and hands its value to `keep`, uncoerced."""
    kept: list[Any] = []

    def keep(value: Any) -> str:
        require(value)
        kept.append(value)
        return ""

    try:
        "".join(_compile("{{ _kc_keep(" + expression + ") }}").generate({**variables, "_kc_keep": keep}))
    except Exception as error:  # the same one-line failure as `render`, naming the user's own text
        raise _failure(template, error) from error
    return kept[0]  # a map built on first use (`outputs`, `tasks`) is stored as the plain map it stands for


def render_value(value: Any, variables: Mapping[str, Any]) -> Any:
    """Render every string inside a property: dict keys and values, list items; other values as is."""
    if isinstance(value, str):
        return render(value, variables)
    if isinstance(value, Mapping):
        return {render_value(k, variables): render_value(v, variables) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [render_value(v, variables) for v in value]
    return value


def is_truthy(value: Any) -> bool:
    """Kestra's `TruthUtils`: false for `false`, `0`, `-0` and blank text, true otherwise."""
    text = to_text(value).strip()
    return not (text == "" or text.lower() == "false" or text in ("0", "-0"))
