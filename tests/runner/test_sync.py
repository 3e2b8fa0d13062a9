"""`runner sync`: real rsync over the system ssh to the test sshd, pod state from the fake RunPod API.

Also home of the `pod_env` fixture the other companion-command tests share: a project dir as cwd,
stack outputs from the stub pulumi (workspace = a tmp dir standing in for /workspace), a pod in the
fake API whose SSH endpoint is the real sshd.
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from runner import cli
from runner.companions.sync import SyncError, ensure_remote_rsync, plan
from runner.errors import UsageError
from runner.remote.controlmaster import close_all
from runner.remote.hostkeys import expect_host_key
from runner.remote.ssh import SshConnection, SshTarget
from runner.settings import KEYS, load_settings
from standins.pod_sandbox import Sshd
from standins.pulumi_cli import SAMPLE_OUTPUTS


@pytest.fixture
def pod_sshd(sshd) -> Sshd:
    """The shared sshd (kept as a name: the companion tests import it from here)."""
    return sshd


@dataclass
class PodEnv:
    fake: object
    sshd: object
    stub: object
    project: Path
    workspace: Path
    state_dir: Path
    pod_id: str = ""

    @property
    def pod(self):
        return self.fake.pods[self.pod_id]

    @property
    def data_dir(self) -> Path:
        return self.project / "data"

    def add_pod(
        self, status: str = "RUNNING", *, idle_stop_minutes: float = 0, outputs: dict | None = None, **kw
    ) -> str:
        vol = self.fake.add_volume()
        pod = self.fake.add_pod(status=status, volume_id=vol.id, **kw)
        self.pod_id = pod.id
        # No idle stop unless a test asks for one (tests/runner/test_idle_stop.py): it would outlive the test.
        self.stub.set(
            outputs={
                **SAMPLE_OUTPUTS,
                "pod_id": pod.id,
                "volume_id": vol.id,
                "workspace": str(self.workspace),
                "ssh_user": self.sshd.user,
                "idle_stop_minutes": idle_stop_minutes,
                **(outputs or {}),
            }
        )
        return pod.id

    def settings(self):
        return load_settings()

    def remote(self) -> SshConnection:
        """A plain connection to the sshd (the test's own view of the 'pod')."""
        return SshConnection.open(
            SshTarget(self.sshd.host, self.sshd.port, self.sshd.user, self.sshd.key_path),
            host_key_check=expect_host_key(self.sshd.known_host_key),
            timeout=10,
        )


@pytest.fixture
def pod_env(tmp_path, monkeypatch, fake_runpod, pod_sshd, stub_pulumi) -> Iterator[PodEnv]:
    sshd = pod_sshd
    for key in KEYS:
        if key != "PULUMI_BINARY":
            monkeypatch.delenv(key, raising=False)
    project = tmp_path / "project"
    project.mkdir()
    (project / "Pulumi.yaml").write_text("name: t\n")
    monkeypatch.chdir(project)
    workspace = tmp_path / "workspace"
    workspace.mkdir()
    # A short path, as ~/.runpod-trainer is: the control master's socket must fit a Unix socket's 104 bytes
    # (pytest's tmp_path is too long for that, and `runner sync` would then run without one).
    state_dir = Path(tempfile.mkdtemp(prefix="rt-state-"))
    for k, v in fake_runpod.env().items():
        monkeypatch.setenv(k, v)
    monkeypatch.setenv("SSH_KEY_PATH", sshd.key_path)
    monkeypatch.setenv("RUNNER_STATE_DIR", str(state_dir))
    monkeypatch.setenv("POD_START_TIMEOUT", "30")
    sshd.ensure_running()
    fake_runpod.set_ssh_target(sshd.host, sshd.ports)
    yield PodEnv(fake_runpod, sshd, stub_pulumi, project, workspace, state_dir)
    # `runner sync` leaves an OpenSSH control master for the next sync (SSH_CONTROL_PERSIST): none may
    # outlive its test, where it would hold a connection to the shared sshd (the idle-stop tests count them).
    close_all(state_dir)
    shutil.rmtree(state_dir, ignore_errors=True)


# ---------------------------------------------------------------- helpers
def make_tree(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)


def tree(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): p.read_text() for p in sorted(root.rglob("*")) if p.is_file()}


