"""Goodput: the share of billed GPU time that produced training progress that was kept, with spot
preemptions at a configurable rate, in compressed time; the runner's way against the seed's way,
measured in the same world.

Compressed time: one simulated hour is `sim_hour_s` real seconds (default 60, so 1 real second stands
for one simulated minute). The trainer (bench/pod_trainer.py) writes a step every `interval` s and a
checkpoint every `save_every` steps; the run is `hours` simulated hours of steps. Preemptions come at
exponential gaps (mean: one simulated hour / `rate`, fixed seed), injected as RunPod does them
(bench/recovery.py inject_preemption); a resumed pod boots for `boot_sim_s` simulated seconds (the fake's
boot_seconds). Everything is measured from the trainer's own stamped lines and the fake's API log,
never from what the runner reports about itself.

Billed GPU time is the time the pod was RUNNING for the run: from the command (or the user's restart)
to the preemption, and from each resume call to the next preemption or the final stop. It splits into
  useful    steps that the finished run kept (steps x interval)
  setup     segment start -> the attempt's first step, less the boot (the launch, the trainer's start)
  recovery  the resumed pod's boot (billed by RunPod from the resume call)
  redone    steps done after the checkpoint the next attempt resumed from (lost, done again)
  idle      the rest: checkpoint saves, the end until the pod stopped
Detection (preemption -> the runner's first reaction) is reported in wall time; it is not billed: a
preempted pod is EXITED. The seed's way: at a preemption the run stops until the user returns
(`seed_return_hours`, simulated; not waited for, added to its wall time), then the user reruns the
seed's script on the resumed pod, which resumes from the newest checkpoint; at the end its pod idles,
billed, until the user returns and stops it.
"""

from __future__ import annotations

import random
import shutil
import threading
import time
from dataclasses import dataclass, field

from bench.pod import BenchError, BenchPod, find_bench, wait_for
from bench.relaunch import pipe_seed_script, seed_remote
from standins import preemption

CONFIG = "configs/goodput.yaml"


@dataclass(frozen=True)
class GoodputOptions:
    hours: float = 3.0  # simulated hours of training steps
    rate: float = 1.0  # preemptions per simulated hour
    sim_hour_s: float = 60.0  # real seconds per simulated hour
    interval: float = 0.05  # real seconds per step
    save_every_sim_s: float = 90.0  # simulated seconds between checkpoints
    boot_sim_s: float = 60.0  # a resumed pod's boot, simulated seconds
    seed_return_hours: float = 1.0  # the seed's way: simulated hours until the user acts
    seed: int = 29

    @property
    def steps(self) -> int:
        return max(1, round(self.hours * self.sim_hour_s / self.interval))

    @property
    def save_every(self) -> int:
        return max(1, round(self.save_every_sim_s * self.sim_hour_s / 3600 / self.interval))

    @property
    def boot_s(self) -> float:
        return self.boot_sim_s * self.sim_hour_s / 3600

    def config(self) -> dict:
        return {"lines": self.steps, "interval": self.interval, "save_every": self.save_every}


@dataclass
class Run:
    """One way's run: billing segments [start, end) and the preemptions, in real seconds."""

    started: float
    segments: list[list[float]] = field(default_factory=list)
    preemptions: list[float] = field(default_factory=list)
    detections: list[float] = field(default_factory=list)
    ended: float = 0.0


def _lines(pod: BenchPod, offset: int) -> list[str]:
    return pod.log_lines(offset)


def _attempts(lines: list[str]) -> list[dict]:
    """Per attempt (in log order): its start stamp, the first and last step seq and time, resume point."""
    out: list[dict] = []
    for line in lines:
        if line.startswith("BENCH start "):
            f = dict(p.split("=", 1) for p in line.split()[2:] if "=" in p)
            resume = f.get("resume", "none")
            out.append({"start": float(f["t"]), "resume": 0 if resume == "none" else int(resume.split("-")[1])})
            out[-1].update(first=None, last=None, first_t=None, last_t=None)
        elif line.startswith("BENCH line ") and out:
            f = dict(p.split("=", 1) for p in line.split()[2:] if "=" in p)
            a = out[-1]
            seq, t = int(f["seq"]), float(f["t"])
            if a["first"] is None:
                a["first"], a["first_t"] = seq, t
            a["last"], a["last_t"] = seq, t
    return out


