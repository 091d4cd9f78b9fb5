"""Deploying flows from files: collect the YAML, validate all of it, store all of it or nothing."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from kestractl.errors import ValidationError
from kestractl.model import Flow
from kestractl.parser import parse_flow, split_documents
from kestractl.store import Store

YAML_SUFFIXES = (".yml", ".yaml")


@dataclass
class Deployed:
    namespace: str
    id: str
    revision: int
    changed: bool
    path: str


def collect_files(paths: list[Path]) -> list[Path]:
    """Files as given, plus every `*.yml` / `*.yaml` below each directory, sorted."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files += sorted(p for p in path.rglob("*") if p.suffix in YAML_SUFFIXES and p.is_file())
        elif path.is_file():
            files.append(path)
        else:
            raise ValidationError(f"{path}: no such file or directory")
    return files


def read_documents(files: list[Path]) -> tuple[list[tuple[str, str]], list[str]]:
    """Every YAML document of every file as (file, text), and a problem for each file that cannot be read."""
    docs: list[tuple[str, str]] = []
    problems: list[str] = []
    for file in files:
        try:
            text = file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            problems.append(f"{file}: cannot read: {exc}")
            continue
        docs += [(str(file), doc) for doc in split_documents(text)]
    return docs, problems


def load_flows(files: list[Path]) -> list[tuple[Flow, str]]:
    """Parse every flow of every file; raises one ValidationError listing every problem."""
    docs, problems = read_documents(files)
    try:
        flows = load_flow_texts(docs)
    except ValidationError as exc:
        problems += exc.problems
    if problems:
        raise ValidationError(f"{len(problems)} problem(s) found", problems)
    return flows


def load_flow_texts(docs: list[tuple[str, str]]) -> list[tuple[Flow, str]]:
    """Parse (origin, YAML) documents; a flow defined twice is a problem too."""
    flows: list[tuple[Flow, str]] = []
    problems: list[str] = []
    seen: dict[str, str] = {}
    for origin, text in docs:
        try:
            flow = parse_flow(text, origin)
        except ValidationError as exc:
            problems += exc.problems
            continue
        if flow.uid in seen:
            problems.append(f"{origin}: flow {flow.uid} is also defined in {seen[flow.uid]}")
        seen[flow.uid] = origin
        flows.append((flow, origin))
    if problems:
        raise ValidationError(f"{len(problems)} problem(s) found", problems)
    return flows


def deploy(store: Store, paths: list[Path]) -> list[Deployed]:
    """Validate everything first, then store every flow in one transaction."""
    return store_flows(store, load_flows(collect_files(paths)))


def deploy_texts(store: Store, docs: list[tuple[str, str]], dry_run: bool = False) -> list[Deployed]:
    """(origin, YAML) flows validated together, then stored (a task's deploy, e.g. git SyncFlows); `dry_run` stores
    nothing and says which revision each would get."""
    flows = load_flow_texts(docs)
    return [_simulated(store, flow, origin) for flow, origin in flows] if dry_run else store_flows(store, flows)


def store_flows(store: Store, flows: list[tuple[Flow, str]]) -> list[Deployed]:
    results = []
    with store.transaction():
        for flow, path in flows:
            revision, changed = store.save_flow(flow.namespace, flow.id, flow.source)
            results.append(Deployed(flow.namespace, flow.id, revision, changed, path))
    return results


def _simulated(store: Store, flow: Flow, origin: str) -> Deployed:
    latest = store.latest_flow(flow.namespace, flow.id)
    if latest is not None and latest.source == flow.source:
        return Deployed(flow.namespace, flow.id, latest.revision, False, origin)
    return Deployed(flow.namespace, flow.id, latest.revision + 1 if latest else 1, True, origin)
