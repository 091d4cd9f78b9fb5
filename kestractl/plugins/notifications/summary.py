"""The summary of an execution that every `*Execution` task sends, built as Kestra's `ExecutionService.executionMap`
builds the variables of its message templates: the execution (in the API's shape), its link in the UI, its human
duration, its start date, the last task run, the failed task (the last run when it FAILED), and the flow's
`customMessage` and `customFields`.

The link needs the address of the UI, which an engine without a configured URL does not know: like Kestra's
`kestra.url`, it comes from the `KESTRA_URL` environment variable; without it there is no link.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from kestractl.plugin import Prop, RunContext

URL_VARIABLE = "KESTRA_URL"
TENANT = "main"  # Kestra 1.x OSS: every execution belongs to the `main` tenant, and its UI links say so

PROPERTIES = {
    "executionId": Prop(
        "The execution to report; use `{{ trigger.executionId }}` under a Flow trigger.",
        type="string",
        default="{{ execution.id }}",
    ),
    "customMessage": Prop("A custom message added to the notification.", type="string"),
    "customFields": Prop("Custom fields (name → value) added to the notification.", type="object"),
}


@dataclass(frozen=True)
class Summary:
    """What Kestra's templates are rendered with."""

    execution: dict[str, Any]
    link: str | None
    duration: str
    last_task: dict[str, Any] | None
    custom_message: str | None = None
    custom_fields: dict[str, Any] = field(default_factory=dict)

    @property
    def namespace(self) -> str:
        return str(self.execution["namespace"])

    @property
    def flow_id(self) -> str:
        return str(self.execution["flowId"])

    @property
    def id(self) -> str:
        return str(self.execution["id"])

    @property
    def state(self) -> str:
        return str(self.execution["state"]["current"])

    @property
    def last_task_id(self) -> str:
        return str(self.last_task["taskId"]) if self.last_task else ""

    @property
    def failed_task_id(self) -> str | None:
        """Kestra's `firstFailed`: the last task run, when it failed."""
        failed = self.last_task and self.last_task["state"]["current"] == "FAILED"
        return self.last_task_id if failed else None

    @property
    def title(self) -> str:
        return f"[{self.namespace}] {self.flow_id} ➛ {self.state}"

    @property
    def outcome(self) -> str:
        """`Succeeded after 0:00:01.250`, or `Failed on task `x` after …`."""
        failed = self.failed_task_id
        return f"{'Succeeded' if failed is None else f'Failed on task `{failed}`'} after {self.duration}"

    @property
    def start_timestamp(self) -> int:
        """The start date in epoch seconds (Pebble's `timestamp` filter)."""
        start = self.execution["state"].get("startDate")
        return int(datetime.fromisoformat(start).timestamp()) if start else 0

    def colour(self, success: str, warning: str, failure: str) -> str:
        """The colour the templates give a state."""
        return {"SUCCESS": success, "WARNING": warning}.get(self.state, failure)


def summarise(ctx: RunContext) -> Summary:
    """The summary of the execution named by `executionId` (the current one by default)."""
    execution_id = ctx.prop("executionId")
    current = execution_id == ctx.execution.id
    execution = (ctx.execution if current else ctx.services.find_execution(execution_id)).to_api()
    return Summary(
        execution=execution,
        link=link(execution),
        duration=human_duration(execution["state"]),
        last_task=_last_task(execution, current),
        custom_message=ctx.prop("customMessage"),
        custom_fields=ctx.prop("customFields") or {},
    )


def link(execution: dict[str, Any]) -> str | None:
    """The execution's page in the UI (Kestra's `UriProvider.executionUrl`), when `KESTRA_URL` is set."""
    base = os.environ.get(URL_VARIABLE, "").rstrip("/")
    path = f"/ui/{TENANT}/executions/{execution['namespace']}/{execution['flowId']}/{execution['id']}"
    return base + path if base else None


def human_duration(state: dict[str, Any]) -> str:
    """Kestra's `State.humanDuration`: `H:mm:ss.SSS` from start to end (to now while running)."""
    if not state.get("startDate"):
        return "0:00:00.000"
    start = datetime.fromisoformat(state["startDate"])
    finish = datetime.fromisoformat(state["endDate"]) if state.get("endDate") else datetime.now(start.tzinfo)
    millis = max(0, int((finish - start).total_seconds() * 1000))
    seconds, ms = divmod(millis, 1000)
    minutes, secs = divmod(seconds, 60)
    hours, mins = divmod(minutes, 60)
    return f"{hours}:{mins:02d}:{secs:02d}.{ms:03d}"


def _last_task(execution: dict[str, Any], current: bool) -> dict[str, Any] | None:
    """The last task run; for another execution, the last of those in its final state (FAILED or SUCCESS)."""
    runs = execution.get("taskRunList") or []
    if not current:
        wanted = "FAILED" if execution["state"]["current"] == "FAILED" else "SUCCESS"
        runs = [run for run in runs if run["state"]["current"] == wanted]
    return runs[-1] if runs else None
