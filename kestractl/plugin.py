"""The plugin API: everything a task plugin needs, from one module that stays stable across releases.

A plugin is a Python package whose module registers task classes with `@register` and is named in the
`kestractl.plugins` entry-point group of its `pyproject.toml`::

    [project.entry-points."kestractl.plugins"]
    hello = "kestractl_hello"

kestractl imports it the first time a flow uses a type it does not have itself. Besides tasks (`RunnableTask`:
implement `run`), a plugin may register polling triggers (`PollingTrigger`: implement `poll`; the server runs it
every `interval`) and conditions (`Condition`: implement `test`; any trigger's `conditions` accept it).

Each type declares its properties once (`Prop`): deploy-time validation, `kestractl plugins doc` and the flow
schema come from that declaration. `run(ctx)` does the work and returns the outputs; `ctx.prop(name)` gives a
property rendered, defaulted and converted; `ctx` also logs, reads and writes internal storage, records metrics,
gives a working directory and says when to stop. See docs/plugins.md.
"""

from __future__ import annotations

from kestractl.errors import KestraError, PluginError, TaskError
from kestractl.tasks.base import Killed, RunContext, RunnableTask, Task, dynamic, is_true
from kestractl.tasks.properties import Prop
from kestractl.tasks.registry import register
from kestractl.triggers.conditions import Condition, ConditionContext
from kestractl.triggers.polling import PollContext, PollingTrigger

__all__ = [
    "Condition",
    "ConditionContext",
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
    "is_true",
    "register",
]
