"""The early supervisor start (remote/podside/handoff.py), run for real: bash, tmux, git, the bundle.

The launcher starts the supervisor in tmux right after the lock and the session check, then does
the git update, the config, the checkpoint scan and the state, and writes the plan last. These
tests hold the launcher inside its git step (a `git` stand-in first on PATH that waits until the
early supervisor is up) and then let it go on, fail, or die, and check what is left behind.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from remote.podside import handoff, tmuxsession
from remote.podside.bundle import program_bytes, program_digest
from remote.podside.contract import BANNER, PlanKey
from standins.private_tmux import private_tmux_env
from tests.fixtures.pod_harness import PodSandbox, wait_for, write_executable

# Runs instead of git for the first fetch/clone of a launch when RT_TEST_GIT_HOOK is set: waits
# until a supervisor runs in this workspace's .runner (the early start), records that, then
# proceeds (wait), fails (fail) or SIGKILLs the launcher, its parent (kill).
GIT_HOOK = r"""#!{python}
import os, signal, sys, time
REAL = {real!r}
mode = os.environ.get("RT_TEST_GIT_HOOK")
runner_dir = os.path.realpath(os.path.join(os.environ["RT_WORKSPACE"], ".runner"))
if not mode or not ({{"fetch", "clone"}} & set(sys.argv[1:4])):
    os.execv(REAL, [REAL] + sys.argv[1:])

def supervisors():
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            argv = open(f"/proc/{{pid}}/cmdline", "rb").read().split(b"\0")
            cwd = os.readlink(f"/proc/{{pid}}/cwd")
        except OSError:
            continue
        if b"supervise" in argv and cwd == runner_dir:
            found.append(pid)
    return found

deadline = time.monotonic() + 20
while not supervisors() and time.monotonic() < deadline:
    time.sleep(0.01)
with open({record!r}, "a") as fh:
    fh.write(("supervisor-up" if supervisors() else "no-supervisor") + " " + mode + "\n")
if mode == "fail":
    sys.exit(1)
if mode == "kill":
    os.kill(os.getppid(), signal.SIGKILL)
    sys.exit(1)
