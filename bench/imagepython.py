"""A stand-in for a RunPod image's interpreter: a Python installation of its own (not a venv), with
its own site-packages, as /usr/bin/python3 of a pytorch image has torch in its dist-packages.

A venv made from a venv's python points at the *base* installation, so `--system-site-packages`
would not see the stand-in's packages; hence a real prefix: <dest>/bin/python3.X is a copy of this
machine's interpreter binary (small when it links libpython), <dest>/lib/python3.X/ holds symlinks
to the standard library and an empty site-packages of its own. Python finds its prefix from the
binary's location, so <dest> is a separate installation that shares the stdlib files.
"""

from __future__ import annotations

import os
import shutil
import sys
import sysconfig
from pathlib import Path


def _base_binary() -> Path:
    exe = getattr(sys, "_base_executable", None) or sys.executable
    return Path(os.path.realpath(exe))


def make_image_python(dest: Path) -> Path:
    """Creates the installation at dest (replacing one there); returns <dest>/bin/python3."""
    if dest.exists():
        shutil.rmtree(dest)
    ver = f"python{sys.version_info.major}.{sys.version_info.minor}"
    stdlib = Path(sysconfig.get_paths()["stdlib"]).resolve()
    base_stdlib = Path(sys.base_prefix) / "lib" / ver
    if base_stdlib.is_dir():
        stdlib = base_stdlib.resolve()
    (dest / "bin").mkdir(parents=True)
    lib = dest / "lib" / ver
    lib.mkdir(parents=True)
    for entry in stdlib.iterdir():
        if entry.name not in ("site-packages", "dist-packages"):
            (lib / entry.name).symlink_to(entry)
    (lib / "site-packages").mkdir()
    binary = dest / "bin" / ver
    shutil.copy2(_base_binary(), binary)
    (dest / "bin" / "python3").symlink_to(ver)
    return dest / "bin" / "python3"


def site_packages(image_python: Path) -> Path:
    ver = f"python{sys.version_info.major}.{sys.version_info.minor}"
    return image_python.resolve().parent.parent / "lib" / ver / "site-packages"


def link_pip(image_python: Path, copy: bool = False) -> None:
    """The image gets this machine's pip (symlinked, or copied for a kept image; no install): images ship pip."""
    import pip  # the running interpreter's pip

    src = Path(pip.__file__).resolve().parent
    site = site_packages(image_python)
    for item in [src, *src.parent.glob("pip-*.dist-info")]:
        if copy:
            shutil.copytree(item, site / item.name, symlinks=True)
        else:
            (site / item.name).symlink_to(item)
