"""Fixed cost of a runner command: invoked -> its first network call (the first RunPod API request
the fake receives), with the stack unchanged (so the stack outputs come from the cache).

It is what every command pays before it can do anything: the interpreter, the imports, the settings,
the stack outputs. Measured for `runner status`, `runner sync --dry-run` and `runner train` (the warm
relaunch's runs), each against `python -c pass` (the interpreter's own floor) in the same run.
"""

from __future__ import annotations

import subprocess
import sys
import time

from bench.pod import BenchError, BenchPod

COMMANDS = {"status": ["status"], "sync": ["sync", "--dry-run"]}


def first_request_after(pod: BenchPod, t0: float) -> float | None:
    times = [r.time for r in pod.fake.requests if r.time >= t0]
    return min(times) - t0 if times else None


def python_floor() -> float:
    t0 = time.time()
    subprocess.run([sys.executable, "-c", "pass"], check=True)
    return time.time() - t0


def measure(pod: BenchPod, runs: int) -> dict:
    pod.make_running()
    out: dict[str, list] = {name: [] for name in COMMANDS}
    out["python_floor"] = []
    for _ in range(runs):
        for name, argv in COMMANDS.items():
            proc = pod.runner(*argv)
            code = proc.wait(timeout=120)
            if code != 0:
                raise BenchError(f"runner {' '.join(argv)} exited {code}: {proc.stderr_text()[-1500:]}")
            first = first_request_after(pod, proc.started)
            if first is None:
                raise BenchError(f"runner {' '.join(argv)} made no API request")
            out[name].append(first)
        out["python_floor"].append(python_floor())
    return out
