"""Runs the pod side for real on this machine, the way the runner does on the pod.

A `PodSandbox` is one pretend pod: a workspace dir (the network volume), an "origin" git repo playing
the training repo (scripts/train.py = remote/smoke_train.py), a bin dir of stand-ins put first on PATH
(`runpodctl` that records its calls, optionally `torchrun`/`accelerate`/`curl` wrappers), a fake
/etc/rp_environment, its own tmux server (TMUX_TMPDIR) and session name. `launch()` streams
`bundle.launcher_script()` (the shim remote/remote_train.sh + the embedded pod-side program) to
runner.remote.shell.SCRIPT_COMMAND with `export NAME=<shlex-quoted>` lines prepended, exactly like the runner.

Venvs: creating one with pip takes ~8 s, so it happens once per session, by the launcher itself with
the real interpreter (`build_venv_templates`). Afterwards RT_PYTHON points at a wrapper that
hard-link-copies a template for `-m venv` (every other invocation is the real interpreter).
"""

from __future__ import annotations

import base64
import hashlib
import http.server
import json
import os
import shlex
import shutil
import signal
import stat
import subprocess
import threading
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from remote.podside.bundle import launcher_script, start_command
from remote.podside.contract import (
    ERROR_PREFIX,
    INSPECT_PREFIX,
    TERMINAL_STATES,
    VENV_REQUIREMENTS_MARKER,
    find_inspect,
    find_result,
)
from runner.remote.shell import SCRIPT_COMMAND
from standins.private_tmux import private_tmux_env
from standins.waiting import wait_for

ROOT = Path(__file__).resolve().parent.parent
SMOKE_TRAINER = ROOT / "remote" / "smoke_train.py"
POD_ID = "pod-abc123"
POD_API_KEY = "rpa_POD_SCOPED_SECRET_7f3c9d"
MARKER = VENV_REQUIREMENTS_MARKER  # venv/<MARKER>: what the pod side installed last

# Records every pip run in a venv made from the template (sys.orig_argv: the full command line).
PIP_RECORDER = """\
import json, os, sys
_argv = getattr(sys, "orig_argv", sys.argv)
if os.environ.get("RT_TEST_PIP_RECORD") and "-m" in _argv and "pip" in _argv:
    with open(os.environ["RT_TEST_PIP_RECORD"], "a") as _fh:
        _fh.write(json.dumps(_argv) + "\\n")
"""

LAUNCH_ARGV = shlex.split(SCRIPT_COMMAND)  # how the runner runs the launcher (runner/remote/shell.py)


def real_python() -> str:
    """The interpreter behind `python3` on PATH, without version-manager shims (they are slow)."""
    found = shutil.which("python3")
    assert found, "python3 must be on PATH"
    out = subprocess.run([found, "-c", "import sys; print(sys.executable)"], capture_output=True, text=True, check=True)
    return os.path.realpath(out.stdout.strip())


def build_venv_templates(base: Path) -> dict[str, Path]:
    """Run the launcher once for real (the real `python3 -m venv`, the real pip install) and keep the
    venv it set up. "warm" = that venv as a previous run leaves it on the volume; "cold" = the same
    venv without the install marker (pip must run). Both get a pip-call recorder."""
    pod = PodSandbox(base / "warmup", session=f"rt-warmup-{os.getpid()}", venv_template=None)
    try:
        run = pod.launch(RT_PYTHON="python3", RT_STOP_POD="0")
        assert run.returncode == 0, run.stderr
        state = pod.wait_finished(timeout=300)
        log = pod.log_text()
        assert state["state"] == "succeeded", log[-3000:]
        assert "venv: creating" in log and "running pip install" in log, log[-3000:]
        venv = pod.repo_dir / "venv"
        assert (venv / MARKER).is_file()
        warm, cold = base / "warm", base / "cold"
        subprocess.run(["cp", "-a", str(venv), str(warm)], check=True)
    finally:
        pod.cleanup()
    site = next(warm.glob("lib/python3*/site-packages"))
    (site / "sitecustomize.py").write_text(PIP_RECORDER)
    subprocess.run(["cp", "-a", str(warm), str(cold)], check=True)
    (cold / MARKER).unlink()
    return {"warm": warm, "cold": cold}


