"""`io.kestra.plugin.git.Clone`: a repository into the task's working directory (shared inside WorkingDirectory)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kestractl.plugin import Prop, RunContext, TaskError, register
from kestractl.plugins.git.base import GitTask
from kestractl.plugins.git.command import Git


@register
class Clone(GitTask):
    """Clone a branch (shallow by default), a tag or a commit; a non-empty target gets init, fetch and checkout."""

    type_name = "io.kestra.plugin.git.Clone"
    properties = {
        "directory": Prop(
            "The folder under the working directory to clone into (default: the directory itself).", type="string"
        ),
        "branch": Prop("The branch to check out (used when neither `commit` nor `tag` is set).", type="string"),
        "depth": Prop("Shallow clone depth; ignored with `commit` or `tag`.", type="integer", default=1),
        "commit": Prop("A commit SHA to check out (detached HEAD); clones the whole history.", type="string"),
        "tag": Prop("A tag to check out (ignored when `commit` is set).", type="string"),
        "cloneAllBranches": Prop("Fetch every branch; false fetches `branch` only.", type="boolean", default=True),
        "noTags": Prop("Do not fetch tags.", type="boolean", default=False),
    }
    outputs = {"directory": "The path the repository was cloned to."}

    def run(self, ctx: RunContext) -> dict[str, Any]:
        self._check(ctx)
        wd = ctx.working_directory()
        path = (wd / ctx.prop("directory")).resolve() if ctx.prop("directory") else wd
        if not path.is_relative_to(wd.resolve()):
            raise TaskError(f"directory: '{ctx.prop('directory')}' is outside the working directory")
        ctx.info(f"Start cloning from '{ctx.prop('url')}'")
        with self.git(ctx) as git:
            if path.is_dir() and any(path.iterdir()):
                ctx.info(f"Target directory '{path}' is not empty, using init+fetch strategy")
                self._fetch_into(ctx, git, path)
            else:
                git.run("clone", "--quiet", *self._clone_options(ctx), "--", git.url, str(path))
                self.apply_config(ctx, git, path)
            self._checkout(ctx, git, path)
        return {"directory": str(path)}

    def _check(self, ctx: RunContext) -> None:
        if not ctx.prop("cloneAllBranches") and not ctx.prop("branch"):
            raise TaskError("Invalid clone configuration: when `cloneAllBranches` is false, `branch` must be set.")
        if ctx.prop("tag") is not None and ctx.prop("noTags"):
            raise TaskError("Invalid clone configuration: `tag` cannot be used with `noTags: true`.")

    def _pinned(self, ctx: RunContext) -> bool:
        """A commit or a tag needs the history to reach it: no shallow clone, no branch."""
        return ctx.prop("commit") is not None or ctx.prop("tag") is not None

    def _clone_options(self, ctx: RunContext) -> list[str]:
        options = ["--no-single-branch"] if ctx.prop("cloneAllBranches") else ["--single-branch"]
        if not self._pinned(ctx):
            options += ["--branch", ctx.prop("branch")] if ctx.prop("branch") else []
            options += ["--depth", str(ctx.prop("depth"))]
        options += ["--no-tags"] if ctx.prop("noTags") else []
        return options + (["--recurse-submodules"] if ctx.prop("cloneSubmodules") else [])

    def _fetch_into(self, ctx: RunContext, git: Git, path: Path) -> None:
        """git init + fetch + checkout: `git clone` refuses a folder that holds files (e.g. from inputFiles)."""
        git.run("init", "--quiet", cwd=path)
        git.run("remote", "add", "origin", git.url, cwd=path)
        self.apply_config(ctx, git, path)
        branch = ctx.prop("branch")
        heads = f"refs/heads/{branch}" if branch and not ctx.prop("cloneAllBranches") else "refs/heads/*"
        refspecs = [f"+{heads}:{heads.replace('refs/heads/', 'refs/remotes/origin/')}"]
        refspecs += [] if ctx.prop("noTags") else ["+refs/tags/*:refs/tags/*"]
        depth = [] if self._pinned(ctx) else ["--depth", str(ctx.prop("depth"))]
        git.run("fetch", "--quiet", *depth, "origin", *refspecs, cwd=path)
        if not self._pinned(ctx):
            target = branch or self._default_branch(git)
            git.run("checkout", "--quiet", "-B", target, f"origin/{target}", cwd=path)
        if ctx.prop("cloneSubmodules"):
            git.run("submodule", "update", "--init", "--recursive", cwd=path)

    def _default_branch(self, git: Git) -> str:
        for line in git.run("ls-remote", "--symref", git.url, "HEAD").splitlines():
            if line.startswith("ref: refs/heads/"):
                return line.split()[1].removeprefix("refs/heads/")
        raise TaskError("Cannot determine the default branch. Please specify the 'branch' property explicitly.")

    def _checkout(self, ctx: RunContext, git: Git, path: Path) -> None:
        """A commit or tag as a detached HEAD, as Kestra checks them out after cloning."""
        commit, tag = ctx.prop("commit"), ctx.prop("tag")
        if commit is not None:
            git.run("checkout", "--quiet", "--detach", commit, cwd=path)
            ctx.info(f"Checked out commit {commit} (detached HEAD)")
        elif tag is not None:
            git.run("checkout", "--quiet", "--detach", f"refs/tags/{tag}", cwd=path)
            ctx.info(f"Checked out tag {tag}")
