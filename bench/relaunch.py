"""Warm relaunch: `runner train` invoked -> the training process started, against the seed's way.

Warm = the pod RUNNING, the repo cloned and unchanged, the venv on the volume with its requirements
installed (one unmeasured run sets that up). The end event is the trainer's first statement
(`BENCH start t=...`, stamped on the pod). Three ways, interleaved run by run:
  runner          `python -m runner train --config configs/relaunch.yaml --keep-pod`
  runner_pip      the same, with the launcher's install marker removed first, so it runs
                  `pip install -r requirements.txt` as on every run of the seed
  seed            the seed's own flow (seed/runpod-training-automation.md): ask the API about the
                  pod, `ssh ... bash -s` a script that does git pull, venv-if-missing, and in tmux
                  `pip install -r requirements.txt` then the trainer
"""

from __future__ import annotations

import shlex
import subprocess
import time

from bench.pod import BenchError, BenchPod, find_bench, wait_for

CONFIG = "configs/relaunch.yaml"
CONFIGS = {"relaunch": {"lines": 2, "interval": 0.01}}

SEED_LOCAL = r"""#!/usr/bin/env bash
# The seed's scripts/pod_train.sh for a pod that already runs: status from the API, then the remote
# script over `ssh bash -s`. (The key goes to curl on stdin, never on a command line.)
set -euo pipefail
printf 'header = "Authorization: Bearer %s"\n' "$RUNPOD_API_KEY" |
  curl -sS -f -K - -o /dev/null "$RUNPOD_REST_URL/v2/pods/$SEED_POD_ID"
eval "ssh_args=($SEED_SSH_ARGS)"
exec ssh "${ssh_args[@]}" "$SEED_DEST" bash -s
"""

SEED_REMOTE = r"""set -e
cd {repo}
git pull -q --ff-only
[[ -d venv ]] || python3 -m venv venv
last=$(ls -d {output_dir}/checkpoint-* 2>/dev/null | sort -V | tail -n 1 || true)
resume=${{last:+--resume $last}}
tmux new-session -d -s {session} ". venv/bin/activate && python -m pip install -q -r requirements.txt >>{log} 2>&1 && python {script} --config {config} $resume >>{log} 2>&1"
"""


def seed_remote(pod: BenchPod, session: str, name: str, config: str) -> str:
    """The seed's remote script for configs/<name>.yaml (output_dir checkpoints/<name>) in tmux `session`."""
    return SEED_REMOTE.format(
        repo=shlex.quote(str(pod.repo_dir)),
        output_dir=f"checkpoints/{name}",
        session=session,
        log=shlex.quote(str(pod.log_file)),
        script="bench_train.py",
        config=config,
    )


def pipe_seed_script(pod: BenchPod, remote: str, *, timeout: float, what: str) -> float:
    """The seed's way, run as the seed ran it: SEED_LOCAL here, piping `remote` to the pod over ssh.
    Returns the time it was started (time.time())."""
    port = pod.fake.pods[pod.pod_id].ssh_port
    env = pod.runner_env(
        SEED_POD_ID=pod.pod_id,
        SEED_DEST=pod.sshd.destination,
        SEED_SSH_ARGS=shlex.join(pod.sshd.ssh_command_args(port)),
    )
    script = pod.root / "seed_pod_train.sh"
    script.write_text(SEED_LOCAL)
    t0 = time.time()
    out = subprocess.run(
        ["bash", str(script)],
        input=(pod.remote_prelude() + remote).encode(),
        env=env,
        capture_output=True,
        timeout=timeout,
    )
    if out.returncode != 0:
        raise BenchError(f"{what} failed ({out.returncode}): {out.stderr.decode(errors='replace')}")
    return t0


def _train_start_after(pod: BenchPod, offset: int, timeout: float = 120.0) -> float:
    found = wait_for(lambda: find_bench(pod.log_lines(offset), "start"), timeout, "the trainer's start line", 0.02)
    return float(found[0]["t"])


def run_runner(pod: BenchPod, *, pip: bool, first_request: list | None = None) -> float:
    pod.wait_idle()
    pod.make_running()
    if pip:
        (pod.repo_dir / "venv" / ".rt-requirements.sha256").unlink(missing_ok=True)
    offset = pod.log_size()
    proc = pod.runner("train", "--config", CONFIG, "--keep-pod")
    code = proc.wait(timeout=180)
    if code != 0:
        raise BenchError(f"runner train exited {code}: {proc.stderr_text()[-1500:]}")
    if first_request is not None:
        times = [r.time for r in pod.fake.requests if r.time >= proc.started]
        first_request.append(min(times) - proc.started if times else None)
    return _train_start_after(pod, offset) - proc.started


def run_seed(pod: BenchPod) -> float:
    pod.wait_idle()
    session = f"{pod.session}-seed"
    pod.wait_idle(session=session)
    offset = pod.log_size()
    remote = seed_remote(pod, session, "relaunch", CONFIG)
    t0 = pipe_seed_script(pod, remote, timeout=120, what="the seed relaunch")
    started = _train_start_after(pod, offset)
    wait_for(lambda: find_bench(pod.log_lines(offset), "exit"), 60, "the seed run to finish", 0.05)
    pod.wait_idle(session=session)
    return started - t0


def measure(pod: BenchPod, runs: int) -> dict:
    cold = run_runner(pod, pip=False)  # first run: clone, venv, pip install (not warm)
    samples: dict[str, list] = {"runner": [], "runner_pip": [], "seed": [], "runner_first_request": []}
    for _ in range(runs):
        samples["runner"].append(run_runner(pod, pip=False, first_request=samples["runner_first_request"]))
        samples["seed"].append(run_seed(pod))
        samples["runner_pip"].append(run_runner(pod, pip=True))
    return {"cold_first_run_s": cold, **samples}
