"""The benchmark's world on loopback: a real sshd as the pod, the fake RunPod API, a stub `pulumi`,
a temp training repo, and `runner` subprocesses whose output lines are timestamped on arrival.

Everything listens on 127.0.0.1 and lives in one temp directory that close() removes.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from bench import wheelhouse as wh
from standins import waiting
from standins.link import PROFILES, Link, Profile
from standins.pod_sandbox import Sshd
from standins.preemption import processes_under, runner_side
from standins.private_tmux import private_tmux_env
from standins.pulumi_cli import SAMPLE_OUTPUTS, StubPulumi
from standins.runpod_api import FakeRunPod

ROOT = Path(__file__).resolve().parents[1]
TRAINER = Path(__file__).resolve().parent / "pod_trainer.py"
TRAIN_SCRIPT = "bench_train.py"
# Launcher/runner knobs of the caller's environment that must not leak into the measured runs.
_DROP_PREFIXES = (
    "RT_",
    "RUNPOD_",
    "PULUMI_",
    "SSH_KEY_PATH",
    "REPO_",
    "TRAIN_SCRIPT",
    "DATA_DIR",
    "RUNNER_STATE_DIR",
    "POD_START_TIMEOUT",
)


class BenchError(RuntimeError):
    pass


def wait_for(predicate: Callable[[], object], timeout: float, what: str, interval: float = 0.01):
    return waiting.wait_for(predicate, timeout, what, interval, error=BenchError)


def git(cwd: Path, *args: str) -> str:
    out = subprocess.run(["git", "-C", str(cwd), *args], capture_output=True, text=True, timeout=60)
    if out.returncode != 0:
        raise BenchError(f"git {' '.join(args)} failed: {out.stderr.strip()}")
    return out.stdout


def real_python() -> str:
    """The interpreter behind this venv, without version-manager shims."""
    return os.path.realpath(getattr(sys, "_base_executable", None) or sys.executable)


# ---------------------------------------------------------------- local wheels (no network)
def build_wheel(directory: Path, name: str, version: str = "0.1") -> Path:
    """A minimal valid pure-Python wheel, written directly (no build backend, no index)."""
    dist = f"{name}-{version}.dist-info"
    files = {
        f"{name}/__init__.py": "X = 1\n",
        f"{dist}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
        f"{dist}/WHEEL": "Wheel-Version: 1.0\nGenerator: bench\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = []
    for path, text in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=").decode()
        record.append(f"{path},sha256={digest},{len(text.encode())}")
    files[f"{dist}/RECORD"] = "\n".join(record + [f"{dist}/RECORD,,"]) + "\n"
    out = directory / f"{name}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(out, "w") as z:
        for path, text in files.items():
            z.writestr(path, text)
    return out


# ---------------------------------------------------------------- the sshd
def _pids_with_arg(arg: str) -> list[int]:
    """Processes whose command line contains arg (sshd rewrites its title, keeping the -f path in it)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if arg.encode() in cmdline and int(entry.name) != os.getpid():
                pids.append(int(entry.name))
    return pids


STUB_CHECKPOINT = {"latest": {"resources": [{"type": "pulumi:pulumi:Stack", "outputs": {}}]}}


class BenchSshd(Sshd):
    """standins/pod_sandbox.py's server. It gives sessions a private, empty HOME (as on a fresh pod);
    with machine_home the sessions get this machine's HOME and ~/.bashrc instead.

    Why it matters: this machine's root ~/.bashrc runs `pyenv init`, and sshd starts every session
    through bash, so each remote command pays ~0.2 s (and `python3` is a pyenv shim) that a RunPod
    pod (plain image .bashrc) does not."""

    machine_home: bool = False
    wrapper: str | None = None
    shaped_ports: tuple[int, ...] = ()  # the link's ports in front of this sshd: the same host key answers

    def _write_known_hosts(self) -> None:
        super()._write_known_hosts()
        with self.known_hosts_path.open("a") as fh:
            fh.write("".join(f"[{self.host}]:{p} {self.known_host_key}\n" for p in self.shaped_ports))

    def setup(self) -> None:
        if not self.wrapper:
            return super().setup()
        import standins.pod_sandbox as sandbox

        real, sandbox.SSHD_BIN = sandbox.SSHD_BIN, self.wrapper
        try:
            return super().setup()
        finally:
            sandbox.SSHD_BIN = real

    def _stop_listener(self) -> None:
        # A wrapper (strace) that gets SIGTERM detaches and leaves sshd running (in a session of its
        # own): end every process started with this sshd's config file, found by its command line.
        wrapped = self.wrapper and self.proc is not None
        super()._stop_listener()
        if wrapped:
            for pid in _pids_with_arg(str(self.config_path)):
                try:
                    os.kill(pid, signal.SIGTERM)
                except (ProcessLookupError, PermissionError):
                    pass

    def _write_config(self) -> None:
        super()._write_config()
        if self.machine_home:
            kept = [ln for ln in self.config_path.read_text().splitlines() if not ln.startswith("SetEnv HOME=")]
            self.config_path.write_text("\n".join(kept) + "\n")


