"""`kestractl flow …`: deploy, validate, list, show, revisions, delete, export, schema."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from kestractl.cli.output import echo, print_json, table
from kestractl.cli.state import handles_errors, state

app = typer.Typer(help="Deploy and inspect flows.  Example: kestractl flow deploy flows/", no_args_is_help=True)

Paths = Annotated[list[Path], typer.Argument(help="Flow files or directories (every *.yml / *.yaml below).")]
Namespace = Annotated[str, typer.Argument(help="The flow's namespace, e.g. dev.")]
FlowId = Annotated[str, typer.Argument(help="The flow's id, e.g. hello-world.")]


@app.command()
@handles_errors
def deploy(paths: Paths) -> None:
    """Validate and store flows; all or nothing.  Example: kestractl flow deploy flows/"""
    for result in state.backend().deploy(paths):
        note = (
            "(updated)" if result.changed and result.revision > 1 else "(created)" if result.changed else "(unchanged)"
        )
        echo(f"{result.namespace}.{result.id}  revision {result.revision}  {note}")


@app.command()
@handles_errors
def validate(paths: Paths) -> None:
    """Check flows without storing anything.  Example: kestractl flow validate flows/hello.yaml"""
    for namespace, flow_id, path in state.backend().validate(paths):
        echo(f"{namespace}.{flow_id}  valid  ({path})")


@app.command("list")
@handles_errors
def list_flows(
    namespace: Annotated[str | None, typer.Option(help="Only this namespace (and its children).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON list.")] = False,
) -> None:
    """List deployed flows.  Example: kestractl flow list --namespace dev"""
    rows = state.backend().flows(namespace)
    if as_json:
        print_json([{"namespace": r.namespace, "id": r.id, "revision": r.revision} for r in rows])
        return
    table(["NAMESPACE", "ID", "REVISION"], [[r.namespace, r.id, str(r.revision)] for r in rows])


@app.command()
@handles_errors
def show(
    namespace: Namespace,
    flow_id: FlowId,
    revision: Annotated[int | None, typer.Option(help="A given revision (default: the latest).")] = None,
) -> None:
    """Print a flow's YAML source as deployed.  Example: kestractl flow show dev hello-world"""
    source = state.backend().flow(namespace, flow_id, revision).source
    echo(source.rstrip("\n"))


@app.command()
@handles_errors
def revisions(namespace: Namespace, flow_id: FlowId) -> None:
    """List a flow's revisions.  Example: kestractl flow revisions dev hello-world"""
    rows = state.backend().revisions(namespace, flow_id)
    table(["REVISION", "DEPLOYED"], [[str(r.revision), r.created] for r in rows])


@app.command()
@handles_errors
def delete(namespace: Namespace, flow_id: FlowId) -> None:
    """Delete a flow (its executions are kept).  Example: kestractl flow delete dev hello-world"""
    state.backend().delete_flow(namespace, flow_id)
    echo(f"{namespace}.{flow_id}  deleted")


@app.command()
@handles_errors
def export(
    directory: Annotated[Path, typer.Argument(help="Folder to write <namespace>/<id>.yaml into.")],
) -> None:
    """Write every flow's latest source to DIR/<namespace>/<id>.yaml.  Example: kestractl flow export backup/"""
    count = 0
    for row in state.backend().sources():
        target = directory / row.namespace / f"{row.id}.yaml"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(row.source, encoding="utf-8")
        count += 1
    echo(f"{count} flow(s) exported to {directory}")


@app.command()
@handles_errors
def schema() -> None:
    """The JSON Schema of a flow (every task, trigger, condition and input type, plugins included), for editors;
    with --server, the server's.  Example: kestractl flow schema > flow.schema.json"""
    print_json(state.backend().flow_schema())
