"""Amazon ION text, as Kestra's `FileSerde` writes it into internal storage: one value per line.

Kestra serialises rows with Jackson's ION mapper (`JacksonMapper.ofIon()` + Kestra's `IonModule`, text written
by ion-java). This module writes the same text for the Python values a task produces, and reads it back:

- maps: `{id:1,name:"x"}`: keys are symbols, quoted `'…'` when not an identifier or when a keyword (`'null'`);
  `null` values are **written** (`{a:null}`): the ION mapper uses `Include.ALWAYS`, so a NULL column stays in
  the record (pass `omit_nulls=True` for the JSON mapper's NON_NULL behaviour);
- strings: double-quoted with ion-java's escapes (`\\n`, `\\"`, `\\\\`, `\\0`, `\\x01`, C1 controls); other
  non-ASCII characters are written as UTF-8;
- `float` (Java `double`): ion-java's shortest form with an exponent, `1.5e0`, `100e0`, `1.0e7`, `nan`, `+inf`;
- `Decimal` (Java `BigDecimal`): ION decimals, `12.50`, `5.`, `1d2`;
- `date`: a day-precision timestamp `2024-01-01`; an aware `datetime` is an `Instant`: a UTC timestamp with
  milliseconds, `2024-01-01T10:00:00.000Z` (six digits when there are microseconds);
- Kestra's `IonModule` writes other java.time values as annotated strings, and so do we: a naive `datetime`
  is `LocalDateTime::"2024-01-01T10:00:00"`, one in a named zone (`ZoneInfo`) is
  `ZonedDateTime::"2024-01-01T10:00:00+01:00[Europe/Paris]"`, a `time` is `LocalTime::"10:00:00"` or
  `OffsetTime::"10:00:00+02:00"`; `Annotated(name, value)` writes any other `name::value`;
- `bytes` are blobs `{{QQ==}}`, lists and tuples `[a,b]`, `True`/`False` `true`/`false`.

The reader takes any stream of such values (Kestra's `IonParser` turns the java.time annotations back into
temporal values, so does `loads`); it covers the ION text Kestra and this module write, not S-expressions.
"""

from __future__ import annotations

import base64
import math
import re
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, date, datetime, time, timedelta, timezone, tzinfo
from decimal import Decimal
from functools import lru_cache
from typing import Any, NamedTuple, TextIO

from kestractl.javatext import utf16_text


class Annotated(NamedTuple):
    """An ION value with a type annotation, `name::value` (Kestra marks java.time strings this way)."""

    annotation: str
    value: Any


# ---------------------------------------------------------------------------------------------- writing

_IDENTIFIER = re.compile(r"[A-Za-z_$][A-Za-z0-9_$]*")
_KEYWORD = re.compile(r"null|true|false|nan|\$[0-9]+")
_STRING_ESCAPES = re.compile(r'[\x00-\x1f\x7f-\x9f"\\]')
_SYMBOL_ESCAPES = re.compile(r"[\x00-\x1f\x7f-\x9f'\\]")
_NAMED_ESCAPES = {
    "\x00": "\\0",
    "\x07": "\\a",
    "\x08": "\\b",
    "\t": "\\t",
    "\n": "\\n",
    "\x0b": "\\v",
    "\x0c": "\\f",
    "\r": "\\r",
    "\\": "\\\\",
    '"': '\\"',
    "'": "\\'",
}


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    return _NAMED_ESCAPES.get(char) or f"\\x{ord(char):02x}"


def _string(text: str) -> str:
    if _STRING_ESCAPES.search(text) is None:
        return f'"{text}"'
    return '"' + _STRING_ESCAPES.sub(_escape, text) + '"'


@lru_cache(maxsize=4096)
def symbol(text: str) -> str:
    """A symbol (a map key) as ion-java prints it: bare when an identifier, else single-quoted."""
    if _IDENTIFIER.fullmatch(text) and not _KEYWORD.fullmatch(text):
        return text
    return "'" + _SYMBOL_ESCAPES.sub(_escape, text) + "'"


