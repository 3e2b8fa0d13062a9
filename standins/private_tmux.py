"""The environment for tmux commands aimed at a tmux server of one's own (TMUX_TMPDIR).

Inside a tmux pane `$TMUX` names the pane's server, and tmux then talks to that server whatever
TMUX_TMPDIR says: a stand-in's `tmux kill-server` would end every session of the user who ran the
demo or the tests. So the caller's TMUX and TMUX_PANE never reach these commands.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping
from pathlib import Path

CALLER_TMUX = ("TMUX", "TMUX_PANE")


def private_tmux_env(tmux_tmpdir: str | Path, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """`base` (default: this process's environment) with TMUX_TMPDIR set and the caller's tmux dropped."""
    env = {k: v for k, v in (os.environ if base is None else base).items() if k not in CALLER_TMUX}
    env["TMUX_TMPDIR"] = str(tmux_tmpdir)
    return env


def private_tmux(tmux_tmpdir: str | Path, *args: str, timeout: float = 10) -> subprocess.CompletedProcess:
    """`tmux ARGS` against the server under tmux_tmpdir (never the caller's), output captured as text."""
    return subprocess.run(
        ["tmux", *args], capture_output=True, text=True, timeout=timeout, env=private_tmux_env(tmux_tmpdir)
    )
