"""The `__main__` of kestractl.pyz: unpack the dependencies once into a cache folder, then run kestractl from it.

A warm start costs one `isdir`: the archive holds only this file and one compressed tar per Python version, so
Python's zipimport reads a two-entry directory, not the thousands of files a shiv or pex archive lists (and
shiv re-reads it on every start: 2.5× the `--version` of a pip install, measured side by side). Compiled
dependencies (duckdb, cryptography, jq…) are built per CPython version, hence one tar per version. Standard
library only: this runs before anything is unpacked.
"""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False  # typing itself costs 2 ms of a 25 ms `--version`
if TYPE_CHECKING:
    from typing import IO

BUILD_ID = "dev"  # the payload's digest, written in by build_onefile: a new build never reuses an old folder
TAG = f"cp{sys.version_info[0]}{sys.version_info[1]}"


def cache_folder() -> str:
    """`KESTRACTL_ONEFILE_CACHE`, else the user cache folder (XDG), then one folder per build and Python."""
    root = os.environ.get("KESTRACTL_ONEFILE_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "kestractl", "onefile"
    )
    return os.path.join(root, f"{BUILD_ID}-{TAG}")


def unpack(archive: str, folder: str) -> None:
    """Extract this Python's payload beside `folder`, compile it (pycs that need no source check, so a copied
    folder stays valid), then rename it into place: a concurrent first start loses the race harmlessly."""
    import tempfile
    import zipfile

    with zipfile.ZipFile(archive) as outer:
        member = f"payload-{TAG}.tar.gz"
        if member not in outer.namelist():
            built = " ".join(f"python{n[10]}.{n[11:-7]}" for n in outer.namelist() if n.startswith("payload-cp"))
            sys.exit(f"kestractl: {archive} was built for another Python: run it with {built}")
        os.makedirs(os.path.dirname(folder), exist_ok=True)
        scratch = tempfile.mkdtemp(prefix=".unpacking-", dir=os.path.dirname(folder))
        try:
            with outer.open(member) as stream:
                _extract(stream, scratch)
            _place(scratch, folder)
        finally:
            if os.path.isdir(scratch):
                import shutil

                shutil.rmtree(scratch, ignore_errors=True)


def _place(scratch: str, folder: str) -> None:
    try:
        os.rename(scratch, folder)
    except OSError:
        if not os.path.isdir(folder):  # else another first start put the same build in place meanwhile
            raise


def _extract(stream: IO[bytes], scratch: str) -> None:
    import compileall
    import py_compile
    import tarfile

    with tarfile.open(fileobj=stream, mode="r|gz") as tar:
        tar.extraction_filter = getattr(tarfile, "data_filter", None)  # 3.11.4+: refuses paths outside scratch
        tar.extractall(scratch)
    while stream.read(1 << 20):  # to the end, where zipfile checks the CRC: tar stops quietly at a damaged header
        pass
    mode = py_compile.PycInvalidationMode.UNCHECKED_HASH
    compileall.compile_dir(scratch, quiet=2, invalidation_mode=mode)


def main() -> None:
    folder = cache_folder()
    if not os.path.isdir(folder):
        archive = os.path.dirname(__file__)
        try:
            unpack(archive, folder)
        except OSError as error:
            sys.exit(f"kestractl: cannot unpack into {os.path.dirname(folder)}: {error.strerror or error} "
                     "(set KESTRACTL_ONEFILE_CACHE to a writable folder)")  # fmt: skip
        except Exception as error:  # zlib's, tarfile's: a damaged copy of the file, said in one line
            sys.exit(f"kestractl: {archive} is damaged ({error}): download or build it again")
    sys.path.insert(0, folder)  # before the interpreter's own site-packages, which stay for plugins
    from kestractl.cli import main as kestractl

    sys.exit(kestractl())


if __name__ == "__main__":
    main()
