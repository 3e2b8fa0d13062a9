"""`runner tensorboard`: a stand-in `tensorboard` (a tiny HTTP server) started in tmux on the 'pod'
(the test sshd), reached through the runner's SSH tunnel with real HTTP requests."""

from __future__ import annotations

import argparse
import json
import socket
import sys
import threading
import urllib.request
import uuid

import pytest

from remote.podside.contract import VolumePaths
from runner import cli
from runner.companions import tensorboard as tbmod
from runner.companions import tensorboard_server as tbserver
from runner.companions.tensorboard import serve
from runner.companions.tensorboard_server import BoardSource, start_remote_tensorboard
from runner.errors import TensorBoardError, UsageError
from runner.exitcodes import ExitCode
from runner.pod.link import open_pod_link
from runner.remote.shell import RunResult
from standins.pod_sandbox import wait_until
from standins.ports import free_port
from tests.runner.test_sync import pod_env, pod_sshd  # noqa: F401  (fixtures)

STAND_IN = """#!{python}
import argparse, http.server, sys
p = argparse.ArgumentParser()
p.add_argument("--logdir"); p.add_argument("--host"); p.add_argument("--port", type=int)
a = p.parse_args()
if {fail!r}:
    print("E tensorboard: simulated crash at startup", flush=True); sys.exit(1)
body = ("fake tensorboard logdir=" + a.logdir).encode()
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200); self.send_header("Content-Length", str(len(body))); self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args): pass
print("TensorBoard (stand-in) at http://%s:%d/" % (a.host, a.port), flush=True)
http.server.HTTPServer((a.host, a.port), H).serve_forever()
"""


def install_stand_in(venv_bin, *, fail: bool = False) -> None:
    venv_bin.mkdir(parents=True, exist_ok=True)
    exe = venv_bin / "tensorboard"
    exe.write_text(STAND_IN.format(python=sys.executable, fail=fail))
    exe.chmod(0o755)


@pytest.fixture
def tb_env(pod_env, monkeypatch):
    """A running pod whose last run used configs/smoke.yaml in <workspace>/repo, with a stand-in
    tensorboard in the repo's venv; a unique tmux session name and remote port range per test."""
    pod_env.add_pod("RUNNING")
    ws = pod_env.workspace
    repo = ws / "repo"
    (repo / "configs").mkdir(parents=True)
    (repo / "configs" / "smoke.yaml").write_text("output_dir: checkpoints/smoke\nlogging_dir: logs/smoke\n")
    (repo / "logs" / "smoke").mkdir(parents=True)
    install_stand_in(repo / "venv" / "bin")
    (ws / ".runner").mkdir()
    (ws / ".runner" / "state.json").write_text(
        json.dumps(
            {"run_id": "r1", "attempt": 1, "state": "running", "config": "configs/smoke.yaml", "repo_dir": str(repo)}
        )
    )
    session = f"rt-test-tb-{uuid.uuid4().hex[:8]}"
    monkeypatch.setattr(tbserver, "SESSION", session)
    monkeypatch.setattr(tbserver, "REMOTE_PORT_START", free_port())
    yield pod_env
    with pod_env.remote() as conn:
        conn.run(f"tmux kill-session -t ={session} 2>/dev/null")


def http_get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as resp:
        return resp.read().decode()


class Server:
    """serve() in a thread; stop() does what Ctrl-C does."""

    def __init__(self, env, config=None, port=None, stop_remote=False):
        self.link = open_pod_link(env.settings(), start_if_stopped=False)
        self.stop_event = threading.Event()
        self.ready = threading.Event()
        self.url = None
        self.tb = None
        self.messages: list[str] = []
        self.error = None

        def on_ready(url, tb):
            self.url, self.tb = url, tb
            self.ready.set()

        def target():
            try:
                serve(
                    self.link,
                    config,
                    requested_port=port,
                    stop_event=self.stop_event,
                    on_ready=on_ready,
                    stop_remote=stop_remote,
                    say=self.messages.append,
                    poll_s=0.1,
                )
            except BaseException as e:  # noqa: BLE001 - handed to the test
                self.error = e
                self.ready.set()

        self.thread = threading.Thread(target=target, daemon=True)
        self.thread.start()

    def wait_ready(self):
        assert self.ready.wait(30), "tensorboard tunnel did not come up"
        if self.error:
            raise self.error
        return self.url

    def stop(self):
        self.stop_event.set()
        self.thread.join(timeout=20)
        assert not self.thread.is_alive()
        if self.error:
            raise self.error


