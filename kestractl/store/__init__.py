"""The only package that speaks SQL. `Store` is the repository the engine, server and CLI use; today it is
one SQLite file (WAL) holding flows, executions, task runs, logs, timers and trigger state."""

from kestractl.store.records import Delay, FlowRow, MultipleConditionWindow, TriggerState
from kestractl.store.schema import MIGRATIONS, connect, migrate
from kestractl.store.sqlite import Store

__all__ = ["MIGRATIONS", "Delay", "FlowRow", "MultipleConditionWindow", "Store", "TriggerState", "connect", "migrate"]
