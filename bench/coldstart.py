"""Cold start: an empty volume -> the first training step, with the real requirement set, against the seed's way.

Each run starts from an empty volume (the workspace folder emptied: no clone, no venv, no caches),
the pod RUNNING, and the stand-in image interpreter (bench/wheelhouse.py: torch preinstalled) as
the pod's python3. The end event is the trainer's `BENCH step` (after importing torch, transformers,
accelerate and datasets and one torch op), stamped on the pod. Interleaved run by run:
  runner  `python -m runner train --config configs/cold.yaml --keep-pod` (clone, a venv that sees
          the image's site-packages, uv installs what the image lacks, tmux, training)
  seed    the seed's first run (seed/runpod-training-automation.md): API read, then over `ssh bash -s`
          git clone, `python3 -m venv venv`, `pip install -r requirements.txt` (everything, torch
          included, from the same local wheelhouse), then the trainer in tmux
"""

from __future__ import annotations

import re
import shlex
import shutil

from bench.pod import BenchError, BenchPod, find_bench, wait_for
from bench.relaunch import pipe_seed_script
from bench.wheelhouse import IMPORTS

CONFIG = "configs/cold.yaml"


def configs(real: bool) -> dict[str, dict]:
    """The tiny set has no torch: its trainer imports json before its `BENCH step`."""
    return {"cold": {"lines": 2, "interval": 0.01, "imports": IMPORTS if real else "json"}}


SEED_COLD_REMOTE = r"""set -e
export PATH={image_bin}:$PATH
mkdir -p {workspace}/logs
cd {workspace}
git clone -q -b main {origin} project
cd project
python3 -m venv venv
tmux new-session -d -s {session} ". venv/bin/activate && python -m pip install -q -r requirements.txt >>{log} 2>&1 && python {script} --config {config} >>{log} 2>&1"
"""

_WAY = re.compile(r"venv: uv installs (\d+) missing|venv: running pip install|already satisfy")


def empty_volume(pod: BenchPod) -> None:
    pod.kill_training()
    shutil.rmtree(pod.workspace, ignore_errors=True)
    pod.workspace.mkdir()


def _step_after(pod: BenchPod, timeout: float = 900.0) -> tuple[float, float]:
    """(training process started, first step) epoch times from the log."""
    step = wait_for(lambda: find_bench(pod.log_lines(), "step"), timeout, "the trainer's first step", 0.05)
    start = find_bench(pod.log_lines(), "start")
    return float(start[0]["t"]), float(step[0]["t"])


def run_runner(pod: BenchPod) -> dict:
    pod.wait_idle()
    pod.make_running()
    empty_volume(pod)
    proc = pod.runner("train", "--config", CONFIG, "--keep-pod")
    code = proc.wait(timeout=900)
    if code != 0:
        raise BenchError(f"runner train (cold) exited {code}: {proc.stderr_text()[-1500:]}")
    started, step = _step_after(pod)
    log = "\n".join(pod.log_lines())
    way = _WAY.search(log)
    return {
        "step_s": step - proc.started,
        "process_s": started - proc.started,
        "installer": way.group(0) if way else None,
    }


def run_seed(pod: BenchPod) -> dict:
    session = f"{pod.session}-seed"
    pod.wait_idle()
    pod.wait_idle(session=session)
    empty_volume(pod)
    remote = SEED_COLD_REMOTE.format(
        image_bin=shlex.quote(str(pod.image_python.parent)),
        workspace=shlex.quote(str(pod.workspace)),
        origin=shlex.quote(str(pod.project)),
        session=session,
        log=shlex.quote(str(pod.log_file)),
        script="bench_train.py",
        config=CONFIG,
    )
    t0 = pipe_seed_script(pod, remote, timeout=300, what="the seed cold start")
    started, step = _step_after(pod)
    wait_for(lambda: find_bench(pod.log_lines(), "exit"), 120, "the seed run to finish", 0.05)
    pod.wait_idle(session=session)
    return {"step_s": step - t0, "process_s": started - t0}


def measure(pod: BenchPod, runs: int) -> dict:
    samples: dict[str, list] = {"runner": [], "seed": [], "runner_process": [], "seed_process": [], "installer": []}
    for _ in range(runs):
        seed = run_seed(pod)  # seed first: the runner's run leaves the volume warm for the other figures
        ours = run_runner(pod)
        samples["runner"].append(ours["step_s"])
        samples["runner_process"].append(ours["process_s"])
        samples["installer"].append(ours["installer"])
        samples["seed"].append(seed["step_s"])
        samples["seed_process"].append(seed["process_s"])
    return samples
