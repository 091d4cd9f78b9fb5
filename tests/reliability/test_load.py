"""Load without loss: 20 concurrent clients send 5,000 webhook calls over loopback while the CLI
deploys and executes on the same home. Every call gets a 2xx and every execution ends SUCCESS."""

from __future__ import annotations

import http.client
import json
import signal
import threading
import time
from pathlib import Path

from test_restarts import EXE, Server

HOOK = """id: bench
namespace: load
tasks:
  - id: out
    type: io.kestra.plugin.core.output.OutputValues
    values:
      body: "{{ trigger.body }}"
  - id: log
    type: io.kestra.plugin.core.log.Log
    message: "{{ outputs.out.values.body }}"
triggers:
  - id: hook
    type: io.kestra.plugin.core.trigger.Webhook
    key: k
"""
CLIENTS, PER_CLIENT = 20, 250


def _client(port: int, index: int, codes: dict[int, int], lock: threading.Lock) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    for j in range(PER_CLIENT):
        body = json.dumps({"client": index, "call": j})
        conn.request("POST", "/api/v1/executions/webhook/load/bench/k", body, {"Content-Type": "application/json"})
        response = conn.getresponse()
        response.read()
        with lock:
            codes[response.status] = codes.get(response.status, 0) + 1
    conn.close()


def test_five_thousand_webhook_calls_all_run(tmp_path: Path) -> None:
    import subprocess

    server = Server(tmp_path)
    (server.flows / "bench.yaml").write_text(HOOK)
    server.start()
    port = int(server.url.rsplit(":", 1)[-1])
    codes: dict[int, int] = {}
    lock = threading.Lock()
    threads = [threading.Thread(target=_client, args=(port, i, codes, lock)) for i in range(CLIENTS)]
    try:
        for thread in threads:
            thread.start()
        side = tmp_path / "side.yaml"
        side.write_text(
            "id: side\nnamespace: load\ntasks:\n  - id: r\n    type: io.kestra.plugin.core.debug.Return\n"
            "    format: beside the load\n"
        )
        deployed = subprocess.run([EXE, "flow", "deploy", str(side)], env=server.env, capture_output=True, text=True)
        executed = subprocess.run([EXE, "execute", "load", "side"], env=server.env, capture_output=True, text=True)
        for thread in threads:
            thread.join(120)
        assert deployed.returncode == 0 and executed.returncode == 0, deployed.stderr + executed.stderr
        assert "locked" not in deployed.stderr + executed.stderr
        assert codes == {200: CLIENTS * PER_CLIENT}
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            done = server.call("GET", "/api/v1/executions/search?flowId=bench&state=SUCCESS&size=1")["total"]
            if done == CLIENTS * PER_CLIENT:
                break
            time.sleep(0.5)
        total = server.call("GET", "/api/v1/executions/search?flowId=bench&size=1")["total"]
        assert (done, total) == (CLIENTS * PER_CLIENT, CLIENTS * PER_CLIENT)
    finally:
        server.stop(signal.SIGTERM)


def _until_refused(port: int, accepted: list[str], lock: threading.Lock) -> None:
    """Send webhook calls until the server stops answering; keep the ids it accepted."""
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        for _ in range(10_000):
            conn.request("POST", "/api/v1/executions/webhook/load/bench/k", "{}", {"Content-Type": "application/json"})
            response = conn.getresponse()
            body = response.read()
            if response.status != 200:
                return
            with lock:
                accepted.append(json.loads(body)["id"])
    except (OSError, http.client.HTTPException):
        return


def test_sigterm_under_load_exits_cleanly_and_loses_nothing_accepted(tmp_path: Path) -> None:
    server = Server(tmp_path)
    (server.flows / "bench.yaml").write_text(HOOK)
    server.start()
    port = int(server.url.rsplit(":", 1)[-1])
    accepted: list[str] = []
    lock = threading.Lock()
    threads = [threading.Thread(target=_until_refused, args=(port, accepted, lock)) for _ in range(10)]
    for thread in threads:
        thread.start()
    time.sleep(1.0)
    assert server.stop(signal.SIGTERM) == 0
    for thread in threads:
        thread.join(30)
    assert len(accepted) > 50
    server.start()
    try:
        deadline = time.monotonic() + 60
        pending = set(accepted)
        while pending and time.monotonic() < deadline:
            found = server.call("GET", "/api/v1/executions/search?flowId=bench&state=SUCCESS&size=100000")
            pending -= {e["id"] for e in found["results"]}
            time.sleep(0.3)
        assert not pending, f"{len(pending)} accepted executions never finished"
    finally:
        server.stop(signal.SIGTERM)
