"""A CLI that helps: help with no arguments, the closest command or flag suggested, errors from the
parser that owns the flag, the exit codes listed once and taken from runner/exitcodes.py."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from runner import cli, errors
from runner.exitcodes import ExitCode, is_runner_failure

ROOT = Path(__file__).resolve().parents[2]


def usage_error(capsys, argv: list[str]) -> str:
    with pytest.raises(SystemExit) as e:
        cli.main(argv)
    assert e.value.code == ExitCode.USAGE
    return capsys.readouterr().err


def test_no_arguments_prints_the_help_and_succeeds(capsys):
    assert cli.main([]) == ExitCode.OK
    out = capsys.readouterr().out
    assert out.startswith("usage: python -m runner") and "commands:" in out and "exit codes:" in out


def test_a_mistyped_command_gets_the_closest_one(capsys):
    err = usage_error(capsys, ["trian", "--config", "x.yaml"])
    assert "invalid choice: 'trian'" in err and err.rstrip().endswith("did you mean train?")


def test_a_mistyped_flag_is_reported_by_its_command_with_a_suggestion(capsys):
    err = usage_error(capsys, ["status", "--jsn"])
    assert "python -m runner status: error: unrecognized arguments: --jsn; did you mean --json?" in err
    assert "usage: python -m runner status" in err


def test_a_mistyped_required_flag_is_named_beside_the_missing_one(capsys):
    err = usage_error(capsys, ["train", "--confg", "configs/smoke.yaml"])
    assert "the following arguments are required: --config" in err
    assert "--confg is not a flag of this command; did you mean --config?" in err


def test_a_mistyped_global_flag_is_named_instead_of_the_command_it_displaced(capsys):
    err = usage_error(capsys, ["--stak", "dev", "status"])
    assert "invalid choice: 'dev'" in err and "--stak is not a flag of this command; did you mean --stack?" in err


def test_nothing_close_gets_no_guess(capsys):
    err = usage_error(capsys, ["frobnicate"])
    assert "did you mean" not in err


def test_the_exit_codes_are_listed_once_from_the_enum(capsys):
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    out = capsys.readouterr().out
    for code in ExitCode:
        assert f"  {int(code):<4} {code.meaning}" in out
    assert "train otherwise exits with training's own exit code, unchanged." in out


def test_the_error_constants_are_the_enum():
    assert errors.EXIT_USAGE is ExitCode.USAGE and errors.EXIT_STACK is ExitCode.STACK
    assert errors.EXIT_POD is ExitCode.POD and errors.EXIT_API is ExitCode.API and errors.EXIT_SSH is ExitCode.SSH
    assert errors.EXIT_DOCTOR is ExitCode.CHECK_FAILED and errors.EXIT_INTERRUPTED is ExitCode.INTERRUPTED
    assert errors.RunnerError("x").exit_code == ExitCode.FAILED
    # the runner's own failures are a reserved range; success, Ctrl-C and training's usual codes are not in it
    assert [c for c in range(256) if is_runner_failure(c)] == list(range(101, 108))


def test_version():
    proc = subprocess.run([sys.executable, "-m", "runner", "--version"], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0 and proc.stdout.startswith("runpod-trainer 0.")
