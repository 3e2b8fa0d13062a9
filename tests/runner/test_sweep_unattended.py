"""A sweep moves on with nobody attached (issue 30 with issue 25's watcher), on the stand-ins: several sshd
pods on one workspace (tests/fixtures/multi_harness.py). After the driver is interrupted its running runs
detach, and watcher passes start its queued runs as pods free up; a sweep's lock keeps two watchers from
starting one run twice, and keeps every watcher away from a sweep its driver still drives."""

from __future__ import annotations

import ctypes
import json
import time

import pytest

from runner.paths import StatePaths
from runner.sweep import lock as sweep_lock
from runner.sweep import record as sweeps
from runner.sweep.record import SweepRecord, SweepRun
from runner.watcher import background
from standins.runpod_s3 import RunPodS3
from tests.fixtures.multi_harness import MultiEnv, multi_env  # noqa: F401 (fixture)
from tests.fixtures.recovery_harness import fast_recovery, record
from tests.fixtures.train_harness import BackgroundRun, smoke_config, wait_for


@pytest.fixture
def env(multi_env: MultiEnv, monkeypatch):  # noqa: F811
    fast_recovery(monkeypatch)
    monkeypatch.setenv("WATCH_POLL_SECONDS", "0.3")
    monkeypatch.setenv("WATCH_CONFIRM_SECONDS", "0.5")
    multi_env.add_pods(["a", "b"])
    return multi_env


def paths(env: MultiEnv) -> StatePaths:
    return StatePaths(env.state_dir, "dev")


def ctrl_c(run: BackgroundRun) -> None:
    """Ctrl-C as the terminal delivers it: KeyboardInterrupt in the command's main thread (here, its thread)."""
    assert run.thread.ident is not None
    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(run.thread.ident), ctypes.py_object(KeyboardInterrupt))


def sweep_states(env: MultiEnv, sweep_id: str) -> dict[str, str]:
    res = env.run("sweep", "--status", "--sweep", sweep_id, "--json")
    assert res.code == 0, res.err
    return {r["run_id"]: r["state"] for r in json.loads(res.out)["runs"]}


def watch_passes_until(env: MultiEnv, done, timeout: float) -> list[str]:
    """`runner watch --once` on each pod, one after the other, as cron lines would run them, until done()."""
    said: list[str] = []
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, "".join(said[-8:])
        for pod in ("a", "b"):
            res = env.run("watch", "--once", "--pod", pod)
            assert res.code == 0, res.err
            said.append(res.err)
    return said


def a_queued_sweep(env: MultiEnv, sweep_id: str = "sq") -> SweepRecord:
    config = env.write_config("configs/short.yaml", smoke_config(max_steps=10, save_steps=5, step_seconds=0.05))
    sweep = SweepRecord(sweep_id, config, concurrency=2, runs=[SweepRun(f"{sweep_id}-1", {"lr": 0.001})])
    sweeps.save(paths(env), sweep)
    return sweep


def sweep_interrupted_while_two_train(env: MultiEnv, sweep_id: str, max_steps: int) -> tuple[int, str]:
    """`runner sweep` of three runs, two at a time on pods a and b, and Ctrl-C once both train: its exit
    code and what it printed on stderr."""
    config = env.write_config("configs/sweep.yaml", smoke_config(max_steps=max_steps, save_steps=5, step_seconds=0.1))
    driver = env.start(
        "sweep", "--config", config, "--set", "lr=1e-4,3e-4,1e-3", "--sweep", sweep_id, "--concurrency", "2"
    )
    for pod, run in (("a", f"{sweep_id}-1"), ("b", f"{sweep_id}-2")):
        wait_for(lambda pod=pod, run=run: (env.pod(pod).state() or {}).get("run_id") == run, 60, f"{run} on {pod}")
        wait_for(lambda pod=pod: (env.pod(pod).state() or {}).get("state") == "running", 60, f"{run} training")
    ctrl_c(driver)
    code = driver.wait(90)
    return code, env.peek()[1]


