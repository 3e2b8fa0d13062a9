"""Where `runner train` trains: the stack's pod, any SSH machine (--host), or this machine (--local).

All three offer the same small surface, so runner/train.py has one code path:

    target.preflight()            local checks only; never a billable call
    target.prepare(say)           make it reachable (pod: resume/start it, wait for the SSH banner)
    target.connect() -> shell     SshConnection (pinned host key) or LocalShell; same methods
    target.after_disconnect(...)  on every SSH drop: raises TargetInterrupted when the pod stopped
    target.finish(keep=...)       after training: make sure the pod is stopped (pod only)
    target.release_unused(say)    after a failed launch: stop the pod again if this run started it
    target.bill_from/bill_until   pod time in segments (a preempted pod bills nothing until resumed);
    target.spent(now)             dollars across all segments of this command
PodTarget only, for automatic recovery (runner/recovery.py):
    target.observe()              one API read -> (classify() state, pod); never raises
    target.resume(say)            ensure_running again (spot: podBidResume with the stack's bid)
    target.recreate(say, replace=) a new pod through the stack: `pulumi up --refresh --yes` when the pod
                                  is gone, with `--replace <pod_urn>` when it still exists; re-read the
                                  outputs, reach the new pod
    target.abandon_recovery(say)  Ctrl-C before the relaunch: stop whatever the recovery brought up

Only PodTarget talks to the RunPod API.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Protocol

from infra.runpod_client import EXITED, TERMINATED, SshEndpoint
from runner.connect import PodLink, connect_endpoint, open_pod_link
from runner.errors import ApiError, PodError, RunnerError, SettingsError, redact
from runner.local_shell import LocalShell, launcher_environment
from runner.pod import (GONE, PREEMPTED, RUNNING_STATE, STARTING, STOPPED_BY_RUNPOD, STOPPED_BY_USER, RunningPod,
                        classify, stop_pod)
from runner.settings import Settings
from runner.ssh import RunResult, wait_for_ssh_banner
from runner.stack import StackOutputs, read_outputs_for, refresh_and_up_for, replace_and_up_for

Say = Callable[[str], None]

LOCAL_WORKSPACE = ".local-workspace"
LOCAL_SESSION = "runner-local"        # keeps clear of a tmux session the user calls "train"


class Shell(Protocol):
    """What train.py uses of runner.ssh.SshConnection (runner.local_shell.LocalShell has it too)."""

    target: object

    def run(self, command: str, *, stdin: bytes | None = None, timeout: float | None = None) -> RunResult: ...
    def run_script(self, script_text: str, env, *, timeout=None, on_stdout_line=None, on_stderr_line=None) -> RunResult: ...
    def read_file(self, path: str, *, offset: int = 0) -> bytes | None: ...
    def write_file(self, path: str, data: bytes, *, mode: int = 0o644) -> None: ...
    def follow(self, path: str, offset: int = 0, *, should_stop=None): ...
    def close(self) -> None: ...


class TargetInterrupted(PodError):
    """The pod stopped under a running training (preempted, stopped, gone, budget)."""

    def __init__(self, message: str, *, kind: str):
        super().__init__(message)
        self.kind = kind          # preempted | stopped_by_user | stopped_by_runpod | gone | budget


@dataclass(frozen=True)
class StopReport:
    text: str                      # for the summary: how the pod ended up
    stopped_at: float | None       # time.time() when it was seen stopped (None: still running / no pod)
    ok: bool = True                # False: could not make sure it stopped (it may still bill)


@dataclass
class Target:
    """Base: the parts the three targets share. `kind` is pod | host | local."""

    settings: Settings
    workspace: str = ""
    kind: str = ""
    label: str = ""
    session: str = "train"            # RT_SESSION default
    stops_pod: bool = False           # RT_STOP_POD=1 makes sense (a RunPod pod that can stop itself)
    billing_started: float | None = None   # start of the open billing segment (time.time())
    cost_per_hr: float | None = None
    pod_id: str | None = None
    billed_s: float = 0.0                  # closed segments of this command
    billed_usd: float = 0.0

    # -- pod time, in segments: a preempted pod bills nothing until it is resumed or recreated ------
    def bill_from(self, when: float) -> None:
        if self.billing_started is None:
            self.billing_started = when

    def bill_until(self, when: float) -> None:
        if self.billing_started is None:
            return
        seconds = max(0.0, when - self.billing_started)
        self.billed_s += seconds
        self.billed_usd += (self.cost_per_hr or 0.0) * seconds / 3600.0
        self.billing_started = None

    def billed_seconds(self, now: float) -> float:
        open_s = max(0.0, now - self.billing_started) if self.billing_started is not None else 0.0
        return self.billed_s + open_s

    def spent(self, now: float) -> float | None:
        """Estimated dollars of pod time so far (None without a price, or when nothing bills)."""
        if self.kind != "pod" or not self.cost_per_hr and not self.billed_usd:
            return None
        open_s = max(0.0, now - self.billing_started) if self.billing_started is not None else 0.0
        return self.billed_usd + (self.cost_per_hr or 0.0) * open_s / 3600.0

    def preflight(self) -> None: ...

    def prepare(self, say: Say) -> None: ...

    def connect(self) -> Shell:
        raise NotImplementedError

    def after_disconnect(self, error: Exception, attempt: int, say: Say) -> None:
        """Called on every SSH drop; raise TargetInterrupted to stop following."""

    def finish(self, *, keep: bool, say: Say, deadline_s: float) -> StopReport:
        return StopReport("not a RunPod pod: nothing to stop", None)

    def release_unused(self, say: Say) -> None:
        """After a launch failed: undo what prepare() started (pod: stop it if this run resumed it)."""

    def stop_now(self, say: Say) -> StopReport:
        return StopReport("not a RunPod pod: nothing to stop", None)

    def abandon_recovery(self, say: Say) -> StopReport:
        """Ctrl-C during a recovery, before the relaunch (pod only: stop what the recovery brought up)."""
        return StopReport("not a RunPod pod: nothing to stop", None)

    def repo(self) -> tuple[str, str]:
        """(RT_REPO_URL, RT_REPO_BRANCH)."""
        if not self.settings.repo_url:
            raise SettingsError(
                "set REPO_URL in .runpod.env (or the environment): the git URL of the training repo the "
                f"{'pod' if self.kind == 'pod' else 'machine'} clones, e.g. https://github.com/you/your-repo.git "
                "(private repos: an https URL with a read-only token, or a deploy key on the machine)."
            )
        return self.settings.repo_url, self.settings.repo_branch

    def hints(self, stack_flag: str) -> list[tuple[str, str]]:
        """(what, command) pairs telling the user how to come back to a detached run."""
        return []


def interruption(pod_id: str | None, state: str, pod) -> TargetInterrupted:
    """TargetInterrupted for a pod found not running; kind = the classify() state."""
    detail = f" ({pod.last_status_change})" if pod is not None and pod.last_status_change else ""
    why = {PREEMPTED: "was preempted (outbid by a higher spot bid)",
           STOPPED_BY_USER: "was stopped (by you, `runner stop`, or itself)",
           STOPPED_BY_RUNPOD: "was stopped by RunPod",
           GONE: "no longer exists"}.get(state, f"is {state}")
    return TargetInterrupted(f"pod {pod_id} {why}{detail}", kind=state)


# ---------------------------------------------------------------- the stack's pod
@dataclass
class PodTarget(Target):
    outputs: StackOutputs | None = None
    link: PodLink | None = None
    resumed: bool = False
    workspace_override: str | None = None
    recreating: bool = False          # inside recreate(), before the new outputs were read

    def __post_init__(self) -> None:
        self.kind = "pod"
        self.stops_pod = True

    def preflight(self) -> None:
        self.settings.preflight()                       # API key + SSH key, before any call
        self.outputs = self.outputs or read_outputs_for(self.settings)
        self.pod_id = self.outputs.pod_id
        self.workspace = self.workspace_override or self.outputs.workspace or "/workspace"
        self.label = f"pod {self.outputs.pod_id} (stack {self.outputs.stack})"
        self.cost_per_hr = self.outputs.cost_per_hr

    def prepare(self, say: Say) -> None:
        asked = time.time()
        self.link = open_pod_link(self.settings, start_if_stopped=True, on_progress=say, outputs=self.outputs)
        self.resumed = self.link.running.resumed
        self._running(asked, say)

    def _running(self, asked: float, say: Say) -> None:
        """The link is up: this run pays from the moment it asked for a stopped pod, or from now."""
        assert self.link is not None
        self.bill_from(asked if self.resumed else time.time())
        if self.link.pod.cost_per_hr:
            self.cost_per_hr = self.link.pod.cost_per_hr
        ep = self.link.endpoint
        say(f"pod {self.pod_id} is running; SSH at {ep.user}@{ep.host}:{ep.port}"
            + (f", ${self.cost_per_hr:.3f}/h" if self.cost_per_hr else ""))

    @property
    def market(self) -> str:
        pod = self.link.pod if self.link is not None else None
        if pod is not None and pod.interruptible is not None:
            return "spot" if pod.interruptible else "on-demand"
        return self.outputs.market if self.outputs is not None else "spot"

    def observe(self) -> tuple[str, object | None] | None:
        """One API read: (classify() state, pod), or None when the API did not answer."""
        assert self.link is not None
        try:
            pod = self.link.read_pod(with_history=True)
        except ApiError:
            return None
        except PodError:
            pod = None
        return classify(pod), pod

    def resume(self, say: Say) -> bool:
        """Make the same pod run again (spot: the stack's bid); True when it had to be started.
        Raises PodNoCapacity / PodGone / SpotUnavailableError / PodStartTimeout / ApiError."""
        assert self.link is not None
        asked = time.time()
        running = self.link.ensure_running(on_progress=say)
        self.resumed = running.resumed
        self._running(asked, say)
        return running.resumed

    def recreate(self, say: Say, *, replace: bool = False) -> None:
        """A new pod through the stack, never outside Pulumi's state; then the new outputs (pod id,
        maybe the on-demand market) and the new pod's SSH endpoint.

        replace=False: the pod is gone; `pulumi up --refresh --yes` (the refresh drops it, the up
        creates a new one). replace=True: the pod still exists but cannot run where it is; a refresh
        would keep it, so `--replace <pod_urn>` has the provider delete it and create a new one.
        Stacks from before the pod_urn output get the plain command and a warning."""
        old = self.pod_id
        asked = time.time()
        stack = self.settings.stack
        secrets = self.settings.secrets()
        urn = self.outputs.pod_urn if self.outputs is not None else None

        def stream(line: str) -> None:
            say(f"pulumi: {redact(line, secrets)}")

        self.recreating = True
        if replace and urn:
            say(f"replacing pod {old} through the stack: pulumi up --refresh --yes --replace {urn} --stack {stack}")
            replace_and_up_for(self.settings, urn, on_line=stream)
        else:
            if replace:
                say(f"warning: stack {stack} has no pod_urn output (it was deployed by an older version), so the "
                    f"runner cannot ask Pulumi to replace pod {old}, and a refresh keeps a stopped pod where it is. "
                    "Run `pulumi up` once to get the output; trying the plain recreate now")
            say(f"recreating the pod through the stack: pulumi up --refresh --yes --stack {stack}")
            refresh_and_up_for(self.settings, on_line=stream)
        self.outputs = read_outputs_for(self.settings)
        self.recreating = False
        self.pod_id = self.outputs.pod_id
        self.label = f"pod {self.outputs.pod_id} (stack {self.outputs.stack})"
        self.cost_per_hr = self.outputs.cost_per_hr
        if self.pod_id == old:
            say(f"the stack kept pod {old}; trying to start it again")
        self.link = open_pod_link(self.settings, start_if_stopped=True, on_progress=say, outputs=self.outputs)
        # A fresh pod bills from its creation, i.e. from the `pulumi up` we just ran.
        self.resumed = self.link.running.resumed or self.pod_id != old
        self._running(asked, say)

    def abandon_recovery(self, say: Say) -> StopReport:
        """Ctrl-C while recovering, before training was relaunched: nothing trains on the pod, so
        whatever the recovery resumed, started or created is stopped (an already stopped or gone
        pod needs nothing). Interrupted during `pulumi up`, the stack may name a new pod by now."""
        if self.recreating:
            try:
                self.outputs = read_outputs_for(self.settings)
                self.pod_id = self.outputs.pod_id
            except RunnerError as e:
                say(f"could not read the stack outputs after the interrupted `pulumi up` ({e.message})")
            self.recreating = False
        if self.link is None:
            return StopReport("not started by this command", None)
        return self.stop_now(say)

    def connect(self) -> Shell:
        assert self.link is not None, "prepare() first"
        return self.link.connect(timeout=20.0, keepalive=15)

    def after_disconnect(self, error: Exception, attempt: int, say: Say) -> None:
        assert self.link is not None
        try:
            pod = self.link.read_pod(with_history=True)
        except ApiError as e:
            # The API being unreachable says nothing about the pod; keep trying to reconnect.
            say(f"could not ask RunPod about pod {self.pod_id} ({e.message}); still reconnecting")
            return
        except PodError:
            pod = None
        state = classify(pod)
        if state == RUNNING_STATE and pod is not None and pod.ssh is not None:
            ssh = pod.ssh if pod.ssh.user else replace(pod.ssh, user=self.outputs.ssh_user)
            if ssh != self.link.endpoint:
                say(f"pod {self.pod_id} now answers at {ssh.host}:{ssh.port}")
            self.link.running = RunningPod(pod=pod, ssh=ssh, resumed=False)
            return
        if state == STARTING:
            if attempt == 1:
                say(f"pod {self.pod_id} is {pod.status if pod else 'starting'}; waiting for it")
            return
        raise interruption(self.pod_id, state, pod)

    def _wait_stopped(self, deadline_s: float) -> tuple[str | None, float | None]:
        """Poll the API until the pod is EXITED/gone; (status, when) or (None, None) at the deadline."""
        assert self.link is not None
        end = time.monotonic() + deadline_s
        delay = 0.2
        while True:
            try:
                pod = self.link.client.find_pod(self.pod_id)
            except Exception:       # noqa: BLE001 - an API hiccup: try again until the deadline
                pod = self.link.pod
            if pod is None or pod.status in (EXITED, TERMINATED, "ERROR"):
                return (pod.status if pod else "gone"), time.time()
            if time.monotonic() >= end:
                return None, None
            time.sleep(min(delay, max(0.0, end - time.monotonic())))
            delay = min(delay * 1.5, 3.0)

    def finish(self, *, keep: bool, say: Say, deadline_s: float) -> StopReport:
        if keep:
            return StopReport(f"still running (--keep-pod): it bills ${self.cost_per_hr or 0:.3f}/h until "
                              "`python -m runner stop`", None)
        say(f"checking that pod {self.pod_id} stopped itself (up to {deadline_s:.0f}s)")
        status, when = self._wait_stopped(deadline_s)
        if status is not None:
            return StopReport(f"stopped by itself ({status})", when)
        say(f"pod {self.pod_id} did not stop itself within {deadline_s:.0f}s; stopping it through the API")
        return self.stop_now(say)

    def stop_now(self, say: Say) -> StopReport:
        assert self.link is not None
        try:
            result = stop_pod(self.link.client, self.pod_id)
        except RunnerError as e:
            return StopReport(f"COULD NOT BE STOPPED ({e.message}); it may still bill: run `python -m runner stop`",
                              None, ok=False)
        text = "stopped by the runner" if result.stopped else "was already stopped"
        return StopReport(text, time.time())

    def release_unused(self, say: Say) -> None:
        if self.link is None:
            return
        if not self.resumed:
            say(f"pod {self.pod_id} was already running before this command; it is left running "
                "(`python -m runner stop` stops it)")
            return
        report = self.stop_now(say)
        say(f"nothing was started, so pod {self.pod_id} {report.text}")

    def hints(self, stack_flag: str) -> list[tuple[str, str]]:
        return [("follow the log", f"python -m runner logs -f{stack_flag}"),
                ("progress and cost", f"python -m runner status{stack_flag}"),
                ("stop the pod now", f"python -m runner stop{stack_flag}")]


# ---------------------------------------------------------------- any SSH machine
@dataclass
class HostTarget(Target):
    user: str = "root"
    host: str = ""
    port: int = 22
    banner_wait_s: float = 30.0

    def __post_init__(self) -> None:
        self.kind = "host"
        self.label = f"{self.user}@{self.host}:{self.port}"
        self.workspace = self.workspace or "/workspace"

    def preflight(self) -> None:
        self.settings.require_ssh_key()

    def prepare(self, say: Say) -> None:
        wait_for_ssh_banner(self.host, self.port, deadline_s=self.banner_wait_s, on_wait=say)
        self.bill_from(time.time())

    def connect(self) -> Shell:
        return connect_endpoint(self.settings, SshEndpoint(self.host, self.port, self.user), timeout=20.0)

    def hints(self, stack_flag: str) -> list[tuple[str, str]]:
        log = f"{self.workspace.rstrip('/')}/logs/current.log"
        key = self.settings.ssh_key_path
        return [("follow the log", f"ssh -i {key} -p {self.port} {self.user}@{self.host} tail -f {log}"),
                ("stop training", f"ssh -i {key} -p {self.port} {self.user}@{self.host} "
                                  f"tmux kill-session -t {self.session}")]


# ---------------------------------------------------------------- this machine
@dataclass
class LocalTarget(Target):
    def __post_init__(self) -> None:
        self.kind = "local"
        self.label = "this machine (--local)"
        self.session = LOCAL_SESSION
        self.workspace = self.workspace or str(self.settings.project_root / LOCAL_WORKSPACE)

    def preflight(self) -> None:
        missing = [tool for tool in ("bash", "tmux", "git", "python3") if shutil.which(tool) is None]
        if missing:
            raise SettingsError(
                f"--local needs {', '.join(missing)} on this machine; install them "
                f"(Debian/Ubuntu: sudo apt-get install -y {' '.join('python3-venv' if t == 'python3' else t for t in missing)})."
            )

    def prepare(self, say: Say) -> None:
        Path(self.workspace).mkdir(parents=True, exist_ok=True)
        self.bill_from(time.time())
        say(f"training on this machine; workspace {self.workspace}")

    def connect(self) -> Shell:
        env = launcher_environment(secrets=self.settings.secrets())
        return LocalShell(env=env, cwd=self.workspace)

    def repo(self) -> tuple[str, str]:
        """Default: this project's own checkout (committed content), on its current branch."""
        if self.settings.repo_url:
            return self.settings.repo_url, self.settings.repo_branch
        root = self.settings.project_root
        if not (root / ".git").exists():
            raise SettingsError(
                f"--local trains from a git checkout: {root} is not one. Run it from a clone of the project "
                "or set REPO_URL to a training repo."
            )
        branch = self.settings.repo_branch
        if self.settings.sources.get("REPO_BRANCH", "default") == "default":
            out = subprocess.run(["git", "-C", str(root), "symbolic-ref", "--quiet", "--short", "HEAD"],
                                 capture_output=True, text=True, timeout=10)
            if out.returncode == 0 and out.stdout.strip():
                branch = out.stdout.strip()
        return str(root), branch

    def hints(self, stack_flag: str) -> list[tuple[str, str]]:
        log = os.path.join(self.workspace, "logs", "current.log")
        return [("follow the log", f"tail -f {log}"),
                ("stop training", f"tmux kill-session -t {self.session}")]


def make_target(args, settings: Settings) -> Target:
    """The target the flags ask for (no I/O)."""
    workspace = getattr(args, "workspace", None)
    if getattr(args, "local", False):
        return LocalTarget(settings, workspace=workspace or "")
    host = getattr(args, "host", None)
    if host is not None:
        return HostTarget(settings, workspace=workspace or "", user=host.user, host=host.host, port=host.port)
    return PodTarget(settings, workspace_override=workspace)