# ---------------------------------------------------------------- a runner subprocess
@dataclass
class Line:
    t: float  # time.time() when the bench read it
    text: str


class RunnerProc:
    """`python -m runner ...` with stdout/stderr lines timestamped as they arrive."""

    def __init__(self, argv: list[str], env: dict[str, str], cwd: Path, module: str = "runner"):
        self.argv = argv
        self.started = time.time()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", module, *argv],
            env=env,
            cwd=str(cwd),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        self.out: list[Line] = []
        self.err: list[Line] = []
        self._readers = [
            threading.Thread(target=self._read, args=(self.proc.stdout, self.out), daemon=True),
            threading.Thread(target=self._read, args=(self.proc.stderr, self.err), daemon=True),
        ]
        for t in self._readers:
            t.start()

    @staticmethod
    def _read(stream, sink: list[Line]) -> None:
        fd = stream.fileno()
        pending = b""
        while True:
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            now = time.time()
            pending += chunk
            *lines, pending = pending.split(b"\n")
            for line in lines:
                sink.append(Line(now, line.decode("utf-8", "replace")))
        if pending:
            sink.append(Line(time.time(), pending.decode("utf-8", "replace")))

    @property
    def pid(self) -> int:
        return self.proc.pid

    def cpu_seconds(self) -> float:
        """utime + stime of the runner process (all its threads) so far."""
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def wait(self, timeout: float) -> int:
        try:
            code = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise BenchError(
                f"`runner {' '.join(self.argv)}` did not finish within {timeout:g}s; "
                f"stderr tail: {self.stderr_text()[-1500:]}"
            ) from None
        for t in self._readers:
            t.join(timeout=5)
        return code

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)

    def stderr_text(self) -> str:
        return "\n".join(line.text for line in self.err)

    def first_out(self, prefix: str, after: float = 0.0) -> Line | None:
        return next((ln for ln in list(self.out) if ln.text.startswith(prefix) and ln.t >= after), None)


# ---------------------------------------------------------------- the whole world
@dataclass
class BenchOptions:
    sshd_home: str = "clean"  # clean: the pod's sessions get an empty HOME | machine: this machine's
    requirements: int | None = None  # None: the real set (bench/wheelhouse.py); N: N tiny local wheels
    fast_venv: bool = False  # venv without its own pip (seconds faster to create; smoke test)
    keep: bool = False  # keep the temp directory (debugging)
    sshd_wrapper: str | None = None  # a program that runs sshd (bench/phases.py: strace around it)
    profile: Profile = PROFILES["loopback"]  # the link between this machine and RunPod (standins/link.py)

    @property
    def real(self) -> bool:
        return self.requirements is None