def transferred(out: str) -> list[str]:
    """Files rsync sent, from its itemized output (`<f...... name`)."""
    return sorted(m.group(1) for m in re.finditer(r"^<f\S{9,10} (.+)$", out, re.M))


def files_transferred(out: str) -> int:
    m = re.search(r"Number of regular files transferred: ([\d,]+)", out)
    assert m, out
    return int(m.group(1).replace(",", ""))


FILES = {
    "train_word_transcripts.jsonl": '{"id": 1}\n',
    "audio_0/a.flac": "aaaa" * 100,
    "audio_0/b.flac": "bbbb" * 100,
    "audio_1/c.flac": "cccc" * 100,
}


# ---------------------------------------------------------------- tests
def test_sync_then_incremental_pass_sends_only_changes(pod_env, capfd):
    pod_env.add_pod("RUNNING")
    make_tree(pod_env.data_dir, FILES)
    remote = pod_env.workspace / "data"

    assert cli.main(["sync"]) == 0
    out = capfd.readouterr().out
    assert transferred(out) == sorted(FILES)
    assert files_transferred(out) == 4
    assert tree(remote) == FILES

    # Change one file, add one: the second pass sends exactly those two.
    (pod_env.data_dir / "audio_0" / "a.flac").write_text("changed")
    (pod_env.data_dir / "audio_1" / "d.flac").write_text("new")
    assert cli.main(["sync", "data/"]) == 0
    out = capfd.readouterr().out
    assert transferred(out) == ["audio_0/a.flac", "audio_1/d.flac"]
    assert files_transferred(out) == 2
    assert tree(remote) == tree(pod_env.data_dir)

    # Nothing changed: nothing sent. The pod was running and stays running; no money spent.
    assert cli.main(["sync"]) == 0
    out = capfd.readouterr().out
    assert transferred(out) == [] and files_transferred(out) == 0
    assert pod_env.pod.status == "RUNNING"
    assert pod_env.fake.billable_calls() == []


def test_dry_run_changes_nothing_and_delete_only_when_asked(pod_env, capfd):
    pod_env.add_pod("RUNNING")
    make_tree(pod_env.data_dir, FILES)
    remote = pod_env.workspace / "data"
    assert cli.main(["sync"]) == 0
    capfd.readouterr()
    make_tree(remote, {"stale.txt": "only on the volume", "audio_1/old.flac": "old"})
    (pod_env.data_dir / "audio_0" / "b.flac").write_text("new content")
    before = tree(remote)

    assert cli.main(["sync", "--dry-run", "--delete"]) == 0
    out = capfd.readouterr().out
    assert transferred(out) == ["audio_0/b.flac"]
    assert "*deleting   stale.txt" in out and "*deleting   audio_1/old.flac" in out
    assert tree(remote) == before  # a dry run changes nothing

    assert cli.main(["sync"]) == 0  # no --delete: remote extras stay
    capfd.readouterr()
    assert (remote / "stale.txt").exists() and (remote / "audio_1/old.flac").exists()
    assert (remote / "audio_0/b.flac").read_text() == "new content"

    assert cli.main(["sync", "--delete"]) == 0
    capfd.readouterr()
    assert tree(remote) == tree(pod_env.data_dir)


def test_subfolder_of_data_dir_keeps_its_place_and_delete_stays_inside(pod_env, capfd):
    pod_env.add_pod("RUNNING")
    make_tree(pod_env.data_dir, FILES)
    remote = pod_env.workspace / "data"
    make_tree(remote, {"elsewhere.txt": "keep me", "audio_0/gone.flac": "remove me"})
    assert cli.main(["sync", "data/audio_0", "--delete"]) == 0
    capfd.readouterr()
    assert tree(remote / "audio_0") == {"a.flac": FILES["audio_0/a.flac"], "b.flac": FILES["audio_0/b.flac"]}
    assert (remote / "elsewhere.txt").read_text() == "keep me"
    assert not (remote / "audio_1").exists()


