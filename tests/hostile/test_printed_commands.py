"""Finding 14: the commands the runner prints for the user to paste were not shell-quoted; a run id (the
pod's own, when the runner attaches to what runs there) could carry `$(...)` into the user's shell."""

from __future__ import annotations

import json
import re
import shlex
import subprocess

from runner.exitcodes import ExitCode
from tests.fixtures.recovery_harness import fast_recovery, preempt
from tests.fixtures.train_harness import smoke_config, train_env  # noqa: F401  (fixture)

RUN_ID = "r1$(touch${IFS}pwned);touch${IFS}pwned2"


def pasted(command: str, cwd) -> list[str]:
    """What a user's shell makes of the printed command: its words (the command itself is not run)."""
    out = subprocess.run(
        ["bash", "-c", f"set -- {command}; printf '%s\\n' \"$@\""], cwd=cwd, capture_output=True, text=True, check=True
    )
    return out.stdout.splitlines()


def test_the_resume_command_is_pasted_as_printed(train_env, monkeypatch, tmp_path):  # noqa: F811
    env = train_env
    fast_recovery(monkeypatch)
    env.write_config("configs/long.yaml", smoke_config(max_steps=60, save_steps=5, step_seconds=0.05))
    env.add_pod("RUNNING")
    assert env.run("train", "--config", "configs/long.yaml", "--run-id", "good", "--detach").code == 0
    env.wait_log("saved checkpoint-5")
    state = json.loads(env.state_file.read_text())
    env.state_file.write_text(json.dumps({**state, "run_id": RUN_ID}))  # what a hostile pod reports
    run = env.start("train", "--config", "configs/long.yaml", "--max-recoveries", "0")
    env.wait_printed("attaching to it")
    preempt(env)
    res = env.finish(run, timeout=60)
    assert res.code == ExitCode.POD, res.err
    command = re.search(r"Resume with `([^`]*)`", res.err).group(1)
    words = pasted(command, tmp_path)
    assert words == shlex.split(command) and words[words.index("--run-id") + 1] == RUN_ID
    assert not list(tmp_path.glob("pwned*"))
