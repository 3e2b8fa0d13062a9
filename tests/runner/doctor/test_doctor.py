"""`runner doctor` against the fake RunPod API, the stub `pulumi` and a local git repo: a healthy
setup passes; each seeded problem is one FAIL line with its fix; nothing billable is ever asked for
(the fake's call log) and the API key is never printed."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from runner.doctor import CHECKS, Context, run_checks
from runner.errors import EXIT_DOCTOR
from tests.fixtures.doctor_harness import DoctorEnv, doctor_env, keygen  # noqa: F401


def by_name(report: dict) -> dict[str, dict]:
    return {c["name"]: c for c in report["checks"]}


def test_a_healthy_setup_passes_with_reads_only(doctor_env: DoctorEnv):
    code, out, err = doctor_env.run()
    assert code == 0, out + err
    assert "FAIL" not in out
    for name in (
        ".runpod.env",
        "SSH private key",
        "SSH public key",
        "Pulumi CLI",
        "stack dev",
        "stack passphrase",
        "stack outputs",
        "RunPod API key",
        "GPU type",
        "on-demand stock",
        "spot API",
        "spot stock",
        "network volume",
        "pod",
        "idle stop",
        "REPO_URL",
        "config configs/smoke.yaml",
    ):
        assert any(line.split()[1:] and line[6:].startswith(name) for line in out.splitlines()), (name, out)
    assert "all checks passed" in out
    assert doctor_env.fake.billable_calls() == []
    assert all(r.method == "GET" or r.operation for r in doctor_env.fake.requests)  # reads and GraphQL queries
    assert doctor_env.fake.api_key not in out + err
    assert doctor_env.fake.pods[doctor_env.pod_id].status == "EXITED"


def test_the_idle_stop_is_reported_with_what_to_do_when_the_pod_lacks_it(doctor_env: DoctorEnv):
    checks = by_name(doctor_env.run_json()[1])
    assert checks["idle stop"]["status"] == "ok" and "after 20 min" in checks["idle stop"]["detail"]

    doctor_env.fake.pods[doctor_env.pod_id].args = ""  # a pod from before the idle stop
    code, report = doctor_env.run_json()
    check = by_name(report)["idle stop"]
    assert code == 0 and check["status"] == "warn" and "created before the idle stop" in check["detail"]
    assert "pulumi up --replace" in check["fix"]

    doctor_env.stub.update(outputs={**doctor_env.stub.behaviour()["outputs"], "idle_stop_minutes": 0})
    check = by_name(doctor_env.run_json()[1])["idle stop"]
    assert check["status"] == "warn" and "bills until someone stops it" in check["detail"]
    assert "idleStopMinutes 20" in check["fix"]
    assert doctor_env.fake.billable_calls() == []


def test_json_lists_every_check_with_status_and_fix(doctor_env: DoctorEnv):
    code, report = doctor_env.run_json()
    assert code == 0 and report["ok"] is True and report["exit_code"] == 0
    checks = by_name(report)
    assert checks["pod"]["status"] == "ok" and "stopped_by_user" in checks["pod"]["detail"]
    assert checks["spot stock"]["status"] == "ok" and "bidPerGpu $0.350" in checks["spot stock"]["detail"]
    assert set(report["checks"][0]) == {"name", "status", "detail", "fix"}


# ---------------------------------------------------------------- the seeded problems
def bad_key(env: DoctorEnv, mp) -> None:
    env.write_env(RUNPOD_API_KEY="rpa_this_key_was_revoked_0123456789")


def no_stock(env: DoctorEnv, mp) -> None:
    env.fake.set_price("NVIDIA GeForce RTX 4090", stock="None")


def passphrase_key(env: DoctorEnv, mp) -> None:
    key = keygen(env.root / "enc", passphrase="a secret phrase")
    env.write_env(SSH_KEY_PATH=str(key))
    env.write_stack_config(public_key_path=f"{key}.pub")


def wrong_public_key(env: DoctorEnv, mp) -> None:
    other = keygen(env.root / "someone_else")
    env.write_stack_config(public_key_path=f"{other}.pub")


def pod_has_another_key(env: DoctorEnv, mp) -> None:
    """The stack config names the right key, but the pod was created with another (no `pulumi up` since)."""
    other = keygen(env.root / "old_key")
    env.fake.pods[env.pod_id].env["PUBLIC_KEY"] = Path(f"{other}.pub").read_text().strip()


def missing_outputs(env: DoctorEnv, mp) -> None:
    env.stub.set(outputs={})


def unreachable_repo(env: DoctorEnv, mp) -> None:
    env.write_env(REPO_URL=str(env.root / "no-such-repo"))


def missing_branch(env: DoctorEnv, mp) -> None:
    env.write_env(REPO_BRANCH="feature-never-pushed")


def bid_below_minimum(env: DoctorEnv, mp) -> None:
    env.fake.set_price("NVIDIA GeForce RTX 4090", minimum_bid=0.45)


def graphql_retired(env: DoctorEnv, mp) -> None:
    env.fake.retire_graphql()


def env_file_public(env: DoctorEnv, mp) -> None:
    env.env_file.chmod(0o644)


def no_output_dir(env: DoctorEnv, mp) -> None:
    (env.project / "configs" / "smoke.yaml").write_text("max_steps: 4\n")


def no_stack(env: DoctorEnv, mp) -> None:
    env.stub.set(exit_code=255, stderr="error: no stack named 'dev' found\n")


def no_pulumi(env: DoctorEnv, mp) -> None:
    env.write_env(PULUMI_BINARY=str(env.root / "no-pulumi-here"))


SEEDED: list[tuple[str, Callable, str, str, str]] = [
    # id, setup, the failing check, a fragment of its detail, a fragment of its fix
    ("bad-key", bad_key, "RunPod API key", "rejected the API key", "RUNPOD_API_KEY in .runpod.env"),
    ("no-stock", no_stock, "on-demand stock", "no 1x NVIDIA GeForce RTX 4090 in EU-RO-1 available", "retry later"),
    ("passphrase-key", passphrase_key, "SSH private key", "protected by a passphrase", "ssh-add "),
    (
        "wrong-public-key",
        wrong_public_key,
        "SSH public key",
        "is not the key the stack gives the pod",
        "pulumi config set sshPublicKeyPath",
    ),
    ("pod-has-another-key", pod_has_another_key, "pod", "accepts another SSH key", "`pulumi up`"),
    ("missing-outputs", missing_outputs, "stack outputs", "has no outputs yet", "`pulumi up`"),
    ("unreachable-repo", unreachable_repo, "REPO_URL", "is not reachable from here", "git ls-remote"),
    ("missing-branch", missing_branch, "REPO_URL", "has no branch 'feature-never-pushed'", "git push origin"),
    ("bid-below-minimum", bid_below_minimum, "spot stock", "minimum bid $0.450", "pulumi config set bidPerGpu 0.46"),
    ("graphql-retired", graphql_retired, "spot API", "retired its GraphQL API", "spotFallback on-demand"),
    ("env-file-public", env_file_public, ".runpod.env", "readable by group or others", "chmod 600"),
    (
        "no-output-dir",
        no_output_dir,
        "config configs/smoke.yaml",
        "no top-level output_dir",
        "output_dir: checkpoints/smoke",
    ),
    ("no-stack", no_stack, "stack dev", "no stack 'dev'", "pulumi stack init dev"),
    ("no-pulumi", no_pulumi, "Pulumi CLI", "was not found", "get.pulumi.com"),
]


@pytest.mark.parametrize("setup,name,detail,fix", [s[1:] for s in SEEDED], ids=[s[0] for s in SEEDED])
def test_each_seeded_problem_fails_with_its_fix_and_costs_nothing(
    doctor_env: DoctorEnv, monkeypatch, setup, name, detail, fix
):
    setup(doctor_env, monkeypatch)
    code, report = doctor_env.run_json()
    assert code == EXIT_DOCTOR and report["ok"] is False
    check = by_name(report)[name]
    assert check["status"] == "fail", check
    assert detail in check["detail"] and fix in check["fix"], check
    assert doctor_env.fake.billable_calls() == []
    code, out, err = doctor_env.run()
    assert code == EXIT_DOCTOR
    assert f"fix: {check['fix']}" in out
    assert doctor_env.fake.api_key not in out + err and "a-passphrase" not in out + err
    assert doctor_env.fake.billable_calls() == []


def test_a_rejected_key_skips_the_api_checks_after_one_read(doctor_env: DoctorEnv):
    bad_key(doctor_env, None)
    _, report = doctor_env.run_json()
    checks = by_name(report)
    assert checks["GPU type"]["status"] == checks["network volume"]["status"] == checks["pod"]["status"] == "skip"
    assert len([r for r in doctor_env.fake.requests if r.status == 401]) == 1


def test_before_the_first_up_the_gpu_checks_use_the_stack_config(doctor_env: DoctorEnv):
    missing_outputs(doctor_env, None)
    _, report = doctor_env.run_json()
    checks = by_name(report)
    assert checks["GPU type"]["status"] == "ok" and "Pulumi.dev.yaml" in checks["GPU type"]["detail"]
    assert checks["spot stock"]["status"] == "ok"
    assert checks["network volume"]["status"] == checks["pod"]["status"] == "skip"
    assert [c for c in report["checks"] if c["status"] == "fail"] == [checks["stack outputs"]]


def test_a_check_is_one_function_in_a_list(doctor_env: DoctorEnv):
    """What the lead's S3 check will look like: a plain function, appended to CHECKS."""
    from runner.doctor.check import ok
    from runner.settings import load_settings

    def extra(ctx: Context):
        return ok("extra", f"stack {ctx.settings.stack}")

    results = run_checks(Context(load_settings()), [*CHECKS, extra])
    assert results[-1].name == "extra" and results[-1].detail == "stack dev"


