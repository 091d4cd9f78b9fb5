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

Files of rows in internal storage are Kestra's ION (one value per line): `read_ion_lines` reads one row at a time
and `write_ion_lines` writes them, with the same reader and writer as the rest of kestractl (the `toIon` filter,
storage tasks, JDBC results), so a plugin's file reads back exactly as a core task's. Values that plugins print
as Kestra's Java code does: `java_double` (`Double.toString`), `format_java_date` (`DateTimeFormatter.ofPattern`),
`java_strptime_format` (such a pattern as a `strptime` format) and `time_zone` (`ZoneId.of`). Query tasks as
Kestra's JDBC tasks are: `FETCH_PROPERTIES` and `FETCH_OUTPUTS` (their declarations), `FETCH_TYPES`,
`fetch_outputs` (rows to `row`/`rows`/`uri`/`size`), `fetch_metric` and `plain` (a driver's value as Kestra types
it).

Tasks that run a command-line tool build on `ExecScript` (Kestra's script tasks: `beforeCommands`, `commands`,
`env`, `inputFiles`, `outputFiles`, `namespaceFiles`, task runners). Tasks about flows ask the engine through
`ctx.services` (`flows`, `deploy_flows`, `delete_flow`, each flow a `FlowSource`); namespace files are
`NamespaceFiles(ctx.storage, namespace)`, selected with Kestra's globs (`path_matcher`); `local_files` lists a
local folder's files as namespace files would be taken from it (`.kestraignore` applied).
"""

from __future__ import annotations

from kestractl.errors import KestraError, PluginError, TaskError
from kestractl.expressions_dates import format_java as format_java_date
from kestractl.expressions_dates import java_strptime_format
from kestractl.expressions_dates import zone as time_zone
from kestractl.ion import Annotated
from kestractl.ion import dumps as ion_dumps
from kestractl.ion import iter_lines as read_ion_lines
from kestractl.ion import write_lines as write_ion_lines
from kestractl.javatext import java_double
from kestractl.namespace_files import NamespaceFiles, local_files, path_matcher
from kestractl.rows import FETCH_OUTPUTS, FETCH_PROPERTIES, FETCH_TYPES, fetch_metric, fetch_outputs, plain
from kestractl.tasks.base import FlowSource, Killed, RunContext, RunnableTask, Task, dynamic, is_true
from kestractl.tasks.properties import Prop
from kestractl.tasks.registry import register
from kestractl.tasks.scripts import ExecScript
from kestractl.triggers.conditions import Condition, ConditionContext
from kestractl.triggers.polling import PollContext, PollingTrigger

__all__ = [
    "Annotated",
    "Condition",
    "ConditionContext",
    "FETCH_OUTPUTS",
    "FETCH_PROPERTIES",
    "FETCH_TYPES",
    "ExecScript",
    "FlowSource",
    "KestraError",
    "Killed",
    "NamespaceFiles",
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
    "format_java_date",
    "ion_dumps",
    "is_true",
    "java_double",
    "java_strptime_format",
    "plain",
    "local_files",
    "path_matcher",
    "read_ion_lines",
    "register",
    "time_zone",
    "write_ion_lines",
]
