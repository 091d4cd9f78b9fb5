"""`kestractl server standalone`: scheduler, executor pool and Kestra's REST API in one process."""

from __future__ import annotations

import os
import signal
import threading
from pathlib import Path
from typing import Annotated, Any

import typer

from kestractl.cli.output import echo, log_line
from kestractl.cli.state import handles_errors, state

app = typer.Typer(
    help="Run kestractl as a server.  Example: kestractl server standalone -f flows/", no_args_is_help=True
)


def _basic_auth(value: str | None) -> tuple[str, str] | None:
    value = value or os.environ.get("KESTRACTL_BASIC_AUTH")
    if not value:
        return None
    user, sep, password = value.partition(":")
    if not sep or not user:
        raise typer.BadParameter("expected user:password", param_hint="--basic-auth")
    return user, password


@app.command()
@handles_errors
def standalone(
    flow_path: Annotated[
        Path | None, typer.Option("--flow-path", "-f", help="Load (and keep in sync) every flow under DIR.")
    ] = None,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on (0: any free port).")] = 8080,
    workers: Annotated[int, typer.Option(help="Worker threads running tasks.")] = 8,
    watch: Annotated[bool, typer.Option("--watch/--no-watch", help="Keep the flow directory in sync.")] = True,
    basic_auth: Annotated[
        str | None, typer.Option(help="Require HTTP basic auth user:password (or $KESTRACTL_BASIC_AUTH).")
    ] = None,
    grace: Annotated[float, typer.Option(help="Seconds running tasks get to finish on stop.")] = 30.0,
    namespace_files: Annotated[
        Path | None,
        typer.Option(help="Keep DIR's folders in sync as namespace files (folder name = namespace)."),
    ] = None,
    heartbeat_interval: Annotated[
        float, typer.Option(help="Seconds between liveness heartbeats.", envvar="KESTRACTL_LIVENESS_HEARTBEAT_INTERVAL")
    ] = 3.0,
    heartbeat_timeout: Annotated[
        float,
        typer.Option(
            help="Seconds without a heartbeat after which a server's services are DISCONNECTED.",
            envvar="KESTRACTL_LIVENESS_TIMEOUT",
        ),
    ] = 45.0,
) -> None:
    """Serve flows: schedules, flow triggers, webhooks and /api/v1.  Example: kestractl server standalone -f flows/"""
    from kestractl.server.app import ServerOptions, StandaloneServer

    for folder, hint in ((flow_path, "--flow-path"), (namespace_files, "--namespace-files")):
        if folder is not None and not folder.is_dir():
            raise typer.BadParameter(f"{folder} is not a directory", param_hint=hint)
    auth = _basic_auth(basic_auth)
    if not 0 < heartbeat_interval < heartbeat_timeout:
        raise typer.BadParameter(
            "must be more than 0 and less than --heartbeat-timeout", param_hint="--heartbeat-interval"
        )
    options = ServerOptions(
        flow_path,
        host,
        port,
        workers,
        watch,
        auth,
        grace,
        namespace_files=namespace_files,
        database=state.database_option,
        heartbeat_interval=heartbeat_interval,
        heartbeat_timeout=heartbeat_timeout,
    )
    server = StandaloneServer(state.home(), options, say=_say, on_log=log_line)
    _stop_on_signals(server.stop_event)
    server.serve()


@app.command()
@handles_errors
def webserver(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on (0: any free port).")] = 8080,
    basic_auth: Annotated[
        str | None, typer.Option(help="Require HTTP basic auth user:password (or $KESTRACTL_BASIC_AUTH).")
    ] = None,
) -> None:
    """Kestra's webserver alone: the REST API and the UI; executions are left CREATED for the executors sharing the
    database.  Example: kestractl --database postgresql://… server webserver --port 8080"""
    from kestractl.server.app import ServerOptions
    from kestractl.server.webserver import WebServer

    options = ServerOptions(host=host, port=port, basic_auth=_basic_auth(basic_auth), database=state.database_option)
    server = WebServer(state.home(), options, say=_say)
    _stop_on_signals(server.stop_event)
    server.serve()


@app.command()
@handles_errors
def scheduler() -> None:
    """Kestra's scheduler component alone: schedules become CREATED executions that executors run elsewhere.
    Several may share one database.  Example: kestractl --database postgresql://… server scheduler"""
    from kestractl.server.scheduler_component import SchedulerComponent

    component = SchedulerComponent(state.home(), state.database_option, say=_say)
    _stop_on_signals(component.stop_event)
    component.serve()


def _stop_on_signals(event: threading.Event) -> None:
    def stop(signum: int, frame: object) -> None:
        event.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)


@app.command("list")
@handles_errors
def list_services(
    include_ended: Annotated[bool, typer.Option("--all", help="Also the services that stopped (NOT_RUNNING).")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print Kestra's ServiceInstance JSON list.")] = False,
) -> None:
    """The service instances of the servers sharing the database, oldest first.  Example: kestractl server list"""
    from kestractl.cli.output import print_json, table

    instances = state.backend().services(include_ended)
    if as_json:
        print_json(instances)
        return
    columns = ["ID", "TYPE", "STATE", "HOST", "PID", "SERVER", "STARTED", "HEARTBEAT"]
    table(columns, [_service_row(instance) for instance in instances])


def _service_row(instance: dict[str, Any]) -> list[str]:
    server = instance["server"]
    head = [instance["id"], instance["type"], instance["state"], server["hostname"], str(server["props"]["pid"])]
    return [*head, server["id"][:8], instance["createdAt"], instance["updatedAt"]]


def _say(level: str, message: str) -> None:
    echo(f"[server] {level:<5} {message}", err=level == "ERROR")
