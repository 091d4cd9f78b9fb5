"""Internal storage: URIs map inside the storage folder and nowhere else."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from conftest import Cli

import kestractl.storage.local as storage_module
from kestractl.errors import StorageError
from kestractl.storage import LocalStorage, execution_prefix, slugify


def test_uris_round_trip_and_list(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path / "storage")
    uri = storage.put(execution_prefix("io.kestra", "my_flow", "e1") + "/tasks/a/r/out.txt", b"data")
    assert uri == "kestra:///io/kestra/my-flow/executions/e1/tasks/a/r/out.txt"
    assert storage.read_bytes(uri) == b"data"
    assert storage.files_under("/io/kestra/my-flow/executions/e1") == [(uri, 4)]
    assert slugify("each_split") == "each-split"


@pytest.mark.parametrize(
    "uri",
    [
        "kestra:///../outside.txt",
        "kestra:///io/../../etc/passwd",
        "file:///etc/passwd",
        "/etc/passwd",
        "kestra:///a\x00b",
    ],
)
def test_paths_that_escape_or_are_not_internal_are_refused(tmp_path: Path, uri: str) -> None:
    storage = LocalStorage(tmp_path / "storage")
    (tmp_path / "outside.txt").write_text("secret")
    with pytest.raises(StorageError):
        storage.read_bytes(uri)


def test_read_is_limited_to_the_execution_and_its_parent(tmp_path: Path) -> None:
    from kestractl.engine.contexts import Contexts, LogBuffer
    from kestractl.model import Execution
    from kestractl.store import open_store

    storage = LocalStorage(tmp_path / "storage")
    contexts = Contexts(open_store(tmp_path / "k.db"), storage, LogBuffer(open_store(tmp_path / "k.db")))
    own = storage.put(execution_prefix("ns", "f", "e1") + "/inputs/x/a.txt", b"mine")
    parent = storage.put(execution_prefix("ns", "p", "e0") + "/tasks/t/r/b.txt", b"parents")
    other = storage.put(execution_prefix("ns", "f", "e9") + "/inputs/x/c.txt", b"others")
    child = Execution(
        "e1", "ns", "f", 1, trigger={"variables": {"executionId": "e0", "namespace": "ns", "flowId": "p"}}
    )
    assert contexts._read(child, own) == "mine"
    assert contexts._read(child, parent) == "parents"
    with pytest.raises(StorageError, match="didn't belong to the current execution"):
        contexts._read(child, other)


def test_dot_dot_inside_an_allowed_prefix_cannot_reach_another_execution(tmp_path: Path) -> None:
    from kestractl.engine.contexts import Contexts, LogBuffer
    from kestractl.model import Execution
    from kestractl.store import open_store

    storage = LocalStorage(tmp_path / "storage")
    storage.put(execution_prefix("ns", "f", "e9") + "/inputs/x/c.txt", b"others")
    sneaky = "kestra://" + execution_prefix("ns", "f", "e1") + "/../e9/inputs/x/c.txt"
    with pytest.raises(StorageError):
        storage.read_under(execution_prefix("ns", "f", "e1"), sneaky)
    contexts = Contexts(open_store(tmp_path / "k.db"), storage, LogBuffer(open_store(tmp_path / "k.db")))
    with pytest.raises(StorageError, match="didn't belong"):
        contexts._read(Execution("e1", "ns", "f", 1), sneaky)
    (tmp_path / "storage" / "ns" / "f" / "executions" / "e1").mkdir(parents=True)
    link = tmp_path / "storage" / "ns" / "f" / "executions" / "e1" / "link.txt"
    link.symlink_to(tmp_path / "outside.txt")
    (tmp_path / "outside.txt").write_text("secret")
    with pytest.raises(StorageError):
        storage.read_under(execution_prefix("ns", "f", "e1"), "kestra:///ns/f/executions/e1/link.txt")


def test_a_plain_path_costs_one_walk_by_the_kernel(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A child reading its item: no walk from `/` (`resolve`) nor an `lstat` per part, but one open of its folder
    that asks the kernel where it led; a link or a missing part still goes through `resolve`."""
    storage = LocalStorage(tmp_path / "storage")
    uri = storage.put("/ns/f/executions/e1/a.txt", b"x")
    expected, seen = tmp_path.resolve() / "storage" / "ns" / "f" / "executions" / "e1" / "a.txt", list[str]()
    lstat, resolve = os.lstat, Path.resolve
    monkeypatch.setattr(os, "lstat", lambda path, *a, **k: seen.append(str(path)) or lstat(path, *a, **k))
    monkeypatch.setattr(Path, "resolve", lambda self, strict=False: pytest.fail(f"{self} resolved"))
    assert storage.local_path(uri) == expected
    assert seen == []
    monkeypatch.setattr(Path, "resolve", resolve)
    assert storage.local_path("kestra:///ns/f/missing/b.txt").name == "b.txt"
    (expected.parent / "link").symlink_to(expected.parent)
    assert storage.local_path("kestra:///ns/f/executions/e1/link/a.txt") == expected


def test_a_dangling_link_named_like_a_missing_file_is_not_a_plain_path(tmp_path: Path) -> None:
    """A file not written yet may be written through `local_path`: a link with its name, even one leading nowhere
    yet, must not send the write outside internal storage."""
    storage = LocalStorage(tmp_path / "storage")
    folder = storage.local_path(storage.put("/ns/f/executions/e1/a.txt", b"x")).parent
    (folder / "b.txt").symlink_to(tmp_path / "outside.txt")
    with pytest.raises(StorageError, match="outside internal storage"):
        storage.local_path("kestra:///ns/f/executions/e1/b.txt")
    assert storage.local_path("kestra:///ns/f/executions/e1/c.txt") == folder / "c.txt"


def test_where_the_kernel_cannot_say_a_plain_path_costs_one_lstat_per_part(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without `/proc` (or off Linux) the parts below the root are looked at one by one, still without `resolve`."""
    storage = LocalStorage(tmp_path / "storage")
    uri = storage.put("/ns/f/executions/e1/a.txt", b"x")
    expected, seen = tmp_path.resolve() / "storage" / "ns" / "f" / "executions" / "e1" / "a.txt", list[str]()
    lstat = os.lstat
    monkeypatch.setattr(storage_module, "_fd_path", lambda fd: None)
    monkeypatch.setattr(os, "lstat", lambda path, *a, **k: seen.append(str(path)) or lstat(path, *a, **k))
    monkeypatch.setattr(Path, "resolve", lambda self, strict=False: pytest.fail(f"{self} resolved"))
    assert storage.local_path(uri) == expected
    assert len(seen) == 5


def test_a_file_url_puts_internal_storage_in_that_folder(cli: Cli, tmp_path: Path) -> None:
    """`--storage file:///…` (a shared folder): KV values and namespace files land there, not in the home."""
    shared = tmp_path / "shared"
    assert cli("--storage", f"file://{shared}", "kv", "set", "dev", "k", "v").exit_code == 0
    assert (shared / "dev" / "_kv" / "k.ion").is_file() and not (cli.home / "storage" / "dev").exists()
    assert cli("--storage", f"file://{shared}", "kv", "get", "dev", "k").stdout == "v\n"
    relative = cli("--storage", "file://relative/folder", "kv", "get", "dev", "k")
    assert relative.exit_code == 1 and "absolute folder" in relative.stderr
