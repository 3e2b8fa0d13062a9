"""remote/podside/selfstop.py in-process: the order REST v2 -> runpodctl -> REST retries, the
credentials file, and the key staying off command lines."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from remote.podside import selfstop
from remote.podside.contract import SelfStopKey, StopMethod
from remote.podside.rpenvfile import read_env_file
from remote.podside.selfstop import rest_stop_url
from tests.fixtures.pod_harness import StopApiServer

POD = "pod-xyz789"
KEY = "rpa_unit_test_key"


def fake_runpodctl(bin_dir: Path, calls: Path, mode: str) -> None:
    bin_dir.mkdir(exist_ok=True)
    script = bin_dir / "runpodctl"
    script.write_text(f"""#!/bin/sh
printf '%s|%s\\n' "$*" "${{RUNPOD_API_KEY:+key}}" >> {calls}
[ {mode!r} = ok ] || {{ [ {mode!r} = legacy ] && [ "$1" = stop ]; }} || exit 1
""")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)


def run_stop(tmp_path, *, rest_base: str, key: str = KEY, runpodctl: str | None = None):
    calls = tmp_path / "runpodctl-calls"
    path = os.environ["PATH"]
    if runpodctl:
        fake_runpodctl(tmp_path / "bin", calls, runpodctl)
        path = f"{tmp_path / 'bin'}:{path}"
    environ = {"PATH": path}
    notes: list[str] = []
    slept: list[float] = []
    creds = selfstop.Credentials(POD, key, rest_base)
    method = selfstop.stop_pod(creds, environ, str(tmp_path / "log"), notes.append, sleep=slept.append)
    lines = calls.read_text().splitlines() if calls.exists() else []
    return method, lines, notes, slept


@pytest.fixture
def api():
    server = StopApiServer(KEY)
    yield server
    server.close()


def test_rest_v2_comes_first(tmp_path, api):
    method, ctl, notes, _ = run_stop(tmp_path, rest_base=api.url, runpodctl="ok")
    assert method == StopMethod.REST
    assert ctl == [] and notes == []
    assert api.requests == [
        {
            "path": f"/v2/pods/{POD}/action",
            "body": '{"action":"stop"}',
            "authorized": True,
            "content_type": "application/json",
        }
    ]


def test_runpodctl_after_a_refused_rest_call_and_no_retry_of_a_4xx(tmp_path, api):
    method, ctl, notes, slept = run_stop(tmp_path, rest_base=api.url, key="wrong", runpodctl="ok")
    assert method == StopMethod.RUNPODCTL
    assert ctl == [f"pod stop {POD}|key"], "runpodctl gets the key in its environment, not its argv"
    assert len(api.requests) == 1 and slept == []
    assert notes == ["stop: REST v2 answered HTTP 401; trying runpodctl"]


def test_legacy_runpodctl_then_rest_retries_when_rest_was_unreachable(tmp_path):
    method, ctl, _, slept = run_stop(tmp_path, rest_base="http://127.0.0.1:9", runpodctl="legacy")
    assert method == StopMethod.RUNPODCTL_LEGACY
    assert ctl == [f"pod stop {POD}|key", f"stop pod {POD}|key"] and slept == []

    method, ctl, notes, slept = run_stop(
        tmp_path / "x" if (tmp_path / "x").mkdir() is None else tmp_path,
        rest_base="http://127.0.0.1:9",
        runpodctl="fail",
    )
    assert method is None
    assert slept == list(selfstop.REST_RETRY_DELAYS_S), "REST is tried again once everything else failed"
    assert sum("REST v2 request failed" in n for n in notes) == 1 + len(selfstop.REST_RETRY_DELAYS_S)


def test_without_a_key_runpodctl_is_the_only_way(tmp_path, api):
    method, ctl, notes, _ = run_stop(tmp_path, rest_base=api.url, key="", runpodctl="ok")
    assert method == StopMethod.RUNPODCTL and api.requests == []
    assert "RUNPOD_API_KEY is not set" in notes[0]


def test_a_malformed_pod_id_stops_nothing(tmp_path, api):
    notes: list[str] = []
    creds = selfstop.Credentials("pod; rm -rf /", KEY, api.url)
    assert selfstop.stop_pod(creds, {"PATH": ""}, str(tmp_path / "log"), notes.append) is None
    assert api.requests == [] and "malformed" in notes[0]


def test_credentials_come_from_the_file_which_is_never_run(tmp_path):
    env_file = tmp_path / "rp_environment"
    hostile = 'rpa_"q"\\b$(touch pwned)`id`'
    env_file.write_text(
        f"# RunPod\nexport RUNPOD_POD_ID={POD}\nexport RUNPOD_API_KEY='{hostile}'\n"
        'RUNPOD_REST_URL=http://file.invalid\nnot a line \'unbalanced\nexport RUNPOD_GPU_COUNT="4"\n'
    )
    values = read_env_file(str(env_file))
    assert values == {
        "RUNPOD_POD_ID": POD,
        "RUNPOD_API_KEY": hostile,
        "RUNPOD_REST_URL": "http://file.invalid",
        "RUNPOD_GPU_COUNT": "4",
    }
    assert not list(Path.cwd().glob("pwned")) and not list(tmp_path.glob("pwned"))
    creds = selfstop.read_credentials(str(env_file), {"RUNPOD_REST_URL": "http://env.invalid"}, None, print)
    assert (creds.pod_id, creds.api_key, creds.rest_base) == (POD, hostile, "http://env.invalid")
    assert hostile not in repr(creds)


def test_without_the_file_the_environment_is_used(tmp_path):
    notes: list[str] = []
    creds = selfstop.read_credentials(str(tmp_path / "absent"), {"RUNPOD_POD_ID": POD}, KEY, notes.append)
    assert (creds.pod_id, creds.api_key, creds.rest_base) == (POD, KEY, "https://api.runpod.io")
    assert "not readable" in notes[0]


def test_the_marker_names_run_and_attempt(tmp_path):
    marker = tmp_path / "self_stop.json"
    selfstop.write_marker(str(marker), "run-7", 3)
    data = json.loads(marker.read_text())
    assert set(data) == set(SelfStopKey.ALL) and data["run_id"] == "run-7" and data["attempt"] == 3


def test_rest_url():
    assert rest_stop_url("https://api.runpod.io/", "p1") == "https://api.runpod.io/v2/pods/p1/action"
