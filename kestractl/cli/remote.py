"""The backend of `--server URL`: every command asks a Kestra-compatible REST API (ours, or Kestra's own, tenant
`main`) what the local backend asks the store, and gets the same objects back, so it prints the same output.

An execution is followed as Kestra's UI follows it: its changes over `/executions/{id}/follow` and its logs over
`/logs/{id}/follow` (server-sent events, on a thread of their own), until it ends or pauses."""

from __future__ import annotations

import json
import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from kestractl.cli.remote_http import ApiClient, form
from kestractl.errors import ConflictError, NotFoundError, ValidationError
from kestractl.model import Execution, LogEntry, State, iso_duration
from kestractl.store.records import FlowRow

if TYPE_CHECKING:
    from kestractl.cli.backend import ExecuteRequest, Watch
    from kestractl.deploy import Deployed

# Seconds the log stream gets to deliver its last lines once the execution ended; what it has not delivered by
# then is asked for (Kestra's stream never ends by itself).
LOG_DRAIN_SECONDS = 2.0
PAGE_SIZE = 100
# How long `executions kill` waits for the killed execution to end, as the local runner does, and how often it looks.
KILL_WAIT_SECONDS, KILL_POLL_SECONDS = 5.0, 0.1


class RemoteBackend:
    def __init__(self, server: str, user: str | None) -> None:
        self.api = ApiClient(server, user)

    # ---- flows --------------------------------------------------------------------------------

    def validate(self, paths: list[Path]) -> list[tuple[str, str, str]]:
        return [(ns, flow_id, origin) for ns, flow_id, origin, _ in self._validated(paths)]

    def flow_schema(self) -> dict[str, Any]:
        return dict(self.api.json("GET", self.api.untenanted("/plugins/schemas/flow")))

    def _validated(self, paths: list[Path]) -> list[tuple[str, str, str, str]]:
        """(namespace, id, file, source) of every document, checked by the server (it knows its plugins)."""
        from kestractl.deploy import collect_files, read_documents

        docs, problems = read_documents(collect_files(paths))
        answers = (
            self.api.json("POST", "/flows/validate", content=_yaml(d for _, d in docs), headers=YAML) if docs else []
        )
        found: list[tuple[str, str, str, str]] = []
        seen: dict[tuple[str, str], str] = {}
        for (origin, doc), answer in zip(docs, answers, strict=False):
            problems += _constraints(answer, origin)
            key = (str(answer.get("namespace")), str(answer.get("flow")))
            if key in seen and not answer.get("constraints"):
                problems.append(f"{origin}: flow {key[0]}.{key[1]} is also defined in {seen[key]}")
            seen.setdefault(key, origin)
            found.append((*key, origin, doc))
        if problems:
            raise ValidationError(f"{len(problems)} problem(s) found", problems)
        return found

    def deploy(self, paths: list[Path]) -> list[Deployed]:
        """Everything is validated first; then each namespace's flows in one request (Kestra's `flow namespace
        update` without deleting the others); a revision that did not move is an unchanged flow."""
        from kestractl.deploy import Deployed

        flows = self._validated(paths)
        revisions: dict[tuple[str, str], tuple[int | None, int]] = {}
        for namespace in dict.fromkeys(ns for ns, _, _, _ in flows):
            before = {f["id"]: f["revision"] for f in self.api.json("GET", f"/flows/{namespace}")}
            sources = _yaml(source for ns, _, _, source in flows if ns == namespace)
            saved = self.api.json(
                "POST", f"/flows/{namespace}", params={"delete": "false"}, content=sources, headers=YAML
            )
            revisions.update({(namespace, f["id"]): (before.get(f["id"]), f["revision"]) for f in saved})
        deployed = []
        for ns, flow_id, origin, _ in flows:
            old, new = revisions[(ns, flow_id)]
            deployed.append(Deployed(ns, flow_id, new, old != new, origin))
        return deployed

    def flows(self, namespace: str | None) -> list[FlowRow]:
        rows: list[FlowRow] = []
        while True:
            params = {
                "page": len(rows) // PAGE_SIZE + 1,
                "size": PAGE_SIZE,
                **({"namespace": namespace} if namespace else {}),
            }
            page = self.api.json("GET", "/flows/search", params=params)
            rows += [_flow_row(f) for f in page["results"]]
            if not page["results"] or len(rows) >= page["total"]:
                return sorted(rows, key=lambda r: (r.namespace, r.id))

    def flow(self, namespace: str, flow_id: str, revision: int | None) -> FlowRow:
        params = {"source": "true", **({"revision": revision} if revision is not None else {})}
        return _flow_row(self.api.json("GET", f"/flows/{namespace}/{flow_id}", params=params))

    def sources(self) -> list[FlowRow]:
        return [self.flow(row.namespace, row.id, None) for row in self.flows(None)]

    def revisions(self, namespace: str, flow_id: str) -> list[FlowRow]:
        return [_flow_row(f) for f in self.api.json("GET", f"/flows/{namespace}/{flow_id}/revisions")]

    def delete_flow(self, namespace: str, flow_id: str) -> None:
        self.api.send("DELETE", f"/flows/{namespace}/{flow_id}")

    # ---- executions ---------------------------------------------------------------------------

    def execute(self, request: ExecuteRequest, watch: Watch) -> Execution:
        """Inputs go as multipart fields, a FILE input's local file as a file part; a refusal is exit code 2."""
        path = f"/executions/{request.namespace}/{request.flow_id}"
        try:
            parts = self._input_parts(request)
            params = {"labels": [f"{k}:{v}" for k, v in request.labels], "revision": request.revision}
            created = self.api.json("POST", path, params={k: v for k, v in params.items() if v}, **form(parts))
        except (NotFoundError, ConflictError, ValidationError) as exc:
            raise ValidationError(exc.message, getattr(exc, "problems", None)) from None
        return self._follow(Execution.from_api(created), watch, seen=0, since=1)

    def _input_parts(self, request: ExecuteRequest) -> list[tuple[str, tuple[str | None, Any]]]:
        revision = {"revision": request.revision} if request.revision is not None else {}
        flow = self.api.json("GET", f"/flows/{request.namespace}/{request.flow_id}", params=revision)
        files = {i["id"] for i in flow.get("inputs") or [] if i.get("type") == "FILE"}
        parts: list[tuple[str, tuple[str | None, Any]]] = []
        for key, value in request.inputs.items():
            if key not in files or value.startswith("kestra://"):  # a file already in the server's storage
                parts.append((key, (None, value)))
                continue
            local = Path(value)
            if not local.is_file():
                raise ValidationError(f"Invalid input for `{key}`: {value}: no such file")
            parts.append((key, (local.name, local.read_bytes())))
        return parts

    def executions(self, namespace: str | None, flow_id: str | None, states: list[str], limit: int) -> list[Execution]:
        params = {"namespace": namespace, "flowId": flow_id, "state": states, "size": limit, "page": 1}
        found = self.api.json("GET", "/executions/search", params={k: v for k, v in params.items() if v})
        return [Execution.from_api(e) for e in found["results"]]

    def execution(self, execution_id: str) -> Execution:
        return Execution.from_api(self.api.json("GET", f"/executions/{execution_id}"))

    def logs(self, execution_id: str, level: str, task_id: str | None) -> list[LogEntry]:
        params = {"minLevel": level, **({"taskId": task_id} if task_id else {})}
        return [LogEntry.from_api(e) for e in self.api.json("GET", f"/logs/{execution_id}", params=params)]

    def restart(self, execution_id: str, watch: Watch) -> Execution:
        """The logs already there are not printed again, as a local restart prints only the new ones."""
        before = self.execution(execution_id)
        seen = len(self.logs(execution_id, "TRACE", None))
        restarted = Execution.from_api(self.api.json("POST", f"/executions/{execution_id}/restart"))
        return self._follow(restarted, watch, seen, len(before.state.histories))

    def resume(self, execution_id: str, watch: Watch) -> Execution:
        before = self.execution(execution_id)
        if before.state.current != State.PAUSED:
            raise ConflictError(f"execution {execution_id} is {before.state.current.value}, not PAUSED")
        seen = len(self.logs(execution_id, "TRACE", None))
        self.api.send("POST", f"/executions/{execution_id}/resume", **form([]))
        return self._follow(before, watch, seen, len(before.state.histories))

    def kill(self, execution_id: str, watch: Watch) -> Execution:
        """As a local kill: the execution once it ended, or as it is after KILL_WAIT_SECONDS (still KILLING)."""
        self.api.send("DELETE", f"/executions/{execution_id}/kill")
        deadline = time.monotonic() + KILL_WAIT_SECONDS
        while not (execution := self.execution(execution_id)).state.current.is_terminated():
            if time.monotonic() > deadline:
                break
            time.sleep(KILL_POLL_SECONDS)
        return execution

    def execution_files(self, execution_id: str) -> list[tuple[str, int]]:
        raise ValidationError(
            "`executions files` lists this machine's internal storage: Kestra's API has no such listing"
            " (the outputs in `executions show` give each file's URI)"
        )

    def execution_file(self, execution_id: str, uri: str) -> bytes:
        return self.api.send("GET", f"/executions/{execution_id}/file", params={"path": uri}).content

    def _follow(self, execution: Execution, watch: Watch, seen: int, since: int) -> Execution:
        """Logs (those after the first `seen`) and changes until the execution ends or pauses with more than
        `since` states in its history (an answer from before the request is not its end)."""
        logs = _LogFollower(self.api, execution.id, watch, seen)
        logs.start()
        try:
            for data in self.api.events(f"/executions/{execution.id}/follow"):
                execution = Execution.from_api(json.loads(data))
                if watch.on_change is not None:
                    watch.on_change(execution, execution.task_runs)
                current = execution.state.current
                if (current.is_terminated() or current == State.PAUSED) and len(execution.state.histories) > since:
                    break
        finally:
            logs.finish(LOG_DRAIN_SECONDS)
        for entry in self.logs(execution.id, "TRACE", None)[logs.count :]:
            watch.on_log(entry)
        return execution

    # ---- KV store and namespace files ---------------------------------------------------------

    def kv_put(self, namespace: str, key: str, value: Any, ttl: timedelta | None) -> None:
        headers = {"Content-Type": "text/plain", **({"ttl": iso_duration(ttl)} if ttl else {})}
        self.api.send("PUT", _kv_path(namespace, key), content=_kv_text(value), headers=headers)

    def kv_get(self, namespace: str, key: str) -> tuple[Any] | None:
        try:
            return (self.api.json("GET", _kv_path(namespace, key))["value"],)
        except NotFoundError:
            return None

    def kv_list(self, namespace: str) -> list[dict[str, Any]]:
        return list(self.api.json("GET", f"/namespaces/{namespace}/kv"))

    def kv_delete(self, namespace: str, key: str) -> bool:
        try:
            return self.api.json("DELETE", _kv_path(namespace, key)) is not False
        except NotFoundError:
            return False

    def file_put(self, namespace: str, path: str, source: Path) -> None:
        upload = {"fileContent": (source.name, source.read_bytes())}
        self.api.send("POST", f"/namespaces/{namespace}/files", params={"path": path}, files=upload)

    def file_paths(self, namespace: str) -> list[str]:
        """Kestra lists one folder at a time: the tree is walked."""
        found: list[str] = []
        folders = [""]
        while folders:
            folder = folders.pop()
            for entry in self.api.json(
                "GET", f"/namespaces/{namespace}/files/directory", params={"path": folder or "/"}
            ):
                path = f"{folder}/{entry['fileName']}".lstrip("/")
                (folders if entry.get("type") == "Directory" else found).append(path)
        return sorted(found)

    def file_get(self, namespace: str, path: str) -> bytes:
        return self.api.send("GET", f"/namespaces/{namespace}/files", params={"path": path}).content

    def file_delete(self, namespace: str, path: str) -> bool:
        try:
            self.api.send("DELETE", f"/namespaces/{namespace}/files", params={"path": path})
        except NotFoundError:
            return False
        return True

    def services(self, include_ended: bool) -> list[dict[str, Any]]:
        params = {"includeEnded": str(include_ended).lower()}
        return list(self.api.json("GET", "/cluster/services", params=params)["results"])


