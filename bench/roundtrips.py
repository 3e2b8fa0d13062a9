"""Round trips per command, counted: what `runner train` (warm relaunch), `status`, `logs`, `sync`
(no-op), `pull --log` and a recovery cost in API requests, SSH connections, SSH request/response turns
and S3 requests, against the floor each is compared with (what the command cannot do with fewer).

Counted where they happen: API requests in the fake's log; TCP connections and turns at the shaped
link (standins/link.py: a turn is the client speaking after the server did), so the SSH columns exist
under a shaped profile only. The floors are measured in the same world, not assumed:
  ssh_command   OpenSSH's own client running one command on a fresh connection (`ssh host true`,
                no control master): the handshake, authentication, one channel, one exec
  rsync_noop    plain `rsync -a` of the same unchanged tree over the same ssh
A command's floor is then: the API requests it needs to know the pod runs and where (1; 0 for a
sync that starts on a pinned host key), plus one ssh_command (or rsync_noop for sync).
"""

from __future__ import annotations

import shlex
import subprocess
import time

from bench.pod import BenchError, BenchPod, counts_between
from bench.sync import make_tree, run_plain_rsync

COMMANDS = {
    "train_warm": ["train", "--config", "configs/relaunch.yaml", "--keep-pod"],
    "status": ["status"],
    "logs": ["logs", "-n", "5"],
    "sync_noop": ["sync"],
    "pull_log": ["pull", "--log"],
}


def _ssh_true(pod: BenchPod) -> None:
    port = pod.fake.pods[pod.pod_id].ssh_port
    argv = ["ssh", *pod.sshd.ssh_command_args(port), "-o", "ControlMaster=no", pod.sshd.destination, "true"]
    out = subprocess.run(argv, capture_output=True, timeout=120)
    if out.returncode != 0:
        raise BenchError(f"ssh {shlex.join(argv)} failed: {out.stderr.decode(errors='replace')}")


def counted(pod: BenchPod, fn) -> dict:
    before = pod.counts()
    t0 = time.time()
    fn()
    took = time.time() - t0
    return {"seconds": took, **counts_between(before, pod.counts())}


def run(pod: BenchPod, argv: list[str]) -> None:
    proc = pod.runner(*argv)
    code = proc.wait(timeout=300)
    if code != 0:
        raise BenchError(f"runner {' '.join(argv)} exited {code}: {proc.stderr_text()[-1500:]}")


def measure(pod: BenchPod, files: int) -> dict:
    if not any(pod.data_dir.iterdir()):
        make_tree(pod, files)
    pod.make_running()
    run(pod, COMMANDS["train_warm"])  # warm: repo and venv there
    pod.wait_idle()
    run(pod, ["sync"])  # the tree is on the pod: the measured sync is a no-op
    out: dict = {"floors": {}, "commands": {}}
    out["floors"]["ssh_command"] = counted(pod, lambda: _ssh_true(pod))
    out["floors"]["rsync_noop"] = counted(pod, lambda: run_plain_rsync(pod))
    for name, argv in COMMANDS.items():
        pod.wait_idle()
        pod.make_running()
        if name == "pull_log":
            dest = pod.root / "pulled"
            dest.mkdir(exist_ok=True)
            argv = [*argv, str(dest)]
        out["commands"][name] = counted(pod, lambda argv=argv: run(pod, argv))
    return out


FLOOR_API = {"train_warm": 1, "status": 1, "logs": 1, "sync_noop": 0, "pull_log": 1, "recovery": 2}
FLOOR_SSH = {"sync_noop": "rsync_noop"}


def floor_of(name: str, floors: dict) -> dict:
    """The floor of one command: its API requests, and one ssh_command (or rsync_noop) worth of SSH."""
    ref = floors.get(FLOOR_SSH.get(name, "ssh_command"), {})
    return {
        "api_requests": FLOOR_API.get(name, 1),
        "ssh_connections": ref.get("ssh_connections", 1),
        "ssh_exchanges": ref.get("ssh_exchanges"),
        "reference": FLOOR_SSH.get(name, "ssh_command"),
    }


__all__ = ["COMMANDS", "floor_of", "measure"]
