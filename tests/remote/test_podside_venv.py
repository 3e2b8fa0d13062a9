"""remote/podside/venvsetup.py: the install cache key and the interpreter identity record."""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
from pathlib import Path

from remote.podside.children import Children
from remote.podside.venvsetup import SAME_FILES_NOTE, VenvSetup, interpreter_id, requirements_key

VERSION = "3.11.7 (main, Dec  1 2026, 10:00:00) [GCC 12.2.0]"


def test_requirements_key_is_sha256_of_version_nul_requirements():
    reqs = b"torch==2.5\ntransformers\n"
    assert requirements_key(VERSION, reqs) == hashlib.sha256(VERSION.encode() + b"\0" + reqs).hexdigest()
    assert requirements_key(VERSION, None) == hashlib.sha256(VERSION.encode() + b"\0<no requirements.txt>").hexdigest()


def test_requirements_key_changes_with_requirements_or_interpreter():
    keys = {
        requirements_key(VERSION, b"a\n"),
        requirements_key(VERSION, b"b\n"),
        requirements_key("3.12.1 (main)", b"a\n"),
        requirements_key(VERSION, None),
    }
    assert len(keys) == 4


def _real_python() -> str:
    return os.path.realpath(sys.executable)


def test_interpreter_id_names_both_files_with_size_and_mtime(tmp_path):
    py = _real_python()
    venv_py = tmp_path / "venv" / "bin" / "python"
    venv_py.parent.mkdir(parents=True)
    venv_py.symlink_to(py)
    ident = interpreter_id(py, str(venv_py))
    st = os.stat(py)
    assert ident == f"{py}|{st.st_size}|{int(st.st_mtime)} {py}|{st.st_size}|{int(st.st_mtime)}"


def test_interpreter_id_changes_when_a_file_is_replaced(tmp_path):
    py = _real_python()
    copy = tmp_path / "python3"
    shutil.copy2(py, copy)
    venv_py = tmp_path / "venv-python"
    venv_py.symlink_to(copy)
    before = interpreter_id(str(copy), str(venv_py))
    assert before and before.startswith(f"{copy}|")
    with open(copy, "ab") as fh:
        fh.write(b"\0")  # an upgrade: another size
    assert interpreter_id(str(copy), str(venv_py)) != before


def test_interpreter_id_is_none_for_a_script_or_a_missing_file(tmp_path):
    shim = tmp_path / "python3"
    shim.write_text('#!/bin/sh\nexec python3 "$@"\n')
    shim.chmod(0o755)
    assert interpreter_id(str(shim), _real_python()) is None
    assert interpreter_id(_real_python(), str(tmp_path / "gone")) is None
    assert interpreter_id("no-such-python-anywhere", _real_python()) is None


def test_warm_start_uses_the_record_without_starting_python(tmp_path):
    repo = tmp_path / "repo"
    venv_py = repo / "venv" / "bin" / "python"
    venv_py.parent.mkdir(parents=True)
    venv_py.symlink_to(_real_python())
    notes: list[str] = []
    setup = VenvSetup(str(repo), _real_python(), Children(str(tmp_path / "log")), notes.append)
    started: list[list[str]] = []
    real_output = setup.children.output
    setup.children.output = lambda argv, timeout=120.0: (started.append(argv), real_output(argv))[1]

    first = setup.python_version()  # no record: both interpreters are asked
    assert first == sys.version.splitlines()[0] and len(started) == 2
    record = Path(setup.record).read_text().splitlines()
    assert record == [interpreter_id(_real_python(), str(venv_py)), first]

    started.clear()
    assert setup.python_version() == first and started == []
    assert notes[-1].startswith(SAME_FILES_NOTE)
