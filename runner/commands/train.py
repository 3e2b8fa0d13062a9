"""`runner train`: its flags and help. The work is in runner.train.command (then runner.train.session), imported only when it runs."""

from __future__ import annotations

import argparse

from runner.commands.argtypes import budget, duration, host_spec, non_negative_int, run_id
from runner.exitcodes import ExitCode

NAME = "train"
IMPLEMENTATION = "runner.train.command"
SUMMARY = "start (or rejoin) training on the pod and follow its log"
DESCRIPTION = """\
Check the config here (exists, YAML, has output_dir), the SSH key (loaded for real), the
branch (a valid name, present on REPO_URL per `git ls-remote`) and, when REPO_URL is this
checkout, that the config and TRAIN_SCRIPT are pushed (--allow-unpushed: a warning), all
before anything is billed. Then read the stack outputs, make
sure the pod runs (resuming it if stopped or preempted), start remote/remote_train.sh on
it over SSH and follow the training log live until training ends, reconnecting when the
link drops (no line lost or repeated). The pod clones REPO_URL (committed, pushed code),
reuses the venv on the volume, resumes from the newest complete checkpoint in output_dir
and trains in tmux. If training already runs there, the runner attaches to it instead.

Spot preemption is recovered without you: the runner notices it within seconds (API
poll every 5 s, the launcher's SIGTERM footer, SSH drops), resumes the same pod with
the stack's bid (or replaces it through the stack, `pulumi up --refresh [--replace]`,
when it cannot be resumed),
and relaunches the same run, which continues from the newest complete checkpoint.
Bounded by --max-recoveries and --budget-usd; a stop by you is never undone.

If the pod this command resumed cannot be used (SSH never answers, the key is refused,
the launcher refuses), it is stopped again before the error is shown.

At the end: a summary (exit code, duration, checkpoint, estimated cost), the pod stops
itself and the runner checks that through the API (and stops it if it did not), and
the runner exits with training's exit code. Ctrl-C detaches: training keeps running,
the pod still stops itself at the end; come back with `runner logs -f` / `runner status`.

--host trains on any SSH machine instead (no RunPod API, nothing is stopped), --local
on this machine (workspace ./.local-workspace; the training repo defaults to this
checkout). The config path is relative to the training repo root, on both sides."""
EXAMPLES = (
    "python -m runner train --config configs/baseline_whisper_small.yaml",
    "python -m runner train --config configs/baseline_whisper_small.yaml --detach     # start, don't follow",
    "python -m runner train --config configs/baseline_whisper_small.yaml --keep-pod   # pod stays up afterwards",
    "python -m runner train --config configs/smoke.yaml --host root@gpu-box:2222 --workspace /data/ws",
    "TRAIN_SCRIPT=remote/smoke_train.py python -m runner train --local --config configs/smoke.yaml",
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--config",
        required=True,
        metavar="PATH",
        help="training config (YAML with output_dir), relative to the training repo root; "
        "the pod uses the same path in its checkout",
    )
    p.add_argument(
        "--detach", action="store_true", help="start training and return at once; follow later with `runner logs -f`"
    )
    p.add_argument(
        "--keep-pod", action="store_true", help="leave the pod running after training ends (default: it stops itself)"
    )
    p.add_argument(
        "--no-watch",
        action="store_true",
        help="when detached (--detach, Ctrl-C), leave no background watcher to recover the run "
        "(also RUNNER_WATCH=0); see `runner watch`",
    )
    where = p.add_mutually_exclusive_group()
    where.add_argument(
        "--host",
        type=host_spec,
        metavar="USER@HOST[:PORT]",
        help="train over SSH on this machine instead of the stack's pod (no RunPod API; "
        "its host key is pinned on first use)",
    )
    where.add_argument(
        "--local", action="store_true", help="run the pod-side launcher on this machine: the whole flow without a cloud"
    )
    p.add_argument(
        "--workspace",
        metavar="DIR",
        help="workspace (volume) directory on the target (default: the stack's workspace output, "
        "/workspace for --host, ./.local-workspace for --local)",
    )
    p.add_argument(
        "--allow-unpushed",
        action="store_true",
        help="when REPO_URL is this checkout, launch even if the config or TRAIN_SCRIPT is not in the "
        "pushed branch (a warning instead of an error; the pod clones the pushed branch)",
    )
    p.add_argument(
        "--run-id",
        type=run_id,
        metavar="ID",
        help="name of the run (default: <config name>-<UTC time>); reuse one to continue it",
    )
    p.add_argument(
        "--max-recoveries",
        type=non_negative_int,
        default=3,
        metavar="N",
        help="after a spot preemption (or a vanished pod) resume or recreate the pod and continue "
        f"from the newest checkpoint, at most N times (default: 3; 0 = report and exit {ExitCode.POD:d})",
    )
    p.add_argument(
        "--stall-minutes",
        type=non_negative_int,
        metavar="M",
        help="the pod's stall guard: no log output and no new checkpoint for M minutes (or the GPU idle "
        "for 30) stops training and the pod, keeping the newest checkpoint (default: the stack's "
        "stallMinutes, 45; 0: off)",
    )
    p.add_argument(
        "--wait-for-capacity",
        type=duration,
        metavar="DURATION",
        help="when RunPod has no GPU for the pod (spot or on-demand), keep trying this long (30m, 6h, 2d) "
        f"with backoff, saying the stock and price each round, instead of exit {ExitCode.POD:d}; also during recoveries "
        "and in the watcher",
    )
    p.add_argument(
        "--budget-usd",
        type=budget,
        metavar="X",
        help="stop the pod once this command's attempts have cost about X US dollars "
        f"(cost_per_hr x pod time; no recovery beyond it); exit {ExitCode.POD:d}",
    )
