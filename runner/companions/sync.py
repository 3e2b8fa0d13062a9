"""`runner sync [PATH]`: upload a local data folder to the network volume with rsync over the pod's SSH.

Semantics (explicit, whatever trailing slash PATH has): the CONTENTS of PATH go into
<workspace>/data/ on the volume. A PATH inside DATA_DIR keeps its place in the tree:
`runner sync data/audio_0` updates <workspace>/data/audio_0/ only (and --delete prunes only there).

The pod is started if needed and, unless --keep-running, stopped again afterwards when this
command started it: syncing data must not leave a GPU billing (docs/guide/data.md, "Does sync leave the pod running?", says why).

How it reaches the pod, cheapest first (a no-op sync should cost little more than rsync itself):
- Speculatively: when the runner pinned the pod's host key during a start and knows where it answered
  (runner/remote/openssh.py read_pin), rsync starts at once, before the RunPod client is even imported,
  on exactly that key (StrictHostKeyChecking=yes: a pod that started again has new keys and is
  refused), its output held back, while the API read runs. If the API says the pod is RUNNING with
  that start and endpoint, the output is released and the sync goes on; otherwise rsync is stopped
  (an interrupted file stays in --partial-dir, never under its real name) and the paths below run.
- One API read. If the pod runs and the runner pinned its host key during this start
  (runner/remote/openssh.py pinned_key_for_start), rsync goes straight to it through the system ssh with
  StrictHostKeyChecking=yes and exactly that key; paramiko is not even imported. rsync itself creates
  the destination and reports a missing rsync on the pod (remote_rsync_path), which is then
  installed over paramiko before one retry.
- rsync's ssh shares one OpenSSH control master per pod start (runner/remote/controlmaster.py), kept
  SSH_CONTROL_PERSIST seconds, so a repeated sync skips the handshake.
- Otherwise (pod stopped, first contact, or started again since the pin: RunPod pods get new host
  keys on every start) the pod is started if needed, paramiko connects and pins or re-pins the key
  (runner/remote/hostkeys.py), checks rsync on the pod through that session, and rsync uses the new pin.
"""

from __future__ import annotations

import argparse
import re
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from remote.podside.contract import VolumePaths

# No infra (the RunPod client, http.client) before the speculative rsync is spawned: imported in run().
from runner.errors import EXIT_INTERRUPTED, EXIT_SSH, RunnerError, UsageError
from runner.output import plain as _say
from runner.pod.stack import read_outputs_for
from runner.pod.stack_outputs import StackOutputs
from runner.remote.controlmaster import close_pod_masters
from runner.remote.openssh import pinned_key_for_start
from runner.remote.pod_rsync import Endpoint, PinnedPod, RsyncFlags, Speculation, prepare, speculate
from runner.remote.rsync import (
    RSYNC_CODES,
    TRANSPORT_CODES,
    RsyncResult,
    local_rsync_version,
    require_local_tools,
    run_rsync,
)
from runner.settings import Settings

if TYPE_CHECKING:
    from backends.runpod.models import Pod
    from runner.pod.pod import StackPod
    from runner.remote.ssh import SshConnection

_SAFE_REMOTE = re.compile(r"^[A-Za-z0-9/._+-]+$")
REMOTE_RSYNC = "rsync"  # the program rsync starts on the pod

# Runs as the pod's SSH user (root on RunPod images). The package lists are often empty in
# RunPod images, so update only when the plain install fails.
INSTALL_RSYNC = (
    "if [ \"$(id -u)\" = 0 ]; then S=; elif command -v sudo >/dev/null 2>&1; then S='sudo -n'; "
    "else echo 'not root and no sudo' >&2; exit 100; fi; "
    "export DEBIAN_FRONTEND=noninteractive; "
    "command -v apt-get >/dev/null 2>&1 || { echo 'no apt-get on this image' >&2; exit 100; }; "
    "$S apt-get install -y -qq rsync >/dev/null 2>&1 || "
    "{ $S apt-get update -qq >/dev/null && $S apt-get install -y -qq rsync >/dev/null; }"
)


class SyncError(RunnerError):
    """rsync could not finish; the message says why and what to do."""


