"""Pebble template source rewritten as Jinja2 source: the operators Jinja lacks (`a ? b : c`, `??`, `???`,
`contains`, `isIn`, `equals`, `..`, `is null`), Pebble's precedence of `~` and `|`, zero-based `loop.index` and
`elseif`, with a small tokenizer that respects strings and brackets. Text, comments and raw blocks stay as they
are. The rewritten code calls the `_kc_*` helpers that `kestractl.expressions` puts in the environment.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

_TOKEN_RE = re.compile(
    r"""\s*(?:(?P<str>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")
    |(?P<num>\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)
    |(?P<name>[A-Za-z_][A-Za-z0-9_]*)
    |(?P<op>\?\?\?|\?\?|\.\.|==|!=|<=|>=|//|\*\*|[-+*/%~|.,:?=<>!()\[\]{}])
    |(?P<other>\S))""",
    re.S | re.X,
)
_WORD_OPS = {"and", "or", "not", "in", "is", "if", "else", "contains", "isIn", "equals"}
_HIGH_OPS = {"??": 120, "???": 120, "..": 120, "~": 110, "|": 100}  # Pebble precedences above Jinja's
_PAIRS = {"(": ")", "[": "]", "{": "}"}

Token = tuple[str, str]  # (kind, text)


class _Group:
    """A bracketed sub-expression: `(...)`, `[...]` or `{...}`."""

    __slots__ = ("open", "items", "close")

    def __init__(self, open_: str, items: list[Any], close: str) -> None:
        self.open, self.items, self.close = open_, items, close


def _tokens(source: str) -> list[Token]:
    return [(m.lastgroup, m.group(m.lastgroup)) for m in _TOKEN_RE.finditer(source) if m.lastgroup]


def _tree(tokens: list[Token]) -> list[Any]:
    """Nest tokens by brackets so each level can be rewritten on its own."""
    stack: list[list[Any]] = [[]]
    opens: list[str] = []
    for token in tokens:
        if token[0] == "op" and token[1] in _PAIRS:
            stack.append([])
            opens.append(token[1])
        elif token[0] == "op" and token[1] in _PAIRS.values() and opens:
            items = stack.pop()
            stack[-1].append(_Group(opens.pop(), items, token[1]))
        else:
            stack[-1].append(token)
    while opens:  # unclosed bracket: keep the text, Jinja reports the error
        items = stack.pop()
        stack[-1].extend([("op", opens.pop()), *items])
    return stack[0]


def _is(item: Any, text: str) -> bool:
    return isinstance(item, tuple) and item[0] in ("op", "name") and item[1] == text


def _split(items: list[Any], is_separator: Callable[[Any], bool]) -> list[list[Any]]:
    parts: list[list[Any]] = [[]]
    for item in items:
        if is_separator(item):
            parts.append([])
        else:
            parts[-1].append(item)
    return parts


def _emit_group(group: _Group) -> str:
    parts = _split(group.items, lambda item: _is(item, ","))
    if group.open == "{":
        inner = ", ".join(_emit_entry(p) for p in parts)
    elif group.open == "(":
        inner = ", ".join(_emit_argument(p) for p in parts)
    else:
        inner = ", ".join(_emit_expr(p) for p in parts)
    return group.open + inner + group.close


def _emit_entry(items: list[Any]) -> str:
    """A map literal entry `key: value` (the value may hold a ternary)."""
    colon = next((i for i, item in enumerate(items) if _is(item, ":")), -1)
    if colon < 0:
        return _emit_expr(items)
    return f"{_emit_expr(items[:colon])}: {_emit_expr(items[colon + 1 :])}"


def _emit_argument(items: list[Any]) -> str:
    """A call argument, keeping `name=` of named arguments."""
    if len(items) > 2 and isinstance(items[0], tuple) and items[0][0] == "name" and _is(items[1], "="):
        return f"{items[0][1]}={_emit_expr(items[2:])}"
    return _emit_expr(items)


def _emit_unit(items: list[Any]) -> str:
    """An operand chain (`-a.b['c'](d)`): `null` -> `none`, Pebble's zero-based `loop.index`."""
    out = []
    for i, item in enumerate(items):
        if isinstance(item, _Group):
            out.append(_emit_group(item))
            continue
        text = item[1]
        after_dot = i > 0 and _is(items[i - 1], ".")
        if text == "null" and item[0] == "name" and not after_dot:
            text = "none"
        elif text in ("index", "revindex") and after_dot and i == 2 and _is(items[0], "loop"):
            text += "0"
        out.append(text)
    return " ".join(out)


def _atoms(items: list[Any]) -> list[tuple[str, Any]]:
    """Group a flat expression into operand chains ("unit") and operators ("op")."""
    atoms: list[tuple[str, Any]] = []
    prefix: list[Any] = []
    attribute_next = False
    for item in items:
        last_is_unit = bool(atoms) and atoms[-1][0] == "unit" and not prefix
        if attribute_next or (isinstance(item, _Group) and item.open in "([" and last_is_unit):
            atoms[-1][1].append(item)
            attribute_next = False
        elif isinstance(item, tuple) and _is(item, ".") and last_is_unit:
            atoms[-1][1].append(item)
            attribute_next = True
        elif isinstance(item, _Group) or item[0] in ("str", "num") or (item[0] == "name" and item[1] not in _WORD_OPS):
            atoms.append(("unit", [*prefix, item]))
            prefix = []
        elif item[1] in ("-", "+") and (not last_is_unit or prefix):
            prefix.append(item)
        else:
            atoms.append(("op", item))
    atoms.extend(("op", p) for p in prefix)
    return atoms


def _compose(run: list[tuple[str, Any]]) -> str:
    """Combine operands joined by `??`, `???`, `..`, `~` and `|` with Pebble's precedences."""
    position = 0

    def parse(min_precedence: int) -> str:
        nonlocal position
        left = _emit_unit(run[position][1])
        position += 1
        while position < len(run) and _HIGH_OPS[run[position][1][1]] >= min_precedence:
            op = run[position][1][1]
            position += 1
            if op == "|":
                left = f"({left}) | {_emit_unit(run[position][1])}"
                position += 1
            else:
                left = _combine(op, left, parse(_HIGH_OPS[op] + 1))
        return left

    return parse(0)


def _combine(op: str, left: str, right: str) -> str:
    if op == "~":
        return f"_kc_concat({left}, {right})"
    if op == "..":
        return f"_kc_range({left}, {right})"
    # `??` / `???`: the right side is only evaluated when the left one is missing.
    return f"(_kc_take() if _kc_hold({left}, {op == '??'}) else ({right}))"


def _pieces(atoms: list[tuple[str, Any]]) -> list[str]:
    out, i = [], 0
    while i < len(atoms):
        if atoms[i][0] == "op":
            out.append("==" if atoms[i][1][1] == "equals" else atoms[i][1][1])
            i += 1
            continue
        j = i + 1
        while j + 1 < len(atoms) and atoms[j][0] == "op" and atoms[j][1][1] in _HIGH_OPS and atoms[j + 1][0] == "unit":
            j += 2
        out.append(_compose(atoms[i:j]))
        i = j
    return out


_MEMBERSHIP = {"contains": "_kc_contains(({}), ({}))", "isIn": "_kc_is_in(({}), ({}))"}


def _fold_contains(pieces: list[str]) -> str:
    """`a contains b` and Kestra's `a isIn b` (below comparisons, above `and`/`or`/`not`), left to right."""
    out: list[str] = []
    segment: list[str] = []
    for piece in [*pieces, "and"]:
        if piece not in ("and", "or"):
            segment.append(piece)
            continue
        nots = 0
        while nots < len(segment) and segment[nots] == "not":
            nots += 1
        operators = [word for word in segment[nots:] if word in _MEMBERSHIP]
        parts = [" ".join(p) for p in _split(segment[nots:], lambda word: word in _MEMBERSHIP)]
        expression = parts[0]
        for operator, part in zip(operators, parts[1:], strict=True):
            expression = _MEMBERSHIP[operator].format(expression, part)
        out.extend([*segment[:nots], expression, piece])
        segment = []
    return " ".join(out[:-1])


def _emit_binary(items: list[Any]) -> str:
    """An expression without a ternary."""
    return _fold_contains(_pieces(_atoms(items)))


def _matching_colon(items: list[Any], question: int) -> int:
    """The `:` that belongs to the `?` at `question`, skipping nested ternaries."""
    depth = 0
    for j in range(question + 1, len(items)):
        if _is(items[j], "?"):
            depth += 1
        elif _is(items[j], ":"):
            if depth == 0:
                return j
            depth -= 1
    return -1


def _emit_expr(items: list[Any]) -> str:
    """A whole expression: the ternary `c ? a : b` (lowest precedence, right-associative, lazy)."""
    question = next((i for i, item in enumerate(items) if _is(item, "?")), -1)
    colon = _matching_colon(items, question) if question >= 0 else -1
    if colon < 0:
        return _emit_binary(items)
    condition = _emit_binary(items[:question])
    yes, no = _emit_expr(items[question + 1 : colon]), _emit_expr(items[colon + 1 :])
    return f"(({yes}) if ({condition}) else ({no}))"


def expression_to_jinja(source: str) -> str:
    """Rewrite one Pebble expression (the inside of `{{ }}`) as Jinja source."""
    return _emit_expr(_tree(_tokens(source)))


def _plain(items: list[Any]) -> str:
    return " ".join(_emit_group(i) if isinstance(i, _Group) else i[1] for i in items)


def _rewrite_tag(body: str) -> str:
    """`{% if %}`/`{% elseif %}`/`{% for %}`/`{% set %}` get their expressions rewritten."""
    match = re.match(r"\s*([A-Za-z_]\w*)", body)
    if not match:
        return body
    name, rest = match.group(1), body[match.end() :]
    if name in ("if", "elif", "elseif"):
        return f"{'elif' if name == 'elseif' else name} {expression_to_jinja(rest)}"
    items = _tree(_tokens(rest))
    if name == "for":
        at = next((i for i, item in enumerate(items) if _is(item, "in")), -1)
        if at > 0:
            return f"for {_plain(items[:at])} in _kc_iter({_emit_expr(items[at + 1 :])})"
    if name == "set":
        at = next((i for i, item in enumerate(items) if _is(item, "=")), -1)
        if at > 0:
            return f"set {_plain(items[:at])} = {_emit_expr(items[at + 1 :])}"
    return body


def _find_close(source: str, position: int, close: str) -> int:
    """Index of the closing delimiter, skipping string literals and nested brackets."""
    depth = 0
    while position < len(source):
        char = source[position]
        if depth == 0 and source.startswith(close, position):
            return position
        if char in "'\"":
            end = position + 1
            while end < len(source) and source[end] != char:
                end += 2 if source[end] == "\\" else 1
            position = end
        elif char in "([{":
            depth += 1
        elif char in ")]}" and depth:
            depth -= 1
        position += 1
    return -1


_OPEN_RE = re.compile(r"\{\{|\{%|\{#")
_RAW_RE = re.compile(r"\{%[-+]?\s*(raw|verbatim)\s*[-+]?%\}")


def _rewrite_block(kind: str, inner: str, close: str) -> str:
    """Rewrite one `{{ }}` or `{% %}` block, keeping whitespace control and line count."""
    lead = inner[0] if inner[:1] in ("-", "+") else ""
    trail = inner[-1] if len(inner) > len(lead) and inner[-1:] in ("-", "+") else ""
    body = inner[len(lead) : len(inner) - len(trail)]
    code = expression_to_jinja(body) if kind == "{{" else _rewrite_tag(body)
    lost_lines = "\n" * max(body.count("\n") - code.count("\n"), 0)  # error line numbers stay right
    return f"{kind}{lead} {code}{lost_lines} {trail}{close}"


def _verbatim(source: str, start: int, raw: re.Match[str] | None) -> tuple[str, int]:
    """A comment or a `{% raw %}` (Pebble also says `verbatim`) block, copied unchanged."""
    if raw is None:
        end = source.find("#}", start)
        stop = len(source) if end < 0 else end + 2
        return source[start:stop], stop
    closing = re.compile(r"\{%[-+]?\s*end" + raw.group(1) + r"\s*[-+]?%\}").search(source, raw.end())
    if closing is None:
        return source[start:], len(source)
    tags = (raw.group(), closing.group())
    opening, ending = (t.replace("verbatim", "raw") for t in tags)
    return opening + source[raw.end() : closing.start()] + ending, closing.end()


def pebble_to_jinja(source: str) -> str:
    """Translate a Pebble template into Jinja source; text, comments and raw blocks stay as they are."""
    out, position = [], 0
    while (match := _OPEN_RE.search(source, position)) is not None:
        out.append(source[position : match.start()])
        raw = _RAW_RE.match(source, match.start())
        if match.group() == "{#" or raw:
            text, position = _verbatim(source, match.start(), raw)
            out.append(text)
            continue
        close = "}}" if match.group() == "{{" else "%}"
        end_at = _find_close(source, match.end(), close)
        if end_at < 0:
            break
        out.append(_rewrite_block(match.group(), source[match.end() : end_at], close))
        position = end_at + len(close)
    out.append(source[position:])
    return "".join(out)