SETTLE_S = 2.0  # an attempt trains this long (real seconds) before the next preemption may come


def inject_preemption(pod: BenchPod) -> float:
    """RunPod's preemption in the order that leaves no race with a fast runner: the container dies
    (SIGTERM to the supervisor, up to 5 s, SIGKILL to the rest), its SSH sessions with it, then the
    API shows the pod outbid (tests/fixtures/recovery_harness.py preempt). With the API first, a runner
    that noticed at once could resume the pod and relaunch while the old container was still being
    killed, and the kill would hit the new attempt. Returns when it began."""
    t0 = time.time()
    state = pod.state() or {}
    pids = [p for p in (state.get("supervisor_pid"), state.get("train_pid")) if isinstance(p, int)]
    preemption.kill_container(state.get("supervisor_pid"), lambda: pids)
    pod.kill_training()
    pod.sshd.drop_connections()
    pod.fake.preempt(pod.pod_id)
    return t0


def _training(pod: BenchPod, offset: int) -> bool:
    """The current attempt is training and the pod's state file is its own (so the injection's SIGTERM
    reaches this attempt's supervisor, as RunPod's reaches the whole container)."""
    attempts = _attempts(_lines(pod, offset))
    if not attempts or attempts[-1]["last_t"] is None or attempts[-1]["last_t"] - attempts[-1]["first_t"] < SETTLE_S:
        return False
    state = pod.state() or {}
    return state.get("attempt") in (None, len(attempts)) and state.get("state") in (None, "running")


def _preempter(pod: BenchPod, o: GoodputOptions, offset: int, run: Run, stop: threading.Event) -> None:
    """Preemptions at exponential gaps of training time, each once the previous recovery is done."""
    rng = random.Random(o.seed)
    mean = o.sim_hour_s / o.rate
    while not stop.is_set():
        gap = rng.expovariate(1.0 / mean)
        try:
            wait_for(lambda: stop.is_set() or _training(pod, offset), 600, "training to run", 0.05)
        except BenchError:
            return
        if stop.wait(gap):
            return
        if pod.pod_status() != "RUNNING":
            continue
        starts = len(find_bench(_lines(pod, offset), "start"))
        t0 = inject_preemption(pod)
        run.preemptions.append(t0)
        run.segments[-1][1] = t0
        try:
            wait_for(
                lambda: stop.is_set() or len(find_bench(_lines(pod, offset), "start")) > starts,
                600,
                "the next attempt",
                0.05,
            )
        except BenchError:
            return
        resumed = [r.time for r in pod.fake.requests if r.billable and r.time > t0]
        reacted = [r.time for r in pod.fake.requests if r.time > t0]
        run.detections.append((reacted[0] - t0) if reacted else float("nan"))
        run.segments.append([resumed[0] if resumed else t0, 0.0])


def runner_way(pod: BenchPod, o: GoodputOptions) -> tuple[Run, list[dict]]:
    pod.wait_idle()
    pod.make_running()
    pod.fake.boot_seconds = o.boot_s
    offset = pod.log_size()
    run = Run(started=time.time())
    run.segments.append([run.started, 0.0])
    stop = threading.Event()
    proc = pod.runner("train", "--config", CONFIG)
    thread = threading.Thread(target=_preempter, args=(pod, o, offset, run, stop), daemon=True)
    thread.start()
    try:
        code = proc.wait(timeout=o.hours * o.sim_hour_s * 10 + 600)
    finally:
        stop.set()
        thread.join(timeout=30)
        pod.fake.boot_seconds = 0.0
    if code != 0:
        raise BenchError(f"runner train exited {code}: {proc.stderr_text()[-1500:]}")
    stops = [r.time for r in pod.fake.requests if r.action == "stop" and r.time > run.started]
    run.ended = stops[-1] if stops else time.time()
    run.segments[-1][1] = run.ended
    return run, _attempts(_lines(pod, offset))


