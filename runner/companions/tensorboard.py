"""`runner tensorboard [--port N] [--config PATH] [--stop-remote]`: TensorBoard of the run, through SSH.

On the pod (runner/companions/tensorboard_server.py): TensorBoard runs in its own tmux session ("tensorboard") on the config's logging_dir
(falling back to output_dir), bound to 127.0.0.1 only, started unless it already runs for that
directory. Locally: a paramiko port forward on 127.0.0.1, the URL printed, until Ctrl-C. If the SSH
link drops the tunnel is rebuilt on the same local port. TensorBoard keeps running on the pod
afterwards (reopening is instant; it costs nothing extra and dies with the pod) unless --stop-remote.
A stopped pod is not started: with RunPod's S3 API the event files come from the volume and TensorBoard
runs on this machine (runner/volume/board.py); without it there is no TensorBoard without a running pod.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

from backends.polling import Backoff
from remote.podside.contract import VolumePaths
from runner import termtext, timeouts
from runner.companions.tensorboard_server import (
    BoardSource,
    RemoteTensorBoard,
    start_remote_tensorboard,
    stop_remote_tensorboard,
)
from runner.errors import RETRYABLE_SSH as RETRYABLE
from runner.errors import PodLeft, PodNotRunning, PortInUse, RunnerError, SshError, UsageError
from runner.output import plain as _say
from runner.pod.link import PodLink, open_pod_link
from runner.pod.stack import read_outputs_for
from runner.remote.forward import PortForward
from runner.remote.ssh import SshConnection
from runner.settings import Settings
from runner.types import Say

DEFAULT_LOCAL_PORT = 6006
LOCAL_PORT_TRIES = 20


# ---------------------------------------------------------------- which directory
def _load_yaml(text: str, where: str) -> dict[str, Any]:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise UsageError(f"{where} is not valid YAML ({e}); fix the config.") from None
    if not isinstance(data, dict):
        raise UsageError(f"{where} is not a YAML mapping of settings; is it a training config?")
    return data


def _read_remote_json(conn: SshConnection, path: str) -> dict[str, Any] | None:
    raw = conn.read_file(path)
    if raw is None:
        return None
    try:
        data = json.loads(raw)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def resolve_target(conn: SshConnection, settings: Settings, paths: VolumePaths, config_arg: str | None) -> BoardSource:
    """The log directory from --config (read locally, else on the pod), else from the pod's last run."""
    state = _read_remote_json(conn, paths.state_file) or {}
    repo_dir = state.get("repo_dir") or paths.default_repo_dir(settings.repo_url)

    def on_pod(config: str) -> str | None:
        if PurePosixPath(config).is_absolute():
            return config
        return str(PurePosixPath(repo_dir) / config) if repo_dir else None

    config: str | None
    if config_arg:
        local = Path(config_arg).expanduser()
        if local.is_file():
            data, where = _load_yaml(local.read_text(encoding="utf-8"), str(local)), str(local)
        else:
            remote = on_pod(config_arg)
            raw = conn.read_file(remote) if remote else None
            if raw is None:
                raise UsageError(
                    f"config {config_arg} exists neither here nor on the pod"
                    + (f" ({remote})" if remote else "")
                    + "; pass the path of a training config."
                )
            data, where = _load_yaml(raw.decode("utf-8", "replace"), f"{remote} on the pod"), f"{remote} (pod)"
        config = config_arg
    else:
        config = state.get("config")
        if not config:
            raise UsageError(
                "no training run on the pod to take the log directory from; "
                "pass the config: `python -m runner tensorboard --config configs/<name>.yaml`."
            )
        remote = on_pod(config)
        raw = conn.read_file(remote) if remote else None
        if raw is None:
            raise UsageError(
                f"the pod's last run used config {config}, which is not on the pod any more; pass one with --config."
            )
        data, where = _load_yaml(raw.decode("utf-8", "replace"), f"{remote} on the pod"), f"{remote} (pod)"
    logdir = data.get("logging_dir") or data.get("output_dir")
    if not isinstance(logdir, str) or not logdir.strip():
        raise UsageError(f"{where} has neither logging_dir nor output_dir; add `logging_dir: logs/<experiment>`.")
    if not PurePosixPath(logdir).is_absolute():
        if not repo_dir:
            raise UsageError(
                f"logging_dir {logdir} is relative to the training repo, whose place on the pod is unknown: "
                "set REPO_URL in .runpod.env (the repo is at <workspace>/<repo name>) or start a run first."
            )
        logdir = str(PurePosixPath(repo_dir) / logdir)
    return BoardSource(logdir=logdir, repo_dir=repo_dir, config=config)


