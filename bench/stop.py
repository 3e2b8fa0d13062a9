"""Stop latency: the training process exits -> the fake RunPod API receives the pod's stop request.

Start = the trainer's `BENCH exit t=...` (its last statement; the interpreter exits right after).
End = the time the fake API recorded the first `POST /v2/pods/<id>/action {"action": "stop"}` after it.
  attached  `runner train` follows to the end; the pod waits (RT_ACK_WAIT=30 s at most) for the
            runner's ack before it stops itself, so the runner's end-of-run reaction is inside this.
  detached  `runner train --detach` (RT_ACK_WAIT=0): the launcher stops the pod on its own.
"""

from __future__ import annotations

from bench.pod import BenchError, BenchPod, find_bench, wait_for

CONFIGS = {"stop": {"lines": 2, "interval": 0.01}}


def _stop_time_after(pod: BenchPod, t_exit: float, timeout: float = 60.0) -> float:
    def stop_request():
        return next((r for r in pod.fake.requests if r.action == "stop" and r.time >= t_exit - 1.0), None)

    return wait_for(stop_request, timeout, "the pod's stop request at the fake API", 0.02).time


def one(pod: BenchPod, *, detach: bool) -> float:
    pod.wait_idle()
    pod.make_running()
    pod.fake.clear_requests()
    offset = pod.log_size()
    argv = ["train", "--config", "configs/stop.yaml"] + (["--detach"] if detach else [])
    proc = pod.runner(*argv)
    exits = wait_for(lambda: find_bench(pod.log_lines(offset), "exit"), 120, "the trainer to exit", 0.02)
    t_exit = float(exits[0]["t"])
    t_stop = _stop_time_after(pod, t_exit)
    code = proc.wait(timeout=120)
    if code != 0:
        raise BenchError(f"runner train exited {code}: {proc.stderr_text()[-1500:]}")
    return t_stop - t_exit


def measure(pod: BenchPod, runs: int) -> dict:
    samples: dict[str, list[float]] = {"attached": [], "detached": []}
    for _ in range(runs):
        samples["attached"].append(one(pod, detach=False))
        samples["detached"].append(one(pod, detach=True))
    return samples
