"""The plugin API: everything a task plugin needs, from one module that stays stable across releases.

A plugin is a Python package whose module registers task classes with `@register` and is named in the
`kestractl.plugins` entry-point group of its `pyproject.toml`::

    [project.entry-points."kestractl.plugins"]
    hello = "kestractl_hello"

kestractl imports it the first time a flow uses a type it does not have itself. A plugin may also register
polling triggers (`PollingTrigger`: declare properties, implement `poll`); the server runs them every
`interval`. A task declares its
properties once (`Prop`): deploy-time validation, `kestractl plugins doc` and the flow schema come from that
declaration. `run(ctx)` does the work and returns the outputs; `ctx` renders values, logs, reads and writes
internal storage, records metrics, gives a working directory and says when to stop. See docs/plugins.md.
"""

from __future__ import annotations

from kestractl import ion
from kestractl.errors import KestraError, PluginError, TaskError
from kestractl.rows import FETCH_TYPES, fetch_metric, fetch_outputs, jsonable, plain
from kestractl.tasks.base import Killed, RunContext, RunnableTask, Task, dynamic, is_true
from kestractl.tasks.properties import Prop
from kestractl.tasks.registry import register
from kestractl.triggers.polling import PollContext, PollingTrigger

__all__ = [
    "FETCH_TYPES",
    "KestraError",
    "Killed",
    "PluginError",
    "PollContext",
    "PollingTrigger",
    "Prop",
    "RunContext",
    "RunnableTask",
    "Task",
    "TaskError",
    "dynamic",
    "fetch_metric",
    "fetch_outputs",
    "ion",
    "is_true",
    "jsonable",
    "plain",
    "register",
]
