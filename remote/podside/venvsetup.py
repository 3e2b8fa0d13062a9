"""<repo>/venv: created when missing, pip-installed only when requirements.txt or Python changed.

The install is recorded under a cache key, venv/.rt-requirements.sha256 = sha256 of
"<the venv's sys.version first line>\\0<requirements.txt bytes>" ("<no requirements.txt>" when
there is none), written only after a successful install.

The venv's Python version comes from venv/.rt-python: the identity of the interpreter files
("<real path>|<size>|<mtime>" of RT_PYTHON and of venv/bin/python) and the version last checked with
them. While the files are unchanged a warm start starts no Python to check. Any change, or an
RT_PYTHON that is a script (a version-manager shim can switch interpreters without changing itself),
means both interpreters are started and compared.
"""
from __future__ import annotations

import hashlib
import os
import shutil
from typing import Callable, Optional, Tuple

from .children import Children
from .contract import VENV_REQUIREMENTS_MARKER

VENV_DIR = "venv"
VENV_PYTHON_RECORD = ".rt-python"

VERSION_ARGS = ["-c", "import sys; print(sys.version)"]
SAME_FILES_NOTE = "venv: same interpreter files as at the last check"


class VenvError(Exception):
    def __init__(self, message: str, code: int = 1):
        super().__init__(message)
        self.code = code


def requirements_key(python_version: str, requirements: Optional[bytes]) -> str:
    """The cache key a successful install is recorded under."""
    digest = hashlib.sha256(python_version.encode("utf-8") + b"\0")
    digest.update(requirements if requirements is not None else b"<no requirements.txt>")
    return digest.hexdigest()


def _file_id(path: str) -> str:
    st = os.stat(path)
    return f"{path}|{st.st_size}|{int(st.st_mtime)}"


def interpreter_id(python: str, venv_python: str) -> Optional[str]:
    """Identity of both interpreter files, or None when one is missing or RT_PYTHON is a script."""
    exe = shutil.which(python)
    if not exe:
        return None
    first, second = os.path.realpath(exe), os.path.realpath(venv_python)
    try:
        with open(first, "rb") as fh:
            if fh.read(2) == b"#!":
                return None
        return f"{_file_id(first)} {_file_id(second)}"
    except OSError:
        return None


def read_record(path: str) -> Tuple[Optional[str], Optional[str]]:
    try:
        with open(path, encoding="utf-8") as fh:
            lines = fh.read().splitlines()
    except (OSError, ValueError):
        return None, None
    return (lines[0], lines[1]) if len(lines) >= 2 and lines[0] and lines[1] else (None, None)


def _read_optional(path: str) -> Optional[bytes]:
    try:
        with open(path, "rb") as fh:
            return fh.read()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise VenvError(f"cannot read {path} ({exc.strerror})") from None


def _write_atomic(path: str, text: str) -> None:
    tmp = f"{path}.tmp.{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.replace(tmp, path)


class VenvSetup:
    def __init__(self, repo_dir: str, python: str, children: Children, note: Callable[[str], None]):
        self.repo_dir = repo_dir
        self.python = python
        self.children = children
        self.note = note
        self.venv = os.path.join(repo_dir, VENV_DIR)
        self.venv_python = os.path.join(self.venv, "bin", "python")
        self.record = os.path.join(self.venv, VENV_PYTHON_RECORD)
        self.marker = os.path.join(self.venv, VENV_REQUIREMENTS_MARKER)

    def version(self, python: str) -> str:
        out = self.children.output([python, *VERSION_ARGS])
        return out.splitlines()[0] if out and out.strip() else ""

    def python_version(self) -> str:
        """The venv's Python version; creates or recreates the venv as needed."""
        ident = interpreter_id(self.python, self.venv_python)
        rec_id, rec_version = read_record(self.record)
        if ident and rec_id == ident and rec_version:
            self.note(f"{SAME_FILES_NOTE} (Python {rec_version.split(' ')[0]}); not started to check")
            return rec_version
        want = self.version(self.python)
        if not want:
            raise VenvError(f"RT_PYTHON '{self.python}' does not run")
        have = ""
        if os.path.isdir(self.venv):
            have = self.version(self.venv_python)
            if have != want:
                self.note(f"venv: {self.venv} does not work with {self.python} ({have or 'broken'}); recreating it")
                shutil.rmtree(self.venv, ignore_errors=True)
                have = ""
        if not os.path.isdir(self.venv):
            self.note(f"venv: creating {self.venv} with {self.python}")
            if self.children.run([self.python, "-m", "venv", self.venv]) != 0:
                shutil.rmtree(self.venv, ignore_errors=True)
                raise VenvError(f"could not create the venv {self.venv} (is python3-venv installed?)")
            have = self.version(self.venv_python)
            if not have:
                raise VenvError(f"the venv python {self.venv_python} does not run")
        ident = interpreter_id(self.python, self.venv_python)
        try:                                  # a cache: a torn or stale record only costs a check
            if ident:
                _write_atomic(self.record, f"{ident}\n{have}\n")
            elif os.path.lexists(self.record):
                os.unlink(self.record)
        except OSError:
            pass
        return have

    def ensure(self) -> None:
        """Venv present and requirements installed; raises VenvError (with pip's exit code)."""
        have = self.python_version()
        requirements = os.path.join(self.repo_dir, "requirements.txt")
        key = requirements_key(have, _read_optional(requirements))
        try:
            with open(self.marker, encoding="utf-8") as fh:
                if fh.read().strip() == key:
                    self.note("venv: requirements unchanged since the last install; nothing to install")
                    return
        except OSError:
            pass
        if os.path.isfile(requirements):
            self.note("venv: requirements.txt or Python changed; running pip install -r requirements.txt")
            code = self.children.run([self.venv_python, "-m", "pip", "install", "--disable-pip-version-check",
                                      "-r", requirements])
            if code != 0:
                raise VenvError(f"pip install -r requirements.txt failed (exit {code}); see the pip output above",
                                code)
        else:
            self.note(f"venv: no requirements.txt in {self.repo_dir}; nothing to install")
        _write_atomic(self.marker, key + "\n")
