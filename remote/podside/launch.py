"""RT_ACTION=launch: check the inputs, start the supervisor in tmux early (it waits for its plan,
handoff.py), get the code, pick the checkpoint, record the run's spec, hand the supervisor its plan,
send `started` / `recovered` (eventlog.py), answer with one RT_RESULT line. Every InputError fails fast
and leaves no state, no log header and no session behind (the early session is abandoned); the pod is
never stopped for an input error. autoresume.py launches through launch_locked() too.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any, Dict, List, Mapping, Optional

from . import checkpoints, configfile, eventlog, gitcode, handoff, logbook, notify, record, runspec, tmuxsession
from .contract import (
    RESULT_PREFIX,
    TRAINING_ATTEMPT,
    TRAINING_RUN_ID,
    AttemptState,
    Event,
    Inputs,
    LaunchStatus,
    PlanKey,
    ResultKey,
    SpecKey,
    StateKey,
    checkpoint_step,
    format_answer,
)
from .inputs import InputError, LaunchSettings, check_launch, gpu_count, launch_kind, under_repo
from .loglines import Header
from .trainsecrets import keep as keep_secrets
from .volumelock import held as held_lock

VOLUME_FULL_WARN = 0.95  # a launch warns above this share of the volume in use (a full volume ends runs)
LOCK_WAIT_S = 120.0
# Never handed to the supervisor's saved environment (the keys stay off the volume but in their files).
_SHELL = ("PWD", "OLDPWD", "SHLVL", "_", "TMUX", "TMUX_PANE")
_SECRET_INPUTS = (Inputs.REPO_CREDENTIAL, Inputs.REPO_CREDENTIAL_FILE, Inputs.NOTIFY_URLS, Inputs.TRAIN_SECRETS)
NOT_SAVED = _SHELL + ("RUNPOD_API_KEY",) + _SECRET_INPUTS + (Inputs.TRAIN_SECRETS_FILE,)


def launch_lock(path: str, wait_s: float = LOCK_WAIT_S):
    """Keeps concurrent launches on one pod apart (flock on .runner/launch.lock; not inherited)."""
    return held_lock(path, f"another launch is still in progress on this pod (lock {path}); try again", wait_s)


def already_running(s: LaunchSettings) -> Dict[str, Any]:
    state = record.load(s.paths.state_file) or {}
    result: Dict[str, Any] = {ResultKey.STATUS: LaunchStatus.ALREADY_RUNNING.value}
    for key in (
        StateKey.RUN_ID,
        StateKey.ATTEMPT,
        StateKey.LOG_OFFSET,
        StateKey.RESUME_FROM,
        StateKey.CONFIG,
        StateKey.OUTPUT_DIR,
        StateKey.REPO_DIR,
        StateKey.COMMIT,
        StateKey.LAUNCHER,
        StateKey.GPU_COUNT,
    ):
        result[key] = state.get(key)
    result[ResultKey.STATE] = state.get(StateKey.STATE)
    result.update({ResultKey.LOG: s.paths.log, ResultKey.STATE_FILE: s.paths.state_file, ResultKey.SESSION: s.session})
    return result


def _saved_environment(environ: Mapping[str, str]) -> Dict[str, str]:
    return {k: v for k, v in environ.items() if k not in NOT_SAVED}


def launch(
    s: LaunchSettings,
    environ: Mapping[str, str],
    program: str,
    notify_urls: Optional[str] = None,
    credential: Optional[str] = None,
    secrets: Optional[Dict[str, str]] = None,
) -> int:
    """notify_urls: RT_NOTIFY_URLS, taken out of the environment by __main__ (None: unset, notify.json
    stays as it is; "": no notifications any more). credential: git's, for the clone and the fetch only
    (credential.py; never saved anywhere). secrets: training's (trainsecrets.py; None: the kept ones stay)."""
    check_launch(s)
    urls = _notify_urls(notify_urls)
    prepare(s)
    with launch_lock(s.paths.lock_file):
        keep_secrets(s.paths, secrets)
        return launch_locked(s, environ, program, urls, credential=credential)


