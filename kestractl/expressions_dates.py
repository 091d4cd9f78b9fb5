"""Dates as Kestra's Pebble handles them (`AbstractDate.java`): Java `DateTimeFormatter` patterns, Kestra's named
formats (`iso`, `sql` …), time zones, epoch timestamps and calendar arithmetic, for the `date`, `dateAdd` and
`timestamp*` filters and the date functions.
"""

from __future__ import annotations

import calendar
import math
import re
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta, timezone, tzinfo
from typing import Any

from kestractl.expressions_text import require

_MONTHS = list(calendar.month_name)[1:]
_DAYS = list(calendar.day_name)
_NAMED_PATTERNS = {
    "iso": "yyyy-MM-dd'T'HH:mm:ss.SSSSSSXXX",
    "iso_sec": "yyyy-MM-dd'T'HH:mm:ssXXX",
    "sql": "yyyy-MM-dd HH:mm:ss.SSSSSS",
    "sql_seq": "yyyy-MM-dd HH:mm:ss",
    "iso_local_date": "yyyy-MM-dd",
    "iso_ordinal_date": "yyyy-DDD",
    "short": "M/d/yy, h:mm a",
    "medium": "MMM d, y, h:mm:ss a",
    "long": "MMMM d, y 'at' h:mm:ss a z",
    "full": "EEEE, MMMM d, y 'at' h:mm:ss a zzzz",
}
_CHRONO_SECONDS = {
    "NANOS": 1e-9,
    "MICROS": 1e-6,
    "MILLIS": 1e-3,
    "SECONDS": 1,
    "MINUTES": 60,
    "HOURS": 3600,
    "HALF_DAYS": 43200,
}
_CHRONO_DAYS = {"DAYS": 1, "WEEKS": 7}
_CHRONO_MONTHS = {"MONTHS": 1, "YEARS": 12, "DECADES": 120, "CENTURIES": 1200, "MILLENNIA": 12000}
_JAVA_TOKEN = re.compile(r"'(?:[^']|'')*'|([A-Za-z])\1*|.", re.S)


def zone(name: Any = None) -> tzinfo:
    """Java's `ZoneId.of`: region ids, `UTC`/`Z`, fixed offsets; UTC when none is given."""
    require(name)
    text = "UTC" if name is None else str(name).strip()
    offset = re.fullmatch(r"(?:UTC|GMT)?([+-])(\d{1,2})(?::?(\d{2}))?", text)
    if offset:
        delta = timedelta(hours=int(offset.group(2)), minutes=int(offset.group(3) or 0))
        return timezone(-delta if offset.group(1) == "-" else delta)
    text = "UTC" if text in ("Z", "GMT", "UT", "Etc/UTC") else text
    try:
        from zoneinfo import ZoneInfo

        return ZoneInfo(text)
    except Exception:  # unknown id, or no tz database
        if text == "UTC":
            return UTC
        raise ValueError(f"unknown time zone '{text}'") from None


def to_datetime(value: Any, tz: tzinfo, existing_format: str | None = None) -> datetime:
    """`AbstractDate.convert`: instants, local dates (at noon), epoch seconds, ISO or patterned text."""
    require(value)
    if isinstance(value, datetime):
        return value.astimezone(tz) if value.tzinfo else value.replace(tzinfo=tz)
    if isinstance(value, date):
        return datetime.combine(value, time(12), tz)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return datetime.fromtimestamp(value, tz)
    text = str(value).strip()
    try:
        parsed = _parse_date_text(text, existing_format)
    except ValueError:
        raise ValueError(f"unable to parse date '{text}'") from None
    return parsed.astimezone(tz) if parsed.tzinfo else parsed.replace(tzinfo=tz)


def _parse_date_text(text: str, existing_format: str | None) -> datetime:
    if existing_format and existing_format not in _ISO_NAMES:
        pattern = _NAMED_PATTERNS.get(existing_format, existing_format)
        return datetime.strptime(text, java_strptime_format(pattern))
    region = re.search(r"\[([^\]]+)\]$", text)
    core = text[: region.start()] if region else text
    core = re.sub(r"(\.\d{6})\d+", r"\1", core.replace("z", "Z"))
    parsed = datetime.fromisoformat(core)
    if region and parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=zone(region.group(1)))
    return parsed


