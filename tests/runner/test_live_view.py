"""What the user watching `runner train` sees, with a trainer that draws a tqdm-style progress bar.

The bar is redrawn with \\r and no newline (remote/smoke_train.py `progress_bar: true`), as a Hugging
Face Trainer's is. When stdout is not a terminal, it must be the pod's current.log byte for byte,
across preemptions by SIGTERM (the supervisor writes a footer after the unfinished bar line) and by
SIGKILL alone (no footer; the next header follows the unfinished bar line). The accounting reads the
footer's checkpoint and the steps the bar showed.
"""

from __future__ import annotations

import importlib
import os
import pty
import re
import select
import subprocess
import sys
import threading
import tty

import pytest

from remote.podside.contract import parse_footer, parse_header
from tests.fixtures.pty_run import run_on_a_pty
from tests.fixtures.recovery_harness import attempts_in_log, fast_recovery, newest_complete, preempt, record
from tests.fixtures.train_harness import ROOT, local_env, smoke_config, train_env, wait_for  # noqa: F401

BAR = "configs/bar.yaml"


@pytest.fixture
def env(train_env, monkeypatch):
    fast_recovery(monkeypatch)
    train_env.write_config(
        BAR, smoke_config(max_steps=40, save_steps=5, step_seconds=0.05, progress_bar="true", log_steps=3)
    )
    return train_env


def log_bytes(env) -> bytes:
    return env.log_file.read_bytes()


def assert_stdout_is_the_log_bytes(out: str, env, *, through_footer: int) -> None:
    """stdout is the log from its first byte on, byte for byte, at least through the given footer."""
    log = log_bytes(env)
    printed = out.encode()
    footers = [m.end() for m in re.finditer(rb"[^\n]* end state=[^\n]*\n", log)]
    assert len(footers) >= through_footer, log[-400:]
    assert len(printed) >= footers[through_footer - 1], (
        f"printed {len(printed)} bytes, the log has {len(log)}; printed ends {printed[-200:]!r}"
    )
    assert printed == log[: len(printed)], _first_difference(printed, log)


def _first_difference(a: bytes, b: bytes) -> str:
    i = next((k for k in range(min(len(a), len(b))) if a[k] != b[k]), min(len(a), len(b)))
    return f"stdout and the log differ at byte {i}: {a[max(0, i - 80) : i + 80]!r} vs {b[max(0, i - 80) : i + 80]!r}"


def highest_step(lines: list[str]) -> int:
    """The highest step an attempt's log shows: its `step N/M` lines and its bar's `N/M [`."""
    text = "\n".join(lines)
    steps = [int(m) for m in re.findall(r"step (\d+)/\d+", text)] + [int(m) for m in re.findall(r"(\d+)/\d+ \[", text)]
    return max(steps, default=0)


def test_a_bar_run_to_the_end_prints_the_log_byte_for_byte(env):
    env.add_pod("RUNNING")
    res = env.run("train", "--config", BAR, "--run-id", "bar")

    assert res.code == 0, res.err
    assert "\r" in res.out and "40/40 [" in res.out  # the bar's redraws went through as they are
    assert_stdout_is_the_log_bytes(res.out, env, through_footer=1)


@pytest.mark.parametrize("sigterm", [True, False], ids=["sigterm", "sigkill-only"])
def test_a_preemption_mid_bar_keeps_stdout_the_log_and_counts_the_bar_steps(env, sigterm):
    env.add_pod("RUNNING")
    run = env.start("train", "--config", BAR, "--run-id", "bar-pre")
    env.wait_log("saved checkpoint-10")
    wait_for(lambda: not log_bytes(env).endswith(b"\n"), 10, "the bar to be mid-line")
    preempt(env, sigterm=sigterm)
    step = newest_complete(env)
    res = env.finish(run, timeout=60)

    assert res.code == 0, res.err
    log = log_bytes(env)
    first, second = attempts_in_log(env)[:2]
    # Header and footer start a line of their own even though the bar had no newline.
    assert re.search(rb"\n===== \S+ run=bar-pre attempt=2 ", log)
    if sigterm:
        footer = next(parse_footer(x) for x in first if parse_footer(x) is not None)
        assert footer.state == "preempted" and footer.checkpoint and footer.checkpoint.endswith(f"checkpoint-{step}")
        assert re.search(rb"\n===== \S+ run=bar-pre attempt=1 end state=preempted", log)
    else:
        assert not any(parse_footer(x) for x in first)
    assert_stdout_is_the_log_bytes(res.out, env, through_footer=1 if not sigterm else 2)
    assert parse_header(second[0]).resume_from.endswith(f"checkpoint-{step}")
    # The accounting: steps lost = the last step the bar showed - the step resumed from.
    rec = record(env, "bar-pre")
    a1 = rec["attempts"][0]
    assert a1["last_step"] == highest_step(first), (a1, first[-3:])
    assert a1["steps_lost"] == highest_step(first) - step
    if sigterm:
        assert a1["last_checkpoint"] == footer.checkpoint  # read from the footer
    assert rec["status"] == "succeeded"


