"""The local rsync over the system's ssh: finding it, its version, running it and reading its exit code."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import threading
from dataclasses import dataclass

from runner.errors import UsageError

# Lines the remote wrapper (runner/companions/sync.py remote_rsync_path) prints on stderr instead of
# starting rsync. rsync's own exit code cannot tell these cases apart: it reports 12 or 127
# depending on a race with the remote exit.
NO_RSYNC = "RUNNER_SYNC_NO_RSYNC"
NO_DEST = "RUNNER_SYNC_MKDIR_FAILED"

# rsync exit codes that mean the link/ssh failed rather than a file problem.
TRANSPORT_CODES = {5, 10, 12, 30, 35, 255}
RSYNC_CODES = {
    1: "syntax or usage error",
    2: "protocol incompatibility",
    3: "errors selecting input/output files",
    5: "error starting client-server protocol",
    10: "error in socket I/O",
    11: "error in file I/O",
    12: "error in rsync protocol data stream",
    20: "interrupted",
    23: "partial transfer due to error",
    24: "some source files vanished",
    30: "timeout in data send/receive",
    35: "timeout waiting for daemon",
    255: "ssh failed",
}


def require_local_tools(rsync: str = "rsync") -> str:
    """The local rsync executable; rsync and ssh must both be installed here."""
    exe = shutil.which(rsync)
    if exe is None:
        raise UsageError(
            "rsync is not installed on this machine; install it (macOS: `brew install rsync`, "
            "Debian/Ubuntu: `sudo apt-get install rsync`) and retry."
        )
    if shutil.which("ssh") is None:
        raise UsageError("the OpenSSH client `ssh` is not installed on this machine; install it and retry.")
    return exe


def local_rsync_version(rsync: str = "rsync") -> tuple[int, ...]:
    """The local rsync's version (one `rsync --version`); only the progress flags depend on it."""
    exe = require_local_tools(rsync)
    out = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=30).stdout
    m = re.search(r"version\s+v?(\d+)\.(\d+)(?:\.(\d+))?", out)
    return tuple(int(x) for x in m.groups(default="0")) if m else (0,)


@dataclass(frozen=True)
class RsyncResult:
    code: int
    rsync_missing: bool = False  # the pod has no rsync (the wrapper's marker)
    mkdir_error: str | None = None  # the destination could not be created (mkdir's message)
    host_key_refused: bool = False  # ssh refused the pod's host key ("Host key verification failed.")


# OpenSSH's own account of a refused host key: a banner of @ lines, advice naming the temporary
# known_hosts file (gone by the time anyone reads it), then the verdict. The caller explains the
# refusal itself (runner/companions/sync.py), so this block and rsync's echo of it are held back.
_SSH_HOST_KEY_START = re.compile(r"^(@{10,}|No \S+ host key is known for |Warning: the \S+ host key for )")
_SSH_HOST_KEY_END = "Host key verification failed."
_RSYNC_AFTERMATH = ("rsync: connection unexpectedly closed", "rsync error: ")


class _StderrFilter:
    """rsync's stderr, line by line: the remote wrapper's marker lines and, after one, rsync's complaint
    about the connection the wrapper closed are dropped; OpenSSH's host-key refusal block is held back."""

    def __init__(self) -> None:
        self.missing, self.refused = False, False
        self.mkdir_error: str | None = None
        self._last = ""
        self._held: list[str] | None = None  # a possible host-key block, until its verdict

    def feed(self, line: str) -> str:
        """The text to pass on for this line ("" for none)."""
        marker = line.strip()
        if self._held is None and _SSH_HOST_KEY_START.match(marker):
            self._held = []
        if self._held is not None:
            self._held.append(line)
            if marker == _SSH_HOST_KEY_END:
                self.refused, self._held = True, None
            elif len(self._held) > 60:  # not the block it looked like: pass it on after all
                text, self._held = "".join(self._held), None
                return text
            return ""
        if marker == _SSH_HOST_KEY_END:
            self.refused = True
        elif self.refused and marker.startswith(_RSYNC_AFTERMATH):
            pass
        elif marker == NO_RSYNC:
            self.missing = True
        elif marker == NO_DEST:
            self.mkdir_error = self._last or "mkdir failed"
        elif not (self.missing or self.mkdir_error):
            self._last = marker or self._last
            return line
        return ""

    def finish(self) -> str:
        text, self._held = "".join(self._held or ()), None
        return text


