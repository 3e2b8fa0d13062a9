"""Install what requirements.txt needs and the image does not provide into the training venv.

pip run by the venv's interpreter sees the image's site-packages (the venv has
--system-site-packages), so it skips what the image already satisfies and installs the rest into
the venv (a version the image lacks goes into the venv, which comes first on sys.path). uv is
faster but looks only at the venv itself, so when uv is there (on PATH or beside RT_PYTHON):
  1. `pip install --dry-run --report` resolves against venv + image: the list of what is missing,
     each with the exact file pip chose;
  2. `uv pip install --no-deps` installs exactly those files (its cache on the volume).
Anything uv cannot take (a local folder, VCS or editable requirement), an old pip without --report,
or a failing uv falls back to plain `pip install -r requirements.txt`. The caches (uv's, pip's) live
on the volume (<workspace>/.cache), so a new container on the same volume reuses the downloads.
"""
from __future__ import annotations

import json
import os
import shutil
from typing import Callable, Dict, List, Mapping, Optional

from .children import Children

PIP_FLAGS = ["--disable-pip-version-check"]


class InstallError(Exception):
    def __init__(self, message: str, code: int = 1):
        super().__init__(message)
        self.code = code


def find_uv(python: str, environ: Mapping[str, str]) -> Optional[str]:
    """uv on PATH, else beside the image's interpreter (RT_PYTHON's bin folder), else None."""
    found = shutil.which("uv", path=environ.get("PATH"))
    if found:
        return found
    exe = shutil.which(python, path=environ.get("PATH"))
    if exe:
        beside = os.path.join(os.path.dirname(exe), "uv")
        if os.access(beside, os.X_OK):
            return beside
    return None


def pins_from_report(report: dict) -> Optional[List[str]]:
    """`name @ url` for each item pip would install; None when one is not a plain archive (a local
    folder, a VCS checkout, an editable), which only pip itself installs."""
    pins = []
    for item in report.get("install", []):
        info = item.get("download_info") or {}
        url = info.get("url")
        name = (item.get("metadata") or {}).get("name")
        if not url or not name or "archive_info" not in info:
            return None
        pins.append(f"{name} @ {url}")
    return pins


class Installer:
    def __init__(self, venv_python: str, python: str, children: Children, note: Callable[[str], None],
                 cache_dir: Optional[str], environ: Mapping[str, str]):
        self.venv_python = venv_python
        self.python = python
        self.children = children
        self.note = note
        self.cache_dir = cache_dir
        self.environ = dict(environ)
        self.work_dir = os.path.dirname(os.path.dirname(venv_python))

    def env(self) -> Dict[str, str]:
        env = dict(self.environ)
        if self.cache_dir:
            env.setdefault("PIP_CACHE_DIR", os.path.join(self.cache_dir, "pip"))
            env.setdefault("UV_CACHE_DIR", os.path.join(self.cache_dir, "uv"))
        return env

    def pip(self, *args: str) -> List[str]:
        return [self.venv_python, "-m", "pip", *args, *PIP_FLAGS]

    def install(self, requirements: str) -> str:
        """Installs; returns which way ("uv", "pip", "nothing missing"). Raises InstallError."""
        uv = find_uv(self.python, self.environ)
        if uv:
            way = self._with_uv(uv, requirements)
            if way:
                return way
        self.note("venv: running pip install -r requirements.txt (what the image lacks)")
        code = self.children.run(self.pip("install", "-r", requirements), self.env())
        if code != 0:
            raise InstallError(f"pip install -r requirements.txt failed (exit {code}); see the pip output above", code)
        return "pip"

    def _with_uv(self, uv: str, requirements: str) -> Optional[str]:
        report_path = os.path.join(self.work_dir, f".rt-pip-report.{os.getpid()}.json")
        try:
            self.note("venv: resolving requirements.txt against the venv and the image (pip --dry-run)")
            code = self.children.run(self.pip("install", "--dry-run", "--quiet", "--report", report_path,
                                              "-r", requirements), self.env())
            if code != 0:
                self.note(f"venv: pip --dry-run failed (exit {code}); falling back to pip install")
                return None
            try:
                with open(report_path, encoding="utf-8") as fh:
                    report = json.load(fh)
            except (OSError, ValueError):
                self.note("venv: pip wrote no readable --report; falling back to pip install")
                return None
        finally:
            try:
                os.unlink(report_path)
            except OSError:
                pass
        pins = pins_from_report(report)
        if pins is None:
            self.note("venv: a requirement is a folder, VCS or editable one; pip installs it")
            return None
        if not pins:
            self.note("venv: the venv and the image already satisfy requirements.txt; nothing to install")
            return "nothing missing"
        pins_path = os.path.join(self.work_dir, ".rt-missing.txt")
        with open(pins_path, "w", encoding="utf-8") as fh:
            fh.write("".join(f"{p}\n" for p in pins))
        names = ", ".join(p.split(" @ ", 1)[0] for p in pins)
        self.note(f"venv: uv installs {len(pins)} missing package(s): {names}")
        code = self.children.run([uv, "pip", "install", "--python", self.venv_python, "--no-deps",
                                  "-r", pins_path], self.env())
        if code != 0:
            self.note(f"venv: uv failed (exit {code}); falling back to pip install")
            return None
        return "uv"
