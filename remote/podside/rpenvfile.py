"""RunPod's environment file on the pod (/etc/rp_environment, RT_RP_ENV_FILE): read, never run. A module of
its own because the pod's start command carries the idle stop's slice of the program (bundle.IDLE_MODULES),
which needs this and nothing else of inputs.py. Standard library only (Python 3.8+)."""

from __future__ import annotations

import re
import shlex
from typing import Dict, Optional

_ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def read_env_file(path: str) -> Optional[Dict[str, str]]:
    """`export NAME=value` / `NAME=value` lines of RunPod's environment file (RT_RP_ENV_FILE), read
    with shell quoting rules but never run: nothing in the file is executed. None if unreadable."""
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            text = fh.read()
    except OSError:
        return None
    values: Dict[str, str] = {}
    for line in text.splitlines():
        try:
            words = shlex.split(line, comments=True)
        except ValueError:
            continue
        if words[:1] == ["export"]:
            words = words[1:]
        for word in words:
            name, sep, value = word.partition("=")
            if sep and _ENV_NAME_RE.match(name):
                values[name] = value
    return values
