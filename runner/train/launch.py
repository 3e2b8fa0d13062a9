"""Start one attempt: the launcher's RT_* values, one `bash -s` round trip, its RT_RESULT as Launched."""
from __future__ import annotations

import os
import re
from typing import Callable

from remote.podside import contract as pc
from remote.podside.contract import Inputs, ResultKey, VolumePaths
from runner import timeouts
from runner.errors import UsageError
from remote.podside.bundle import launcher_script
from runner.remote.shell import Shell
from runner.train.events import Launched
from runner.types import Say


SKIPPED_WARNING = "warning: skipped incomplete checkpoint "   # remote/podside/launch.py, also in RT_RESULT


class LaunchError(UsageError):
    """The pod-side launcher refused to start (its `error:` line says why); exit 2."""


def launcher_env(*, workspace: str, repo_url: str, branch: str, config: str, train_script: str, run_id: str,
                 stop_pod: bool, detach: bool, session: str) -> dict[str, str]:
    env = {
        Inputs.WORKSPACE: workspace,
        Inputs.REPO_URL: repo_url,
        Inputs.REPO_BRANCH: branch,
        Inputs.CONFIG: config,
        Inputs.TRAIN_SCRIPT: train_script,
        Inputs.RUN_ID: run_id,
        Inputs.STOP_POD: "1" if stop_pod else "0",
        Inputs.ACK_WAIT: "0" if detach else f"{timeouts.current().ack_wait_s:g}",
        Inputs.SESSION: session,
    }
    for name in Inputs.PASSTHROUGH:           # launcher knobs a user (or a test) set in the environment
        value = os.environ.get(name)
        if value:
            env[name] = value
    return env


def launch(connect: Callable[[], Shell], env: dict[str, str], *, label: str, say: Say) -> Launched:
    """Run the launcher once; RT_RESULT as Launched, or LaunchError with its `error:` lines."""
    errors: list[str] = []

    def on_stderr(line: str) -> None:
        if line.startswith(pc.ERROR_PREFIX):
            errors.append(line[len(pc.ERROR_PREFIX):])
        elif line.startswith(SKIPPED_WARNING):
            pass                     # RT_RESULT lists them too; the session says each one once
        elif line.strip():
            say(f"launcher: {line}")

    with connect() as conn:
        result = conn.run_script(launcher_script(), env, timeout=timeouts.current().launch_s,
                                 on_stderr_line=on_stderr)
    data = pc.find_result(result.stdout)
    if result.exit_code != 0 or data is None:
        why = "; ".join(errors) or (result.stderr.strip().splitlines() or [f"exit code {result.exit_code}"])[-1]
        raise LaunchError(f"the launcher on {label} did not start training: {why}")
    workspace = env[Inputs.WORKSPACE]
    try:
        return Launched(
            status=str(data[ResultKey.STATUS]), run_id=str(data[ResultKey.RUN_ID]),
            attempt=int(data[ResultKey.ATTEMPT]), log=str(data[ResultKey.LOG]),
            log_offset=int(data[ResultKey.LOG_OFFSET]),
            resume_from=data.get(ResultKey.RESUME_FROM) or None,
            state_file=str(data.get(ResultKey.STATE_FILE) or VolumePaths(workspace).state_file),
            raw=data,
        )
    except (KeyError, TypeError, ValueError):
        raise LaunchError(f"the launcher on {label} answered an RT_RESULT line without "
                          "run_id/attempt/log/log_offset; is remote/remote_train.sh up to date?") from None


def mask_url(url: str) -> str:
    """A repo URL with any credentials in it hidden."""
    return re.sub(r"(://)[^/@]*@", r"\1***@", url)


__all__ = ["LaunchError", "launch", "launcher_env", "mask_url"]
