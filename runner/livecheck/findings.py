"""The README's UNCONFIRMED assumptions (section "Assumptions (the reference marks these UNCONFIRMED)"),
what the live check found about each, and the report it prints."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TextIO

from runner.types import StrEnum


class Verdict(StrEnum):
    CONFIRMED = "confirmed"
    REFUTED = "refuted"  # the client assumes something RunPod does not do: fix infra/ (see the detail)
    NOT_CHECKED = "not checked"


# README numbering; the text is the assumption as the client makes it.
ASSUMPTIONS: dict[int, str] = {
    1: "a spot bid below the minimum is rejected (not queued) with a message containing 'minimum bid'",
    2: "a spot pod reports podType INTERRUPTABLE (or BID)",
    3: "minimumBidPrice is per GPU, like bidPerGpu",
    4: "v2 `start` on a stopped spot pod is refused (with the podResume text)",
    5: "deleting a volume in use over v2 is refused with the GraphQL text",
    6: "network volumes take PATCH {name?, size?} on v2",
    7: "a 503 means 'not processed' (safe to retry a create)",
    8: "a pod can stop itself through REST v2 (POST /v2/pods/{id}/action stop) with its pod-scoped RUNPOD_API_KEY",
    9: "the v2 catalog lists a GPU-hour per single GPU as `price.secure` (and `price.community`)",
    10: "a retired GraphQL answers 404, 405 or 410",
}


@dataclass
class Finding:
    number: int
    verdict: Verdict
    evidence: str


@dataclass
class Observation:
    """A read or lifecycle step: what was asked and whether RunPod answered as the client expects."""

    name: str
    ok: bool
    detail: str


@dataclass
class Report:
    findings: dict[int, Finding] = field(default_factory=dict)
    steps: list[Observation] = field(default_factory=list)
    spent_usd: float = 0.0
    leftovers: list[str] = field(default_factory=list)  # pod ids the cleanup could not remove

    def find(self, number: int, verdict: Verdict, evidence: str) -> None:
        self.findings[number] = Finding(number, verdict, evidence)

    def step(self, name: str, ok: bool, detail: str) -> Observation:
        obs = Observation(name, ok, detail)
        self.steps.append(obs)
        return obs

    def all_findings(self) -> list[Finding]:
        return [self.findings.get(n) or Finding(n, Verdict.NOT_CHECKED, _why_not(n)) for n in ASSUMPTIONS]

    @property
    def passed(self) -> bool:
        return (
            all(s.ok for s in self.steps)
            and not self.leftovers
            and not any(f.verdict == Verdict.REFUTED for f in self.findings.values())
        )

    def print(self, out: TextIO) -> None:
        print("\nsteps:", file=out)
        for s in self.steps:
            print(f"  {'ok  ' if s.ok else 'FAIL'}  {s.name}: {s.detail}", file=out)
        print("\nthe README's UNCONFIRMED assumptions:", file=out)
        for f in self.all_findings():
            print(f"  {str(f.verdict):<11}  {f.number:>2}. {ASSUMPTIONS[f.number]}", file=out)
            print(f"  {'':<11}      {f.evidence}", file=out)
        print(f"\nspent: about ${self.spent_usd:.4f}", file=out)
        if self.leftovers:
            print(f"LEFT BEHIND (terminate them in the RunPod console now): {', '.join(self.leftovers)}", file=out)

    def as_json(self) -> str:
        return json.dumps(
            {
                "passed": self.passed,
                "steps": [s.__dict__ for s in self.steps],
                "assumptions": [
                    {
                        "number": f.number,
                        "assumption": ASSUMPTIONS[f.number],
                        "verdict": str(f.verdict),
                        "evidence": f.evidence,
                    }
                    for f in self.all_findings()
                ],
                "spent_usd": round(self.spent_usd, 6),
                "leftovers": self.leftovers,
            },
            indent=2,
        )


def _why_not(number: int) -> str:
    return {
        1: "needs --lifecycle and spot (GraphQL) still answering",
        2: "needs --lifecycle and spot (GraphQL) still answering",
        3: "needs spot (GraphQL) answering with a minimum bid",
        4: "needs --lifecycle and a spot pod",
        5: "needs a network volume attached to a pod; not probed (it would create billable storage)",
        6: "needs a network volume; not probed (it would create billable storage)",
        7: "cannot be provoked from outside",
        8: "needs --lifecycle (its pod asks to stop itself with its own key)",
        9: "the GPU catalog did not answer",
        10: "GraphQL still answers (not retired yet)",
    }[number]


__all__ = ["ASSUMPTIONS", "Finding", "Observation", "Report", "Verdict"]