class RsyncRun:
    """One rsync process. Its stderr goes through _StderrFilter to ours. held=True keeps its output back
    (stdout piped too, both buffered) until release(): a speculative run that is abandoned() shows nothing.
    Otherwise its stdout is ours directly."""

    def __init__(self, argv: list[str], *, held: bool = False):
        sys.stdout.flush()
        sys.stderr.flush()
        self._lock = threading.Lock()
        self._held = held
        self._dropped = False
        self._out: list[bytes] = []
        self._err: list[str] = []
        self._filter = _StderrFilter()
        self.proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stderr=subprocess.PIPE, stdout=subprocess.PIPE if held else None
        )
        self._pumps = [threading.Thread(target=self._pump_err, daemon=True)]
        if held:
            self._pumps.append(threading.Thread(target=self._pump_out, daemon=True))
        for t in self._pumps:
            t.start()

    # ---- output
    def _emit(self, out: bytes = b"", err: str = "") -> None:
        with self._lock:
            if self._dropped:
                return
            if self._held:
                if out:
                    self._out.append(out)
                if err:
                    self._err.append(err)
                return
            _write(out, err)

    def _pump_err(self) -> None:
        assert self.proc.stderr is not None
        with self.proc.stderr:
            for raw in self.proc.stderr:
                text = self._filter.feed(raw.decode("utf-8", "replace"))
                if text:
                    self._emit(err=text)
        rest = self._filter.finish()
        if rest:
            self._emit(err=rest)

    def _pump_out(self) -> None:
        assert self.proc.stdout is not None
        with self.proc.stdout:
            fd = self.proc.stdout.fileno()
            while chunk := os.read(fd, 65536):
                self._emit(out=chunk)

    def release(self) -> None:
        """Show what was held back, then pass the output on as it comes."""
        with self._lock:
            self._held = False
            for chunk in self._out:
                _write(chunk, "")
            for text in self._err:
                _write(b"", text)
            self._out, self._err = [], []

    # ---- the process
    def abandon(self) -> None:
        """Stop rsync (SIGTERM: the receiver keeps an interrupted file in --partial-dir, never under its
        real name) and drop everything it printed."""
        with self._lock:
            self._dropped = True
            self._out, self._err = [], []
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.proc.wait()
        self._join()

    def _join(self) -> None:
        for t in self._pumps:
            t.join(timeout=10)

    def wait(self) -> RsyncResult:
        try:
            code = self.proc.wait()
        except KeyboardInterrupt:
            _stop(self.proc)
            self._join()
            raise
        self._join()
        f = self._filter
        return RsyncResult(code, f.missing, f.mkdir_error, f.refused)


def _write(out: bytes, err: str) -> None:
    if out:
        sys.stdout.flush()
        sys.stdout.buffer.write(out)
        sys.stdout.buffer.flush()
    if err:
        sys.stderr.write(err)
        sys.stderr.flush()


def run_rsync(argv: list[str]) -> RsyncResult:
    """Run rsync. Its stdout is ours; its stderr is passed on line by line, minus the remote wrapper's
    marker lines and, after one, rsync's complaint about the connection the wrapper closed."""
    return RsyncRun(argv).wait()


def _stop(proc: subprocess.Popen) -> None:
    """After Ctrl-C: rsync got the SIGINT too when it came from a terminal; otherwise pass it on."""
    try:
        proc.wait(timeout=0.5)
        return
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
