"""Packed batches (storage/packed.py): a folder's batches stored as one file and served by name as files of their
own, in a folder and in a bucket; ForEachItem's children read, copy, download and restart on their batch."""

from __future__ import annotations

import json
import threading
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import Cli, runs, state, wait_for

import kestractl.storage.packed as packed
from kestractl.config import Home, resolve_home
from kestractl.errors import KestraError, StorageError
from kestractl.server.app import ServerOptions, StandaloneServer
from kestractl.storage import LocalStorage, Storage
from kestractl.storage.packed import PACK, PackWriter
from tests.services.s3 import S3Server, free_port, s3, s3_server, s3_url  # noqa: F401  (the fixtures)

FOLDER = "/ns/f/executions/e1/tasks/each-split/r1"
URI = f"kestra://{FOLDER}"


@pytest.fixture(params=["folder", "bucket"])
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Storage]:
    if request.param == "folder":
        yield LocalStorage(tmp_path / "storage")
        return
    from kestractl.storage.s3 import S3Storage

    yield S3Storage(request.getfixturevalue("s3_url"))


def write_pack(storage: Storage, batches: list[bytes], extension: str = ".txt") -> list[str]:
    """The batches packed as the split packs them (written at the local path, then published); their URIs."""
    path = storage.local_path(f"{URI}/{PACK}")
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as out:
        pack = PackWriter(out, extension)
        names = [pack.add(data) for data in batches]
        pack.close()
    storage.publish(FOLDER)
    return [f"{URI}/{name}" for name in names]


def test_members_read_list_and_copy_as_files_of_their_own(storage: Storage) -> None:
    uris = write_pack(storage, [b"a\n", b"", b"c\nd\n"])
    assert [u.rsplit("/", 1)[1] for u in uris] == ["000001.txt", "000002.txt", "000003.txt"]
    assert [storage.read_bytes(u) for u in uris] == [b"a\n", b"", b"c\nd\n"]
    assert [storage.size(u) for u in uris] == [2, 0, 4] and all(storage.exists(u) for u in uris)
    assert storage.local_copy(uris[2]).read_bytes() == b"c\nd\n"
    assert storage.read_under("/ns/f/executions/e1", uris[0]) == b"a\n"
    assert storage.path_under("/ns/f/executions/e1", uris[0]).read_bytes() == b"a\n"
    assert storage.files_under(FOLDER) == list(zip(uris, [2, 0, 4], strict=True))
    assert [(e.name, e.size) for e in storage.entries(FOLDER)] == [
        ("000001.txt", 2),
        ("000002.txt", 0),
        ("000003.txt", 4),
    ]
    assert (storage.local_folder(URI) / "000002.txt").read_bytes() == b""
    for other in ("000004.txt", "000001.csv", "1.txt", "0000001.txt", PACK + "x"):
        assert not storage.exists(f"{URI}/{other}") and storage.size(f"{URI}/{other}") is None
        with pytest.raises(StorageError, match="file not found in internal storage"):
            storage.read_bytes(f"{URI}/{other}")


def test_a_plain_read_serves_members_and_files_as_read_bytes_does(storage: Storage) -> None:
    """`read_plain` (a child reading its item) agrees with `read_bytes`: a file of the member's name first, a deleted
    member missing, a path with `..` left to the caller."""
    first, second, third = write_pack(storage, [b"one\n", b"two\n", b""])
    storage.put(second.removeprefix("kestra://"), b"2\n")
    assert storage.delete(third)
    assert [storage.read_plain(u) for u in (first, second)] == [b"one\n", b"2\n"]
    for missing in (third, f"{URI}/000009.txt"):
        with pytest.raises(StorageError, match="file not found in internal storage"):
            storage.read_plain(missing)
    assert storage.read_plain(f"{URI}/../r1/000001.txt") is None


