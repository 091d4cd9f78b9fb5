"""Flow triggers as pure decisions: does this ended execution start that flow?"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kestractl.model import Execution, Flow, State
from kestractl.triggers.conditions import ConditionContext, all_met
from kestractl.triggers.validate import FLOW

TERMINATED = [s.value for s in State if s.is_terminated()]


def flow_triggers(flow: Flow) -> list[dict[str, Any]]:
    if flow.disabled:
        return []
    return [t for t in flow.triggers if t.get("type") in FLOW and not t.get("disabled")]


def trigger_variables(upstream: Execution) -> dict[str, Any]:
    """`trigger.*` of an execution started by a Flow trigger."""
    return {
        **upstream.reference(),
        "state": upstream.state.current.value,
        "outputs": upstream.outputs or {},
        "labels": upstream.labels_map(),
    }


def matches(flow: Flow, trigger: Mapping[str, Any], upstream: Execution, variables: dict[str, Any]) -> bool:
    """`variables` are the upstream execution's own (outputs, inputs …) plus `trigger`."""
    if (flow.namespace, flow.id) == (upstream.namespace, upstream.flow_id):
        return False  # Kestra never lets a flow trigger itself
    if upstream.state.current.value not in (trigger.get("states") or TERMINATED):
        return False
    ctx = ConditionContext(variables=variables, execution=upstream)
    return all_met(trigger.get("conditions"), ctx) and _preconditions(trigger.get("preconditions"), upstream)


def _preconditions(spec: Any, upstream: Execution) -> bool:
    """The `preconditions.flows` form for a single upstream execution: any listed flow may match."""
    if not isinstance(spec, Mapping) or not spec.get("flows"):
        return True
    for wanted in spec["flows"]:
        if wanted.get("namespace") and wanted["namespace"] != upstream.namespace:
            continue
        if wanted.get("flowId") and wanted["flowId"] != upstream.flow_id:
            continue
        if wanted.get("states") and upstream.state.current.value not in wanted["states"]:
            continue
        labels = wanted.get("labels") or {}
        if all(upstream.labels_map().get(str(k)) == str(v) for k, v in labels.items()):
            return True
    return False
