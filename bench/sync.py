"""Sync no-op: `runner sync` of an unchanged tree against plain `rsync -a` over the same ssh.

The tree: `files` small files (100 B - 2 KB, fixed seed) in 100 folders under DATA_DIR. One
unmeasured `runner sync` copies it; then each run times, interleaved, the whole `python -m runner
sync` (startup, stack outputs, API, SSH checks, rsync) twice and `rsync -a -e 'ssh <same options>'`
of the same folder to the same destination once:
- first: the runner's SSH control masters closed before it (`ssh -O exit`), so its rsync opens a
  cold connection with the full handshake, as plain rsync does;
- repeated: right after the first, through the control master the first one left
  (runner/remote/controlmaster.py, SSH_CONTROL_PERSIST), as a second sync within the persist time.
"""

from __future__ import annotations

import random
import shlex
import subprocess
import time

from bench.pod import BenchError, BenchPod
from runner.remote.controlmaster import close_all


def make_tree(pod: BenchPod, files: int) -> None:
    rng = random.Random(8)
    folders = min(100, max(1, files // 10))
    for i in range(files):
        d = pod.data_dir / f"part_{i % folders:03d}"
        d.mkdir(exist_ok=True)
        (d / f"sample_{i:05d}.txt").write_bytes(rng.randbytes(rng.randint(100, 2000)))


def run_runner_sync(pod: BenchPod) -> tuple[float, float | None]:
    """(whole command, part before rsync starts: the runner's `copying ...` line arrives)."""
    proc = pod.runner("sync")
    code = proc.wait(timeout=600)
    if code != 0:
        raise BenchError(f"runner sync exited {code}: {proc.stderr_text()[-1500:]}")
    took = time.time() - proc.started
    copying = next((ln.t for ln in proc.err if ln.text.startswith("copying ")), None)
    return took, (copying - proc.started) if copying is not None else None


def run_plain_rsync(pod: BenchPod) -> float:
    port = pod.fake.pods[pod.pod_id].ssh_port
    dest = f"{pod.sshd.destination}:{pod.workspace}/data/"
    argv = ["rsync", "-a", "-e", shlex.join(["ssh", *pod.sshd.ssh_command_args(port)]), f"{pod.data_dir}/", dest]
    t0 = time.time()
    out = subprocess.run(argv, capture_output=True, timeout=600)
    took = time.time() - t0
    if out.returncode != 0:
        raise BenchError(f"plain rsync failed ({out.returncode}): {out.stderr.decode(errors='replace')}")
    return took


def measure(pod: BenchPod, runs: int, files: int) -> dict:
    make_tree(pod, files)
    pod.make_running()
    run_runner_sync(pod)  # the initial upload (not a no-op)
    samples: dict[str, list] = {
        "runner": [],
        "runner_repeated": [],
        "rsync": [],
        "runner_before_rsync": [],
        "masters_closed": [],
    }
    try:
        for _ in range(runs):
            samples["masters_closed"].append(len(close_all(pod.state_dir)))  # a cold connection, as plain rsync
            took, before = run_runner_sync(pod)
            samples["runner"].append(took)
            samples["runner_before_rsync"].append(before)
            samples["runner_repeated"].append(run_runner_sync(pod)[0])  # the master the first one left
            samples["rsync"].append(run_plain_rsync(pod))
    finally:
        close_all(pod.state_dir)  # no master outlives the figure
    return {"files": files, **samples}