def _float(value: float) -> str:
    """ion-java's float text: Java's shortest digits, plain in [1e-3, 1e7), always with an exponent."""
    if math.isnan(value):
        return "nan"
    if math.isinf(value):
        return "+inf" if value > 0 else "-inf"
    if value == 0:
        return "-0e0" if math.copysign(1.0, value) < 0 else "0e0"
    if 1e-3 <= abs(value) < 1e7:  # Python's repr is plain here too, with the same shortest digits
        text = repr(value)
        return text[:-2] + "e0" if text.endswith(".0") else text + "e0"
    sign = "-" if value < 0 else ""
    parts = Decimal(repr(abs(value))).normalize().as_tuple()
    digits = "".join(map(str, parts.digits))
    exponent = len(digits) + int(parts.exponent)  # value = 0.<digits> x 10^exponent
    if 0 < exponent <= 7:
        whole, fraction = digits[:exponent].ljust(exponent, "0"), digits[exponent:]
        return f"{sign}{whole}.{fraction}e0" if fraction else f"{sign}{whole}e0"
    if -3 < exponent <= 0:
        return f"{sign}0.{'0' * -exponent}{digits}e0"
    return f"{sign}{digits[0]}.{digits[1:] or '0'}e{exponent - 1}"


def _decimal(value: Decimal) -> str:
    """ion-java's decimal text (`printDecimal`): `12.50`, `5.`, `0.0001`, `1d-9`, `12d3`."""
    if not value.is_finite():
        return _float(float(value))
    sign, digit_tuple, exp = value.as_tuple()
    digits, exponent, prefix = "".join(map(str, digit_tuple)), int(exp), "-" if sign else ""
    if exponent == 0:
        return f"{prefix}{digits}."
    if exponent > 0:
        return f"{prefix}{digits}d{exponent}"
    scale = -exponent
    adjusted = len(digits) - 1 - scale
    if adjusted >= 0:
        point = len(digits) - scale
        return f"{prefix}{digits[:point]}.{digits[point:]}"
    if adjusted >= -6:
        return f"{prefix}0.{'0' * (scale - len(digits))}{digits}"
    return f"{prefix}{digits}d-{scale}"


def _fraction(microsecond: int) -> str:
    """Java's ISO formatters print the fraction of a second with as few digits as needed, or none."""
    return f".{microsecond:06d}".rstrip("0") if microsecond else ""


def java_offset(delta: timedelta | None) -> str:
    """Java's offset id: `Z`, `+02:00`, `-05:30` (seconds only when there are some)."""
    seconds = int(delta.total_seconds()) if delta is not None else 0
    if seconds == 0:
        return "Z"
    sign, seconds = ("-", -seconds) if seconds < 0 else ("+", seconds)
    text = f"{sign}{seconds // 3600:02d}:{seconds % 3600 // 60:02d}"
    return text + (f":{seconds % 60:02d}" if seconds % 60 else "")


def java_local_time(value: time | datetime) -> str:
    """`ISO_LOCAL_TIME`: `10:00:00`, `10:00:00.5`."""
    return f"{value.hour:02d}:{value.minute:02d}:{value.second:02d}{_fraction(value.microsecond)}"


def java_local_datetime(value: datetime) -> str:
    """`ISO_LOCAL_DATE_TIME`: `2024-01-01T10:00:00`."""
    return f"{value.date().isoformat()}T{java_local_time(value)}"


def java_offset_datetime(value: datetime) -> str:
    """`ISO_OFFSET_DATE_TIME` of an aware datetime: `2024-01-01T10:00:00Z`, `…+01:00`."""
    return java_local_datetime(value) + java_offset(value.utcoffset())


def _zone_key(zone: tzinfo | None) -> str | None:
    from zoneinfo import ZoneInfo  # imported where used: a flow without zoned dates never needs it

    return zone.key if isinstance(zone, ZoneInfo) else None


