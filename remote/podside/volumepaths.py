"""Where things live on the network volume: VolumePaths, part of the runner–pod protocol (contract.py
re-exports it). Standard library only: it travels to the pod in the program and in the start command's
slice of it."""

from __future__ import annotations

import os
import re
from typing import List, NamedTuple, Optional

DEFAULT_WORKSPACE = "/workspace"
# What a pod's name in its stack may be: it names the pod's folder of records on the volume.
POD_SLOT_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,31}$")


class VolumePaths(NamedTuple):
    """Paths under the workspace (the network volume, /workspace on a RunPod pod). NamedTuples, not
    dataclasses, in the pod-side program: dataclasses imports inspect, ~8 ms of every start there.

    slot: the pod's name in a stack of several pods on this volume. Every record of what one pod is
    doing (state.json, the launch lock, the log, the supervisor's plan, the ack, the hold, the self-stop
    marker, the idle stop's files) is then the pod's own, under .runner/pods/<slot>/ and
    logs/pods/<slot>/, so no two pods ever write one file; "" (the first pod, and every one-pod stack)
    keeps them where they always were. The run's records (spec, events) are per run id, and the shared
    things (the data, the caches, the git objects, the venvs) are written under a volume-wide lock."""

    workspace: str = DEFAULT_WORKSPACE
    slot: str = ""

    def _join(self, *parts: str) -> str:
        return "/".join([self.workspace.rstrip("/") or "", *parts])

    def _pod(self, *parts: str) -> str:  # a record of this pod's
        return self._join(".runner", "pods", self.slot, *parts) if self.slot else self._join(".runner", *parts)

    @property
    def data(self) -> str:
        return self._join("data")

    @property
    def log_dir(self) -> str:
        return self._join("logs", "pods", self.slot) if self.slot else self._join("logs")

    @property
    def log(self) -> str:
        return self.log_dir + "/current.log"

    @property
    def runner_dir(self) -> str:  # this pod's records (the volume's .runner/ for the first pod)
        return self._pod()

    @property
    def volume_runner_dir(self) -> str:  # the volume's own records: programs, runs, events, git, venvs
        return self._join(".runner")

    @property
    def state_file(self) -> str:
        return self._pod("state.json")

    @property
    def ack_file(self) -> str:
        return self._pod("ack")

    @property
    def lock_file(self) -> str:
        return self._pod("launch.lock")

    @property
    def self_stop_marker(self) -> str:  # written just before the pod asks the API to stop it (SelfStopKey)
        return self._pod("self_stop.json")

    @property
    def idle_watch(self) -> str:  # the idle stop's status (IdleKey), rewritten at every check
        return self._pod("idlewatch.json")

    @property
    def supervisor_plan(self) -> str:  # launch -> supervisor: environment (no API key) + plan; mode 600
        return self._pod("supervise.json")

    @property
    def train_secrets(self) -> str:  # training's secrets {name: value} (trainsecrets.py); mode 600
        return self._pod("train-secrets.json")

    @property
    def config_cache(self) -> str:  # the launch's output_dir per config text (configfile.py)
        return self._pod("config-cache.json")

    @property
    def tensorboard_file(self) -> str:
        return self._pod("tensorboard.json")

    @property
    def tensorboard_log(self) -> str:
        return self.log_dir + "/tensorboard.log"

    # ---- the run's records (runfiles.py: SpecKey, HoldKey, EventKey, NotifyKey); run ids: RUN_ID_RE
    def spec_file(self, run_id: str) -> str:  # the run's spec, rewritten by every launch; mode 600
        return self._join(".runner", "runs", run_id, "spec.json")

    @property
    def hold_file(self) -> str:  # written by the runner before a stop on purpose: no auto-resume
        return self._pod("hold.json")

    def events_file(self, run_id: str) -> str:  # the pod's event log of the run, one JSON object a line
        return self._join(".runner", "events", run_id + ".jsonl")

    def sent_marker(self, event_id: str) -> str:  # created (O_EXCL) by the one sender of that event
        return self._join(".runner", "sent", event_id)

    @property
    def notify_file(self) -> str:  # {"urls": [...]} from RT_NOTIFY_URLS; mode 600
        return self._pod("notify.json")

    @property
    def notify_log(self) -> str:  # failed notifications (the URL redacted)
        return self.log_dir + "/notify.log"

    @property
    def autoresume_log(self) -> str:  # what the pod's start decided about the current run
        return self.log_dir + "/autoresume.log"

    @property
    def current_program(self) -> str:  # symlink to the last launch's podside-<hash>.pyz (auto-resume)
        return self._join(".runner", "podside-current.pyz")

    # ---- a volume shared by several pods (RT_SHARED_VOLUME): what no two runs share, what all share
    def run_dir(self, run_id: str) -> str:  # the run's own folder: its checkout (and outputs in it)
        return self._join("runs", run_id)

    def git_store(self, name: str) -> str:  # one bare clone per repo: the objects every run's worktree uses
        return self._join(".runner", "git", name + ".git")

    def shared_venv(self, key: str) -> str:  # one venv per requirements and interpreter, built once
        return self._join(".runner", "venvs", key)

    @property
    def pods_dir(self) -> str:  # the other pods' records (.runner/pods/<slot>/)
        return self._join(".runner", "pods")

    def other_pods(self) -> List[VolumePaths]:
        """The records of every other pod of the stack seen on this volume (the first pod's too)."""
        try:
            names = sorted(n for n in os.listdir(self.pods_dir) if POD_SLOT_RE.match(n))
        except OSError:
            names = []
        return [VolumePaths(self.workspace, n) for n in ["", *names] if n != self.slot]

    def default_repo_dir(self, repo_url: Optional[str]) -> Optional[str]:
        """RT_REPO_DIR's default: <workspace>/<basename of the repo URL without .git>."""
        if not repo_url:
            return None
        name = repo_url.rstrip("/").rsplit("/", 1)[-1].rsplit(":", 1)[-1]
        if name.endswith(".git"):
            name = name[:-4]
        return self._join(name) if name not in ("", ".", "..") else None