def test_folder_outside_data_dir_goes_into_data_root(pod_env, tmp_path, capfd):
    pod_env.add_pod("RUNNING")
    other = tmp_path / "elsewhere with space"
    make_tree(other, {"x/y.txt": "y"})
    assert cli.main(["sync", str(other)]) == 0
    capfd.readouterr()
    assert (pod_env.workspace / "data" / "x" / "y.txt").read_text() == "y"


def test_stopped_pod_is_started_for_the_sync_and_stopped_again(pod_env, capfd):
    pod_env.add_pod("EXITED")
    make_tree(pod_env.data_dir, FILES)
    assert cli.main(["sync"]) == 0
    captured = capfd.readouterr()
    assert files_transferred(captured.out) == 4
    assert "stopping pod" in captured.err
    assert pod_env.pod.status == "EXITED"
    assert pod_env.pod.start_count == 2  # seeded once, started once by the sync
    assert len(pod_env.fake.billable_calls()) == 1  # the one resume


# The phrases RunPod's own SDK treats as capacity (runpod 2.0.0rc2, apps/api.py is_capacity_error), in a sentence.
SDK_CAPACITY_TEXTS = [
    "Could not find any resources to deploy your pod",
    "Insufficient capacity for NVIDIA GeForce RTX 4090 in EU-RO-1",
    "No available machine for this pod right now",
    "NVIDIA GeForce RTX 4090 is out of stock",
]


@pytest.mark.parametrize("text", SDK_CAPACITY_TEXTS)
def test_each_capacity_text_of_runpods_sdk_exits_4_naming_capacity(pod_env, capfd, text):
    pod_env.add_pod("EXITED", interruptible=False, outputs={"market": "on-demand"})  # resumed by REST v2 start
    make_tree(pod_env.data_dir, FILES)
    pod_env.fake.inject("rest:POST /v2/pods/*/action", "no_capacity", message=text)
    assert cli.main(["sync", "--via", "ssh"]) == 4
    err = capfd.readouterr().err
    assert "RunPod has no free GPU to start pod" in err and text in err and "RunPod API error" not in err
    assert pod_env.pod.status == "EXITED"


def test_keep_running_leaves_a_started_pod_running(pod_env, capfd):
    pod_env.add_pod("EXITED")
    make_tree(pod_env.data_dir, FILES)
    assert cli.main(["sync", "--keep-running"]) == 0
    assert "keeps running" in capfd.readouterr().err
    assert pod_env.pod.status == "RUNNING"


def test_failed_rsync_still_stops_a_pod_it_started(pod_env, capfd, monkeypatch):
    pod_env.add_pod("EXITED")
    make_tree(pod_env.data_dir, FILES)
    monkeypatch.setattr("runner.companions.sync.INSTALL_RSYNC", "exit 1")
    # Make the pod-side rsync check fail by asking for a program that does not exist.
    real = ensure_remote_rsync
    monkeypatch.setattr(
        "runner.companions.sync.ensure_remote_rsync",
        lambda conn, **kw: real(
            conn, install_command="echo 'E: no network' >&2; exit 100", program="rsync-not-installed-here"
        ),
    )
    assert cli.main(["sync"]) == 1
    err = capfd.readouterr().err
    assert "rsync-not-installed-here is not installed on the pod and installing it failed (E: no network)" in err
    assert pod_env.pod.status == "EXITED"


def test_bad_path_fails_before_any_api_call(pod_env, capfd):
    pod_env.add_pod("EXITED")
    assert cli.main(["sync", "does-not-exist"]) == 2
    assert "does not exist" in capfd.readouterr().err
    assert pod_env.fake.billable_calls() == []
    (pod_env.project / "file.txt").write_text("x")
    assert cli.main(["sync", "file.txt"]) == 2
    assert "is not a directory" in capfd.readouterr().err
    assert pod_env.fake.billable_calls() == []