def test_a_member_written_again_or_deleted_is_so_for_every_reader(storage: Storage) -> None:
    """The pack is never rewritten: a file of the member's name comes first, and a deletion leaves a mark."""
    first, second, third = write_pack(storage, [b"one\n", b"two\n", b"three\n"])
    storage.put(second.removeprefix("kestra://"), b"2\n")
    assert storage.read_bytes(second) == b"2\n" and storage.files_under(FOLDER)[1] == (second, 2)
    assert storage.delete(first) and not storage.exists(first) and not storage.delete(first)
    with pytest.raises(StorageError, match="file not found"):
        storage.read_bytes(first)
    assert storage.delete(second) and not storage.exists(second)  # the packed "two" does not come back
    assert storage.files_under(FOLDER) == [(third, 6)] and [e.name for e in storage.entries(FOLDER)] == ["000003.txt"]
    assert storage.read_bytes(third) == b"three\n"
    assert storage.delete_under(FOLDER) == 1 and storage.files_under(FOLDER) == []


def test_a_pack_cut_short_or_a_stranger_of_its_name_serves_nothing(storage: Storage) -> None:
    uris = write_pack(storage, [b"one\n", b"two\n"])
    whole = storage.read_bytes(f"{URI}/{PACK}")
    for broken in (whole[:-3], whole[:5], b"not a pack at all"):
        storage.put(f"{FOLDER}/{PACK}", broken)
        assert not storage.exists(uris[0]) and storage.files_under(FOLDER) == []


def test_a_pack_index_is_read_once_and_again_when_the_pack_changes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    storage = LocalStorage(tmp_path / "storage")
    loads: list[int] = []
    load = packed.load
    monkeypatch.setattr(packed, "load", lambda read: loads.append(1) or load(read))
    uris = write_pack(storage, [f"{n}\n".encode() for n in range(100)])
    assert [storage.read_bytes(u) for u in uris] == [f"{n}\n".encode() for n in range(100)]
    assert len(loads) == 1
    uris = write_pack(storage, [b"new\n"])  # the same folder's pack written again (another size, another time)
    assert storage.read_bytes(uris[0]) == b"new\n" and not storage.exists(f"{URI}/000002.txt")
    assert len(loads) == 2


CHILD = """
id: child
namespace: tests.packed
inputs:
  - id: items
    type: STRING
tasks:
  - id: check
    type: io.kestra.plugin.core.execution.Fail
    condition: "{{ (kv('ready', errorOnMissing=false) ?? 'no') == 'no' and trigger.iteration == 1 }}"
  - id: value
    type: io.kestra.plugin.core.debug.Return
    format: "{{ read(inputs.items) | trim }}"
  - id: size
    type: io.kestra.plugin.core.storage.Size
    uri: "{{ inputs.items }}"
  - id: reverse
    type: io.kestra.plugin.core.storage.Reverse
    from: "{{ inputs.items }}"
  - id: shell
    type: io.kestra.plugin.scripts.shell.Commands
    runner: PROCESS
    commands:
      - wc -l < "{{ inputs.items }}"
outputs:
  - id: value
    type: STRING
    value: "{{ outputs.value.value }} / {{ outputs.size.size }} / {{ read(outputs.reverse.uri) | trim }}"
"""

PARENT = """
id: parent
namespace: tests.packed
inputs:
  - id: file
    type: FILE
tasks:
  - id: each
    type: io.kestra.plugin.core.flow.ForEachItem
    items: "{{ inputs.file }}"
    batch:
      rows: 2
    namespace: tests.packed
    flowId: child
    transmitFailed: false
    inputs:
      items: "{{ taskrun.items }}"
"""


def _deploy(cli: Cli, tmp_path: Path) -> Path:
    for name, text in (("child.yaml", CHILD), ("parent.yaml", PARENT)):
        (tmp_path / name).write_text(text)
        assert cli("flow", "deploy", str(tmp_path / name)).exit_code == 0
    items = tmp_path / "items.txt"
    items.write_text("a\nb\nc\nd\ne\n")
    return items


def _children(cli: Cli) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = json.loads(cli("executions", "list", "--flow", "child", "--json").stdout)
    return sorted(found, key=lambda c: c["trigger"]["variables"]["iteration"])