YAML = {"Content-Type": "application/x-yaml"}


class _LogFollower:
    """Prints the execution's log lines as the server streams them, skipping the first `seen`; counts every line
    it got, so whatever the stream had not delivered when it is stopped can be asked for and printed once."""

    def __init__(self, api: ApiClient, execution_id: str, watch: Watch, seen: int) -> None:
        self.api, self.execution_id, self.watch, self.skip = api, execution_id, watch, seen
        self.count = 0
        self.lock = threading.Lock()
        self.stopped = False
        self.client = api.new_client()
        self.thread = threading.Thread(target=self._run, name="logs", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def _run(self) -> None:
        try:
            for data in self.api.events(f"/logs/{self.execution_id}/follow", self.client):
                with self.lock:
                    if self.stopped:
                        return
                    if self.count >= self.skip:
                        self.watch.on_log(LogEntry.from_api(json.loads(data)))
                    self.count += 1
        except Exception:  # noqa: BLE001 - a broken stream loses no line: `finish`'s caller asks for the rest
            return

    def finish(self, seconds: float) -> None:
        """Give the stream `seconds` to end by itself, then stop it (and stop printing)."""
        self.thread.join(seconds)
        with self.lock:
            self.stopped = True
            self.count = max(self.count, self.skip)
        self.client.close()


def _yaml(documents: Any) -> str:
    return "\n---\n".join(doc.strip("\n") for doc in documents) + "\n"


def _constraints(answer: dict[str, Any], origin: str) -> list[str]:
    """The server's problems with a document, named after its file (ours name it `document N`)."""
    text = answer.get("constraints")
    if not text:
        return []
    name = f"document {answer.get('index', 0)}"
    return [origin + line[len(name) :] if line.startswith(name) else f"{origin}: {line}" for line in text.splitlines()]


def _flow_row(data: dict[str, Any]) -> FlowRow:
    return FlowRow(
        data["namespace"],
        data["id"],
        int(data.get("revision") or 1),
        data.get("source") or "",
        data.get("updated") or "",
    )


def _kv_path(namespace: str, key: str) -> str:
    return f"/namespaces/{namespace}/kv/{quote(key, safe='')}"


def _kv_text(value: Any) -> str:
    """The body Kestra's KV API reads: an ION literal (a duration, which ION has not, as its ISO text)."""
    from kestractl import ion

    return ion.dumps(iso_duration(value) if isinstance(value, timedelta) else value)
