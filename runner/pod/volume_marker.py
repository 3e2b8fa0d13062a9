"""The pod's self-stop marker (<workspace>/.runner/self_stop.json, remote/podside/selfstop.py) read
through RunPod's S3 API, with no pod running: how the runner learns that a stopped spot pod stopped
itself (a detached run's end, the idle stop) rather than being preempted, once GraphQL's status
history is gone. None when S3 is not available for the stack (no keys, a data center without it)."""

from __future__ import annotations

from runner.pod.stack_outputs import StackOutputs
from runner.pod.stops import MarkerReader
from runner.settings import Settings


def lazy_marker(settings: Settings, outputs: StackOutputs) -> MarkerReader:
    """marker_reader, decided only when a marker is first needed (a stopped pod without a stop record):
    commands that never meet one do not pay for finding out whether S3 is available."""
    found: list[MarkerReader | None] = []

    def read() -> dict | None:
        if not found:
            found.append(marker_reader(settings, outputs))
        reader = found[0]
        return reader() if reader is not None else None

    return read


def marker_reader(settings: Settings, outputs: StackOutputs) -> MarkerReader | None:
    from runner.errors import RunnerError
    from runner.volume.s3_config import Unavailable, resolve  # no HTTP code until a marker is actually read

    try:
        if isinstance(resolve(settings, outputs), Unavailable):
            return None
    except RunnerError:
        return None

    def read() -> dict | None:
        from remote.podside.contract import parse_json_object
        from runner.volume import read_file

        try:
            raw = read_file(settings, outputs, outputs.volume_paths.self_stop_marker)
        except RunnerError:
            return None
        return parse_json_object(raw) if raw else None

    return read
