"""`runner sync [PATH]`: upload a local data folder to the network volume with rsync over the pod's SSH.

Semantics (explicit, whatever trailing slash PATH has): the CONTENTS of PATH go into
<workspace>/data/ on the volume. A PATH inside DATA_DIR keeps its place in the tree:
`runner sync data/audio_0` updates <workspace>/data/audio_0/ only (and --delete prunes only there).

The pod is started if needed and, unless --keep-running, stopped again afterwards when this
command started it: syncing data must not leave a GPU billing (docs/companions.md explains why).
"""
from __future__ import annotations

import argparse
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from runner.connect import PodLink, open_pod_link
from runner.errors import EXIT_INTERRUPTED, EXIT_SSH, RunnerError, UsageError
from infra.runpod_client import RunPodError
from runner.errors import from_runpod_error
from runner.pod import STOPPED_STATES, classify, stop_pod
from runner.podfiles import PodPaths, host_alias, openssh_options, temporary_known_hosts
from runner.settings import Settings
from runner.ssh import SshConnection
from runner.stack import read_outputs_for

# rsync exit codes that mean the link/ssh failed rather than a file problem.
_TRANSPORT_CODES = {5, 10, 12, 30, 35, 255}
_RSYNC_CODES = {
    1: "syntax or usage error", 2: "protocol incompatibility", 3: "errors selecting input/output files",
    5: "error starting client-server protocol", 10: "error in socket I/O", 11: "error in file I/O",
    12: "error in rsync protocol data stream", 20: "interrupted", 23: "partial transfer due to error",
    24: "some source files vanished", 30: "timeout in data send/receive", 35: "timeout waiting for daemon",
    255: "ssh failed",
}
PARTIAL_DIR = ".rsync-partial"
_SAFE_REMOTE = re.compile(r"^[A-Za-z0-9/._+-]+$")

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
    source: Path          # local directory whose contents are sent
    dest: str             # remote directory (no trailing slash)
    relative: str         # dest below <workspace>/data ("" = data itself)


def plan(settings: Settings, path_arg: str | None, workspace: str) -> SyncPlan:
    """Check PATH (before anything costs money) and work out where its contents go."""
    data_dir = settings.data_dir
    source = (Path(path_arg).expanduser() if path_arg else data_dir)
    source = (Path.cwd() / source) if not source.is_absolute() else source
    shown = path_arg or f"{data_dir} (DATA_DIR)"
    if not source.exists():
        hint = ("pass the folder to upload (`python -m runner sync PATH`) or set DATA_DIR in .runpod.env"
                if not path_arg else "check the path")
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
    remote_data = PodPaths(workspace).data
    dest = str(PurePosixPath(remote_data) / relative) if relative else remote_data
    if not _SAFE_REMOTE.match(dest):
        raise UsageError(
            f"the remote folder {dest!r} has characters rsync cannot pass safely to the pod; "
            "rename the local folder (letters, digits, '.', '_', '-', '+')."
        )
    return SyncPlan(source=source, dest=dest, relative=relative)


def local_rsync_version(rsync: str = "rsync") -> tuple[int, ...]:
    exe = shutil.which(rsync)
    if exe is None:
        raise UsageError(
            "rsync is not installed on this machine; install it (macOS: `brew install rsync`, "
            "Debian/Ubuntu: `sudo apt-get install rsync`) and retry."
        )
    if shutil.which("ssh") is None:
        raise UsageError("the OpenSSH client `ssh` is not installed on this machine; install it and retry.")
    out = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=30).stdout
    m = re.search(r"version\s+v?(\d+)\.(\d+)(?:\.(\d+))?", out)
    return tuple(int(x) for x in m.groups(default="0")) if m else (0,)


def rsync_argv(
    sync: SyncPlan,
    *,
    ssh_command: list[str],
    destination_host: str,
    user: str,
    dry_run: bool,
    delete: bool,
    progress: bool,
    version: tuple[int, ...],
) -> list[str]:
    """The rsync command line. -a keeps times so the next pass skips unchanged files (size+mtime);
    no -z: audio is already compressed. Interrupted files resume from PARTIAL_DIR and appear under
    their real name only when complete, so training never reads a half-written file."""
    argv = [
        "rsync", "-a", "--no-owner", "--no-group", "--human-readable", "--stats",
        f"--partial-dir={PARTIAL_DIR}", "--exclude=.DS_Store",
        "-e", shlex.join(ssh_command),
    ]
    if progress and not dry_run:
        argv += ["--info=progress2", "--no-inc-recursive"] if version >= (3, 1) else ["--progress"]
    else:
        argv.append("--itemize-changes")
    if dry_run:
        argv.append("--dry-run")
    if delete:
        argv.append("--delete")
    host = f"[{destination_host}]" if ":" in destination_host else destination_host
    # Trailing slashes on both sides: the contents of source go into dest, whatever the user typed.
    argv += [str(sync.source) + "/", f"{user}@{host}:{sync.dest}/"]
    return argv


