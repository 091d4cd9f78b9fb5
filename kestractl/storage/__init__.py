"""Internal storage: `kestra:///…` URIs kept in a folder (the default, beside the database) or in an
S3-compatible bucket (`--storage s3://bucket/prefix`), behind one protocol."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from kestractl.errors import StorageError
from kestractl.storage.base import SCHEME, Entry, Storage, execution_prefix, slugify
from kestractl.storage.local import LocalStorage

if TYPE_CHECKING:
    from kestractl.config import Home

__all__ = ["SCHEME", "Entry", "LocalStorage", "Storage", "execution_prefix", "open_storage", "slugify"]

URL_VARIABLE = "KESTRACTL_STORAGE_URL"


def open_storage(home: Home) -> Storage:
    """The storage the home names (`--storage`), else `KESTRACTL_STORAGE_URL`, else the home's `storage` folder."""
    url = home.storage_url or os.environ.get(URL_VARIABLE) or ""
    if not url:
        return LocalStorage(home.storage_root)
    if url.startswith("file://"):
        return LocalStorage(_folder(url.removeprefix("file://")))
    if url.startswith("s3://"):
        from kestractl.storage.s3 import S3Storage  # boto3, only for a bucket

        return S3Storage(url)
    raise StorageError(f"--storage: '{url}' is not a storage URL (file:///folder or s3://bucket/prefix)")


def _folder(path: str) -> Path:
    folder = Path(path).expanduser()
    if not folder.is_absolute():
        raise StorageError(f"--storage: 'file://{path}' needs an absolute folder (file:///…)")
    folder.mkdir(parents=True, exist_ok=True)
    return folder
