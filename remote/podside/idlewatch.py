"""The idle stop: a pod with no training, no SSH session and no tunnel for a while stops itself.

    python3 podside.pyz idlewatch --idle-seconds 1200 [--workspace /workspace] [--ensure]

Who starts it: the pod's start command on every container start (`pulumi up` gives the pod one
that runs this next to the image's own /start.sh: bundle.start_command), and the launcher on
every `runner train`, and `runner sync --keep-running` after it started the pod, so a pod created
before the idle stop existed, or a changed idleStopMinutes, is covered too. One watcher per pod: it
holds an flock on <workspace>/.runner/idlewatch.lock while it runs; a newer one asks the older to
leave (SIGTERM) and takes over, unless --ensure finds one already watching with the same time.

Busy (the idle clock restarts) while any of these holds:
  * training: state.json's current attempt is setup/running and its supervisor process is alive;
  * an authenticated SSH connection to a port sshd listens on (shells, rsync, scp and tunnels all
    come in over SSH; sshsessions.py: a TCP connection that never authenticated does not count);
  * a process on a GPU (`nvidia-smi --query-compute-apps`), e.g. training started by hand in tmux.
Idle for the whole time: the marker <workspace>/.runner/self_stop.json (reason "idle") is written,
then the pod stops itself like at the end of a run (selfstop.stop_pod: REST v2 with its own key).
Each check rewrites <workspace>/.runner/idlewatch.json (IdleKey); what happens goes to
<workspace>/logs/idlewatch.log.
"""

from __future__ import annotations

import argparse
import errno
import fcntl
import os
import signal
import subprocess
import sys
import time
from typing import Callable, Dict, List, Optional

from . import record, selfstop
from .contract import (
    DEFAULT_RP_ENV_FILE,
    DEFAULT_WORKSPACE,
    TERMINAL_STATES,
    Event,
    IdleKey,
    SelfStopReason,
    StateKey,
    VolumePaths,
)
from .sshsessions import ssh_connections, ssh_ports, tcp_sockets

DEFAULT_POLL_S = 30.0
RETRY_STOP_S = 120.0
TAKEOVER_WAIT_S = 10.0
NVIDIA_SMI_TIMEOUT_S = 10.0


# ---------------------------------------------------------------- what counts as busy
def process_runs(pid: object, word: bytes) -> bool:
    """Whether pid is a live process (not this one) whose command line has `word` (pids are reused)."""
    if not isinstance(pid, int) or pid <= 0 or pid == os.getpid():
        return False
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            return word in fh.read()
    except OSError:
        return False


def training_running(paths: VolumePaths) -> Optional[str]:
    """ "run <id> attempt <n>" while the current attempt is not over and its supervisor lives."""
    state = record.load(paths.state_file) or {}
    if state.get(StateKey.STATE) in TERMINAL_STATES or not process_runs(
        state.get(StateKey.SUPERVISOR_PID), b"supervise"
    ):
        return None
    return f"run {state.get(StateKey.RUN_ID)} attempt {state.get(StateKey.ATTEMPT)}"


def gpu_processes() -> List[str]:
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-compute-apps=pid", "--format=csv,noheader"],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=NVIDIA_SMI_TIMEOUT_S,
        )
    except (OSError, subprocess.TimeoutExpired):
        return []
    return [line.strip() for line in out.stdout.splitlines() if line.strip().isdigit()] if out.returncode == 0 else []


def busy_reasons(paths: VolumePaths, environ: Dict[str, str]) -> List[str]:
    reasons = []
    training = training_running(paths)
    if training:
        reasons.append(f"training ({training})")
    sockets = tcp_sockets()
    ports = ssh_ports(environ, sockets)
    connections = ssh_connections(ports, sockets)
    if connections:
        reasons.append(f"{connections} SSH connection(s) on port {','.join(map(str, sorted(ports)))}")
    gpu = gpu_processes()
    if gpu:
        reasons.append(f"GPU in use by pid {','.join(gpu)}")
    return reasons


def status(paths: VolumePaths) -> Optional[Dict[str, object]]:
    """idlewatch.json as the last check left it, plus whether its watcher still runs (inspect mode)."""
    data = record.load(paths.idle_watch)
    if data is None:
        return None
    data[IdleKey.ALIVE] = _alive_watcher(data.get(IdleKey.PID))
    return data