@dataclass(frozen=True)
class SyncPlan:
    source: Path  # local directory whose contents are sent
    dest: str  # remote directory (no trailing slash)
    relative: str  # dest below <workspace>/data ("" = data itself)


def plan(settings: Settings, path_arg: str | None, workspace: str) -> SyncPlan:
    """Check PATH (before anything costs money) and work out where its contents go."""
    data_dir = settings.data_dir
    source = Path(path_arg).expanduser() if path_arg else data_dir
    source = (Path.cwd() / source) if not source.is_absolute() else source
    shown = path_arg or f"{data_dir} (DATA_DIR)"
    if not source.exists():
        hint = (
            "pass the folder to upload (`python -m runner sync PATH`) or set DATA_DIR in .runpod.env"
            if not path_arg
            else "check the path"
        )
        raise UsageError(f"nothing to sync: {shown} does not exist; {hint}.")
    if not source.is_dir():
        raise UsageError(f"{shown} is not a directory; `runner sync` uploads a folder's contents.")
    source = source.resolve()
    relative = ""
    try:
        rel = source.relative_to(data_dir.resolve())
        relative = rel.as_posix() if rel.parts else ""
    except ValueError:
        pass
    remote_data = VolumePaths(workspace).data
    dest = str(PurePosixPath(remote_data) / relative) if relative else remote_data
    if not _SAFE_REMOTE.match(dest):
        raise UsageError(
            f"the remote folder {dest!r} has characters rsync cannot pass safely to the pod; "
            "rename the local folder (letters, digits, '.', '_', '-', '+')."
        )
    return SyncPlan(source=source, dest=dest, relative=relative)


def ensure_remote_rsync(
    conn: SshConnection, *, install_command: str = INSTALL_RSYNC, say=lambda m: None, program: str = "rsync"
) -> None:
    """rsync must exist on the pod too; RunPod images may lack it, so install it quietly."""
    check = f"command -v {shlex.quote(program)} >/dev/null 2>&1"
    if conn.run(check, timeout=60).ok:
        return
    say(f"{program} is missing on the pod; installing it (apt-get install -y {program})")
    res = conn.run(install_command, timeout=600)
    if res.ok and conn.run(check, timeout=60).ok:
        return
    detail = " ".join((res.stderr or res.stdout).strip().splitlines()[-3:]) or f"exit {res.exit_code}"
    raise SyncError(
        f"{program} is not installed on the pod and installing it failed ({detail}). Install it by hand "
        f"(`python -m runner ssh`, then `apt-get update && apt-get install -y {program}`) or use an image "
        f"that has it, then retry.",
    )


def _rsync_failed(code: int) -> SyncError:
    what = RSYNC_CODES.get(code, "see rsync's message above")
    if code in TRANSPORT_CODES:
        return SyncError(
            f"rsync lost the connection to the pod (exit {code}: {what}). Run `python -m runner sync` again: "
            "finished files are skipped and interrupted ones resume.",
            exit_code=EXIT_SSH,
        )
    return SyncError(
        f"rsync failed (exit {code}: {what}). Files already copied stay on the volume; fix the cause "
        "(e.g. permissions, or a full volume: `python -m runner ssh` then `df -h /workspace`) and run the "
        "sync again.",
    )


