"""`--storage s3://…`: internal storage in a bucket of a real S3-compatible server (moto's, on 127.0.0.1), shared
by separate kestractl processes (on one SQLite home, or on PostgreSQL with a home each, as separate machines);
the server's file API on it; the protocol's operations on it; a wrong bucket or endpoint in one line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import runs, state, wait_for

from kestractl.config import Home
from kestractl.errors import KestraError, StorageError
from kestractl.namespace_files import NamespaceFiles
from kestractl.server.app import ServerOptions, StandaloneServer
from kestractl.storage.packed import PACK
from kestractl.storage.s3 import S3Storage
from tests.services.s3 import S3Server, free_port, s3, s3_server, s3_url  # noqa: F401  (the fixtures)
from tests.services.stores import fresh_database, postgres  # noqa: F401  (the session fixture)

CHILD = """
id: s3-child
namespace: tests.s3
inputs:
  - id: items
    type: STRING
tasks:
  - id: count
    type: io.kestra.plugin.scripts.shell.Commands
    runner: PROCESS
    commands:
      - wc -l < "{{ inputs.items }}"
outputs:
  - id: first
    type: STRING
    value: "{{ read(inputs.items) | split('\\n') | first }}"
"""

PARENT = """
id: s3-parent
namespace: tests.s3
inputs:
  - id: file
    type: FILE
tasks:
  - id: remember
    type: io.kestra.plugin.core.kv.Set
    key: lines
    value: "{{ read(inputs.file) | trim }}"
  - id: each
    type: io.kestra.plugin.core.flow.ForEachItem
    items: "{{ inputs.file }}"
    batch:
      rows: 2
    namespace: tests.s3
    flowId: s3-child
    inputs:
      items: "{{ taskrun.items }}"
  - id: merged
    type: io.kestra.plugin.core.debug.Return
    format: "{{ read(outputs.each_merge.subflowOutputs) }}"
  - id: shell
    type: io.kestra.plugin.scripts.shell.Commands
    runner: PROCESS
    namespaceFiles:
      enabled: true
    inputFiles:
      input.txt: "{{ inputs.file }}"
    outputFiles:
      - out.txt
    commands:
      - cat scripts/header.txt input.txt > out.txt
  - id: write
    type: io.kestra.plugin.core.storage.Write
    content: "{{ kv('greeting') }} / {{ read('scripts/header.txt') | trim }} / {{ kv('lines') | length }}"
    extension: .txt
  - id: share
    type: io.kestra.plugin.core.namespace.UploadFiles
    filesMap:
      shared/from-run.txt: "{{ outputs.write.uri }}"
outputs:
  - id: written
    type: STRING
    value: "{{ outputs.write.uri }}"
  - id: shelled
    type: STRING
    value: "{{ outputs.shell.outputFiles['out.txt'] }}"
"""


READER = """
id: s3-reader
namespace: tests.s3
tasks:
  - id: read
    type: io.kestra.plugin.core.debug.Return
    format: "{{ read('shared/from-run.txt') }}"