# ---------------------------------------------------------------- one watcher per pod
def _lock_path(paths: VolumePaths) -> str:
    return os.path.join(paths.runner_dir, "idlewatch.lock")


def _watching(paths: VolumePaths) -> Dict[str, object]:
    return record.load(paths.idle_watch) or {}


def _alive_watcher(pid: object) -> bool:
    return process_runs(pid, b"idlewatch")


def take_over(paths: VolumePaths, idle_s: float, ensure: bool, wait_s: float = TAKEOVER_WAIT_S) -> Optional[int]:
    """The lock fd once this process is the pod's watcher; None when --ensure finds one already
    watching with the same time (nothing to do)."""
    fd = os.open(_lock_path(paths), os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o644)
    deadline = time.monotonic() + wait_s
    asked = False
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return fd
        except OSError as exc:
            if exc.errno not in (errno.EAGAIN, errno.EACCES):
                os.close(fd)
                raise
        current = _watching(paths)
        if ensure and current.get(IdleKey.IDLE_S) == idle_s and _alive_watcher(current.get(IdleKey.PID)):
            os.close(fd)
            return None
        if not asked and _alive_watcher(current.get(IdleKey.PID)):
            os.kill(int(current[IdleKey.PID]), signal.SIGTERM)  # type: ignore[arg-type]
            asked = True
        if time.monotonic() > deadline:
            os.close(fd)
            raise RuntimeError("another idle watcher holds the lock and did not leave")
        time.sleep(0.05)


# ---------------------------------------------------------------- the loop
class Watcher:
    def __init__(
        self,
        paths: VolumePaths,
        idle_s: float,
        poll_s: float,
        environ: Dict[str, str],
        rp_env_file: str,
        log: Callable[[str], None],
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.paths, self.idle_s, self.poll_s, self.environ = paths, idle_s, poll_s, environ
        self.rp_env_file, self.log, self.clock, self.sleep = rp_env_file, log, clock, sleep
        self.checks = 0
        self.reported = False  # idle-stopped sent

    def _status(self, busy: List[str], idle_for: float) -> None:
        try:
            record.write_json_atomic(
                self.paths.idle_watch,
                {
                    IdleKey.PID: os.getpid(),
                    IdleKey.IDLE_S: self.idle_s,
                    IdleKey.CHECKS: self.checks,
                    IdleKey.BUSY: busy,
                    IdleKey.IDLE_FOR_S: round(idle_for, 1),
                    IdleKey.AT: record.utc_now(),
                },
            )
        except OSError:
            pass

    def report(self, state: Dict[str, object]) -> None:
        """`idle-stopped` for the volume's run (eventlog.py; best effort)."""
        try:
            from . import eventlog
        except ImportError:  # the start command's slice (bundle.IDLE_MODULES): no launch, no run to report
            return
        attempt = state.get(StateKey.ATTEMPT)
        checkpoint = state.get(StateKey.LAST_CHECKPOINT)
        eventlog.emit(
            self.paths,
            Event.IDLE_STOPPED,
            str(state.get(StateKey.RUN_ID) or ""),
            attempt if isinstance(attempt, int) else None,
            pod=eventlog.pod_id(self.rp_env_file, self.environ),
            checkpoint=checkpoint if isinstance(checkpoint, str) else None,
            message=f"no training, SSH session or tunnel for {self.idle_s / 60:g} min",
            recurring=True,
            log=self.log,
        )

    def stop_pod(self) -> bool:
        state = record.load(self.paths.state_file) or {}
        run_id, attempt = state.get(StateKey.RUN_ID), state.get(StateKey.ATTEMPT)
        if not self.reported:  # once per watcher (a failed stop is retried), before the stop: it may end us
            self.reported = True
            self.report(state)
        selfstop.before_stop(
            f"write {self.paths.self_stop_marker}",
            lambda: selfstop.write_marker(self.paths.self_stop_marker, run_id, attempt, reason=SelfStopReason.IDLE),
            self.log,
        )
        creds = selfstop.read_credentials(self.rp_env_file, self.environ, self.environ.get("RUNPOD_API_KEY"), self.log)
        method = selfstop.stop_pod(creds, self.environ, self.paths.log_dir + "/idlewatch.log", self.log, self.sleep)
        if method:
            self.log(f"idle for {self.idle_s:g} s: asked RunPod to stop this pod ({method})")
            return True
        self.log(f"idle for {self.idle_s:g} s but the stop failed; trying again in {RETRY_STOP_S:g} s")
        return False

    def run(self, max_checks: Optional[int] = None) -> int:
        idle_since = self.clock()
        retry_at: Optional[float] = None  # after a failed stop
        was_busy: Optional[List[str]] = None
        self.log(f"watching: the pod stops itself after {self.idle_s:g} s with no training, SSH session or tunnel")
        while max_checks is None or self.checks < max_checks:
            if not os.path.isdir(self.paths.runner_dir):  # the volume went away (or a test's tmp dir)
                self.log(f"{self.paths.runner_dir} is gone; not watching any more")
                return 0
            self.checks += 1
            try:
                busy = busy_reasons(self.paths, self.environ)
            except Exception as exc:  # noqa: BLE001 - a check that fails counts as busy, the watcher lives on
                busy = [f"check failed ({type(exc).__name__}: {exc})"]
            now = self.clock()
            if busy:
                idle_since, retry_at = now, None
                if busy != was_busy:
                    self.log("busy: " + "; ".join(busy))
            elif was_busy is None or was_busy:
                self.log("idle: nothing running, nobody connected")
            was_busy = busy
            idle_for = now - idle_since
            self._status(busy, idle_for)
            if not busy and idle_for >= self.idle_s and (retry_at is None or now >= retry_at):
                if self.stop_pod():
                    return 0
                retry_at = now + RETRY_STOP_S
            self.sleep(self.poll_s)
        return 0


def _log_to(path: str) -> Callable[[str], None]:
    def log(message: str) -> None:
        line = f"{record.utc_now()} [idlewatch] {message}\n"
        try:
            with open(path, "a", encoding="utf-8") as fh:
                fh.write(line)
        except OSError:
            try:  # stderr is that same log when the start command started us: full as well, maybe
                sys.stderr.write(line)
                sys.stderr.flush()
            except OSError:
                pass

    return log


def parse_args(argv: List[str]) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="podside idlewatch")
    ap.add_argument("--idle-seconds", type=float, required=True)
    ap.add_argument("--poll-seconds", type=float, default=None)
    ap.add_argument("--workspace", default=os.environ.get("RT_WORKSPACE") or DEFAULT_WORKSPACE)
    ap.add_argument("--rp-env-file", default=os.environ.get("RT_RP_ENV_FILE") or DEFAULT_RP_ENV_FILE)
    ap.add_argument("--pod-slot", default=os.environ.get("RT_POD_SLOT") or "")
    ap.add_argument("--ensure", action="store_true", help="leave a watcher with the same time running")
    return ap.parse_args(argv)