def _datetime(value: datetime) -> str:
    if value.tzinfo is None:
        return f'LocalDateTime::"{java_local_datetime(value)}"'
    key = _zone_key(value.tzinfo)
    if key is not None:
        return f'ZonedDateTime::"{java_offset_datetime(value)}[{key}]"'
    utc = value.astimezone(UTC)
    fraction = f"{utc.microsecond // 1000:03d}" if utc.microsecond % 1000 == 0 else f"{utc.microsecond:06d}"
    return f"{utc.date().isoformat()}T{utc:%H:%M:%S}.{fraction}Z"


def _time(value: time) -> str:
    if value.tzinfo is None:
        return f'LocalTime::"{java_local_time(value)}"'
    return f'OffsetTime::"{java_local_time(value)}{java_offset(value.utcoffset())}"'


def _map(value: dict[Any, Any], omit_nulls: bool) -> str:
    fields = []
    for key, item in value.items():
        if item is None and omit_nulls:
            continue
        scalar = _SCALARS.get(type(item))  # inlined `dumps`: maps are most of what is written
        text = scalar(item) if scalar is not None else _compound(item, omit_nulls)
        fields.append(f"{symbol(key if type(key) is str else str(key))}:{text}")
    return "{" + ",".join(fields) + "}"


def _list(value: list[Any] | tuple[Any, ...], omit_nulls: bool) -> str:
    return "[" + ",".join(dumps(item, omit_nulls) for item in value) + "]"


_SCALARS: dict[type, Callable[[Any], str]] = {
    str: _string,
    bool: lambda v: "true" if v else "false",
    int: str,
    float: _float,
    Decimal: _decimal,
    date: lambda v: v.isoformat(),
    datetime: _datetime,
    time: _time,
    bytes: lambda v: "{{" + base64.b64encode(v).decode("ascii") + "}}",
    type(None): lambda v: "null",
}


def dumps(value: Any, omit_nulls: bool = False) -> str:
    """One value as ION text, without a new line. `omit_nulls` drops `null` entries of maps."""
    scalar = _SCALARS.get(type(value))
    return scalar(value) if scalar is not None else _compound(value, omit_nulls)


def _compound(value: Any, omit_nulls: bool) -> str:
    if isinstance(value, Annotated):
        return f"{symbol(value.annotation)}::{dumps(value.value, omit_nulls)}"
    if isinstance(value, dict):
        return _map(value, omit_nulls)
    if isinstance(value, list | tuple):
        return _list(value, omit_nulls)
    for kind in (bool, int, float, str, Decimal, datetime, date, time, bytes):  # subclasses (IntEnum, …)
        if isinstance(value, kind):
            return _SCALARS[kind](value)
    raise TypeError(f"{type(value).__name__} cannot be written as ION")


def write_lines(rows: Iterable[Any], fh: TextIO, omit_nulls: bool = False) -> int:
    """Write each value on its own line, as `FileSerde.write` does (a `None` row is skipped); returns the count."""
    count = 0
    for row in rows:
        if row is None:
            continue
        fh.write(dumps(row, omit_nulls))
        fh.write("\n")
        count += 1
    return count


# ---------------------------------------------------------------------------------------------- reading

_TIMESTAMP = re.compile(
    r"(\d{4})(?:T|-(\d{2})(?:T|-(\d{2})(?:T(?:(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d+))?)?(Z|[+-]\d{2}:\d{2}))?)?)?)"
)
_NUMBER = re.compile(r"[+-]?(?:0[xX][0-9a-fA-F_]+|0[bB][01_]+|(?:\d[\d_]*)(?:\.[\d_]*)?(?:[eEdD][+-]?\d+)?)")
_BARE = re.compile(r"[A-Za-z_$][A-Za-z0-9_$]*(?:\.[a-z]+)?")
_STOP = re.compile(r"[\s,\]\})]|$|/[/*]")
_DELIMITERS = {"[": "]", "{": "}"}
_READ_ESCAPES = {"0": "\0", "a": "\a", "b": "\b", "t": "\t", "n": "\n", "v": "\v", "f": "\f", "r": "\r"}


def _fromisoformat(text: str) -> datetime:
    """`datetime.fromisoformat` of Java's text: nanoseconds cut to microseconds."""
    return datetime.fromisoformat(re.sub(r"(\.\d{6})\d+", r"\1", text))


