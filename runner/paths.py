"""Where the runner keeps local state (RUNNER_STATE_DIR, default ~/.runpod-trainer).

    <state_dir>/<stack>/
        known_hosts        host keys pinned for the current pod start (RunPod rotates them on start)
        ssh_config         written by `runner ssh-config`
        runs/<run_id>.json what the runner knows about a run (log offset, attempt, result)
        last_run           id of the newest run started from this machine
        stops.json         the stops the runner made or saw, per pod start (runner/pod/stops.py)
        stack_outputs.json the stack outputs, cached per local-backend state (runner/pod/stack_cache.py; 0600)
        lock               held by a `runner train` that is following a run
        events/<run_id>.jsonl  the events this machine sent (runner/eventlog.py); sent/<event id>: each once
        notify.log         notifications that failed (the URL reduced to its host)

One directory per stack, so a `dev` and a `prod` stack never mix host keys or runs. A stack with several
pods (podCount) keeps each pod's own state (its pinned host keys, its lock, its recovery claim, its stops,
its watcher) in <state_dir>/<stack>/pods/<slot>/ for every pod but the first, whose state stays where it
always was; runs, events and the caches are the stack's.
"""

from __future__ import annotations

import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

_SAFE = re.compile(r"[^A-Za-z0-9._-]")


@dataclass(frozen=True)
class StatePaths:
    state_dir: Path
    stack: str
    slot: str = ""  # the pod's folder of records when the stack has several ("": the first pod)

    @property
    def stack_dir(self) -> Path:
        # Stack names may contain "/" (org/project/stack); keep one flat directory per stack.
        return self.state_dir / _SAFE.sub("_", self.stack)

    @property
    def pod_dir(self) -> Path:
        """This pod's own state: the stack's directory for the first pod, pods/<slot>/ for the others."""
        return self.stack_dir / "pods" / _SAFE.sub("_", self.slot) if self.slot else self.stack_dir

    @property
    def known_hosts(self) -> Path:
        return self.pod_dir / "known_hosts"

    @property
    def ssh_config(self) -> Path:
        return self.stack_dir / "ssh_config"

    @property
    def runs_dir(self) -> Path:
        return self.stack_dir / "runs"

    def run_file(self, run_id: str) -> Path:
        return self.runs_dir / f"{_SAFE.sub('_', run_id)}.json"

    @property
    def last_run(self) -> Path:
        return self.stack_dir / "last_run"

    @property
    def lock(self) -> Path:
        return self.pod_dir / "lock"

    def events_file(self, run_id: str) -> Path:
        return self.stack_dir / "events" / f"{_SAFE.sub('_', run_id)}.jsonl"

    def sent_marker(self, event_id: str) -> Path:
        return self.stack_dir / "sent" / _SAFE.sub("_", event_id)

    @property
    def notify_log(self) -> Path:
        return self.stack_dir / "notify.log"

    def ensure(self) -> StatePaths:
        """Create the directories (private: 0700) and return self."""
        for d in (self.state_dir, self.stack_dir, self.runs_dir, self.pod_dir):
            d.mkdir(mode=0o700, parents=True, exist_ok=True)
        try:
            os.chmod(self.stack_dir, 0o700)
        except OSError:
            pass
        return self


def write_private(path: Path, text: str) -> None:
    """Replace `path` with `text` atomically (temp file + rename), readable by the owner only.

    Local state (pins, run records, ssh config) must never be half-written or world-readable."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
