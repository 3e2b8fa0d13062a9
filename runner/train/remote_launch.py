"""Start one attempt: the launcher's RT_* values, one bash round trip (shell.SCRIPT_COMMAND), its RT_RESULT as Launched.

A drop of the SSH link during that round trip (before the script arrived, while it clones, after
tmux started, before RT_RESULT was read) does not fail the run: launch_surviving_drops() reconnects,
asks the pod what it is doing (the launcher's RT_ACTION=inspect: the state file and the tmux
session), follows the attempt that the interrupted launch started, and launches again when nothing
started. Launching again is safe: the launcher holds a lock and attaches to a running session.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from backends.polling import Backoff
from remote.podside import contract as pc
from remote.podside.bundle import launched_digest, launcher_script, short_launcher_script
from remote.podside.contract import Inputs, LaunchStatus, ResultKey, StateKey, VolumePaths
from remote.podside.credential import split_url
from runner import timeouts
from runner.errors import RETRYABLE_SSH, SshDisconnected, UsageError
from runner.paths import write_private
from runner.remote.pod_view import PodInspect, inspect_pod
from runner.remote.shell import RunResult, Shell
from runner.secret_settings import launch_input
from runner.train.events import Interrupted, Launched
from runner.types import Say

CLOCK_SKEW_S = 300.0  # the pod's clock may differ from ours by this much


SKIPPED_WARNING = "warning: skipped incomplete checkpoint "  # remote/podside/launch.py, also in RT_RESULT


@dataclass(frozen=True)
class RunPolicy:
    """What the pod keeps with the run for a relaunch with nobody attached (the run's spec on the
    volume): its limits, the stack's auto-resume and stall guard, the webhooks, training's secrets. None:
    the pod's default (for the secrets: what the volume keeps stays)."""

    max_recoveries: int | None = None
    budget_usd: float | None = None
    auto_resume: bool | None = None
    stall_minutes: float | None = None  # 0: off
    notify_urls: str | None = None  # NOTIFY_URL (a secret: on the script's stdin only); "": none
    # TRAIN_SECRETS' values (secrets: on the script's stdin only), kept on the volume for training alone
    # until the run ends; {} clears what an earlier launch left (remote/podside/trainsecrets.py)
    train_secrets: Mapping[str, str] | None = field(default=None, repr=False)

    def inputs(self) -> dict[str, str]:
        env: dict[str, str] = {}
        if self.max_recoveries is not None:
            env[Inputs.MAX_RECOVERIES] = str(self.max_recoveries)
        if self.budget_usd is not None:
            env[Inputs.BUDGET_USD] = f"{self.budget_usd:g}"
        if self.auto_resume is not None:
            env[Inputs.AUTO_RESUME] = "1" if self.auto_resume else "0"
        if self.stall_minutes is not None:
            env[Inputs.STALL_MINUTES] = f"{self.stall_minutes:g}"
        if self.notify_urls is not None:
            env[Inputs.NOTIFY_URLS] = self.notify_urls
        if self.train_secrets is not None:
            env[Inputs.TRAIN_SECRETS] = launch_input(self.train_secrets)
        return env


class LaunchError(UsageError):
    """The pod-side launcher refused to start (its `error:` line says why); ExitCode.USAGE."""


def launcher_env(
    *,
    workspace: str,
    repo_url: str,
    branch: str,
    config: str,
    train_script: str,
    run_id: str,
    stop_pod: bool,
    detach: bool,
    session: str,
    idle_stop_minutes: float = 0.0,
    commit: str | None = None,
    run_policy: RunPolicy | None = None,
    pod_slot: str = "",
    shared_volume: bool = False,
    config_set: dict[str, object] | None = None,
) -> dict[str, str]:
    """The RT_* inputs of one launch. commit: the branch's commit the runner's `git ls-remote` saw (the
    pod then skips its `git fetch` when its checkout already has origin/<branch> there). An https
    REPO_URL's credential travels apart from the URL (RT_REPO_CREDENTIAL): the pod gives it to git's
    clone and fetch only (remote/podside/credential.py), never to its files or other processes.
    run_policy: the run's limits and policies the pod keeps in the run's spec (None: the pod's defaults)."""
    clean_url, credential = split_url(repo_url)
    env = {
        Inputs.WORKSPACE: workspace,
        Inputs.REPO_URL: clean_url,
        Inputs.REPO_BRANCH: branch,
        Inputs.CONFIG: config,
        Inputs.TRAIN_SCRIPT: train_script,
        Inputs.RUN_ID: run_id,
        Inputs.STOP_POD: "1" if stop_pod else "0",
        Inputs.ACK_WAIT: "0" if detach else f"{timeouts.current().ack_wait_s:g}",
        Inputs.SESSION: session,
    }
    if idle_stop_minutes > 0:
        env[Inputs.IDLE_STOP_MINUTES] = f"{idle_stop_minutes:g}"
    if pod_slot:  # several pods on one volume: this pod's records (and each run its own checkout)
        env[Inputs.POD_SLOT] = pod_slot
    if shared_volume:
        env[Inputs.SHARED_VOLUME] = "1"
    if config_set:  # --set: the pod trains its derived config (remote/podside/derivedconfig.py)
        env[Inputs.CONFIG_SET] = json.dumps(config_set)
    if commit:
        env[Inputs.REPO_COMMIT] = commit
    if credential:
        env[Inputs.REPO_CREDENTIAL] = credential
    if run_policy is not None:
        env.update(run_policy.inputs())
    for name in Inputs.PASSTHROUGH:  # launcher knobs a user (or a test) set in the environment
        value = os.environ.get(name)
        if value:
            env[name] = value
    return env