def test_a_crashing_check_is_a_fail_line_not_a_crash(doctor_env: DoctorEnv):
    from runner.settings import load_settings

    def broken(ctx: Context):
        raise RuntimeError("boom")

    (result,) = run_checks(Context(load_settings()), [broken])
    assert result.status == "fail" and "RuntimeError: boom" in result.detail


def test_help_lists_doctor_and_its_exit_code_without_importing_it(capsys):
    import subprocess
    import sys

    from runner import cli

    with pytest.raises(SystemExit):
        cli.main(["doctor", "--help"])
    out = capsys.readouterr().out
    assert "--json" in out and "--config PATH" in out and "Exits 0 when nothing failed, 107 when a check failed." in out
    probe = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, runner.cli as c; c.build_parser(); "
            "print(sorted(m for m in sys.modules if m.startswith(('runner.doctor', 'paramiko', 'infra'))))",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert probe.stdout.strip() == "[]"


# ---------------------------------------------------------------- the S3 API (the volume without a pod)
@pytest.fixture
def s3_standin(doctor_env: DoctorEnv):
    from standins.runpod_s3 import RunPodS3

    s3 = RunPodS3(volume_id=doctor_env.volume_id).start()
    yield s3
    s3.stop()


def test_without_s3_keys_the_s3_check_says_how_to_get_them(doctor_env: DoctorEnv):
    code, report = doctor_env.run_json()
    check = by_name(report)["S3 API"]
    assert code == 0 and check["status"] == "warn" and "RUNPOD_S3_ACCESS_KEY" in check["fix"]


