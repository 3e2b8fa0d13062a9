"""The supervisor: runs inside tmux (`podside-<hash>.pyz supervise`), one per attempt.

It takes the launch's environment and plan from .runner/supervise.json, sets up the venv, runs
training with its output appended to the log while the stall guard watches it (stallguard.py),
records the outcome, sends `finished` / `failed` / `stalled` (eventlog.py), closes the attempt with
a footer, waits for an attached runner's ack and stops the pod (selfstop.py).

The stop never depends on the volume: a full volume (a common way for a fine-tune to end) makes every
write before it fail, so the log lines, the state record and the marker are best effort there, and
the stop is asked for all the same. A supervisor failing otherwise still ends in finish() (try/finally).

Signals: SIGTERM (spot preemption or container stop; RunPod gives about 5 s) is passed on to the
running child, `preempted` is recorded with the last complete checkpoint (`stopped` when hold.json
holds the attempt: the runner stopped it on purpose), and the supervisor exits 143 without stopping
the pod. SIGHUP / SIGINT (tmux kill-session, Ctrl-C) end training; the normal path then records
`stopped` and stops the pod. Once the attempt is ending, signals are ignored.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import time
from typing import Any, Callable, Dict, List, Optional

from . import checkpoints, eventlog, handoff, logbook, record, selfstop, tracker, trainsecrets
from .children import Children
from .contract import AttemptState, Event, PlanKey, StallAction, VolumePaths, ack_text, checkpoint_step, is_held
from .loglines import EndedNote, Footer
from .stallguard import StallConfig, StallGuard
from .venvsetup import VenvError, VenvSetup

SIGNALS = (signal.SIGTERM, signal.SIGHUP, signal.SIGINT)
CHILD_GRACE_S = 3.0
STALL_GRACE_S = 30.0  # a stalled training's time to go after SIGTERM, before SIGKILL
ACK_POLL_S = 0.05
ENDING_EVENTS = {AttemptState.SUCCEEDED: Event.FINISHED, AttemptState.FAILED: Event.FAILED}


class CommandError(Exception):
    pass


def training_env(base: Dict[str, str], repo_dir: str, workspace: str, venv: Optional[str] = None) -> Dict[str, str]:
    env = dict(base)
    venv = venv or os.path.join(repo_dir, "venv")
    env["VIRTUAL_ENV"] = venv
    env["PATH"] = os.path.join(venv, "bin") + (":" + env["PATH"] if env.get("PATH") else "")
    env["PYTHONUNBUFFERED"] = "1"
    env["PYTHONPATH"] = repo_dir + (":" + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env.setdefault("HF_HOME", os.path.join(workspace, ".cache", "huggingface"))
    env.pop("PYTHONHOME", None)
    return env


def training_command(plan: Dict[str, Any], env: Dict[str, str]) -> List[str]:
    kind, gpus, script = plan[PlanKey.LAUNCHER], int(plan[PlanKey.GPU_COUNT]), plan[PlanKey.TRAIN_SCRIPT]
    if kind == "python":
        argv = ["python", "-u", script]
    elif kind == "torchrun":
        if not shutil.which("torchrun", path=env.get("PATH")):
            raise CommandError(
                "torchrun not found in the venv or on PATH; add torch to requirements.txt or set RT_LAUNCHER=python"
            )
        argv = ["torchrun", "--standalone", f"--nproc_per_node={gpus}", script]
    else:
        if not shutil.which("accelerate", path=env.get("PATH")):
            raise CommandError(
                "accelerate not found in the venv or on PATH; add accelerate to requirements.txt "
                "or pick another RT_LAUNCHER"
            )
        argv = ["accelerate", "launch", f"--num_processes={gpus}"] + (["--multi_gpu"] if gpus > 1 else []) + [script]
    argv += ["--config", plan[PlanKey.CONFIG_PATH]]
    if plan.get(PlanKey.RESUME_FROM):
        argv += ["--resume", plan[PlanKey.RESUME_FROM]]
    return argv


def warm_end_imports() -> None:
    """What the attempt's end needs and the start does not (the stop's urllib, zipfile for a torch-format
    checkpoint), imported once training runs: off the launch's path, and not left to the end, which
    a preemption's SIGTERM gives about 5 s."""
    import urllib.request  # noqa: F401
    import zipfile  # noqa: F401       (first: a SIGTERM's checkpoint check may need it)


