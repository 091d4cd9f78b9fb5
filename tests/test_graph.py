"""The flow graph as Kestra's `GraphUtils` builds it: uids, relations and clusters of each flowable task."""

from __future__ import annotations

from typing import Any

from kestractl.graph import flow_graph, to_api
from kestractl.parser import parse_flow
from kestractl.ui.topology import layout

FLOW = """
id: big
namespace: dev.graph
triggers:
  - id: daily
    type: io.kestra.plugin.core.trigger.Schedule
    cron: "0 9 * * *"
tasks:
  - id: start
    type: io.kestra.plugin.core.log.Log
    message: hi
  - id: par
    type: io.kestra.plugin.core.flow.Parallel
    tasks:
      - {id: p1, type: io.kestra.plugin.core.log.Log, message: a}
      - {id: p2, type: io.kestra.plugin.core.log.Log, message: b}
  - id: check
    type: io.kestra.plugin.core.flow.If
    condition: "{{ true }}"
    then:
      - {id: then1, type: io.kestra.plugin.core.log.Log, message: y}
      - {id: then2, type: io.kestra.plugin.core.log.Log, message: y}
    else:
      - {id: else1, type: io.kestra.plugin.core.log.Log, message: n}
  - id: pick
    type: io.kestra.plugin.core.flow.Switch
    value: A
    cases:
      A:
        - {id: case_a, type: io.kestra.plugin.core.log.Log, message: A}
    defaults:
      - {id: other, type: io.kestra.plugin.core.log.Log, message: other}
  - id: loop
    type: io.kestra.plugin.core.flow.ForEach
    values: [1, 2]
    tasks:
      - {id: inner, type: io.kestra.plugin.core.log.Log, message: "{{ taskrun.value }}"}
  - id: child
    type: io.kestra.plugin.core.flow.Subflow
    namespace: dev.graph
    flowId: small
errors:
  - {id: alert, type: io.kestra.plugin.core.log.Log, message: failed}
"""
TYPES = "io.kestra.core.models.hierarchies."


def _graph() -> dict[str, Any]:
    return to_api(flow_graph(parse_flow(FLOW, "flow")))


def _edge(graph: dict[str, Any], source: str, target: str) -> dict[str, Any]:
    found = [e for e in graph["edges"] if e["source"] == source and e["target"] == target]
    assert len(found) == 1, (source, target)
    return found[0]["relation"]


def test_nodes_are_kestras_with_uids_by_their_cluster_path() -> None:
    graph = _graph()
    kinds = {n["uid"]: n["type"].removeprefix(TYPES) for n in graph["nodes"]}
    assert kinds["root.start"] == "GraphTask" and kinds["root.par.p1"] == "GraphTask"
    assert kinds["root.child"] == "SubflowGraphTask" and kinds["root.Triggers.daily"] == "GraphTrigger"
    assert kinds["root._root"] == "GraphClusterRoot" and kinds["root._end"] == "GraphClusterEnd"
    assert next(n for n in graph["nodes"] if n["uid"] == "root.start")["task"]["message"] == "hi"
    assert set(graph) == {"nodes", "edges", "clusters", "flowables"}


def test_edges_carry_kestras_relations() -> None:
    graph = _graph()
    assert _edge(graph, "root._root", "root.start") == {"relationType": None, "value": None}
    assert _edge(graph, "root.start", "root.par._root")["relationType"] == "SEQUENTIAL"
    assert _edge(graph, "root.par", "root.par.p2")["relationType"] == "PARALLEL"
    assert _edge(graph, "root.par.p2", "root.par._end")["relationType"] is None
    assert _edge(graph, "root.check", "root.check.then1") == {"relationType": "CHOICE", "value": "then"}
    assert _edge(graph, "root.check.then1", "root.check.then2")["relationType"] == "SEQUENTIAL"
    assert _edge(graph, "root.check", "root.check.else1") == {"relationType": "CHOICE", "value": "else"}
    assert _edge(graph, "root.pick", "root.pick.case_a") == {"relationType": "CHOICE", "value": "A"}
    assert _edge(graph, "root.pick", "root.pick.other") == {"relationType": "CHOICE", "value": "defaults"}
    assert _edge(graph, "root.loop", "root.loop.inner")["relationType"] == "DYNAMIC"
    assert _edge(graph, "root._root", "root.alert")["relationType"] == "ERROR"
    assert _edge(graph, "root.Triggers._end", "root._root")["relationType"] is None