def write_executable(path: Path, text: str) -> Path:
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return path


def make_wheel(dest_dir: Path, name: str = "rtdemo", version: str = "0.1") -> Path:
    """A minimal pure-Python wheel built by hand (installing it needs no network and no setuptools)."""
    dist = f"{name}-{version}.dist-info"
    files = {
        f"{name}/__init__.py": f"VERSION = {version!r}\n",
        f"{dist}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
        f"{dist}/WHEEL": "Wheel-Version: 1.0\nGenerator: remote_harness\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = []
    for path, text in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=").decode()
        record.append(f"{path},sha256={digest},{len(text.encode())}")
    record.append(f"{dist}/RECORD,,")
    files[f"{dist}/RECORD"] = "\n".join(record) + "\n"
    wheel = dest_dir / f"{name}-{version}-py3-none-any.whl"
    dest_dir.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(wheel, "w") as zf:
        for path, text in files.items():
            zf.writestr(path, text)
    return wheel


def git(cwd: Path, *args: str) -> str:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.invalid",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.invalid",
    }
    out = subprocess.run(["git", "-C", str(cwd), *args], capture_output=True, text=True, env=env, timeout=60)
    assert out.returncode == 0, f"git {args} failed: {out.stderr}"
    return out.stdout.strip()


def flat_yaml(values: dict) -> str:
    return "".join(f"{key}: {value}\n" for key, value in values.items())


@dataclass
class LaunchResult:
    returncode: int
    stdout: str
    stderr: str

    @property
    def result(self) -> dict | None:
        lines = self.stdout.strip().splitlines()
        return find_result(lines[-1]) if lines else None

    @property
    def error_lines(self) -> list[str]:
        return [line for line in self.stderr.splitlines() if line.startswith(ERROR_PREFIX)]


