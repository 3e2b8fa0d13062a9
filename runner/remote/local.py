"""This machine as a `Shell` (runner/remote/shell.py), for `runner train --local`.

run / run_script / read_file / write_file / follow / check_alive / close behave like their SSH
counterparts (same arguments, same results, whole lines from byte offsets), so runner/train/ has one
code path for a pod, a host and this machine. The launcher runs as SCRIPT_COMMAND here too, with the
same quoted `export` lines on stdin, and an environment stripped of the runner's secrets: the
launcher copies every exported variable into its supervisor script on the workspace.
"""

from __future__ import annotations

import os
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

from runner.errors import RemoteFileShrunk, SshError, SshTimeout
from runner.remote.shell import (
    READ_LIMIT,
    SCRIPT_COMMAND,
    LineBuffer,
    LineCallback,
    LineSplitter,
    PartialCallback,
    RunResult,
    build_script,
)

# Never handed to the local launcher: secrets, and RunPod's pod variables (this is not a pod).
_DROP_PREFIXES = ("RUNPOD_", "PULUMI_")
_DROP = {"TMUX", "TMUX_PANE", "SSH_AUTH_SOCK"}


def launcher_environment(base: Mapping[str, str] | None = None, secrets: tuple[str, ...] = ()) -> dict[str, str]:
    env = {}
    for key, value in (os.environ if base is None else base).items():
        if key in _DROP or key.startswith(_DROP_PREFIXES):
            continue
        if any(s and len(s) >= 4 and s in value for s in secrets):
            continue
        env[key] = value
    return env


class LocalShell:
    """Commands and files on this machine; `target` names it in messages."""

    def __init__(self, *, env: Mapping[str, str] | None = None, cwd: str | Path | None = None):
        self.env = dict(env) if env is not None else launcher_environment()
        self.cwd = str(cwd) if cwd is not None else None
        self.target = "this machine"

    # ---- lifecycle (nothing to open) ------------------------------------------------------------
    def close(self) -> None:
        pass

    def __enter__(self) -> LocalShell:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def is_active(self) -> bool:
        return True

    def check_alive(self, timeout: float = 10.0) -> None:
        pass

    # ---- commands -------------------------------------------------------------------------------
    def run(
        self,
        command: str,
        *,
        stdin: bytes | None = None,
        timeout: float | None = None,
        on_stdout_line: LineCallback | None = None,
        on_stderr_line: LineCallback | None = None,
    ) -> RunResult:
        """`bash -c command` here; output lines also go to the callbacks as they arrive."""
        proc = subprocess.Popen(
            ["bash", "-c", command],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=self.env,
            cwd=self.cwd,
        )
        out, err = bytearray(), bytearray()

        def pump(stream, buf: bytearray, callback: LineCallback | None) -> None:
            lines = LineSplitter(callback)
            for chunk in iter(lambda: stream.read1(65536), b""):
                buf.extend(chunk)
                lines.feed(chunk)
            lines.flush()

        readers = [
            threading.Thread(target=pump, args=(proc.stdout, out, on_stdout_line), daemon=True),
            threading.Thread(target=pump, args=(proc.stderr, err, on_stderr_line), daemon=True),
        ]
        for t in readers:
            t.start()
        pipe = proc.stdin
        assert pipe is not None  # Popen(stdin=PIPE) always has one
        try:
            if stdin:
                pipe.write(stdin)
            pipe.close()
        except BrokenPipeError:
            pass
        try:
            code = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise SshTimeout(
                f"`{command.splitlines()[0][:60]}` on {self.target} did not finish within {timeout:g}s"
            ) from None
        for t in readers:
            t.join(timeout=10)
        return RunResult(code, out.decode("utf-8", "replace"), err.decode("utf-8", "replace"))

    def run_script(
        self,
        script_text: str,
        env: Mapping[str, str],
        *,
        timeout: float | None = None,
        on_stdout_line: LineCallback | None = None,
        on_stderr_line: LineCallback | None = None,
    ) -> RunResult:
        """The script on SCRIPT_COMMAND's stdin with the values as quoted exports, exactly as over SSH."""
        return self.run(
            SCRIPT_COMMAND,
            stdin=build_script(script_text, env),
            timeout=timeout,
            on_stdout_line=on_stdout_line,
            on_stderr_line=on_stderr_line,
        )

    # ---- files ----------------------------------------------------------------------------------
    def read_file(self, path: str, *, offset: int = 0, limit: int = READ_LIMIT) -> bytes | None:
        try:
            with open(path, "rb") as fh:
                fh.seek(int(offset))
                return fh.read(limit)
        except FileNotFoundError:
            return None
        except OSError as e:
            raise SshError(f"cannot read {path}: {e.strerror}") from None

    def write_file(self, path: str, data: bytes, *, mode: int = 0o644) -> None:
        tmp = f"{path}.tmp-{threading.get_ident()}"
        try:
            with open(tmp, "wb") as fh:
                fh.write(data)
            os.chmod(tmp, mode)
            os.replace(tmp, path)
        except OSError as e:
            Path(tmp).unlink(missing_ok=True)
            raise SshError(f"cannot write {path}: {e.strerror}") from None

    def follow(
        self,
        path: str,
        offset: int = 0,
        *,
        should_stop: Callable[[], bool] | None = None,
        tick_s: float = 0.1,
        liveness_probe_s: float = 20.0,
        liveness_timeout_s: float = 15.0,
        on_partial: PartialCallback | None = None,
        **_link_options: object,
    ) -> Iterator[tuple[bytes, int]]:
        """Yield (line, next_offset) for each whole line from byte `offset` on, waiting for more.

        (The liveness options are about a network link; a local file has none.) Apart from
        SshConnection.follow on purpose: that one reads a `tail -F` channel and watches the link, this
        one reads a file handle; what they share, splitting bytes into lines with offsets, is LineBuffer."""
        lines = LineBuffer(offset)
        position = lines.position
        fh = None
        try:
            while True:
                if fh is None:
                    try:
                        fh = open(path, "rb")
                    except FileNotFoundError:
                        fh = None
                    else:
                        size = os.fstat(fh.fileno()).st_size
                        if size < position:
                            raise RemoteFileShrunk(
                                f"{path} is shorter than offset {position}: it was replaced or truncated. "
                                f"Follow it from 0."
                            )
                        fh.seek(position)
                got = False
                if fh is not None:
                    chunk = fh.read(65536)
                    while chunk:
                        got = True
                        yield from lines.feed(chunk)
                        chunk = fh.read(65536)
                    if got and on_partial is not None and lines.pending:
                        on_partial(lines.pending)
                if should_stop is not None and should_stop():
                    return
                if not got:
                    time.sleep(tick_s)
        finally:
            if fh is not None:
                fh.close()