@dataclass
class BenchPod:
    options: BenchOptions
    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="rt-bench-")))
    sshd: BenchSshd | None = None
    fake: FakeRunPod | None = None
    stub: StubPulumi | None = None
    pod_id: str = ""
    session: str = field(default_factory=lambda: f"rt-bench-{uuid.uuid4().hex[:8]}")
    link: Link | None = None
    api_url: str = ""  # the API as the runner reaches it (through the link, when there is one)

    def __post_init__(self) -> None:
        self.project = self.root / "project"
        self.workspace = self.root / "workspace"
        self.state_dir = self.root / "state"
        self.data_dir = self.root / "data"
        self.wheels = self.root / "wheels"
        self.rp_env_file = self.root / "rp_environment"
        self.pulumi_backend = self.root / "pulumi-backend"
        # A tmux server of the bench's own: other programs on this machine (test suites) may kill the
        # default server, and with it a measured session.
        self.tmux_dir = self.root / "tmux"
        self.wheelhouse: Path | None = None
        self.image_python: Path | None = None

    # -- lifecycle --------------------------------------------------------------------------------
    def start(self) -> BenchPod:
        for d in (self.workspace, self.state_dir, self.data_dir, self.wheels, self.tmux_dir):
            d.mkdir(parents=True, exist_ok=True)
        if self.options.real:
            self.wheelhouse = wh.ensure_wheelhouse()
        self.image_python = wh.ensure_image(self.wheelhouse)
        self.sshd = BenchSshd(root=self.root / "sshd")
        self.sshd.wrapper = self.options.sshd_wrapper
        self.sshd.root.mkdir()
        self.sshd.machine_home = self.options.sshd_home == "machine"
        self.sshd.setup()
        self.fake = FakeRunPod(boot_seconds=0.0).start()
        self.api_url = self.fake.rest_url
        if self.options.profile.direct:
            self.fake.set_ssh_target(self.sshd.host, self.sshd.ports)
        else:
            # The runner (and the seed's way, and plain rsync) reach the API and the pod's sshd through
            # the shaped link; the pod's own calls (its self-stop) stay in the data center, unshaped.
            self.link = Link(self.options.profile).start()
            shaped = [self.link.forward(p) for p in self.sshd.ports]
            self.fake.set_ssh_target("127.0.0.1", shaped)
            self.sshd.shaped_ports = tuple(shaped)
            self.sshd._write_known_hosts()
            api_port = int(self.fake.rest_url.rsplit(":", 1)[1])
            self.api_url = f"http://127.0.0.1:{self.link.forward(api_port)}"
        self.stub = StubPulumi.create(self.root / "pulumi-stub")
        pod = self.fake.add_pod(status="RUNNING", interruptible=True, bid_per_gpu=0.3)
        self.pod_id = pod.id
        # No idle stop: its watcher is not what is measured, and it would outlive the bench.
        self.stub.set(
            outputs={
                **SAMPLE_OUTPUTS,
                "pod_id": pod.id,
                "workspace": str(self.workspace),
                "ssh_user": self.sshd.user,
                "cost_per_hr": 0.35,
                "idle_stop_minutes": 0,
            },
            checkpoint=STUB_CHECKPOINT,
        )
        # The stand-in for the local backend's state file: the stub's own behaviour.json, which holds
        # the outputs and a minimal checkpoint, and which the stub rewrites on `up`. So the runner's
        # stack-output cache (runner/pod/stack_cache.py) hits while the stack is unchanged, as it would
        # with `pulumi login --local`, and misses after an `up`.
        state = self.pulumi_backend / ".pulumi" / "stacks" / "bench" / "dev.json"
        state.parent.mkdir(parents=True)
        state.symlink_to(self.stub.root / "behaviour.json")
        env = {
            "RUNPOD_POD_ID": pod.id,
            "RUNPOD_REST_URL": self.fake.rest_url,
            "RUNPOD_API_KEY": self.fake.pod_api_key(pod.id),
        }
        self.rp_env_file.write_text("".join(f'export {k}="{v}"\n' for k, v in env.items()))
        self.rp_env_file.chmod(0o600)
        self._make_repo()
        return self

    def close(self) -> None:
        self.kill_training()
        self._stop_watchers()
        if self.fake is not None:
            self.fake.close()
        if self.sshd is not None:
            self.sshd.stop()
        if self.link is not None:
            self.link.close()
        if not self.options.keep:
            shutil.rmtree(self.root, ignore_errors=True)

    def _stop_watchers(self) -> None:
        """The background watchers the world's detached runs left: they would go on asking a fake API
        that is gone."""
        if self.state_dir is not None:
            from runner.watcher import background

            background.stop_all(self.state_dir)

    def __enter__(self) -> BenchPod:
        try:
            return self.start()
        except BaseException:
            self.close()  # a half-started world (sshd, fake, temp dir) must not stay behind
            raise

    def __exit__(self, *exc) -> None:
        self.close()

    # -- the training repo (its own commit history; REPO_URL = its path) -----------------------------
    def _make_repo(self) -> None:
        p = self.project
        p.mkdir()
        git(p, "init", "-q", "-b", "main")
        git(p, "config", "user.email", "bench@localhost")
        git(p, "config", "user.name", "bench")
        (p / "Pulumi.yaml").write_text("name: bench\nruntime: python\n")
        shutil.copy(TRAINER, p / TRAIN_SCRIPT)
        if self.wheelhouse is not None:
            (p / "requirements.txt").write_text(wh.requirements_text(self.wheelhouse))
        else:
            names = [f"benchdep{i}" for i in range(self.options.requirements or 0)]
            for name in names:
                build_wheel(self.wheels, name)
            if names:
                (p / "requirements.txt").write_text(
                    f"--no-index\n--find-links {self.wheels}\n" + "".join(f"{n}\n" for n in names)
                )
        (p / "configs").mkdir()
        (p / ".gitignore").write_text("venv/\ncheckpoints/\n")
        git(p, "add", "-A")
        git(p, "commit", "-q", "-m", "bench training repo")

    def add_configs(self, configs: dict[str, dict]) -> None:
        """Commit configs/<name>.yaml for every figure before any run (code unchanged afterwards)."""
        for name, values in configs.items():
            text = "".join(f"{k}: {v}\n" for k, v in {"output_dir": f"checkpoints/{name}", **values}.items())
            (self.project / "configs" / f"{name}.yaml").write_text(text)
        git(self.project, "add", "-A")
        git(self.project, "commit", "-q", "-m", "bench configs")

    @property
    def repo_dir(self) -> Path:
        return self.workspace / "project"

    # -- environment of the runner subprocesses ------------------------------------------------------
    def runner_env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(_DROP_PREFIXES)}
        # The runner as on a user's machine: its bytecode cached after the first run (this machine sets
        # PYTHONDONTWRITEBYTECODE=1, which would compile every module on every start), kept outside the repo.
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = str(wh.cache_root() / "pycache")
        env.update(self.fake.env())
        env.update({"RUNPOD_REST_URL": self.api_url, "RUNPOD_GRAPHQL_URL": self.api_url + "/graphql"})
        env.update(
            {
                "PULUMI_BINARY": str(self.stub.path),
                "SSH_KEY_PATH": self.sshd.key_path,
                "RUNNER_STATE_DIR": str(self.state_dir),
                "REPO_URL": str(self.project),
                "REPO_BRANCH": "main",
                "TRAIN_SCRIPT": TRAIN_SCRIPT,
                "DATA_DIR": str(self.data_dir),
                "POD_START_TIMEOUT": "60",
                "RT_SESSION": self.session,
                "RT_RP_ENV_FILE": str(self.rp_env_file),
                "PYTHONPATH": str(ROOT),
                "PULUMI_BACKEND_URL": f"file://{self.pulumi_backend}",
                "PULUMI_STACK": "dev",
                "RT_PYTHON": str(self.image_python),
                "TMUX_TMPDIR": str(self.tmux_dir),  # passed on to the launcher (RT_* passthrough)
            }
        )
        if self.options.fast_venv:
            env["RT_PYTHON"] = str(self._fast_venv_python())
        env.update(extra)
        return env

    def _fast_venv_python(self) -> Path:
        wrapper = self.root / "python-for-venv"
        if not wrapper.exists():
            real = self.image_python
            wrapper.write_text(
                "#!/bin/bash\n"
                f'if [ "$1" = "-m" ] && [ "$2" = "venv" ]; then exec {real} -m venv --without-pip '
                '--system-site-packages "$3"; fi\n'
                f'exec {real} "$@"\n'
            )
            wrapper.chmod(0o755)
        return wrapper

    def runner(self, *argv: str, module: str = "runner", **extra_env: str) -> RunnerProc:
        return RunnerProc(list(argv), self.runner_env(**extra_env), self.project, module=module)

    # -- the pod ------------------------------------------------------------------------------------
    def pod_status(self) -> str:
        return self.fake.pods[self.pod_id].status

    def make_running(self) -> None:
        """The pod RUNNING again (after it stopped itself), as `runner train` would find it warm."""
        pod = self.fake.pods[self.pod_id]
        if pod.status != "RUNNING":
            with self.fake.state.lock:
                self.fake.state.start(pod, api="graphql", spot_bid=pod.bid_per_gpu or 0.3)
            wait_for(lambda: self.pod_status() == "RUNNING", 30, "the pod to run again")

    # -- the workspace ------------------------------------------------------------------------------
    @property
    def log_file(self) -> Path:
        return self.workspace / "logs" / "current.log"

    def log_size(self) -> int:
        try:
            return self.log_file.stat().st_size
        except OSError:
            return 0

    def log_lines(self, offset: int = 0) -> list[str]:
        try:
            with self.log_file.open("rb") as fh:
                fh.seek(offset)
                return fh.read().decode("utf-8", "replace").splitlines()
        except OSError:
            return []

    def state(self) -> dict | None:
        try:
            return json.loads((self.workspace / ".runner" / "state.json").read_text())
        except (OSError, ValueError):
            return None

    def session_alive(self, session: str | None = None) -> bool:
        return (
            subprocess.run(
                ["tmux", "has-session", "-t", f"={session or self.session}"], capture_output=True, env=self.tmux_env()
            ).returncode
            == 0
        )

    def tmux_env(self) -> dict[str, str]:
        return private_tmux_env(self.tmux_dir)

    def remote_prelude(self) -> str:
        """First line of the seed's remote scripts: the bench's tmux server, as the runner's launcher gets it."""
        return f"export TMUX_TMPDIR={shlex.quote(str(self.tmux_dir))}\n"

    def wait_idle(self, timeout: float = 60.0, session: str | None = None) -> None:
        """No training session left (the previous run ended) before the next measurement."""
        wait_for(lambda: not self.session_alive(session), timeout, "the training session to end", 0.05)

    def kill_training(self) -> None:
        """The container's processes die: the tmux sessions, the supervisor, the trainer and whatever
        else runs from the bench directory. Spared: sshd, and the `tail` log followers the runner
        runs over SSH. They belong to SSH sessions, not to the container, and a preemption does not
        pick them out: they go when the sessions drop (sshd.drop_connections), as on RunPod."""
        for session in (self.session, f"{self.session}-seed"):
            subprocess.run(["tmux", "kill-session", "-t", f"={session}"], capture_output=True, env=self.tmux_env())
        for pid in processes_under(self.root, spare=("tail", "sshd"), spare_pids=runner_side(self.sshd.pid)):
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass

    # -- round trips -----------------------------------------------------------------------------------
    def counts(self) -> dict[str, int]:
        """Requests and connections so far: API requests (the fake's log), and through the link (when
        there is one) the TCP connections and request/response turns to the API and to the pod's sshd."""
        out = {"api_requests": len(self.fake.requests)}
        if self.link is not None:
            stats = self.link.stats()
            api_port = int(self.fake.rest_url.rsplit(":", 1)[1])
            api = stats.get(api_port)
            ssh = [stats[p] for p in self.sshd.ports if p in stats]
            out.update(
                api_connections=api.connections if api else 0,
                ssh_connections=sum(c.connections for c in ssh),
                ssh_exchanges=sum(c.exchanges for c in ssh),
                up_bytes=sum(c.up for c in ssh) + (api.up if api else 0),
                down_bytes=sum(c.down for c in ssh) + (api.down if api else 0),
            )
        return out


def counts_between(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    return {k: after[k] - before.get(k, 0) for k in after}


def parse_fields(text: str) -> dict[str, str]:
    """`BENCH start t=1.5 attempt=2` -> {"t": "1.5", "attempt": "2"}."""
    return dict(part.split("=", 1) for part in text.split() if "=" in part)


def find_bench(lines: list[str], kind: str) -> list[dict[str, str]]:
    return [parse_fields(line) for line in lines if line.startswith(f"BENCH {kind} ")]