def test_missing_default_data_dir_says_how_to_fix(pod_env, capfd):
    pod_env.add_pod("RUNNING")
    assert cli.main(["sync"]) == 2
    assert "DATA_DIR" in capfd.readouterr().err


def test_plan_maps_paths(pod_env, tmp_path):
    settings = pod_env.settings()
    make_tree(pod_env.data_dir, FILES)
    assert plan(settings, None, "/workspace").dest == "/workspace/data"
    assert plan(settings, "data/", "/workspace").dest == "/workspace/data"
    p = plan(settings, "data/audio_0/", "/workspace")
    assert (p.dest, p.relative, p.source) == ("/workspace/data/audio_0", "audio_0", pod_env.data_dir / "audio_0")
    weird = pod_env.data_dir / "it's"
    weird.mkdir()
    with pytest.raises(UsageError):
        plan(settings, str(weird), "/workspace")


def test_install_path_reports_failure_clearly(pod_env):
    with pod_env.remote() as conn:
        with pytest.raises(SyncError) as e:
            ensure_remote_rsync(
                conn,
                program="rsync-not-installed-here",
                install_command="echo 'E: Unable to locate package' >&2; exit 100",
            )
        assert "E: Unable to locate package" in e.value.message
        ensure_remote_rsync(conn)  # the real rsync is there: nothing to do


# ---------------------------------------------------------------- how the pod is reached (fast path)
class ConnectSpy:
    """Counts the paramiko sessions runner sync opens (runner.pod.link.connect_endpoint), passing them through."""

    def __init__(self, monkeypatch):
        import runner.pod.link

        self.calls = 0
        real = runner.pod.link.connect_endpoint

        def spy(*args, **kw):
            self.calls += 1
            return real(*args, **kw)

        monkeypatch.setattr(runner.pod.link, "connect_endpoint", spy)


def key_of(known_hosts_line: str) -> str:
    """ "ssh-ed25519 AAAA..." of a public key line (without a comment)."""
    return " ".join(known_hosts_line.split()[:2])


def pinned_key(pod_env) -> str:

    pins = json.loads((pod_env.state_dir / "dev" / "known_hosts").read_text())["pins"]
    pin = pins[pod_env.pod_id]
    return f"{pin['key_type']} {pin['key']}"


def test_pinned_running_pod_gets_rsync_directly_with_one_api_read(pod_env, capfd, monkeypatch):
    pod_env.add_pod("RUNNING")
    make_tree(pod_env.data_dir, FILES)
    spy = ConnectSpy(monkeypatch)
    assert cli.main(["sync"]) == 0  # first contact: paramiko pins the host key
    capfd.readouterr()
    assert spy.calls == 1
    assert pinned_key(pod_env) == key_of(pod_env.sshd.known_host_key)

    (pod_env.data_dir / "audio_1" / "e.flac").write_text("new")
    pod_env.fake.clear_requests()
    assert cli.main(["sync"]) == 0  # pinned during this start: no paramiko session
    out = capfd.readouterr().out
    assert spy.calls == 1
    assert transferred(out) == ["audio_1/e.flac"] and files_transferred(out) == 1
    assert tree(pod_env.workspace / "data") == tree(pod_env.data_dir)
    assert [(r.method, r.path) for r in pod_env.fake.requests] == [("GET", f"/v2/pods/{pod_env.pod_id}")]


def test_restarted_pod_with_a_new_host_key_is_repinned_before_rsync(pod_env, capfd, monkeypatch):
    pod_env.add_pod("RUNNING")
    make_tree(pod_env.data_dir, FILES)
    assert cli.main(["sync"]) == 0
    capfd.readouterr()
    old_pin = pinned_key(pod_env)

    # What a RunPod pod looks like after stop + start: a new port and new host keys.
    client = pod_env.fake.client()
    client.stop_pod(pod_env.pod_id)
    pod_env.sshd.rotate_host_key()
    client.resume_spot_pod(pod_env.pod_id, 0.3, 1)
    pod_env.fake.wait_for(lambda: pod_env.pod.status == "RUNNING", timeout=10)
    spy = ConnectSpy(monkeypatch)
    (pod_env.data_dir / "audio_0" / "a.flac").write_text("after restart")
    assert cli.main(["sync"]) == 0
    out = capfd.readouterr().out
    assert spy.calls == 1  # the newer start sent it through paramiko
    assert transferred(out) == ["audio_0/a.flac"]
    new_pin = pinned_key(pod_env)
    assert new_pin != old_pin and new_pin == key_of(pod_env.sshd.known_host_key)


