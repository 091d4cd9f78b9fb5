"""A flow's topology as Kestra builds it (`GraphUtils`): clusters for flowable tasks, nodes for tasks, and the
edges between them with their relation (SEQUENTIAL, PARALLEL, CHOICE, ERROR, DYNAMIC, FINALLY).

One model serves both doors: `/api/v1/flows/{ns}/{id}/graph` serialises it in Kestra's `FlowGraph` shape, and
the UI lays the same tree out as SVG. Branches keep their order and label (then/else, a Switch case, errors),
which the flat FlowGraph loses and a readable drawing needs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from kestractl.model import Flow
from kestractl.tasks.base import Task

HIERARCHIES = "io.kestra.core.models.hierarchies."
SEQUENTIAL, PARALLEL, CHOICE, ERROR, DYNAMIC, FINALLY = (
    "SEQUENTIAL",
    "PARALLEL",
    "CHOICE",
    "ERROR",
    "DYNAMIC",
    "FINALLY",
)
# How a flowable task's own children relate to it (Kestra's `tasksTree` of each task).
CLUSTER_RELATIONS = {
    "Parallel": PARALLEL,
    "If": CHOICE,
    "Switch": CHOICE,
    "ForEach": DYNAMIC,
    "EachSequential": DYNAMIC,
    "EachParallel": DYNAMIC,
}


@dataclass(eq=False)
class GraphNode:
    """A task (`GraphTask`, `SubflowGraphTask`), a trigger (`GraphTrigger`) or a cluster's start or end."""

    uid: str
    kind: str
    task: Task | None = None
    relation_type: str | None = None
    error: bool = False
    trigger: dict[str, Any] | None = None
    # A subflow's target `(namespace, flowId)` when both are written plainly (no expression).
    subflow: tuple[str, str] | None = None


@dataclass(eq=False)
class Branch:
    """One path out of a cluster, drawn as a column: a chain of items, or items side by side (`parallel`)."""

    label: str | None
    items: list[GraphNode | GraphCluster] = field(default_factory=list)
    parallel: bool = False


@dataclass(eq=False)
class Edge:
    source: GraphNode
    target: GraphNode
    relation_type: str | None = None
    value: str | None = None


@dataclass(eq=False)
class GraphCluster:
    """A flowable task (or the flow itself, `root`, or its triggers): start and end nodes around its branches."""

    path: str
    relation_type: str | None = None
    task_node: GraphNode | None = None
    branches: list[Branch] = field(default_factory=list)
    edges: list[Edge] = field(default_factory=list)
    triggers: GraphCluster | None = None
    error: bool = False

    def __post_init__(self) -> None:
        # Task ids start with a letter or digit, so these never collide with a task's uid.
        self.root = GraphNode(f"{self.path}._root", "GraphClusterRoot")
        self.end = GraphNode(f"{self.path}._end", "GraphClusterEnd")

    @property
    def uid(self) -> str:
        return f"cluster_{self.path}"

    def members(self) -> list[GraphNode | GraphCluster]:
        """Kestra's order of a cluster's graph nodes: start, end, its task node, then every child."""
        head: list[GraphNode | GraphCluster] = [self.root, self.end]
        head += [self.triggers] if self.triggers else []
        head += [self.task_node] if self.task_node else []
        return head + [item for branch in self.branches for item in branch.items]

    def link(
        self,
        source: GraphNode | GraphCluster,
        target: GraphNode | GraphCluster,
        relation: str | None = None,
        value: str | None = None,
    ) -> None:
        """An edge leaves a cluster by its end and enters it by its start (Kestra's `toEdgeTarget`)."""
        out = source.end if isinstance(source, GraphCluster) else source
        into = target.root if isinstance(target, GraphCluster) else target
        self.edges.append(Edge(out, into, relation, value))