def test_clusters_list_their_members_and_parents() -> None:
    clusters = {c["cluster"]["uid"]: c for c in _graph()["clusters"]}
    assert set(clusters) == {"cluster_root.Triggers", *(f"cluster_root.{t}" for t in ("par", "check", "pick", "loop"))}
    par = clusters["cluster_root.par"]
    assert par["cluster"]["relationType"] == "PARALLEL" and par["cluster"]["taskNode"]["uid"] == "root.par"
    assert par["nodes"] == ["root.par._root", "root.par._end", "root.par", "root.par.p1", "root.par.p2"]
    assert (par["start"], par["end"], par["parents"]) == ("root.par._root", "root.par._end", [])
    assert clusters["cluster_root.check"]["cluster"]["relationType"] == "CHOICE"


def test_nested_clusters_and_error_branches() -> None:
    nested = """
id: nested
namespace: dev.graph
tasks:
  - id: outer
    type: io.kestra.plugin.core.flow.Sequential
    tasks:
      - id: each
        type: io.kestra.plugin.core.flow.EachParallel
        value: [1, 2]
        tasks:
          - {id: deep, type: io.kestra.plugin.core.log.Log, message: x}
    errors:
      - {id: oops, type: io.kestra.plugin.core.log.Log, message: x}
"""
    graph = to_api(flow_graph(parse_flow(nested, "flow")))
    clusters = {c["cluster"]["uid"]: c for c in graph["clusters"]}
    assert clusters["cluster_root.outer.each"]["parents"] == ["cluster_root.outer"]
    assert "cluster_root.outer.each" in clusters["cluster_root.outer"]["nodes"]
    assert _edge(graph, "root.outer._root", "root.outer.oops")["relationType"] == "ERROR"
    assert next(n for n in graph["nodes"] if n["uid"] == "root.outer.oops")["error"] is True


def test_the_layout_places_every_task_inside_the_drawing() -> None:
    drawing = layout(flow_graph(parse_flow(FLOW, "flow")), {"p1": "FAILED"})
    boxes = {b.title: b for b in drawing.boxes if not b.dot}
    assert set(boxes) >= {"start", "par", "p1", "p2", "then1", "else1", "case_a", "other", "inner", "child", "alert"}
    assert boxes["p1"].state == "FAILED" and boxes["p2"].state is None
    assert all(0 <= b.x and b.x + b.w <= drawing.width and b.y + b.h <= drawing.height for b in drawing.boxes)
    assert boxes["p1"].y == boxes["p2"].y and boxes["p1"].x != boxes["p2"].x  # side by side
    assert boxes["then1"].y < boxes["then2"].y  # a chain, one under the other
    assert len(drawing.frames) == 5 and {t.text for t in drawing.texts} >= {"then", "else", "A", "defaults", "errors"}


def test_a_for_each_item_links_its_subflow_from_its_executable_part_only() -> None:
    source = """
id: items
namespace: dev.graph
tasks:
  - id: each
    type: io.kestra.plugin.core.flow.ForEachItem
    items: "{{ inputs.file }}"
    namespace: dev.graph
    flowId: child
finally:
  - {id: cleanup, type: io.kestra.plugin.core.log.Log, message: bye}
"""
    graph = to_api(flow_graph(parse_flow(source, "flow")))
    kinds = {n["uid"]: n["type"].removeprefix(TYPES) for n in graph["nodes"]}
    assert kinds["root.each.each_items"] == "SubflowGraphTask" and kinds["root.each.each_split"] == "GraphTask"
    assert _edge(graph, "root._root", "root.cleanup")["relationType"] == "FINALLY"
    boxes = {b.title: b for b in layout(flow_graph(parse_flow(source, "flow"))).boxes if not b.dot}
    assert boxes["each_items"].node.subflow == ("dev.graph", "child") and boxes["each_split"].node.subflow is None
