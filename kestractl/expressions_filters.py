"""Kestra's Pebble filters and tests, and how values print, for `kestractl.expressions`.

Each filter mimics the Kestra/Pebble one of the same name (`core/runners/pebble/filters/*.java`) so a
flow written for Kestra renders the same text here. The date filters live in `kestractl.expressions_dates`.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import unicodedata
import urllib.parse
from collections.abc import Callable, Mapping
from datetime import date, datetime
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from jinja2 import Undefined, pass_context
from jinja2.runtime import Context

from kestractl import ion
from kestractl.expressions_dates import f_date, f_date_add, timestamp_filter
from kestractl.expressions_jq import jq_all
from kestractl.expressions_text import require, to_json, to_text

# ---------------------------------------------------------------- JSON values


def plain(value: Any) -> Any:
    """The value as JSON data only (dates as text), the shape Jackson's `valueToTree` sees."""
    return json.loads(to_json(value))


def _maybe_json(value: Any) -> Any:
    """Parse text that looks like a JSON object or array (ForEach values arrive as JSON text)."""
    if isinstance(value, str) and value.strip()[:1] in ("{", "["):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _is_empty(value: Any) -> bool:
    """Pebble's `EmptyTest`: null, blank text, or an empty collection."""
    if value is None:
        return True
    if isinstance(value, str):
        return value.strip() == ""
    if isinstance(value, Mapping | list | tuple | set | frozenset):
        return len(value) == 0
    return False


# ---------------------------------------------------------------- jq


def f_jq(value: Any, expression: Any) -> list[Any] | None:
    """`jq(expression)`: full jq; every result in a list, like Kestra (text input is read as JSON)."""
    if value is None:
        return None
    document = value if isinstance(value, str) else to_json(plain(value))
    try:
        return jq_all(to_text(expression), document)
    except ValueError as error:
        raise ValueError(f"jq expression '{to_text(expression)}' failed: {error}") from None


# ---------------------------------------------------------------- text filters


def _substring(text: Any, sep: Any, last: bool, after: bool) -> str:
    """Apache `StringUtils.substring{Before,After}[Last]` (a missing separator keeps/clears all)."""
    value, separator = to_text(text), to_text(sep)
    index = value.rfind(separator) if last else value.find(separator)
    if separator == "":
        return (value if last else "") if not after else ("" if last else value)
    if index < 0:
        return "" if after else value
    return value[index + len(separator) :] if after else value[:index]


def f_replace(value: Any, pairs: Any, replacement: Any = None, regexp: bool = False) -> Any:
    """`replace({'a': 'b'})` like Kestra (maps and lists recursively), or Jinja's `replace('a', 'b')`."""
    if value is None:
        return None
    table = pairs if isinstance(pairs, Mapping) else {pairs: replacement}

    def one(text: str) -> str:
        for old, new in table.items():
            old_text, new_text = to_text(old), to_text(new)
            text = re.sub(old_text, new_text, text) if regexp else text.replace(old_text, new_text)
        return text

    return _map_strings(value, one)


def _map_strings(value: Any, fn: Callable[[str], str]) -> Any:
    if isinstance(value, Mapping):
        return {k: _map_strings(v, fn) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_map_strings(v, fn) for v in value]
    return fn(to_text(value))


def f_split(value: Any, delimiter: str, limit: int | None = None) -> list[str]:
    """Pebble `split`: a literal delimiter; trailing empty parts dropped like Java's `String.split`."""
    text, sep = to_text(value), to_text(delimiter)
    if limit and limit > 0:
        return text.split(sep, limit - 1) if sep else list(text)[:limit]
    parts = text.split(sep) if sep else list(text)
    while limit is None and parts and parts[-1] == "" and len(parts) > 1:
        parts.pop()
    return parts


def f_escape_char(value: Any, type: str) -> Any:
    """`escapeChar('single'|'double'|'shell')` on text, maps and lists."""
    quotes = {"single": ("'", "\\'"), "double": ('"', '\\"'), "shell": ("'", "'\\''")}
    key = str(type).lower()
    if key not in quotes:
        raise ValueError("the 'escapeChar' filter expects 'single', 'double', or 'shell'")
    old, new = quotes[key]
    return None if value is None else _map_strings(value, lambda s: s.replace(old, new))