def flow_graph(flow: Flow) -> GraphCluster:
    """The flow's tree: triggers above, then its tasks, errors and finally branches (Kestra's `GraphUtils.of`)."""
    graph = GraphCluster("root")
    if flow.triggers:
        graph.triggers = _triggers(flow.triggers)
        graph.link(graph.triggers, graph.root)
    _fill(graph, flow.tasks, SEQUENTIAL, None)
    _fill(graph, flow.errors, ERROR, None)
    _fill(graph, flow.finally_, FINALLY, None)
    return graph


def _triggers(triggers: list[dict[str, Any]]) -> GraphCluster:
    cluster = GraphCluster("root.Triggers")
    branch = Branch(None, parallel=True)
    cluster.branches.append(branch)
    for trigger in triggers:
        node = GraphNode(f"{cluster.path}.{trigger.get('id')}", "GraphTrigger", trigger=trigger)
        branch.items.append(node)
        cluster.link(cluster.root, node)
        cluster.link(node, cluster.end)
    return cluster


def _fill(graph: GraphCluster, tasks: list[Task], relation_type: str, value: str | None) -> None:
    """Kestra's `fillGraph`: chain the tasks (or fan them out) between the cluster's start and end."""
    if not tasks:
        return
    parallel = relation_type == PARALLEL
    branch = Branch(_label(relation_type, value), parallel=parallel)
    graph.branches.append(branch)
    previous: GraphNode | GraphCluster = graph.task_node or graph.root
    if relation_type in (ERROR, FINALLY):
        previous = graph.root
    for index, task in enumerate(tasks):
        item = _item(task, f"{graph.path}.{task.id}", relation_type)
        if relation_type == ERROR:
            _mark_error(item)
        branch.items.append(item)
        graph.link(previous, item, _relation(graph, relation_type, index == 0), value)
        if not parallel:
            previous = item
        if parallel or index == len(tasks) - 1:
            graph.link(item, graph.end)


def _relation(graph: GraphCluster, relation_type: str, first: bool) -> str | None:
    """The relation written on an edge: the cluster's own for its first child, the list's for the others."""
    if relation_type in (ERROR, FINALLY):
        return relation_type
    if not first and relation_type != PARALLEL and graph.relation_type != DYNAMIC:
        return relation_type
    return graph.relation_type


def _label(relation_type: str, value: str | None) -> str | None:
    return value or {ERROR: "errors", FINALLY: "finally"}.get(relation_type)


def _item(task: Task, path: str, relation_type: str) -> GraphNode | GraphCluster:
    if task.is_flowable:
        return _cluster(task, path, relation_type)
    if task.is_executable:
        return GraphNode(path, "SubflowGraphTask", task, relation_type, subflow=_target(task))
    return GraphNode(path, "GraphTask", task, relation_type)


def _target(task: Task) -> tuple[str, str] | None:
    spec = task.spec if "flowId" in task.spec else getattr(getattr(task, "parent", None), "spec", {})
    namespace, flow_id = spec.get("namespace"), spec.get("flowId")
    if isinstance(namespace, str) and isinstance(flow_id, str) and "{{" not in namespace + flow_id:
        return namespace, flow_id
    return None


def _cluster(task: Task, path: str, relation_type: str) -> GraphCluster:
    """A flowable task's cluster: its node first, then its children by kind (Kestra's `tasksTree`)."""
    short = short_type(task.type)
    cluster = GraphCluster(path, CLUSTER_RELATIONS.get(short, SEQUENTIAL))
    cluster.task_node = GraphNode(path, "GraphTask", task, relation_type)
    cluster.link(cluster.root, cluster.task_node)
    children = task.children
    if short == "If":
        _fill(cluster, children.get("then", []), SEQUENTIAL, "then")
        _fill(cluster, children.get("else", []), SEQUENTIAL, "else")
    elif short == "Switch":
        for key, tasks in children.items():
            if key == "defaults" or key.startswith("cases."):
                _fill(cluster, tasks, SEQUENTIAL, key.removeprefix("cases."))
    else:
        _fill(cluster, children.get("tasks", []), PARALLEL if _fans_out(task, short) else SEQUENTIAL, None)
    _fill(cluster, children.get("errors", []), ERROR, None)
    _fill(cluster, children.get("finally", []), FINALLY, None)
    return cluster


