"""`python -m build_onefile [--python 3.X]... [--extra NAME]... [--output F]`: kestractl in one zipapp.

pip installs this checkout with its dependencies' wheels into a scratch folder per CPython version (compiled
wheels such as duckdb's are built per version); each folder becomes one gzipped tar inside a PEP 441 zipapp
whose `__main__` is bootstrap.py. With no `--python`, the file is for the Python that builds it.
"""

from __future__ import annotations

import argparse
import hashlib
import platform
import subprocess
import sys
import sysconfig
import tarfile
import tempfile
import zipapp
from pathlib import Path

from build_onefile import bootstrap

ROOT = Path(__file__).resolve().parents[1]
PIP = [sys.executable, "-m", "pip", "--disable-pip-version-check"]
THIS_PYTHON = f"{sys.version_info[0]}.{sys.version_info[1]}"


def wheel(folder: Path) -> Path:
    """kestractl's own wheel (pure Python: one for every version)."""
    subprocess.run([*PIP, "wheel", "--quiet", "--no-deps", "--wheel-dir", str(folder), str(ROOT)], check=True)
    (built,) = folder.glob("kestractl-*.whl")
    return built


def install(requirement: str, target: Path, version: str) -> None:
    """pip, as configured on this machine, puts `requirement` and its dependencies in `target`: this Python's
    wheels, or another version's binary wheels for this platform (no pycs: the bootstrap compiles them with the
    Python that runs the file)."""
    command = [*PIP, "install", "--quiet", "--no-compile", "--target", str(target), requirement]
    subprocess.run(command + ([] if version == THIS_PYTHON else other_python(version)), check=True)


def other_python(version: str) -> list[str]:
    """pip's options for another CPython's wheels on this machine's (glibc) Linux."""
    libc, libc_version = platform.libc_ver()
    if libc != "glibc":
        raise SystemExit(f"build_onefile: --python {version} (not this Python) is for glibc Linux only")
    machine, newest = platform.machine(), int(libc_version.split(".")[1])
    manylinux = [f"manylinux_2_{minor}_{machine}" for minor in range(newest, 16, -1)] + [f"manylinux2014_{machine}"]
    tag = "cp" + version.replace(".", "")
    options = ["--python-version", version, "--implementation", "cp", "--abi", tag, "--abi", "abi3", "--abi", "none"]
    return [*options, "--only-binary=:all:", *(f"--platform={name}" for name in manylinux)]


def payload(site_packages: Path, tar_path: Path) -> bytes:
    """The tar of `site_packages`; returns its digest."""
    with tarfile.open(tar_path, "w:gz", compresslevel=6) as tar:
        for path in sorted(site_packages.iterdir()):
            tar.add(path, arcname=path.name)
    digest = hashlib.sha256()
    with tar_path.open("rb") as stream:
        while chunk := stream.read(1 << 20):
            digest.update(chunk)
    return digest.digest()


def build(output: Path, versions: list[str], extras: list[str]) -> Path:
    with tempfile.TemporaryDirectory(prefix="kestractl-onefile-") as scratch:
        archive, digest = Path(scratch, "archive"), hashlib.sha256()
        archive.mkdir()
        requirement = str(wheel(Path(scratch, "wheel"))) + (f"[{','.join(extras)}]" if extras else "")
        for version in versions:
            site_packages = Path(scratch, version)
            install(requirement, site_packages, version)
            digest.update(payload(site_packages, archive / f"payload-cp{version.replace('.', '')}.tar.gz"))
        source = Path(bootstrap.__file__).read_text()
        build_id = f'BUILD_ID = "{digest.hexdigest()[:16]}"'
        (archive / "__main__.py").write_text(source.replace('BUILD_ID = "dev"', build_id, 1))
        output.parent.mkdir(parents=True, exist_ok=True)
        zipapp.create_archive(archive, output, interpreter="/usr/bin/env python3")
    return output


def main() -> int:
    default = ROOT / "dist" / f"kestractl-{sysconfig.get_platform()}.pyz"
    parser = argparse.ArgumentParser(prog="python -m build_onefile", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--python", action="append", metavar="3.X", help=f"a CPython to build for (default {THIS_PYTHON})"
    )
    parser.add_argument("--extra", action="append", default=[], help="an optional extra to include (postgres, s3…)")
    parser.add_argument("--output", type=Path, default=default, help=f"the file to write (default {default})")
    args = parser.parse_args()
    versions = args.python or [THIS_PYTHON]
    try:
        built = build(args.output.resolve(), versions, args.extra)
    except subprocess.CalledProcessError:
        print("build_onefile: pip could not install kestractl and its dependencies (see above)", file=sys.stderr)
        return 1
    print(f"{built} ({built.stat().st_size / 1e6:.0f} MB, CPython {' '.join(versions)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
