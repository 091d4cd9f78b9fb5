"""TemplatedTask: render a task's YAML (`spec`), then run that task in its place, with its outputs.

Turning YAML into a task is the parser's job, a layer above the tasks; the parser hands its
`parse_task` to this module when it is imported (`use_parser`), so the inner task gets every check
a task in a flow gets (required properties, unknown properties, its type's own validation).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

from kestractl.errors import TaskError
from kestractl.tasks.base import RunContext, RunnableTask, Task
from kestractl.tasks.properties import Prop
from kestractl.tasks.registry import register

TYPE = "io.kestra.plugin.core.templating.TemplatedTask"
# (spec text, id for a spec without one) -> the task, or KestraError with the problems.
TaskParser = Callable[[str, str], Task]
_parse_task: TaskParser | None = None


def use_parser(parse: TaskParser) -> None:
    """Called by the parser at import: how a rendered spec becomes a task."""
    global _parse_task
    _parse_task = parse


@register
class TemplatedTask(RunnableTask):
    """Render `spec` (YAML of a runnable task), then run it; its outputs are this task's outputs."""

    type_name = TYPE
    aliases = ("io.kestra.core.tasks.templating.TemplatedTask",)
    properties: ClassVar[dict[str, Prop]] = {
        "spec": Prop("The templated task specification: YAML of a runnable task.", type="string", required=True)
    }

    def run(self, ctx: RunContext) -> dict[str, Any] | None:
        assert _parse_task is not None, "kestractl.parser was not imported"
        task = _parse_task(str(ctx.render(self.spec["spec"])), self.id)
        if isinstance(task, TemplatedTask):
            raise TaskError(f"The templated task cannot be of type '{TYPE}'")
        if not isinstance(task, RunnableTask):
            raise TaskError("The templated task must be a runnable task")
        outer, ctx.task = ctx.task, task  # `ctx.prop` reads the inner task's properties
        try:
            return task.run(ctx)
        finally:
            ctx.task = outer
