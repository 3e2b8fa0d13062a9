"""The pod side as the runner streams it: `bash -s` with the RT_* values as quoted exports, then
remote/remote_train.sh with the pod-side program (remote/podside/) inside (remote/podside/bundle.py)."""
from __future__ import annotations

from remote.podside import bundle


def launcher_script() -> str:
    """The text streamed after the exports (runner/remote/shell.py build_script)."""
    return bundle.launcher_script()


__all__ = ["launcher_script"]
