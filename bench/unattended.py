"""The run finishes without you (issue 25): how long a preempted run waits with nobody attached, and how
long an event takes to become a notification. On the stand-ins, as the other figures.

    bash scripts/bench.sh unattended [--runs 3] [--boot-seconds 5] [--poll 15] [--confirm 20]

  relaunch_s  a `runner train --detach` run (the runner gone, its background watcher left, polling every
              --poll s and confirming over --confirm s as WATCH_POLL_SECONDS / WATCH_CONFIRM_SECONDS do by
              default) is preempted at t0 as RunPod does it; the watcher resumes the pod, the fake boots it
              for --boot-seconds, the pod's start command (standins/container_starts.py) relaunches the run:
              t0 -> the next attempt's `BENCH start`, minus the boot. Target: <= 60 s with the default poll.
  notify_s    an event recorded -> its POST at a webhook on 127.0.0.1, for the runner's sender
              (runner/eventlog.py: a detached `python -m runner.notify`) and the pod's (the supervisor's
              eventlog.emit: a detached grandchild). Target: <= 5 s.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

from bench.pod import BenchOptions, BenchPod, find_bench, wait_for
from bench.recovery import inject_preemption
from bench.stats import summary as summarize
from standins.container_starts import ContainerStarts

CONFIGS = {"unattended": {"lines": 60, "interval": 0.05, "save_every": 10}}
TARGET_RELAUNCH_S = 60.0
TARGET_NOTIFY_S = 5.0


def relaunch_once(pod: BenchPod, *, poll: float, confirm: float, boot_seconds: float) -> dict:
    pod.wait_idle()
    pod.make_running()
    shutil.rmtree(pod.repo_dir / "checkpoints" / "unattended", ignore_errors=True)
    offset = pod.log_size()
    # Made before anything is timed: it puts the image's host keys in place.
    starts = ContainerStarts(pod.fake, pod.pod_id, pod.workspace, {"TMUX_TMPDIR": str(pod.tmux_dir)})
    watch = {"WATCH_POLL_SECONDS": f"{poll:g}", "WATCH_CONFIRM_SECONDS": f"{confirm:g}"}
    detached = pod.runner("train", "--config", "configs/unattended.yaml", "--detach", **watch)
    try:
        if detached.wait(timeout=180) != 0:
            raise RuntimeError(f"runner train --detach failed: {detached.stderr_text()[-1500:]}")
        wait_for(lambda: find_bench(pod.log_lines(offset), "ckpt"), 90, "the first checkpoint", 0.02)
        first = find_bench(pod.log_lines(offset), "start")[0]["attempt"]
        pod.fake.boot_seconds = boot_seconds
        with starts:
            t0 = inject_preemption(pod)

            def relaunched() -> list[dict]:
                return [s for s in find_bench(pod.log_lines(offset), "start") if s["attempt"] != first]

            wait_for(relaunched, 300, "the relaunch with nobody attached", 0.05)
        started = relaunched()[0]
        return {"relaunch_s": float(started["t"]) - t0 - boot_seconds, "resumed_from": started.get("resume")}
    finally:
        pod.fake.boot_seconds = 0.0
        stop = pod.runner("watch", "--stop")
        stop.wait(timeout=60)
        pod.kill_training()


def notify_latency(runs: int) -> dict:
    """An event recorded -> its POST arrives, for each sender."""
    from remote.podside import eventlog as pod_events
    from remote.podside import notify as pod_notify
    from remote.podside.contract import Event, EventSource, VolumePaths
    from runner.eventlog import RunnerEvents
    from runner.paths import StatePaths
    from tests.fixtures.pod_harness import WebhookSink

    sink = WebhookSink()
    root = Path(tempfile.mkdtemp(prefix="rt-bench-notify-"))
    try:
        runner_s, pod_s = [], []
        paths = VolumePaths(str(root / "workspace"))
        (root / "workspace" / ".runner").mkdir(parents=True)
        pod_notify.write_urls(paths.notify_file, [sink.url()])
        events = RunnerEvents(StatePaths(root / "state", "bench"), EventSource.WATCHER, [sink.url()])
        for n in range(runs):
            for send, into in (
                (lambda n=n: events.emit(Event.PREEMPTED, f"bench-{n}", 1), runner_s),
                (lambda n=n: pod_events.emit(paths, Event.FINISHED, f"bench-{n}", 1), pod_s),
            ):
                before = len(sink.requests)
                t0 = time.time()
                send()
                wait_for(lambda: len(sink.requests) > before, 30, "the notification", 0.002)
                into.append(time.time() - t0)
        return {"runner_s": runner_s, "pod_s": pod_s}
    finally:
        sink.close()
        shutil.rmtree(root, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.unattended", description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--boot-seconds", type=float, default=5.0, help="the fake pod's boot after the resume")
    p.add_argument("--poll", type=float, default=15.0, help="the watcher's poll (WATCH_POLL_SECONDS' default)")
    p.add_argument("--confirm", type=float, default=20.0, help="WATCH_CONFIRM_SECONDS' default")
    p.add_argument("--notify-runs", type=int, default=10)
    p.add_argument("--results-dir", type=Path, default=Path("bench/results"))
    args = p.parse_args(argv)
    options = BenchOptions(requirements=0, fast_venv=True)
    with BenchPod(options) as pod:
        pod.add_configs(CONFIGS)
        runs = [
            relaunch_once(pod, poll=args.poll, confirm=args.confirm, boot_seconds=args.boot_seconds)
            for _ in range(args.runs)
        ]
    notify = notify_latency(args.notify_runs)
    result = {
        "poll_s": args.poll,
        "confirm_s": args.confirm,
        "boot_seconds": args.boot_seconds,
        "relaunch_s": summarize([r["relaunch_s"] for r in runs]),
        "relaunch_target_s": TARGET_RELAUNCH_S,
        "notify_runner_s": summarize(notify["runner_s"]),
        "notify_pod_s": summarize(notify["pod_s"]),
        "notify_target_s": TARGET_NOTIFY_S,
        "runs": runs,
    }
    args.results_dir.mkdir(parents=True, exist_ok=True)
    out = args.results_dir / f"unattended-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    for name in ("relaunch_s", "notify_runner_s", "notify_pod_s"):
        print(f"{name:<16} {json.dumps(result[name])}")
    print(f"results: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
