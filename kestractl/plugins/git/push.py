"""kestractl → git: `PushFlows` commits a namespace's flows, `PushNamespaceFiles` its files, to a branch (created
when missing) and pushes; `delete` removes from the git folder what kestractl no longer has. Outputs are Kestra's:
`commitId`, `commitURL` and a diff (one ION row per file: additions, deletions, changes)."""

from __future__ import annotations

import json
import re
import tempfile
from pathlib import Path
from typing import Any, ClassVar

from kestractl.plugin import (
    KestraError,
    NamespaceFiles,
    Prop,
    RunContext,
    TaskError,
    path_matcher,
    register,
    write_ion_lines,
)
from kestractl.plugins.git.base import GitTask, commit_url, http_url
from kestractl.plugins.git.command import Git

HUNK = re.compile(r"^@@ -\d+(?:,(\d+))? \+\d+(?:,(\d+))? @@")
EMPTY_TREE = "4b825dc642cb6eb9a060e54bf8d69288fbee4904"
REVISION_LINE = re.compile(r"(?m)^revision:\s*\d+\n?")


class PushTask(GitTask):
    """Kestra's `AbstractPushTask`: clone the branch, write the resources into its folder, commit, push."""

    properties = {
        "branch": Prop("The branch to push to; created when missing.", type="string", default="main"),
        "commitMessage": Prop(
            "The commit message (default: `Add flows|files from <namespace> namespace`).", type="string"
        ),
        "authorName": Prop("The commit author's name (default: `username`).", type="string"),
        "authorEmail": Prop(
            "The commit author's email; without it and a name, git's configured identity.", type="string"
        ),
        "delete": Prop(
            "Remove the files of the git folder that kestractl no longer has.", type="boolean", default=True
        ),
        "dryRun": Prop("Stage and report the diff without committing or pushing.", type="boolean", default=False),
    }
    output_name: ClassVar[str] = ""
    # The property naming the namespace pushed (for the default commit message).
    namespace_prop: ClassVar[str] = ""

    def resources(self, ctx: RunContext, globs: list[str] | None) -> dict[str, bytes]:
        """What to write, by path under the git folder."""
        raise NotImplementedError

    def globs(self, ctx: RunContext) -> list[str] | None:
        raise NotImplementedError

    def run(self, ctx: RunContext) -> dict[str, Any]:
        with tempfile.TemporaryDirectory(prefix="kestractl-git-") as tmp, self.git(ctx) as git:
            repository = self.clone_branch(ctx, git, ctx.prop("branch"), Path(tmp) / "repository")
            folder = self._folder(ctx, repository)
            globs = self.globs(ctx)
            content = self.resources(ctx, globs)
            if ctx.prop("delete"):
                self._remove_outdated(git, repository, folder, set(content), globs)
            if not content:
                ctx.info("No content to push - skipping Git operations.")
                return {}
            self._write(git, repository, folder, content)
            outputs = self._commit_and_push(ctx, git, repository)
            return {**outputs, self.output_name: self._diff_file(ctx, git, repository, "commitId" in outputs)}

    def _folder(self, ctx: RunContext, repository: Path) -> Path:
        folder: Path = (repository / ctx.prop("gitDirectory")).resolve()
        if not folder.is_relative_to(repository.resolve()) or folder == repository.resolve() / ".git":
            raise TaskError(f"gitDirectory: '{ctx.prop('gitDirectory')}' is outside the repository")
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    def _write(self, git: Git, repository: Path, folder: Path, content: dict[str, bytes]) -> None:
        for relative, data in content.items():
            target = folder / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            if not target.resolve().is_relative_to(repository.resolve()):
                raise TaskError(f"'{relative}' would be written outside the repository (a symbolic link in git)")
            target.write_bytes(data)
        paths = [str((folder / relative).relative_to(repository.resolve())) for relative in content]
        git.run("add", "--", *paths, cwd=repository)

    def _remove_outdated(
        self, git: Git, repository: Path, folder: Path, keep: set[str], globs: list[str] | None
    ) -> None:
        """Files of the folder kestractl does not have (among those the globs select), `git rm`-ed."""
        matches = path_matcher([f"glob:{g}" for g in globs]) if globs else None
        stale = []
        for path in sorted(p for p in folder.rglob("*") if p.is_file() and ".git" not in p.relative_to(folder).parts):
            relative = path.relative_to(folder).as_posix()
            if relative in keep or path.name == ".kestraignore":
                continue
            in_repo = path.relative_to(repository.resolve()).as_posix()
            if matches is None or any(matches(c) for c in (in_repo, path.name, path.stem)):
                stale.append(in_repo)
        if stale:
            git.run("rm", "--quiet", "--", *stale, cwd=repository)

    def _commit_and_push(self, ctx: RunContext, git: Git, repository: Path) -> dict[str, Any]:
        url, branch = http_url(git.url), ctx.prop("branch")
        if ctx.prop("dryRun"):
            ctx.info(
                f"Dry run — no changes will be pushed to {url} for now until you set the `dryRun` parameter to false"
            )
            return {}
        if not git.run("status", "--porcelain", "--untracked-files=no", cwd=repository).strip():
            ctx.info("No changes to commit. Skipping push.")
            return {}
        ctx.info(f"Pushing to {url} on branch {branch}")
        message = ctx.prop("commitMessage") or f"Add {self.output_name} from {ctx.prop(self.namespace_prop)} namespace"
        git.run("commit", "--quiet", "--no-verify", "-m", message, cwd=repository, env=self._author(ctx))
        commit_id = git.run("rev-parse", "HEAD", cwd=repository).strip()
        git.run("push", "--quiet", "origin", f"HEAD:refs/heads/{branch}", cwd=repository)
        link = commit_url(url, branch, commit_id)
        ctx.info(f"Pushed to {link}")
        return {"commitId": commit_id, "commitURL": link}

    def _author(self, ctx: RunContext) -> dict[str, str]:
        """Author and committer when both a name (or `username`) and an email are given, as Kestra sets them."""
        name, email = ctx.prop("authorName") or ctx.prop("username"), ctx.prop("authorEmail")
        if name is None or email is None:
            return {}
        return {
            "GIT_AUTHOR_NAME": name,
            "GIT_AUTHOR_EMAIL": email,
            "GIT_COMMITTER_NAME": name,
            "GIT_COMMITTER_EMAIL": email,
        }

    def _diff_file(self, ctx: RunContext, git: Git, repository: Path, committed: bool) -> str:
        """What was pushed (the new commit against its parent) or, in a dry run, what is staged."""
        span = [self._parent(git, repository), "HEAD"] if committed else ["--cached"]
        text = git.run("diff", "-U0", "--no-color", "--no-renames", "--no-ext-diff", *span, cwd=repository)
        path, uri = ctx.output_file(f"{self.output_name}.ion")
        with path.open("w", encoding="utf-8") as out:
            write_ion_lines(sorted(diff_rows(text), key=lambda row: row["file"]), out)
        return uri

    def _parent(self, git: Git, repository: Path) -> str:
        """The new commit's parent, or the empty tree for the first commit of a repository."""
        try:
            return git.run("rev-parse", "--verify", "--quiet", "HEAD~1", cwd=repository).strip()
        except TaskError:
            return EMPTY_TREE


