"""Kestra's Pebble functions beyond the basics, for `kestractl.expressions`: ION, encryption, identifiers,
calendar tests, `env`, `tasksWithState`, `loopOutputs` and `http` (`core/runners/pebble/functions/*.java`).

Each keeps Kestra's argument names (so `nanoId(length=10)` works) and fails with Kestra's kind of message.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
import secrets
import time
import urllib.parse
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime
from typing import Any

from jinja2 import pass_context
from jinja2.runtime import Context

from kestractl.config import ENCRYPTION_KEY_VARIABLES, encryption_secret_key
from kestractl.expressions_dates import to_datetime
from kestractl.expressions_text import require, to_text
from kestractl.ion import loads_lines

# ---------------------------------------------------------------- ION


def from_ion(ion: Any = None, allRows: bool = False) -> Any:
    """`fromIon(text, allRows=false)`: the first value of an ION text, or every value as a list."""
    require(ion)
    if ion is None:
        return None
    if not isinstance(ion, str):
        raise ValueError("The 'fromIon' function expects an argument 'ion' with type string.")
    try:
        values = loads_lines(ion)
    except ValueError as error:
        raise ValueError(f"Invalid ion: {error}") from None
    return values if allRows else next(iter(values), None)


# ---------------------------------------------------------------- encrypt / decrypt

_IV_LENGTH = 12  # Kestra's EncryptionService: AES/GCM/NoPadding, a 12-byte IV before the ciphertext, 128-bit tag


def _aes_key(key: Any) -> bytes:
    """The AES key from its base64 text, as Kestra reads `kestra.encryption.secret-key`."""
    try:
        raw = base64.b64decode(to_text(key).strip(), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("the encryption key must be base64 text (an AES key of 128, 192 or 256 bits)") from None
    if len(raw) not in (16, 24, 32):
        raise ValueError(f"the encryption key is {len(raw) * 8} bits once decoded; AES needs 128, 192 or 256 bits")
    return raw


def encrypt_text(key: Any, plaintext: str) -> str:
    """base64(IV + AES-GCM ciphertext and tag): the text Kestra's `encrypt` produces and `decrypt` reads."""
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    iv = os.urandom(_IV_LENGTH)
    sealed = AESGCM(_aes_key(key)).encrypt(iv, plaintext.encode("utf-8"), None)
    return base64.b64encode(iv + sealed).decode("ascii")


def decrypt_text(key: Any, encrypted: str) -> str:
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    try:
        data = base64.b64decode(encrypted, validate=True)
        plain = AESGCM(_aes_key(key)).decrypt(data[:_IV_LENGTH], data[_IV_LENGTH:], None)
    except (binascii.Error, InvalidTag):
        raise ValueError("unable to decrypt: the value was not encrypted with this key, or is damaged") from None
    return plain.decode("utf-8", "replace")


def _key_and_text(function: str, text_name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, Any]:
    """Kestra's `(key, text)` arguments; with the text alone, the configured key."""
    if len(args) > 2:
        raise ValueError(f"The '{function}' function expects the arguments 'key' and '{text_name}'.")
    names = ("key", text_name) if len(args) == 2 else (text_name,)[: len(args)]
    named = dict(zip(names, args, strict=True)) | kwargs
    if text_name not in named or not set(named) <= {"key", text_name}:
        raise ValueError(f"The '{function}' function expects the arguments 'key' and '{text_name}'.")
    key = named.get("key") if named.get("key") is not None else encryption_secret_key()
    if key is None:
        variable = ENCRYPTION_KEY_VARIABLES[0]
        raise ValueError(f"'{function}' needs a key: pass it as {function}(key, {text_name}) or set {variable}")
    require(key)
    require(named[text_name])
    return key, named[text_name]


def _crypt(function: str, text_name: str, apply: Callable[[Any, str], str]) -> Callable[..., Any]:
    def crypt(*args: Any, **kwargs: Any) -> Any:
        """`encrypt(key, plaintext)` / `decrypt(key, encrypted)`; null and empty text pass through."""
        key, text = _key_and_text(function, text_name, args, kwargs)
        return text if text is None or text == "" else apply(key, to_text(text))

    return crypt