def main(argv: List[str]) -> int:
    args = parse_args(argv)
    if args.idle_seconds <= 0:
        return 0
    paths = VolumePaths(args.workspace, args.pod_slot)
    os.makedirs(paths.runner_dir, exist_ok=True)
    os.makedirs(paths.log_dir, exist_ok=True)
    fd = take_over(paths, args.idle_seconds, args.ensure)
    if fd is None:
        return 0
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    poll = args.poll_seconds or min(DEFAULT_POLL_S, max(args.idle_seconds / 10, 0.2))
    watcher = Watcher(
        paths, args.idle_seconds, poll, dict(os.environ), args.rp_env_file, _log_to(paths.log_dir + "/idlewatch.log")
    )
    try:
        return watcher.run()
    finally:
        os.close(fd)


def spawn(program: str, workspace: str, idle_s: float, rp_env_file: str, slot: str = "") -> None:
    """Start `program idlewatch --ensure` detached from this process and its SSH session."""
    with open(os.devnull, "rb") as devnull, open(VolumePaths(workspace, slot).log_dir + "/idlewatch.log", "ab") as out:
        subprocess.Popen(
            [
                sys.executable,
                program,
                "idlewatch",
                "--idle-seconds",
                f"{idle_s:g}",
                "--workspace",
                workspace,
                "--rp-env-file",
                rp_env_file,
                *(["--pod-slot", slot] if slot else []),
                "--ensure",
            ],
            stdin=devnull,
            stdout=out,
            stderr=out,
            start_new_session=True,
            close_fds=True,
        )
