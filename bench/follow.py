"""Log latency and runner overhead while `runner train` follows a live log.

The trainer writes `BENCH line seq=N t=<write time>` at RATE lines/s on average, with random gaps
(one line = one write() to the log, as a print with PYTHONUNBUFFERED does); the runner prints each line to its stdout, which
the bench reads with a timestamp on arrival. Latency = arrival - write time (one machine, one clock).
Overhead = CPU time (utime+stime, all threads, /proc/<pid>/stat) of the runner process while it
follows, over the wall time between the first and the last followed line.
"""

from __future__ import annotations

import time

from bench.pod import BenchError, BenchPod, parse_fields, wait_for
from bench.stats import percentile

RATE = 10.0  # lines per second written by the trainer


def configs(latency_s: float, overhead_s: float) -> dict[str, dict]:
    return {
        "latency": {"lines": max(1, int(latency_s * RATE)), "interval": 1 / RATE, "jitter_seed": 7},
        "overhead": {"lines": max(1, int(overhead_s * RATE)), "interval": 1 / RATE, "jitter_seed": 11},
    }


def follow_session(pod: BenchPod, config: str, *, windows_s: float | None = None) -> dict:
    """One attached `runner train` run; latencies of every line, CPU while following."""
    pod.wait_idle()
    pod.make_running()
    proc = pod.runner("train", "--config", f"configs/{config}.yaml", "--keep-pod")
    first = wait_for(
        lambda: proc.first_out("BENCH line ") or proc.proc.poll() is not None, 120, "the first followed line"
    )
    if not hasattr(first, "t"):
        raise BenchError(f"runner train ended before following anything: {proc.stderr_text()[-1500:]}")
    cpu0, wall0 = proc.cpu_seconds(), time.time()
    windows: list[float] = []
    last_cpu, last_wall = cpu0, wall0
    cpu1 = wall1 = None
    while proc.proc.poll() is None:
        time.sleep(0.2)
        done = proc.first_out("BENCH exit ")
        now = time.time()
        try:
            cpu = proc.cpu_seconds()
        except OSError:
            break
        if done is not None and cpu1 is None:
            cpu1, wall1 = cpu, now
            break
        if windows_s and now - last_wall >= windows_s:
            windows.append(100.0 * (cpu - last_cpu) / (now - last_wall))
            last_cpu, last_wall = cpu, now
    code = proc.wait(timeout=120)
    if code != 0:
        raise BenchError(f"runner train exited {code}: {proc.stderr_text()[-1500:]}")
    latencies = [ln.t - float(parse_fields(ln.text)["t"]) for ln in proc.out if ln.text.startswith("BENCH line ")]
    result = {"latencies_s": latencies, "lines": len(latencies)}
    if cpu1 is not None and wall1 > wall0:
        result.update(
            cpu_s=cpu1 - cpu0,
            wall_s=wall1 - wall0,
            cpu_percent=100.0 * (cpu1 - cpu0) / (wall1 - wall0),
            window_cpu_percent=windows,
        )
    return result


def measure_latency(pod: BenchPod, runs: int) -> dict:
    sessions = [follow_session(pod, "latency") for _ in range(runs)]
    per_run_p95 = [percentile(s["latencies_s"], 95) for s in sessions]
    pooled = [x for s in sessions for x in s["latencies_s"]]
    return {"per_run_p95_s": per_run_p95, "pooled_s": pooled, "lines_per_run": [s["lines"] for s in sessions]}


def measure_overhead(pod: BenchPod, runs: int, window_s: float) -> dict:
    sessions = [follow_session(pod, "overhead", windows_s=window_s) for _ in range(runs)]
    return {
        "cpu_percent": [s.get("cpu_percent") for s in sessions],
        "window_cpu_percent": [w for s in sessions for w in s.get("window_cpu_percent", [])],
        "followed_s": [s.get("wall_s") for s in sessions],
        "latencies_s": [x for s in sessions for x in s["latencies_s"]],
    }
