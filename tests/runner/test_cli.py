"""`python -m runner`: help texts, argument validation, lazy dispatch, error -> exit code mapping."""

from __future__ import annotations

import subprocess
import sys
import types
from pathlib import Path

import pytest

from runner import cli
from runner.errors import PodGone, StackError
from runner.settings import KEYS

ROOT = Path(__file__).resolve().parents[2]
SUBCOMMANDS = ["train", "sync", "pull", "tensorboard", "status", "logs", "stop", "ssh", "ssh-config"]
KEY = "rpa_CLI_TEST_KEY_0123456789"


@pytest.fixture
def project(tmp_path, monkeypatch):
    """An isolated project dir as cwd, with no runner settings leaking in from the environment."""
    for key in KEYS:
        monkeypatch.delenv(key, raising=False)
    (tmp_path / "Pulumi.yaml").write_text("name: t\n")
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def recorder(monkeypatch):
    """Route every command to one in-memory module whose run() records its call."""
    calls: list[tuple] = []
    mod = types.ModuleType("runner._test_command")
    mod.result = 0

    def run(args, settings):
        calls.append((args, settings))
        if isinstance(mod.result, BaseException):
            raise mod.result
        return mod.result

    mod.run = run
    monkeypatch.setitem(sys.modules, "runner._test_command", mod)
    for name in SUBCOMMANDS:
        monkeypatch.setitem(cli.COMMANDS, name, "runner._test_command")
    mod.calls = calls
    return mod


def help_text(capsys, argv) -> str:
    with pytest.raises(SystemExit) as e:
        cli.main(argv)
    assert e.value.code == 0
    return capsys.readouterr().out


def test_top_level_help_lists_commands_and_exit_codes(capsys):
    out = help_text(capsys, ["--help"])
    for name in SUBCOMMANDS:
        assert f"\n    {name} " in out
    assert "exit codes:" in out and "130" in out and "examples:" in out
    assert "--env-file" in out and "--stack" in out


@pytest.mark.parametrize("name", SUBCOMMANDS)
def test_every_command_has_description_and_examples(capsys, name):
    out = help_text(capsys, [name, "--help"])
    assert "examples:" in out and f"python -m runner {name}" in out
    assert "exit codes:" in out
    description = out.split("\n\n")[1]
    assert len(description) > 40


def test_train_help_names_all_options(capsys):
    out = help_text(capsys, ["train", "--help"])
    for opt in (
        "--config",
        "--stack",
        "--detach",
        "--keep-pod",
        "--host",
        "--local",
        "--max-recoveries",
        "--budget-usd",
        "--run-id",
    ):
        assert opt in out