# ---------------------------------------------------------------- identifiers and ports

_NANO_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz-_"
_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_KSUID_EPOCH = 1_400_000_000


def nano_id(length: int = 21, alphabet: str = _NANO_ALPHABET) -> str:
    """`nanoId(length=21, alphabet=...)`: a random id drawn from the alphabet."""
    require(length)
    require(alphabet)
    if int(length) > 1000:
        raise ValueError("The 'nanoId()' function field 'length' must be lower than: 1000")
    if not alphabet:
        raise ValueError("The 'nanoId()' function field 'alphabet' must not be empty")
    return "".join(secrets.choice(str(alphabet)) for _ in range(int(length)))


def ksuid() -> str:
    """`ksuid()`: 4 bytes of seconds since the KSUID epoch and 16 random bytes, as 27 base62 characters."""
    number = int.from_bytes((int(time.time()) - _KSUID_EPOCH).to_bytes(4, "big") + os.urandom(16), "big")
    digits = []
    while number:
        number, rest = divmod(number, 62)
        digits.append(_BASE62[rest])
    return "".join(reversed(digits)).rjust(27, "0")


def uuid7() -> str:
    """`uuid()`: a time-ordered UUID (version 7, RFC 9562), as Kestra 1.x generates them."""
    bits = (time.time_ns() // 1_000_000) << 80 | int.from_bytes(os.urandom(10), "big")
    bits = bits & ~(0xF << 76) | 0x7 << 76  # version 7
    bits = bits & ~(0x3 << 62) | 0x2 << 62  # RFC variant
    text = f"{bits:032x}"
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


def random_port() -> int:
    """`randomPort()`: a TCP port free on this machine right now."""
    import socket  # here: the only function of the expression language that needs a socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


# ---------------------------------------------------------------- calendar

_DAYS = ("MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY", "SATURDAY", "SUNDAY")
_POSITIONS = ("FIRST", "SECOND", "THIRD", "FOURTH")


def _datetime(value: Any, function: str, name: str = "date") -> datetime:
    """A date argument as Kestra's `DateUtils` reads it: a date, a datetime or ISO text, in its own offset."""
    require(value)
    if value is None:
        raise ValueError(f"The '{function}()' function expects a '{name}' argument.")
    if isinstance(value, datetime):
        return value
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day)
    text = re.sub(r"\[[^\]]*\]$", "", to_text(value).strip())
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"The '{function}()' function could not parse '{name}': {to_text(value)}") from None


def _day_name(value: Any, function: str, name: str) -> str:
    day = to_text(value).strip().upper()
    if day not in _DAYS:
        raise ValueError(f"The '{function}()' function received an invalid '{name}' value: '{value}'.")
    return day


def _calendar(function: str, part: Callable[[datetime], Any]) -> Callable[[Any], Any]:
    def extract(date: Any = None) -> Any:
        """`dayOfWeek(date)`, `isWeekend(date)` …: one fact about the day of a date."""
        return part(_datetime(date, function))

    return extract


def is_day_week_in_month(date: Any = None, dayOfWeek: Any = None, position: Any = None) -> bool:
    """`isDayWeekInMonth(date, 'MONDAY', 'FIRST'|'SECOND'|'THIRD'|'FOURTH'|'LAST')`."""
    day = _datetime(date, "isDayWeekInMonth").date()
    wanted = _DAYS.index(_day_name(dayOfWeek, "isDayWeekInMonth", "dayOfWeek"))
    where = to_text(position).strip().upper()
    if where not in (*_POSITIONS, "LAST"):
        raise ValueError(f"The 'isDayWeekInMonth()' function received an invalid 'position' value: '{position}'.")
    if day.weekday() != wanted:
        return False
    occurrence = (day.day - 1) // 7
    return occurrence == _POSITIONS.index(where) if where != "LAST" else (day.day + 7) > _month_length(day)


def _month_length(day: date) -> int:
    import calendar

    return calendar.monthrange(day.year, day.month)[1]


