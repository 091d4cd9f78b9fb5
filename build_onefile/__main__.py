"""`python -m build_onefile [--output F] [--extra NAME]...`: kestractl and its dependencies in one zipapp.

pip installs this checkout (with the wheels of this Python and platform) into a scratch folder; that folder
becomes one gzipped tar inside a PEP 441 zipapp whose `__main__` is bootstrap.py. The file runs with the
CPython version that built it (`./kestractl.pyz`, or `python3.X kestractl.pyz`).
"""

from __future__ import annotations

import argparse
import hashlib
import subprocess
import sys
import sysconfig
import tarfile
import tempfile
import zipapp
from pathlib import Path

from build_onefile import bootstrap

ROOT = Path(__file__).resolve().parents[1]


def install(target: Path, extras: list[str]) -> None:
    """pip, as configured on this machine, puts kestractl and its dependencies in `target` (no pycs: the
    bootstrap compiles them with the Python that runs the file)."""
    project = f"{ROOT}[{','.join(extras)}]" if extras else str(ROOT)
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "install", "--quiet", "--no-compile"]
    subprocess.run([*pip, "--target", str(target), project], check=True)


def payload(site_packages: Path, folder: Path) -> str:
    """The tar of `site_packages` for this Python; returns its digest (the build's id)."""
    tar_path = folder / f"payload-{bootstrap.TAG}.tar.gz"
    with tarfile.open(tar_path, "w:gz", compresslevel=6) as tar:
        for path in sorted(site_packages.iterdir()):
            tar.add(path, arcname=path.name)
    digest = hashlib.sha256()
    with tar_path.open("rb") as stream:
        while chunk := stream.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()[:16]


def build(output: Path, extras: list[str]) -> Path:
    with tempfile.TemporaryDirectory(prefix="kestractl-onefile-") as scratch:
        site_packages, archive = Path(scratch, "site-packages"), Path(scratch, "archive")
        archive.mkdir()
        install(site_packages, extras)
        build_id = payload(site_packages, archive)
        source = Path(bootstrap.__file__).read_text()
        (archive / "__main__.py").write_text(source.replace('BUILD_ID = "dev"', f'BUILD_ID = "{build_id}"', 1))
        output.parent.mkdir(parents=True, exist_ok=True)
        zipapp.create_archive(archive, output, interpreter="/usr/bin/env python3")
    return output


def main() -> int:
    default = ROOT / "dist" / f"kestractl-{sysconfig.get_platform()}.pyz"
    parser = argparse.ArgumentParser(prog="python -m build_onefile", description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=default, help=f"the file to write (default {default})")
    parser.add_argument("--extra", action="append", default=[], help="an optional extra to include (postgres, s3…)")
    args = parser.parse_args()
    try:
        built = build(args.output.resolve(), args.extra)
    except subprocess.CalledProcessError:
        print("build_onefile: pip could not install kestractl and its dependencies (see above)", file=sys.stderr)
        return 1
    print(f"{built} ({built.stat().st_size / 1e6:.0f} MB, CPython {sys.version_info[0]}.{sys.version_info[1]})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
