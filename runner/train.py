"""`runner train`: from stack outputs to a live, resumable training run.

    checks (no money)  settings, the config (exists, YAML, output_dir), stack outputs, repo URL
    prepare            the target is reachable (pod: resumed/started, SSH banner)
    launch             remote/remote_train.sh over `bash -s` (values as quoted exports on stdin)
                       -> RT_RESULT: run id, attempt, log offset ("started" or "already-running")
    follow             the log from that offset, whole lines, across SSH drops, until the attempt's
                       end (footer line, or the state file as fallback); Ctrl-C detaches
    finish             ack the end, summary, make sure the pod stopped, record, exit with
                       training's exit code

An interruption (the pod preempted/stopped/gone under the run, or the budget reached) goes to a
`Recovery` strategy, which decides to launch the next attempt or to give up. On the stack's pod the
strategy is runner.recovery.AutoRecovery (resume or recreate the pod, relaunch the same run id,
bounded by --max-recoveries and --budget-usd); elsewhere ReportAndExit (report, exit 4, say how to
resume). While following a pod, runner.recovery.PodWatch asks the API every POLL_S seconds.
Ctrl-C while following detaches (training continues, the pod stops itself); Ctrl-C during a
recovery, before training was relaunched, stops the pod the recovery brought up, then exits 130.

Across attempts the printed log stays exact: the runner remembers the byte offset of the last line
it printed; a relaunch first prints the interrupted attempt's unread tail (up to the new attempt's
header), and re-following a region already printed skips it.
"""
from __future__ import annotations

import json
import os
import re
import shlex
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from datetime import datetime
from typing import Callable, Protocol

from remote.podside import bundle
from runner import recovery as rec
from runner import runrecord
from runner.errors import EXIT_INTERRUPTED, EXIT_POD, RunnerError, UsageError, redact
from runner.logfollow import RETRYABLE, follow_with_reconnect
from runner.settings import Settings
from runner.ssh import SshDisconnected, SshError, SshTimeout
from runner.pod import GONE, PREEMPTED
from runner.recovery import PodWatch, Progress, checkpoint_step, confirm_interruption
from runner.targets import Shell, StopReport, Target, TargetInterrupted, interruption, make_target
from runner.trainconfig import TrainConfig, load_train_config, uncommitted_warning

# Seconds; module constants so tests can shorten them.
ACK_WAIT_S = 30               # RT_ACK_WAIT of attached runs: the pod waits this long for our ack
STOP_VERIFY_S = 90.0          # how long the pod gets to stop itself before the runner stops it
END_GRACE_S = 2.0             # after the state file says "ended", wait this long for the footer line
LAUNCH_TIMEOUT_S = 900.0      # the launcher clones the repo: can take a while on a first run
MAX_RECONNECT_WAIT_S = 600.0
STOP_CHECK_INTERVAL_S = 0.5
STATE_CHECK_TIMEOUT_S = 15.0  # one read of the state file
STATE_POLL_S = 15.0           # safety net: the end is normally seen in the log itself

TERMINAL = ("succeeded", "failed", "preempted")
LAUNCHER = Path(__file__).resolve().parents[1] / "remote" / "remote_train.sh"
# Launcher knobs a user (or a test) may set in the environment; passed through to the launcher.
# TMUX_TMPDIR gives the training its own tmux server (shared machines, tests).
PASSTHROUGH = ("RT_LAUNCHER", "RT_PYTHON", "RT_GPU_COUNT", "RT_SESSION", "RT_RP_ENV_FILE", "RT_REPO_DIR",
               "TMUX_TMPDIR")

FOOTER_RE = re.compile(
    r"^===== (?P<time>\S+) run=(?P<run>\S+) attempt=(?P<attempt>\d+) end state=(?P<state>\w+) "
    r"exit=(?P<exit>\S+) checkpoint=(?P<ckpt>.*) =====$")
HEADER_RE = re.compile(r"^===== (?P<time>\S+) run=(?P<run>\S+) attempt=(?P<attempt>\d+) config=")
SIGTERM_NOTE = "[remote_train] SIGTERM received"
ENDED_NOTE_RE = re.compile(
    r"^\[remote_train\] training ended: state=(?P<state>\w+) exit_code=(?P<exit>\S+) "
    r"last_checkpoint=(?P<ckpt>\S+)")


class LaunchError(UsageError):
    """The pod-side launcher refused to start (its `error:` line says why); exit 2."""


# ---------------------------------------------------------------- results of the stages
@dataclass(frozen=True)
class Launched:
    status: str                    # started | already-running
    run_id: str
    attempt: int
    log: str
    log_offset: int
    resume_from: str | None
    state_file: str
    raw: dict = field(default_factory=dict, compare=False)


@dataclass(frozen=True)
class Ended:
    state: str                     # succeeded | failed | preempted | unknown
    exit_code: int | None
    checkpoint: str | None
    source: str                    # footer | state | note
    started_at: str | None = None
    ended_at: str | None = None


@dataclass(frozen=True)
class Interrupted:
    kind: str                      # preempted | stopped_by_user | stopped_by_runpod | gone | budget | killed
    message: str
    checkpoint: str | None = None


