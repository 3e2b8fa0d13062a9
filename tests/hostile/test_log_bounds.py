"""Finding 9: what the pod writes into its log is parsed within bounds. A "step" of more than 4,300
digits crashed the follower, a loss of +-1.7e308 the loss chart (ending automatic recovery for that
run); a line without an end, and files read from the pod, were held in memory whole."""

from __future__ import annotations

from runner.remote.hostkeys import expect_host_key
from runner.remote.ssh import SshConnection, SshTarget
from runner.train import losscurve
from runner.train.accounting import StepProgress
from tests.fixtures.train_harness import git, train_env  # noqa: F401  (fixture)

HUGE_STEP = "step " + "9" * 5000
HOSTILE_TRAINER = f"""
import sys
print({HUGE_STEP!r}, flush=True)
print("step 1 loss 1.7e308", flush=True)
print("step 2 loss -1.7e308", flush=True)
print("step 3 loss 0.5", flush=True)
print("{{'loss': 1e400}} " + "7" * 6000 + "/10 [", flush=True)
print("step 4 loss 0.25", flush=True)
sys.stdout.write("x" * {3 * 2**20} + "\\r" + "y" * 100)
sys.stdout.write("\\n")
sys.stdout.flush()
print("done", flush=True)
"""


def test_parsers_skip_what_is_not_a_step_or_a_loss():
    progress, curve = StepProgress(0.0), losscurve.LossCurve()
    for line in (
        HUGE_STEP,
        "step 1 loss 1.7e308",
        "step 2 loss -1.7e308",
        "step 3 loss 0.5",
        "x " + "7" * 6000 + "/9 [",
    ):
        progress.feed(line)
        curve.feed(line)
    assert progress.max_step == 3 and curve.points == [(3, 0.5)]
    assert losscurve.chart([(1, 1.7e308), (2, -1.7e308), (3, 0.5), (4, float("nan"))])[-1].endswith("last 0.5")


def test_a_line_without_an_end_never_grows_past_the_line_limit():
    from runner.remote.shell import LINE_LIMIT, LineBuffer

    buffer = LineBuffer(0)
    delivered = []
    for _ in range(40):  # 10 MiB of one "line" (a progress bar redrawn with \r, never a newline)
        delivered += list(buffer.feed(b"\r" + b"z" * (256 * 1024 - 1)))
        assert len(buffer.pending) <= LINE_LIMIT
    assert all(len(piece) == LINE_LIMIT for piece, _ in delivered)
    assert delivered[-1][1] + len(buffer.pending) == 40 * 256 * 1024  # offsets stay exact


def test_a_file_read_from_the_pod_is_bounded(sshd, tmp_path):
    from runner.remote.shell import READ_LIMIT

    big = tmp_path / "state.json"
    with open(big, "wb") as fh:
        fh.truncate(READ_LIMIT + 4096)
    target = SshTarget(sshd.host, sshd.port, sshd.user, sshd.key_path)
    with SshConnection.open(target, host_key_check=expect_host_key(sshd.known_host_key), timeout=10) as conn:
        assert len(conn.read_file(str(big)) or b"") == READ_LIMIT


def test_runner_train_survives_a_hostile_log_and_draws_its_chart(train_env, monkeypatch):  # noqa: F811
    env = train_env
    (env.project / "hostile_train.py").write_text(HOSTILE_TRAINER)
    git(env.project, "add", "-A")
    git(env.project, "commit", "-q", "-m", "a trainer that prints what a hostile pod can")
    env.add_pod("RUNNING")
    monkeypatch.setenv("TRAIN_SCRIPT", "hostile_train.py")
    res = env.run("train", "--config", "configs/smoke.yaml")
    assert res.code == 0, res.err
    assert "training succeeded" in res.err and "└ steps 3-4" in res.err
    assert res.out.count("\n") >= 8 and "done" in res.out