def ensure_remote_rsync(conn: SshConnection, *, install_command: str = INSTALL_RSYNC,
                        say=lambda m: None, program: str = "rsync") -> None:
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
        exit_code=1,
    )


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def run_rsync(link: PodLink, conn: SshConnection, sync: SyncPlan, *, settings: Settings, dry_run: bool,
              delete: bool, progress: bool, version: tuple[int, ...]) -> int:
    """Run rsync (its output goes straight to our stdout/stderr); returns rsync's exit code."""
    alias = host_alias(settings)
    ep = link.endpoint
    with temporary_known_hosts(settings, alias, conn.host_key) as known_hosts:
        ssh_command = ["ssh", "-F", "/dev/null", *openssh_options(
            key_path=settings.ssh_key_path, port=ep.port, known_hosts=known_hosts, alias=alias,
            key_type=conn.host_key.key_type,
        ), "-o", "LogLevel=ERROR"]
        argv = rsync_argv(sync, ssh_command=ssh_command, destination_host=ep.host,
                          user=ep.user or link.outputs.ssh_user, dry_run=dry_run, delete=delete,
                          progress=progress, version=version)
        sys.stdout.flush()
        sys.stderr.flush()
        return subprocess.run(argv, stdin=subprocess.DEVNULL).returncode


def _rsync_failed(code: int) -> SyncError:
    what = _RSYNC_CODES.get(code, "see rsync's message above")
    if code in _TRANSPORT_CODES:
        return SyncError(
            f"rsync lost the connection to the pod (exit {code}: {what}). Run `python -m runner sync` again: "
            "finished files are skipped and interrupted ones resume.", exit_code=EXIT_SSH)
    return SyncError(
        f"rsync failed (exit {code}: {what}). Files already copied stay on the volume; fix the cause "
        "(e.g. permissions, or a full volume: `python -m runner ssh` then `df -h /workspace`) and run the "
        "sync again.", exit_code=1)


def run(args: argparse.Namespace, settings: Settings) -> int:
    dry_run = bool(getattr(args, "dry_run", False))
    delete = bool(getattr(args, "delete", False))
    keep_running = bool(getattr(args, "keep_running", False))

    # Everything that can be checked locally is checked before the pod may be started.
    settings.preflight()
    version = local_rsync_version()
    outputs = read_outputs_for(settings)
    sync = plan(settings, getattr(args, "path", None), outputs.workspace)

    # Read the pod before starting it: if the start itself is interrupted, we still know we must stop it.
    client = settings.client()
    try:
        before = classify(client.find_pod(outputs.pod_id, with_history=True))
    except RunPodError as e:
        raise from_runpod_error(e, pod_id=outputs.pod_id) from None
    restore_stopped = before in STOPPED_STATES and not keep_running
    try:
        link = open_pod_link(settings, start_if_stopped=True, on_progress=_say, outputs=outputs)
        return _sync(link, sync, settings=settings, dry_run=dry_run, delete=delete, version=version)
    finally:
        if restore_stopped:
            _say(f"stopping pod {outputs.pod_id} again (it was stopped before the sync; "
                 "--keep-running leaves it running)")
            try:
                stop_pod(client, outputs.pod_id)
            except RunnerError as e:
                _say(f"warning: could not stop pod {outputs.pod_id} ({e.message}); it may still be billing: "
                     "run `python -m runner stop`.")
        elif before in STOPPED_STATES:
            _say(f"pod {outputs.pod_id} keeps running (--keep-running): it bills until `python -m runner stop` "
                 "or the end of the next training run.")


def _sync(link: PodLink, sync: SyncPlan, *, settings: Settings, dry_run: bool, delete: bool,
          version: tuple[int, ...]) -> int:
    with link.connect() as conn:
        ensure_remote_rsync(conn, say=_say)
        if not dry_run:
            res = conn.run(f"mkdir -p -- {shlex.quote(sync.dest)}", timeout=60)
            if not res.ok:
                raise SyncError(f"cannot create {sync.dest} on the pod: {res.stderr.strip()}")
        what = "would copy (dry run)" if dry_run else "copying"
        _say(f"{what} the contents of {sync.source}/ to {sync.dest}/ on pod {link.pod_id}"
             + (" (deleting remote files missing locally)" if delete else ""))
        try:
            code = run_rsync(link, conn, sync, settings=settings, dry_run=dry_run, delete=delete,
                             progress=sys.stdout.isatty(), version=version)
        except KeyboardInterrupt:
            code = EXIT_INTERRUPTED
    if code in (EXIT_INTERRUPTED, 20):
        _say("sync interrupted; run it again to continue (finished files are skipped, partial ones resume).")
        return EXIT_INTERRUPTED
    if code != 0:
        raise _rsync_failed(code)
    _say("dry run: nothing was changed." if dry_run else f"synced {sync.source}/ -> {sync.dest}/")
    return 0