def _zoned(text: str) -> datetime:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    match = re.fullmatch(r"(.*?)(?:\[([^\]]+)\])?", text)
    assert match is not None
    value = _fromisoformat(match.group(1))
    try:
        return value.astimezone(ZoneInfo(match.group(2))) if match.group(2) else value
    except (ZoneInfoNotFoundError, ValueError):
        return value


_TEMPORALS: dict[str, Callable[[str], Any]] = {
    "LocalDateTime": _fromisoformat,
    "OffsetDateTime": _fromisoformat,
    "Instant": _fromisoformat,
    "ZonedDateTime": _zoned,
    "LocalDate": date.fromisoformat,
    "LocalTime": lambda t: time.fromisoformat(re.sub(r"(\.\d{6})\d+", r"\1", t)),
    "OffsetTime": lambda t: time.fromisoformat(re.sub(r"(\.\d{6})\d+", r"\1", t)),
}


def _timestamp(match: re.Match[str]) -> date | datetime:
    year, month, day, hour, minute, second, fraction, offset = match.groups()
    if hour is None:
        return date(int(year), int(month or 1), int(day or 1))
    micro = int((fraction or "")[:6].ljust(6, "0"))
    zone = UTC
    if offset not in ("Z", "-00:00"):
        sign = -1 if offset[0] == "-" else 1
        zone = timezone(sign * timedelta(hours=int(offset[1:3]), minutes=int(offset[4:6])))
    return datetime(int(year), int(month), int(day), int(hour), int(minute), int(second or 0), micro, zone)


def _number(text: str) -> int | float | Decimal:
    clean = text.replace("_", "")
    body = clean.lstrip("+-")
    if body[:2].lower() in ("0x", "0b"):
        return int(clean, 0)
    if "e" in body.lower():
        return float(clean)
    if "." in body or "d" in body.lower():
        return Decimal(clean.replace("d", "e").replace("D", "e"))
    return int(clean)