def seed_way(pod: BenchPod, o: GoodputOptions, preempt_at: list[float]) -> tuple[Run, list[dict]]:
    """The seed's scripts with the same preemptions (same offsets into the run's training time)."""
    pod.wait_idle()
    pod.make_running()
    session = f"{pod.session}-seed"
    offset = pod.log_size()
    run = Run(started=time.time())
    remote = seed_remote(pod, session, "goodput", CONFIG)
    pending = list(preempt_at)
    start = run.started
    while True:
        run.segments.append([start, 0.0])
        pipe_seed_script(pod, remote, timeout=300, what="the seed's launch")
        wait_for(lambda: _attempts(_lines(pod, offset)), 120, "the seed's trainer", 0.05)
        due = start + pending.pop(0) if pending else None
        while True:
            done = find_bench(_lines(pod, offset), "exit")
            if done or (due is not None and time.time() >= due):
                break
            time.sleep(0.05)
        if done:
            pod.wait_idle(session=session)
            end = time.time()
            run.segments[-1][1] = end + o.seed_return_hours * o.sim_hour_s  # idle until the user stops it
            run.ended = end
            break
        t0 = inject_preemption(pod)
        run.preemptions.append(t0)
        run.segments[-1][1] = t0
        pod.wait_idle(session=session)
        # The user returns (not waited for: added to the wall time) and starts the pod again; it bills
        # from the start call, its boot included.
        start = time.time()
        pod.fake.boot_seconds = o.boot_s
        pod.make_running()
        pod.fake.boot_seconds = 0.0
    return run, _attempts(_lines(pod, offset))


def breakdown(run: Run, attempts: list[dict], o: GoodputOptions, *, user_waits: int = 0) -> dict:
    billed = sum(max(0.0, b - a) for a, b in run.segments)
    useful = o.steps * o.interval
    redone = 0.0
    for a, nxt in zip(attempts, attempts[1:]):
        if a["last"] is not None:
            redone += max(0, a["last"] - nxt["resume"]) * o.interval
    setup = boot = 0.0
    for i, (seg, a) in enumerate(zip(run.segments, attempts)):
        if a["first_t"] is None:
            continue
        lead = max(0.0, a["first_t"] - seg[0])
        b = min(lead, o.boot_s) if i > 0 else 0.0
        boot += b
        setup += lead - b
    idle = max(0.0, billed - useful - redone - setup - boot)
    wall = (run.ended - run.started) + user_waits * o.seed_return_hours * o.sim_hour_s
    return {
        "billed_s": billed,
        "goodput": useful / billed if billed else None,
        "useful_s": useful,
        "setup_s": setup,
        "recovery_s": boot,
        "redone_s": redone,
        "idle_s": idle,
        "preemptions": len(run.preemptions),
        "detection_s": run.detections,
        "wall_s": wall,
        "wall_sim_hours": wall / o.sim_hour_s,
        "attempts": len(attempts),
    }


def measure(pod: BenchPod, o: GoodputOptions) -> dict:
    shutil.rmtree(pod.repo_dir / "checkpoints" / "goodput", ignore_errors=True)
    runner_run, runner_attempts = runner_way(pod, o)
    shutil.rmtree(pod.repo_dir / "checkpoints" / "goodput", ignore_errors=True)
    # The seed gets the runner's preemptions at the same offsets into its run.
    offsets = [t - runner_run.started for t in runner_run.preemptions]
    gaps = [b - a for a, b in zip([0.0, *offsets], offsets)]
    seed_run, seed_attempts = seed_way(pod, o, gaps)
    return {
        "options": o.__dict__,
        "runner": breakdown(runner_run, runner_attempts, o),
        "seed": breakdown(seed_run, seed_attempts, o, user_waits=len(seed_run.preemptions) + 1),
    }


__all__ = ["CONFIG", "GoodputOptions", "measure"]