@dataclass(frozen=True)
class Detached:
    pass


# ---------------------------------------------------------------- the recovery seam
@dataclass(frozen=True)
class Decision:
    retry: bool
    exit_code: int = EXIT_POD
    message: str = ""
    prepared: bool = False         # retry: the strategy already made the target reachable again


class Recovery(Protocol):
    def decide(self, interruption: Interrupted, session: "TrainSession") -> Decision: ...


class ReportAndExit:
    """No automatic recovery: say what happened and how to resume, exit 4."""

    def decide(self, interruption: Interrupted, session: "TrainSession") -> Decision:
        ckpt = interruption.checkpoint or session.last_checkpoint
        where = f"the newest complete checkpoint ({ckpt})" if ckpt else "the newest complete checkpoint, if any"
        return Decision(False, EXIT_POD, (
            f"{interruption.message}. Training of run {session.run_id} stopped; its checkpoints are on the "
            f"volume. Resume with `{session.resume_command()}`: it starts the pod again and continues "
            f"from {where}."
        ))


# ---------------------------------------------------------------- output
class Console:
    """Training log lines on stdout; the runner's own messages on stderr, secrets scrubbed."""

    def __init__(self, secrets: tuple[str, ...] = ()):
        self.secrets = secrets

    def say(self, message: str) -> None:
        print(f"[runner] {redact(message, self.secrets)}", file=sys.stderr, flush=True)

    def log_line(self, text: str) -> None:
        sys.stdout.write(text + "\n")
        sys.stdout.flush()


# ---------------------------------------------------------------- watching for the end
class EndWatch:
    """Decides when the followed attempt is over, from the log itself where possible.

    In order of preference: the attempt's footer line (remote_train.sh header); the launcher's
    `[remote_train] training ended: ...` / `SIGTERM received` notes (then up to grace_s more for
    the footer); a header of another run/attempt (ours was superseded); and, as a slow safety
    net, the state file (read every poll_s seconds: each read is a remote command).
    """

    def __init__(self, run_id: str, attempt: int, state_file: str, *, grace_s: float, poll_s: float):
        self.run_id, self.attempt, self.state_file = run_id, attempt, state_file
        self.grace_s, self.poll_s = grace_s, poll_s
        self.footer: Ended | None = None
        self.note: Ended | None = None
        self.from_state: Ended | None = None
        self.superseded = False
        self._note_at: float | None = None
        self._state_at: float | None = None
        self._last_poll = time.monotonic()
        self.extra_check: Callable[[], None] | None = None   # e.g. the budget; may raise

    def feed(self, text: str) -> None:
        if not text.startswith(("=====", "[remote_train]")):
            return
        m = FOOTER_RE.match(text)
        if m:
            if m["run"] == self.run_id and int(m["attempt"]) == self.attempt:
                self.footer = Ended(m["state"], _int(m["exit"]), _path(m["ckpt"]), "footer", ended_at=m["time"])
            return
        m = HEADER_RE.match(text)
        if m:
            if (m["run"], int(m["attempt"])) != (self.run_id, self.attempt):
                self.superseded = True
            return
        m = ENDED_NOTE_RE.match(text)
        if m:
            self.note = Ended(m["state"], _int(m["exit"]), _path(m["ckpt"]), "note")
        elif text.startswith(SIGTERM_NOTE):
            self.note = Ended("preempted", None, None, "note")
        else:
            return
        self._note_at = time.monotonic()

    def should_stop(self, conn: Shell | None) -> bool:
        if self.footer is not None or self.superseded:
            return True
        if self.extra_check is not None:
            self.extra_check()
        now = time.monotonic()
        if self._note_at is not None:
            return now - self._note_at >= self.grace_s
        if self._state_at is not None:
            return now - self._state_at >= self.grace_s
        if conn is None or now - self._last_poll < self.poll_s:
            return False
        self._last_poll = now
        state = self.read_state(conn)
        if state is None:
            return False
        if state.get("run_id") != self.run_id or (state.get("attempt") or 0) > self.attempt:
            self.superseded = True         # another launch replaced ours in the state file
            return True
        if state.get("attempt") == self.attempt and state.get("state") in TERMINAL:
            self.from_state = Ended(state["state"], state.get("exit_code"), state.get("last_checkpoint"),
                                    "state", state.get("started_at"), state.get("ended_at"))
            self._state_at = now
        return False

    def read_state(self, conn: Shell) -> dict | None:
        try:
            # With a timeout: a half-dead link must not hang the follower (it reconnects instead).
            res = conn.run(f"cat -- {shlex.quote(self.state_file)} 2>/dev/null; true", timeout=STATE_CHECK_TIMEOUT_S)
        except SshTimeout:
            conn.close()
            raise SshDisconnected(f"no answer within {STATE_CHECK_TIMEOUT_S:g}s while reading {self.state_file}") from None
        except SshDisconnected:
            raise
        except SshError:
            return None
        return _json(res.stdout.encode()) if res.exit_code == 0 else None

    @property
    def ended(self) -> Ended | None:
        if self.footer or self.from_state or self.note:
            return self.footer or self.from_state or self.note
        return Ended("unknown", None, None, "superseded") if self.superseded else None