_BIG_DECIMAL = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")


def f_string(value: Any) -> str | None:
    """Kestra's `string`: a number, or numeric text, as Java prints it (`'1e3'` is `1E+3`, like `BigDecimal`)."""
    if value is None:
        return None
    if isinstance(value, str) and _BIG_DECIMAL.fullmatch(value):
        return str(Decimal(value))
    if isinstance(value, str):
        raise ValueError(f"'string' filter expects a valid number. Received an invalid numeric string: {value}")
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        raise ValueError(f"'string' filter expects a Number or numeric String. Received: {f_class_name(value)}")
    return to_text(value)


_JAVA_REPLACEMENT = re.compile(r"\\(.)|\$\{(\w+)\}|\$(\d+)|([^\\$]+|\$)", re.S)


def _java_expand(match: re.Match[str], replacement: str) -> str:
    """Java's `Matcher.replaceAll` replacement: `$1` and `${name}` are groups, `\\$` a dollar."""
    out = []
    for token in _JAVA_REPLACEMENT.finditer(replacement):
        escaped, name, number, text = token.groups()
        if name or number:
            out.append(match.group(name or int(number)) or "")
        else:
            out.append(text if text is not None else escaped)
    return "".join(out)


def regex_replaced_size(value: Any, regex: Any = None, replacement: Any = None, *_: Any, **__: Any) -> int:
    """The exact length `regexReplace` would produce, counted match by match before any text is joined."""
    if value is None or regex is None or replacement is None:
        return 0
    text, template = to_text(value), to_text(replacement)
    matches = re.finditer(to_text(regex), text)
    return len(text) + sum(len(_java_expand(m, template)) - len(m.group(0)) for m in matches)


def f_regex_match(value: Any, regex: Any = None) -> bool:
    """`regexMatch(regex)`: the pattern is found somewhere in the text."""
    if value is None:
        return False
    return re.search(_required_regex(regex), to_text(value)) is not None


def f_regex_replace(value: Any, regex: Any = None, replacement: Any = None) -> str | None:
    """`regexReplace(regex, replacement)`: every match replaced; `$1` names a group, as in Java."""
    if value is None:
        return None
    if replacement is None:
        raise ValueError("The argument 'replacement' is required.")
    template = to_text(replacement)
    return re.sub(_required_regex(regex), lambda match: _java_expand(match, template), to_text(value))


def f_regex_extract(value: Any, regex: Any = None, group: Any = 0) -> str | None:
    """`regexExtract(regex, group=0)`: the first match (or one of its groups), null when none."""
    if value is None:
        return None
    found = re.search(_required_regex(regex), to_text(value))
    return None if found is None else found.group(int(group or 0))


def _required_regex(regex: Any) -> str:
    if regex is None:
        raise ValueError("The argument 'regex' is required.")
    return to_text(regex)


def f_slugify(value: Any) -> str:
    """Kestra's `Slugify.of`: ASCII word characters and single dashes, lower case."""
    text = re.sub(r"\s", "-", to_text(value), flags=re.ASCII)
    text = re.sub(r"[^\w-]", "", unicodedata.normalize("NFD", text), flags=re.ASCII).replace("_", "-")
    return re.sub(r"-{2,}", "-", text).strip("-").lower()


def f_abbreviate(value: Any, length: int) -> str:
    text = to_text(value)
    if len(text) <= length:
        return text
    return text[:length] if length <= 3 else text[: length - 3] + "..."


def f_indent(value: Any, amount: int, prefix: str = " ", first: bool = False) -> str | None:
    """`indent(n)`: indent every line but the first; `nindent` adds a leading newline first."""
    if value is None:
        return None
    text = to_text(value)
    if not text:
        return text
    newline = next((sep for sep in ("\r\n", "\n\r", "\n", "\r") if sep in text), "\n")
    text = newline + text if first else text
    return text.replace(newline, newline + prefix * int(amount))