def session_running(env) -> bool:
    with env.remote() as conn:
        return conn.run(f"tmux has-session -t ={tbserver.SESSION}").ok


def test_http_through_the_tunnel_then_reuse(tb_env):
    logdir = str(tb_env.workspace / "repo" / "logs" / "smoke")
    port = free_port()
    server = Server(tb_env, port=port)
    try:
        url = server.wait_ready()
        assert url == f"http://127.0.0.1:{port}/"
        assert server.tb.status == "started" and server.tb.logdir == logdir
        assert http_get(url) == f"fake tensorboard logdir={logdir}"
    finally:
        server.stop()
    # The tunnel is closed, TensorBoard keeps running on the pod, and the next call reuses it.
    with pytest.raises(OSError):
        http_get(f"http://127.0.0.1:{port}/")
    assert session_running(tb_env)
    again = Server(tb_env)
    try:
        url = again.wait_ready()
        assert again.tb.status == "already-running" and again.tb.port == server.tb.port
        assert http_get(url) == f"fake tensorboard logdir={logdir}"
    finally:
        again.stop()
    record = json.loads((tb_env.workspace / ".runner" / "tensorboard.json").read_text())
    assert record["logdir"] == logdir and record["port"] == server.tb.port


def test_tunnel_is_rebuilt_after_a_drop(tb_env):
    server = Server(tb_env, port=free_port())
    try:
        url = server.wait_ready()
        assert "logdir=" in http_get(url)
        tb_env.sshd.drop_connections()
        wait_until(lambda: any("tunnel restored" in m for m in server.messages), 20, "the tunnel to come back")
        assert server.url == url
        assert "logdir=" in http_get(url)
    finally:
        server.stop()


def test_local_config_and_a_different_logdir_restarts_tensorboard(tb_env, tmp_path):
    first = Server(tb_env, port=free_port())
    first.wait_ready()
    first.stop()
    other = tmp_path / "other.yaml"
    other.write_text(f"output_dir: /nowhere\nlogging_dir: {tb_env.workspace}/tb-abs\n")
    server = Server(tb_env, config=str(other), port=free_port())
    try:
        url = server.wait_ready()
        assert server.tb.status == "restarted"
        assert http_get(url) == f"fake tensorboard logdir={tb_env.workspace}/tb-abs"
        assert any("does not exist on the pod yet" in m for m in server.messages)
    finally:
        server.stop()


def test_config_only_on_the_pod_and_output_dir_fallback(tb_env):
    (tb_env.workspace / "repo" / "configs" / "noLogging.yaml").write_text("output_dir: checkpoints/x\n")
    server = Server(tb_env, config="configs/noLogging.yaml", port=free_port())
    try:
        url = server.wait_ready()
        assert http_get(url) == f"fake tensorboard logdir={tb_env.workspace}/repo/checkpoints/x"
    finally:
        server.stop()


def test_stop_remote_stops_tensorboard_on_the_pod(tb_env):
    server = Server(tb_env, port=free_port(), stop_remote=True)
    server.wait_ready()
    assert session_running(tb_env)
    server.stop()
    assert not session_running(tb_env)


def test_explicit_busy_port_is_a_clear_error(tb_env, capsys):
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen(1)
    port = busy.getsockname()[1]
    try:
        assert cli.main(["tensorboard", "--port", str(port)]) == ExitCode.USAGE
    finally:
        busy.close()
    err = capsys.readouterr().err
    assert f"local port {port} is already in use" in err and "--port" in err


def test_default_port_moves_to_the_next_free_one(tb_env, monkeypatch):
    while True:  # two neighbouring ports: the first busy, the next free
        busy = socket.socket()
        busy.bind(("127.0.0.1", 0))
        base = busy.getsockname()[1]
        probe = socket.socket()
        try:
            probe.bind(("127.0.0.1", base + 1))
            probe.close()
            break
        except OSError:
            busy.close()
    busy.listen(1)
    monkeypatch.setattr(tbmod, "DEFAULT_LOCAL_PORT", base)
    server = Server(tb_env, port=None)
    try:
        url = server.wait_ready()
        assert url == f"http://127.0.0.1:{base + 1}/"
        assert f"local port {base} is in use; using {base + 1} instead" in server.messages
        assert "logdir=" in http_get(url)
    finally:
        server.stop()
        busy.close()


