"""Running a command with one of its output streams on a pseudo-terminal, as a user's shell would."""

from __future__ import annotations

import os
import pty
import select
import subprocess
import threading
import tty
from collections.abc import Callable
from pathlib import Path


def run_on_a_pty(
    argv: list[str],
    *,
    cwd: Path,
    env: dict[str, str],
    stream: str = "stdout",
    on_output: Callable[[bytes], None] = lambda _so_far: None,
) -> tuple[int, bytes, str]:
    """Run argv with `stream` ("stdout" or "stderr") on a raw pseudo-terminal and the other on a pipe;
    on_output(all_so_far) after every read. Returns (exit code, the terminal's bytes, the pipe's text)."""
    master, slave = pty.openpty()
    tty.setraw(slave)
    streams = (
        {"stdout": slave, "stderr": subprocess.PIPE}
        if stream == "stdout"
        else {"stdout": subprocess.PIPE, "stderr": slave}
    )
    proc = subprocess.Popen(argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL, **streams)
    os.close(slave)
    piped = proc.stderr if stream == "stdout" else proc.stdout
    other: list[bytes] = []
    reader = threading.Thread(target=lambda: other.append(piped.read() if piped else b""), daemon=True)
    reader.start()
    got = b""
    try:
        while True:
            ready, _, _ = select.select([master], [], [], 60)
            assert ready, f"no output for 60 s; so far {got[-300:]!r}"
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            got += chunk
            on_output(got)
    finally:
        os.close(master)
        code = proc.wait(60)
        reader.join(10)
    return code, got, b"".join(other).decode()