def is_last_working_day(date: Any = None, workingDays: Any = None) -> bool:
    """`isLastWorkingDay(date, workingDays='MONDAY,...')`: the last working day of its month."""
    day = _datetime(date, "isLastWorkingDay").date()
    names = [n for n in re.split(r"[,\s]+", to_text(workingDays)) if n] if workingDays else list(_DAYS[:5])
    working = {_DAYS.index(_day_name(n, "isLastWorkingDay", "workingDays")) for n in names}
    if day.weekday() not in working:
        return False
    later = range(day.day + 1, _month_length(day) + 1)
    return not any(day.replace(day=d).weekday() in working for d in later)


def is_date_between(date: Any = None, after: Any = None, before: Any = None) -> bool:
    """`isDateBetween(date, after, before)`: strictly between the two, compared as instants."""
    values = [_datetime(v, "isDateBetween", n) for v, n in ((date, "date"), (after, "after"), (before, "before"))]
    moment, low, high = (to_datetime(v, UTC) for v in values)
    return low < moment < high


def is_public_holiday(date: Any = None, countryCode: Any = None, subDivision: Any = None) -> bool:
    """`isPublicHoliday(date, 'FR', 'IDF'?)` from the `holidays` package's offline calendars."""
    import holidays

    day = _datetime(date, "isPublicHoliday").date()
    if not countryCode:
        raise ValueError("The 'isPublicHoliday()' function expects a 'countryCode' argument.")
    country = to_text(countryCode).strip().upper()
    region = to_text(subDivision).strip().upper().removeprefix(country + "-") if subDivision else None
    try:
        calendar = holidays.country_holidays(country, subdiv=region or None, years=day.year)
    except NotImplementedError as error:
        raise ValueError(f"The 'isPublicHoliday()' function does not know {error}") from None
    return day in calendar


CALENDAR: dict[str, Callable[..., Any]] = {
    "dayOfWeek": _calendar("dayOfWeek", lambda d: _DAYS[d.weekday()]),
    "dayOfMonth": _calendar("dayOfMonth", lambda d: d.day),
    "monthOfYear": _calendar("monthOfYear", lambda d: d.month),
    "hourOfDay": _calendar("hourOfDay", lambda d: d.hour),
    "isWeekend": _calendar("isWeekend", lambda d: d.weekday() >= 5),
    "isDayWeekInMonth": is_day_week_in_month,
    "isLastWorkingDay": is_last_working_day,
    "isDateBetween": is_date_between,
    "isPublicHoliday": is_public_holiday,
}


# ---------------------------------------------------------------- the execution's variables


@pass_context
def env(context: Context, name: Any = None, default: Any = None) -> Any:
    """`env('name', default)`: `envs.name` (a `KESTRA_NAME` variable), or the default when unset or empty."""
    if name is None:
        raise ValueError("The 'env' function expects an argument 'name'.")
    envs = context.get("envs")
    value = envs.get(to_text(name)) if isinstance(envs, Mapping) else None
    return default if value is None or to_text(value) == "" else value


@pass_context
def tasks_with_state(context: Context, state: Any = None) -> list[dict[str, Any]]:
    """`tasksWithState('FAILED')`: `{taskId, state[, value]}` for each task run in that state (`tasks` variable)."""
    if state is None:
        raise ValueError("The 'tasksWithState' function expects an argument 'state'.")
    wanted = to_text(state).upper()
    found: list[dict[str, Any]] = []
    tasks = context.get("tasks")
    for task_id, entry in (tasks or {}).items() if isinstance(tasks, Mapping) else ():
        for key, detail in entry.items() if isinstance(entry, Mapping) else ():
            current = detail if key == "state" else detail.get("state") if isinstance(detail, Mapping) else None
            if isinstance(current, str) and current.upper() == wanted:
                found.append({"taskId": task_id, "state": wanted} | ({} if key == "state" else {"value": key}))
    return found


