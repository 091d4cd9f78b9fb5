"""The files tab of a namespace: its file tree (folders as `<details>`, open down to the chosen path) and the
chosen file shown as text with line numbers, or offered for download when it is binary or large."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kestractl.errors import NotFoundError
from kestractl.namespace_files import NamespaceFiles, normalize
from kestractl.server.params import param

if TYPE_CHECKING:
    from kestractl.server.http import Request
    from kestractl.ui.context import UiContext

MAX_NODES = 2000  # a tree bigger than this is cut (and says so): the page stays light
MAX_SHOWN_BYTES = 1024 * 1024  # a bigger file is offered for download, not shown
SNIFF_BYTES = 8192


@dataclass
class Node:
    name: str
    path: str
    folder: bool
    open: bool = False
    children: list[Node] = field(default_factory=list)


@dataclass
class Selected:
    """What `?path=` names: a folder, or a file with its text (None when binary or too large to show)."""

    path: str
    folder: bool
    size: int = 0
    text: str | None = None

    @property
    def name(self) -> str:
        return self.path.rsplit("/", 1)[-1]

    @property
    def lines(self) -> list[str]:
        """The text's lines; a final newline ends the last line rather than starting an empty one."""
        text = self.text or ""
        return text.removesuffix("\n").split("\n") if text else []


def files_tab(ui: UiContext, namespace: str, request: Request) -> dict[str, Any]:
    files = NamespaceFiles(ui.runner.storage, namespace)
    path = normalize(param(request.params, "path") or "")
    selected = _selected(files, path) if path else None
    budget = [MAX_NODES]
    tree = _nodes(files, "", path, budget)
    folder = path if selected is None or selected.folder else path.rpartition("/")[0]
    return {"tree": tree, "cut": budget[0] <= 0, "selected": selected, "folder": folder}


def _selected(files: NamespaceFiles, path: str) -> Selected:
    if files.is_folder(path):
        return Selected(path, folder=True)
    target = files.local(path)
    if not target.is_file():
        raise NotFoundError(f"'/{path}' not found in namespace '{files.namespace}'")
    size = target.stat().st_size
    return Selected(path, folder=False, size=size, text=_text(target) if size <= MAX_SHOWN_BYTES else None)


def _text(target: Path) -> str | None:
    """The file as UTF-8 text, or None when it looks binary (a NUL byte, or bytes UTF-8 cannot decode)."""
    data = target.read_bytes()
    if b"\x00" in data[:SNIFF_BYTES]:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def _nodes(files: NamespaceFiles, prefix: str, current: str, budget: list[int]) -> list[Node]:
    """Folders first, then files, by name; links are not followed; at most `budget` nodes in all."""
    entries = sorted(files.entries(prefix), key=lambda e: (not e.is_dir, e.name.lower()))
    nodes = []
    for entry in entries:
        if budget[0] <= 0:
            break
        budget[0] -= 1
        path = prefix + entry.name
        node = Node(entry.name, path, entry.is_dir)
        if node.folder:
            node.open = current == path or current.startswith(path + "/")
            node.children = _nodes(files, path + "/", current, budget)
        nodes.append(node)
    return nodes
