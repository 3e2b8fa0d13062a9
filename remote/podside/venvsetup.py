"""<repo>/venv: created when missing (seeing the image's site-packages), installing only what the
image lacks, and only when requirements.txt, Python or the image changed.

The venv is made with `python -m venv <dir> --system-site-packages` (without its own pip when the
image has pip), so what the image ships (torch and its CUDA libraries on a RunPod pytorch image) is
used in place, not installed again onto the volume. It is keyed on the image (imagepython.py:
venv/.rt-image): another image rebuilds it. installer.py installs the rest (uv when there, else pip).

The install is recorded under a cache key, venv/.rt-requirements.sha256 = sha256 of
"<the venv's sys.version first line> image <image fingerprint>\\0<requirements.txt bytes>"
("<no requirements.txt>" when there is none), written only after a successful install.

The venv's Python version comes from venv/.rt-python: the identity of the interpreter files
("<real path>|<size>|<mtime>" of RT_PYTHON and of venv/bin/python) and the version last checked with
them. While the files and the image's site-packages stamps are unchanged a warm start starts no Python
to check. Any change, or an RT_PYTHON that is a script (a version-manager shim can switch interpreters
without changing itself), means the image is probed and the venv's interpreter started and compared.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from typing import Callable, Mapping, Optional, Tuple

from .children import Children
from .contract import VENV_REQUIREMENTS_MARKER
from .imagepython import IMAGE_RECORD, PROBE, ImagePython, parse_probe, read_image_record, site_stamps, stamp_paths
from .installer import Installer, InstallError

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
    def __init__(
        self,
        repo_dir: str,
        python: str,
        children: Children,
        note: Callable[[str], None],
        cache_dir: Optional[str] = None,
        environ: Optional[Mapping[str, str]] = None,
        venv: Optional[str] = None,
    ):
        """venv: where the venv lives (default <repo>/venv; a shared one on a volume of several pods)."""
        self.repo_dir = repo_dir
        self.python = python
        self.children = children
        self.note = note
        self.cache_dir = cache_dir  # <workspace>/.cache: uv's and pip's caches on the volume
        self.environ = dict(os.environ if environ is None else environ)
        self.venv = venv or os.path.join(repo_dir, VENV_DIR)
        self.venv_python = os.path.join(self.venv, "bin", "python")
        self.record = os.path.join(self.venv, VENV_PYTHON_RECORD)
        self.image_record = os.path.join(self.venv, IMAGE_RECORD)
        self.marker = os.path.join(self.venv, VENV_REQUIREMENTS_MARKER)
        self.image_fingerprint = ""
        self.image: Optional[ImagePython] = None  # probed only when the records do not answer

    def version(self, python: str) -> str:
        out = self.children.output([python, *VERSION_ARGS])
        return out.splitlines()[0] if out and out.strip() else ""

    def probe(self) -> ImagePython:
        image = parse_probe(self.children.output([self.python, "-c", PROBE]))
        if image is None:
            raise VenvError(f"RT_PYTHON '{self.python}' does not run (or is not Python 3.8+)")
        return image

    def _remove(self, why: str) -> None:
        self.note(f"venv: {why}; recreating {self.venv}")
        shutil.rmtree(self.venv, ignore_errors=True)

    def _create(self, image: ImagePython) -> str:
        # The folder comes right after "venv" (wrappers of RT_PYTHON may expect it there).
        argv = [self.python, "-m", "venv", self.venv, "--system-site-packages"]
        if image.has("pip"):
            argv.append("--without-pip")  # the image's pip serves the venv (it sees system site-packages)
        self.note(
            f"venv: creating {self.venv} with {self.python}, seeing the image's site-packages "
            f"({len(image.dists)} distributions)"
        )
        if self.children.run(argv) != 0:
            shutil.rmtree(self.venv, ignore_errors=True)
            raise VenvError(f"could not create the venv {self.venv} (is python3-venv installed?)")
        have = self.version(self.venv_python)
        if not have:
            raise VenvError(f"the venv python {self.venv_python} does not run")
        return have

    def python_version(self) -> str:
        """The venv's Python version; creates or recreates the venv as needed (a changed image too)."""
        ident = interpreter_id(self.python, self.venv_python)
        rec_id, rec_version = read_record(self.record)
        rec_image, rec_stamps = read_image_record(self.image_record)
        if (
            ident
            and rec_id == ident
            and rec_version
            and rec_image
            and rec_stamps
            and site_stamps(stamp_paths(rec_stamps)) == rec_stamps
        ):
            self.note(f"{SAME_FILES_NOTE} (Python {rec_version.split(' ')[0]}); not started to check")
            self.image_fingerprint = rec_image
            return rec_version
        image = self.image = self.probe()
        have = ""
        if os.path.isdir(self.venv):
            if rec_image != image.fingerprint:
                self._remove(
                    "the image's interpreter or packages differ from the ones the venv was built on"
                    if rec_image
                    else "it was not built to see the image's site-packages"
                )
            else:
                have = self.version(self.venv_python)
                if have != image.version:
                    self._remove(f"it does not work with {self.python} ({have or 'broken'})")
                    have = ""
        if not os.path.isdir(self.venv):
            have = self._create(image)
        self.image_fingerprint = image.fingerprint
        ident = interpreter_id(self.python, self.venv_python)
        try:  # a cache: a torn or stale record only costs a check
            _write_atomic(self.image_record, f"{image.fingerprint}\n{site_stamps(list(image.sites))}\n")
            if ident:
                _write_atomic(self.record, f"{ident}\n{have}\n")
            elif os.path.lexists(self.record):
                os.unlink(self.record)
        except OSError:
            pass
        return have

    def ensure(self) -> None:
        """Venv present and requirements installed; raises VenvError (with the installer's exit code)."""
        have = self.python_version()
        requirements = os.path.join(self.repo_dir, "requirements.txt")
        key = requirements_key(f"{have} image {self.image_fingerprint}", _read_optional(requirements))
        try:
            with open(self.marker, encoding="utf-8") as fh:
                if fh.read().strip() == key:
                    self.note("venv: requirements unchanged since the last install; nothing to install")
                    return
        except OSError:
            pass
        if os.path.isfile(requirements):
            self.note("venv: requirements.txt or Python changed (or the image); installing what the image lacks")
            image = self.image or self.probe()
            installer = Installer(
                self.venv_python,
                self.python,
                self.children,
                self.note,
                self.cache_dir,
                self.environ,
                image_dists=image.dists,
            )
            try:
                installer.install(requirements)
            except InstallError as exc:
                raise VenvError(str(exc), exc.code) from None
        else:
            self.note(f"venv: no requirements.txt in {self.repo_dir}; nothing to install")
        _write_atomic(self.marker, key + "\n")