def loop_outputs(outputs: Any = None, name: Any = None) -> list[Any]:
    """`loopOutputs(outputs.loop.outputs, 'key')`: one output of every iteration of a LoopUntil-like list."""
    require(outputs)
    if not isinstance(outputs, list | tuple):
        raise ValueError("The 'loopOutputs' function expects 'outputs' to be a list.")
    if not isinstance(name, str):
        raise ValueError("The 'loopOutputs' function expects 'name' to be a string.")
    found = []
    for entry in outputs:
        iteration = entry.get("outputs") if isinstance(entry, Mapping) else None
        found.append(iteration.get(name) if isinstance(iteration, Mapping) else None)
    return found


# ---------------------------------------------------------------- http

HTTP_TIMEOUT_SECONDS = 30
_MAX_BODY_BYTES = 10_000_000


def _request_body(body: Any, content_type: str) -> bytes | None:
    if body is None:
        return None
    if isinstance(body, str | bytes):
        return body.encode("utf-8") if isinstance(body, str) else body
    if "x-www-form-urlencoded" in content_type and isinstance(body, Mapping):
        return urllib.parse.urlencode({k: to_text(v) for k, v in body.items()}).encode("ascii")
    if "yaml" in content_type:
        import yaml  # only for a YAML request body

        return str(yaml.safe_dump(body, sort_keys=False)).encode("utf-8")
    return json.dumps(body, default=to_text).encode("utf-8")


def http(
    uri: Any = None,
    method: str = "GET",
    query: Mapping[str, Any] | None = None,
    body: Any = None,
    contentType: str = "application/json",
    headers: Mapping[str, Any] | None = None,
    options: Any = None,
    accept: str = "application/json",
) -> Any:
    """`http(uri, method, query, body, contentType, headers, accept)`: the response body (JSON parsed)."""
    if uri is None:
        raise ValueError("The 'http' function expects an argument 'uri'.")
    url = to_text(uri)
    if urllib.parse.urlsplit(url).scheme.lower() not in ("http", "https"):
        raise ValueError(f"The 'http' function only fetches http:// and https:// URIs, not '{url}'")
    if query:
        url += ("&" if "?" in url else "?") + urllib.parse.urlencode({k: to_text(v) for k, v in query.items()})
    fields = {str(k): _header(v) for k, v in (headers or {}).items()}
    fields |= {"Accept": to_text(accept), "Content-Type": to_text(contentType)}
    return _fetch(url, _request_body(body, to_text(contentType)), fields, str(method).upper())


def _header(value: Any) -> str:
    return ", ".join(map(to_text, value)) if isinstance(value, list) else to_text(value)


def _fetch(url: str, data: bytes | None, headers: dict[str, str], method: str) -> Any:
    """One request; only flows that call `http()` pay for importing the HTTP client."""
    import urllib.error
    import urllib.request

    request = urllib.request.Request(url, data, headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=HTTP_TIMEOUT_SECONDS) as response:  # noqa: S310 - scheme checked
            payload = response.read(_MAX_BODY_BYTES + 1)
            kind = response.headers.get_content_type()
    except urllib.error.HTTPError as error:
        message = f"server respond with status {error.code} : {error.reason}"
        raise ValueError(f"Failed to execute HTTP Request, {message}") from None
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        raise ValueError(f"Failed to execute HTTP request to {request.full_url}: {reason}") from None
    if len(payload) > _MAX_BODY_BYTES:
        raise ValueError(f"The 'http' function's response is over {_MAX_BODY_BYTES:,} bytes")
    text = payload.decode("utf-8", "replace")
    return json.loads(text) if kind.endswith("json") and text.strip() else text


FUNCTIONS: dict[str, Callable[..., Any]] = {
    "fromIon": from_ion,
    "encrypt": _crypt("encrypt", "plaintext", encrypt_text),
    "decrypt": _crypt("decrypt", "encrypted", decrypt_text),
    "nanoId": nano_id,
    "ksuid": ksuid,
    "uuid": uuid7,
    "randomPort": random_port,
    "env": env,
    "tasksWithState": tasks_with_state,
    "loopOutputs": loop_outputs,
    "http": http,
    **CALENDAR,
}
