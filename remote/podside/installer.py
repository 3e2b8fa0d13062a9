"""Install what requirements.txt needs and the image does not provide into the training venv.

pip run by the venv's interpreter sees the image's site-packages (the venv has
--system-site-packages), so it skips what the image already satisfies and installs the rest into
the venv (a version the image lacks goes into the venv, which comes first on sys.path). uv is
much faster but looks only at the venv itself, so when uv is there (on PATH or beside RT_PYTHON):
  1. `uv pip compile requirements.txt -o <lock>`, the lock filled beforehand with the image's
     distributions (Name==version, from the probe): uv prefers those versions wherever the
     requirements allow them, so the resolution keeps what the image has;
  2. what the resolution pins that the image does not have (another version, a new package, a URL
     or path) is installed with `uv pip install --no-deps`, with the index options uv emitted.
A failing uv (an unsupported requirement line, a resolution uv refuses) falls back to plain
`pip install -r requirements.txt`. uv reads no pip configuration: the requirements file's own index
options apply, and PIP_INDEX_URL / PIP_EXTRA_INDEX_URL / PIP_FIND_LINKS / PIP_NO_INDEX are passed on as
uv's own. uv resolves like pip across indexes (--index-strategy unsafe-best-match). The caches (uv's,
pip's) live on the volume (<workspace>/.cache), so a new container on the same volume reuses the downloads.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from typing import Callable, Dict, Iterable, List, Mapping, Optional, Sequence

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


_PIP_TO_UV = {
    "PIP_INDEX_URL": "UV_INDEX_URL",
    "PIP_EXTRA_INDEX_URL": "UV_EXTRA_INDEX_URL",
    "PIP_FIND_LINKS": "UV_FIND_LINKS",
    "PIP_NO_INDEX": "UV_NO_INDEX",
}


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _public(version: str) -> str:
    return version.split("+", 1)[0]


def missing_lines(locked: str, image_dists: Iterable[str]) -> Optional[tuple[list[str], list[str]]]:
    """(option lines, requirement lines the image does not have) of a `uv pip compile` output; None
    when uv pinned another version of a package the image has: the image's version may simply not
    be in the index (a +cu124 build, a nightly), so pip, which sees installed packages, decides."""
    have: Dict[str, str] = {}
    for d in image_dists:
        name, _, version = d.partition("==")
        have[_norm(name)] = version
    options, missing = [], []
    for raw in locked.splitlines():
        line = raw.split(" #", 1)[0].strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("-"):
            options.append(line)
            continue
        m = re.match(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]*\])?\s*(==|@)\s*([^\s;]+)", line)
        name = _norm(m.group(1)) if m else None
        if m and name in have:
            if m.group(3) == "==" and _public(m.group(4)) == _public(have[name]):
                continue
            return None
        missing.append(line)
    return options, missing


_INDEX_OPTIONS = ("--no-index", "--index-url", "-i", "--extra-index-url", "--find-links", "-f", "--trusted-host")


def index_options(requirements: str) -> List[str]:
    """The index option lines of requirements.txt (not -r/-c/-e: the pins already say what to install)."""
    try:
        with open(requirements, encoding="utf-8") as fh:
            lines = [ln.split(" #", 1)[0].strip() for ln in fh]
    except OSError:
        return []
    return [ln for ln in lines if ln.split("=", 1)[0].split(" ", 1)[0] in _INDEX_OPTIONS]


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
    def __init__(
        self,
        venv_python: str,
        python: str,
        children: Children,
        note: Callable[[str], None],
        cache_dir: Optional[str],
        environ: Mapping[str, str],
        image_dists: Sequence[str] = (),
    ):
        self.venv_python = venv_python
        self.image_dists = list(image_dists)
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
        env = self.env()
        for pip_name, uv_name in _PIP_TO_UV.items():
            if env.get(pip_name) and not env.get(uv_name):
                env[uv_name] = env[pip_name]
        found = self._uv_resolve(uv, requirements, env)
        if found is None:
            found = self._pip_resolve(requirements)
        if found is None:
            return None
        lines = found
        if not lines[1]:
            self.note("venv: the venv and the image already satisfy requirements.txt; nothing to install")
            return "nothing missing"
        options, missing = lines
        for line in index_options(requirements):  # uv emits no --no-index: take the file's own
            if line not in options:
                options.append(line)
        pins_path = os.path.join(self.work_dir, ".rt-missing.txt")
        with open(pins_path, "w", encoding="utf-8") as fh:
            fh.write("".join(f"{line}\n" for line in options + missing))
        names = ", ".join(re.split(r"[=<>!~ @\[;]", line, maxsplit=1)[0] for line in missing)
        self.note(f"venv: uv installs {len(missing)} missing package(s): {names}")
        code = self.children.run(
            [
                uv,
                "pip",
                "install",
                "--quiet",
                "--python",
                self.venv_python,
                "--no-deps",
                "--index-strategy",
                "unsafe-best-match",
                "-r",
                pins_path,
            ],
            env,
        )
        if code != 0:
            self.note(f"venv: uv failed (exit {code}); falling back to pip install")
            return None
        return "uv"

    def _uv_resolve(self, uv: str, requirements: str, env: Mapping[str, str]):
        """uv's resolution, preferring the image's versions; None when it fails or disagrees with the image."""
        lock = os.path.join(self.work_dir, ".rt-uv-lock.txt")
        with open(lock, "w", encoding="utf-8") as fh:  # the preferences: what the image has
            fh.write("".join(f"{d}\n" for d in self.image_dists))
        self.note("venv: resolving requirements.txt with uv, preferring the image's versions")
        code = self.children.run(
            [
                uv,
                "pip",
                "compile",
                "--quiet",
                "--no-header",
                "--no-annotate",
                "--emit-index-url",
                "--emit-find-links",
                "--index-strategy",
                "unsafe-best-match",
                "--python",
                self.venv_python,
                requirements,
                "-o",
                lock,
            ],
            env,
        )
        try:
            with open(lock, encoding="utf-8") as fh:
                locked = fh.read()
        except OSError:
            return None
        if code != 0:
            self.note(f"venv: uv could not resolve requirements.txt alone (exit {code}); asking pip")
            return None
        found = missing_lines(locked, self.image_dists)
        if found is None:
            self.note("venv: uv chose another version of a package the image has; asking pip")
        return found

    def _pip_resolve(self, requirements: str):
        """pip's resolution against venv + image (`--dry-run --report`): what it would install, as pins."""
        report_path = os.path.join(self.work_dir, f".rt-pip-report.{os.getpid()}.json")
        try:
            code = self.children.run(
                self.pip("install", "--dry-run", "--quiet", "--report", report_path, "-r", requirements), self.env()
            )
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
        return [], pins
