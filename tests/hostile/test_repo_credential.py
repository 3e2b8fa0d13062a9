"""Finding 7: the token in an https REPO_URL reaches git only. It used to spread over the pod: git's
argv, .git/config on the volume, .runner/supervise.json and every training process's environment.

The training repo is served here over HTTP with Basic authentication (git's dumb HTTP protocol: plain
files, which git clones and fetches), so the launch must really hand git the credential."""

from __future__ import annotations

import base64
import functools
import json
import shutil
import threading
import uuid
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from remote.podside.credential import split_url
from tests.fixtures.pod_harness import PodSandbox, git, runner_inputs, write_executable

USER, TOKEN = "trainer", "ghp_S3CRETtoken0123456789"


class AuthGitServer:
    """A bare repo over dumb HTTP on 127.0.0.1 that answers 401 without the right Basic credentials."""

    def __init__(self, origin: Path, root: Path):
        self.root = root
        bare = root / "repo.git"
        git(root, "clone", "-q", "--bare", str(origin), str(bare))
        git(bare, "update-server-info")
        expected = "Basic " + base64.b64encode(f"{USER}:{TOKEN}".encode()).decode()
        self.seen_auth: list[bool] = []

        class Handler(SimpleHTTPRequestHandler):
            def do_GET(handler) -> None:  # noqa: N805
                ok = handler.headers.get("Authorization") == expected
                self.seen_auth.append(ok)
                if not ok:
                    handler.send_response(401)
                    handler.send_header("WWW-Authenticate", 'Basic realm="repo"')
                    handler.send_header("Content-Length", "0")
                    handler.end_headers()
                    return
                super().do_GET()

            def log_message(handler, *args) -> None:  # noqa: N805
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=str(root)))
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://{USER}:{TOKEN}@127.0.0.1:{self.server.server_address[1]}/repo.git"

    def stop(self) -> None:
        self.server.shutdown()


@pytest.fixture
def pod_with_private_repo(tmp_path, venv_templates):
    pod = PodSandbox(tmp_path / "pod", session=f"rt-cred-{uuid.uuid4().hex[:10]}", venv_template=venv_templates["warm"])
    pod.write_config("configs/smoke.yaml", max_steps=60, save_steps=1000, step_seconds=0.05)
    pod.commit("a run long enough to look at")
    served = tmp_path / "served"
    served.mkdir()
    server = AuthGitServer(pod.origin, served)
    argv_log = pod.records / "git-argv.jsonl"
    real_git = shutil.which("git")
    write_executable(  # records every git command line on the pod, then runs the real git
        pod.bin / "git",
        f"""#!/usr/bin/env python3
import json, os, sys
with open({str(argv_log)!r}, "a") as fh:
    fh.write(json.dumps(sys.argv[1:]) + "\\n")
os.execv({real_git!r}, [{real_git!r}, *sys.argv[1:]])
""",
    )
    yield pod, server, argv_log
    server.stop()
    pod.cleanup()


def everything_the_pod_keeps(pod: PodSandbox, argv_log: Path) -> dict[str, str]:
    repo = pod.workspace / "repo"
    return {
        ".git/config": (repo / ".git" / "config").read_text(),
        "supervise.json": (pod.workspace / ".runner" / "supervise.json").read_text(),
        "state.json": pod.state_file.read_text(),
        "log": pod.log_text(),
        "git argv": argv_log.read_text(),
        "tmux environment": pod.tmux("show-environment", "-g").stdout,
        "temp files": " ".join(str(p) for p in (pod.root / "tmp").rglob("*")),
    }


def test_the_token_goes_to_git_only(pod_with_private_repo):
    pod, server, argv_log = pod_with_private_repo
    env = runner_inputs(workspace=str(pod.workspace), repo_url=server.url, session=pod.session)
    assert TOKEN not in env["RT_REPO_URL"] and env["RT_REPO_CREDENTIAL"] == f"{USER}:{TOKEN}"
    (pod.root / "tmp").mkdir()
    run = pod.launch(
        RT_REPO_URL=env["RT_REPO_URL"],
        RT_REPO_CREDENTIAL=env["RT_REPO_CREDENTIAL"],
        RT_REPO_DIR="repo",
        RT_STOP_POD="0",
        TMPDIR=str(pod.root / "tmp"),
    )
    assert run.returncode == 0, run.stderr
    state = pod.wait_state("running")
    environ = Path(f"/proc/{state['train_pid']}/environ").read_bytes().decode(errors="replace")
    assert TOKEN not in environ, "training's environment"
    assert True in server.seen_auth, "git authenticated to the server"
    for where, text in everything_the_pod_keeps(pod, argv_log).items():
        assert TOKEN not in text, where
    assert TOKEN not in run.stdout + run.stderr
    pod.wait_finished()
    # The next launch fetches with the credential again (.git/config has none to reuse).
    pod.write_config("configs/smoke.yaml", max_steps=10, save_steps=1000, step_seconds=0)
    pod.commit("one more commit")
    git(server.root / "repo.git", "fetch", "-q", str(pod.origin), "main:main")
    git(server.root / "repo.git", "update-server-info")
    run = pod.launch(
        RT_REPO_URL=env["RT_REPO_URL"],
        RT_REPO_CREDENTIAL=env["RT_REPO_CREDENTIAL"],
        RT_REPO_DIR="repo",
        RT_STOP_POD="0",
    )
    assert run.returncode == 0, run.stderr
    pod.wait_finished()
    for where, text in everything_the_pod_keeps(pod, argv_log).items():
        assert TOKEN not in text, where


def test_a_url_that_still_carries_the_token_is_cleaned_on_the_pod(pod_with_private_repo):
    """An older runner sends the URL as it was: the pod takes the token out itself."""
    pod, server, argv_log = pod_with_private_repo
    (pod.root / "tmp").mkdir()
    run = pod.launch(RT_REPO_URL=server.url, RT_REPO_DIR="repo", RT_STOP_POD="0", TMPDIR=str(pod.root / "tmp"))
    assert run.returncode == 0, run.stderr
    pod.wait_finished()
    for where, text in everything_the_pod_keeps(pod, argv_log).items():
        assert TOKEN not in text, where


@pytest.mark.parametrize(
    ("url", "clean", "credential"),
    [
        ("https://u:t@github.com/o/r.git", "https://github.com/o/r.git", "u:t"),
        ("https://tok@host:8443/r", "https://host:8443/r", "tok"),
        ("git@github.com:o/r.git", "git@github.com:o/r.git", None),  # scp-like: the user is no secret
        ("ssh://git@host/r.git", "ssh://git@host/r.git", None),
        ("/srv/repo", "/srv/repo", None),
    ],
)
def test_split_url(url, clean, credential):
    assert split_url(url) == (clean, credential)


def test_the_runner_never_shows_the_token(monkeypatch):
    from runner.settings import load_settings

    monkeypatch.setenv("REPO_URL", f"https://{USER}:{TOKEN}@example.invalid/r.git")
    assert TOKEN in load_settings().secrets()
    assert (
        json.dumps(runner_inputs(repo_url=f"https://{USER}:{TOKEN}@example.invalid/r.git")).count(TOKEN) == 1
    )  # in RT_REPO_CREDENTIAL only, never in the URL
