"""`kestractl kv …`: set, get, list and delete a namespace's KV pairs (Kestra's `namespace kv` commands)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from kestractl.cli.output import echo, print_json, table
from kestractl.cli.state import handles_errors, state

app = typer.Typer(help="Read and write the KV store.  Example: kestractl kv set dev my_key 42", no_args_is_help=True)

Namespace = Annotated[str, typer.Argument(help="The namespace, e.g. dev.")]
Key = Annotated[str, typer.Argument(help="The key, e.g. my_key.")]
TYPES = "STRING, NUMBER, BOOLEAN, DATETIME, DATE, DURATION or JSON"


def parse_value(text: str, kv_type: str | None) -> Any:
    """As Kestra's CLI: a JSON/ION literal keeps its type, other text is a string, `--type STRING` forces one;
    another `--type` converts a value whose deduced type differs (`--type DURATION PT1H`)."""
    from kestractl import ion
    from kestractl.kv import KVType, convert

    if kv_type is not None and kv_type.upper() == KVType.STRING.value:
        return text
    try:
        value = ion.loads(text)
    except ValueError:
        value = text
    if kv_type is not None and KVType.of(value).value != kv_type.upper():
        return convert(text, kv_type)
    return value


@app.command("set")
@handles_errors
def set_value(
    namespace: Namespace,
    key: Key,
    value: Annotated[str, typer.Argument(help="The value: a JSON literal keeps its type, other text is a string.")],
    kv_type: Annotated[str | None, typer.Option("--type", "-t", help=f"Store the value as {TYPES}.")] = None,
    ttl: Annotated[str | None, typer.Option("--ttl", "-e", help="Expire after this ISO duration, e.g. PT1H.")] = None,
    file_value: Annotated[Path | None, typer.Option("--file-value", "-f", help="Read the value from a file.")] = None,
) -> None:
    """Set a key.  Example: kestractl kv set dev orders '{"count": 3}' --ttl P1D"""
    from kestractl.durations import parse_duration
    from kestractl.errors import ValidationError

    text = file_value.read_text(encoding="utf-8") if file_value else value
    try:
        expires = parse_duration(ttl) if ttl else None
    except ValueError as error:
        raise ValidationError(f"--ttl: {error}") from None
    state.backend().kv_put(namespace, key, parse_value(text, kv_type), expires)
    echo(f"{namespace} {key}  set")


@app.command("get")
@handles_errors
def get_value(namespace: Namespace, key: Key) -> None:
    """Print a key's value (JSON for maps and lists).  Example: kestractl kv get dev orders"""
    from kestractl.errors import NotFoundError
    from kestractl.expressions_text import to_json, to_text

    found = state.backend().kv_get(namespace, key)
    if found is None:
        raise NotFoundError(f"No value found for key '{key}' in namespace '{namespace}'")
    (value,) = found
    echo(to_json(value) if isinstance(value, dict | list) else to_text(value))


@app.command("list")
@handles_errors
def list_keys(
    namespace: Namespace,
    as_json: Annotated[bool, typer.Option("--json", help="Print Kestra's JSON list of entries.")] = False,
) -> None:
    """List a namespace's keys (expired ones are gone).  Example: kestractl kv list dev"""
    entries = state.backend().kv_list(namespace)
    if as_json:
        print_json(entries)
        return
    columns = ["key", "updateDate", "expirationDate", "description"]
    table(["KEY", "UPDATED", "EXPIRES", "DESCRIPTION"], [[e.get(c, "") for c in columns] for e in entries])


@app.command("delete")
@handles_errors
def delete_key(namespace: Namespace, key: Key) -> None:
    """Delete a key.  Example: kestractl kv delete dev orders"""
    from kestractl.errors import NotFoundError

    if not state.backend().kv_delete(namespace, key):
        raise NotFoundError(f"No value found for key '{key}' in namespace '{namespace}'")
    echo(f"{namespace} {key}  deleted")