def test_an_interrupted_sweep_runs_its_queued_run_with_watcher_passes_and_ends_all_succeeded(
    env: MultiEnv, monkeypatch
):
    with RunPodS3(volume_id="vol-xyz", volume_dir=env.workspace) as s3:  # the runs' results, with their pods stopped
        for k, v in s3.env().items():
            monkeypatch.setenv(k, v)
        code, err = sweep_interrupted_while_two_train(env, "sw", max_steps=60)
        assert code == 130, err[-3000:]
        assert "the watchers start its queued runs as pods free up" in err
        # Each running run detached as its own `runner train` does on Ctrl-C; the third waits in the queue.
        assert "[sw-1] " in err and "[sw-2] " in err
        assert [record(env, r)["status"] for r in ("sw-1", "sw-2")] == ["detached", "detached"]
        assert sweep_states(env, "sw") == {"sw-1": "running", "sw-2": "running", "sw-3": "queued"}
        assert sweep_lock.holder(paths(env), "sw") is None, "the driver let the sweep go"

        said = watch_passes_until(env, lambda: "queued" not in sweep_states(env, "sw").values(), 120)
        started = [line for text in said for line in text.splitlines() if "starting queued run sw-3" in line]
        assert len(started) == 1, said
        sw3_pod = record(env, "sw-3")["pod"]
        assert sw3_pod in ("a", "b") and f"on pod {sw3_pod}" in started[0]
        assert "run sw-3 started on pod" in "".join(said) and "detached" in "".join(said)

        watch_passes_until(env, lambda: set(sweep_states(env, "sw").values()) == {"succeeded"}, 120)

    # The runs ended with nobody attached: their state from their records, in --status and its table.
    done = json.loads((env.state_dir / "dev" / "sweeps" / "sw.json").read_text())
    assert [(r["run_id"], r["state"], r["exit_code"]) for r in done["runs"]] == [
        ("sw-1", "succeeded", 0),
        ("sw-2", "succeeded", 0),
        ("sw-3", "succeeded", 0),
    ]
    for i, lr in enumerate(("0.0001", "0.0003", "0.001"), 1):
        checkout = env.workspace / "runs" / f"sw-{i}" / "project"
        assert (checkout / "checkpoints" / "smoke" / "checkpoint-60" / "trainer_state.json").is_file()
        assert f"lr: {lr}" in (checkout / ".rt-configs" / f"sw-{i}.yaml").read_text()
    table = env.run("sweep", "--status", "--sweep", "sw")
    assert table.code == 0 and "sweep sw: 3 succeeded" in table.out, table.out


def test_two_watchers_at_once_start_a_queued_run_only_once(env: MultiEnv):
    a_queued_sweep(env)
    watchers = [env.start("watch", "--once", "--pod", pod) for pod in ("a", "b")]
    assert [w.wait(120) for w in watchers] == [0, 0]
    out, err = env.peek()
    assert err.count("starting queued run sq-1") == 1, err
    assert sweep_states(env, "sq") == {"sq-1": "running"}
    pod = record(env, "sq-1")["pod"]
    assert pod in ("a", "b")
    other = env.pod("b" if pod == "a" else "a")
    assert (env.pod(pod).state() or {}).get("run_id") == "sq-1"
    assert other.state() is None, "nothing ran on the other pod"


def test_a_live_drivers_lock_keeps_the_watcher_out(env: MultiEnv):
    a_queued_sweep(env)
    with sweep_lock.holding(paths(env), "sq", "sweep") as mine:  # what a running `runner sweep` holds
        assert mine
        res = env.run("watch", "--once", "--pod", "a")
        assert res.code == 0 and "starting queued run" not in res.err, res.err
        assert sweep_states(env, "sq") == {"sq-1": "queued"}
        assert not (env.state_dir / "dev" / "runs" / "sq-1.json").exists()
        resume = env.run("sweep", "--resume", "--sweep", "sq")
        assert resume.code != 0 and "is driven by `runner sweep` (pid " in resume.err, resume.err
    # The driver gone, the next pass starts it.
    res = env.run("watch", "--once", "--pod", "a")
    assert "starting queued run sq-1 (lr=0.001) on pod a" in res.err, res.err
    assert sweep_states(env, "sq") == {"sq-1": "running"} and record(env, "sq-1")["status"] == "detached"


def test_an_interrupted_sweep_is_finished_by_the_background_watchers_its_runs_left(env: MultiEnv, monkeypatch):
    """As a user meets it: Ctrl-C on `runner sweep` and nothing else typed. Each detaching run leaves its
    pod's background watcher (runner/watcher/background.py), and those move the sweep on to its end."""
    monkeypatch.delenv(background.OPT_OUT, raising=False)  # the watchers are what is tested here
    with RunPodS3(volume_id="vol-xyz", volume_dir=env.workspace) as s3:
        for k, v in s3.env().items():
            monkeypatch.setenv(k, v)
        code, err = sweep_interrupted_while_two_train(env, "bg", max_steps=30)
        assert code == 130 and "a background watcher (pid " in err, err[-3000:]
        wait_for(
            lambda: set(sweep_states(env, "bg").values()) == {"succeeded"}, 180, "the watchers to finish the sweep"
        )
    logs = "".join(p.read_text() for p in (env.state_dir / "dev").rglob("watch.log"))
    assert logs.count("starting queued run bg-3") == 1, logs[-3000:]
    checkout = env.workspace / "runs" / "bg-3" / "project"
    assert (checkout / "checkpoints" / "smoke" / "checkpoint-30" / "trainer_state.json").is_file()