def _notify_urls(text: Optional[str]) -> Optional[List[str]]:
    if text is None:
        return None
    try:
        return notify.parse_urls(text)
    except notify.NotifyUrlError as exc:
        raise InputError(f"{Inputs.NOTIFY_URLS}: {exc}; fix NOTIFY_URL in .runpod.env") from None


def prepare(s: LaunchSettings) -> None:
    for name in ("TMUX", "TMUX_PANE"):
        os.environ.pop(name, None)
    paths = s.paths
    try:
        os.makedirs(paths.runner_dir, exist_ok=True)
        os.makedirs(paths.log_dir, exist_ok=True)
    except OSError:
        raise InputError(
            f"cannot create {paths.runner_dir} and {paths.log_dir}; is the network volume mounted at {s.workspace}?"
        ) from None


def probe_session(s: LaunchSettings) -> tmuxsession.Session:
    """Our tmux session, after replacing one whose launcher died before its plan (the caller holds the
    launch lock that launcher held)."""
    session = tmuxsession.probe(s.session)
    if handoff.is_waiting_orphan(session, s.paths.supervisor_plan):
        handoff.abandon(s.session, session.pid)  # its launcher died before the plan: nothing runs
        session = tmuxsession.probe(s.session)
    return session


def launch_locked(
    s: LaunchSettings,
    environ: Mapping[str, str],
    program: str,
    notify_urls: Optional[List[str]] = None,
    session: Optional[tmuxsession.Session] = None,
    credential: Optional[str] = None,
) -> int:
    """The launch, under the launch lock: attach to a running session, or start the next attempt.
    session: probe_session()'s answer when the caller has it already."""
    paths = s.paths
    status = (session or probe_session(s)).status
    if status == tmuxsession.RUNNING:
        watch_idle(s, program)
        print(format_answer(RESULT_PREFIX, already_running(s)))
        return 0
    if status == tmuxsession.FOREIGN:
        raise InputError(
            f"a tmux session named '{s.session}' exists on the pod but was not started by "
            f"remote_train.sh; close it (tmux kill-session -t {s.session}) or choose another "
            f"{Inputs.SESSION}"
        )
    if s.shared_volume:  # before anything starts: this run live on another pod of the volume
        from . import sharedvolume

        sharedvolume.refuse_conflicts(s, s.run_id)
    if status == tmuxsession.FINISHED:
        tmuxsession.kill(s.session)
    # The supervisor starts now (Python, its imports) while this launcher does the rest.
    token = handoff.new_token()
    argv = handoff.supervisor_argv(program, paths.runner_dir, paths.supervisor_plan, token)
    pid, error = tmuxsession.start(s.session, paths.runner_dir, argv, token)
    if error:
        sys.stderr.write(error + "\n")
        raise InputError(f"could not start tmux session '{s.session}'; see the tmux error above")
    try:
        start(s, environ, token, argv, pid, notify_urls, program, credential)
    except BaseException:
        handoff.abandon(s.session, pid)
        raise
    watch_idle(s, program)
    return 0


def watch_idle(s: LaunchSettings, program: str) -> None:
    """The idle stop for what comes after this run (--keep-pod, a failed launch left running...).
    A watcher with the same time already running is left alone; any failure is only a warning."""
    if s.idle_stop_minutes <= 0:
        return
    from . import idlewatch  # (argparse and the rest: only when asked for)

    try:
        idlewatch.spawn(program, s.workspace, s.idle_stop_minutes * 60, s.rp_env_file, s.pod_slot)
    except OSError as exc:
        sys.stderr.write(f"warning: could not start the idle stop ({exc}); the pod stops only at the end of the run\n")