def test_s3_keys_accepted_for_the_stacks_volume(doctor_env: DoctorEnv, s3_standin):
    doctor_env.write_env(**s3_standin.env())
    code, report = doctor_env.run_json()
    check = by_name(report)["S3 API"]
    assert code == 0 and check["status"] == "ok", check
    assert doctor_env.volume_id in check["detail"] and "accepted" in check["detail"]
    assert [r.op for r in s3_standin.requests] == ["ListObjectsV2"]  # one read
    assert doctor_env.fake.billable_calls() == []


@pytest.mark.parametrize(
    "problem,expected,fix",
    [
        ("secret", "rejected", "RUNPOD_S3_SECRET_KEY"),
        ("clock", "clock", "timedatectl"),
    ],
)
def test_s3_problems_fail_with_their_fix(doctor_env: DoctorEnv, s3_standin, problem, expected, fix):
    env = s3_standin.env()
    if problem == "secret":
        env["RUNPOD_S3_SECRET_KEY"] = "rps_not_the_right_secret_000000000000"
    else:
        s3_standin.clock_offset_s = 2 * 3600  # the server's clock two hours off this machine's
    doctor_env.write_env(**env)
    code, out, err = doctor_env.run()
    line = next(l for l in out.splitlines() if "S3 API" in l)
    assert code == EXIT_DOCTOR and line.startswith("FAIL"), out
    assert expected in out.lower() and fix in out
    assert "rps_not_the_right_secret" not in out + err and s3_standin.secret_key not in out + err
    assert doctor_env.fake.billable_calls() == []
