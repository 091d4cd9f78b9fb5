"""Git → kestractl: `SyncFlows` deploys the flows of a git folder into a namespace, `SyncNamespaceFiles` copies a
git folder into a namespace's files. Each writes Kestra's diff (one ION row per flow or file: ADDED, UPDATED,
OVERWRITTEN, UNCHANGED, DELETED) to internal storage; `dryRun` writes the diff and changes nothing."""

from __future__ import annotations

import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from kestractl.plugin import (
    FlowSource,
    KestraError,
    NamespaceFiles,
    Prop,
    RunContext,
    TaskError,
    local_files,
    register,
    write_ion_lines,
)
from kestractl.plugins.git.base import GitTask

NAMESPACE_LINE = re.compile(r"(?m)^namespace: (.*)$")
SKIPPED = (".git", ".gitignore", ".gitkeep")


@dataclass
class GitFile:
    """A file of the synced git folder: its path under the folder (`sub/a.yml`) and where it is on disk."""

    relative: str
    path: Path


class SyncTask(GitTask):
    """Kestra's `AbstractSyncTask`: clone the branch, read its folder, apply it, write the diff."""

    properties = {
        "branch": Prop("The branch to sync from.", type="string", default="main"),
        "dryRun": Prop("Only write the diff; change nothing.", type="boolean", default=False),
        "failOnMissingDirectory": Prop(
            "Fail when `gitDirectory` is not in the branch (else sync nothing).", type="boolean", default=True
        ),
    }
    output_name: ClassVar[str] = ""

    def run(self, ctx: RunContext) -> dict[str, Any]:
        with tempfile.TemporaryDirectory(prefix="kestractl-git-") as tmp, self.git(ctx) as git:
            repository = self.clone_branch(ctx, git, ctx.prop("branch"), Path(tmp) / "repository")
            rows = self.sync(ctx, self._git_files(ctx, repository))
        path, uri = ctx.output_file(f"{self.output_name}.ion")
        with path.open("w", encoding="utf-8") as out:
            write_ion_lines(
                sorted(rows, key=lambda row: (row.get("gitPath") is not None, row.get("gitPath") or "")),
                out,
                omit_nulls=True,
            )
        return {self.output_name: uri}

    def _git_files(self, ctx: RunContext, repository: Path) -> list[GitFile]:
        """The folder's files (a symbolic link leading out of the repository is not one)."""
        name = ctx.prop("gitDirectory")
        folder = (repository / name).resolve()
        if not folder.is_relative_to(repository.resolve()):
            raise TaskError(f"gitDirectory: '{name}' is outside the repository")
        if not folder.exists() and ctx.prop("failOnMissingDirectory"):
            raise TaskError(
                f"The directory '{name}' was not found in the git repository. Verify if the path exists in the "
                f"specified branch '{ctx.prop('branch')}'."
            )
        if folder.exists() and not folder.is_dir():
            raise TaskError(f"The path '{name}' exists but is a file, not a directory.")
        found = local_files(folder) if folder.is_dir() else []
        inside = [(rel, path) for rel, path in found if path.resolve().is_relative_to(repository.resolve())]
        files = [GitFile(rel, path) for rel, path in inside if not set(rel.split("/")) & set(SKIPPED)]
        return [f for f in files if self.traverses(ctx) or "/" not in f.relative]

    def traverses(self, ctx: RunContext) -> bool:
        return True

    def sync(self, ctx: RunContext, files: list[GitFile]) -> list[dict[str, Any]]:
        raise NotImplementedError

    def git_path(self, ctx: RunContext, file: GitFile) -> str:
        return f"{ctx.prop('gitDirectory')}/{file.relative}"


