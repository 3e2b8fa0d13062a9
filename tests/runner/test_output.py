"""Calm output (runner/output.py): while `train` waits for the pod, one line redrawn with the time so
far on a terminal and plain lines when piped; a dim [runner] prefix and coloured doctor words on a
terminal, none with NO_COLOR; -q leaves the start-up's progress out; real plurals."""

from __future__ import annotations

import io
import os
import pty
import re
import select
import subprocess
import sys
import threading

import pytest

from runner import output
from runner.output import Lines, Waiting, plural, status_word
from tests.fixtures.pty_run import run_on_a_pty
from tests.fixtures.train_harness import ROOT, smoke_config, train_env, wait_for  # noqa: F401

CONFIG = "configs/smoke.yaml"
SGR = re.compile(rb"\x1b\[[0-9;]*m")


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_plurals():
    assert [plural(n, "step") for n in (0, 1, 2)] == ["0 steps", "1 step", "2 steps"]
    assert plural(1, "automatic recovery") == "1 automatic recovery"
    assert plural(3, "automatic recovery") == "3 automatic recoveries" and plural(2, "day") == "2 days"
    assert plural(2, "GPU") == "2 GPUs" and plural(2, "GPU-hour") == "2 GPU-hours"


def test_doctor_words_are_coloured_on_a_terminal_only(monkeypatch):
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setenv("TERM", "xterm")
    assert status_word("FAIL", Terminal(), width=4) == "\x1b[1;31mFAIL\x1b[0m"
    assert status_word("ok", Terminal(), width=4) == "\x1b[32mok\x1b[0m  "
    assert status_word("FAIL", io.StringIO(), width=4) == "FAIL"
    monkeypatch.setenv("NO_COLOR", "1")
    assert status_word("FAIL", Terminal(), width=4) == "FAIL"


def test_a_wait_is_redrawn_in_place_until_the_next_line(monkeypatch):
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.setattr(output, "TICK_S", 0.02)
    term = Terminal()
    lines = Lines(term)
    lines.say(Waiting("waiting for pod p1", since=0.0, limit_s=60))  # long since: hours on the clock
    wait_for(lambda: term.getvalue().count(output.CLEAR_LINE) >= 3, 5, "the wait line to be redrawn")
    lines.say("pod p1 is running")
    text = term.getvalue()
    assert "\n" not in text.rsplit(output.CLEAR_LINE, 1)[0]  # every redraw stayed on one line
    assert re.search(r"\[runner\] waiting for pod p1 \(\d+h \d\dm \d\ds of at most 1m 00s\)", text)
    assert text.endswith(f"{output.CLEAR_LINE}[runner] pod p1 is running\n")


def run_with_stderr_on_a_terminal(env, argv: list[str], extra_env: dict[str, str]) -> tuple[int, bytes]:
    """`python -m runner <argv>` with stderr on a pseudo-terminal; its bytes."""
    code, raw, _ = run_on_a_pty(
        [sys.executable, "-m", "runner", *argv],
        cwd=env.project,
        env={**os.environ, "PYTHONPATH": str(ROOT), "TERM": "xterm", **extra_env},
        stream="stderr",
    )
    return code, raw


@pytest.fixture
def slow_boot(train_env):
    train_env.write_config(CONFIG, smoke_config(max_steps=3, save_steps=3, step_seconds=0.01))
    train_env.add_pod("EXITED")
    train_env.fake.boot_seconds = 2.5  # the wait for RUNNING spans a few ticks of the redrawn line
    return train_env


@pytest.mark.parametrize("colour", [True, False], ids=["colour", "NO_COLOR"])
def test_on_a_terminal_the_wait_for_the_pod_is_one_line_redrawn_with_its_time(slow_boot, colour):
    code, raw = run_with_stderr_on_a_terminal(
        slow_boot, ["train", "--config", CONFIG], {} if colour else {"NO_COLOR": "1"}
    )
    assert code == 0, raw[-2000:]
    assert (b"\x1b[2m[runner]\x1b[0m" in raw) is colour and (SGR.search(raw) is not None) is colour
    text = SGR.sub(b"", raw).decode()
    wait = re.escape(f"waiting for pod {slow_boot.pod_id} to be RUNNING with SSH (now ")
    shown = re.findall(rf"\r\x1b\[K\[runner\] {wait}\w+\) \((\d+)s of at most 30s\)", text)  # POD_START_TIMEOUT
    assert len(shown) >= 3 and {"0", "1", "2"} <= set(shown), text[:3000]  # redrawn as the seconds went by
    first, last = text.index("waiting for pod"), text.rindex("of at most 30s)")
    assert "\n" not in text[first:last]  # in place: no new line while it waited
    assert "[runner] training succeeded: exit code 0" in text


def test_piped_each_wait_is_one_plain_line(slow_boot):
    res = slow_boot.run("train", "--config", CONFIG)
    assert res.code == 0, res.err
    assert "\x1b" not in res.err and "\r" not in res.err
    waits = [line for line in res.err.splitlines() if "waiting for pod" in line]
    assert len(waits) == 1 and re.fullmatch(r"\[runner\] waiting for pod \w+ .*\(0s of at most 30s\)", waits[0])


def test_quiet_leaves_out_the_start_up_but_not_the_run(slow_boot):
    res = slow_boot.run("-q", "train", "--config", CONFIG)
    assert res.code == 0, res.err
    shown = res.err.splitlines()
    assert not any(w in res.err for w in ("waiting for", "resuming spot pod", "launching run", "launcher:")), shown
    assert shown[0].startswith("[runner] ── attempt 1 on pod") and "[runner] training succeeded: exit code 0" in shown
    assert "done: 3 steps" in res.out  # the training log is never quieted


def test_the_summary_says_what_it_measures(slow_boot):
    res = slow_boot.run("train", "--config", CONFIG)
    assert res.code == 0, res.err
    assert re.search(r"\[runner\]   trained:     \d+s \(attempt 1, from its start to its end\)", res.err)
    assert re.search(r"GPU time:    [\d.]+ GPU-hours \(\d+s of pod time x 1 GPU\)", res.err)
    assert "(from byte" not in res.err and "(s)" not in res.err and "(ies)" not in res.err
    assert f"resuming spot pod {slow_boot.pod_id} (stopped): bid $0.350/GPU-hour x 1 GPU" in res.err


def test_tick_thread_ends_with_the_wait():
    lines = Lines(Terminal())
    lines.say(Waiting("waiting"))
    lines.say("done")
    wait_for(lambda: not any(t.name == "runner-wait-line" for t in threading.enumerate()), 5, "the ticker to end")


def test_hints_name_the_command_as_it_was_invoked(monkeypatch):
    hint = "run `python -m runner stop`, or `python -m runner.livecheck --json` (runner/output.py)"
    assert output.as_invoked(hint) == hint  # `python -m runner` itself: unchanged
    monkeypatch.setattr(output, "command", "rptrain")
    assert output.as_invoked(hint) == "run `rptrain stop`, or `rptrain livecheck --json` (runner/output.py)"
    term = Terminal()
    Lines(term).say("stopped; `python -m runner train` resumes")
    assert term.getvalue().endswith("stopped; `rptrain train` resumes\n")