def run(args: argparse.Namespace, settings: Settings) -> int:
    dry_run = bool(getattr(args, "dry_run", False))
    delete = bool(getattr(args, "delete", False))
    keep_running = bool(getattr(args, "keep_running", False))

    via = getattr(args, "via", None)  # None: S3 when available, else rsync over SSH
    outputs = read_outputs_for(settings) if via != "ssh" else None
    if outputs is not None:
        from runner.volume.s3_config import Unavailable, resolve, say_hint_once

        found = resolve(settings, outputs)
        if isinstance(found, Unavailable) and via is None:  # the common case: no S3 key
            say_hint_once(found, "syncing", settings)  # (runner.volume.sync, with its threads: not imported)
            vs = None
        else:
            from runner.volume.sync import choose, sync_via_s3  # the pod-free path (docs/guide/data.md)

            vs = choose(settings, outputs, via, "syncing")
        if vs is not None:
            sync = plan(settings, getattr(args, "path", None), outputs.workspace)
            return sync_via_s3(
                settings,
                vs,
                sync.source,
                sync.dest,
                dry_run=dry_run,
                delete=delete,
                progress=sys.stderr.isatty() and not dry_run,
            )

    # Everything that can be checked locally is checked before the pod may be started.
    settings.preflight()
    require_local_tools()
    progress = sys.stdout.isatty() and not dry_run
    version = local_rsync_version() if progress else (0,)
    outputs = outputs or read_outputs_for(settings)
    sync = plan(settings, getattr(args, "path", None), outputs.workspace)

    # Before anything else is imported: rsync on the pin of the pod's last start, checked against the API below.
    flags = RsyncFlags(dry_run=dry_run, delete=delete, progress=progress, version=version)
    spec = speculate(settings, outputs.pod_id, outputs.ssh_user, sync.source, sync.dest, flags, program=REMOTE_RSYNC)
    from runner.pod.pod import StackPod
    from runner.pod.state import PodState

    # Read the pod once, before starting it: if the start itself is interrupted, the StackPod knows it
    # must stop it again. No GraphQL history needed: every kind of stopped pod is started the same way.
    try:
        stack_pod = StackPod.of(settings, outputs=outputs)
        seen = stack_pod.look(with_history=False)
    except BaseException:
        if spec is not None:
            spec.abandon()
        raise
    pod = seen.pod
    running = seen.state == PodState.RUNNING
    if spec is not None:
        if spec.agrees(pod, running, outputs.ssh_user):
            return _sync(settings, outputs, spec.prepared.target, sync, flags, spec=spec)
        spec.abandon()  # the pod stopped, started again or moved: the way it went before
    reached = False  # the pod answered and its host key is pinned
    try:
        target = _pinned_target(settings, outputs, pod, running)
        if target is None:
            target = _start_and_pin(settings, stack_pod, keep_running=keep_running)
        reached = True
        return _sync(settings, outputs, target, sync, flags)
    finally:
        if stack_pod.started_here and (not keep_running or not reached):
            close_pod_masters(settings, outputs.pod_id)  # its connection goes before the pod does
            if reached:
                _say(
                    f"stopping pod {outputs.pod_id} again (it was stopped before the sync; "
                    "--keep-running leaves it running)"
                )
            else:
                # Nothing was copied: --keep-running does not keep a pod the sync could not use.
                _say(f"the sync could not use pod {outputs.pod_id}, which it had started: stopping it again")
            note = stack_pod.release()
            if note is not None:
                _say(note)
        elif stack_pod.started_here:
            idle = outputs.idle_stop_after_min
            until = (
                f"it stops itself after {idle:g} min with no training or SSH session"
                if idle > 0
                else "it bills until `python -m runner stop` or the end of the next training run"
            )
            _say(f"pod {outputs.pod_id} keeps running (--keep-running): {until}.")


def _pinned_target(settings: Settings, outputs: StackOutputs, pod: Pod | None, running: bool) -> PinnedPod | None:
    """The running pod and its host key, when the key was pinned during the pod's current start.

    Such a pin also means sshd answered during this start, so there is no banner to wait for."""
    if not running or pod is None or pod.ssh is None:
        return None
    key = pinned_key_for_start(settings, outputs.pod_id, pod.started_at)
    if key is None:
        return None
    ep = Endpoint(pod.ssh.host, int(pod.ssh.port), pod.ssh.user or outputs.ssh_user)
    return PinnedPod(ep, key, pod.started_at, checked_now=False)


def _connect(settings: Settings, outputs: StackOutputs, endpoint: Endpoint, started_at: str | None) -> SshConnection:
    """A paramiko session whose host key check pins, re-pins after a restart, or refuses (runner/remote/hostkeys.py)."""
    from backends.runpod.models import SshEndpoint
    from runner.pod.link import connect_endpoint  # paramiko: only on the paths that need a session

    return connect_endpoint(
        settings,
        SshEndpoint(endpoint.host, endpoint.port, endpoint.user),
        pin_id=outputs.pod_id,
        started_at=started_at,
        outputs=outputs,
    )


