"""`bash scripts/demo.sh` end to end, as a newcomer runs it: the whole pod flow on loopback (fake RunPod
API, sshd as the pod, stub pulumi), a preemption injected after the first checkpoint, the automatic
recovery and resume, the pod stopping itself, exit 0."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_demo_recovers_a_preemption_and_exits_0():
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RUNPOD_", "PULUMI_"))}
    env["RUNPOD_API_KEY"] = "rpa_must_never_be_used_by_the_demo"  # the caller's key stays out of it
    proc = subprocess.run(
        ["bash", "scripts/demo.sh"],
        cwd=ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=170,
    )
    out, err = proc.stdout, proc.stderr
    assert proc.returncode == 0, f"exit {proc.returncode}\nstdout tail:\n{out[-2000:]}\nstderr tail:\n{err[-3000:]}"
    assert "demo: simulated here, on 127.0.0.1" in err
    assert "injecting a spot preemption after checkpoint-" in err
    assert re.search(r"pod \w+ was preempted \(outbid", err), err[-3000:]
    assert "resuming spot pod" in err
    assert re.search(r"attempt 2 on pod \w+ \(spot, \$0\.350/h\), resumed from checkpoint-\d+", err)
    assert "attempts:    2 (1 preemption, 1 automatic recovery)" in err
    assert "pod:         stopped by itself (EXITED)" in err
    assert re.search(
        r"preemptions 1, automatic recoveries 1, resumed from checkpoint-\d+; the pod is EXITED, "
        r"stopped itself",
        err,
    )
    # The log was followed live: the resumed attempt's steps and the end, on stdout.
    assert "resumed from checkpoint-" in out and "done: 40 steps" in out
    assert "rpa_must_never_be_used_by_the_demo" not in out + err
