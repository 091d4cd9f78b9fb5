"""Kestra's KV store: typed values per namespace, kept in internal storage as Kestra keeps them.

A value lives at `kestra:///<namespace as path>/_kv/<key>.ion`, written with the ION mapper Kestra uses (a
duration is written as its bare ISO text, as Kestra does); its metadata (expiration, description, creation and
update dates) sits beside it in `<key>.ion.metadata`, an ION map, like Kestra's local storage sidecar.
An expired key behaves as Kestra's: reading it deletes it and finds nothing; listing hides it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from enum import Enum
from typing import Any

from kestractl import ion
from kestractl.durations import parse_duration
from kestractl.errors import ConflictError, NotFoundError, ValidationError
from kestractl.model import iso, iso_duration, utcnow
from kestractl.storage import SCHEME, Storage

KEY_RE = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9._-]*")
KEY_ERROR = (
    "Key must start with an alphanumeric character (uppercase or lowercase) and can contain alphanumeric "
    "characters (uppercase or lowercase), dots (.), underscores (_), and hyphens (-) only."
)
# Kestra turns a stored string of this shape back into a Duration when it reads it.
_DURATION_RE = re.compile(r"^P(?=[^T]|T.)(?:\d*D)?(?:T(?=.)(?:\d*H)?(?:\d*M)?(?:\d*S)?)?$")
_SUFFIX, _METADATA = ".ion", ".ion.metadata"


class KVType(str, Enum):
    """The type Kestra reports for a value (`KVType.from`)."""

    STRING = "STRING"
    NUMBER = "NUMBER"
    BOOLEAN = "BOOLEAN"
    DATETIME = "DATETIME"
    DATE = "DATE"
    DURATION = "DURATION"
    JSON = "JSON"

    @classmethod
    def of(cls, value: Any) -> KVType:
        if value is None or isinstance(value, str):
            return cls.STRING
        if isinstance(value, bool):
            return cls.BOOLEAN
        if isinstance(value, int | float | Decimal):
            return cls.NUMBER
        if isinstance(value, datetime):
            return cls.DATETIME
        if isinstance(value, date):
            return cls.DATE
        if isinstance(value, timedelta):
            return cls.DURATION
        return cls.JSON


def convert(value: Any, kv_type: str) -> Any:
    """Kestra's `kvType` conversion of a rendered text value (other values are kept as they are)."""
    try:
        kind = KVType(str(kv_type).upper())
    except ValueError:
        raise ValidationError(f"kvType: must be one of {', '.join(t.value for t in KVType)}, not `{kv_type}`") from None
    if not isinstance(value, str) or kind is KVType.STRING:
        return value
    try:
        return _CONVERTERS[kind](value)
    except ValueError as error:
        raise ValidationError(f"Unable to convert `{value}` to {kind.value}: {error}") from None


def _number(text: str) -> int | float:
    number = json.loads(text)
    if isinstance(number, bool) or not isinstance(number, int | float):
        raise ValueError("not a number")
    return number


def _instant(text: str) -> datetime | date:
    """Kestra parses DATETIME and DATE values as instants; a plain date is kept as a date."""
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text.strip()):
        return date.fromisoformat(text.strip())
    parsed = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        raise ValueError("an instant needs a time zone offset, e.g. 2024-01-01T10:00:00Z")
    return parsed


_CONVERTERS: dict[KVType, Callable[[str], Any]] = {
    KVType.NUMBER: _number,
    KVType.BOOLEAN: lambda text: text.strip().lower() == "true",  # Java's Boolean.parseBoolean
    KVType.DATETIME: _instant,
    KVType.DATE: _instant,
    KVType.DURATION: parse_duration,
    KVType.JSON: json.loads,
}


def check_key(key: str) -> str:
    if not key:
        raise ValidationError("Key cannot be null or empty")
    if not KEY_RE.fullmatch(key):
        raise ValidationError(KEY_ERROR)
    return key


@dataclass(frozen=True)
class KVValue:
    value: Any


@dataclass
class KVEntry:
    """One key as Kestra lists it."""

    key: str
    creation_date: datetime
    update_date: datetime
    expiration_date: datetime | None = None
    description: str | None = None

    def expired(self, now: datetime) -> bool:
        return self.expiration_date is not None and now > self.expiration_date

    def to_api(self) -> dict[str, Any]:
        """Kestra's JSON: nulls left out."""
        shape = {
            "key": self.key,
            "description": self.description,
            "creationDate": iso(self.creation_date),
            "updateDate": iso(self.update_date),
            "expirationDate": iso(self.expiration_date),
        }
        return {k: v for k, v in shape.items() if v is not None}