def _install_rsync(conn: SshConnection) -> None:
    ensure_remote_rsync(conn, install_command=INSTALL_RSYNC, say=_say, program=REMOTE_RSYNC)


def _start_and_pin(settings: Settings, stack_pod: StackPod, *, keep_running: bool) -> PinnedPod:
    """Start the pod if needed, wait for its sshd, and pin (or re-pin after a restart) its host key with
    paramiko; rsync is checked (and installed) through that session since it is open anyway."""
    outputs = stack_pod.outputs
    running = stack_pod.start_for_command(say=_say)
    ep = running.ssh
    endpoint = Endpoint(ep.host, int(ep.port), ep.user or outputs.ssh_user)
    with _connect(settings, outputs, endpoint, running.pod.started_at) as conn:
        _install_rsync(conn)
        if running.resumed and keep_running:  # left up after the copy: the idle stop covers that
            from runner.pod.idle import ensure_idle_stop

            ensure_idle_stop(conn, outputs, _say)
        key = conn.host_key
    return PinnedPod(endpoint, key, running.pod.started_at, checked_now=True)


def _sync(
    settings: Settings,
    outputs: StackOutputs,
    target: PinnedPod,
    sync: SyncPlan,
    flags: RsyncFlags,
    *,
    spec: Speculation | None = None,
) -> int:
    dry_run = flags.dry_run
    what = "would copy (dry run)" if dry_run else "copying"
    _say(
        f"{what} the contents of {sync.source}/ to {sync.dest}/ on pod {outputs.pod_id}"
        + (" (deleting remote files missing locally)" if flags.delete else "")
    )
    ep = target.endpoint
    prepared = (
        spec.prepared
        if spec is not None
        else prepare(settings, outputs.pod_id, target, sync.source, sync.dest, flags, program=REMOTE_RSYNC)
    )
    with prepared.files:
        try:
            if spec is not None:
                spec.run.release()
                result = spec.run.wait()
            else:
                result = run_rsync(prepared.argv)
            if result.rsync_missing:
                with _connect(settings, outputs, target.endpoint, target.started_at) as conn:
                    _install_rsync(conn)
                result = run_rsync(prepared.argv)
        except KeyboardInterrupt:
            result = RsyncResult(EXIT_INTERRUPTED)
    code = result.code
    if code in (EXIT_INTERRUPTED, 20):
        _say("sync interrupted; run it again to continue (finished files are skipped, partial ones resume).")
        return EXIT_INTERRUPTED
    if result.mkdir_error is not None:
        raise SyncError(
            f"cannot create {sync.dest} on the pod: {result.mkdir_error}. Check the volume "
            "(`python -m runner ssh`, then `ls -ld` the folder and `df -h`) and retry.",
        )
    if result.rsync_missing:
        raise SyncError(
            f"rsync still cannot be started on the pod after installing it; check with "
            f"`python -m runner ssh` (`command -v {REMOTE_RSYNC}`) and retry.",
        )
    if (code == 255 or result.host_key_refused) and not target.checked_now:  # rsync may say 12 for it
        _explain_ssh_failure(settings, outputs, target)
    if result.host_key_refused:
        from runner.errors import HostKeyMismatch

        raise HostKeyMismatch(
            f"ssh refused the host key pod {outputs.pod_id} presented at {ep.host}:{ep.port}: it is not the key "
            "the runner pinned for this start of the pod, so nothing was copied. Run `python -m runner sync` "
            "again; if it happens again, `python -m runner ssh` shows the pinned and the presented key."
        )
    if code != 0:
        raise _rsync_failed(code)
    _say("dry run: nothing was changed." if dry_run else f"synced {sync.source}/ -> {sync.dest}/")
    return 0


def _explain_ssh_failure(settings: Settings, outputs: StackOutputs, target: PinnedPod) -> None:
    """ssh refused or lost the pod with a key pinned earlier: if the pod now shows another host key without
    having restarted, let paramiko's pin check raise its full explanation (HostKeyMismatch)."""
    from runner.errors import HostKeyMismatch, SshError

    try:
        _connect(settings, outputs, target.endpoint, target.started_at).close()
    except HostKeyMismatch:
        raise
    except SshError:
        pass  # unreachable as well: rsync's own error below says what to do