def test_changed_host_key_without_a_restart_is_refused(pod_env, capfd):
    pod_env.add_pod("RUNNING")
    make_tree(pod_env.data_dir, FILES)
    assert cli.main(["sync"]) == 0
    capfd.readouterr()
    old_pin = pinned_key(pod_env)
    pod_env.sshd.rotate_host_key()  # same pod start per the API: nobody may re-key it
    (pod_env.data_dir / "audio_0" / "a.flac").write_text("must not arrive")
    assert cli.main(["sync"]) == 6
    err = capfd.readouterr().err
    assert "host key" in err and "changed" in err and "man-in-the-middle" in err
    # only the runner's explanation: none of OpenSSH's banner about a temporary known_hosts file
    for noise in (
        "@@@@",
        "REMOTE HOST IDENTIFICATION",
        "Offending",
        "Host key verification failed",
        "connection unexpectedly closed",
    ):
        assert noise not in err, err
    assert err.count("error: ") == 1, err
    assert pod_env.fake.billable_calls() == []
    assert (pod_env.workspace / "data" / "audio_0" / "a.flac").read_text() == FILES["audio_0/a.flac"]
    assert pinned_key(pod_env) == old_pin


def test_missing_rsync_on_the_pod_is_installed_then_the_sync_retried(pod_env, capfd, monkeypatch, tmp_path):
    pod_env.add_pod("RUNNING")
    make_tree(pod_env.data_dir, FILES)
    assert cli.main(["sync"]) == 0  # pins the key (and checks the real rsync)
    capfd.readouterr()
    # The pod-side rsync is now a program that is not there until "installing" it links the real one.
    pod_rsync = tmp_path / "pod-bin" / "rsync"
    monkeypatch.setattr("runner.companions.sync.REMOTE_RSYNC", str(pod_rsync))
    monkeypatch.setattr(
        "runner.companions.sync.INSTALL_RSYNC",
        f'mkdir -p {pod_rsync.parent} && ln -s "$(command -v rsync)" {pod_rsync}',
    )
    spy = ConnectSpy(monkeypatch)
    (pod_env.data_dir / "audio_1" / "c.flac").write_text("changed")
    assert cli.main(["sync"]) == 0
    captured = capfd.readouterr()
    assert f"{pod_rsync} is missing on the pod; installing it" in captured.err
    assert "RUNNER_SYNC" not in captured.err and "connection unexpectedly closed" not in captured.err
    assert spy.calls == 1  # one session, only for the install
    assert pod_rsync.is_symlink()
    assert transferred(captured.out) == ["audio_1/c.flac"]


def test_remote_folder_that_cannot_be_created_is_reported(pod_env, capfd):
    pod_env.add_pod("RUNNING")
    make_tree(pod_env.data_dir, FILES)
    (pod_env.workspace / "data").write_text("a file where the data folder should be")
    assert cli.main(["sync", "data/audio_0"]) == 1
    err = capfd.readouterr().err
    assert f"cannot create {pod_env.workspace}/data/audio_0 on the pod" in err
    assert "RUNNER_SYNC" not in err


def test_dry_run_does_not_create_the_remote_folder(pod_env, capfd):
    pod_env.add_pod("RUNNING")
    make_tree(pod_env.data_dir, FILES)
    assert cli.main(["sync", "--dry-run"]) == 0
    out = capfd.readouterr().out
    assert transferred(out) == sorted(FILES)
    assert not (pod_env.workspace / "data").exists()
