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
    storage_url: str | None = None  # `--storage`: internal storage elsewhere than `storage_root` (kestractl.storage)

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


# Kestra's `kestra.encryption.secret-key`: a base64 AES key (128, 192 or 256 bits). The KESTRA_ name is what a
# Kestra deployment already sets; kestractl's own name wins when both are there.
ENCRYPTION_KEY_VARIABLES = ("KESTRACTL_ENCRYPTION_SECRET_KEY", "KESTRA_ENCRYPTION_SECRET_KEY")


def encryption_secret_key() -> str | None:
    """The configured key for `encrypt()`/`decrypt()`, or None when none is set."""
    for name in ENCRYPTION_KEY_VARIABLES:
        value = os.environ.get(name, "").strip()
        if value:
            return value
    return None