def java_strptime_format(pattern: str) -> str:
    """A Java pattern as a `strptime` format (for `existingFormat`)."""
    table = {
        "yyyy": "%Y",
        "uuuu": "%Y",
        "yy": "%y",
        "y": "%Y",
        "MMMM": "%B",
        "MMM": "%b",
        "MM": "%m",
        "M": "%m",
        "dd": "%d",
        "d": "%d",
        "HH": "%H",
        "H": "%H",
        "hh": "%I",
        "h": "%I",
        "mm": "%M",
        "m": "%M",
        "ss": "%S",
        "s": "%S",
        "a": "%p",
        "EEEE": "%A",
        "EEE": "%a",
        "DDD": "%j",
        "z": "%Z",
    }
    out = []
    for match in _JAVA_TOKEN.finditer(pattern):
        token = match.group(0)
        if token.startswith("'"):
            out.append((token[1:-1].replace("''", "'") or "'").replace("%", "%%"))
        elif token[0] == "S":
            out.append("%f")
        elif token[0] in "XxZ":
            out.append("%z")
        elif token[0].isalpha():
            if token not in table:
                raise ValueError(f"unsupported pattern '{token}' in existingFormat")
            out.append(table[token])
        else:
            out.append(token.replace("%", "%%"))
    return "".join(out)


