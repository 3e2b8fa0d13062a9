"""The pod-side launcher as the runner streams it: `bash -s` with the RT_* values as quoted exports."""
from __future__ import annotations

from pathlib import Path

from runner.errors import SshError

SCRIPT = Path(__file__).resolve().parents[2] / "remote" / "remote_train.sh"


def launcher_script() -> str:
    """The text streamed after the exports (runner/remote/shell.py build_script)."""
    try:
        return SCRIPT.read_text()
    except OSError as e:
        raise SshError(f"cannot read the pod-side launcher {SCRIPT} ({e.strerror}); reinstall the runner.") from None


__all__ = ["launcher_script"]