def _program_record(known_programs: Path, target: object, workspace: str) -> Path:
    """<known_programs>/<endpoint+workspace key>-<program hash>: exists once a launch through that
    endpoint into that workspace succeeded with this program (so the pod has it on its volume)."""
    key = hashlib.sha256(f"{target}\0{workspace}".encode()).hexdigest()[:16]
    return known_programs / f"{key}-{launched_digest()}"


def _needs_program(result: RunResult) -> bool:
    return result.exit_code == pc.NEED_PROGRAM_EXIT and any(
        line.startswith(pc.NEED_PROGRAM_PREFIX) for line in result.stdout.splitlines()
    )


def launch(
    connect: Callable[[], AbstractContextManager[Shell]],
    env: dict[str, str],
    *,
    label: str,
    say: Say,
    known_programs: Path | None = None,
) -> Launched:
    """Run the launcher once; RT_RESULT as Launched, or LaunchError with its `error:` lines.

    known_programs: a private directory of this machine's state (the lead's session passes the stack's)
    where a launch that succeeded leaves a record per endpoint, workspace and program hash. With one,
    the short script is sent (no embedded program); when the pod answers that the program is not on
    its volume (wiped, another volume), the full script follows on the same connection."""
    errors: list[str] = []

    def on_stderr(line: str) -> None:
        if line.startswith(pc.ERROR_PREFIX):
            errors.append(line[len(pc.ERROR_PREFIX) :])
        elif line.startswith(SKIPPED_WARNING):
            pass  # RT_RESULT lists them too; the session says each one once
        elif line.strip():
            say(f"launcher: {line}")

    with connect() as conn:
        record = _program_record(known_programs, conn.target, env[Inputs.WORKSPACE]) if known_programs else None
        short = record is not None and record.is_file()
        result = conn.run_script(
            short_launcher_script() if short else launcher_script(),
            env,
            timeout=timeouts.current().launch_s,
            on_stderr_line=on_stderr,
        )
        fell_back = short and _needs_program(result)
        if fell_back:  # not on the volume (wiped, another one): the full script, same link
            errors.clear()
            result = conn.run_script(
                launcher_script(), env, timeout=timeouts.current().launch_s, on_stderr_line=on_stderr
            )
    data = pc.find_result(result.stdout)
    if record is not None and (data is not None or fell_back):
        _remember(record, ok=data is not None)
    if result.exit_code != 0 or data is None:
        why = "; ".join(errors) or (result.stderr.strip().splitlines() or [f"exit code {result.exit_code}"])[-1]
        raise LaunchError(f"the launcher on {label} did not start training: {why}")
    workspace = env[Inputs.WORKSPACE]
    try:
        return Launched(
            status=str(data[ResultKey.STATUS]),
            run_id=str(data[ResultKey.RUN_ID]),
            attempt=int(data[ResultKey.ATTEMPT]),
            log=str(data[ResultKey.LOG]),
            log_offset=int(data[ResultKey.LOG_OFFSET]),
            resume_from=data.get(ResultKey.RESUME_FROM) or None,
            state_file=str(
                data.get(ResultKey.STATE_FILE) or VolumePaths(workspace, env.get(Inputs.POD_SLOT, "")).state_file
            ),
            raw=data,
        )
    except (KeyError, TypeError, ValueError):
        raise LaunchError(
            f"the launcher on {label} answered an RT_RESULT line without "
            "run_id/attempt/log/log_offset; is remote/remote_train.sh up to date?"
        ) from None


def _remember(record: Path, *, ok: bool) -> None:
    """Keep (or drop) the record; any failure only costs the short script next time."""
    try:
        if ok:
            if not record.is_file():
                write_private(record, "")
        else:
            record.unlink(missing_ok=True)
    except OSError:
        pass


