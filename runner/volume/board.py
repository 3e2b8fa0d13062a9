"""`runner tensorboard` on a stopped pod: the run's event files from the volume (S3) into a local cache,
then TensorBoard on this machine (`tensorboard --logdir <cache> --host 127.0.0.1`). Until Ctrl-C.

Which directory: the same rule as on a running pod (runner/companions/tensorboard.py resolve_target,
handed in as `resolve`), with the pod's files read through S3. Only TensorBoard's files are fetched
(events.out.tfevents.*, and projector/hparams plugin files next to them), never checkpoints.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from runner.errors import UsageError
from runner.output import plain as say
from runner.output import plural
from runner.safepath import UnsafeName, local_path
from runner.termtext import VALUE, for_stream
from runner.volume.s3_config import Unavailable, VolumeS3
from runner.volume.s3_config import resolve as resolve_s3

INSTALL = "pip install tensorboard"
EVENT_MARK = "tfevents"
DEFAULT_PORT = 6006


class S3Files:
    """read_file(path) over S3: what resolve_target needs from a connection."""

    def __init__(self, client, vs: VolumeS3):
        self.client, self.vs = client, vs

    def read_file(self, path: str, *, offset: int = 0) -> bytes | None:
        try:
            key = self.vs.key_for(path)
        except UsageError:
            return None
        return self.client.read(key, start=offset)


def available(settings, outputs) -> VolumeS3 | None:
    """The volume through S3, or None (tensorboard's error then says why S3 is not there)."""
    found = resolve_s3(settings, outputs)
    return None if isinstance(found, Unavailable) else found


def fetch_events(client, vs: VolumeS3, logdir: str, cache: Path) -> int:
    """Download new or grown event files under logdir into cache; returns how many files the cache has.
    A key that is not a safe relative path below logdir (runner/safepath.py) is left out, with a warning."""
    from runner.volume.transfer import Download, Progress, transfer_all

    prefix = vs.key_for(logdir)
    base = f"{prefix}/"
    wanted = []
    for o in client.list(prefix):
        if EVENT_MARK not in o.key.rsplit("/", 1)[-1] or not o.key.startswith(base):
            continue
        try:
            wanted.append((o, local_path(cache, o.key[len(base) :])))
        except UnsafeName as e:
            say(f"warning: not fetched, a key on the volume that is not a safe relative path: {e.name!r} ({e.why})")
    todo = []
    for o, local in wanted:
        if not (local.is_file() and local.stat().st_size == o.size):
            todo.append(Download(key=o.key, local=local, size=o.size))
    if todo:
        transfer_all(client, downloads=todo, progress=Progress(sum(t.size for t in todo), len(todo), verb="received"))
    return len(wanted)


def serve_local(
    settings, outputs, vs: VolumeS3, config_arg: str | None, port: int | None, resolve_target: Callable[..., Any]
) -> int:
    exe = shutil.which("tensorboard")
    if exe is None:
        raise UsageError(
            f"the pod is stopped, so TensorBoard would run on this machine from the event files on the "
            f"volume, but `tensorboard` is not installed here: `{INSTALL}` (or start the pod with "
            "`python -m runner train` and run this again to use the pod's)."
        )
    from runner.volume.s3 import VolumeClient

    client = VolumeClient(vs)
    source = resolve_target(S3Files(client, vs), settings, outputs.volume_paths, config_arg)
    try:
        cache = local_path(settings.paths.stack_dir / "tensorboard", vs.key_for(source.logdir))
    except UnsafeName as e:
        raise UsageError(
            f"the run's TensorBoard folder {e.name!r} is not a plain folder on the volume ({e.why})."
        ) from None
    cache.mkdir(parents=True, exist_ok=True)
    count = fetch_events(client, vs, source.logdir, cache)
    if count == 0:
        print(
            f"note: no event files under {for_stream(source.logdir, sys.stderr, VALUE)} on the volume yet; "
            "TensorBoard will be empty.",
            file=sys.stderr,
            flush=True,
        )
    chosen = port or DEFAULT_PORT
    print(
        f"TensorBoard (on this machine; the pod is stopped; {plural(count, 'event file')} of "
        f"{for_stream(source.logdir, sys.stdout, VALUE)} fetched "
        f"through RunPod's S3 API into {cache}):\n    http://localhost:{chosen}/",
        flush=True,
    )
    print("Ctrl-C stops it.", file=sys.stderr, flush=True)
    proc = subprocess.Popen(
        [exe, "--logdir", str(cache), "--host", "127.0.0.1", "--port", str(chosen)], stdin=subprocess.DEVNULL
    )
    try:
        return proc.wait()
    except KeyboardInterrupt:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        print("TensorBoard stopped.", file=sys.stderr, flush=True)
        return 0
