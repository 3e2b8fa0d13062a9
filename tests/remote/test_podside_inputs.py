"""remote/podside/inputs.py in-process: defaults, validation, the GPU count."""

from __future__ import annotations

import pytest

from remote.podside.inputs import InputError, gpu_count, launch_kind, read_settings

BASE = {
    "RT_WORKSPACE": "/ws",
    "RT_REPO_URL": "https://token@example.invalid/org/my-repo.git",
    "RT_CONFIG": "configs/x.yaml",
}


def test_defaults_and_the_derived_repo_dir():
    s = read_settings(BASE)
    assert (s.action, s.branch, s.code_source, s.launcher, s.session, s.python) == (
        "launch",
        "main",
        "git",
        "auto",
        "train",
        "python3",
    )
    assert s.repo_dir == "/ws/my-repo" and s.stop_pod is True and s.ack_wait == 0.0
    assert s.train_script == "scripts/train.py" and s.rp_env_file == "/etc/rp_environment"
    assert read_settings({**BASE, "RT_REPO_DIR": "rel/dir"}).repo_dir == "/ws/rel/dir"
    assert read_settings({"RT_ACTION": "inspect"}).repo_dir == ""


def test_the_run_policies_default_to_what_a_slow_but_alive_run_survives():
    s = read_settings(BASE)
    assert (s.max_recoveries, s.budget_usd, s.auto_resume) == (3, None, True)
    assert (s.stall_minutes, s.stall_gpu_util, s.stall_gpu_window_minutes, s.stall_action) == (45, 5, 30, "stop")
    s = read_settings(
        {
            **BASE,
            "RT_MAX_RECOVERIES": "0",
            "RT_BUDGET_USD": "12.5",
            "RT_AUTO_RESUME": "0",
            "RT_STALL_MINUTES": "0",
            "RT_STALL_ACTION": "notify",
        }
    )
    assert (s.max_recoveries, s.budget_usd, s.auto_resume, s.stall_minutes, s.stall_action) == (
        0,
        12.5,
        False,
        0,
        "notify",
    )


@pytest.mark.parametrize(
    "env, message",
    [
        ({"RT_ACTION": "deploy"}, "RT_ACTION must be"),
        ({"RT_CONFIG": "a\rb"}, "RT_CONFIG must not contain a line break"),
        ({"RT_CODE_SOURCE": "rsync"}, "RT_CODE_SOURCE must be"),
        ({"RT_LAUNCHER": "mpirun"}, "RT_LAUNCHER must be"),
        ({"RT_STOP_POD": "yes"}, "RT_STOP_POD must be"),
        ({"RT_SESSION": "a b"}, "RT_SESSION must contain only"),
        ({"RT_RUN_ID": "a b"}, "RT_RUN_ID must be letters, digits"),
        ({"RT_RUN_ID": "../../etc"}, "it names files on the volume"),
        ({"RT_MAX_RECOVERIES": "-1"}, "RT_MAX_RECOVERIES must be a whole number"),
        ({"RT_BUDGET_USD": "ten"}, "RT_BUDGET_USD must be a number of US dollars"),
        ({"RT_AUTO_RESUME": "yes"}, "RT_AUTO_RESUME must be 1"),
        ({"RT_STALL_MINUTES": "1h"}, "RT_STALL_MINUTES must be a number of minutes"),
        ({"RT_STALL_GPU_UTIL": "5%"}, "RT_STALL_GPU_UTIL must be a percentage"),
        ({"RT_STALL_GPU_WINDOW_MINUTES": "-3"}, "RT_STALL_GPU_WINDOW_MINUTES must be a number"),
        ({"RT_STALL_ACTION": "kill"}, "RT_STALL_ACTION must be 'stop' or 'notify'"),
        ({"RT_ACK_WAIT": "-1"}, "RT_ACK_WAIT must be a number"),
        ({"RT_WORKSPACE": "ws"}, "RT_WORKSPACE must be an absolute path"),
        ({"RT_REPO_URL": "https://example.invalid/.."}, "cannot derive a directory name"),
    ],
)
def test_bad_values(env, message):
    with pytest.raises(InputError, match=message):
        read_settings({**BASE, **env})


def test_gpu_count_sources(tmp_path):
    rp = tmp_path / "rp_environment"
    rp.write_text("export RUNPOD_GPU_COUNT=4\n")
    s = read_settings({**BASE, "RT_RP_ENV_FILE": str(rp)})
    assert gpu_count(s, {}) == 4
    assert gpu_count(s, {"RUNPOD_GPU_COUNT": "2"}) == 2
    assert gpu_count(read_settings({**BASE, "RT_GPU_COUNT": "8", "RT_RP_ENV_FILE": str(rp)}), {}) == 8
    assert gpu_count(read_settings({**BASE, "RT_RP_ENV_FILE": str(tmp_path / "none")}), {}) == 1
    with pytest.raises(InputError, match="positive integer"):
        gpu_count(read_settings({**BASE, "RT_GPU_COUNT": "0"}), {})


def test_launch_kind():
    assert [launch_kind("auto", 1), launch_kind("auto", 2), launch_kind("accelerate", 1)] == [
        "python",
        "torchrun",
        "accelerate",
    ]