def diff_rows(text: str) -> list[dict[str, str]]:
    """Kestra's per-file diff counts from `git diff -U0`: per hunk, lines added beyond those removed count as
    additions, the reverse as deletions, and a hunk of equal size as changes."""
    rows: list[dict[str, str]] = []
    counts = [0, 0, 0]
    old = ""
    for line in text.splitlines():
        if line.startswith("diff --git "):
            counts = [0, 0, 0]
        elif line.startswith("--- "):
            old = line[6:] if line.startswith("--- a/") else ""
        elif line.startswith("+++ "):
            file = line[6:] if line.startswith("+++ b/") else old
            rows.append({"file": file, "additions": "+0", "deletions": "-0", "changes": "0"})
        elif (match := HUNK.match(line)) and rows:
            before, after = (int(n) if n is not None else 1 for n in match.groups())
            index = 0 if after > before else 1 if after < before else 2
            counts[index] += abs(after - before) if index < 2 else after
            rows[-1].update(additions=f"+{counts[0]}", deletions=f"-{counts[1]}", changes=str(counts[2]))
    return rows


@register
class PushFlows(PushTask):
    """Commit the flows of `sourceNamespace` (child namespaces in sub-folders with `includeChildNamespaces`) as
    `<gitDirectory>/<id>.yml`, their namespace rewritten to `targetNamespace` when set."""

    type_name = "io.kestra.plugin.git.PushFlows"
    properties = {
        "gitDirectory": Prop("The folder of the repository the flows go to.", type="string", default="_flows"),
        "sourceNamespace": Prop("The namespace whose flows are pushed.", type="string", default="{{ flow.namespace }}"),
        "targetNamespace": Prop("Rewrite the flows' `namespace` to this one.", type="string"),
        "flows": Prop("Flow ids or globs (`my-*`) to push, a string or a list; default all.", type="any"),
        "includeChildNamespaces": Prop("Push the flows of child namespaces too.", type="boolean", default=False),
    }
    outputs = {
        "commitId": "The id of the commit pushed.",
        "commitURL": "The commit's web address (GitHub-style `<url>/commit/<id>`).",
        "flows": "A kestra:// ION file: per file its additions, deletions and changes.",
    }
    output_name = "flows"
    namespace_prop = "sourceNamespace"

    def globs(self, ctx: RunContext) -> list[str] | None:
        return _globs(ctx.prop("flows"))

    def resources(self, ctx: RunContext, globs: list[str] | None) -> dict[str, bytes]:
        source = ctx.prop("sourceNamespace")
        target = ctx.prop("targetNamespace") or source
        selected = path_matcher([f"glob:{g}" for g in globs]) if globs else None
        content = {}
        for flow in ctx.services.flows(source, ctx.prop("includeChildNamespaces")):
            if selected is None or selected(flow.id):
                folder = flow.namespace[len(source) + 1 :].replace(".", "/")
                text = REVISION_LINE.sub("", flow.source)
                text = re.sub(rf"(?m)^(\s*namespace:\s*){re.escape(source)}", lambda m: m.group(1) + target, text)
                content[f"{folder}/{flow.id}.yml".lstrip("/")] = text.encode("utf-8")
        return content