def volume_full_warning(workspace: str, threshold: float = VOLUME_FULL_WARN) -> Optional[str]:
    """A warning when the volume is nearly full: checkpoints fill it, and a full volume ends the run."""
    try:
        st = os.statvfs(workspace)
    except OSError:
        return None
    if st.f_blocks <= 0:
        return None
    used = 1.0 - st.f_bavail / st.f_blocks
    if used < threshold:
        return None
    free_mb = st.f_bavail * st.f_frsize / 1e6
    return (
        f"warning: the network volume at {workspace} is {used:.0%} full ({free_mb:.0f} MB free); training "
        "that fills it fails when it saves (the pod still stops). Delete old checkpoints (save_total_limit "
        "keeps fewer) or grow the volume (stack config volumeSizeGb, `pulumi up`)."
    )


def start(
    s: LaunchSettings,
    environ: Mapping[str, str],
    token: str,
    argv: List[str],
    pid: Optional[int],
    notify_urls: Optional[List[str]],
    program: str,
    credential: Optional[str] = None,
) -> None:
    """Everything after the early session start; the last steps hand the supervisor its plan and send
    the attempt's first event."""
    paths = s.paths
    full = volume_full_warning(s.workspace)
    if full:
        sys.stderr.write(full + "\n")
    if s.shared_volume:
        from . import sharedvolume

        head = sharedvolume.checkout(s, credential)
    else:
        head = gitcode.at_commit(s, credential) if s.pin_commit else gitcode.update(s, credential)
    commit = head.short if head else None
    try:
        data_link = gitcode.link_data(paths.data, s.repo_dir)
    except OSError:
        data_link = None
        sys.stderr.write(f"warning: could not link {s.repo_dir}/data to {paths.data}\n")
    script = under_repo(s.train_script, s.repo_dir)
    if not os.path.isfile(script):
        raise InputError(
            f"training script {script} not found; set TRAIN_SCRIPT (RT_TRAIN_SCRIPT) to the entry point in your repo"
        )
    config_path = under_repo(s.config, s.repo_dir)
    if not os.path.isfile(config_path):
        raise InputError(
            f"config {s.config} not found (looked for {config_path}; --config is relative to the "
            "repo root); check the path and that it is committed/pushed"
        )
    run_id = s.run_id or time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + f"-{os.getpid()}"
    if s.config_set:  # the run's own config: the user's with the overrides, in the run's checkout
        from . import derivedconfig

        try:
            config_path = derivedconfig.write(config_path, s.repo_dir, run_id, derivedconfig.parse(s.config_set))
        except derivedconfig.DerivedConfigError as exc:
            raise InputError(str(exc)) from None
    try:
        output_dir = configfile.output_dir(config_path, s.repo_dir, paths.config_cache)
    except configfile.ConfigError as exc:
        raise InputError(str(exc)) from None
    if s.shared_volume:
        sharedvolume.refuse_conflicts(s, s.run_id, output_dir)
    gpus = gpu_count(s, environ)
    kind = launch_kind(s.launcher, gpus)
    resume, skipped = checkpoints.scan(output_dir)
    attempt = record.next_attempt(record.load(paths.state_file), run_id)

    try:
        os.unlink(paths.ack_file)
    except FileNotFoundError:
        pass
    try:
        log_offset = logbook.start_line(paths.log)
    except OSError:
        raise InputError(f"cannot write {paths.log}") from None
    started_at = record.utc_now()
    log = logbook.Log(paths.log)
    log.line(Header(started_at, run_id, attempt, s.config, resume).line())
    branch = f" (branch {s.branch})" if s.code_source == "git" else ""
    log.note(f"code: {commit or 'pushed tree'}{branch} in {s.repo_dir}")
    log.note(f"output_dir: {output_dir}; launcher: {kind}; GPUs: {gpus}")
    if data_link:
        log.note(f"data: {data_link} -> {paths.data}")
    for line in skipped:
        log.note(f"skipped incomplete checkpoint {line}")
        sys.stderr.write(f"warning: skipped incomplete checkpoint {line}\n")
    sys.stderr.flush()

    state = record.StateFile(
        paths.state_file,
        record.new_record(
            run_id=run_id,
            attempt=attempt,
            state=AttemptState.SETUP.value,
            config=s.config,
            output_dir=output_dir,
            resume_from=resume,
            last_checkpoint=resume,
            started_at=started_at,
            log_offset=log_offset,
            stop_requested=False,
            session=s.session,
            commit=commit,
            launcher=kind,
            gpu_count=gpus,
            repo_dir=s.repo_dir,
        ),
    )
    try:
        state.write()
    except OSError:
        raise InputError(f"cannot write {paths.state_file}") from None
    spec = runspec.build(s, run_id, attempt, head.full if head else None, started_at)
    runspec.record_notify(paths, notify_urls)  # before the handoff: the supervisor's events read it
    result = {
        ResultKey.STATUS: LaunchStatus.STARTED.value,
        ResultKey.RUN_ID: run_id,
        ResultKey.ATTEMPT: attempt,
        ResultKey.LOG: paths.log,
        ResultKey.LOG_OFFSET: log_offset,
        ResultKey.RESUME_FROM: resume,
        ResultKey.STATE_FILE: paths.state_file,
        ResultKey.SESSION: s.session,
        ResultKey.CONFIG: s.config,
        ResultKey.OUTPUT_DIR: output_dir,
        ResultKey.REPO_DIR: s.repo_dir,
        ResultKey.COMMIT: commit,
        ResultKey.LAUNCHER: kind,
        ResultKey.GPU_COUNT: gpus,
        ResultKey.SKIPPED_CHECKPOINTS: skipped,
    }

    env = _saved_environment(environ)
    env.update(
        {
            Inputs.WORKSPACE: s.workspace,
            Inputs.REPO_DIR: s.repo_dir,
            TRAINING_RUN_ID: run_id,
            TRAINING_ATTEMPT: str(attempt),
            Inputs.GPU_COUNT: str(gpus),
        }
    )
    plan = {
        PlanKey.ENV: env,
        PlanKey.WORKSPACE: s.workspace,
        PlanKey.REPO_DIR: s.repo_dir,
        PlanKey.CONFIG_PATH: config_path,
        PlanKey.OUTPUT_DIR: output_dir,
        PlanKey.TRAIN_SCRIPT: script,
        PlanKey.LAUNCHER: kind,
        PlanKey.GPU_COUNT: gpus,
        PlanKey.RUN_ID: run_id,
        PlanKey.ATTEMPT: attempt,
        PlanKey.RESUME_FROM: resume,
        PlanKey.STOP_POD: s.stop_pod,
        PlanKey.PYTHON: s.python,
        PlanKey.RP_ENV_FILE: s.rp_env_file,
        PlanKey.ACK_WAIT: s.ack_wait,
        PlanKey.SESSION: s.session,
        PlanKey.TOKEN: token,
        PlanKey.STALL: spec[SpecKey.STALL],
        PlanKey.POD_SLOT: s.pod_slot,
    }
    if s.shared_volume:
        plan[PlanKey.VENV] = sharedvolume.venv_dir(s)
    try:
        record.write_json_atomic(paths.supervisor_plan, plan, mode=0o600)
    except OSError:
        try:
            state.update(
                state=AttemptState.FAILED.value,
                ended_at=record.utc_now(),
                message=f"could not write {paths.supervisor_plan}",
            )
        except OSError:
            pass
        raise InputError(f"cannot write {paths.supervisor_plan}") from None
    if not handoff.await_supervisor(paths.state_file, pid):
        state.update(
            state=AttemptState.FAILED.value,
            ended_at=record.utc_now(),
            message=f"the supervisor in tmux session {s.session} did not start",
        )
        raise InputError(
            f"the training supervisor did not start in tmux session '{s.session}' "
            f"({' '.join(argv)} in {paths.runner_dir}); run it by hand there to see why"
        )
    runspec.record_run(s, spec, program)  # after the handoff: training starts meanwhile
    eventlog.emit(
        paths,
        Event.STARTED if attempt == 1 else Event.RECOVERED,
        run_id,
        attempt,
        pod=eventlog.pod_id(s.rp_env_file, environ),
        step=checkpoint_step(resume),
        checkpoint=resume,
        message=f"code {commit}" if commit else None,
        log=log.note,
    )
    print(format_answer(RESULT_PREFIX, result))