@dataclass
class PodSandbox:
    root: Path
    session: str
    venv_template: Path | None
    workspace_name: str = "workspace"
    origin_name: str = "origin"
    branch: str = "main"
    env_overrides: dict = field(default_factory=dict)

    def __post_init__(self):
        self.root.mkdir(parents=True, exist_ok=True)
        self.workspace = self.root / self.workspace_name
        self.origin = self.root / self.origin_name
        self.bin = self.root / "bin"
        self.records = self.root / "records"
        self.tmux_tmpdir = self.root / "tmux"
        self.cwd = self.root / "cwd"
        for d in (self.workspace, self.bin, self.records, self.tmux_tmpdir, self.cwd):
            d.mkdir(parents=True, exist_ok=True)
        self.rp_env_file = self.root / "rp_environment"
        self.write_rp_env()
        self.runpodctl_log = self.records / "runpodctl.jsonl"
        self.pip_log = self.records / "pip.jsonl"
        self.install_runpodctl()
        self.python_wrapper = self._write_python_wrapper()
        self._make_origin()

    # -- the pretend pod --------------------------------------------------------------------------
    def write_rp_env(self, **extra: str) -> None:
        values = {"RUNPOD_POD_ID": POD_ID, "RUNPOD_API_KEY": POD_API_KEY, **extra}
        self.rp_env_file.write_text("".join(f'export {k}="{v}"\n' for k, v in values.items()))

    def write_rp_env_raw(self, text: str) -> None:
        self.rp_env_file.write_text(text)

    def path_without(self, *names: str) -> str:
        """A PATH with every command of base_env()'s PATH except `names` (as if not installed)."""
        farm = self.root / ("path-without-" + "-".join(names))
        farm.mkdir(exist_ok=True)
        for directory in self.base_env()["PATH"].split(os.pathsep):
            if not os.path.isdir(directory):
                continue
            for entry in os.scandir(directory):
                target = farm / entry.name
                if entry.name in names or target.exists() or target.is_symlink():
                    continue
                if entry.is_file() and os.access(entry.path, os.X_OK):
                    target.symlink_to(os.path.realpath(entry.path) if entry.name.startswith("python") else entry.path)
        return str(farm)

    def install_runpodctl(self, mode: str = "ok") -> None:
        """mode: ok | legacy-only (v1.x: only `stop pod` works) | fail (every call fails)."""
        write_executable(
            self.bin / "runpodctl",
            f"""#!/usr/bin/env python3
import json, os, sys
with open({str(self.runpodctl_log)!r}, "a") as fh:
    fh.write(json.dumps({{"argv": sys.argv[1:], "has_key": bool(os.environ.get("RUNPOD_API_KEY"))}}) + "\\n")
mode = {mode!r}
if mode == "fail" or (mode == "legacy-only" and sys.argv[1:2] == ["pod"]):
    print("Error: unknown command or API failure", file=sys.stderr)
    sys.exit(1)
print("pod stopped")
""",
        )

    def install_curl_recorder(self) -> Path:
        """Wraps the real curl: records its argv (to prove the key is not on it), then runs it."""
        real = shutil.which("curl")
        assert real, "curl must be installed for this test"
        log = self.records / "curl-argv.jsonl"
        write_executable(
            self.bin / "curl",
            f"""#!/usr/bin/env python3
import json, os, sys
with open({str(log)!r}, "a") as fh:
    fh.write(json.dumps(sys.argv[1:]) + "\\n")
os.execv({real!r}, [{real!r}, *sys.argv[1:]])
""",
        )
        return log

    def remove_runpodctl(self) -> None:
        (self.bin / "runpodctl").unlink(missing_ok=True)

    def install_recording_launcher(self, name: str) -> Path:
        """A stand-in torchrun/accelerate: records argv, then runs the script with plain python."""
        log = self.records / f"{name}.jsonl"
        write_executable(
            self.bin / name,
            f"""#!/usr/bin/env python3
import json, os, sys
args = sys.argv[1:]
with open({str(log)!r}, "a") as fh:
    fh.write(json.dumps(args) + "\\n")
if args[:1] == ["launch"]:
    args = args[1:]
while args and args[0].startswith("--"):
    args = args[1:]
os.execvp("python", ["python", *args])
""",
        )
        return log

    def _write_python_wrapper(self) -> Path:
        real = real_python()
        template = str(self.venv_template) if self.venv_template else ""
        return write_executable(
            self.root / "python-for-venv",
            f"""#!/bin/bash
# Stand-in for RT_PYTHON: `-m venv DIR` copies a prebuilt venv; anything else is the real python.
if [ "$1" = "-m" ] && [ "$2" = "venv" ] && [ -n {shlex.quote(template)} ]; then
  echo "$3" >> {shlex.quote(str(self.records / "venv-created"))}
  exec cp -al {shlex.quote(template)} "$3"
fi
exec {shlex.quote(real)} "$@"
""",
        )

    def _make_origin(self) -> None:
        self.origin.mkdir(parents=True)
        git(self.origin, "init", "-q", "-b", self.branch)
        (self.origin / "scripts").mkdir()
        shutil.copy(SMOKE_TRAINER, self.origin / "scripts" / "train.py")
        (self.origin / "configs").mkdir()
        self.write_config("configs/smoke.yaml")
        (self.origin / "requirements.txt").write_text("# the smoke trainer needs nothing\n")
        (self.origin / ".gitignore").write_text("venv/\ncheckpoints/\nlogs/\n")
        self.commit("initial")

    def write_config(self, rel: str, **values) -> str:
        cfg = {
            "output_dir": "checkpoints/smoke",
            "logging_dir": "logs/smoke",
            "max_steps": 40,
            "save_steps": 10,
            "step_seconds": 0,
        }
        cfg.update(values)
        cfg = {k: v for k, v in cfg.items() if v is not None}
        path = self.origin / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(flat_yaml(cfg))
        return rel

    def commit(self, message: str) -> str:
        git(self.origin, "add", "-A")
        git(self.origin, "commit", "-q", "-m", message)
        return git(self.origin, "rev-parse", "--short", "HEAD")

    # -- paths on the volume ------------------------------------------------------------------------
    @property
    def repo_dir(self) -> Path:
        return self.workspace / self.origin.name

    @property
    def state_file(self) -> Path:
        return self.workspace / ".runner" / "state.json"

    @property
    def log_file(self) -> Path:
        return self.workspace / "logs" / "current.log"

    def state(self) -> dict | None:
        try:
            return json.loads(self.state_file.read_text())
        except (OSError, ValueError):
            return None

    def log_text(self) -> str:
        try:
            return self.log_file.read_text()
        except OSError:
            return ""

    def runpodctl_calls(self) -> list[dict]:
        return _read_jsonl(self.runpodctl_log)

    def pip_calls(self) -> list[list[str]]:
        return _read_jsonl(self.pip_log)

    # -- running the launcher --------------------------------------------------------------------
    def base_env(self) -> dict:
        path = os.pathsep.join([str(self.bin), os.path.dirname(real_python()), os.environ.get("PATH", "")])
        return {
            "PATH": path,
            "HOME": os.environ.get("HOME", str(self.root)),
            "LANG": "C.UTF-8",
            "TMUX_TMPDIR": str(self.tmux_tmpdir),
            "PIP_NO_INDEX": "1",
            "PIP_DISABLE_PIP_VERSION_CHECK": "1",
            "RT_TEST_PIP_RECORD": str(self.pip_log),
            # Never the real API: a closed local port unless a test serves one.
            "RUNPOD_REST_URL": "http://127.0.0.1:9",
            "PYTHONDONTWRITEBYTECODE": "1",
        }

    def rt_env(self, **overrides) -> dict:
        env = {
            "RT_WORKSPACE": str(self.workspace),
            "RT_REPO_URL": str(self.origin),
            "RT_REPO_BRANCH": self.branch,
            "RT_CONFIG": "configs/smoke.yaml",
            "RT_SESSION": self.session,
            "RT_RP_ENV_FILE": str(self.rp_env_file),
            "RT_PYTHON": str(self.python_wrapper),
        }
        env.update(self.env_overrides)
        env.update(overrides)
        return {k: v for k, v in env.items() if v is not None}

    def launch(self, *, path_env: str | None = None, **overrides) -> LaunchResult:
        """Run the launcher like the runner does: exports prepended to the script, fed to SCRIPT_COMMAND."""
        exports = "".join(
            f"export {name}={shlex.quote(str(value))}\n" for name, value in self.rt_env(**overrides).items()
        )
        env = self.base_env()
        if path_env is not None:
            env["PATH"] = path_env
        proc = subprocess.run(
            LAUNCH_ARGV,
            input=exports + launcher_script(),
            capture_output=True,
            text=True,
            env=env,
            cwd=self.cwd,
            timeout=120,
        )
        return LaunchResult(proc.returncode, proc.stdout, proc.stderr)

    def inspect(self, **extra: str) -> dict:
        """RT_ACTION=inspect with only what the runner passes (workspace, session, optional config)."""
        env = {"RT_ACTION": "inspect", "RT_WORKSPACE": str(self.workspace), "RT_SESSION": self.session, **extra}
        exports = "".join(f"export {k}={shlex.quote(str(v))}\n" for k, v in env.items())
        proc = subprocess.run(
            LAUNCH_ARGV,
            input=exports + launcher_script(),
            capture_output=True,
            text=True,
            env=self.base_env(),
            cwd=self.cwd,
            timeout=60,
        )
        assert proc.returncode == 0, proc.stderr
        last = proc.stdout.strip().splitlines()[-1]
        assert last.startswith(INSPECT_PREFIX), proc.stdout
        return find_inspect(last)

    def wait_state(self, *states: str, timeout: float = 60.0) -> dict:
        states = states or TERMINAL_STATES
        return wait_for(
            lambda: (s := self.state()) and s.get("state") in states and s,
            timeout,
            f"state in {states} (now {self.state()!r}; log tail {self.log_text()[-800:]!r})",
        )

    def wait_finished(self, timeout: float = 60.0) -> dict:
        """Terminal state recorded and the supervisor (tmux session) gone."""
        state = self.wait_state(timeout=timeout)
        wait_for(lambda: not self.session_alive(), timeout, "the tmux session to end")
        return self.state() or state

    def wait_log(self, text: str, timeout: float = 30.0) -> str:
        return wait_for(
            lambda: text in self.log_text() and self.log_text(),
            timeout,
            f"{text!r} in the log (tail {self.log_text()[-800:]!r})",
        )

    # -- tmux -------------------------------------------------------------------------------------
    def tmux(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            ["tmux", *args],
            capture_output=True,
            text=True,
            timeout=10,
            env=private_tmux_env(self.tmux_tmpdir),
        )

    def session_alive(self) -> bool:
        return self.tmux("has-session", "-t", f"={self.session}").returncode == 0

    def supervisor_pid(self) -> int:
        out = self.tmux("list-panes", "-t", f"={self.session}:", "-F", "#{pane_pid}")
        assert out.returncode == 0, out.stderr
        return int(out.stdout.split()[0])

    def processes_running(self, needle: str) -> list[int]:
        """PIDs whose command line contains needle (reads /proc; no pgrep dependency)."""
        pids, me = [], os.getpid()
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit() or int(entry.name) == me:
                continue
            try:
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                status = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
            except OSError:
                continue
            if needle in cmdline and status != "Z":
                pids.append(int(entry.name))
        return pids

    # -- the container ------------------------------------------------------------------------------
    def container_env(self, **extra: str) -> dict:
        """What a container start sees: RunPod's variables (the pod's own key among them) and the image's
        start script stand-in (RT_IMAGE_START: records that it ran, then exits)."""
        image_start = write_executable(
            self.root / "image-start.sh",
            f"#!/bin/sh\necho started >> {shlex.quote(str(self.records / 'image-start'))}\n",
        )
        return {
            **self.base_env(),
            "RUNPOD_POD_ID": POD_ID,
            "RUNPOD_API_KEY": POD_API_KEY,
            "RT_IMAGE_START": str(image_start),
            **extra,
        }

    def start_container(self, idle_s: float = 0, **extra: str) -> subprocess.CompletedProcess:
        """Run the pod's start command (bundle.start_command) as RunPod runs it at a container start."""
        words = shlex.split(start_command(idle_s, str(self.workspace)))
        return subprocess.run(words, env=self.container_env(**extra), capture_output=True, text=True, timeout=60)

    def kill_container(self) -> None:
        """The container dies: the supervisor, training, every process of this sandbox and its tmux
        server, all with SIGKILL (no handler runs, as when the container is gone)."""
        pids = [(self.state() or {}).get("supervisor_pid")] + self.processes_running(str(self.root) + os.sep)
        for p in pids:
            try:
                if isinstance(p, int) and _alive(p):
                    os.kill(p, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.tmux("kill-server")
        wait_for(lambda: not self.processes_running(str(self.root) + os.sep), 10, "the container's processes to end")

    def autoresume_log(self) -> str:
        try:
            return (self.workspace / "logs" / "autoresume.log").read_text()
        except OSError:
            return ""

    def events(self, run_id: str) -> list[dict]:
        return _read_jsonl(self.workspace / ".runner" / "events" / f"{run_id}.jsonl")

    def cleanup(self) -> None:
        """Kill this sandbox's tmux server and anything it left behind (only our own processes)."""
        pid = (self.state() or {}).get("supervisor_pid")
        self.tmux("kill-server")
        for p in self.processes_running(str(self.root) + os.sep):
            try:
                os.kill(p, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if pid:
            wait_for(lambda: not _alive(pid), 10, "the supervisor to exit")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _read_jsonl(path: Path) -> list:
    try:
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    except OSError:
        return []


class WebhookSink:
    """A webhook on 127.0.0.1 that records every POST (path, headers, body). While `hold` is clear it
    answers nothing: a slow webhook. `status` is what it answers (200; 500 for a failing one)."""

    def __init__(self, held: bool = False, status: int = 200):
        self.requests: list[dict] = []
        self.release = threading.Event()
        if not held:
            self.release.set()
        self.status = status
        self.arrived = 0
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server naming)
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                server.arrived += 1
                server.release.wait(60)
                server.requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
                self.send_response(server.status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str = "/hook/s3cr3t-t0ken") -> str:
        return self.base + path

    def events(self) -> list[dict]:
        """The JSON bodies received (the generic shape: the event objects)."""
        return [json.loads(r["body"]) for r in self.requests]

    def wait_events(self, *names: str, timeout: float = 30.0) -> list[dict]:
        """Wait until every named event arrived; all events received so far."""
        return wait_for(
            lambda: set(names) <= {e.get("event") for e in self.events()} and self.events(),
            timeout,
            f"events {names} at the webhook (got {[e.get('event') for e in self.events()]})",
        )

    def close(self) -> None:
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()


class StopApiServer:
    """A tiny REST v2 stand-in on 127.0.0.1: records POST /v2/pods/<id>/action and checks the key.
    `observe` (optional) is called as each request arrives; its results go to `observed`."""

    def __init__(self, api_key: str, observe: Callable[[], object] | None = None):
        self.api_key = api_key
        self.requests: list[dict] = []
        self.observed: list = []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server naming)
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if observe is not None:
                    server.observed.append(observe())
                authorized = self.headers.get("Authorization") == f"Bearer {server.api_key}"
                server.requests.append(
                    {
                        "path": self.path,
                        "body": body.decode(errors="replace"),
                        "authorized": authorized,
                        "content_type": self.headers.get("Content-Type"),
                    }
                )
                code = 200 if authorized else 401
                payload = json.dumps(
                    {"id": "x", "status": "EXITED"} if authorized else {"title": "Unauthorized", "status": 401}
                ).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


