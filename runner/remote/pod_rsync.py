"""rsync to the pod over the system ssh: its command line, the pinned target, and the speculative start.

runner/companions/sync.py decides where to go (README "`runner sync`"); this module builds what runs:
rsync with `-e 'ssh <exactly the pinned key> <this start's control master>'` (runner/remote/openssh.py,
runner/remote/controlmaster.py) and --rsync-path's wrapper. speculate() starts rsync on the pin of
the pod's last start before the API has answered, its output held back (runner/remote/rsync.py
RsyncRun): the caller releases it once the API agrees, or abandons it.
"""

from __future__ import annotations

import shlex
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from runner.remote.controlmaster import Master, close, close_pod_masters, master_for
from runner.remote.openssh import (
    PublicKey,
    host_alias,
    openssh_options,
    read_pin,
    same_start,
    temporary_known_hosts,
    write_known_hosts,
)
from runner.remote.rsync import NO_DEST, NO_RSYNC, RsyncRun
from runner.settings import Settings

if TYPE_CHECKING:
    from backends.runpod.models import Pod

PARTIAL_DIR = ".rsync-partial"


@dataclass(frozen=True)
class RsyncFlags:
    dry_run: bool
    delete: bool
    progress: bool
    version: tuple[int, ...]  # the local rsync's (only the progress flags depend on it)


def remote_rsync_path(dest: str, *, create: bool, program: str = "rsync") -> str:
    """rsync's --rsync-path: the pod's shell runs it with rsync's server arguments appended.

    It creates the destination (unless `create` is False, for dry runs) and starts rsync, or says on
    stderr, with a marker line, which of the two it could not do; so the common case needs no
    separate SSH session for checks."""
    prog = shlex.quote(program)
    start = f"command -v {prog} >/dev/null 2>&1 || {{ echo {NO_RSYNC} >&2; exit 127; }}; exec {prog}"
    if not create:
        return start
    return f"mkdir -p -- {shlex.quote(dest)} || {{ echo {NO_DEST} >&2; exit 1; }}; {start}"


def rsync_argv(
    source: Path,
    dest: str,
    *,
    ssh_command: list[str],
    destination_host: str,
    user: str,
    dry_run: bool,
    delete: bool,
    progress: bool,
    version: tuple[int, ...],
    rsync_path: str | None = None,
) -> list[str]:
    """The rsync command line. -a keeps times so the next pass skips unchanged files (size+mtime);
    no -z: audio is already compressed. Interrupted files resume from PARTIAL_DIR and appear under
    their real name only when complete, so training never reads a half-written file."""
    argv = [
        "rsync",
        "-a",
        "--no-owner",
        "--no-group",
        "--human-readable",
        "--stats",
        f"--partial-dir={PARTIAL_DIR}",
        "--exclude=.DS_Store",
        "-e",
        shlex.join(ssh_command),
    ]
    if rsync_path:
        argv.append(f"--rsync-path={rsync_path}")
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
    argv += [str(source) + "/", f"{user}@{host}:{dest}/"]
    return argv


@dataclass(frozen=True)
class Endpoint:
    host: str
    port: int
    user: str


@dataclass(frozen=True)
class PinnedPod:
    """Where rsync connects and the one host key the system ssh accepts there."""

    endpoint: Endpoint
    key: PublicKey
    started_at: str | None
    checked_now: bool  # paramiko looked at the server's key in this command (else: pinned earlier)


@dataclass
class PodRsync:
    """The rsync command line for a target, and what its ssh needs while it runs."""

    target: PinnedPod
    argv: list[str]
    master: Master | None
    files: ExitStack = field(default_factory=ExitStack)  # the temporary known_hosts file


@dataclass
class Speculation:
    """An rsync started before the API read, on the pin's key and endpoint; its output held back."""

    prepared: PodRsync
    run: RsyncRun

    def agrees(self, pod: Pod | None, running: bool, ssh_user: str) -> bool:
        """The API shows the pod RUNNING, with the start and the endpoint the speculation assumed."""
        if not running or pod is None or pod.ssh is None:
            return False
        ep, t = pod.ssh, self.prepared.target
        return same_start(pod.started_at, t.started_at) and (ep.host, int(ep.port), ep.user or ssh_user) == (
            t.endpoint.host,
            t.endpoint.port,
            t.endpoint.user,
        )

    def abandon(self) -> None:
        """Stop rsync, close the master it may have opened, remove its files."""
        self.run.abandon()
        if self.prepared.master is not None:
            close(self.prepared.master.path)
        self.prepared.files.close()


def speculate(
    settings: Settings,
    pod_id: str,
    ssh_user: str,
    source: Path,
    dest: str,
    flags: RsyncFlags,
    *,
    program: str = "rsync",
) -> Speculation | None:
    """rsync to where the pod answered with its pinned key during its last start, or None (no such pin)."""
    pin = read_pin(settings, pod_id)
    if pin is None or not pin.host or not pin.port or pin.started_at is None:
        return None
    target = PinnedPod(Endpoint(pin.host, pin.port, ssh_user), pin.key, pin.started_at, checked_now=False)
    prepared = prepare(settings, pod_id, target, source, dest, flags, program=program)
    try:
        return Speculation(prepared, RsyncRun(prepared.argv, held=True))
    except BaseException:
        prepared.files.close()
        raise


def prepare(
    settings: Settings,
    pod_id: str,
    target: PinnedPod,
    source: Path,
    dest: str,
    flags: RsyncFlags,
    *,
    program: str = "rsync",
) -> PodRsync:
    """rsync's command line: the system ssh with exactly the pinned key, through this start's control master."""
    alias = host_alias(settings)
    ep = target.endpoint
    master = master_for(
        settings,
        pod_id,
        started_at=target.started_at,
        host=ep.host,
        port=ep.port,
        user=ep.user,
        key_type=target.key.key_type,
        key=target.key.base64,
    )
    if target.checked_now:  # paramiko (re)pinned: masters of the pod's earlier starts are of no use
        close_pod_masters(settings, pod_id, keep=master.path if master else None)
    files = ExitStack()
    if master is not None:  # kept with the master: OpenSSH may check the key again when it rekeys
        known_hosts = write_known_hosts(master.known_hosts, alias, target.key)
    else:
        known_hosts = files.enter_context(temporary_known_hosts(settings, alias, target.key))
    ssh_command = [
        "ssh",
        "-F",
        "/dev/null",
        *openssh_options(
            key_path=settings.ssh_key_path,
            port=ep.port,
            known_hosts=known_hosts,
            alias=alias,
            key_type=target.key.key_type,
        ),
        "-o",
        "LogLevel=ERROR",
        *(master.options() if master else ()),
    ]
    argv = rsync_argv(
        source,
        dest,
        ssh_command=ssh_command,
        destination_host=ep.host,
        user=ep.user,
        dry_run=flags.dry_run,
        delete=flags.delete,
        progress=flags.progress,
        version=flags.version,
        rsync_path=remote_rsync_path(dest, create=not flags.dry_run, program=program),
    )
    return PodRsync(target, argv, master, files)
