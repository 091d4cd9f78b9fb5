"""The PostgreSQL polling `Trigger` (Kestra's `AbstractJdbcTrigger`): every `interval` it runs `sql` as the Query
task would and starts an execution when rows come back; `trigger.row`, `trigger.rows` or `trigger.uri` and
`trigger.size` are the query's outputs. `fetchType` defaults to FETCH; NONE is refused (it could never fire).
"""

from __future__ import annotations

import tempfile
import threading
from pathlib import Path
from typing import Any, ClassVar
from uuid import uuid4

from kestractl.plugin import PollContext, PollingTrigger, Prop, register
from kestractl.plugins.jdbc.base import JdbcQuery
from kestractl.plugins.jdbc.postgresql import PostgresConnection, Query

TRIGGER_FETCH_TYPES = ("FETCH", "FETCH_ONE", "STORE")


class PollQuery:
    """A `QueryContext` for one poll: the trigger's properties, a STORE file under the trigger's storage folder,
    a scratch folder (for SSL certificates) removed after the poll."""

    def __init__(self, trigger: Trigger, ctx: PollContext, scratch: Path) -> None:
        self.trigger = trigger
        self.ctx = ctx
        self.stop: threading.Event = ctx.stop
        self.scratch = scratch

    def prop(self, name: str) -> Any:
        return self.trigger.prop(self.ctx, name)

    def working_directory(self) -> Path:
        return self.scratch

    def output_file(self, name: str) -> tuple[Path, str]:
        flow = self.ctx.variables["flow"]
        uri = f"kestra:///{flow['namespace'].replace('.', '/')}/{flow['id']}/triggers/{self.trigger.spec['id']}"
        uri += f"/{uuid4().hex}-{name}"
        path = self.ctx.storage.local_copy(uri)
        path.parent.mkdir(parents=True, exist_ok=True)
        return path, uri


@register
class Trigger(PostgresConnection, PollingTrigger):
    """Poll PostgreSQL with a query; start an execution when it returns rows."""

    type_name = "io.kestra.plugin.jdbc.postgresql.Trigger"
    properties: ClassVar[dict[str, Prop | str]] = {
        **JdbcQuery.properties,
        "url": Prop("`jdbc:postgresql://host:port/database` (or `postgresql://…`).", type="string", required=True),
        "fetchType": Prop(
            "FETCH (`trigger.rows`), FETCH_ONE (`trigger.row`) or STORE (`trigger.uri`).",
            type="string",
            default="FETCH",
            values=TRIGGER_FETCH_TYPES,
        ),
    }
    outputs = {**JdbcQuery.outputs}

    def poll(self, ctx: PollContext) -> dict[str, Any] | None:
        """The query's outputs when it returned at least one row, else None."""
        query = Query(self.spec)
        with tempfile.TemporaryDirectory(prefix="kestractl-poll-") as scratch:
            context = PollQuery(self, ctx, Path(scratch))
            outputs, size = query.query(context, query.fetch_type(context))
        return outputs if size else None