class Supervisor:
    def __init__(self, plan: Dict[str, Any]):
        self.plan = plan
        self.paths = VolumePaths(plan[PlanKey.WORKSPACE], plan.get(PlanKey.POD_SLOT) or "")
        self.log = logbook.Log(self.paths.log, pane=True)
        self.state = record.StateFile(self.paths.state_file)
        self.children = Children(self.paths.log)
        self.run_id: str = plan[PlanKey.RUN_ID]
        self.attempt: int = int(plan[PlanKey.ATTEMPT])
        self.key: Optional[str] = None
        self.fail_message = ""
        self.interrupted = False
        self.finishing = False  # finish() runs: nothing may start it a second time
        self.stalled: Optional[str] = None  # why the stall guard stopped training

    # ---- signals ---------------------------------------------------------------------------
    def on_term(self, signum, frame) -> None:
        for sig in SIGNALS:
            signal.signal(sig, signal.SIG_IGN)
        child = self.children.signal(signal.SIGTERM)
        last = checkpoints.newest(self.plan[PlanKey.OUTPUT_DIR])
        now = record.utc_now()
        held = is_held(record.load(self.paths.hold_file), self.run_id, self.attempt)
        ended = AttemptState.STOPPED if held else AttemptState.PREEMPTED
        if held:  # stopped on purpose: never relaunched by the pod
            trainsecrets.forget(self.paths)
        try:
            self.state.update(
                state=ended.value,
                ended_at=now,
                last_checkpoint=last,
                message=(
                    "SIGTERM received: the run was stopped on purpose (hold.json)"
                    if held
                    else "SIGTERM received (spot preemption or container stop); the pod was not stopped by the launcher"
                ),
            )
        except OSError as exc:  # the volume may be going away: still close the attempt
            logbook.say(f"[remote_train] could not record the preemption: {exc}")
        try:
            self.log.line(Footer(now, self.run_id, self.attempt, ended.value, None, last).line())
            self.log.note(f"SIGTERM received: recorded state {ended.value}; not stopping the pod")
        except OSError:
            pass
        if child is not None:
            deadline = time.monotonic() + CHILD_GRACE_S
            while time.monotonic() < deadline:
                try:
                    if os.waitpid(child.pid, os.WNOHANG)[0]:
                        break
                except ChildProcessError:
                    break
                time.sleep(0.05)
        os._exit(143)

    def on_interrupt(self, signum, frame) -> None:
        self.interrupted = True
        self.children.signal(signal.SIGTERM)
        self.log.note("interrupted: asked training to stop")

    # ---- the attempt -----------------------------------------------------------------------
    def run(self) -> int:
        # The pod's key may reach us through the tmux server's environment: kept for the stop only;
        # pip and training get the launch's environment, which never has it.
        self.key = os.environ.get("RUNPOD_API_KEY")
        os.environ.clear()
        os.environ.update(self.plan[PlanKey.ENV])
        signal.signal(signal.SIGTERM, self.on_term)
        signal.signal(signal.SIGHUP, self.on_interrupt)
        signal.signal(signal.SIGINT, self.on_interrupt)
        try:
            return self.attempt_run()
        except BaseException as exc:  # a full volume, a bug: the attempt still ends, the pod still stops
            if self.finishing:
                raise
            self.fail_message = f"the supervisor failed: {type(exc).__name__}: {exc}"
            return self.finish(AttemptState.FAILED, 1)

    def attempt_run(self) -> int:
        self.state.update(supervisor_pid=os.getpid())
        repo_dir = self.plan[PlanKey.REPO_DIR]
        try:
            os.chdir(repo_dir)
        except OSError:
            self.fail_message = f"repo dir {repo_dir} vanished"
            return self.finish(AttemptState.FAILED, 1)
        logbook.say(
            f"[remote_train] run {self.run_id} attempt {self.attempt}; full output: tail -f "
            f"{shlex.quote(self.paths.log)}"
        )
        shared_venv = self.plan.get(PlanKey.VENV)
        try:
            setup = VenvSetup(
                repo_dir,
                self.plan[PlanKey.PYTHON],
                self.children,
                self.log.note,
                cache_dir=os.path.join(self.plan[PlanKey.WORKSPACE], ".cache"),
                venv=shared_venv,
            )
            if shared_venv:  # built once by one pod, used as it is by the others (sharedvolume.py)
                from .sharedvolume import volume_lock

                with volume_lock(shared_venv + ".lock", "the shared venv", note=self.log.note):
                    setup.ensure()
            else:
                setup.ensure()
        except VenvError as exc:
            self.fail_message = str(exc)
            return self.finish(AttemptState.FAILED, exc.code)
        if self.interrupted:
            self.fail_message = "interrupted during setup"
            return self.finish(AttemptState.STOPPED, 130)
        env = training_env(dict(os.environ), repo_dir, self.plan[PlanKey.WORKSPACE], shared_venv)
        env.update(trainsecrets.load(self.paths))  # training's alone: not pip's, not the tmux server's
        env.update(self.tracker_env(env))
        if self.interrupted:
            self.fail_message = "interrupted during setup"
            return self.finish(AttemptState.STOPPED, 130)
        try:
            argv = training_command(self.plan, env)
        except CommandError as exc:
            self.fail_message = str(exc)
            return self.finish(AttemptState.FAILED, 1)
        self.log.note("running: " + shlex.join(argv))
        try:
            proc = self.children.start(argv, env)
        except OSError as exc:
            self.fail_message = f"cannot start {argv[0]}: {exc.strerror}"
            return self.finish(AttemptState.FAILED, 127)
        self.state.update(state=AttemptState.RUNNING.value, train_pid=proc.pid)
        warm_end_imports()
        code = self.watch(env)
        if code == 0:
            return self.finish(AttemptState.SUCCEEDED, 0)
        if self.stalled:
            self.fail_message = f"stalled: {self.stalled}; training was stopped"
            return self.finish(AttemptState.STALLED, code)
        if self.interrupted:
            self.fail_message = f"interrupted: training exited with code {code}"
            return self.finish(AttemptState.STOPPED, code)
        self.fail_message = f"training exited with code {code}"
        return self.finish(AttemptState.FAILED, code)

    def tracker_env(self, env: Dict[str, str]) -> Dict[str, str]:
        """The same W&B, MLflow and TensorBoard run for every attempt of this run (tracker.py)."""
        plan = self.plan
        board = tracker.board_dir(
            plan[PlanKey.CONFIG_PATH], plan[PlanKey.REPO_DIR], plan[PlanKey.OUTPUT_DIR], self.run_id
        )
        extra = tracker.defaults(env, self.run_id, board)
        if tracker.wants_mlflow_run(env):
            python = os.path.join(plan[PlanKey.REPO_DIR], "venv", "bin", "python")
            helper_env = {**env, **extra}
            found = tracker.mlflow_run(
                lambda argv: self.children.output(argv, tracker.MLFLOW_TIMEOUT_S, env=helper_env, stderr_to_log=True),
                python,
                self.run_id,
                self.log.note,
            )
            if found:
                extra["MLFLOW_RUN_ID"] = found
        if extra:
            self.log.note(tracker.describe(extra))
        return extra

    def watch(self, env: Dict[str, str]) -> int:
        """Wait for training to end, asking the stall guard between waits; its exit status."""
        config = StallConfig.from_plan(self.plan.get(PlanKey.STALL))
        if config.off:
            return self.children.wait()
        guard = StallGuard(config, self.paths.log, self.plan[PlanKey.OUTPUT_DIR], env)
        while True:
            code = self.children.wait_for(guard.poll_s)
            if code is not None:
                return code
            why = guard.check()
            if why is None:
                continue
            stopping = config.action == StallAction.STOP.value
            self.log.note(
                f"stall: {why}; "
                + ("stopping training (the newest complete checkpoint stays)" if stopping else "reported only")
            )
            self.emit(Event.STALLED, checkpoints.newest(self.plan[PlanKey.OUTPUT_DIR]), why, recurring=not stopping)
            if stopping:
                self.stalled = why
                return self.children.end(STALL_GRACE_S)
            guard.rearm()

    def emit(self, event: Event, last: Optional[str], message: Optional[str], recurring: bool = False) -> None:
        eventlog.emit(
            self.paths,
            event,
            self.run_id,
            self.attempt,
            pod=eventlog.pod_id(self.plan[PlanKey.RP_ENV_FILE], os.environ),
            step=checkpoint_step(last),
            checkpoint=last,
            message=message,
            recurring=recurring,
            log=self.log.note,
        )

    def footer(self, state: AttemptState, code: Optional[int], last: Optional[str]) -> None:
        self.log.line(Footer(record.utc_now(), self.run_id, self.attempt, state.value, code, last).line())

    def best_effort(self, what: str, write: Callable[[], object]) -> None:
        """A write on the way to the stop: its failure (a full volume) is said on the pane, never raised."""
        selfstop.before_stop(what, write, logbook.say)

    def finish(self, state: AttemptState, code: Optional[int]) -> int:
        self.finishing = True
        for sig in SIGNALS:
            signal.signal(sig, signal.SIG_IGN)
        try:
            last = checkpoints.newest(self.plan[PlanKey.OUTPUT_DIR])
        except Exception:  # noqa: BLE001 - the stop matters more than the checkpoint's name
            last = None
        ended = EndedNote(state.value, code, last).line(self.fail_message)
        self.best_effort("write the end to the log", lambda: self.log.line(ended))
        trainsecrets.forget(self.paths)  # the run ended: the pod never relaunches it, nothing needs them
        logbook.say(ended)
        os.sync()
        ending = dict(
            state=state.value,
            exit_code=code,
            ended_at=record.utc_now(),
            last_checkpoint=last,
            message=self.fail_message or None,
            train_pid=None,
        )
        event = ENDING_EVENTS.get(state)
        if not self.plan[PlanKey.STOP_POD]:
            # --keep-pod on a pod; --host and --local always (this machine may be no pod at all)
            self.log.note("RT_STOP_POD=0: not stopping this machine")
            self.best_effort("record the end", lambda: self.state.update(stop_requested=False, **ending))
            self.best_effort("write the footer", lambda: self.footer(state, code, last))
            if event:
                self.best_effort("send the event", lambda: self.emit(event, last, self.fail_message or None))
            return 1 if code is None else code
        # Recorded before the request: a successful stop kills this container right away.
        self.best_effort("record the end", lambda: self.state.update(stop_requested=True, **ending))
        self.best_effort("write the footer", lambda: self.footer(state, code, last))
        if event:  # sent before the ack wait and the stop: the notification has the most time to go out
            self.best_effort("send the event", lambda: self.emit(event, last, self.fail_message or None))
        self.await_ack()
        self.best_effort(
            f"write {self.paths.self_stop_marker}",
            lambda: selfstop.write_marker(self.paths.self_stop_marker, self.run_id, self.attempt),
        )
        creds = selfstop.read_credentials(self.plan[PlanKey.RP_ENV_FILE], os.environ, self.key, self.log.note)
        method = selfstop.stop_pod(creds, os.environ, self.paths.log, self.log.note)
        if method:
            self.best_effort("record the stop", lambda: self.state.update(stop_method=method))
            self.log.note(f"stop requested via {method}")
        else:
            prefix = f"{self.fail_message}; " if self.fail_message else ""
            self.best_effort(
                "record the failed stop",
                lambda: self.state.update(
                    stop_requested=False,
                    stop_method=None,
                    message=prefix + "could not stop the pod (see the log); it is still billing",
                ),
            )
            self.log.note(
                "ERROR: could not stop the pod with the REST API or runpodctl; it keeps billing until "
                "stopped (python -m runner stop)"
            )
        return 1 if code is None else code

    def await_ack(self) -> None:
        """Give an attached runner up to RT_ACK_WAIT s to confirm (by writing "<run_id> <attempt>" to
        .runner/ack) that it has read the end, so the pod does not vanish first."""
        wait = float(self.plan.get(PlanKey.ACK_WAIT) or 0)
        if wait <= 0:
            return
        self.log.note(f"waiting up to {wait:g}s for the runner to confirm it has read the result")
        want = ack_text(self.run_id, self.attempt)
        deadline = time.monotonic() + wait
        while True:
            try:
                with open(self.paths.ack_file, encoding="utf-8") as fh:
                    if fh.read().strip() == want:
                        self.log.note("the runner confirmed")
                        return
            except OSError:
                pass
            if time.monotonic() >= deadline:
                break
            time.sleep(ACK_POLL_S)
        self.log.note(f"no confirmation from a runner within {wait:g}s; going on")


def main(plan_path: str, token: Optional[str] = None, launcher_pid: Optional[int] = None) -> int:
    """Run the plan at plan_path; with a token, first wait for the launcher to write the plan that
    carries it (handoff.py), and give up, starting nothing, when the launcher is gone without one."""
    if token is None:
        with open(plan_path, encoding="utf-8") as fh:
            plan = json.load(fh)
    else:
        found = handoff.await_plan(plan_path, token, launcher_pid or 0)
        if found is None:
            logbook.say(
                f"[remote_train] the launcher (pid {launcher_pid}) ended without handing over a plan; "
                "nothing was started"
            )
            return 3
        plan = found
    return Supervisor(plan).run()
