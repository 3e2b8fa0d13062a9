"""`runner logs` and `runner status` on a stopped pod: the log and the run's state read from the volume
through S3 (no pod, no billable call). Each returns None / leaves the report alone when S3 is not
available, after saying once what it would give (runner/volume/s3_config.py say_hint_once)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from remote.podside.contract import parse_json_object
from runner.errors import RunnerError
from runner.output import plain as say
from runner.remote.shell import READ_LIMIT
from runner.termtext import print_log_line
from runner.volume.s3_config import Unavailable, VolumeS3, resolve, say_hint_once

TAIL_CHUNK = 64 * 1024


def _volume(settings, outputs, what: str, *, hint: bool = True) -> VolumeS3 | None:
    """The volume through S3; None when unavailable, after saying once what S3 would give (unless the
    caller's own error will say it: `hint=False`)."""
    found = resolve(settings, outputs)
    if isinstance(found, Unavailable):
        if hint:
            say_hint_once(found, what, settings)
        return None
    return found


def tail_via_s3(client, key: str, n: int) -> tuple[list[bytes], int] | None:
    """The last n whole lines of the object and its size, reading backwards in ranged GETs; None if absent."""
    head = client.head(key)
    if head is None:
        return None
    size = int(head.get("ContentLength", 0))
    start, data = size, b""
    while start > 0 and data.count(b"\n") <= n and size - start < READ_LIMIT:  # bounded: lines may be endless
        start = max(0, start - TAIL_CHUNK)
        data = client.read(key, start=start, limit=size - start) or b""
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    if start > 0 and lines:
        lines = lines[1:]  # the first may be cut off
    return (lines[-n:] if n else []), size


def print_log(settings, outputs, lines: int, follow: bool) -> int | None:
    """The end of the run's log from the volume; None when S3 is not available (the caller says why not)."""
    vs = _volume(settings, outputs, "reading the log of a stopped pod", hint=False)  # logs' error says it
    if vs is None:
        return None
    from runner.volume.s3 import VolumeClient

    path = outputs.volume_paths.log
    found = tail_via_s3(VolumeClient(vs, parallel=1), vs.key_for(path), lines)
    if found is None:
        say(f"[runner] pod {outputs.pod_id} is stopped and the volume has no training log yet ({path}).")
        return 0
    for line in found[0]:
        print_log_line(line)
    say(
        f"[runner] pod {outputs.pod_id} is stopped: this is {path} on the volume, read through RunPod's S3 API"
        + ("; it does not grow until training runs again (`python -m runner train`)." if follow else ".")
    )
    return 0


def fill_status(
    settings, outputs, report: dict[str, Any], training: dict[str, Any], keys: Sequence[str], log_lines: int
) -> None:
    """Put the run's state (<workspace>/.runner/state.json) and the log's end into a `status` report, as
    `source: volume`. `training` is an empty training section to fill; errors go to report["errors"]."""
    vs = _volume(settings, outputs, "showing a stopped pod's run")
    if vs is None:
        return
    from runner.volume.s3 import VolumeClient

    paths = outputs.volume_paths
    client = VolumeClient(vs, parallel=1)
    try:
        state = parse_json_object(client.read(vs.key_for(paths.state_file)))
        tail = tail_via_s3(client, vs.key_for(paths.log), log_lines)
    except RunnerError as e:
        report["errors"].append(f"could not read the run from the volume through S3: {e.message}")
        return
    if state is not None:
        training.update({k: state.get(k) for k in keys})
        training.update(source="volume", newest_checkpoint=state.get("last_checkpoint"), session_running=False)
        report["training"] = training
    if tail is not None:
        report["log"] = {
            "path": paths.log,
            "size": tail[1],
            "tail": [line.decode("utf-8", "replace") for line in tail[0]],
        }