@register
class SyncFlows(SyncTask):
    """Deploy the flows of `gitDirectory` into `targetNamespace` (sub-folders into child namespaces with
    `includeChildNamespaces`), all validated before any is stored; `delete` removes the flows git no longer has
    (never the flow running this task)."""

    type_name = "io.kestra.plugin.git.SyncFlows"
    properties = {
        "targetNamespace": Prop(
            "The namespace the flows are deployed to (their `namespace` is rewritten).", type="string", required=True
        ),
        "gitDirectory": Prop("The folder of the repository that holds the flows.", type="string", default="_flows"),
        "includeChildNamespaces": Prop("Sync sub-folders into child namespaces too.", type="boolean", default=False),
        "delete": Prop("Delete the flows of the namespace that git does not have.", type="boolean", default=False),
        "ignoreInvalidFlows": Prop(
            "Skip invalid flows with a warning instead of failing.", type="boolean", default=False
        ),
    }
    outputs = {"flows": "A kestra:// ION file: per flow its gitPath, syncState, flowId, namespace and revision."}
    output_name = "flows"

    def traverses(self, ctx: RunContext) -> bool:
        return bool(ctx.prop("includeChildNamespaces"))

    def sync(self, ctx: RunContext, files: list[GitFile]) -> list[dict[str, Any]]:
        namespace = ctx.prop("targetNamespace")
        before = {(f.namespace, f.id): f for f in ctx.services.flows(namespace, ctx.prop("includeChildNamespaces"))}
        docs = self._valid(ctx, [(self.git_path(ctx, f), self._source(namespace, f)) for f in files])
        try:
            after = ctx.services.deploy_flows(docs, ctx.prop("dryRun"))
        except KestraError as error:
            raise TaskError(f"Invalid flow imported from Git: {problems(error)}") from None
        rows = [self._row(before.get((f.namespace, f.id)), f, path) for f, (path, _) in zip(after, docs, strict=True)]
        if ctx.prop("delete"):
            kept = {(f.namespace, f.id) for f in after} | {(ctx.flow.namespace, ctx.flow.id)}
            rows += [self._delete(ctx, flow) for key, flow in before.items() if key not in kept]
        return rows

    def _source(self, namespace: str, file: GitFile) -> str:
        """The flow's YAML with its namespace rewritten (a sub-folder is a child namespace), as Kestra does."""
        folder = file.relative.rpartition("/")[0]
        target = namespace + ("." + folder.replace("/", ".") if folder else "")
        text = file.path.read_text(encoding="utf-8")
        return NAMESPACE_LINE.sub(lambda _: f"namespace: {target}", text, count=1).rstrip()

    def _valid(self, ctx: RunContext, docs: list[tuple[str, str]]) -> list[tuple[str, str]]:
        """With `ignoreInvalidFlows`, each flow checked alone and the invalid ones skipped with a warning."""
        if not ctx.prop("ignoreInvalidFlows"):
            return docs
        valid = []
        for doc in docs:
            try:
                ctx.services.deploy_flows([doc], True)
                valid.append(doc)
            except KestraError as error:
                ctx.log("WARN", f"Invalid flow imported from Git: {problems(error)}")
        return valid

    def _row(self, before: FlowSource | None, after: FlowSource, git_path: str) -> dict[str, Any]:
        state = "ADDED" if before is None else "UNCHANGED" if before.revision == after.revision else "UPDATED"
        return {
            "gitPath": git_path,
            "syncState": state,
            "flowId": after.id,
            "namespace": after.namespace,
            "revision": after.revision,
        }

    def _delete(self, ctx: RunContext, flow: FlowSource) -> dict[str, Any]:
        if not ctx.prop("dryRun"):
            ctx.services.delete_flow(flow.namespace, flow.id)
        return {"syncState": "DELETED", "flowId": flow.id, "namespace": flow.namespace, "revision": flow.revision}


@register
class SyncNamespaceFiles(SyncTask):
    """Copy the files of `gitDirectory` into `namespace`'s files; `delete` removes the files git does not have."""

    type_name = "io.kestra.plugin.git.SyncNamespaceFiles"
    properties = {
        "namespace": Prop("The namespace whose files are written.", type="string", default="{{ flow.namespace }}"),
        "gitDirectory": Prop("The folder of the repository that holds the files.", type="string", default="_files"),
        "delete": Prop("Delete the namespace files that git does not have.", type="boolean", default=False),
    }
    outputs = {"files": "A kestra:// ION file: per file its gitPath, syncState and kestraPath."}
    output_name = "files"

    def sync(self, ctx: RunContext, files: list[GitFile]) -> list[dict[str, Any]]:
        try:
            target = NamespaceFiles(ctx.storage, ctx.prop("namespace"))
        except KestraError as error:
            raise TaskError(f"namespace: {error.message}") from None
        before = set(target.paths())
        rows = [self._write(ctx, target, f, f.relative in before) for f in files]
        if ctx.prop("delete"):
            in_git = {f.relative for f in files}
            rows += [self._delete(ctx, target, path) for path in sorted(before - in_git)]
        return rows

    def _write(self, ctx: RunContext, target: NamespaceFiles, file: GitFile, existed: bool) -> dict[str, Any]:
        content = file.path.read_bytes()
        same = existed and target.get(file.relative) == content
        if not same and not ctx.prop("dryRun"):
            target.put(file.relative, content)
        state = "UNCHANGED" if same else "OVERWRITTEN" if existed else "ADDED"
        return {"gitPath": self.git_path(ctx, file), "syncState": state, "kestraPath": f"/{file.relative}"}

    def _delete(self, ctx: RunContext, target: NamespaceFiles, path: str) -> dict[str, Any]:
        if not ctx.prop("dryRun"):
            target.delete(path)
        return {"syncState": "DELETED", "kestraPath": f"/{path}"}


def problems(error: KestraError) -> str:
    """Every problem of a refused deploy on one line (each names its git file)."""
    return "; ".join(getattr(error, "problems", None) or [error.message])