def _fans_out(task: Task, short: str) -> bool:
    """Children that run side by side: Parallel, EachParallel, and ForEach with a concurrency other than 1."""
    return short in ("Parallel", "EachParallel") or (short == "ForEach" and task.spec.get("concurrencyLimit", 1) != 1)


def _mark_error(item: GraphNode | GraphCluster) -> None:
    item.error = True
    if isinstance(item, GraphCluster):
        for node in (item.root, item.end, item.task_node):
            if node is not None:
                node.error = True


def short_type(type_name: str) -> str:
    """`io.kestra.plugin.core.flow.Parallel` → `Parallel`; `…ForEachItem$ForEachItemSplit` → `ForEachItemSplit`."""
    return type_name.rsplit(".", 1)[-1].rsplit("$", 1)[-1]


def walk(cluster: GraphCluster) -> list[GraphNode]:
    """Every node of the tree (clusters' starts, ends and task nodes included), in Kestra's order."""
    found: list[GraphNode] = []
    for member in cluster.members():
        found += walk(member) if isinstance(member, GraphCluster) else [member]
    return found


def clusters(cluster: GraphCluster, parents: list[str] | None = None) -> list[tuple[GraphCluster, list[str]]]:
    """Every cluster below `cluster` with the uids of the clusters around it, outermost first."""
    found: list[tuple[GraphCluster, list[str]]] = []
    for member in cluster.members():
        if isinstance(member, GraphCluster):
            found.append((member, parents or []))
            found += clusters(member, [*(parents or []), member.uid])
    return found


def edges(cluster: GraphCluster) -> list[Edge]:
    """A cluster's own edges, then those inside its child clusters (Kestra's `rawEdges`)."""
    found = list(cluster.edges)
    for member in cluster.members():
        if isinstance(member, GraphCluster):
            found += edges(member)
    return found


def to_api(graph: GraphCluster, task_runs: dict[str, Any] | None = None) -> dict[str, Any]:
    """Kestra's `FlowGraph`: every node flat, every edge with its relation, every cluster with its members;
    `task_runs` (task id → a task run's JSON) fills the nodes' `taskRun` for an execution's graph."""
    return {
        "nodes": [_node_api(n, task_runs or {}) for n in walk(graph)],
        "edges": [
            {
                "source": e.source.uid,
                "target": e.target.uid,
                "relation": {"relationType": e.relation_type, "value": e.value},
            }
            for e in edges(graph)
        ],
        "clusters": [
            {
                "cluster": _cluster_api(c),
                "nodes": [m.uid for m in c.members()],
                "parents": parents,
                "start": c.root.uid,
                "end": c.end.uid,
            }
            for c, parents in clusters(graph)
        ],
        "flowables": [c.task_node.uid for c, _ in clusters(graph) if c.task_node is not None],
    }


def _node_api(node: GraphNode, task_runs: dict[str, Any]) -> dict[str, Any]:
    data: dict[str, Any] = {"uid": node.uid, "type": HIERARCHIES + node.kind, "error": node.error}
    if node.task is not None:
        run = task_runs.get(node.task.id)
        data.update(task=node.task.spec, relationType=node.relation_type, values=None, taskRun=run)
    if node.trigger is not None:
        data.update(triggerDeclaration=node.trigger, trigger=None)
    return data


def _cluster_api(cluster: GraphCluster) -> dict[str, Any]:
    task_node = _node_api(cluster.task_node, {}) if cluster.task_node else None
    return {
        "uid": cluster.uid,
        "type": HIERARCHIES + "GraphCluster",
        "error": cluster.error,
        "relationType": cluster.relation_type,
        "taskNode": task_node,
    }
