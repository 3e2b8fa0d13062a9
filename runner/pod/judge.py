"""When is the pod interrupted? Never on a flap: RunPod's own state, seen consistently.

A healthy run must never be stopped, resumed or replaced because the API or SSH flapped (SkyPilot
relaunched one healthy job 24 times in 19 hours after control-plane blips, skypilot#10155). So:
- an API error or timeout is no answer: it neither counts towards an interruption nor clears one;
- an SSH drop asks the API, and only the API's answer counts;
- the pod is interrupted once `reads` consecutive answers for the same pod start say it is not up,
  spanning at least `span_s` (a watcher polling every 15 s waits one more poll; the attached runner,
  polling every few seconds, as much);
- or at once when the pod's own record says so (its SIGTERM footer: the pod side saw the container stop).
A judge that saw the pod up again (or a new start: its startedAt changed) starts over.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from runner.pod.pod import Seen


@dataclass
class Sightings:
    """What the judge has seen so far: consecutive not-up answers for one pod start (JSON-able, for
    `runner watch --once`, which keeps it between passes)."""

    pod_id: str | None = None
    started_at: str | None = None
    first_at: float | None = None  # time.time() of the first not-up answer
    count: int = 0

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)

    @classmethod
    def from_json(cls, data: Any) -> Sightings:
        if not isinstance(data, dict):
            return cls()
        try:
            return cls(data.get("pod_id"), data.get("started_at"), data.get("first_at"), int(data.get("count") or 0))
        except (TypeError, ValueError):
            return cls()


class InterruptionJudge:
    def __init__(self, *, reads: int = 2, span_s: float = 0.0, sightings: Sightings | None = None):
        self.reads, self.span_s = max(1, reads), span_s
        self.sightings = sightings or Sightings()

    def saw(self, seen: Seen | None, now: float) -> Seen | None:
        """Feed one read (None: the API did not answer); the read that confirms an interruption, else None."""
        if seen is None:
            return None  # no answer: it says nothing about the pod
        if seen.state.up:
            self.sightings = Sightings()
            return None
        pod_id = seen.pod.id if seen.pod is not None else None
        started_at = seen.pod.started_at if seen.pod is not None else None
        s = self.sightings
        if s.count == 0 or (s.pod_id, s.started_at) != (pod_id, started_at):
            self.sightings = s = Sightings(pod_id, started_at, now, 0)
        s.count += 1
        if s.count >= self.reads and now - (s.first_at or now) >= self.span_s:
            return seen
        return None


__all__ = ["InterruptionJudge", "Sightings"]
