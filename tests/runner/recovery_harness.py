"""Helpers for tests/runner/test_recovery.py: preemptions as RunPod does them, on the train harness's "pod".

A real spot preemption, reproduced on the loopback pod (tests/runner/train_harness.py):
  1. the container dies: SIGTERM to the supervisor (it records "preempted" and writes the footer),
     SIGKILL for whatever is left, or SIGKILL straight away (sigterm=False: Docker did not wait);
     the tmux session goes with it;
  2. every SSH session dies (sshd.drop_connections), the listener stays: the resumed pod answers on
     the next port of the same sshd, and its /workspace is the same directory (the network volume);
  3. the API shows the pod EXITED (or TERMINATED) with lastStatusChange "Outbid: <date>" (fake.preempt).
The runner's own `tail` followers are left to step 2: they belong to the SSH sessions, not the container.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from remote.podside.contract import parse_footer, parse_header
from runner.train.console import Console
from standins import preemption
from standins.preemption import pid_alive, processes_under
from tests.runner.train_harness import TrainEnv, TrainResult, shorten_timeouts, step_numbers, wait_for


def container_processes(env: TrainEnv) -> list[int]:
    """The supervisor, training and anything else started from the workspace, but not the
    runner's log followers (`tail` run by sshd for the runner)."""
    pids: set[int] = set()
    state = env.state() or {}
    for key in ("supervisor_pid", "train_pid"):
        if pid_alive(state.get(key)):
            pids.add(state[key])
    pids.update(processes_under(env.root, spare=("tail",)))
    return sorted(pids)


def kill_container(env: TrainEnv, *, sigterm: bool = True) -> None:
    """The container dies: SIGTERM to the supervisor first (it has up to 5 s, as on RunPod), then SIGKILL."""
    supervisor = (env.state() or {}).get("supervisor_pid")
    preemption.kill_container(supervisor, lambda: container_processes(env), sigterm=sigterm)
    env.tmux("kill-session", "-t", f"={env.session}")
    wait_for(lambda: not env.session_alive(), 10, "the tmux session to end")


def preempt(env: TrainEnv, *, sigterm: bool = True, drop: bool = True, terminate: bool = False) -> None:
    """The container dies, its SSH sessions with it, then the API shows the pod outbid. In this order
    a fast runner cannot resume the pod while the test is still killing the old container."""
    kill_container(env, sigterm=sigterm)
    if drop:
        env.sshd.drop_connections()
    env.fake.preempt(env.pod_id, terminate=terminate)


def user_stop(env: TrainEnv) -> None:
    """`runner stop` / the console's Stop: the API stops the pod ("Exited by user"), Docker sends SIGTERM."""
    env.fake.client().stop_pod(env.pod_id)
    kill_container(env, sigterm=True)
    env.sshd.drop_connections()


def recreate_on_up(env: TrainEnv, **pod) -> None:
    """The next `pulumi up` (stub) creates a new pod in the fake, as the provider would, and the
    stack outputs name it; its rp_environment is what the launcher's self-stop reads. With
    `--replace <pod_urn>` the stub first terminates the old pod (delete-before-replace)."""
    add = {"status": "RUNNING", "name": "recreated", **pod}
    outputs = {}
    if pod.get("interruptible") is False:
        outputs = {"market": "on-demand", "bid_per_gpu": None}
    env.stub.update(
        up_hook={"fake_url": env.fake.rest_url, "add_pod": add, "outputs": outputs, "rp_env_file": str(env.rp_env_file)}
    )


def when_said(monkeypatch, predicate: Callable[[str], bool], action: Callable[[], None]) -> list[str]:
    """Act at a chosen moment, deterministically: right after the runner prints the first message
    for which predicate is true, action() runs in the runner's thread. Returns the list that
    receives that message once it fired."""
    fired: list[str] = []
    real = Console.say

    def say(self, message: str) -> None:
        real(self, message)
        if not fired and predicate(message):
            fired.append(message)
            action()

    monkeypatch.setattr(Console, "say", say)
    return fired


def interrupt_when(monkeypatch, predicate: Callable[[str], bool]) -> list[str]:
    """Ctrl-C right after the first message for which predicate is true: KeyboardInterrupt raised in
    the runner, as SIGINT would be in its main thread."""

    def interrupt() -> None:
        raise KeyboardInterrupt

    return when_said(monkeypatch, predicate, interrupt)


def fast_recovery(monkeypatch) -> None:
    """The API poll and the SIGTERM confirmation, at test speed."""
    shorten_timeouts(monkeypatch, pod_poll_s=0.2, confirm_poll_s=0.05, confirm_s=10.0, stop_verify_s=20.0)


def record(env: TrainEnv, run_id: str) -> dict:
    return json.loads((env.state_dir / "dev" / "runs" / f"{run_id}.json").read_text())


def attempts_in_log(env: TrainEnv) -> list[list[str]]:
    """The log split at each attempt header: [[header, lines...], ...]."""
    out: list[list[str]] = []
    for line in env.log_text().splitlines():
        if parse_header(line) is not None:
            out.append([line])
        elif out:
            out[-1].append(line)
    return out


def assert_log_printed_exactly(res: TrainResult, env: TrainEnv) -> None:
    """What the runner printed on stdout is the pod's log from its first line through the last
    attempt's footer, line for line: none lost, none twice (the launcher's notes after the footer,
    written while the pod stops itself, may or may not have been read when the runner ended)."""
    log = env.log_text().splitlines()
    footers = [i for i, line in enumerate(log) if parse_footer(line) is not None]
    assert footers, "the log has no footer"
    assert len(res.lines) > footers[-1] and res.lines == log[: len(res.lines)], (
        "printed lines differ from the pod's log\n"
        f"printed-only: {[x for x in res.lines if x not in log][:5]}\n"
        f"log-only: {[x for x in log if x not in res.lines][:5]}\n"
        f"counts: printed {len(res.lines)}, log {len(log)}"
    )


def steps_of(attempt_lines: list[str]) -> list[int]:
    return step_numbers(attempt_lines)


def newest_complete(env: TrainEnv) -> int:
    ckpt = env.newest_complete_checkpoint()
    return int(ckpt.name.split("-")[1]) if ckpt is not None else 0


__all__ = [
    "assert_log_printed_exactly",
    "attempts_in_log",
    "container_processes",
    "fast_recovery",
    "interrupt_when",
    "kill_container",
    "newest_complete",
    "preempt",
    "record",
    "recreate_on_up",
    "steps_of",
    "user_stop",
]