@register
class PushNamespaceFiles(PushTask):
    """Commit the files of `namespace` (those the `files` globs select) under `gitDirectory`."""

    type_name = "io.kestra.plugin.git.PushNamespaceFiles"
    properties = {
        "namespace": Prop("The namespace whose files are pushed.", type="string", default="{{ flow.namespace }}"),
        "gitDirectory": Prop("The folder of the repository the files go to.", type="string", default="_files"),
        "files": Prop(
            "Globs of the files to push (relative to the namespace root), a string or a list; default all.", type="any"
        ),
        "errorOnMissing": Prop("Fail when no file matches.", type="boolean", default=False),
    }
    outputs = {
        "commitId": "The id of the commit pushed.",
        "commitURL": "The commit's web address (GitHub-style `<url>/commit/<id>`).",
        "files": "A kestra:// ION file: per file its additions, deletions and changes.",
    }
    output_name = "files"
    namespace_prop = "namespace"

    def globs(self, ctx: RunContext) -> list[str] | None:
        return _globs(ctx.prop("files"))

    def resources(self, ctx: RunContext, globs: list[str] | None) -> dict[str, bytes]:
        try:
            source = NamespaceFiles(ctx.storage, ctx.prop("namespace"))
        except KestraError as error:
            raise TaskError(f"namespace: {error.message}") from None
        paths = source.find(path_matcher(globs)) if globs else source.paths()
        if not paths and ctx.prop("errorOnMissing"):
            raise TaskError("No Namespace Files matched the provided 'files' parameter to commit.")
        return {path: source.get(path) for path in paths}


def _globs(value: Any) -> list[str] | None:
    """A glob, a list of them, or a JSON list in a string (Kestra accepts all three)."""
    if value is None:
        return None
    if isinstance(value, str):
        try:
            parsed = json.loads(value)
        except ValueError:
            return [value]
        return [str(v) for v in parsed] if isinstance(parsed, list) else [value]
    return [str(v) for v in value] if isinstance(value, list) else [str(value)]