class _Reader:
    """A recursive-descent reader over one ION text."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def error(self, what: str) -> ValueError:
        line = self.text.count("\n", 0, self.pos) + 1
        return ValueError(f"invalid ION at line {line}, offset {self.pos}: {what}")

    def skip(self) -> None:
        """Skip white space and comments."""
        while self.pos < len(self.text):
            if self.text[self.pos].isspace():
                self.pos += 1
            elif self.text.startswith("//", self.pos):
                end = self.text.find("\n", self.pos)
                self.pos = len(self.text) if end < 0 else end
            elif self.text.startswith("/*", self.pos):
                end = self.text.find("*/", self.pos + 2)
                if end < 0:
                    raise self.error("unterminated comment")
                self.pos = end + 2
            else:
                return

    def peek(self) -> str:
        self.skip()
        return self.text[self.pos : self.pos + 1]

    def expect(self, char: str) -> None:
        if self.peek() != char:
            raise self.error(f"expected `{char}`")
        self.pos += 1

    def values(self) -> Iterator[Any]:
        while self.peek():
            yield self.value()

    def value(self) -> Any:
        annotations = self.annotations()
        value = self.plain()
        for name in reversed(annotations):
            value = self.annotate(name, value)
        return value

    def annotations(self) -> list[str]:
        names: list[str] = []
        while True:
            start = self.pos
            name = self.symbol_token()
            if name is not None and self.peek() == ":" and self.text.startswith("::", self.pos):
                self.pos += 2
                names.append(name)
                continue
            self.pos = start
            return names

    def annotate(self, name: str, value: Any) -> Any:
        convert = _TEMPORALS.get(name)
        if convert is not None and isinstance(value, str):
            try:
                return convert(value)
            except ValueError:
                pass
        return Annotated(name, value)

    def symbol_token(self) -> str | None:
        """A bare or quoted symbol at the current position (not `'''`), else None."""
        char = self.peek()
        if char == "'" and not self.text.startswith("'''", self.pos):
            return self.quoted("'")
        match = _IDENTIFIER.match(self.text, self.pos)
        if match is None:
            return None
        self.pos = match.end()
        return match.group()

    def plain(self) -> Any:
        char = self.peek()
        if char == "{":
            return self.blob() if self.text.startswith("{{", self.pos) else self.struct()
        if char == "[":
            return self.sequence()
        if char == '"':
            return self.quoted('"')
        if char == "'":
            return self.long_string() if self.text.startswith("'''", self.pos) else self.quoted("'")
        if not char:
            raise self.error("a value was expected")
        return self.atom()

    def atom(self) -> Any:
        timestamp = _TIMESTAMP.match(self.text, self.pos)
        if timestamp and _STOP.match(self.text, timestamp.end()):
            self.pos = timestamp.end()
            return _timestamp(timestamp)
        for word, value in (("+inf", math.inf), ("-inf", -math.inf)):
            if self.text.startswith(word, self.pos):
                self.pos += len(word)
                return value
        number = _NUMBER.match(self.text, self.pos)
        if number and _STOP.match(self.text, number.end()):
            self.pos = number.end()
            return _number(number.group())
        return self.keyword()

    def keyword(self) -> Any:
        match = _BARE.match(self.text, self.pos)
        if match is None:
            raise self.error(f"unexpected `{self.text[self.pos]}`")
        self.pos = match.end()
        word = match.group()
        if word == "null" or word.startswith("null."):
            return None
        return {"true": True, "false": False, "nan": math.nan}.get(word, word)

    def struct(self) -> dict[str, Any]:
        self.expect("{")
        result: dict[str, Any] = {}
        while self.peek() != "}":
            key = self.quoted('"') if self.peek() == '"' else self.symbol_token()
            if key is None:
                raise self.error("a field name was expected")
            self.expect(":")
            result[key] = self.value()
            if self.peek() != "}":
                self.expect(",")
        self.pos += 1
        return result

    def sequence(self) -> list[Any]:
        self.expect("[")
        result: list[Any] = []
        while self.peek() != "]":
            result.append(self.value())
            if self.peek() != "]":
                self.expect(",")
        self.pos += 1
        return result

    def blob(self) -> bytes:
        end = self.text.find("}}", self.pos)
        if end < 0:
            raise self.error("unterminated blob")
        body, self.pos = self.text[self.pos + 2 : end].strip(), end + 2
        if body.startswith('"'):  # a clob
            return _Reader(body).quoted('"').encode("latin-1")
        return base64.b64decode("".join(body.split()))

    def long_string(self) -> str:
        parts = []
        while self.peek() == "'" and self.text.startswith("'''", self.pos):
            parts.append(self.quoted("'''"))
        return "".join(parts)

    def quoted(self, quote: str) -> str:
        """A string or quoted symbol; the position is at its opening quote."""
        self.pos += len(quote)
        out: list[str] = []
        while not self.text.startswith(quote, self.pos):
            if self.pos >= len(self.text):
                raise self.error("unterminated string")
            char = self.text[self.pos]
            self.pos += 1
            out.append(self.escape() if char == "\\" else char)
        self.pos += len(quote)
        text = "".join(out)
        return utf16_text(text)

    def escape(self) -> str:
        char = self.text[self.pos : self.pos + 1]
        self.pos += 1
        if char in _READ_ESCAPES:
            return _READ_ESCAPES[char]
        width = {"x": 2, "u": 4, "U": 8}.get(char)
        if width is not None:
            digits = self.text[self.pos : self.pos + width]
            self.pos += width
            return chr(int(digits, 16))
        if char in "\r\n":  # a line continuation
            self.pos += 1 if char == "\r" and self.text[self.pos : self.pos + 1] == "\n" else 0
            return ""
        return char  # \" \' \\ \/ \?


def loads(text: str) -> Any:
    """The single value of an ION text."""
    values = loads_lines(text)
    if len(values) != 1:
        raise ValueError(f"expected one ION value, found {len(values)}")
    return values[0]


def loads_lines(text: str) -> list[Any]:
    """Every top-level value of an ION text (Kestra writes one per line); the `$ion_1_0` marker is skipped."""
    return [value for value in _Reader(text).values() if value != "$ion_1_0"]


# The pieces of a flat record as most files hold them: text (escapes left to the full reader's `quoted`), null,
# a boolean or an integer, under a bare or quoted key.
_BARE_KEY = r"[A-Za-z_$][A-Za-z0-9_$]*"
_FLAT_STRING = r'"([^"\\\n]*(?:\\[^\n][^"\\\n]*)*)"'  # unrolled: runs of plain characters match in one step
_FLAT_INTEGER = r"(-?[1-9][0-9]{0,17}|0)"
_FLAT_FIELD = re.compile(
    rf"(?:({_BARE_KEY})|'([^'\\\n]*)'):(?:{_FLAT_STRING}|(null|true|false)|{_FLAT_INTEGER})([,}}])"
)
_FLAT_WORDS: dict[str, Any] = {"null": None, "true": True, "false": False}


def _flat_text(text: str) -> str:
    return text if "\\" not in text else _Reader(f'"{text}"').quoted('"')


def _flat_record(line: str) -> dict[str, Any] | None:
    """A one-line flat record read with one regex match per field, or None when the line holds anything else
    (decimals, timestamps, nesting, annotations): the full reader then reads it. Rows of converted
    files are almost always such records, and this reads them several times faster."""
    record: dict[str, Any] = {}
    pos, end = 1, len(line)
    match_field = _FLAT_FIELD.match
    while True:
        match = match_field(line, pos)
        if match is None:
            return {} if line[1:end].strip() == "}" and not record else None
        key, quoted_key, text, word, number, closing = match.groups()
        record[key if key is not None else quoted_key] = (
            _flat_text(text) if text is not None else _FLAT_WORDS[word] if word is not None else int(number)
        )
        pos = match.end()
        if closing == "}":
            return record if line[pos:end].strip() == "" else None


class _Shape:
    """The keys and kinds of one flat record as one regex for a whole line. Rows of a file share their shape, so
    a row is then read by a single match (in C) instead of one match per field; a row of another shape falls
    back to `_flat_record` and becomes the shape expected next."""

    _KINDS: dict[type, tuple[str, Callable[[str], Any]]] = {
        str: (_FLAT_STRING, _flat_text),
        bool: ("(true|false)", _FLAT_WORDS.__getitem__),
        type(None): ("(null)", _FLAT_WORDS.__getitem__),
        int: (_FLAT_INTEGER, int),
    }

    def __init__(self, record: dict[str, Any]) -> None:
        kinds = [self._KINDS[type(value)] for value in record.values()]
        fields = [f"{_key_pattern(key)}:{kind[0]}" for key, kind in zip(record, kinds, strict=True)]
        self.pattern = re.compile(r"\{" + ",".join(fields) + r"\}\s*")
        self.keys = tuple(record)
        self.readers = tuple(kind[1] for kind in kinds)
        self.texts_only = all(type(value) is str for value in record.values())

    def read(self, line: str) -> dict[str, Any] | None:
        match = self.pattern.fullmatch(line)
        if match is None:
            return None
        if self.texts_only and "\\" not in line:
            return dict(zip(self.keys, match.groups(), strict=True))
        return {key: read(text) for key, read, text in zip(self.keys, self.readers, match.groups(), strict=True)}


def _key_pattern(key: str) -> str:
    """A key as `_FLAT_FIELD` accepts it: always quoted, bare too when it is a bare word."""
    quoted = f"'{re.escape(key)}'"
    return f"(?:{re.escape(key)}|{quoted})" if re.fullmatch(_BARE_KEY, key) else quoted


def iter_lines(fh: Iterable[str]) -> Iterator[Any]:
    """Values of a Kestra ION file read line by line, so a file of millions of rows never sits in memory."""
    shape: _Shape | None = None
    for line in fh:
        if line.startswith("{"):
            record = shape.read(line) if shape is not None else None
            if record is None:
                record = _flat_record(line)
                shape = _Shape(record) if record else shape
            if record is not None:
                yield record
                continue
        if line.strip():
            yield loads(line)