def _offset(dt: datetime, zulu: bool, colon: bool, minutes_always: bool = True) -> str:
    """A UTC offset the way Java prints it: `Z`, `+01`, `+0100`, `+01:00`."""
    total = int((dt.utcoffset() or timedelta()).total_seconds())
    if total == 0 and zulu:
        return "Z"
    hours, minutes = divmod(abs(total) // 60, 60)
    text = f"{'-' if total < 0 else '+'}{hours:02d}"
    return text + (f"{':' if colon else ''}{minutes:02d}" if minutes_always or minutes else "")


def _offset_field(dt: datetime, letter: str, n: int) -> str:
    """X/x (X prints `Z` for UTC), Z (`+0100`, ZZZZ `GMT+01:00`, ZZZZZ `+01:00`), O (`GMT+1`)."""
    if letter in "Xx":
        return _offset(dt, letter == "X", colon=n in (3, 5), minutes_always=n != 1)
    if letter == "Z" and n != 4:
        return _offset(dt, n == 5, colon=n == 5)
    gmt = "GMT" + ("" if not dt.utcoffset() else _offset(dt, False, True, n == 4))
    return gmt if n == 4 else gmt.replace("+0", "+").replace("-0", "-")


def _zone_id(dt: datetime) -> str:
    key = getattr(dt.tzinfo, "key", None)
    return key or _offset(dt, True, True)


def _text_field(dt: datetime, letter: str, n: int) -> str:
    if letter in "ML" and n >= 3:
        name = _MONTHS[dt.month - 1]
        return name[:3] if n == 3 else name[0] if n == 5 else name
    if letter in "E" or (letter in "ec" and n >= 3):
        name = _DAYS[dt.weekday()]
        return name[:3] if n <= 3 else name[0] if n == 5 else name
    if letter == "a":
        return "AM" if dt.hour < 12 else "PM"
    if letter == "G":
        return "Anno Domini" if n == 4 else "AD"
    if letter == "z":
        name = dt.tzname() or _zone_id(dt)
        return "Coordinated Universal Time" if n == 4 and name == "UTC" else name
    if letter == "V":
        return _zone_id(dt)
    if letter in "XxZO":
        return _offset_field(dt, letter, n)
    raise ValueError(f"unknown pattern letter '{letter}'")


def _number_field(dt: datetime, letter: str, n: int) -> str | None:
    if letter in "yu":
        return f"{dt.year % 100:02d}" if n == 2 else f"{dt.year:0{n}d}"
    if letter == "S":
        return (f"{dt.microsecond:06d}" + "000")[:n]
    values = {
        "M": dt.month,
        "L": dt.month,
        "d": dt.day,
        "D": dt.timetuple().tm_yday,
        "H": dt.hour,
        "h": dt.hour % 12 or 12,
        "k": dt.hour or 24,
        "K": dt.hour % 12,
        "m": dt.minute,
        "s": dt.second,
        "n": dt.microsecond * 1000,
        "w": dt.isocalendar()[1],
        "W": (dt.day + date(dt.year, dt.month, 1).weekday()) // 7 + 1,
        "e": dt.isoweekday(),
        "c": dt.isoweekday(),
        "Q": (dt.month - 1) // 3 + 1,
        "q": (dt.month - 1) // 3 + 1,
        "A": (dt.hour * 3600 + dt.minute * 60 + dt.second) * 1000 + dt.microsecond // 1000,
    }
    if letter not in values or (letter in "ML" and n >= 3) or (letter in "ec" and n >= 3):
        return None
    return f"{values[letter]:0{n}d}"


def format_java(dt: datetime, pattern: str) -> str:
    """Format like `DateTimeFormatter.ofPattern(pattern)` in an English locale."""
    out = []
    for match in _JAVA_TOKEN.finditer(pattern):
        token = match.group(0)
        if token.startswith("'"):
            out.append(token[1:-1].replace("''", "'") or "'")
        elif token in ("[", "]"):
            continue
        elif match.group(1):
            number = _number_field(dt, token[0], len(token))
            out.append(number if number is not None else _text_field(dt, token[0], len(token)))
        else:
            out.append(token)
    return "".join(out)


def _fraction(dt: datetime, groups_of_three: bool = False) -> str:
    """Java's ISO fraction: as few digits as needed (`.12`), or in groups of three for instants."""
    if not dt.microsecond:
        return ""
    digits = f"{dt.microsecond:06d}"
    if groups_of_three:
        return "." + (digits[:3] if digits.endswith("000") else digits)
    return "." + digits.rstrip("0")


def _iso_forms(dt: datetime) -> dict[str, str]:
    """Java's predefined ISO formatters (`ISO_DATE_TIME`, `ISO_INSTANT`...) applied to `dt`."""
    local_time = dt.strftime("%H:%M:%S") + _fraction(dt)
    local = dt.strftime("%Y-%m-%d") + "T" + local_time
    offset = _offset(dt, True, True)
    region = f"[{dt.tzinfo.key}]" if getattr(dt.tzinfo, "key", None) else ""  # type: ignore[union-attr]
    utc = dt.astimezone(UTC)
    year, week, weekday = dt.isocalendar()
    return {
        "iso_date_time": local + offset + region,
        "iso_zoned_date_time": local + offset + region,
        "iso_offset_date_time": local + offset,
        "iso_local_date_time": local,
        "iso_date": dt.strftime("%Y-%m-%d") + offset,
        "iso_time": local_time + offset,
        "iso_local_time": local_time,
        "iso_offset_time": local_time + offset,
        "iso_instant": utc.strftime("%Y-%m-%dT%H:%M:%S") + _fraction(utc, True) + "Z",
        "iso_ordinal_date": dt.strftime("%Y-%j") + offset,
        "iso_week_date": f"{year:04d}-W{week:02d}-{weekday}{offset}",
        "rfc_1123_date_time": format_java(dt, "EEE, d MMM yyyy HH:mm:ss ")
        + ("GMT" if not dt.utcoffset() else _offset(dt, False, False)),
    }


_ISO_NAMES = frozenset(_iso_forms(datetime(2000, 1, 1, tzinfo=UTC)))


def format_date(dt: datetime, fmt: str | None) -> str:
    """Kestra's named format (`iso`, `sql`, `iso_date_time`...) or a Java pattern."""
    name = fmt or "iso"
    if name in _ISO_NAMES:
        return _iso_forms(dt)[name]
    return format_java(dt, _NAMED_PATTERNS.get(name, name))


def _add_months(dt: datetime, months: int) -> datetime:
    """Java's `plusMonths`: the day is clamped to the end of the target month."""
    index = dt.year * 12 + dt.month - 1 + months
    year, month = divmod(index, 12)
    day = min(dt.day, calendar.monthrange(year, month + 1)[1])
    return dt.replace(year=year, month=month + 1, day=day)


def add_to_date(dt: datetime, amount: int, unit: str) -> datetime:
    """`ZonedDateTime.plus(amount, ChronoUnit)`: calendar units keep the local time."""
    name = str(unit).upper()
    if name in _CHRONO_MONTHS:
        return _add_months(dt, int(amount) * _CHRONO_MONTHS[name])
    if name in _CHRONO_DAYS:
        return dt + timedelta(days=amount * _CHRONO_DAYS[name])
    if name in _CHRONO_SECONDS:
        moved = dt.astimezone(UTC) + timedelta(seconds=amount * _CHRONO_SECONDS[name])
        return moved.astimezone(dt.tzinfo)
    raise ValueError(f"unknown unit '{unit}' (use SECONDS, MINUTES, HOURS, DAYS, WEEKS, MONTHS, YEARS)")


def f_date(
    value: Any,
    format: str | None = "iso",
    timeZone: str | None = None,
    existingFormat: str | None = None,
    locale: str | None = None,
) -> str | None:
    """`date` filter: render an instant, a date, epoch seconds or ISO text with a format."""
    if value is None:
        return None
    return format_date(to_datetime(value, zone(timeZone), existingFormat), format)


def f_date_add(
    value: Any,
    amount: int,
    unit: str,
    format: str | None = "iso",
    timeZone: str | None = None,
    existingFormat: str | None = None,
    locale: str | None = None,
) -> str | None:
    """`dateAdd` filter: move a date by `amount` ChronoUnits and format it (ISO by default)."""
    if value is None:
        return None
    moved = add_to_date(to_datetime(value, zone(timeZone), existingFormat), amount, unit)
    return format_date(moved, format)


def timestamp_filter(scale: int) -> Callable[..., int | None]:
    def f_timestamp(value: Any, timeZone: str | None = None, existingFormat: str | None = None) -> int | None:
        """Epoch seconds (or milli/micro/nano) of a date."""
        if value is None:
            return None
        dt = to_datetime(value, zone(timeZone), existingFormat)
        seconds = math.floor(dt.timestamp())
        return seconds * scale + dt.microsecond * scale // 1_000_000

    return f_timestamp
