"""`python -m runner.livecheck` against the fake RunPod API (RUNPOD_REST_URL / RUNPOD_GRAPHQL_URL point at
it), as a subprocess like a user runs it: the read-only checks, the lifecycle under its cap, Ctrl-C in
the middle of the lifecycle, an earlier run's leftovers, and what it says without a key."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from runner.exitcodes import ExitCode
from runner.settings import KEYS

ROOT = Path(__file__).resolve().parents[3]


class LiveCheck:
    def __init__(self, tmp_path: Path, fake):
        self.fake = fake
        self.cwd = tmp_path
        self.state = tmp_path / "state"
        self.env_file = tmp_path / "empty.env"  # not the developer's .runpod.env
        self.env_file.write_text("")
        self.env_file.chmod(0o600)

    def env(self, with_key: bool = True) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in KEYS}
        env.update({"RUNNER_STATE_DIR": str(self.state), "PYTHONPATH": str(ROOT)})
        if with_key:
            env.update(self.fake.env())
        return env

    def argv(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "runner.livecheck", "--env-file", str(self.env_file), *args]

    def run(self, *args: str, with_key: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run(
            self.argv(*args),
            env=self.env(with_key),
            cwd=self.cwd,
            capture_output=True,
            text=True,
            timeout=120,
            stdin=subprocess.DEVNULL,
        )

    def report(self, *args: str) -> tuple[int, dict, str]:
        proc = self.run("--json", *args)
        return proc.returncode, json.loads(proc.stdout), proc.stderr

    @property
    def record(self) -> Path:
        return self.state / "livecheck-created.json"


@pytest.fixture
def live(tmp_path, fake_runpod) -> LiveCheck:
    return LiveCheck(tmp_path, fake_runpod)


class Containers:
    """Plays what RunPod does when a pod starts: runs its start command (the `args` the check gave it) in
    the environment RunPod gives a container (RUNPOD_POD_ID, the pod-scoped RUNPOD_API_KEY, the pod's own
    env), with the image's /start.sh replaced by `true`. The start command's stop request is real HTTP
    to the fake, so what is tested is the command the check sends to RunPod."""

    def __init__(self, fake):
        self.fake = fake
        self.procs: list[subprocess.Popen] = []
        self.started: set[str] = set()
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._watch, daemon=True)
        self.thread.start()

    def _watch(self) -> None:
        while not self.done.wait(0.05):
            for pod in self.fake.live_pods():
                if pod.id in self.started or pod.status != "RUNNING" or not pod.args:
                    continue
                self.started.add(pod.id)
                env = {"PATH": os.environ["PATH"], **pod.env, "RT_IMAGE_START": "/bin/true"}
                env.update(RUNPOD_POD_ID=pod.id, RUNPOD_API_KEY=self.fake.pod_api_key(pod.id))
                self.procs.append(
                    subprocess.Popen(["sh", "-c", pod.args], env=env, start_new_session=True, stdout=subprocess.PIPE)
                )

    def output(self) -> str:
        return "".join(p.stdout.read().decode() for p in self.procs if p.stdout and p.wait(timeout=30) is not None)

    def close(self) -> None:
        self.done.set()
        self.thread.join(5)
        for p in self.procs:
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


@pytest.fixture
def containers(fake_runpod):
    c = Containers(fake_runpod)
    yield c
    c.close()


LIFECYCLE = ("--lifecycle", "--max-spend", "0.10", "--self-stop-after", "0.5")


def interruptible() -> None:
    """The child takes Ctrl-C even when this suite was started in the background of a shell without job
    control (which starts it, and so every child, with SIGINT ignored)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def verdicts(report: dict) -> dict[int, str]:
    return {a["number"]: a["verdict"] for a in report["assumptions"]}


def test_without_a_key_it_says_what_it_needs_and_calls_nothing(live: LiveCheck):
    proc = live.run(with_key=False)
    assert proc.returncode == ExitCode.USAGE
    assert "needs RUNPOD_API_KEY" in proc.stderr and "Nothing was called" in proc.stderr
    assert live.fake.requests == []


def test_the_lifecycle_needs_an_explicit_cap(live: LiveCheck):
    proc = live.run("--lifecycle")
    assert proc.returncode == ExitCode.USAGE and "--max-spend" in proc.stderr
    assert live.fake.requests == []


def test_read_only_by_default(live: LiveCheck):
    code, report, err = live.report()
    assert code == 0 and report["passed"], report
    v = verdicts(report)
    assert v[9] == "confirmed" and v[3] == "confirmed"
    assert v[1] == v[2] == v[4] == "not checked"
    assert live.fake.billable_calls() == []
    assert live.fake.api_key not in json.dumps(report) + err


def test_the_lifecycle_confirms_the_spot_assumptions_and_leaves_nothing(live: LiveCheck, containers):
    code, report, err = live.report(*LIFECYCLE)
    assert code == 0 and report["passed"], (report, err)
    v = verdicts(report)
    assert v[1] == v[2] == v[3] == v[4] == v[8] == v[9] == "confirmed", report["assumptions"]
    steps = [s["name"] for s in report["steps"]][-6:]
    assert steps == ["create", "read", "running", "self-stop", "stop", "terminate"]
    # The pod stopped itself: the stop went out with its own key, and the check sent none before it.
    stops = [r for r in live.fake.requests if r.action == "stop"]
    assert stops[0].auth == f"pod:{stops[0].path.split('/')[3]}" and stops[0].status == 200
    assert "rt-livecheck self-stop: HTTP 200" in containers.output()
    assert live.fake.live_pods() == []
    # The billable calls: the refused low bid, the one pod's create, the refused v2 start of the stopped spot pod.
    billable = live.fake.billable_calls()
    assert [(r.operation or r.action) for r in billable] == ["podRentInterruptable"] * 2 + ["start"]
    assert billable[2].status == 409
    assert len([p for p in live.fake.pods.values()]) == 1
    assert 0 < report["spent_usd"] < 0.10 and report["leftovers"] == []
    assert not live.record.exists()


