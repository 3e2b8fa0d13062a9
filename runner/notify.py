"""The runner's and the watcher's notifications: the pod's shape rules (remote/podside/notify.py: Slack,
Discord, ntfy, else the event as JSON), sent by a detached child process so that nothing here waits on a
webhook, and a `runner watch --once` that exits at once still delivers.

    notify.send_detached(urls, event, log_path)

The URLs are secrets: they reach the child on its stdin (never argv), and what is logged is redacted.
The child: `python -m runner.notify <log path>` reading {"urls": [...], "event": {...}} on stdin.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from remote.podside import notify as shapes

parse_urls = shapes.parse_urls
redact = shapes.redact
NotifyUrlError = shapes.NotifyUrlError


def send_detached(urls: list[str], event: Mapping[str, Any], log_path: Path) -> None:
    """Start the sending child and return at once (OSError when it cannot be started)."""
    if not urls:
        return
    proc = subprocess.Popen(
        [sys.executable, "-m", "runner.notify", str(log_path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # not in the terminal's process group: Ctrl-C or a hang-up does not stop it
        close_fds=True,
    )
    assert proc.stdin is not None
    try:
        proc.stdin.write(json.dumps({"urls": urls, "event": dict(event)}).encode())
    finally:
        proc.stdin.close()


def _log_to(path: Path):
    def log(line: str) -> None:
        import time

        try:
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            with open(path, "a", encoding="utf-8") as fh:
                fh.write(f"{time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())} {line}\n")
        except OSError:
            pass

    return log


def _main(argv: list[str]) -> int:
    job = json.loads(sys.stdin.read() or "{}")
    shapes.send_now(list(job.get("urls") or []), job.get("event") or {}, _log_to(Path(argv[0])))
    return 0


if __name__ == "__main__":
    raise SystemExit(_main(sys.argv[1:]))
