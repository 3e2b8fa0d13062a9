"""The warm relaunch broken down by phase: where the time between `runner train` invoked and the
training process started goes.

A world of its own (so the tracing costs nothing in the other figures): the runner runs under
bench/trace_runner.py (entry/exit times of its stack-output read, API requests, SSH connect and the
launcher round trip), and the pod's sshd under `strace -f -e trace=execve` (with --seccomp-bpf only
execve stops), which stamps each program the pod side starts: the launcher (python3 *.pyz), git,
tmux, the supervisor (`... supervise ...`), the trainer. The phases, in order:
  startup_imports   invoked -> the stack outputs are asked for: interpreter, imports, settings; since
                    runner/train/command.py this is the early link's start (runner/pod/early_link.py)
  stack_outputs     the stack outputs (runner/pod/stack_cache.py: no `pulumi` while the stack is unchanged)
  api_read          the RunPod API request(s) before SSH (the pod's state and SSH endpoint)
  ssh_connect       TCP + SSH handshake + auth (paramiko), in the early link's thread, while the main
                    thread imports the rest and checks the input
  startup_rest      the connection is up -> the launch script is sent: what the main thread still had
                    to do (imports, the pre-launch checks, the run record) after the connect ended
  script_transfer   the launcher script sent -> the pod starts the launcher program
  launcher_start    launcher start -> tmux asked to start the supervisor (its start-up, lock, session check)
  tmux_start        tmux started -> the supervisor runs inside it
  code_and_venv     supervisor start -> the trainer is started: the launcher's git update, config,
                    checkpoint scan and plan (overlapping the supervisor's own start-up), then the
                    supervisor's venv check
  trainer_start     trainer exec -> its first statement (interpreter start-up)
Gaps between traced points are included in the following phase, so the phases add up to the total.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

from bench.pod import BenchError, BenchOptions, BenchPod, find_bench, wait_for
from bench.relaunch import CONFIG, CONFIGS
from bench.stats import summary

PHASES = (
    "startup_imports",
    "stack_outputs",
    "api_read",
    "ssh_connect",
    "startup_rest",
    "script_transfer",
    "launcher_start",
    "tmux_start",
    "code_and_venv",
    "trainer_start",
)
_EXEC = re.compile(r'^(\d+)\s+(\d+\.\d+) execve\("([^"]*)", \[(.*?)\]')


def sshd_wrapper(root: Path, trace_file: Path) -> str | None:
    strace = shutil.which("strace")
    if not strace:
        return None
    wrapper = root / "sshd-under-strace"
    wrapper.write_text(
        f"#!/bin/sh\nexec {strace} -f --seccomp-bpf -qq -ttt -s 300 -e trace=execve "
        f'-o {trace_file} /usr/sbin/sshd "$@"\n'
    )
    wrapper.chmod(0o755)
    return str(wrapper)


def pod_execs(trace_file: Path, after: float) -> list[tuple[float, str, str]]:
    """(time, program, argv text) of each successful execve on the pod side after `after`."""
    out = []
    try:
        lines = trace_file.read_text(errors="replace").splitlines()
    except OSError:
        return out
    for line in lines:
        m = _EXEC.match(line)
        if (
            m
            and float(m.group(2)) >= after
            and not line.rstrip().endswith(("= -1 ENOENT (No such file or directory)",))
        ):
            out.append((float(m.group(2)), m.group(3), m.group(4)))
    return out


def _first(execs, pred, after: float) -> float | None:
    return next((t for t, prog, args in execs if t >= after and pred(prog, args)), None)


def breakdown(t0: float, events: list[dict], execs, trainer_first: float) -> dict[str, float | None]:
    def first(name: str) -> dict | None:
        return next((e for e in events if e["name"] == name), None)

    stack, conn, script = first("stack_outputs"), first("ssh_connect"), first("run_script")
    api = [e for e in events if e["name"] == "api_request" and conn and e["exit"] <= conn["enter"]]
    if not (stack and conn and script and api):
        raise BenchError(f"the runner trace lacks a phase: {sorted({e['name'] for e in events})}")
    start = script["enter"]
    launcher = _first(execs, lambda p, a: ".pyz" in a and "supervise" not in a, start)
    git = _first(execs, lambda p, a: p.endswith("/git"), launcher or start)
    tmux = _first(execs, lambda p, a: p.endswith("/tmux") and "new-session" in a, launcher or start)
    supervisor = _first(
        execs, lambda p, a: "supervise" in a and not p.endswith(("/tmux", "/sh", "/bash")), tmux or start
    )
    trainer = _first(execs, lambda p, a: "bench_train.py" in a, supervisor or start)
    points = [
        ("startup_imports", stack["enter"]),
        ("stack_outputs", stack["exit"]),
        ("api_read", api[-1]["exit"]),
        ("ssh_connect", conn["exit"]),
        ("startup_rest", start),
        ("script_transfer", launcher),
        ("launcher_start", tmux),
        ("tmux_start", supervisor),
        ("code_and_venv", trainer),
        ("trainer_start", trainer_first),
    ]
    out: dict[str, float | None] = {}
    prev = t0
    for name, t in points:
        if t is None:
            out[name] = None
            continue
        out[name] = t - prev
        prev = t
    out["total"] = trainer_first - t0
    out["git_seen"] = None if git is None else 1.0
    return out


def measure(options: BenchOptions, runs: int) -> dict:
    probe = BenchPod(options)
    root = probe.root
    trace_file = root / "sshd-execve.trace"
    wrapper = sshd_wrapper(root, trace_file)
    probe.options = BenchOptions(**{**options.__dict__, "sshd_wrapper": wrapper})
    rows: list[dict] = []
    with probe as pod:
        pod.add_configs(CONFIGS)
        _run(pod, None)  # first run: clone, venv, install (not warm)
        for i in range(runs):
            rows.append(_run(pod, root / f"trace-{i}.jsonl", trace_file))
    per_phase = {name: [r[name] for r in rows if r.get(name) is not None] for name in (*PHASES, "total")}
    return {"runs": rows, "summary": {k: summary(v) for k, v in per_phase.items()}, "strace": wrapper is not None}


def _run(pod: BenchPod, trace_path: Path | None, sshd_trace: Path | None = None) -> dict:
    pod.wait_idle()
    pod.make_running()
    offset = pod.log_size()
    env = {"BENCH_TRACE_FILE": str(trace_path)} if trace_path else {}
    proc = pod.runner("train", "--config", CONFIG, "--keep-pod", module="bench.trace_runner", **env)
    code = proc.wait(timeout=300)
    if code != 0:
        raise BenchError(f"traced runner train exited {code}: {proc.stderr_text()[-1500:]}")
    found = wait_for(lambda: find_bench(pod.log_lines(offset), "start"), 60, "the trainer's start line", 0.02)
    if trace_path is None or sshd_trace is None:
        return {}
    events = [json.loads(line) for line in trace_path.read_text().splitlines() if line.strip()]
    return breakdown(proc.started, events, pod_execs(sshd_trace, proc.started), float(found[0]["t"]))