def f_title(value: Any) -> str:
    """Pebble `title`: upper-case the first letter of every word, leave the rest alone."""
    return re.sub(r"(^|\s)(\S)", lambda m: m.group(1) + m.group(2).upper(), to_text(value))


def f_number(value: Any, type: str | None = None) -> Any:
    """`number(type)`: parse text into an INT/LONG/FLOAT/DOUBLE/BIGDECIMAL (guessed without type)."""
    if value is None:
        return None
    text = to_text(value).strip()
    kind = (type or "").upper()
    try:
        if kind in ("INT", "LONG", "BIGINTEGER"):
            return int(text.rstrip("lL"))
        if kind in ("FLOAT", "DOUBLE"):
            return float(text.rstrip("fFdD"))
        if kind == "BIGDECIMAL":
            return Decimal(text)
        if re.fullmatch(r"[+-]?0[xX][0-9a-fA-F]+", text):
            return int(text, 16)
        if re.fullmatch(r"[+-]?\d+[lL]?", text):
            return int(text.rstrip("lL"))
        if re.fullmatch(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?[fFdD]?", text):
            return float(text.rstrip("fFdD"))
    except ValueError:
        pass
    raise ValueError(f"unable to parse '{text}' as a number" + (f" of type {kind}" if kind else ""))


def f_numberformat(value: Any, format: str = "#,##0.###") -> str:
    """Pebble `numberformat` for the common `DecimalFormat` patterns (`#,##0.00`, `0.#`, `0%`)."""
    parts = re.fullmatch(r"([^#0,.]*)([#0,.]+)(.*)", format)
    if parts is None:
        raise ValueError(f"unsupported number format '{format}'")
    prefix, body, suffix = parts.groups()
    number = Decimal(to_text(value)) * (100 if "%" in suffix else 1)
    whole, _, frac = body.partition(".")
    min_frac, max_frac = frac.count("0"), frac.count("0") + frac.count("#")
    rounded = number.quantize(Decimal(1).scaleb(-max_frac), rounding=ROUND_HALF_EVEN)
    text = f"{rounded:{',' if ',' in whole else ''}.{max_frac}f}"
    if max_frac > min_frac and "." in text:
        head, _, tail = text.partition(".")
        tail = tail[:min_frac] + tail[min_frac:].rstrip("0")
        text = head + ("." + tail if tail else "")
    return prefix + text + suffix


def f_hash(algorithm: str) -> Callable[[Any], str]:
    def digest(value: Any) -> str:
        """Hex digest of the UTF-8 text."""
        return hashlib.new(algorithm, to_text(value).encode("utf-8")).hexdigest()

    return digest


def f_yaml(value: Any) -> str:
    """YAML text like Kestra's `yaml` filter (no document marker, indented lists)."""
    if value is None:
        return "null"
    import yaml  # here: rendering a template that does not use the filter needs no PyYAML

    class _Dumper(yaml.SafeDumper):
        def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
            super().increase_indent(flow, False)

    text = yaml.dump(
        plain(value),
        Dumper=_Dumper,
        default_flow_style=False,
        sort_keys=False,
        allow_unicode=True,
        width=2**31 - 1,
    )
    return text[: -len("...\n")] if text.endswith("\n...\n") else text


def f_class_name(value: Any) -> str | None:
    """The Java class Kestra would report for the value."""
    if value is None:
        return None
    names = {
        bool: "java.lang.Boolean",
        str: "java.lang.String",
        float: "java.lang.Double",
        dict: "java.util.LinkedHashMap",
        list: "java.util.ArrayList",
        datetime: "java.time.Instant",
        date: "java.time.LocalDate",
        Decimal: "java.math.BigDecimal",
    }
    if isinstance(value, int) and not isinstance(value, bool):
        return "java.lang.Integer" if -(2**31) <= value < 2**31 else "java.lang.Long"
    return names.get(type(value), type(value).__name__)


# ---------------------------------------------------------------- collection filters


def f_keys(value: Any) -> list[Any] | None:
    value = _maybe_json(value)
    if value is None:
        return None
    if isinstance(value, Mapping):
        return list(value.keys())
    if isinstance(value, list | tuple):
        return list(range(len(value)))
    raise TypeError("'keys' filter can only be applied to a map or a list")


def f_values(value: Any) -> list[Any] | None:
    value = _maybe_json(value)
    if value is None:
        return None
    if isinstance(value, Mapping):
        return list(value.values())
    raise TypeError("'values' filter can only be applied to a map")


def _ends(value: Any, last: bool) -> Any:
    """Pebble `first`/`last`: a character of text, an element of a list."""
    if value is None:
        return None
    items = list(value.values()) if isinstance(value, Mapping) else value
    if isinstance(items, str | list | tuple):
        return (items[-1] if last else items[0]) if items else None
    items = list(items)
    return (items[-1] if last else items[0]) if items else None


def f_length(value: Any) -> int:
    if value is None:
        return 0
    try:
        return len(value)
    except TypeError:
        return len(to_text(value))


def f_slice(value: Any, fromIndex: int = 0, toIndex: int | None = None) -> Any:
    """Pebble `slice(from, to)` on text or a list (Jinja's `slice` means something else)."""
    items = value if isinstance(value, str | list | tuple) else list(value)
    return items[fromIndex:toIndex]


def f_merge(value: Any, other: Any) -> Any:
    """Pebble `merge`: concatenate lists, or overlay maps."""
    if isinstance(value, Mapping) and isinstance(other, Mapping):
        return {**value, **other}
    if isinstance(value, list | tuple):
        return [*value, *(other if isinstance(other, list | tuple) else [other])]
    raise TypeError("'merge' filter can only merge two maps or two lists")


def f_flatten(value: Any) -> list[Any] | None:
    if value is None:
        return None
    if not isinstance(value, list | tuple):
        raise TypeError("the 'flatten' filter can only be applied to lists")
    return [item for v in value for item in (v if isinstance(v, list | tuple) else [v])]


def f_chunk(value: Any, size: int) -> list[list[Any]] | None:
    if value is None:
        return None
    if not isinstance(value, list | tuple):
        raise TypeError("'chunk' filter can only be applied to a list")
    return [list(value[i : i + int(size)]) for i in range(0, len(value), int(size))]


def f_default(value: Any, default_value: Any = "", boolean: bool = False) -> Any:
    """Pebble `default`: replaces undefined, null, blank text and empty collections."""
    if isinstance(value, Undefined) or _is_empty(value) or (boolean and not value):
        return default_value
    return value


def f_join(value: Any, separator: str = "") -> str:
    return to_text(separator).join(to_text(v) for v in value)


def f_reverse(value: Any) -> Any:
    return value[::-1] if isinstance(value, str | list | tuple) else list(reversed(list(value)))


def _strict(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Make a filter fail on an undefined input or argument (Pebble strictVariables)."""

    def wrapper(value: Any, *args: Any, **kwargs: Any) -> Any:
        for item in (value, *args, *kwargs.values()):
            require(item)
        return fn(value, *args, **kwargs)

    wrapper.__name__ = wrapper.__qualname__ = getattr(fn, "__name__", "filter")
    wrapper.__doc__ = fn.__doc__
    return wrapper


def _at_render_time(fn: Callable[..., Any]) -> Callable[..., Any]:
    """A filter Jinja must not fold on constants while compiling: a jq program may take seconds, and a fold
    that fails is only retried at render time, running it again."""

    @pass_context
    def filter_(context: Context, value: Any, *args: Any, **kwargs: Any) -> Any:
        return fn(value, *args, **kwargs)

    return filter_


def _text(fn: Callable[[str], Any]) -> Callable[[Any], Any]:
    return lambda value, *args: None if value is None else fn(to_text(value), *args)


FILTERS: dict[str, Callable[..., Any]] = {
    "date": f_date,
    "dateAdd": f_date_add,
    "timestamp": timestamp_filter(1),
    "timestampMilli": timestamp_filter(1000),
    "timestampMicro": timestamp_filter(1_000_000),
    "timestampNano": timestamp_filter(1_000_000_000),
    "toJson": lambda v: "null" if v is None else to_json(v),
    "toIon": ion.dumps,
    "yaml": f_yaml,
    "jq": f_jq,
    "keys": f_keys,
    "values": f_values,
    "first": lambda v: _ends(v, False),
    "last": lambda v: _ends(v, True),
    "length": f_length,
    "upper": _text(str.upper),
    "lower": _text(str.lower),
    "title": f_title,
    "trim": _text(str.strip),
    "capitalize": _text(lambda s: s[:1].upper() + s[1:]),
    "replace": f_replace,
    "split": f_split,
    "join": f_join,
    "slice": f_slice,
    "sort": lambda v: sorted(v),
    "rsort": lambda v: sorted(v, reverse=True),
    "reverse": f_reverse,
    "merge": f_merge,
    "distinct": lambda v: list(dict.fromkeys(v)),
    "urlencode": _text(lambda s: urllib.parse.quote_plus(s, safe="*").replace("~", "%7E")),
    "urldecode": _text(urllib.parse.unquote_plus),
    "base64encode": _text(lambda s: base64.b64encode(s.encode("utf-8")).decode("ascii")),
    "base64decode": _text(lambda s: base64.b64decode(s).decode("utf-8")),
    "abbreviate": f_abbreviate,
    "slugify": f_slugify,
    "number": f_number,
    "numberformat": f_numberformat,
    "substringBefore": lambda v, s: _substring(v, s, False, False),
    "substringBeforeLast": lambda v, s: _substring(v, s, True, False),
    "substringAfter": lambda v, s: _substring(v, s, False, True),
    "substringAfterLast": lambda v, s: _substring(v, s, True, True),
    "startsWith": lambda v, s: to_text(v).startswith(to_text(s)),
    "endsWith": lambda v, s: to_text(v).endswith(to_text(s)),
    "flatten": f_flatten,
    "indent": f_indent,
    "nindent": lambda v, amount, prefix=" ": f_indent(v, amount, prefix, first=True),
    "chunk": f_chunk,
    "escapeChar": f_escape_char,
    "nl2br": _text(lambda s: re.sub(r"\r\n|\n", "<br />", s)),
    "string": f_string,
    "regexMatch": f_regex_match,
    "regexReplace": f_regex_replace,
    "regexExtract": f_regex_extract,
    "md5": f_hash("md5"),
    "sha1": f_hash("sha1"),
    "sha256": f_hash("sha256"),
    "sha512": f_hash("sha512"),
    "className": f_class_name,
    "raw": lambda v: v,
}
FILTERS = {name: _strict(fn) for name, fn in FILTERS.items()}
FILTERS.update(
    {
        "default": f_default,
        "d": f_default,
        "json": FILTERS["toJson"],
        "jsonEncode": FILTERS["toJson"],
        "tojson": FILTERS["toJson"],
        "jq": _at_render_time(FILTERS["jq"]),
    }
)


def _strict_test(fn: Callable[[Any], bool]) -> Callable[..., bool]:
    def test(value: Any, *args: Any) -> bool:
        require(value)
        return fn(value, *args)

    return test


def _is_json(value: Any) -> bool:
    """Kestra's `is json`: a map, a list, or text that parses as JSON."""
    if isinstance(value, Mapping | list):
        return True
    if not isinstance(value, str):
        return False
    try:
        json.loads(value)
    except ValueError:
        return False
    return True


TESTS: dict[str, Callable[..., bool]] = {
    "empty": _strict_test(_is_empty),
    "null": _strict_test(lambda v: v is None),
    "none": _strict_test(lambda v: v is None),
    "map": _strict_test(lambda v: isinstance(v, Mapping)),
    "iterable": _strict_test(lambda v: not isinstance(v, str | bytes | Mapping) and hasattr(v, "__iter__")),
    "json": _strict_test(_is_json),
}
