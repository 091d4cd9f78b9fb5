"""The flow graph (`kestractl.graph`) laid out top to bottom for an SVG drawn on the server: no JavaScript
layout library, geometry in SVG attributes (the CSP forbids `style=`), colours by CSS class.

Each cluster is a rounded frame around its task's box and its branches; branches (Parallel children, If/Switch
cases, errors) stand side by side as columns under a label, a chain's tasks one under the other. Edges are the
graph's own, drawn as elbows from the bottom of their source to the top of their target.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from kestractl.graph import ERROR, FINALLY, Branch, GraphCluster, GraphNode, edges, short_type

BOX_W, BOX_H, SUB_H = 190, 44, 60
GAP, PAD, LABEL_H, DOT = 26, 12, 22, 8
MAX_CHARS = 26


@dataclass
class Box:
    """A placed task or trigger box, or a cluster's start/end dot (`dot`)."""

    node: GraphNode
    x: float = 0
    y: float = 0
    w: float = BOX_W
    h: float = BOX_H
    state: str | None = None

    @property
    def dot(self) -> bool:
        return self.node.kind in ("GraphClusterRoot", "GraphClusterEnd")

    @property
    def cx(self) -> float:
        return self.x + self.w / 2

    @property
    def title(self) -> str:
        task, trigger = self.node.task, self.node.trigger or {}
        return task.id if task is not None else str(trigger.get("id", ""))

    @property
    def label(self) -> str:
        return _clip(self.title)

    @property
    def kind(self) -> str:
        task, trigger = self.node.task, self.node.trigger or {}
        return _clip(short_type(task.type if task is not None else str(trigger.get("type", ""))))


@dataclass
class Frame:
    """A cluster's rounded rectangle."""

    x: float
    y: float
    w: float
    h: float
    error: bool


@dataclass
class Text:
    """A branch's label (then, else, a Switch case, errors) above its column."""

    x: float
    y: float
    text: str


@dataclass
class Drawing:
    width: float = 0
    height: float = 0
    boxes: list[Box] = field(default_factory=list)
    frames: list[Frame] = field(default_factory=list)
    texts: list[Text] = field(default_factory=list)
    paths: list[tuple[str, str]] = field(default_factory=list)  # (d, relation class)


class _Part:
    """One piece of the layout: measured first (`w`, `h`), then placed at its top-left corner."""

    w: float = 0
    h: float = 0

    def place(self, x: float, y: float, drawing: Drawing) -> None:
        raise NotImplementedError


class _Leaf(_Part):
    def __init__(self, node: GraphNode) -> None:
        self.box = Box(node)
        if self.box.dot:
            self.box.w = self.box.h = DOT
        elif node.kind == "SubflowGraphTask":
            self.box.h = SUB_H
        self.w, self.h = self.box.w, self.box.h

    def place(self, x: float, y: float, drawing: Drawing) -> None:
        self.box.x, self.box.y = x, y
        drawing.boxes.append(self.box)


class _Stack(_Part):
    """Parts in a column (centred) or a row (top-aligned)."""

    def __init__(self, parts: list[_Part], row: bool, gap: float = GAP) -> None:
        self.parts, self.row, self.gap = parts, row, gap
        sizes = [(p.w, p.h) for p in parts]
        spread = sum(s[0 if row else 1] for s in sizes) + gap * max(len(parts) - 1, 0)
        across = max((s[1 if row else 0] for s in sizes), default=0)
        self.w, self.h = (spread, across) if row else (across, spread)

    def place(self, x: float, y: float, drawing: Drawing) -> None:
        for part in self.parts:
            if self.row:
                part.place(x, y, drawing)
                x += part.w + self.gap
            else:
                part.place(x + (self.w - part.w) / 2, y, drawing)
                y += part.h + self.gap


class _Labelled(_Part):
    def __init__(self, text: str | None, body: _Part) -> None:
        self.text, self.body = text, body
        # The label sits right of the line coming down into the column, under the bar that line hangs from.
        self.w, self.h = max(body.w, 2 * (len(_clip(text or "")) * 6.5 + 8)), body.h + (LABEL_H if text else 0)

    def place(self, x: float, y: float, drawing: Drawing) -> None:
        if self.text:
            drawing.texts.append(Text(x + self.w / 2 + 5, y + LABEL_H - 3, _clip(self.text)))
            y += LABEL_H
        self.body.place(x + (self.w - self.body.w) / 2, y, drawing)


class _Framed(_Part):
    def __init__(self, body: _Part, error: bool) -> None:
        self.body, self.error = body, error
        self.w, self.h = body.w + 2 * PAD, body.h + 2 * PAD

    def place(self, x: float, y: float, drawing: Drawing) -> None:
        drawing.frames.append(Frame(x, y, self.w, self.h, self.error))
        self.body.place(x + PAD, y + PAD, drawing)


def _item(item: GraphNode | GraphCluster) -> _Part:
    return _cluster(item) if isinstance(item, GraphCluster) else _Leaf(item)


def _branch(branch: Branch) -> _Part:
    body = _Stack([_item(i) for i in branch.items], row=branch.parallel)
    return _Labelled(branch.label, body)


def _cluster(cluster: GraphCluster, framed: bool = True) -> _Part:
    parts: list[_Part] = [_cluster(cluster.triggers)] if cluster.triggers else []
    parts.append(_Leaf(cluster.root))
    if cluster.task_node is not None:
        parts.append(_Leaf(cluster.task_node))
    parts.append(_Stack([_branch(b) for b in cluster.branches], row=True))
    parts.append(_Leaf(cluster.end))
    body = _Stack(parts, row=False)
    return _Framed(body, cluster.error) if framed else body


def layout(graph: GraphCluster, states: dict[str, str] | None = None) -> Drawing:
    """Place every node of the flow's graph; `states` (task id → state) colours boxes for an execution."""
    drawing = Drawing()
    root = _cluster(graph, framed=False)
    root.place(PAD, PAD, drawing)
    drawing.width, drawing.height = root.w + 2 * PAD, root.h + 2 * PAD
    at = {box.node.uid: box for box in drawing.boxes}
    for box in drawing.boxes:
        if states and box.node.task is not None:
            box.state = states.get(box.node.task.id)
    for edge in edges(graph):
        source, target = at[edge.source.uid], at[edge.target.uid]
        drawing.paths.append((_elbow(source, target, edge.relation_type), (edge.relation_type or "plain").lower()))
    return drawing


def _elbow(source: Box, target: Box, relation: str | None) -> str:
    """Down from the source, across just above the target, down into it; straight when they line up. From a
    cluster's start to a side branch (errors, finally) across first, so the line passes by the task's box."""
    x1, y1, x2, y2 = source.cx, source.y + source.h, target.cx, target.y
    if abs(x1 - x2) < 0.5:
        return f"M{x1:g} {y1:g}V{y2:g}"
    if source.node.kind == "GraphClusterRoot" and relation in (ERROR, FINALLY):
        return f"M{source.x + source.w:g} {source.y + source.h / 2:g}H{x2:g}V{y2:g}"
    mid = y2 - GAP / 2 if y2 - y1 > GAP else (y1 + y2) / 2
    return f"M{x1:g} {y1:g}V{mid:g}H{x2:g}V{y2:g}"


def _clip(text: str) -> str:
    return text if len(text) <= MAX_CHARS else text[: MAX_CHARS - 1] + "…"
