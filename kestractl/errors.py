"""The exceptions kestractl raises for a user's mistake.

Each class carries the CLI exit code and the HTTP status it maps to, so the CLI and the
HTTP server turn any of them into the right answer without a lookup table of their own.
"""

from __future__ import annotations

import re
from typing import Any


class KestraError(Exception):
    """Root of every error meant for the user: one clear line, never a traceback."""

    exit_code = 1
    http_status = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ValidationError(KestraError):
    """A flow, an input or a request that does not follow the rules; lists every problem."""

    exit_code = 2
    http_status = 422

    def __init__(self, message: str, problems: list[str] | None = None) -> None:
        super().__init__(message)
        self.problems = problems or [message]


class InputError(ValidationError):
    """An execution refused because an input value is missing or wrong."""


class NotFoundError(KestraError):
    exit_code = 3
    http_status = 404


class ConflictError(KestraError):
    """The request is valid but the object is not in a state that allows it."""

    exit_code = 4
    http_status = 409


class ExpressionError(KestraError):
    """A `{{ expression }}` that cannot be rendered: names the expression and the reason."""

    exit_code = 1
    http_status = 422


class TaskError(KestraError):
    """A task failed at run time; the message goes to the task's ERROR log."""


class StoreError(KestraError):
    """The database file cannot be opened or written: names the file and what to do."""

    exit_code = 1
    http_status = 503


class StorageError(KestraError):
    """An internal-storage URI that is malformed, missing, or escapes its root."""

    exit_code = 1
    http_status = 422


class PluginError(KestraError):
    """A plugin that cannot be loaded, or two plugins that claim one type name."""


def unrecognized(key: str, owner: str) -> str:
    """Kestra's (Jackson's) refusal of a property its class does not have."""
    return f'Unrecognized field "{key}" ({owner}), not marked as ignorable'


def unknown_type(kind: str, type_name: Any) -> str:
    """One line for a type kestractl does not have: which plugin it belongs to, when it is not Kestra's core."""
    name = str(type_name)
    match = re.match(r"io\.kestra\.plugin\.(\w+)\.", name)
    if match and match.group(1) != "core":
        return f"unknown {kind} type `{name}`: it belongs to Kestra's plugin-{match.group(1)}, which is not installed"
    return f"unknown {kind} type `{name}`: no installed plugin provides it"