# -- checkpoints the way the Hugging Face Trainer writes them -------------------------------------


def safetensors_bytes(tensors: dict[str, tuple[str, list[int], bytes]]) -> bytes:
    """A real safetensors file: 8-byte little-endian header length, the JSON header (dtype, shape,
    data_offsets per tensor, padded with spaces to 8 bytes, as the writer does), then the raw data."""
    header, data, offset = {"__metadata__": {"format": "pt"}}, b"", 0
    for name, (dtype, shape, raw) in tensors.items():
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + len(raw)]}
        data += raw
        offset += len(raw)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    return len(text).to_bytes(8, "little") + text + data


def tiny_tensors(seed: int = 0) -> dict[str, tuple[str, list[int], bytes]]:
    return {"model.weight": ("F32", [2, 2], bytes(range(seed, seed + 16))), "model.bias": ("F32", [2], bytes(8))}


def torch_zip_bytes() -> bytes:
    """What torch.save writes for pytorch_model.bin: a zip archive (data.pkl, data/0, version)."""
    import io

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("archive/data.pkl", b"\x80\x02}q\x00.")
        zf.writestr("archive/data/0", bytes(16))
        zf.writestr("archive/version", b"3\n")
    return buf.getvalue()


def weights_bytes(name: str) -> bytes:
    return torch_zip_bytes() if name.endswith(".bin") else safetensors_bytes(tiny_tensors())
