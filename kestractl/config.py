"""Where kestractl keeps its state: one home folder holding the SQLite file and internal storage.

The home comes from `--home`, else `KESTRACTL_HOME`, else the platform's user data folder.
Nothing here touches the disk at import time.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

DB_NAME = "kestractl.db"
STORAGE_DIR = "storage"


@dataclass(frozen=True)
class Home:
    root: Path

    @property
    def db_path(self) -> Path:
        return self.root / DB_NAME

    @property
    def storage_root(self) -> Path:
        return self.root / STORAGE_DIR

    def ensure(self) -> Home:
        self.storage_root.mkdir(parents=True, exist_ok=True)
        return self


def resolve_home(option: str | Path | None = None) -> Home:
    """`--home` wins over `KESTRACTL_HOME`, which wins over the platform default."""
    if option:
        return Home(Path(option).expanduser())
    env = os.environ.get("KESTRACTL_HOME")
    if env:
        return Home(Path(env).expanduser())
    import platformdirs

    return Home(Path(platformdirs.user_data_dir("kestractl")))


def cache_root() -> Path:
    """Where rebuildable things live (script environments): `KESTRACTL_CACHE_DIR`, else the user cache folder.

    Not under a home: an environment depends only on its interpreter and packages, so every home shares it.
    """
    env = os.environ.get("KESTRACTL_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("kestractl"))
