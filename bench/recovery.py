"""Preemption recovery: a spot preemption injected under an attached `runner train`.

Injection (t0), as RunPod does it: the API shows the pod EXITED "Outbid: ..." (fake.preempt), the
container gets SIGTERM (the supervisor: it records "preempted" and writes the footer), whatever is
left is SIGKILLed after at most 5 s, and every SSH session dies (sshd.drop_connections; the listener
stays: the resumed "pod" answers on a new port of the same sshd). The fake then simulates
`boot_seconds` of PROVISIONING/STARTING when the pod is resumed.

  detection  t0 -> the runner reacts: the first API request it makes after t0, or its first stderr
             line about the preemption, whichever comes first
  recovery   t0 -> `BENCH start` of the next attempt (resumed from the checkpoint), minus boot_seconds
Without automatic recovery (runner/recovery.py absent) the runner exits 4 and only detection is measured.
"""

from __future__ import annotations

import re
import shutil
import time

from bench.pod import BenchError, BenchPod, find_bench, wait_for
from standins import preemption

CONFIGS = {"recovery": {"lines": 80, "interval": 0.05, "save_every": 10}}
SAY_RE = re.compile(r"preempt|outbid|SIGTERM", re.IGNORECASE)
TRAIN_ARGS = ["train", "--config", "configs/recovery.yaml", "--keep-pod"]


def inject_preemption(pod: BenchPod) -> float:
    state = pod.state() or {}
    t0 = time.time()
    pod.fake.preempt(pod.pod_id)
    pids = [p for p in (state.get("supervisor_pid"), state.get("train_pid")) if isinstance(p, int)]
    preemption.kill_container(state.get("supervisor_pid"), lambda: pids)
    pod.kill_training()  # the container, not the runner's `tail` follower ...
    pod.sshd.drop_connections()  # ... which goes with its SSH session, as on RunPod
    return t0


def one(pod: BenchPod, boot_seconds: float) -> dict:
    pod.wait_idle()
    pod.make_running()
    pod.fake.boot_seconds = boot_seconds
    # A fresh run each time: the previous run's checkpoints stay on the volume and would be resumed.
    shutil.rmtree(pod.repo_dir / "checkpoints" / "recovery", ignore_errors=True)
    offset = pod.log_size()
    proc = pod.runner(*TRAIN_ARGS)
    try:
        wait_for(
            lambda: find_bench(pod.log_lines(offset), "ckpt") or proc.proc.poll() is not None,
            90,
            "the first checkpoint",
            0.02,
        )
        if not find_bench(pod.log_lines(offset), "ckpt"):
            raise BenchError(
                f"runner train exited {proc.proc.returncode} before the first checkpoint: {proc.stderr_text()[-1500:]}"
            )
        t0 = inject_preemption(pod)
        first_attempt = find_bench(pod.log_lines(offset), "start")[0]["attempt"]

        def relaunched():
            return [s for s in find_bench(pod.log_lines(offset), "start") if s["attempt"] != first_attempt]

        wait_for(lambda: relaunched() or proc.proc.poll() is not None, 180, "a relaunch or the runner's exit", 0.02)
        started = relaunched()
        api = next((r.time for r in pod.fake.requests if r.time > t0), None)
        said = next((ln.t for ln in proc.err if ln.t > t0 and SAY_RE.search(ln.text)), None)
        reactions = [t for t in (api, said) if t is not None]
        result = {
            "detection_s": (min(reactions) - t0) if reactions else None,
            "recovered": bool(started),
            "recovery_s": (float(started[0]["t"]) - t0 - boot_seconds) if started else None,
            "resumed_from": started[0].get("resume") if started else None,
            "runner_exit": None,
        }
        if started:
            result["runner_exit"] = proc.wait(timeout=180)
        else:
            result["runner_exit"] = proc.wait(timeout=30)
            result["note"] = (proc.stderr_text().splitlines() or ["(no message)"])[-1][:400]
        return result
    finally:
        proc.kill()
        pod.kill_training()
        try:
            pod.sshd.drop_connections()  # the killed runner's `tail` followers (kill_training spares them)
        except Exception:  # noqa: BLE001 - cleanup only; sshd may already be gone
            pass
        pod.fake.boot_seconds = 0.0


def measure(pod: BenchPod, runs: int, boot_seconds: float) -> dict:
    results = [one(pod, boot_seconds) for _ in range(runs)]
    return {
        "boot_seconds": boot_seconds,
        "detection_s": [r["detection_s"] for r in results if r["detection_s"] is not None],
        "recovery_s": [r["recovery_s"] for r in results if r["recovery_s"] is not None],
        "runs": results,
    }
