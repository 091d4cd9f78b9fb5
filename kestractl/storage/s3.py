"""Internal storage in an S3-compatible bucket (`--storage s3://bucket/prefix`), shared by every process and
machine that names it: Kestra's `storage.type: s3`.

The endpoint, region and credentials are boto3's usual environment (AWS_ENDPOINT_URL or AWS_ENDPOINT_URL_S3,
AWS_DEFAULT_REGION, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, or a profile). Objects are keyed
`<prefix>/<storage path>`. Files a task needs on disk are downloaded (streamed, multipart for big ones) into a
folder of this process's own, which mirrors the bucket's layout: the `LocalStorage` checks on it (no `..`, no
escape) are the checks on keys, and files written there are uploaded by `upload`/`publish`.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import tempfile
from collections.abc import Hashable, Iterator
from pathlib import Path
from typing import Any

from kestractl.errors import StorageError
from kestractl.storage.base import SCHEME, Entry, name_parts
from kestractl.storage.local import LocalStorage, partial_path
from kestractl.storage.packed import DELETED, PACK, Read

_MISSING = ("404", "NoSuchKey", "NotFound")


class _Missing(StorageError):
    """No object at that key (callers turn it into their own "not found")."""


class S3Storage(LocalStorage):
    def __init__(self, url: str) -> None:
        bucket, _, prefix = url.removeprefix("s3://").partition("/")
        if not bucket:
            raise StorageError(f"--storage: '{url}' names no bucket (s3://bucket/prefix)")
        self.url, self.bucket, self.prefix = url, bucket, prefix.strip("/")
        cache = tempfile.mkdtemp(prefix="kestractl-s3-")
        atexit.register(shutil.rmtree, cache, True)
        super().__init__(Path(cache))
        self.client = _client(url)
        from boto3.s3.transfer import TransferConfig  # type: ignore[import-untyped]

        # Parts of 8 MB, four at a time: a big file moves in at most ~32 MB of buffers, whatever its size.
        self.transfer = TransferConfig(multipart_chunksize=8 * 1024 * 1024, max_concurrency=4)
        with self._errors():
            self.client.head_bucket(Bucket=bucket)

    @contextlib.contextmanager
    def _errors(self) -> Iterator[None]:
        """Any failure of the bucket (credentials, endpoint, permission) as one line naming the storage."""
        from botocore.exceptions import BotoCoreError, ClientError  # type: ignore[import-untyped]

        try:
            yield
        except ClientError as exc:
            error = exc.response.get("Error", {})
            code, reason = str(error.get("Code", "?")), error.get("Message") or error.get("Code") or str(exc)
            kind = _Missing if code in _MISSING else StorageError
            raise kind(f"S3 storage {self.url}: {reason} ({code})") from None
        except BotoCoreError as exc:
            raise StorageError(f"S3 storage {self.url}: {exc}") from None

    def key(self, path: Path) -> str:
        """The object key of a local copy's path (already checked to be inside the copies' folder)."""
        relative = path.relative_to(self._real_root).as_posix()
        if relative == ".":
            return self.prefix
        return f"{self.prefix}/{relative}" if self.prefix else relative

    def _key_prefix(self, storage_path: str) -> str:
        """The key prefix of a storage folder, ending in `/` (the bucket's whole prefix for `/`)."""
        folder = self.key(self.local_path(SCHEME + "/" + storage_path.strip("/")))
        return folder + "/" if folder else ""

    def _uri(self, key: str) -> str:
        return SCHEME + "/" + key.removeprefix(f"{self.prefix}/" if self.prefix else "")

    def local_copy(self, uri: str) -> Path:
        """The object downloaded (streamed to a temporary name, then renamed), else the pack's member written out;
        neither leaves no file."""
        path = self.local_path(uri)
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = partial_path(path)  # workers may fetch it at once
        try:
            with self._errors():
                self.client.download_file(self.bucket, self.key(path), str(partial), Config=self.transfer)
            os.replace(partial, path)
        except _Missing:
            path.unlink(missing_ok=True)
            self._unpack(path)
        finally:
            partial.unlink(missing_ok=True)
        return path

    def local_folder(self, uri: str) -> Path:
        for found, _ in self.files_under(uri.removeprefix(SCHEME)):
            self.local_copy(found)
        return self.local_path(uri)

    def upload(self, path: Path, uri: str) -> None:
        with self._errors():
            self.client.upload_file(str(path), self.bucket, self.key(self.local_path(uri)), Config=self.transfer)

    def publish(self, prefix: str) -> None:
        """Upload what was written under the folder, then drop the local files: a long-lived worker's disk holds
        only what its running tasks use (a later reader downloads again)."""
        folder = self.local_path(SCHEME + "/" + prefix.strip("/"))
        for path in sorted(folder.rglob("*")) if folder.is_dir() else []:
            if path.is_file() and not path.name.endswith(".part"):
                self.upload(path, SCHEME + "/" + path.relative_to(self._real_root).as_posix())
        shutil.rmtree(folder, ignore_errors=True)

    def put(self, path: str, source: Path | bytes) -> str:
        uri = SCHEME + "/" + path.lstrip("/")
        key = self.key(self.local_path(uri))
        with self._errors():
            if isinstance(source, bytes):
                self.client.put_object(Bucket=self.bucket, Key=key, Body=source)
            else:
                self.client.upload_file(str(source), self.bucket, key, Config=self.transfer)
        return uri

    def read_plain(self, uri: str) -> bytes | None:
        """A bucket has no links: a path of names only is read as it is; None for any other (`.`, `..`)."""
        return None if name_parts(uri.removeprefix(SCHEME).lstrip("/")) is None else self.read_bytes(uri)

    def read_bytes(self, uri: str, path: Path | None = None) -> bytes:
        path = path or self.local_path(uri)
        key = self.key(path)
        try:
            with self._errors():
                body: bytes = self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read()
                return body
        except _Missing:
            data = self._member_bytes(path)
        if data is None:
            raise StorageError(f"file not found in internal storage: {uri} (no object {key} in {self.url})")
        return data

    @contextlib.contextmanager
    def _pack(self, folder: str, dir_fd: int | None = None) -> Iterator[tuple[Read, Hashable]]:
        """Ranged reads of the folder's pack object, and its ETag (FileNotFoundError when the folder has none)."""
        key = self.key(Path(folder, PACK))

        def read(start: int, length: int) -> bytes:
            span = f"bytes={start}-{start + length - 1}" if start >= 0 else f"bytes=-{length}"
            with self._errors():
                body: bytes = self.client.get_object(Bucket=self.bucket, Key=key, Range=span)["Body"].read()
                return body

        try:
            with self._errors():
                version = self.client.head_object(Bucket=self.bucket, Key=key)["ETag"]
        except _Missing:
            raise FileNotFoundError(key) from None
        yield read, version

    def _marked(self, folder: str, name: str, dir_fd: int | None = None) -> bool:
        return self._stored_size(Path(folder, DELETED + name)) is not None

    def _objects(self, key_prefix: str, delimiter: str = "") -> Iterator[dict[str, Any]]:
        """The pages of a listing (keys under `key_prefix`; with `delimiter`, its direct children only)."""
        pages = self.client.get_paginator("list_objects_v2")
        extra = {"Delimiter": delimiter} if delimiter else {}
        with self._errors():
            yield from pages.paginate(Bucket=self.bucket, Prefix=key_prefix, **extra)

    def files_under(self, prefix: str) -> list[tuple[str, int]]:
        found = [
            (self._uri(item["Key"]), int(item["Size"]))
            for page in self._objects(self._key_prefix(prefix))
            for item in page.get("Contents", [])
            if not item["Key"].endswith("/")
        ]
        return self._unpacked(found)

    def entries(self, prefix: str) -> list[Entry]:
        start = self._key_prefix(prefix)
        found: list[Entry] = []
        for page in self._objects(start, "/"):
            found += [Entry(p["Prefix"][len(start) :].rstrip("/"), True) for p in page.get("CommonPrefixes", [])]
            found += [_object_entry(item, start) for item in page.get("Contents", []) if item["Key"] != start]
        return self._entries_unpacked(self.local_path(SCHEME + "/" + prefix.strip("/")), found)

    def _stored_size(self, path: Path) -> int | None:
        """The object's size, asked of the bucket (nothing downloaded); None when there is no object."""
        try:
            with self._errors():
                head: dict[str, Any] = self.client.head_object(Bucket=self.bucket, Key=self.key(path))
                return int(head["ContentLength"])
        except _Missing:
            return None

    def _remove(self, path: Path) -> bool:
        if self._stored_size(path) is None:
            return False
        with self._errors():
            self.client.delete_object(Bucket=self.bucket, Key=self.key(path))
        path.unlink(missing_ok=True)
        return True

    def delete_under(self, prefix: str) -> int:
        files = len(self.files_under(prefix))
        keys = [item["Key"] for page in self._objects(self._key_prefix(prefix)) for item in page.get("Contents", [])]
        for start in range(0, len(keys), 1000):  # S3's limit per DeleteObjects request
            batch = [{"Key": key} for key in keys[start : start + 1000]]
            with self._errors():
                self.client.delete_objects(Bucket=self.bucket, Delete={"Objects": batch, "Quiet": True})
        shutil.rmtree(self.local_path(SCHEME + "/" + prefix.strip("/")), ignore_errors=True)
        return files

    def make_folder(self, prefix: str) -> None:
        with self._errors():
            self.client.put_object(Bucket=self.bucket, Key=self._key_prefix(prefix), Body=b"")


def _object_entry(item: dict[str, Any], start: str) -> Entry:
    name = item["Key"][len(start) :]
    modified = int(item["LastModified"].timestamp() * 1000)
    return Entry(name.rstrip("/"), name.endswith("/"), int(item["Size"]), modified)


def _client(url: str) -> Any:
    """A boto3 S3 client from the environment; a missing boto3 is one line saying how to get it."""
    try:
        import boto3  # type: ignore[import-untyped]
    except ImportError:
        raise StorageError(f"--storage {url} needs boto3: pip install 'kestractl[s3]'") from None
    from botocore.config import Config  # type: ignore[import-untyped]

    # Path-style addressing: what MinIO, Ceph, moto and most self-hosted endpoints expect.
    return boto3.client("s3", config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 3}))