def launch_surviving_drops(
    connect: Callable[[], AbstractContextManager[Shell]],
    env: dict[str, str],
    *,
    label: str,
    say: Say,
    known_attempt: int = 0,
    on_drop: Callable[[Exception, int], Interrupted | None] | None = None,
    known_programs: Path | None = None,
) -> Launched | Interrupted:
    """launch(), across SSH drops: after a drop, what the interrupted launch started is followed
    (our run id, an attempt newer than known_attempt, started since we asked), else it is sent again.
    on_drop(error, n) is told of each drop and failed reconnect (the pod target asks the API there); the
    interruption it returns when the pod itself went away is returned (recovery decides)."""
    asked_at = time.time()
    backoff = Backoff(timeouts.current().max_reconnect_wait_s, first_s=0.5, factor=2.0, cap_s=5.0)
    drops = 0
    while True:
        try:
            return launch(connect, env, label=label, say=say, known_programs=known_programs)
        except RETRYABLE_SSH as error:
            drops += 1
            say(
                f"SSH link lost during the launch ({str(error) or type(error).__name__}); reconnecting to see "
                "what the launcher started"
            )
            info = _inspect_after_drop(connect, env, error, backoff, on_drop, label)
            if isinstance(info, Interrupted):
                return info
        adopted = _started_by_us(info, env, known_attempt, asked_at)
        if adopted is not None:
            say(
                f"the launch went through before the link dropped: following run {adopted.run_id} attempt "
                f"{adopted.attempt}"
            )
            return adopted
        say(
            "nothing was started by the interrupted launch; launching again"
            if not info.session_running
            else "training runs on the pod; asking the launcher to attach to it"
        )


def _inspect_after_drop(
    connect: Callable[[], AbstractContextManager[Shell]],
    env: dict[str, str],
    error: Exception,
    backoff: Backoff,
    on_drop: Callable[[Exception, int], Interrupted | None] | None,
    label: str,
) -> PodInspect | Interrupted:
    n = 0
    while True:
        n += 1
        stopped = on_drop(error, n) if on_drop is not None else None
        if stopped is not None:
            return stopped
        if not backoff.wait():
            raise SshDisconnected(
                f"lost the SSH connection to {label} during the launch and could not reconnect "
                f"for {backoff.deadline_s:g}s (last error: {error})"
            )
        try:
            with connect() as conn:
                extra = {k: env[k] for k in Inputs.PASSTHROUGH if k in env}
                return inspect_pod(
                    conn,
                    VolumePaths(env[Inputs.WORKSPACE], env.get(Inputs.POD_SLOT, "")),
                    config=env.get(Inputs.CONFIG),
                    session=env.get(Inputs.SESSION),
                    timeout=timeouts.current().launch_s,
                    extra_env=extra,
                )
        except RETRYABLE_SSH as e:
            error = e


def _started_by_us(info: PodInspect, env: dict[str, str], known_attempt: int, asked_at: float) -> Launched | None:
    """The attempt the interrupted launch started, from the pod's state file; None if it started none."""
    state = info.state or {}
    if state.get(StateKey.RUN_ID) != env.get(Inputs.RUN_ID) or not isinstance(state.get(StateKey.ATTEMPT), int):
        return None
    if state[StateKey.ATTEMPT] <= known_attempt or not isinstance(state.get(StateKey.LOG_OFFSET), int):
        return None
    started = _epoch(state.get(StateKey.STARTED_AT))
    if started is None or started < asked_at - CLOCK_SKEW_S:
        return None
    if not info.session_running and state.get(StateKey.STATE) not in pc.TERMINAL_STATES:
        return None  # the launcher died before tmux started: nothing runs, launch again
    paths = VolumePaths(env[Inputs.WORKSPACE], env.get(Inputs.POD_SLOT, ""))
    return Launched(
        status=LaunchStatus.STARTED.value,
        run_id=str(state[StateKey.RUN_ID]),
        attempt=int(state[StateKey.ATTEMPT]),
        log=info.log or paths.log,
        log_offset=int(state[StateKey.LOG_OFFSET]),
        resume_from=state.get(StateKey.RESUME_FROM) or None,
        state_file=paths.state_file,
        raw={ResultKey.SKIPPED_CHECKPOINTS: info.skipped_checkpoints, "adopted_after_drop": True},
    )


def _epoch(iso: object) -> float | None:
    try:
        return datetime.fromisoformat(str(iso).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def mask_url(url: str) -> str:
    """A repo URL with any credentials in it hidden."""
    return re.sub(r"(://)[^/@]*@", r"\1***@", url)


__all__ = ["LaunchError", "RunPolicy", "launch", "launch_surviving_drops", "launcher_env", "mask_url"]
