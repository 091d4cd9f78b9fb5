"""The plugin API: everything a task plugin needs, from one module that stays stable across releases.

A plugin is a Python package whose module registers task classes with `@register` and is named in the
`kestractl.plugins` entry-point group of its `pyproject.toml`::

    [project.entry-points."kestractl.plugins"]
    hello = "kestractl_hello"

kestractl imports it the first time a flow uses a type it does not have itself. A task declares its
properties once (`Prop`): deploy-time validation, `kestractl plugins doc` and the flow schema come from that
declaration. `run(ctx)` does the work and returns the outputs; `ctx` renders values, logs, reads and writes
internal storage, records metrics, gives a working directory and says when to stop. See docs/plugins.md.
"""

from __future__ import annotations

from kestractl.errors import KestraError, PluginError, TaskError
from kestractl.ion import write_lines as write_ion
from kestractl.namespace_files import NamespaceFiles, local_files, path_matcher
from kestractl.tasks.base import FlowSource, Killed, RunContext, RunnableTask, Task, dynamic, is_true
from kestractl.tasks.properties import Prop
from kestractl.tasks.registry import register
from kestractl.tasks.scripts import ExecScript

__all__ = [
    "ExecScript",
    "FlowSource",
    "KestraError",
    "Killed",
    "NamespaceFiles",
    "PluginError",
    "Prop",
    "RunContext",
    "RunnableTask",
    "Task",
    "TaskError",
    "dynamic",
    "is_true",
    "local_files",
    "path_matcher",
    "register",
    "write_ion",
]