class KVStore:
    """The KV store of one namespace."""

    def __init__(self, storage: Storage, namespace: str) -> None:
        self.storage = storage
        self.namespace = namespace
        self.prefix = f"/{namespace.replace('.', '/')}/_kv"

    def put(
        self,
        key: str,
        value: Any,
        ttl: timedelta | None = None,
        overwrite: bool = True,
        expiration: datetime | None = None,
        description: str | None = None,
    ) -> None:
        """Store a value; `ttl` sets the expiration from now, else `expiration` (a merge update keeps it)."""
        check_key(key)
        if ttl is not None and ttl < timedelta(0):
            raise ValidationError(f"ttl: must not be negative, got {iso_duration(ttl)}")
        previous = self.entry(key)
        if previous is not None and not overwrite:
            raise ConflictError(
                f"Cannot set value for key '{key}'. Key already exists and `overwrite` is set to `false`."
            )
        now = utcnow()
        metadata = {
            "creationDate": previous.creation_date if previous else now,
            "updateDate": now,
            "expirationDate": now + ttl if ttl is not None else expiration,
            "description": description,
        }
        text = iso_duration(value) if isinstance(value, timedelta) else ion.dumps(value)
        self.storage.put(self._path(key, _METADATA), ion.dumps(metadata, omit_nulls=True).encode())
        self.storage.put(self._path(key, _SUFFIX), text.encode("utf-8"))

    def get(self, key: str) -> KVValue | None:
        """The value, or None when the key is missing or expired (a stored null is `KVValue(None)`)."""
        entry = self.entry(key)
        if entry is None:
            return None
        text = self._read(key, _SUFFIX)
        if text is None:
            return None
        value = ion.loads(text)
        if isinstance(value, str) and _DURATION_RE.match(value):
            value = parse_duration(value)
        return KVValue(value)

    def entry(self, key: str) -> KVEntry | None:
        """The key's entry; an expired one is deleted and not found."""
        text = self._read(check_key(key), _METADATA)
        if text is None:
            return None
        entry = _entry(key, text)
        if entry.expired(utcnow()):
            self.delete(key)
            return None
        return entry

    def delete(self, key: str) -> bool:
        existed = False
        for suffix in (_SUFFIX, _METADATA):
            existed |= self.storage.delete(SCHEME + self._path(check_key(key), suffix))
        return existed

    def list(self, include_expired: bool = False) -> list[KVEntry]:
        """Entries sorted by key; expired ones hidden unless asked for (PurgeKV)."""
        now = utcnow()
        names = [e.name for e in self.storage.entries(self.prefix) if not e.is_dir and e.name.endswith(_METADATA)]
        keys = [name[: -len(_METADATA)] for name in names]
        entries = [_entry(key, text) for key in keys if (text := self._read(key, _METADATA)) is not None]
        return [e for e in entries if include_expired or not e.expired(now)]

    def _path(self, key: str, suffix: str) -> str:
        return f"{self.prefix}/{key}{suffix}"

    def _read(self, key: str, suffix: str) -> str | None:
        """The stored text, None when missing (two readers, one writer: whichever was last wins, as in Kestra)."""
        uri = SCHEME + self._path(key, suffix)
        path = self.storage.local_copy(uri)
        return path.read_text("utf-8") if path.is_file() else None


def _entry(key: str, text: str) -> KVEntry:
    metadata = ion.loads(text) or {}
    return KVEntry(
        key=key,
        creation_date=metadata["creationDate"],
        update_date=metadata["updateDate"],
        expiration_date=metadata.get("expirationDate"),
        description=metadata.get("description"),
    )


def parents(namespace: str) -> list[str]:
    """A namespace then each parent: `a.b.c`, `a.b`, `a` (the order Kestra's `kv()` looks in)."""
    parts = namespace.split(".")
    return [".".join(parts[:size]) for size in range(len(parts), 0, -1)]


def lookup(
    storage: Storage, flow_namespace: str, key: Any = None, namespace: Any = None, error_on_missing: Any = True
) -> Any:
    """Kestra 1.x's `kv()` function: without a `namespace`, the flow's namespace then each parent, first hit wins;
    a missing (or expired) key fails unless `errorOnMissing` is false, then it is null."""
    if key is None:
        raise ValidationError("The 'kv' function expects an argument 'key'.")
    places = parents(flow_namespace) if namespace is None else [str(namespace)]
    for place in places:
        found = KVStore(storage, place).get(str(key))
        if found is not None:
            return found.value
    if error_on_missing is not False and str(error_on_missing).lower() != "false":
        where = flow_namespace if namespace is None else namespace
        raise NotFoundError(f"The key '{key}' does not exist in the namespace '{where}'.")
    return None