def test_children_read_copy_and_download_their_batch_and_a_restart_reads_it_again(cli: Cli, tmp_path: Path) -> None:
    """`read()`, Size, Reverse and a shell command on the batch; the CLI lists and downloads the batches; the child
    that failed (iteration 1, before the KV value) reads its batch when restarted."""
    code, execution = cli.execute("tests.packed", "parent", "--input", f"file={_deploy(cli, tmp_path)}")
    assert code == 0 and runs(execution, "each_items")[0]["outputs"]["iterations"]["FAILED"] == 1
    split = _split_folder(cli, execution)
    # One file for the three batches; a batch is written out only for the tasks that need a file (Reverse, shell).
    assert sorted(p.name for p in split.iterdir()) == [PACK, "000001.txt", "000003.txt", "splits.txt"]
    children = _children(cli)
    assert [state(c) for c in children] == ["SUCCESS", "FAILED", "SUCCESS"]
    assert [(c.get("outputs") or {}).get("value") for c in children] == ["a\nb / 4 / b\na", None, "e / 2 / e"]
    batches = [c["inputs"]["items"] for c in children]
    listed = cli("executions", "files", execution["id"]).stdout
    assert all(uri in listed for uri in batches) and PACK not in listed
    assert cli("executions", "file", execution["id"], batches[1]).stdout == "c\nd\n"
    assert cli("kv", "set", "tests.packed", "ready", "yes").exit_code == 0
    restarted = json.loads(cli("executions", "restart", children[1]["id"], "--json").stdout)
    assert state(restarted) == "SUCCESS" and restarted["outputs"]["value"] == "c\nd / 4 / d\nc"


def _split_folder(cli: Cli, execution: dict[str, Any]) -> Path:
    uri: str = runs(execution, "each_split")[0]["outputs"]["splits"]
    return LocalStorage(resolve_home(cli.home).storage_root).local_path(uri).parent


def test_partitions_dealt_a_line_at_a_time_are_files_of_their_own(cli: Cli, tmp_path: Path) -> None:
    items = _deploy(cli, tmp_path)
    (tmp_path / "parent.yaml").write_text(PARENT.replace("rows: 2", "partitions: 2"))
    assert cli("kv", "set", "tests.packed", "ready", "yes").exit_code == 0
    assert cli("flow", "deploy", str(tmp_path / "parent.yaml")).exit_code == 0
    code, execution = cli.execute("tests.packed", "parent", "--input", f"file={items}")
    assert code == 0 and sorted(p.name for p in _split_folder(cli, execution).iterdir()) == [
        "000001.txt",
        "000002.txt",
        "splits.txt",
    ]
    assert [c["outputs"]["value"] for c in _children(cli)] == ["a\nc\ne / 6 / e\nc\na", "b\nd / 4 / d\nb"]


def test_the_server_downloads_and_previews_a_batch(tmp_path: Path) -> None:
    flows = tmp_path / "flows"
    flows.mkdir()
    (flows / "child.yaml").write_text(CHILD)
    (flows / "parent.yaml").write_text(PARENT)
    options = ServerOptions(flow_path=flows, port=0, grace_seconds=2, tick_seconds=0.05, watch_seconds=0.1)
    server = StandaloneServer(Home(tmp_path / "home").ensure(), options, say=lambda level, message: None)
    thread = threading.Thread(target=server.serve, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.port}/api/v1"

    def call(path: str, body: bytes | None = None, headers: dict[str, str] | None = None) -> bytes:
        request = urllib.request.Request(base + path, data=body, headers=headers or {})
        with urllib.request.urlopen(request, timeout=60) as response:
            data: bytes = response.read()
            return data

    try:
        wait_for(lambda: _deployed(server), 10)
        body = b'--xyz\r\nContent-Disposition: form-data; name="file"; filename="a.txt"\r\n\r\na\nb\nc\r\n--xyz--\r\n'
        form = {"Content-Type": "multipart/form-data; boundary=xyz"}
        created = json.loads(call("/executions/tests.packed/parent?wait=true", body, form))
        assert created["state"]["current"] == "SUCCESS", created
        listing = runs(created, "each_split")[0]["outputs"]["splits"]
        batches = call(f"/executions/{created['id']}/file?path={listing}").decode().split()
        assert [call(f"/executions/{created['id']}/file?path={uri}") for uri in batches] == [b"a\nb\n", b"c\n"]
        preview = json.loads(call(f"/executions/{created['id']}/file/preview?path={batches[0]}&maxRows=1"))
        assert preview["content"] == "a" and preview["truncated"] is True
    finally:
        server.stop_event.set()
        thread.join(15)


def _deployed(server: StandaloneServer) -> bool:
    try:
        server.runner.flows.get("tests.packed", "parent")
        server.runner.flows.get("tests.packed", "child")
        return True
    except KestraError:
        return False