"""


def kestractl(
    home: Path, storage: str, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """One kestractl process of its own (its own S3 client and local copies), on the shared home and bucket."""
    command = [sys.executable, "-m", "kestractl", "--home", str(home), "--storage", storage, *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=180, env=env or dict(os.environ))


def objects(server: S3Server, url: str) -> dict[str, bytes]:
    bucket, _, prefix = url.removeprefix("s3://").partition("/")
    client = server.client()
    keys = [o["Key"] for o in client.list_objects_v2(Bucket=bucket, Prefix=prefix + "/").get("Contents", [])]
    return {k[len(prefix) + 1 :]: client.get_object(Bucket=bucket, Key=k)["Body"].read() for k in keys}


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest) -> Iterator[str | None]:
    """None: every process shares one home and its SQLite file. A URL: a fresh PostgreSQL database, and each
    process has a home of its own, as processes on separate machines would."""
    if request.param == "sqlite":
        yield None
        return
    yield from fresh_database(request.getfixturevalue("postgres"))


def test_a_flow_and_its_files_live_in_the_bucket_and_other_processes_read_them(
    tmp_path: Path,
    s3: S3Server,  # noqa: F811
    s3_url: str,  # noqa: F811
    database: str | None,
) -> None:
    flows, scripts = tmp_path / "flows", tmp_path / "scripts"
    flows.mkdir()
    (flows / "child.yaml").write_text(CHILD)
    (flows / "parent.yaml").write_text(PARENT)
    (flows / "reader.yaml").write_text(READER)
    (scripts / "scripts").mkdir(parents=True)
    (scripts / "scripts" / "header.txt").write_text("header\n")
    items = tmp_path / "items.txt"
    items.write_text("a\nb\nc\nd\ne\n")

    def process(number: int, *args: str) -> subprocess.CompletedProcess[str]:
        home = tmp_path / ("home" if database is None else f"home{number}")
        return kestractl(home, s3_url, *(("--database", database) if database else ()), *args)

    # Process 1 deploys and writes a namespace file and a KV value; process 2 runs the flow, whose tasks read them.
    for args in (("flow", "deploy", str(flows)), ("namespace", "files", "update", "tests.s3", str(scripts), "/")):
        assert process(1, *args).returncode == 0
    assert process(1, "kv", "set", "tests.s3", "greeting", "hello").returncode == 0
    done = process(2, "execute", "tests.s3", "s3-parent", "--input", f"file={items}", "--json")
    assert done.returncode == 0, done.stderr
    execution: dict[str, Any] = json.loads(done.stdout)
    assert state(execution) == "SUCCESS"
    assert runs(execution, "each_items")[0]["outputs"]["numberOfBatches"] == 3
    merged = runs(execution, "merged")[0]["outputs"]["value"].splitlines()
    assert merged == ['{first:"a"}', '{first:"c"}', '{first:"e"}']
    # Process 3 reads the files the workers of process 2 wrote: only the bucket holds them.
    stored = objects(s3, s3_url)
    prefix = f"tests/s3/s3-parent/executions/{execution['id']}/"
    assert any(k.startswith(prefix + "inputs/file/") for k in stored)
    # The three batches are one object (a pack the bucket serves them from by ranged reads), beside their listing.
    assert sorted(k.rsplit("/", 1)[1] for k in stored if "/tasks/each-split/" in k) == [PACK, "splits.txt"]
    assert stored["tests/s3/_files/scripts/header.txt"] == b"header\n"
    assert any(k.startswith("tests/s3/_kv/greeting") for k in stored)
    assert [p for p in tmp_path.glob("home*/storage/**/*") if p.is_file()] == []
    written = process(3, "executions", "file", execution["id"], execution["outputs"]["written"])
    assert written.stdout == "hello / header / 9"
    shelled = process(3, "executions", "file", execution["id"], execution["outputs"]["shelled"])
    assert shelled.stdout == "header\na\nb\nc\nd\ne\n"
    assert process(3, "kv", "get", "tests.s3", "lines").stdout == "a\nb\nc\nd\ne\n"
    # Process 4: a task reads the namespace file a task of process 2 wrote.
    reader = process(4, "execute", "tests.s3", "s3-reader", "--json")
    assert reader.returncode == 0, reader.stderr
    assert runs(json.loads(reader.stdout), "read")[0]["outputs"]["value"] == "hello / header / 9"


def test_the_protocol_on_a_bucket(s3_url: str, tmp_path: Path) -> None:  # noqa: F811
    storage = S3Storage(s3_url)
    uri = storage.put("/ns/f/executions/e1/a.txt", b"hello")
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(9 * 1024 * 1024))  # above boto3's multipart threshold: uploaded in parts
    big_uri = storage.put("/ns/f/executions/e1/tasks/t/big.bin", big)
    assert storage.read_bytes(uri) == b"hello" and storage.exists(uri) and storage.size(uri) == 5
    assert storage.local_copy(big_uri).read_bytes() == big.read_bytes()
    assert [u for u, _ in storage.files_under("/ns/f/executions/e1")] == [uri, big_uri]
    assert [(e.name, e.is_dir) for e in storage.entries("/ns/f/executions/e1")] == [("a.txt", False), ("tasks", True)]
    assert not storage.local_copy("kestra:///ns/f/executions/e1/missing.txt").exists()
    with pytest.raises(StorageError, match="file not found in internal storage"):
        storage.read_bytes("kestra:///ns/f/executions/e1/missing.txt")
    with pytest.raises(StorageError, match="outside internal storage"):
        storage.read_bytes("kestra:///ns/../../etc/passwd")
    assert storage.delete_under("/ns/f/executions/e1") == 2 and storage.files_under("/ns") == []


def test_namespace_folders_on_a_bucket(s3_url: str) -> None:  # noqa: F811
    files = NamespaceFiles(S3Storage(s3_url), "company.team")
    files.create_directory("empty")
    files.put("a/b.sql", b"select 1")
    assert [(d["fileName"], d["type"]) for d in files.directory()] == [("a", "Directory"), ("empty", "Directory")]
    files.move("a", "c")
    assert files.paths() == ["c/b.sql"] and files.get("c/b.sql") == b"select 1"
    assert files.delete("c/b.sql") and [d["fileName"] for d in files.directory()] == ["empty"]


def test_a_missing_bucket_or_an_unreachable_endpoint_is_one_line(s3: S3Server, tmp_path: Path) -> None:  # noqa: F811
    missing = kestractl(tmp_path, "s3://no-such-bucket/x", "flow", "list")
    assert missing.returncode == 1 and "no-such-bucket" in missing.stderr
    assert len(missing.stderr.strip().splitlines()) == 1 and "Traceback" not in missing.stderr
    env = {**os.environ, "AWS_ENDPOINT_URL": f"http://127.0.0.1:{free_port()}"}
    unreachable = kestractl(tmp_path, "s3://bucket/x", "flow", "list", env=env)
    assert unreachable.returncode == 1 and "Could not connect" in unreachable.stderr
    assert len(unreachable.stderr.strip().splitlines()) == 1
    wrong = kestractl(tmp_path, "ftp://host/x", "flow", "list")
    assert wrong.returncode == 1 and "not a storage URL" in wrong.stderr


def test_the_server_api_uploads_downloads_and_previews_through_the_bucket(
    tmp_path: Path,
    s3: S3Server,  # noqa: F811
    s3_url: str,  # noqa: F811
) -> None:
    """A FILE input posted to the API goes to the bucket; the file download, preview and namespace file come back."""
    flows = tmp_path / "flows"
    flows.mkdir()
    (flows / "files.yaml").write_text(
        "id: files\nnamespace: tests.s3\ninputs:\n  - id: upload\n    type: FILE\ntasks:\n"
        "  - id: r\n    type: io.kestra.plugin.core.debug.Return\n    format: '{{ read(inputs.upload) }}'\n"
    )
    options = ServerOptions(flow_path=flows, port=0, grace_seconds=2, tick_seconds=0.05, watch_seconds=0.1)
    server = StandaloneServer(Home(tmp_path / "home", s3_url).ensure(), options, say=lambda level, message: None)
    thread = threading.Thread(target=server.serve, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.port}/api/v1"

    def call(path: str, body: bytes | None = None, headers: dict[str, str] | None = None) -> bytes:
        request = urllib.request.Request(base + path, data=body, headers=headers or {})
        with urllib.request.urlopen(request, timeout=30) as response:
            data: bytes = response.read()
            return data

    try:
        wait_for(lambda: _deployed(server), 10)
        body = (
            b'--xyz\r\nContent-Disposition: form-data; name="upload"; filename="a.txt"\r\n\r\n'
            b"line one\nline two\n\r\n--xyz--\r\n"
        )
        created = json.loads(
            call("/executions/tests.s3/files?wait=true", body, {"Content-Type": "multipart/form-data; boundary=xyz"})
        )
        assert created["state"]["current"] == "SUCCESS", created
        assert created["taskRunList"][0]["outputs"]["value"] == "line one\nline two\n"
        uri = created["inputs"]["upload"]
        assert any(key.endswith("/inputs/upload/a.txt") for key in objects(s3, s3_url))
        assert call(f"/executions/{created['id']}/file?path={uri}") == b"line one\nline two\n"
        preview = json.loads(call(f"/executions/{created['id']}/file/preview?path={uri}&maxRows=1"))
        assert preview["content"] == "line one" and preview["truncated"] is True
        NamespaceFiles(S3Storage(s3_url), "tests.s3").put("queries/q.sql", b"select 1")
        assert call("/namespaces/tests.s3/files?path=/queries/q.sql") == b"select 1"
    finally:
        server.stop_event.set()
        thread.join(15)


def _deployed(server: StandaloneServer) -> bool:
    """Whether the watched folder's flow is deployed yet."""
    try:
        server.runner.flows.get("tests.s3", "files")
        return True
    except KestraError:
        return False
