"""The stops the runner knows of, per pod start: how a stopped pod is told from a preempted one
without GraphQL's status history (REST v2 has no lastStatusChange).

    <state_dir>/<stack>/stops.json   {pod_id: {"started_at": ..., "by": "runner" | "pod", "at": ...}}

"runner": the runner asked the API to stop that start of the pod (`runner stop`, the end of
`runner train`, sync), written *before* the request so a `runner train` watching the same pod from
another terminal reads it as soon as the pod shows EXITED. "pod": the runner saw the pod stop itself
after training (its self-stop writes <workspace>/.runner/self_stop.json on the volume first, see
remote/podside/selfstop.py). An EXITED spot pod whose current start has neither was interrupted
(runner/pod/pod.py StackPod.state).

Never a condition of a stop: a record that cannot be written (a full disk, a read-only state directory)
or a file that is damaged is reported with a warning, and the stop is asked for all the same.

The key is the pod's `startedAt`, which RunPod changes on every start: a record never outlives the
start it was made for, so a later preemption of the resumed pod is not mistaken for the old stop.

A self-stop this machine did not see (the end of a detached run, the idle stop) is read from the pod's
own marker on the volume when RunPod's S3 API reaches it (`StopLog.at(paths, marker=...)`,
runner/pod/volume_marker.py): written after this start began, it makes the stop the pod's, and is
then recorded here like one the runner saw. Without S3 such a stop of a spot pod reads as interrupted.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

from backends.runpod.models import Pod
from runner.output import plain as say
from runner.paths import StatePaths, write_private

RUNNER = "runner"
POD = "pod"


MarkerReader = Callable[[], "dict | None"]  # the pod's self_stop.json, or None (absent, unreadable)


class StopLog:
    def __init__(self, path: Path, marker: MarkerReader | None = None):
        self.path = path
        self.marker = marker

    @classmethod
    def at(cls, paths: StatePaths, marker: MarkerReader | None = None) -> StopLog:
        return cls(paths.pod_dir / "stops.json", marker)

    def _load(self) -> dict[str, dict]:
        try:
            data = json.loads(self.path.read_text())
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as e:
            self._damaged(str(getattr(e, "strerror", None) or "not JSON"))
            return {}
        if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
            self._damaged("not an object of pod records")
            return {}
        return data

    def _damaged(self, why: str) -> None:
        say(
            f"warning: {self.path} is damaged ({why}); it is ignored. Delete it: it only helps tell a stop "
            "from a preemption, and is written again at the next stop."
        )

    def _save(self, data: dict[str, dict]) -> None:
        try:
            write_private(self.path, json.dumps(data, indent=1, sort_keys=True) + "\n")
        except OSError as e:
            say(
                f"warning: could not record the stop in {self.path} ({e.strerror}); the stop is asked for "
                "anyway (a later EXITED of this start may read as a preemption)"
            )

    def record(self, pod: Pod, by: str) -> None:
        """This start of the pod is (being) stopped by `by` (RUNNER or POD); one record per pod."""
        data = self._load()
        data[pod.id] = {
            "started_at": pod.started_at,
            "by": by,
            "at": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        }
        self._save(data)

    def forget(self, pod: Pod) -> None:
        """The stop was not made after all (the request failed): drop the record for this start."""
        data = self._load()
        if data.get(pod.id, {}).get("started_at") == pod.started_at:
            del data[pod.id]
            self._save(data)

    def stopped_by(self, pod: Pod | None) -> str | None:
        """RUNNER or POD when this start of the pod was stopped by one of them, else None."""
        if pod is None:
            return None
        entry = self._load().get(pod.id)
        if not isinstance(entry, dict) or entry.get("started_at") != pod.started_at:
            return POD if self._stopped_itself(pod) else None
        by = entry.get("by")
        return by if by in (RUNNER, POD) else None

    def _stopped_itself(self, pod: Pod) -> bool:
        """The pod's marker on the volume says it stopped this start itself (read only for a stopped pod)."""
        if self.marker is None or not pod.is_stopped or not pod.started_at:
            return False
        data = self.marker()
        at = _utc(data.get("at")) if isinstance(data, dict) else None
        started = _utc(pod.started_at)
        if at is None or started is None or at < started:
            return False
        self.record(pod, POD)
        return True


def _utc(text: object) -> datetime | None:
    if not isinstance(text, str) or not text:
        return None
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


__all__ = ["POD", "RUNNER", "StopLog"]
