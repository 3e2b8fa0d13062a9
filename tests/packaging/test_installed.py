"""The command as a user installs it: both wheels built from this source, installed into a venv of
their own outside the checkout, and the demo run from that installed copy.

Offline: the wheels are built with this venv's setuptools (no build isolation) and installed without
dependencies; the new venv finds its dependencies (pulumi, paramiko, ...) through a path entry to
this venv's site-packages, a plain directory that holds no project code (the editable install's
hooks there are .pth files, which a path entry does not run)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from runner.exitcodes import ExitCode

ROOT = Path(__file__).resolve().parents[2]
SKIP = shutil.ignore_patterns(".git", ".venv", "__pycache__", "build", "dist", "*.egg-info", "site", ".*_cache")


def _run(argv: list, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([str(a) for a in argv], capture_output=True, text=True, timeout=300, **kw)


@pytest.fixture(scope="module")
def wheels(tmp_path_factory) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("wheels")
    src = tmp / "src"
    shutil.copytree(ROOT, src, ignore=SKIP)
    dist = tmp / "dist"
    for project in (src, src / "standins"):
        built = _run(
            [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", dist, project]
        )
        assert built.returncode == 0, built.stderr
    found = {p.name.split("-")[0]: p for p in dist.glob("*.whl")}
    assert set(found) == {"runpod_trainer", "runpod_trainer_standins"}, found
    return found


@pytest.fixture(scope="module")
def user_env(tmp_path_factory, wheels) -> tuple[Path, dict[str, str], Path]:
    """A venv with the user's wheel only; returns its bin dir, a clean environment and a working dir."""
    tmp = tmp_path_factory.mktemp("installed")
    venv = tmp / "venv"
    made = _run([getattr(sys, "_base_executable", sys.executable), "-m", "venv", venv])
    assert made.returncode == 0, made.stderr
    python = venv / "bin" / "python"
    purelib = _run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]).stdout.strip()
    (Path(purelib) / "dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    installed = _run([python, "-m", "pip", "install", "-q", "--no-deps", "--no-index", wheels["runpod_trainer"]])
    assert installed.returncode == 0, installed.stderr
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RUNPOD_", "PULUMI_", "PYTHON", "VIRTUAL_ENV"))}
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    elsewhere = tmp / "elsewhere"
    elsewhere.mkdir()
    return venv / "bin", env, elsewhere


def test_the_user_wheel_carries_the_pod_side_and_no_stand_ins(wheels):
    names = zipfile.ZipFile(wheels["runpod_trainer"]).namelist()
    assert "remote/remote_train.sh" in names and "remote/podside/launch.py" in names
    assert not [n for n in names if n.startswith(("standins/", "tests/", "bench/"))]
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    scripts = zipfile.ZipFile(wheels["runpod_trainer"]).read(entry_points).decode()
    assert "runpod-trainer = runner.cli:main" in scripts and "rptrain = runner.cli:main" in scripts
    standins = zipfile.ZipFile(wheels["runpod_trainer_standins"]).namelist()
    assert "standins/demo.py" in standins and not [n for n in standins if n.startswith(("runner/", "remote/"))]


def test_the_installed_command_runs_outside_the_checkout(user_env):
    bin_dir, env, elsewhere = user_env
    version = _run([bin_dir / "runpod-trainer", "--version"], cwd=elsewhere, env=env)
    assert version.returncode == 0 and version.stdout.strip() == "runpod-trainer 0.1.0", version
    where = _run(
        [
            bin_dir / "python",
            "-c",
            "import runner, remote.podside.bundle as b; print(runner.__file__); print(len(b.launcher_script()))",
        ],
        cwd=elsewhere,
        env=env,
    )
    assert where.returncode == 0, where.stderr
    module, script_size = where.stdout.split()
    assert Path(module).is_relative_to(bin_dir.parent) and int(script_size) > 10_000
    helped = _run([bin_dir / "rptrain", "--help"], cwd=elsewhere, env=env)
    assert helped.returncode == 0 and "usage: rptrain" in helped.stdout and "livecheck" in helped.stdout


def test_the_demo_runs_from_the_installed_copy(user_env, wheels):
    bin_dir, env, elsewhere = user_env
    without = _run([bin_dir / "runpod-trainer", "demo"], cwd=elsewhere, env=env)
    assert without.returncode == ExitCode.USAGE and "pipx inject runpod-trainer ./standins" in without.stderr, without

    added = _run(
        [bin_dir / "python", "-m", "pip", "install", "-q", "--no-deps", "--no-index", wheels["runpod_trainer_standins"]]
    )
    assert added.returncode == 0, added.stderr
    demo = _run([bin_dir / "runpod-trainer", "demo"], cwd=elsewhere, env=env, stdin=subprocess.DEVNULL)
    assert demo.returncode == 0, f"stdout tail:\n{demo.stdout[-2000:]}\nstderr tail:\n{demo.stderr[-3000:]}"
    assert "demo: OK: a preemption was recovered" in demo.stderr
    assert "resumed from checkpoint-10" in demo.stderr
    assert "done: 40 steps" in demo.stdout
