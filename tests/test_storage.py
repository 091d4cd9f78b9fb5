"""Internal storage: URIs map inside the storage folder and nowhere else."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from conftest import Cli

import kestractl.storage.local as storage_module
from kestractl.errors import StorageError
from kestractl.storage import LocalStorage, execution_prefix, slugify
from kestractl.storage.packed import PackWriter


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


def test_read_through_a_link_inside_an_allowed_folder_reaches_nothing_outside_it(tmp_path: Path) -> None:
    """The URI's text lies in the execution's folder, but a link on its way (a folder or the file itself) leads to
    another execution's file: `read()` checks where it leads, as for any path that is not plain."""
    from kestractl.engine.contexts import Contexts, LogBuffer
    from kestractl.model import Execution
    from kestractl.store import open_store

    storage = LocalStorage(tmp_path / "storage")
    other = storage.local_path(storage.put(execution_prefix("ns", "f", "e9") + "/inputs/x/c.txt", b"others"))
    own = storage.local_path(storage.put(execution_prefix("ns", "f", "e1") + "/inputs/x/a.txt", b"mine"))
    (own.parent / "file-link.txt").symlink_to(other)
    (own.parent.parent / "folder-link").symlink_to(other.parent)
    contexts = Contexts(open_store(tmp_path / "k.db"), storage, LogBuffer(open_store(tmp_path / "k.db")))
    execution = Execution("e1", "ns", "f", 1)
    assert contexts._read(execution, "kestra:///ns/f/executions/e1/inputs/x/a.txt") == "mine"
    for linked in ("inputs/x/file-link.txt", "inputs/folder-link/c.txt"):
        uri = f"kestra:///ns/f/executions/e1/{linked}"
        assert storage.read_plain(uri) is None
        with pytest.raises(StorageError, match="didn't belong to the current execution"):
            contexts._read(execution, uri)


def test_a_plain_read_walks_from_the_root_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A child reading its item opens its folder by path once; the file, the pack and the deletion mark are looked
    up in that folder (four walks from `/` before)."""
    storage = LocalStorage(tmp_path / "storage")
    uri = storage.put("/ns/f/executions/e1/a.txt", b"x")
    walked: list[str] = []
    opened = os.open

    def open_(path: str, flags: int, mode: int = 0o777, *, dir_fd: int | None = None) -> int:
        if dir_fd is None:
            walked.append(path)
        return opened(path, flags, mode, dir_fd=dir_fd)

    with storage.local_path("kestra:///ns/f/executions/e1/.kestractl.pack").open("wb") as out:
        pack = PackWriter(out, ".txt")
        pack.add(b"member")
        pack.close()
    monkeypatch.setattr(os, "open", open_)
    assert (
        storage.read_plain(uri) == b"x" and storage.read_plain("kestra:///ns/f/executions/e1/000001.txt") == b"member"
    )
    assert walked == [str(tmp_path.resolve() / "storage" / "ns" / "f" / "executions" / "e1")] * 2


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
