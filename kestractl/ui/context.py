"""What every page handler is given: the engine's runner (store, storage, flows) and the server's knowledge
of where a watched flow came from."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from kestractl.server.executions import Executions

FlowFile = Callable[[str, str], Path | None]


@dataclass(frozen=True)
class UiContext:
    runner: Executions
    # The file a flow was loaded from by `-f DIR` (its source of truth: the UI shows it read-only), else None.
    flow_file: FlowFile = lambda namespace, flow_id: None