def _int(text: str | None) -> int | None:
    try:
        return int(text) if text is not None else None
    except ValueError:
        return None


def _path(text: str | None) -> str | None:
    return None if text in (None, "", "none", "None") else text


def _json(raw: bytes | None) -> dict | None:
    if not raw:
        return None
    try:
        data = json.loads(raw.decode("utf-8", "replace"))
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "unknown"
    s = int(round(seconds))
    h, rest = divmod(s, 3600)
    m, s = divmod(rest, 60)
    return f"{h}h {m:02d}m {s:02d}s" if h else (f"{m}m {s:02d}s" if m else f"{s}s")


def _iso_seconds(start: str | None, end: str | None) -> float | None:
    try:
        a = datetime.fromisoformat(start.replace("Z", "+00:00"))   # type: ignore[union-attr]
        b = datetime.fromisoformat(end.replace("Z", "+00:00"))     # type: ignore[union-attr]
    except (AttributeError, ValueError):
        return None
    return max(0.0, (b - a).total_seconds())


def default_run_id(cfg: TrainConfig) -> str:
    stem = re.sub(r"[^A-Za-z0-9._-]", "-", cfg.name).strip("-._") or "run"
    return f"{stem[:40]}-{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}"


# ---------------------------------------------------------------- the session
class TrainSession:
    def __init__(self, args, settings: Settings, target: Target, cfg: TrainConfig, *,
                 recovery: Recovery | None = None, console: Console | None = None):
        self.args = args
        self.settings = settings
        self.target = target
        self.cfg = cfg
        self.recovery = recovery or ReportAndExit()
        self.console = console or Console(settings.secrets())
        self.run_id: str = args.run_id or default_run_id(cfg)
        self.keep_pod = bool(args.keep_pod) and target.kind == "pod"
        self.last_checkpoint: str | None = None
        self.launch_time: float | None = None
        self.record_paths = runrecord.record_paths(settings.state_dir, settings.stack, target.kind, target.label)
        # Reusing a run id continues its record: attempts accumulate (recovery accounting).
        previous = runrecord.load(self.record_paths, self.run_id) if args.run_id else None
        self.record = previous or runrecord.RunRecord(
            run_id=self.run_id, stack=settings.stack, target=target.kind, target_name=target.label,
            config=cfg.rel_path)
        self.record.config, self.record.output_dir, self.record.workspace = cfg.rel_path, cfg.output_dir, target.workspace
        self.record.pod_id, self.record.keep_pod = target.pod_id, self.keep_pod
        self.record.status, self.record.exit_code = "launching", None
        # Pod time and cost of earlier commands on this run id; the record keeps the run's totals.
        self._base_s, self._base_usd = self.record.pod_seconds or 0.0, self.record.estimated_cost_usd or 0.0
        # Recovery bookkeeping (runner/recovery.py)
        self.recoveries = 0                           # automatic recoveries by this command
        self.progress = Progress(time.time())         # training steps seen in the current attempt
        self.log_path: str | None = None              # where the last printed line came from ...
        self.log_pos: int | None = None               # ... and the offset just after it
        self.detected_at: float | None = None         # when the current interruption was noticed
        self._pending: runrecord.AttemptRecord | None = None   # interrupted attempt, loss not settled yet
        self._recovered: str | None = None            # how the pod came back: resumed | running | recreated
        self._announced: set[tuple[str, int]] = set()
        self._mark_s = self._mark_usd = 0.0           # pod time/cost at the end of the previous attempt
        self._relaunched: Launched | None = None      # set as soon as a launch succeeded

    # -- helpers ----------------------------------------------------------------------------------
    def say(self, message: str) -> None:
        self.console.say(message)

    def stack_flag(self) -> str:
        return f" --stack {self.settings.stack}" if self.settings.sources.get("PULUMI_STACK") == "command line" else ""

    def resume_command(self) -> str:
        where = {"local": " --local", "host": f" --host {self.target.label}"}.get(self.target.kind, "")
        return f"python -m runner train --config {self.cfg.rel_path} --run-id {self.run_id}{where}{self.stack_flag()}"

    def save_record(self) -> None:
        try:
            runrecord.save(self.record_paths, self.record)
        except OSError as e:
            self.say(f"warning: could not write the run record under {self.record_paths.stack_dir} ({e.strerror})")

    def launcher_env(self, repo_url: str, branch: str) -> dict[str, str]:
        env = {
            "RT_WORKSPACE": self.target.workspace,
            "RT_REPO_URL": repo_url,
            "RT_REPO_BRANCH": branch,
            "RT_CONFIG": self.cfg.rel_path,
            "RT_TRAIN_SCRIPT": self.settings.train_script,
            "RT_RUN_ID": self.run_id,
            "RT_STOP_POD": "1" if self.target.stops_pod and not self.keep_pod else "0",
            "RT_ACK_WAIT": "0" if self.args.detach else str(ACK_WAIT_S),
            "RT_SESSION": self.target.session,
        }
        for name in PASSTHROUGH:
            value = os.environ.get(name)
            if value:
                env[name] = value
        return env

    # -- stages -----------------------------------------------------------------------------------
    def launch(self, env: dict[str, str]) -> Launched:
        """Run the launcher once; RT_RESULT as Launched, or LaunchError with its `error:` lines."""
        errors: list[str] = []

        def on_stderr(line: str) -> None:
            if line.startswith("error: "):
                errors.append(line[len("error: "):])
            elif line.strip():
                self.say(f"launcher: {line}")

        with self.target.connect() as conn:
            result = conn.run_script(launcher_text(), env, timeout=LAUNCH_TIMEOUT_S, on_stderr_line=on_stderr)
        data = None
        for line in reversed(result.stdout.splitlines()):
            if line.startswith("RT_RESULT "):
                data = _json(line[len("RT_RESULT "):].encode())
                break
        if result.exit_code != 0 or data is None:
            why = "; ".join(errors) or (result.stderr.strip().splitlines() or [f"exit code {result.exit_code}"])[-1]
            raise LaunchError(f"the launcher on {self.target.label} did not start training: {why}")
        try:
            return Launched(
                status=str(data["status"]), run_id=str(data["run_id"]), attempt=int(data["attempt"]),
                log=str(data["log"]), log_offset=int(data["log_offset"]),
                resume_from=data.get("resume_from") or None,
                state_file=str(data.get("state_file") or f"{self.target.workspace.rstrip('/')}/.runner/state.json"),
                raw=data,
            )
        except (KeyError, TypeError, ValueError):
            raise LaunchError(f"the launcher on {self.target.label} answered an RT_RESULT line without "
                              "run_id/attempt/log/log_offset; is remote/remote_train.sh up to date?") from None

    def follow(self, launched: Launched) -> Ended | Interrupted | Detached:
        watch = EndWatch(launched.run_id, launched.attempt, launched.state_file, grace_s=END_GRACE_S,
                         poll_s=STATE_POLL_S)
        watch.extra_check = self._budget_check
        current: dict[str, Shell | None] = {"conn": None}
        start = self._follow_start(launched)
        # Printed up to here, even before the first line arrives: a preemption may come first.
        self.log_path, self.log_pos = launched.log, start
        if self._pending is not None:
            self._settle_loss(self._pending, launched.resume_from)
            self._pending = None
        self._announce(launched)
        stop_event = threading.Event()
        pod_watch: PodWatch | None = None
        if self.target.kind == "pod":
            pod_watch = PodWatch(self.target.observe, rec.POLL_S, stop_event.set).start()
        self.detected_at = None

        first = {"pending": True}

        def connect() -> Shell:
            current["conn"] = None
            conn = first_connect() if first.pop("pending", False) else self.target.connect()
            current["conn"] = conn
            return conn

        def first_connect() -> Shell:
            """follow_with_reconnect retries only once a first link was up; a link that drops while it
            is being opened (a preemption right after the launch) gets the same treatment here."""
            end = time.monotonic() + MAX_RECONNECT_WAIT_S
            delay, attempt = 0.5, 0
            while True:
                try:
                    return self.target.connect()
                except RETRYABLE as error:
                    attempt += 1
                    if time.monotonic() >= end:
                        raise
                    on_disconnect(error, attempt)          # raises TargetInterrupted when the pod stopped
                    stop_event.wait(delay)                 # the pod watch's verdict ends the wait early
                    delay = min(delay * 2, 5.0)

        def on_line(line: bytes, offset: int) -> None:
            text = line.decode("utf-8", "replace")
            self.console.log_line(text)
            self.log_path, self.log_pos = launched.log, offset
            watch.feed(text)
            self.progress.feed(text)

        def on_disconnect(error: Exception, attempt: int) -> None:
            current["conn"] = None
            if pod_watch is not None and pod_watch.verdict is not None:
                raise interruption(self.target.pod_id, *pod_watch.verdict)
            if attempt == 1:
                self.say(f"SSH link lost ({error}); reconnecting, the log continues where it stopped")
            self.target.after_disconnect(error, attempt, self.say)

        def on_reconnect(_conn: Shell, offset: int) -> None:
            self.say(f"reconnected; following the log from byte {offset}")

        stopped: TargetInterrupted | None = None
        try:
            follow_with_reconnect(
                connect, launched.log, start, on_line,
                should_stop=lambda: watch.should_stop(current["conn"]), stop_event=stop_event,
                on_disconnect=on_disconnect, on_reconnect=on_reconnect,
                max_reconnect_wait_s=MAX_RECONNECT_WAIT_S, stop_check_interval_s=STOP_CHECK_INTERVAL_S,
            )
        except TargetInterrupted as e:
            stopped = e
        except KeyboardInterrupt:
            return Detached()
        finally:
            if pod_watch is not None:
                pod_watch.stop()
        if pod_watch is not None and pod_watch.verdict is not None and watch.footer is None and stopped is None:
            stopped = interruption(self.target.pod_id, *pod_watch.verdict)
        self.detected_at = (pod_watch.detected_at if pod_watch is not None else None) or time.time()
        if stopped is not None:
            if stopped.kind != "budget" and watch.note is not None and watch.note.state != "preempted":
                # The pod stopped itself after training ended, before we read the end (no ack).
                return watch.note
            end = watch.footer or watch.note
            return Interrupted(stopped.kind, stopped.message, end.checkpoint if end else None)
        ended = watch.ended or Ended("unknown", None, None, "state")
        if ended.state == "preempted":
            return self._sigterm(ended)
        return ended

    def _sigterm(self, ended: Ended) -> Interrupted:
        """Training got SIGTERM (the footer says preempted). On the pod the API says by whom: outbid,
        the user (console / `runner stop` stop the container the same way), RunPod, or nobody."""
        t = self.target
        if t.kind != "pod":
            return Interrupted("preempted", f"training on {t.label} received SIGTERM "
                                            "(spot preemption or container stop)", ended.checkpoint)
        self.say("training received SIGTERM; asking RunPod what happened to the pod")
        seen = confirm_interruption(t.observe, deadline_s=rec.CONFIRM_S, poll_s=rec.CONFIRM_POLL_S)
        if seen is None:
            return Interrupted(rec.KILLED, f"training on {t.label} received SIGTERM while the pod kept running",
                               ended.checkpoint)
        e = interruption(t.pod_id, *seen)
        return Interrupted(e.kind, e.message, ended.checkpoint)

    # -- one continuous log across attempts -------------------------------------------------------
    def _follow_start(self, launched: Launched) -> int:
        """Where to follow this attempt from, printing first what lies between the last line
        printed and the attempt's header (the end of an interrupted attempt); never a line twice."""
        pos = self.log_pos if self.log_path == launched.log else None
        if pos is None or launched.log_offset == pos:
            return launched.log_offset
        if launched.log_offset > pos:
            self._print_region(launched.log, pos, launched.log_offset)
            return launched.log_offset
        # The attempt starts before what we printed: attaching again to it skips what was printed;
        # a new attempt there means the log was truncated meanwhile, so its lines are all new.
        return pos if launched.status == "already-running" else launched.log_offset

    def _print_region(self, path: str, start: int, end: int) -> None:
        try:
            with self.target.connect() as conn:
                data = (conn.read_file(path, offset=start) or b"")[:end - start]
        except RunnerError as e:
            self.say(f"could not read the end of the previous attempt ({e.message}); it is in {path}, "
                     f"bytes {start}-{end}")
            return
        lines = data.split(b"\n")
        if lines and lines[-1] == b"":
            lines.pop()
        for line in lines:
            text = line.decode("utf-8", "replace")
            self.console.log_line(text)
            self.progress.feed(text)
        self.log_path, self.log_pos = path, end

    def _announce(self, launched: Launched) -> None:
        """One boundary line per attempt, e.g. `── attempt 3 on pod X (spot, $0.340/h), resumed from checkpoint-120 ──`."""
        key = (launched.run_id, launched.attempt)
        if key in self._announced:
            return
        self._announced.add(key)
        t = self.target
        where = t.label
        if t.kind == "pod":
            price = f", ${t.cost_per_hr:.3f}/h" if t.cost_per_hr else ""
            where = f"pod {t.pod_id} ({t.market}{price})"
        if launched.status == "already-running":
            how = "already running, attached"
        elif launched.resume_from:
            how = f"resumed from {launched.resume_from.rstrip('/').rsplit('/', 1)[-1]}"
        else:
            how = "from scratch"
        self.say(f"── attempt {launched.attempt} on {where}, {how} ──")

    def _budget_check(self) -> None:
        budget = getattr(self.args, "budget_usd", None)
        if not budget or self.target.kind != "pod":
            return
        spent = self.spent(time.time())
        if spent is not None and spent >= budget:
            self.say(f"budget reached: about ${spent:.2f} of ${budget:.2f}; stopping pod {self.target.pod_id}")
            report = self.target.stop_now(self.say)
            self.record.pod_stop = f"{report.text} (budget)"
            raise TargetInterrupted(f"the run reached its budget of ${budget:.2f} (--budget-usd) and pod "
                                    f"{self.target.pod_id} {report.text}", kind="budget")

    def spent(self, until: float | None) -> float | None:
        """Estimated dollars of pod time used by this command, across all its attempts."""
        if self.target.kind != "pod" or until is None:
            return None
        return self.target.spent(until)

    def acknowledge(self, launched: Launched) -> dict | None:
        """Tell the pod we saw the end (it then stops without waiting RT_ACK_WAIT); read the final state."""
        runner_dir = launched.state_file.rsplit("/", 1)[0]
        try:
            with self.target.connect() as conn:
                state = _json(conn.read_file(launched.state_file))
                conn.write_file(f"{runner_dir}/ack", f"{launched.run_id} {launched.attempt}".encode(), mode=0o644)
                return state
        except RunnerError as e:
            self.say(f"could not confirm the end to the pod ({e.message}); it stops itself after "
                     f"{ACK_WAIT_S}s anyway")
            return None

    # -- the whole run ----------------------------------------------------------------------------
    def run(self) -> int:
        t = self.target
        repo_url, branch = t.repo()
        warning = uncommitted_warning(self.cfg, self.settings.project_root)
        if warning:
            self.say(f"warning: {warning}")
        self.save_record()
        t.prepare(self.say)
        env = self.launcher_env(repo_url, branch)
        launched = self._launch_or_release(env)
        while True:
            if self.args.detach:
                return self.detached(launched, by_request=True)
            try:
                outcome = self.follow(launched)
            except KeyboardInterrupt:            # also before the first line: detach all the same
                outcome = Detached()
            if isinstance(outcome, Detached):
                return self.detached(launched, by_request=False)
            if isinstance(outcome, Ended):
                return self.finish(launched, outcome)
            self._interrupted(launched, outcome)
            self._relaunched = None
            try:
                decision = self.recovery.decide(outcome, self)
                if decision.retry:
                    if decision.message:
                        self.say(decision.message)
                    if not decision.prepared:
                        t.prepare(self.say)
                    launched = self._launch_or_release(env, recovering=True)
                    continue
            except KeyboardInterrupt:
                if self._relaunched is not None:      # training runs again: detach as usual
                    return self.detached(self._relaunched, by_request=False)
                return self._abandon_recovery(outcome)
            if self._pending is not None:
                self._settle_loss(self._pending, outcome.checkpoint or self.last_checkpoint)
                self._pending = None
            self.record.status = "preempted" if outcome.kind in rec.RECOVERABLE else "interrupted"
            self.record.exit_code = decision.exit_code
            if outcome.kind == rec.KILLED and not self.keep_pod:
                # The pod still runs but nothing trains on it any more.
                report = t.stop_now(self.say)
                self.record.pod_stop = report.text
                self.say(f"pod {t.pod_id} {report.text}")
            self._close_billing(None)
            self.save_record()
            self.say(decision.message)
            self._print_accounting()
            return decision.exit_code

    def _abandon_recovery(self, outcome: Interrupted) -> int:
        """Ctrl-C during a recovery, before training was relaunched: whatever the recovery resumed,
        started or created would run (and bill) with nothing training on it, so it is stopped
        (not with --keep-pod); then exit 130 with the command that resumes the run."""
        t = self.target
        if self._pending is not None:
            self._settle_loss(self._pending, outcome.checkpoint or self.last_checkpoint)
            self._pending = None
        self._recovered = None
        self.record.status, self.record.exit_code = "interrupted", EXIT_INTERRUPTED
        stopped_at = None
        head = "interrupted during the recovery, before training was relaunched"
        if t.kind != "pod":
            self.say(head)
        elif self.keep_pod:
            self.say(f"{head}: pod {t.pod_id} is left as it is (--keep-pod), with nothing training on it; "
                     f"`python -m runner stop{self.stack_flag()}` stops it")
        else:
            self.say(f"{head}: nothing trains on pod {t.pod_id}; making sure it is stopped")
            report = t.abandon_recovery(self.say)
            self.record.pod_stop, stopped_at = report.text, report.stopped_at
            self.say(f"pod {t.pod_id} {report.text}")
        self._close_billing(stopped_at)
        self.save_record()
        self.say(f"run {self.run_id} is not training; its checkpoints are on the volume. "
                 f"Resume with `{self.resume_command()}`")
        self._print_accounting()
        return EXIT_INTERRUPTED

    def _launch_or_release(self, env: dict[str, str], *, recovering: bool = False) -> Launched:
        """launch(); on failure undo what prepare() started. A Ctrl-C while recovering is left to
        run()'s _abandon_recovery, which also stops a pod the recovery only resumed."""
        self.say(f"launching run {self.run_id}: config {self.cfg.rel_path}, repo {_mask(env['RT_REPO_URL'])} "
                 f"({env['RT_REPO_BRANCH']}), workspace {self.target.workspace}")
        try:
            launched = self.launch(env)
        except (RunnerError, KeyboardInterrupt) as e:
            self.record.status = "failed"
            self.save_record()
            if not (recovering and isinstance(e, KeyboardInterrupt)):
                self.target.release_unused(self.say)
            raise
        self._relaunched = launched
        self.launch_time = self.launch_time or time.time()
        if launched.status == "already-running":
            if launched.run_id != self.run_id:
                self.say(f"training is already running on {self.target.label} (run {launched.run_id}, attempt "
                         f"{launched.attempt}); attaching to it, nothing new was started")
            else:
                self.say(f"run {launched.run_id} attempt {launched.attempt} is already running; attaching to it")
            self._adopt(launched.run_id)
        else:
            resume = f", resuming from {launched.resume_from}" if launched.resume_from else ", from scratch"
            self.say(f"started run {launched.run_id} attempt {launched.attempt}{resume}")
        for skipped in launched.raw.get("skipped_checkpoints") or []:
            self.say(f"skipped incomplete checkpoint {skipped}")
        self.record.log, self.record.state_file = launched.log, launched.state_file
        self.record.status = "running"
        self.record.pod_id = self.target.pod_id
        a = self.record.attempt(launched.attempt)
        if a is None:
            a = runrecord.AttemptRecord(
                attempt=launched.attempt, log_offset=launched.log_offset, resume_from=launched.resume_from,
                status=launched.status, started_at=runrecord.utc_now())
            self.record.attempts.append(a)
        if self.target.kind == "pod":
            a.pod_id, a.market, a.cost_per_hr = self.target.pod_id, self.target.market, self.target.cost_per_hr
        if self._recovered is not None:
            a.recovery = self._recovered
            if self.detected_at is not None:
                a.recovery_s = round(time.time() - self.detected_at, 1)
            self.record.recoveries = (self.record.recoveries or 0) + 1
            self._recovered = None
        self.save_record()
        return launched

    def recovered(self, how: str) -> None:
        """Called by the recovery strategy once the pod is back: resumed | running | recreated."""
        self._recovered = how

    def _adopt(self, run_id: str) -> None:
        """Follow a run this command did not start: its record (if this machine has one) continues."""
        if run_id == self.run_id:
            return
        if not self.record.attempts:
            self.record_paths.run_file(self.run_id).unlink(missing_ok=True)
        previous = runrecord.load(self.record_paths, run_id)
        if previous is not None:
            previous.status = self.record.status
            self.record = previous
        self.run_id = self.record.run_id = run_id

    def _record_attempt_end(self, launched: Launched, state: str, exit_code: int | None,
                            checkpoint: str | None) -> None:
        a = self.record.attempt(launched.attempt)
        if a is not None:
            a.ended_at, a.state, a.exit_code, a.last_checkpoint = runrecord.utc_now(), state, exit_code, checkpoint
        if checkpoint:
            self.last_checkpoint = self.record.last_checkpoint = checkpoint

    def _attempt_costs(self, a: runrecord.AttemptRecord | None, now: float) -> None:
        """Pod time and cost since the previous attempt ended (so a recovery's boot counts for the
        attempt it brought up)."""
        t = self.target
        if t.kind != "pod":
            return
        secs, usd = t.billed_seconds(now), t.spent(now) or 0.0
        if a is not None:
            a.pod_seconds = round(secs - self._mark_s, 1)
            a.cost_usd = round(usd - self._mark_usd, 4)
        self._mark_s, self._mark_usd = secs, usd

    def _interrupted(self, launched: Launched, outcome: Interrupted) -> None:
        """Accounting for an interrupted attempt: what stopped it, pod time, progress (the loss is
        settled once we know which checkpoint the next attempt resumes from)."""
        now = self.detected_at or time.time()
        self._record_attempt_end(launched, outcome.kind, None, outcome.checkpoint)
        if outcome.kind != rec.KILLED:
            self.target.bill_until(now)               # a stopped pod bills nothing until it runs again
        a = self.record.attempt(launched.attempt)
        if outcome.kind in (PREEMPTED, GONE):
            self.record.preemptions = (self.record.preemptions or 0) + 1
        if a is not None:
            a.interruption = outcome.kind
            a.detected_at = runrecord.utc_time(now)
            a.last_step = self.progress.max_step
        self._attempt_costs(a, now)
        self._pending = a
        self._close_billing(now, close=False)
        self.save_record()

    def _settle_loss(self, a: runrecord.AttemptRecord, resume_from: str | None) -> None:
        stopped_at = self.detected_at or time.time()
        steps, seconds = self.progress.lost_since(checkpoint_step(resume_from), stopped_at)
        a.last_step = self.progress.max_step
        a.steps_lost, a.seconds_lost = steps, seconds
        self.record.steps_lost = sum(x.steps_lost or 0 for x in self.record.attempts)
        self.record.seconds_lost = round(sum(x.seconds_lost or 0.0 for x in self.record.attempts), 1)
        self.progress = Progress(time.time())
        self.save_record()

    def _close_billing(self, stopped_at: float | None, *, close: bool = True) -> None:
        """The run's totals in the record: earlier commands on this run id + this one so far.
        close=False counts the open segment without ending it (the pod keeps running)."""
        until = stopped_at or time.time()
        t = self.target
        if t.kind != "pod":
            return
        if close:
            t.bill_until(until)
        self.record.pod_seconds = round(self._base_s + t.billed_seconds(until), 1)
        self.record.cost_per_hr = t.cost_per_hr
        spent = t.spent(until)
        self.record.estimated_cost_usd = round(self._base_usd + spent, 4) if spent is not None else (
            round(self._base_usd, 4) if self._base_usd else None)
        gpus = (t.outputs.gpu_count if getattr(t, "outputs", None) is not None else None) or 1
        self.record.gpu_count = gpus
        self.record.gpu_hours = round(self.record.pod_seconds * gpus / 3600.0, 4)

    def _accounting_rows(self) -> list[tuple[str, str]]:
        r = self.record
        rows: list[tuple[str, str]] = []
        n = len(r.attempts)
        if n > 1 or r.preemptions:
            rows.append(("attempts", f"{n} ({r.preemptions or 0} preemption(s), {r.recoveries or 0} automatic "
                                     "recovery(ies))"))
        if r.steps_lost or r.seconds_lost:
            rows.append(("lost", f"{r.steps_lost or 0} step(s), {_duration(r.seconds_lost)} of training redone "
                                 "after resumes (work since the last checkpoint)"))
        if self.target.kind == "pod" and r.gpu_hours is not None:
            rows.append(("GPU time", f"{r.gpu_hours:.4f} GPU-hours ({_duration(r.pod_seconds)} x {r.gpu_count} GPU)"))
        return rows

    def _print_accounting(self) -> None:
        rows = self._accounting_rows()
        r = self.record
        if self.target.kind == "pod" and r.estimated_cost_usd is not None:
            rows.append(("cost", f"about ${r.estimated_cost_usd:.4f} (estimated, all attempts of run {r.run_id})"))
        for name, value in rows:
            self.say(f"  {name + ':':<12} {value}")

    def detached(self, launched: Launched, *, by_request: bool) -> int:
        self.record.status = "detached"
        self.save_record()
        t = self.target
        head = (f"training runs on {t.label} (run {launched.run_id}, attempt {launched.attempt}); not following it"
                if by_request else
                f"detached: training keeps running on {t.label} (run {launched.run_id}, attempt {launched.attempt})")
        self.say(head)
        if t.kind == "pod":
            self.say("the pod stops itself when training ends" if not self.keep_pod
                     else "the pod keeps running after training (--keep-pod): stop it yourself")
        for what, command in t.hints(self.stack_flag()):
            self.say(f"  {what + ':':<20} {command}")
        return 0 if by_request else EXIT_INTERRUPTED

    def finish(self, launched: Launched, ended: Ended) -> int:
        final = self.acknowledge(launched)
        if final and final.get("run_id") == launched.run_id and final.get("attempt") == launched.attempt \
                and final.get("state") in TERMINAL:
            ended = Ended(final["state"], final.get("exit_code"), final.get("last_checkpoint") or ended.checkpoint,
                          ended.source, final.get("started_at"), final.get("ended_at") or ended.ended_at)
        code = ended.exit_code if isinstance(ended.exit_code, int) else (0 if ended.state == "succeeded" else 1)
        stop = self.target.finish(keep=self.keep_pod, say=self.say, deadline_s=STOP_VERIFY_S)
        self._record_attempt_end(launched, ended.state, code, ended.checkpoint)
        self._attempt_costs(self.record.attempt(launched.attempt), stop.stopped_at or time.time())
        self.record.status = ended.state if ended.state in TERMINAL else "unknown"
        self.record.exit_code = code
        self.record.pod_stop = stop.text if self.target.kind == "pod" else None
        self._close_billing(stop.stopped_at)
        self.save_record()
        self.summary(launched, ended, code, stop)
        return code

    def summary(self, launched: Launched, ended: Ended, code: int, stop: StopReport) -> None:
        t = self.target
        took = _iso_seconds(ended.started_at, ended.ended_at)
        if took is None and self.launch_time is not None:
            took = time.time() - self.launch_time
        verdict = {"succeeded": "training succeeded", "failed": "training FAILED"}.get(ended.state,
                                                                                       f"training ended ({ended.state})")
        self.say(f"{verdict}: exit code {code}")
        rows = [
            ("run", f"{launched.run_id} (attempt {launched.attempt}) on {t.label}"),
            ("duration", _duration(took)),
            ("checkpoint", ended.checkpoint or "none saved"),
        ]
        rows += self._accounting_rows()
        if t.kind == "pod":
            spent = self.record.estimated_cost_usd
            rows.append(("cost", f"about ${spent:.4f} (${t.cost_per_hr or 0:.3f}/h x {_duration(self.record.pod_seconds)} "
                                 "of pod time for this run)" if spent is not None else "unknown (no cost_per_hr)"))
            rows.append(("pod", stop.text))
        rows.append(("log", f"{launched.log} (from byte {launched.log_offset})"))
        for name, value in rows:
            self.say(f"  {name + ':':<12} {value}")
        if not stop.ok:
            self.say(f"WARNING: pod {t.pod_id} may still be running and billing: `python -m runner stop{self.stack_flag()}`")


