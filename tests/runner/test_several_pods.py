"""Several pods in one stack on one network volume (issue 30), on the stand-ins: one sshd per pod, all on
one workspace directory (tests/fixtures/multi_harness.py). Runs on different pods at once never touch
each other's code, outputs or logs; a pod is chosen by name or as the first free one."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from remote.podside.contract import parse_header
from tests.fixtures.multi_harness import MultiEnv, multi_env  # noqa: F401 (fixture)
from tests.fixtures.pod_harness import git
from tests.fixtures.recovery_harness import fast_recovery
from tests.fixtures.train_harness import smoke_config, wait_for


def head_of(checkout: Path) -> str:
    return subprocess.run(
        ["git", "-C", str(checkout), "rev-parse", "HEAD"], capture_output=True, text=True
    ).stdout.strip()


def test_two_runs_on_different_commits_train_at_once_on_two_pods_without_touching_each_other(
    multi_env: MultiEnv, monkeypatch
):
    env = multi_env
    fast_recovery(monkeypatch)
    env.add_pods(["a", "b"])
    env.write_config("configs/slow.yaml", smoke_config(max_steps=40, save_steps=10, step_seconds=0.05))
    first_commit = git(env.project, "rev-parse", "HEAD").strip()
    run_a = env.start("train", "--config", "configs/slow.yaml", "--pod", "a", "--run-id", "run-a")
    wait_for(lambda: (env.pod("a").state() or {}).get("state") == "running", 60, "run a training on pod a")

    # A new commit while run a trains: run b, on pod b, trains it; run a keeps its own checkout.
    (env.project / "remote" / "smoke_train.py").write_text(
        (env.project / "remote" / "smoke_train.py").read_text() + "\n# second commit\n"
    )
    git(env.project, "commit", "-qam", "second")
    second_commit = git(env.project, "rev-parse", "HEAD").strip()
    run_b = env.start("train", "--config", "configs/slow.yaml", "--run-id", "run-b")  # the first free pod: b
    wait_for(lambda: (env.pod("b").state() or {}).get("state") == "running", 60, "run b training on pod b")
    assert (env.pod("a").state() or {}).get("state") == "running", "both runs train at the same time"

    code_a, code_b = run_a.wait(120), run_b.wait(120)
    out, err = env.peek()
    assert (code_a, code_b) == (0, 0), err[-3000:]
    assert "pod b (" in err and "the first free pod" in err

    ws = env.workspace
    checkout_a, checkout_b = ws / "runs" / "run-a" / "project", ws / "runs" / "run-b" / "project"
    assert head_of(checkout_a) == first_commit and head_of(checkout_b) == second_commit
    assert "# second commit" not in (checkout_a / "remote" / "smoke_train.py").read_text()
    # Each run's outputs in its own checkout, complete.
    for checkout in (checkout_a, checkout_b):
        assert (checkout / "checkpoints" / "smoke" / "checkpoint-40" / "trainer_state.json").is_file()
    assert not (ws / "project").exists(), "no shared checkout on a volume several pods use"
    # Each pod's log holds its own run only; each pod's state its own run.
    for pod, run in ((env.pod("a"), "run-a"), (env.pod("b"), "run-b")):
        headers = [parse_header(line) for line in pod.log_text().splitlines() if parse_header(line)]
        assert [h.run_id for h in headers if h] == [run]
        assert (pod.state() or {})["run_id"] == run and (pod.state() or {})["state"] == "succeeded"
    assert Path(env.pod("a").paths.log) != Path(env.pod("b").paths.log)
    # One venv for both (same requirements and interpreter), built once.
    venvs = list((ws / ".runner" / "venvs").iterdir())
    assert len([v for v in venvs if v.is_dir()]) == 1
    # Each pod stopped itself, and only itself.
    stops = [r for r in env.fake.requests if r.action == "stop"]
    assert sorted(r.path.split("/")[3] for r in stops) == sorted([env.pod("a").pod_id, env.pod("b").pod_id])
    assert all(r.auth == f"pod:{r.path.split('/')[3]}" for r in stops), "each pod stopped itself with its own key"
    records = {r: json.loads((env.state_dir / "dev" / "runs" / f"{r}.json").read_text()) for r in ("run-a", "run-b")}
    assert records["run-a"]["pod"] == "a" and records["run-b"]["pod"] == "b"


def test_the_same_run_live_on_another_pod_is_refused(multi_env: MultiEnv, monkeypatch):
    env = multi_env
    fast_recovery(monkeypatch)
    env.add_pods(["a", "b"])
    env.write_config("configs/slow.yaml", smoke_config(max_steps=200, save_steps=50, step_seconds=0.05))
    run_a = env.start("train", "--config", "configs/slow.yaml", "--pod", "a", "--run-id", "same", "--detach")
    assert run_a.wait(60) == 0
    wait_for(lambda: (env.pod("a").state() or {}).get("state") == "running", 60, "the run training on pod a")
    res = env.run("train", "--config", "configs/slow.yaml", "--pod", "b", "--run-id", "same")
    assert res.code != 0
    assert "run same is running on pod the first" in res.err and "another --run-id" in res.err
    assert env.pod("b").state() is None, "nothing started on pod b"


def checkpoint_done(env: MultiEnv, run_id: str, step: int) -> bool:
    ckpt = env.workspace / "runs" / run_id / "project" / "checkpoints" / "smoke" / f"checkpoint-{step}"
    return (ckpt / "trainer_state.json").is_file()


def test_a_four_run_sweep_two_at_a_time_recovers_one_preemption_on_each_pod(multi_env: MultiEnv, monkeypatch):
    env = multi_env
    fast_recovery(monkeypatch)
    env.add_pods(["a", "b"])
    config = env.write_config("configs/sweep.yaml", smoke_config(max_steps=30, save_steps=5, step_seconds=0.1))
    user_config = (env.project / config).read_text()
    sweep = env.start(
        "sweep", "--config", config, "--set", "lr=1e-4,3e-4", "--set", "max_steps=20,30", "--sweep", "sw",
        "--concurrency", "2",
    )  # fmt: skip
    # The first two runs start at once, one on each pod; each pod is preempted once under its run.
    for pod, run in (("a", "sw-1"), ("b", "sw-2")):
        wait_for(lambda run=run: checkpoint_done(env, run, 5), 60, f"{run}'s first checkpoint")
        assert (env.pod(pod).state() or {}).get("run_id") == run
        env.preempt(pod)
    code = sweep.wait(240)
    out, err = env.peek()
    assert code == 0, err[-4000:]

    # Every run succeeded, at its own values, in its own checkout, from a derived config.
    done = json.loads((env.state_dir / "dev" / "sweeps" / "sw.json").read_text())
    assert [(r["run_id"], r["state"]) for r in done["runs"]] == [(f"sw-{i}", "succeeded") for i in range(1, 5)]
    assert [r["values"] for r in done["runs"]] == [
        {"lr": 0.0001, "max_steps": 20},
        {"lr": 0.0001, "max_steps": 30},
        {"lr": 0.0003, "max_steps": 20},
        {"lr": 0.0003, "max_steps": 30},
    ]
    for i, r in enumerate(done["runs"], 1):
        checkout = env.workspace / "runs" / f"sw-{i}" / "project"
        derived = (checkout / ".rt-configs" / f"sw-{i}.yaml").read_text()
        assert f"max_steps: {r['values']['max_steps']}" in derived and "lr: " in derived
        assert checkpoint_done(env, f"sw-{i}", r["values"]["max_steps"])
    assert (env.project / config).read_text() == user_config, "the user's config is never edited"

    # One preemption recovered on each pod, and only there.
    records = {r: json.loads((env.state_dir / "dev" / "runs" / f"{r}.json").read_text()) for r in ("sw-1", "sw-2")}
    assert records["sw-1"]["pod"] == "a" and records["sw-2"]["pod"] == "b"
    assert [records[r]["preemptions"] for r in ("sw-1", "sw-2")] == [1, 1]
    assert [records[r]["recoveries"] for r in ("sw-1", "sw-2")] == [1, 1]
    for r in ("sw-3", "sw-4"):
        assert json.loads((env.state_dir / "dev" / "runs" / f"{r}.json").read_text())["preemptions"] == 0

    # The group's lines are prefixed with their run; one summary table; the same from --status.
    assert "[sw-1] " in out + err and "[sw-4] " in out + err
    assert "sweep sw: 4 succeeded" in out
    status = env.run("sweep", "--status", "--sweep", "sw")
    assert status.code == 0 and "sweep sw: 4 succeeded" in status.out
    rows = {line.split()[0]: line for line in status.out.splitlines()[2:]}
    assert set(rows) == {"sw-1", "sw-2", "sw-3", "sw-4"}
    assert " 20 " in rows["sw-1"] and " 30 " in rows["sw-2"], "each run's final step"
    as_json = json.loads(env.run("sweep", "--status", "--json").out)
    assert [r["recoveries"] for r in as_json["runs"]] == [1, 1, 0, 0]
    assert all(r["loss"] is not None and r["cost_usd"] is not None for r in as_json["runs"])


def test_status_shows_every_pod_and_its_run_and_the_companions_ask_which_pod(multi_env: MultiEnv, monkeypatch):
    env = multi_env
    fast_recovery(monkeypatch)
    env.add_pods(["a", "b"])
    env.write_config("configs/slow.yaml", smoke_config(max_steps=400, save_steps=50, step_seconds=0.05))
    for pod, run in (("a", "ra"), ("b", "rb")):
        assert env.run("train", "--config", "configs/slow.yaml", "--pod", pod, "--run-id", run, "--detach").code == 0
        wait_for(lambda pod=pod: (env.pod(pod).state() or {}).get("state") == "running", 60, f"{run} on {pod}")
    env.fake.set_gpu_use(env.pod("a").pod_id, [(87, 61)])  # pod b's API answers leave runtime out
    table = env.run("status")
    assert table.code == 0, table.err
    lines = table.out.splitlines()
    assert "2 pods on one volume" in lines[0] and "GPU use" in lines[1]
    rows = {line.split()[0]: line for line in lines[2:4]}
    assert set(rows) == {"a", "b"} and " ra " in rows["a"] and " rb " in rows["b"] and "running" in rows["a"]
    assert " 87% " in rows["a"] and "not reported" in rows["b"], "GPU use per pod, never 0 when not reported"
    as_json = {p["pod"]: p for p in json.loads(env.run("status", "--json").out)["pods"]}
    assert as_json["a"]["gpus"] == [{"util": 87, "memory_util": 61}] and as_json["b"]["gpus"] is None
    # Two live runs and no pod named: a companion lists them instead of guessing (not a terminal here).
    logs = env.run("logs", "-n", "5")
    assert logs.code == 102 and "several runs are live" in logs.err and "ra" in logs.err and "rb" in logs.err
    one = env.run("logs", "-n", "200", "--run", "rb")
    assert one.code == 0 and "run=rb" in one.out and "run=ra" not in one.out
    # One stop for one pod: the other run goes on.
    assert env.run("stop", "--pod", "a").code == 0
    assert env.fake.pods[env.pod("a").pod_id].status == "EXITED"
    assert env.fake.pods[env.pod("b").pod_id].status == "RUNNING"
    assert (env.pod("b").state() or {}).get("state") == "running"