os.execv(REAL, [REAL] + sys.argv[1:])
"""


@pytest.fixture
def pod(tmp_path, venv_templates):
    sandbox = PodSandbox(
        tmp_path / "pod", session=f"rt-hand-{uuid.uuid4().hex[:10]}", venv_template=venv_templates["warm"]
    )
    real = shutil.which("git")
    assert real
    sandbox.hook_record = sandbox.records / "git-hook.txt"
    write_executable(
        sandbox.bin / "git", GIT_HOOK.format(python=sys.executable, real=real, record=str(sandbox.hook_record))
    )
    yield sandbox
    sandbox.cleanup()


def runner_dir(pod: PodSandbox) -> Path:
    return pod.workspace / ".runner"


def supervisors(pod: PodSandbox) -> list[int]:
    """Live supervisor processes of this pod (`supervise` in argv; cwd .runner while it waits for
    its plan, the repo once it runs one)."""
    want = {os.path.realpath(runner_dir(pod)), os.path.realpath(pod.repo_dir)}
    found = []
    for pid in pod.processes_running(" supervise "):
        try:
            if os.readlink(f"/proc/{pid}/cwd") in want:
                found.append(pid)
        except OSError:
            pass
    return found


def hooked(pod: PodSandbox) -> list[str]:
    try:
        return pod.hook_record.read_text().splitlines()
    except OSError:
        return []


def banner_lines(pod: PodSandbox) -> list[str]:
    return [line for line in pod.log_text().split("\n") if line.startswith(BANNER)]


def first_run(pod: PodSandbox) -> dict:
    run = pod.launch(RT_RUN_ID="first", RT_STOP_POD="0")
    assert run.returncode == 0, run.stderr
    return pod.wait_finished()


def assert_left_nothing(pod: PodSandbox, run, message: str, *, log_before: str = "", state_before=None) -> None:
    assert run.returncode == 2 and run.result is None, (run.stdout, run.stderr)
    assert any(message in line for line in run.error_lines), run.stderr
    assert not pod.session_alive()
    assert supervisors(pod) == []
    assert pod.log_text() == log_before, "no header, no note"
    assert pod.state() == state_before


def test_the_supervisor_is_up_while_the_launcher_still_fetches(pod):
    state = first_run(pod)
    pod.write_config("configs/smoke.yaml", max_steps=50)
    pod.commit("upstream change")
    run = pod.launch(RT_RUN_ID="first", RT_STOP_POD="0", RT_TEST_GIT_HOOK="wait")
    assert run.returncode == 0, run.stderr
    assert hooked(pod) == ["supervisor-up wait"], "the supervisor started before git fetch ended"
    assert run.result["status"] == "started" and run.result["attempt"] == state["attempt"] + 1
    done = pod.wait_finished()
    assert done["state"] == "succeeded" and "step 50/" in pod.log_text()
    plan = json.loads((runner_dir(pod) / "supervise.json").read_text())
    assert plan[PlanKey.TOKEN] and plan[PlanKey.ATTEMPT] == 2


@pytest.mark.parametrize("case", ["git-refusal", "script-missing", "config-missing", "no-output-dir", "log-unwritable"])
def test_a_failure_after_the_early_start_leaves_no_session_supervisor_or_header(pod, case):
    state = first_run(pod)
    log_before = pod.log_text()
    overrides = {"RT_RUN_ID": "first", "RT_TEST_GIT_HOOK": "wait"}
    if case == "git-refusal":
        overrides["RT_TEST_GIT_HOOK"] = "fail"  # the fetch fails once the supervisor is up
        message = "git fetch of branch main"
    elif case == "script-missing":
        overrides["RT_TRAIN_SCRIPT"] = "scripts/nope.py"
        message = "training script"
    elif case == "config-missing":
        overrides["RT_CONFIG"] = "configs/nope.yaml"
        message = "config configs/nope.yaml not found"
    elif case == "no-output-dir":
        pod.write_config("configs/bad.yaml", output_dir=None)
        pod.commit("a config without output_dir")
        overrides["RT_CONFIG"] = "configs/bad.yaml"
        message = "has no top-level output_dir"
    else:
        os.rename(pod.log_file, pod.log_file.with_name("moved.log"))
        pod.log_file.mkdir()  # open(..., "a") of the log fails
        log_before = ""
        message = "cannot write"
    run = pod.launch(**overrides)
    assert hooked(pod) and hooked(pod)[0].startswith("supervisor-up"), "the failure came after the early start"
    assert_left_nothing(pod, run, message, log_before=log_before, state_before=state)


def test_a_plan_write_error_leaves_no_session_or_supervisor(pod):
    first_run(pod)
    plan = runner_dir(pod) / "supervise.json"
    plan.unlink()
    plan.mkdir()  # the rename onto it fails
    run = pod.launch(RT_RUN_ID="first", RT_TEST_GIT_HOOK="wait")
    assert run.returncode == 2 and any("cannot write" in line for line in run.error_lines), run.stderr
    assert hooked(pod)[0].startswith("supervisor-up")
    assert not pod.session_alive() and supervisors(pod) == []
    state = pod.state()
    assert state["attempt"] == 2 and state["state"] == "failed" and "supervise.json" in state["message"]
    assert not pod.processes_running(str(pod.repo_dir / "scripts" / "train.py"))


def test_a_killed_launcher_leaves_nothing_and_its_supervisor_never_runs_the_stale_plan(pod):
    state = first_run(pod)  # leaves a plan with the first launch's token
    stale = json.loads((runner_dir(pod) / "supervise.json").read_text())
    log_before = pod.log_text()
    run = pod.launch(RT_RUN_ID="first", RT_TEST_GIT_HOOK="kill")
    assert run.returncode != 0 and run.result is None
    assert hooked(pod) == ["supervisor-up kill"]
    # The supervisor sees its launcher gone without a plan of its own and gives up; the session ends.
    wait_for(lambda: not pod.session_alive() and not supervisors(pod), 20, "the early supervisor to give up")
    assert pod.log_text() == log_before and banner_lines(pod) == [
        line for line in log_before.split("\n") if line.startswith(BANNER)
    ]
    assert pod.state() == state
    assert json.loads((runner_dir(pod) / "supervise.json").read_text()) == stale
    assert not pod.processes_running(str(pod.repo_dir / "scripts" / "train.py"))

    again = pod.launch(RT_RUN_ID="first", RT_STOP_POD="0")  # and the next launch works as usual
    assert again.returncode == 0, again.stderr
    assert again.result["status"] == "started" and again.result["attempt"] == state["attempt"] + 1
    assert pod.wait_finished()["state"] == "succeeded"


def _start_waiting_supervisor(pod: PodSandbox, token: str, launcher_pid: int) -> int:
    """A session as an early start leaves it: our supervisor waiting for `token`'s plan."""
    pyz = runner_dir(pod) / f"podside-{program_digest()}.pyz"
    runner_dir(pod).mkdir(parents=True, exist_ok=True)
    pyz.write_bytes(program_bytes())
    argv = [sys.executable, str(pyz), "supervise", "./supervise.json", token, str(launcher_pid)]
    env = private_tmux_env(pod.tmux_tmpdir)
    out = subprocess.run(
        [
            "tmux",
            "new-session",
            "-d",
            "-P",
            "-F",
            "#{pane_pid}",
            "-s",
            pod.session,
            "-c",
            str(runner_dir(pod)),
            "exec " + shlex.join(argv),
            ";",
            "set-option",
            "-t",
            f"={pod.session}:",
            tmuxsession.SESSION_OWNER_OPTION,
            tmuxsession.SESSION_OWNER,
            ";",
            "set-option",
            "-t",
            f"={pod.session}:",
            tmuxsession.SESSION_TOKEN_OPTION,
            token,
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=10,
    )
    assert out.returncode == 0, out.stderr
    pid = int(out.stdout.split()[0])
    wait_for(lambda: pid in supervisors(pod), 10, "the waiting supervisor")
    return pid


def test_a_session_still_waiting_for_a_dead_launchers_plan_is_replaced_not_reported_running(pod):
    # Its launcher is gone (the lock is free), its supervisor has not noticed yet: the next launch
    # must not answer already-running for a session that will never train.
    stand_in = subprocess.Popen(["sleep", "600"])  # the "launcher" pid it waits on
    try:
        waiting = _start_waiting_supervisor(pod, handoff.new_token(), stand_in.pid)
        run = pod.launch(RT_RUN_ID="fresh", RT_STOP_POD="0")
        assert run.returncode == 0, run.stderr
        assert run.result["status"] == "started" and run.result["run_id"] == "fresh"
        assert waiting not in supervisors(pod)
        assert pod.wait_finished()["state"] == "succeeded"
    finally:
        stand_in.kill()
        stand_in.wait()


def test_a_waiting_supervisor_ignores_a_plan_with_another_token_and_gives_up_with_its_launcher(pod):
    first_run(pod)
    state = pod.state()
    stand_in = subprocess.Popen(["sleep", "600"])
    try:
        waiting = _start_waiting_supervisor(pod, handoff.new_token(), stand_in.pid)
        plan = runner_dir(pod) / "supervise.json"
        stale = json.loads(plan.read_text())
        stale["attempt"] = 99
        plan.write_text(json.dumps(stale))  # rewritten, so read again: and refused
        stand_in.kill()
        stand_in.wait()
        # Its last look at the plan comes after its launcher is gone: the stale one, which it refuses.
        wait_for(
            lambda: not pod.session_alive() and waiting not in supervisors(pod),
            10,
            "the supervisor to give up once its launcher is gone",
        )
    finally:
        if stand_in.poll() is None:
            stand_in.kill()
            stand_in.wait()
    assert pod.state() == state and "attempt=99" not in pod.log_text()


def test_a_second_launch_while_the_first_trains_attaches_to_it(pod):
    pod.write_config("configs/smoke.yaml", max_steps=100000, step_seconds=0.02)
    pod.commit("long run")
    first = pod.launch(RT_RUN_ID="long")
    assert first.returncode == 0, first.stderr
    pod.wait_log("step 2/")
    second = pod.launch(RT_RUN_ID="other", RT_TEST_GIT_HOOK="wait")
    assert second.returncode == 0, second.stderr
    assert second.result["status"] == "already-running" and second.result["run_id"] == "long"
    assert hooked(pod) == [], "no git and no second supervisor for an attach"
    assert len(supervisors(pod)) == 1
    info = pod.inspect()
    assert info["session_running"] is True and info["state"]["run_id"] == "long"


def test_the_handoff_wait_returns_the_plan_with_its_token_only(tmp_path):
    path = tmp_path / "supervise.json"
    path.write_text(json.dumps({"token": "old", "x": 1}))
    assert handoff.read_plan(str(path), "new") is None
    assert handoff.await_plan(str(path), "new", launcher_pid=0) is None, "no launcher: gives up at once"
    path.write_text(json.dumps({"token": "new", "x": 2}))
    assert handoff.await_plan(str(path), "new", launcher_pid=os.getpid()) == {"token": "new", "x": 2}
    assert handoff.alive(os.getpid()) and not handoff.alive(0)
    gone = subprocess.Popen(["true"])
    gone.wait()
    assert not handoff.alive(gone.pid)
