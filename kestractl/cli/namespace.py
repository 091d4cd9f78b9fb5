"""`kestractl namespace files …`: a namespace's files, as Kestra's `namespace files update` fills them."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from kestractl.cli.output import echo
from kestractl.cli.state import handles_errors, state

app = typer.Typer(
    help="Namespaces: their files.  Example: kestractl namespace files update dev scripts/", no_args_is_help=True
)
files_app = typer.Typer(
    help="Namespace files (scripts, SQL, configs) that tasks load with `namespaceFiles` and `read()`.  "
    "Example: kestractl namespace files list dev",
    no_args_is_help=True,
)
app.add_typer(files_app, name="files")

Namespace = Annotated[str, typer.Argument(help="The namespace, e.g. company.team.")]
FilePath = Annotated[str, typer.Argument(help="A file's path in the namespace, e.g. scripts/main.py.")]


@files_app.command()
@handles_errors
def update(
    namespace: Namespace,
    from_dir: Annotated[Path, typer.Argument(help="The local folder to upload, recursively (.kestraignore applies).")],
    to_path: Annotated[str, typer.Argument(help="The folder in the namespace to upload into.")] = "/",
    delete: Annotated[bool, typer.Option("--delete", help="Delete TO_PATH in the namespace first.")] = False,
) -> None:
    """Upload a folder's files as namespace files.  Example: kestractl namespace files update dev scripts/ /"""
    from kestractl.namespace_files import local_files

    if not from_dir.is_dir():
        raise typer.BadParameter(f"{from_dir} is not a directory", param_hint="FROM_DIR")
    backend = state.backend()
    if delete:
        backend.file_delete(namespace, to_path)
    for name, path in local_files(from_dir):
        destination = "/" + "/".join(p for p in (to_path.strip("/"), name) if p)
        backend.file_put(namespace, destination, path)
        echo(f"Successfully uploaded {path} to {destination}")


@files_app.command("list")
@handles_errors
def list_files(namespace: Namespace) -> None:
    """Print every file of a namespace, one path a line.  Example: kestractl namespace files list dev"""
    for path in state.backend().file_paths(namespace):
        echo(f"/{path}")


@files_app.command()
@handles_errors
def get(namespace: Namespace, path: FilePath) -> None:
    """Write a namespace file's bytes to stdout.  Example: kestractl namespace files get dev queries/a.sql"""
    data = state.backend().file_get(namespace, path)
    sys.stdout.buffer.write(data)
    sys.stdout.buffer.flush()


@files_app.command()
@handles_errors
def delete(namespace: Namespace, path: FilePath) -> None:
    """Delete a file or folder (and folders left empty).  Example: kestractl namespace files delete dev a.sql"""
    from kestractl.errors import NotFoundError

    if not state.backend().file_delete(namespace, path):
        raise NotFoundError(f"'{path}' not found in namespace '{namespace}'")
    echo(f"/{path.strip('/')}  deleted from {namespace}")