def test_module_entry_point_runs():
    proc = subprocess.run([sys.executable, "-m", "runner", "--help"], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0 and "usage: python -m runner" in proc.stdout


@pytest.mark.parametrize(
    "argv",
    [
        ["train"],  # --config is required
        ["train", "--config", "c.yaml", "--host", "nouser"],
        ["train", "--config", "c.yaml", "--host", "u@h:99999"],
        ["train", "--config", "c.yaml", "--max-recoveries", "-1"],
        ["train", "--config", "c.yaml", "--budget-usd", "0"],
        ["train", "--config", "c.yaml", "--budget-usd", "nan"],
        ["train", "--config", "c.yaml", "--run-id", "../../etc"],
        ["tensorboard", "--port", "70000"],
        ["logs", "-n", "lots"],
        ["frobnicate"],
        [],
    ],
)
def test_bad_arguments_exit_2_without_running(project, recorder, capsys, argv):
    with pytest.raises(SystemExit) as e:
        cli.main(argv)
    assert e.value.code == 2
    assert recorder.calls == []
    assert "usage:" in capsys.readouterr().err


def test_dispatch_passes_parsed_args_and_settings(project, recorder):
    (project / ".runpod.env").write_text(f"RUNPOD_API_KEY={KEY}\nPULUMI_STACK=filestack\n")
    (project / ".runpod.env").chmod(0o600)
    recorder.result = 7
    code = cli.main(
        [
            "train",
            "--config",
            "configs/a.yaml",
            "--host",
            "me@gpu.example:2222",
            "--budget-usd",
            "12.5",
            "--run-id",
            "r1",
            "--detach",
        ]
    )
    assert code == 7
    [(args, settings)] = recorder.calls
    assert args.command == "train" and args.config == "configs/a.yaml"
    assert args.host == cli.HostSpec("me", "gpu.example", 2222) and str(args.host) == "me@gpu.example:2222"
    assert args.budget_usd == 12.5 and args.run_id == "r1" and args.detach and not args.keep_pod
    assert args.max_recoveries == 3 and args.local is False
    assert settings.api_key == KEY and settings.stack == "filestack" and args.stack == "filestack"


@pytest.mark.parametrize(
    "argv,stack",
    [
        (["--stack", "g", "status"], "g"),
        (["status", "--stack", "s"], "s"),
        (["--stack", "g", "status", "--stack", "s"], "s"),
    ],
)
def test_stack_option_before_or_after_command(project, recorder, argv, stack):
    assert cli.main(argv) == 0
    [(args, settings)] = recorder.calls
    assert settings.stack == stack and args.stack == stack


def test_env_file_option(project, recorder, tmp_path):
    other = tmp_path / "other.env"
    other.write_text("PULUMI_STACK=fromother\n")
    other.chmod(0o600)
    assert cli.main(["--env-file", str(other), "stop"]) == 0
    assert recorder.calls[0][1].stack == "fromother"


def test_host_spec_forms():
    assert cli.host_spec("root@10.0.0.2") == cli.HostSpec("root", "10.0.0.2", 22)
    assert cli.host_spec("u@[::1]:2200") == cli.HostSpec("u", "::1", 2200)


def test_missing_module_is_visible_not_hidden(project, monkeypatch, capsys):
    monkeypatch.setitem(cli.COMMANDS, "status", "runner._no_such_module_for_tests")
    assert cli.main(["status"]) == 2
    err = capsys.readouterr().err
    assert "not implemented yet" in err and "runner/_no_such_module_for_tests.py" in err


def test_broken_import_inside_a_command_is_not_disguised(project, monkeypatch, tmp_path):
    pkg = tmp_path / "brokenpkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "cmd.py").write_text("import a_dependency_that_does_not_exist\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setitem(cli.COMMANDS, "status", "brokenpkg.cmd")
    with pytest.raises(ModuleNotFoundError, match="a_dependency_that_does_not_exist"):
        cli.main(["status"])


def test_runner_error_prints_message_and_exit_code(project, recorder, capsys):
    (project / ".runpod.env").write_text(f"RUNPOD_API_KEY={KEY}\n")
    (project / ".runpod.env").chmod(0o600)
    recorder.result = PodGone(f"pod p1 is gone (key was {KEY})")
    assert cli.main(["status"]) == 4
    err = capsys.readouterr().err
    assert err.startswith("error: pod p1 is gone") and "Traceback" not in err
    assert KEY not in err and "***" in err


def test_debug_shows_the_traceback_and_keeps_the_exit_code(project, recorder, capsys):
    # --debug used to re-raise, so every error exited 1 instead of its documented code.
    (project / ".runpod.env").write_text(f"RUNPOD_API_KEY={KEY}\n")
    (project / ".runpod.env").chmod(0o600)
    recorder.result = StackError(f"boom (key {KEY})")
    assert cli.main(["--debug", "status"]) == 3
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err and "StackError" in err
    assert err.rstrip().endswith("error: boom (key ***)") and KEY not in err
    recorder.result = PodGone("gone")
    assert cli.main(["status", "--debug"]) == 4
    from backends.runpod.errors import AuthError

    recorder.result = AuthError("401 unauthorized")
    assert cli.main(["--debug", "status"]) == 5
    assert "Traceback" in capsys.readouterr().err


def test_keyboard_interrupt_exits_130(project, recorder, capsys):
    recorder.result = KeyboardInterrupt()
    assert cli.main(["logs", "-f"]) == 130
    assert "interrupted" in capsys.readouterr().err


def test_raw_runpod_errors_become_exit_5(project, recorder, capsys):
    from backends.runpod.errors import AuthError

    recorder.result = AuthError("Unauthorized", status=401)
    assert cli.main(["status"]) == 5
    assert "RUNPOD_API_KEY" in capsys.readouterr().err


def test_settings_error_before_dispatch(project, recorder, capsys):
    (project / ".runpod.env").write_text("not a setting line\n")
    assert cli.main(["status"]) == 2
    assert recorder.calls == []
    assert ".runpod.env:1" in capsys.readouterr().err


# ---------------------------------------------------------------- `runner stop` end to end
# The fake RunPod API and the stub pulumi stand in for RunPod and the Pulumi CLI.
from standins.pulumi_cli import SAMPLE_OUTPUTS  # noqa: E402


@pytest.fixture
def stop_env(project, fake_runpod, stub_pulumi, monkeypatch):
    pod = fake_runpod.add_pod(status="RUNNING")
    stub_pulumi.set(outputs={**SAMPLE_OUTPUTS, "pod_id": pod.id})
    for k, v in fake_runpod.env().items():
        monkeypatch.setenv(k, v)
    return fake_runpod, pod


def test_stop_command_stops_then_is_idempotent(stop_env, capsys):
    fake, pod = stop_env
    assert cli.main(["stop"]) == 0
    assert "stopped pod" in capsys.readouterr().out
    assert fake.pods[pod.id].status == "EXITED"
    assert cli.main(["stop"]) == 0
    assert "already" in capsys.readouterr().out
    assert fake.billable_calls() == []


def test_stop_command_on_gone_pod(stop_env, capsys):
    fake, pod = stop_env
    fake.client().terminate_pod(pod.id)
    assert cli.main(["stop"]) == 0
    assert "no longer exists" in capsys.readouterr().out


def test_missing_api_key_spends_nothing_and_calls_nothing(stop_env, monkeypatch, capsys):
    fake, _ = stop_env
    monkeypatch.delenv("RUNPOD_API_KEY")
    assert cli.main(["stop"]) == 2
    assert "set RUNPOD_API_KEY" in capsys.readouterr().err
    assert fake.requests == [] and fake.billable_calls() == []


def test_no_stack_outputs_is_exit_3(stop_env, stub_pulumi, capsys):
    fake, _ = stop_env
    stub_pulumi.set(outputs={})
    assert cli.main(["stop"]) == 3
    assert "pulumi up" in capsys.readouterr().err
    assert fake.billable_calls() == []


def test_companion_options_parse():
    parser = cli.build_parser()
    tb = parser.parse_args(["tensorboard"])
    assert tb.port is None and tb.config is None and tb.stop_remote is False  # None = 6006 or next free
    tb = parser.parse_args(["tensorboard", "--port", "16006", "--config", "c.yaml", "--stop-remote"])
    assert (tb.port, tb.config, tb.stop_remote) == (16006, "c.yaml", True)
    assert parser.parse_args(["ssh-config", "--write"]).write is True
    ssh = parser.parse_args(["ssh", "--", "nvidia-smi", "-L"])
    assert ssh.remote_command[-2:] == ["nvidia-smi", "-L"]
    assert parser.parse_args(["ssh"]).remote_command == []