# ---------------------------------------------------------------- the local side
def open_forward(conn: SshConnection, remote_port: int, requested: int | None, *, say: Say = _say) -> PortForward:
    """Forward a local port: `requested` exactly (error if busy), or the first free one from 6006."""
    if requested is not None:
        try:
            return conn.forward_local_port(requested, remote_port)
        except PortInUse:
            raise UsageError(
                f"local port {requested} is already in use (another TensorBoard or tunnel?); choose another "
                f"with --port, or leave --port out to take the next free port from {DEFAULT_LOCAL_PORT}."
            ) from None
    for port in range(DEFAULT_LOCAL_PORT, DEFAULT_LOCAL_PORT + LOCAL_PORT_TRIES):
        try:
            fwd = conn.forward_local_port(port, remote_port)
        except PortInUse:
            continue
        if port != DEFAULT_LOCAL_PORT:
            say(f"local port {DEFAULT_LOCAL_PORT} is in use; using {port} instead")
        return fwd
    raise UsageError(
        f"local ports {DEFAULT_LOCAL_PORT}-{DEFAULT_LOCAL_PORT + LOCAL_PORT_TRIES - 1} are all in use; "
        "pick a free one with --port N."
    )


def _reconnect(link: PodLink, say: Say, stop_event: threading.Event) -> SshConnection | None:
    """A new connection to the pod's current endpoint; None when stop_event was set meanwhile."""
    wait_s = timeouts.current().tensorboard_reconnect_s
    backoff = Backoff(wait_s, first_s=0.5, factor=2.0, cap_s=10.0, sleep=stop_event.wait)
    while not stop_event.is_set():
        try:
            return link.reconnect()
        except PodLeft as e:
            raise PodNotRunning(f"pod {link.pod_id} stopped ({e.shown}); the tunnel is closed.") from None
        except RETRYABLE as e:
            if backoff.remaining <= 0:
                raise SshError(
                    f"could not reconnect to the pod for {wait_s:g}s ({e}); "
                    "run `python -m runner tensorboard` again later."
                ) from None
        backoff.wait()
    return None


def serve(
    link: PodLink,
    config_arg: str | None,
    *,
    requested_port: int | None,
    stop_event: threading.Event,
    on_ready: Callable[[str, RemoteTensorBoard], None],
    stop_remote: bool = False,
    say: Say = _say,
    poll_s: float = 0.5,
) -> None:
    """Run the tunnel until stop_event is set, rebuilding it (same local port) after SSH drops."""
    paths = link.outputs.volume_paths
    conn: SshConnection | None = link.connect()
    local_port = requested_port
    target: BoardSource | None = None
    first = True
    try:
        while conn is not None:
            if target is None:
                target = resolve_target(conn, link.settings, paths, config_arg)
            tb = start_remote_tensorboard(conn, target, paths, say=say)
            with open_forward(conn, tb.port, local_port, say=say) as fwd:
                local_port = fwd.local_port
                url = f"http://127.0.0.1:{local_port}/"
                if first:
                    on_ready(url, tb)
                    first = False
                else:
                    say(f"[runner] tunnel restored: {url}")
                while conn.is_active and not stop_event.wait(poll_s):
                    pass
            if stop_event.is_set():
                if stop_remote and conn.is_active:
                    stop_remote_tensorboard(conn)
                    say("stopped TensorBoard on the pod")
                return
            say("[runner] SSH connection lost; reconnecting...")
            conn.close()
            conn = None
            conn = _reconnect(link, say, stop_event)
    finally:
        if conn is not None:
            conn.close()


def run(args: argparse.Namespace, settings: Settings) -> int:
    port = getattr(args, "port", None)
    settings.preflight()
    outputs = read_outputs_for(settings)
    try:
        link = open_pod_link(settings, start_if_stopped=False, outputs=outputs)
    except PodNotRunning as e:
        from runner.volume import board  # the event files through S3, TensorBoard on this machine

        vs = board.available(settings, outputs)
        if vs is not None:
            return board.serve_local(settings, outputs, vs, getattr(args, "config", None), port, resolve_target)
        from runner.volume.s3_config import why_not

        raise PodNotRunning(
            e.summary,
            hint="TensorBoard needs a running pod and this command does not start one. Its event files stay on the "
            "network volume: run it while training runs (`python -m runner train`), or view them here with the "
            f"pod stopped through RunPod's S3 API ({why_not(settings, outputs)}).",
        ) from None
    stop_event = threading.Event()
    stop_remote = bool(getattr(args, "stop_remote", False))

    def ready(url: str, tb: RemoteTensorBoard) -> None:
        how = "already running" if tb.status == "already-running" else tb.status
        logdir = termtext.for_stream(tb.logdir, sys.stdout, termtext.VALUE)
        print(f"TensorBoard ({how} on pod {link.pod_id}, logdir {logdir}):\n    {url}", flush=True)
        after = (
            "and stops TensorBoard on the pod"
            if stop_remote
            else "(TensorBoard keeps running on the pod; --stop-remote stops it on exit)"
        )
        _say(f"Ctrl-C closes the tunnel {after}.")

    try:
        serve(
            link,
            getattr(args, "config", None),
            requested_port=port,
            stop_event=stop_event,
            on_ready=ready,
            stop_remote=stop_remote,
        )
    except KeyboardInterrupt:
        stop_event.set()
        if stop_remote:
            try:
                with link.connect(timeout=10) as conn:
                    stop_remote_tensorboard(conn)
                _say("stopped TensorBoard on the pod")
            except RunnerError as e:
                _say(f"warning: could not stop TensorBoard on the pod ({e.message})")
        _say("tunnel closed.")
    return 0