# ---------------------------------------------------------------- on a terminal: the bar moves live
def run_on_a_terminal(env, argv: list[str], on_output) -> tuple[int, bytes, str]:
    """`python -m runner <argv>` with stdout on a pseudo-terminal (raw: the bytes as written) and
    stderr on a pipe; on_output(all_so_far) is called after every read. Returns (code, stdout, stderr)."""
    pythonpath = os.pathsep.join([str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])
    return run_on_a_pty(
        [sys.executable, "-m", "runner", *argv],
        cwd=env.project,
        env={**os.environ, "PYTHONPATH": pythonpath},
        on_output=on_output,
    )


@pytest.mark.parametrize("where", ["local", "host"])
def test_on_a_terminal_the_bar_is_redrawn_live_and_the_log_is_kept_exactly(request, where):
    # --local reads the log file itself; --host follows it over SSH (the sshd stand-in), as on a pod
    env = request.getfixturevalue("local_env" if where == "local" else "train_env")
    target = ["--local"] if where == "local" else ["--host", f"{env.sshd.user}@{env.sshd.host}:{env.sshd.port}"]
    # 10 bar redraws between two whole lines, a tenth of a second apart
    env.write_config(
        BAR, smoke_config(max_steps=20, save_steps=10, step_seconds=0.1, progress_bar="true", log_steps=10)
    )
    unfinished: list[int] = []  # the bar's step while its line had no newline yet

    def on_output(so_far: bytes) -> None:
        tail = so_far.rsplit(b"\n", 1)[-1]
        m = re.findall(rb"(\d+)/20 \[", tail)
        if m and (not unfinished or int(m[-1]) != unfinished[-1]):
            unfinished.append(int(m[-1]))

    code, out, err = run_on_a_terminal(
        env, ["train", *target, "--config", BAR, "--workspace", str(env.workspace)], on_output
    )

    assert code == 0, err
    # Shown before its line ended, and redrawn as it changed: many steps of the bar seen live
    assert len(unfinished) >= 5 and unfinished == sorted(unfinished), unfinished
    assert any(n < 10 for n in unfinished) and any(10 < n < 20 for n in unfinished), unfinished
    # What the terminal got is the log's bytes exactly: the bar's \r redraws, then each line as the log keeps it
    log = env.log_file.read_bytes()
    assert out == log[: len(out)] and b"done: 20 steps\n" in out, _first_difference(out, log)


def test_the_real_tqdm_bar_moves_live_on_a_terminal(local_env, monkeypatch):
    """The Hugging Face Trainer draws its bar with tqdm: the real package, not a look-alike, redrawn
    in place on the terminal while the log stays exact."""
    tqdm_home = os.path.dirname(os.path.dirname(importlib.import_module("tqdm").__file__))
    monkeypatch.setenv("PYTHONPATH", tqdm_home)  # reaches training through the launcher's environment
    env = local_env
    env.write_config(
        BAR, smoke_config(max_steps=20, save_steps=10, step_seconds=0.1, progress_bar="tqdm", log_steps=10)
    )
    unfinished: list[int] = []

    def on_output(so_far: bytes) -> None:
        m = re.findall(rb"(\d+)/20 \[", so_far.rsplit(b"\n", 1)[-1])
        if m and (not unfinished or int(m[-1]) != unfinished[-1]):
            unfinished.append(int(m[-1]))

    code, out, err = run_on_a_terminal(
        env, ["train", "--local", "--config", BAR, "--workspace", str(env.workspace)], on_output
    )

    assert code == 0, err
    assert len(unfinished) >= 5 and unfinished == sorted(unfinished), unfinished
    log = env.log_file.read_bytes()
    assert b"\r" in log and b"/20 [" in log, "tqdm drew its bar into the log"
    assert out == log[: len(out)] and b"done: 20 steps\n" in out, _first_difference(out, log)