def test_missing_tensorboard_says_how_to_install_it(tb_env):
    paths = VolumePaths(str(tb_env.workspace))
    target = BoardSource(logdir="/tmp/x", repo_dir=str(tb_env.workspace / "no-such-repo"), config="c.yaml")
    with tb_env.remote() as conn:
        with pytest.raises(TensorBoardError) as e:
            start_remote_tensorboard(conn, target, paths, say=lambda m: None)
    assert "TensorBoard is not installed on the pod" in e.value.message
    assert "requirements.txt" in e.value.message and "pip install tensorboard" in e.value.message


def test_tensorboard_that_dies_at_startup_shows_its_output(tb_env):
    install_stand_in(tb_env.workspace / "repo" / "venv" / "bin", fail=True)
    target = BoardSource(logdir="/tmp/x", repo_dir=str(tb_env.workspace / "repo"), config="c.yaml")
    with tb_env.remote() as conn:
        with pytest.raises(TensorBoardError) as e:
            start_remote_tensorboard(conn, target, VolumePaths(str(tb_env.workspace)), say=lambda m: None)
    assert "exited" in e.value.message and "simulated crash at startup" in e.value.message


def test_no_run_and_no_config_is_a_clear_error(tb_env):
    (tb_env.workspace / ".runner" / "state.json").unlink()
    args = argparse.Namespace(port=free_port(), config=None, stop_remote=False)
    with pytest.raises(UsageError) as e:
        tbmod.run(args, tb_env.settings())
    assert "--config" in e.value.message


def test_stopped_pod_is_not_started(pod_env, capsys):
    pod_env.add_pod("EXITED")
    assert cli.main(["tensorboard"]) == ExitCode.POD
    assert "does not start one" in capsys.readouterr().err
    assert pod_env.fake.billable_calls() == []
    assert pod_env.pod.status == "EXITED"


class _PodAnswering:
    """A connection whose pod answers the start script with `stdout` (a hostile or broken pod)."""

    target = "root@pod"

    def __init__(self, stdout: str):
        self.stdout = stdout

    def run_script(self, script_text, env, **kw):
        return RunResult(0, self.stdout, "")

    def run(self, command, **kw):
        return RunResult(0, "", "")


@pytest.mark.parametrize(
    "answer",
    [
        'TB_RESULT {"status": "started", "port": 6006',
        "TB_RESULT []",
        'TB_RESULT {"status": "started", "port": "6006", "executable": "tb", "logdir": "/l"}',
        'TB_RESULT {"status": "started", "port": 70000, "executable": "tb", "logdir": "/l"}',
        'TB_RESULT {"status": "started", "port": 6006, "executable": ["tb"], "logdir": "/l"}',
        'TB_RESULT {"status": "whatever", "port": 6006, "executable": "tb", "logdir": "/l"}',
    ],
)
def test_a_malformed_answer_from_the_pod_is_an_error_not_a_crash(answer):
    target = BoardSource(logdir="/l", repo_dir=None, config="c.yaml")
    with pytest.raises(TensorBoardError) as e:
        start_remote_tensorboard(_PodAnswering(answer), target, VolumePaths("/workspace"), say=lambda m: None)
    assert "the pod's answer to starting TensorBoard is not one" in e.value.message


def test_a_well_formed_answer_is_taken():
    answer = 'TB_NOTE hello\nTB_RESULT {"status": "already-running", "port": 6007, "executable": "tb", "logdir": "/l"}'
    target = BoardSource(logdir="/l", repo_dir=None, config="c.yaml")
    said: list[str] = []
    tb = start_remote_tensorboard(_PodAnswering(answer), target, VolumePaths("/workspace"), say=said.append)
    assert (tb.port, tb.status, tb.executable, tb.logdir) == (6007, "already-running", "tb", "/l")
    assert said == ["hello"]
