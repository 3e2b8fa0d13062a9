"""What the lifecycle created, kept on disk the moment RunPod names it, and the cleanup that removes it.

The record (<RUNNER_STATE_DIR>/livecheck-created.json: the run's pod name and the ids) outlives a hard
kill: the next live check terminates what it lists before anything else. Pods a create call made but
never named (Ctrl-C inside the call) are found by the run's unique pod name.
"""

from __future__ import annotations

import json
import signal
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from backends.runpod.client import RunPodClient
from backends.runpod.errors import NotFound, RunPodError
from backends.runpod.models import TERMINATED
from runner.paths import write_private

GONE_WAIT_S = 120.0


class Created:
    def __init__(self, path: Path, name: str):
        self.path = path
        self.name = name
        self.pod_ids: list[str] = []

    @classmethod
    def leftover(cls, path: Path) -> Created | None:
        """An earlier run's record, if it left one."""
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            return None
        rec = cls(path, str(data.get("name") or ""))
        rec.pod_ids = [str(p) for p in data.get("pod_ids") or []]
        return rec

    def _save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        write_private(self.path, json.dumps({"name": self.name, "pod_ids": self.pod_ids}))

    def begin(self) -> None:
        """Written before the first create, so a create cut short is still found by name."""
        self._save()

    def add(self, pod_id: str) -> None:
        if pod_id not in self.pod_ids:
            self.pod_ids.append(pod_id)
            self._save()

    def cleanup(self, client: RunPodClient, say) -> list[str]:
        """Terminate every pod of this run and wait until RunPod no longer lists it; the ids left behind."""
        with _shielded(say):
            ids = list(self.pod_ids)
            if self.name:
                try:
                    ids += [p.id for p in client.list_pods(name=self.name) if p.id not in ids]
                except RunPodError as e:
                    say(f"cleanup: cannot list pods named {self.name} ({e.message})")
            left = [pid for pid in ids if not _terminate(client, pid, say)]
            if not left:
                self.path.unlink(missing_ok=True)
            else:
                self.pod_ids = left
                self._save()
            return left


def _terminate(client: RunPodClient, pod_id: str, say) -> bool:
    say(f"cleanup: terminating pod {pod_id}")
    try:
        client.terminate_pod(pod_id)
    except NotFound:
        return True
    except RunPodError as e:
        say(f"cleanup: terminate {pod_id} failed: {e.message}")
        return False
    deadline = time.monotonic() + GONE_WAIT_S
    while time.monotonic() < deadline:
        try:
            pod = client.find_pod(pod_id)
            gone = pod is None or pod.status == TERMINATED
        except RunPodError:
            gone = False  # unknown (a failed read): keep waiting
        if gone:
            say(f"cleanup: pod {pod_id} is gone")
            return True
        time.sleep(1.0)
    return False


@contextmanager
def _shielded(say) -> Iterator[None]:
    """Ctrl-C and SIGTERM wait while the cleanup runs: it is what they are asking for."""

    def hold(signum, frame) -> None:
        say("cleanup in progress: wait a moment, it removes what the live check created")

    old = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        for s in old:
            signal.signal(s, hold)
    except ValueError:  # not the main thread (tests calling in-process): nothing to shield
        old = {}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)


def stderr_say(message: str) -> None:
    print(f"livecheck: {message}", file=sys.stderr, flush=True)


__all__ = ["Created", "stderr_say"]
