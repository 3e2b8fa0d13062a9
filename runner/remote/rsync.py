"""The local rsync over the system's ssh: finding it, its version, running it and reading its exit code."""
from __future__ import annotations

import re
import shutil
import signal
import subprocess
import sys
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
    1: "syntax or usage error", 2: "protocol incompatibility", 3: "errors selecting input/output files",
    5: "error starting client-server protocol", 10: "error in socket I/O", 11: "error in file I/O",
    12: "error in rsync protocol data stream", 20: "interrupted", 23: "partial transfer due to error",
    24: "some source files vanished", 30: "timeout in data send/receive", 35: "timeout waiting for daemon",
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
    rsync_missing: bool = False       # the pod has no rsync (the wrapper's marker)
    mkdir_error: str | None = None    # the destination could not be created (mkdir's message)
    host_key_refused: bool = False    # ssh refused the pod's host key ("Host key verification failed.")


# OpenSSH's own account of a refused host key: a banner of @ lines, advice naming the temporary
# known_hosts file (gone by the time anyone reads it), then the verdict. The caller explains the
# refusal itself (runner/companions/sync.py), so this block and rsync's echo of it are held back.
_SSH_HOST_KEY_START = re.compile(r"^(@{10,}|No \S+ host key is known for |Warning: the \S+ host key for )")
_SSH_HOST_KEY_END = "Host key verification failed."
_RSYNC_AFTERMATH = ("rsync: connection unexpectedly closed", "rsync error: ")



def run_rsync(argv: list[str]) -> RsyncResult:
    """Run rsync. Its stdout is ours; its stderr is passed on line by line, minus the remote wrapper's
    marker lines and, after one, rsync's complaint about the connection the wrapper closed."""
    sys.stdout.flush()
    sys.stderr.flush()
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stderr=subprocess.PIPE)
    missing, mkdir_error, last = False, None, ""
    held: list[str] | None = None            # a possible host-key block, until its verdict
    refused = False

    def relay(text: str) -> None:
        sys.stderr.write(text)
        sys.stderr.flush()

    try:
        assert proc.stderr is not None
        for raw in proc.stderr:
            line = raw.decode("utf-8", "replace")
            marker = line.strip()
            if held is None and _SSH_HOST_KEY_START.match(marker):
                held = []
            if held is not None:
                held.append(line)
                if marker == _SSH_HOST_KEY_END:
                    refused, held = True, None
                elif len(held) > 60:           # not the block it looked like: pass it on after all
                    relay("".join(held))
                    held = None
                continue
            if marker == _SSH_HOST_KEY_END:
                refused = True
            elif refused and marker.startswith(_RSYNC_AFTERMATH):
                pass
            elif marker == NO_RSYNC:
                missing = True
            elif marker == NO_DEST:
                mkdir_error = last or "mkdir failed"
            elif not (missing or mkdir_error):
                relay(line)
                last = marker or last
        if held:
            relay("".join(held))
        code = proc.wait()
    except KeyboardInterrupt:
        _stop(proc)
        raise
    finally:
        if proc.stderr is not None:
            proc.stderr.close()
    return RsyncResult(code, missing, mkdir_error, refused)


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