def launcher_text() -> str:
    return bundle.launcher_script()


def _mask(url: str) -> str:
    return re.sub(r"(://)[^/@]*@", r"\1***@", url)


# ---------------------------------------------------------------- entry point
def run(args, settings: Settings, *, recovery: Recovery | None = None) -> int:
    """`python -m runner train` (dispatched by runner/cli.py)."""
    target = make_target(args, settings)
    _check_workspace(args, target)
    cfg = load_train_config(args.config, settings.project_root)
    target.preflight()                    # pod: keys + stack outputs; never a billable call
    if getattr(args, "keep_pod", False) and target.kind != "pod":
        Console(settings.secrets()).say("--keep-pod only matters for the stack's pod; ignored")
    if recovery is None and target.kind == "pod":
        from runner.recovery import AutoRecovery
        recovery = AutoRecovery(getattr(args, "max_recoveries", 3), getattr(args, "budget_usd", None))
    session = TrainSession(args, settings, target, cfg, recovery=recovery)
    return session.run()


def _check_workspace(args, target: Target) -> None:
    ws = getattr(args, "workspace", None)
    if not ws:
        return
    if target.kind == "local":
        target.workspace = os.path.abspath(os.path.expanduser(ws))
    elif not ws.startswith("/"):
        raise UsageError(f"--workspace must be an absolute path on the {target.kind} (got {ws!r}), e.g. /workspace")


__all__ = ["ACK_WAIT_S", "Decision", "Detached", "Ended", "Interrupted", "Launched", "LaunchError", "Recovery",
           "ReportAndExit", "TrainSession", "run"]