def test_graphql_retired_confirms_assumption_10_and_the_lifecycle_goes_on_demand(live: LiveCheck, containers):
    live.fake.retire_graphql()
    code, report, err = live.report(*LIFECYCLE)
    assert code == 0, (report, err)
    v = verdicts(report)
    assert v[10] == "confirmed" and "410" in next(a["evidence"] for a in report["assumptions"] if a["number"] == 10)
    assert v[8] == "confirmed" and v[9] == "confirmed"
    assert v[1] == v[2] == v[4] == "not checked"
    assert "on-demand pod" in next(s["detail"] for s in report["steps"] if s["name"] == "create")
    assert live.fake.live_pods() == []


def test_a_pod_key_refused_for_its_own_stop_refutes_8_and_the_check_stops_the_pod_itself(live: LiveCheck, containers):
    live.fake.refuse_pod_key_stops()
    code, report, err = live.report(*LIFECYCLE)
    assert code == ExitCode.FAILED and not report["passed"], (report, err)
    evidence = next(a["evidence"] for a in report["assumptions"] if a["number"] == 8)
    assert verdicts(report)[8] == "refuted" and "was still RUNNING" in evidence
    assert "rt-livecheck self-stop: HTTP 403" in containers.output()
    own, account = [r for r in live.fake.requests if r.action == "stop"][:2]
    assert own.status == 403 and own.auth.startswith("pod:") and account.auth == "account"
    assert live.fake.live_pods() == [] and report["leftovers"] == []


def test_self_stop_after_needs_the_lifecycle(live: LiveCheck):
    proc = live.run("--self-stop-after", "5")
    assert proc.returncode == ExitCode.USAGE and "--self-stop-after goes with --lifecycle" in proc.stderr
    assert live.fake.requests == []


def test_a_cap_too_small_creates_nothing(live: LiveCheck):
    code, report, _ = live.report("--lifecycle", "--max-spend", "0.001")
    assert code == ExitCode.USAGE
    step = next(s for s in report["steps"] if s["name"] == "spending cap")
    assert not step["ok"] and "raise --max-spend to at least" in step["detail"]
    assert live.fake.billable_calls() == [] and live.fake.live_pods() == []


def test_ctrl_c_during_the_lifecycle_removes_the_pod(live: LiveCheck):
    live.fake.boot_seconds = 120.0  # the pod stays PROVISIONING: the check waits for it
    proc = subprocess.Popen(
        live.argv("--lifecycle", "--max-spend", "0.10"),
        env=live.env(),
        cwd=live.cwd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=interruptible,
    )
    created = threading.Event()
    lines: list[str] = []

    def read() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            lines.append(line)
            if "waiting (up to" in line:
                created.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    assert created.wait(60), "".join(lines)
    assert len(live.fake.live_pods()) == 1 and live.record.exists()
    proc.send_signal(signal.SIGINT)
    proc.wait(timeout=60)
    reader.join(10)
    out = proc.stdout.read() if proc.stdout else ""
    assert proc.returncode == 130, "".join(lines) + out
    assert live.fake.live_pods() == []
    assert any("interrupted: removing what the live check created" in ln for ln in lines)
    assert not live.record.exists()


def test_sigterm_is_cleaned_up_like_ctrl_c(live: LiveCheck):
    live.fake.boot_seconds = 120.0
    proc = subprocess.Popen(
        live.argv("--lifecycle", "--max-spend", "0.10"),
        env=live.env(),
        cwd=live.cwd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stderr is not None
    for line in proc.stderr:
        if "waiting (up to" in line:
            break
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=60)
    assert proc.returncode == 130 and live.fake.live_pods() == []


def test_an_earlier_runs_leftovers_are_removed_first(live: LiveCheck):
    stray = live.fake.add_pod(name="rt-livecheck-deadbeef", status="RUNNING")
    named_only = live.fake.add_pod(name="rt-livecheck-deadbeef", status="RUNNING")
    live.state.mkdir()
    live.record.write_text(json.dumps({"name": "rt-livecheck-deadbeef", "pod_ids": [stray.id]}))
    code, report, _ = live.report()
    assert code == 0, report
    assert live.fake.pods[stray.id].status == live.fake.pods[named_only.id].status == "TERMINATED"
    assert report["steps"][0]["name"] == "earlier run's pods" and report["steps"][0]["ok"]
    assert not live.record.exists()


def test_a_rejected_key_exits_5(live: LiveCheck):
    env = live.env()
    env["RUNPOD_API_KEY"] = "rpa_revoked_key_0123456789"
    proc = subprocess.run(live.argv("--json"), env=env, cwd=live.cwd, capture_output=True, text=True, timeout=60)
    assert proc.returncode == ExitCode.API
    assert json.loads(proc.stdout)["steps"][0] == {"name": "API key", "ok": False, "detail": proc_detail(proc)}
    assert "rpa_revoked_key_0123456789" not in proc.stdout + proc.stderr


def proc_detail(proc: subprocess.CompletedProcess) -> str:
    return json.loads(proc.stdout)["steps"][0]["detail"]
