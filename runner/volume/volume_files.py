"""Small files of the run on the volume (the state, the spec, the hold, the event log), read the cheapest
way there is: over SSH while the pod runs, through RunPod's S3 API while it is stopped (when S3 keys are
set). Never starts the pod. What comes back is data from the pod: bytes, capped in size, parsed by the
caller as untrusted JSON.

    with VolumeFiles.open(settings, outputs) as files:
        data = files.read(paths.events_file(run_id))     # bytes, None (no such file), or raises
        files.how                                        # "ssh" | "s3" | None (neither possible)
"""

from __future__ import annotations

import base64
import shlex
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from runner.errors import PodNotRunning, RunnerError, SshError

if TYPE_CHECKING:
    from runner.pod.stack_outputs import StackOutputs
    from runner.remote.ssh import SshConnection
    from runner.settings import Settings
    from runner.volume.s3 import VolumeClient
    from runner.volume.s3_config import VolumeS3

MAX_BYTES = 4 * 1024 * 1024


@dataclass
class VolumeFiles:
    how: str | None  # "ssh" | "s3" | None
    why_not: str = ""  # when how is None: what would make the files readable
    _conn: SshConnection | None = field(default=None, repr=False)
    _s3: VolumeClient | None = field(default=None, repr=False)
    _vs: VolumeS3 | None = field(default=None, repr=False)

    @classmethod
    def open(cls, settings: Settings, outputs: StackOutputs) -> VolumeFiles:
        from runner.pod.link import open_pod_link

        try:
            link = open_pod_link(settings, start_if_stopped=False, outputs=outputs)
        except PodNotRunning as e:
            from runner.volume.s3_config import Unavailable, resolve

            found = resolve(settings, outputs)
            if isinstance(found, Unavailable):
                return cls(None, f"{e.summary}; {found.hint('reading the volume').removeprefix('note: ')}")
            from runner.volume.s3 import VolumeClient

            return cls("s3", _s3=VolumeClient(found, parallel=1), _vs=found)
        return cls("ssh", _conn=link.connect())

    def read(self, path: str) -> bytes | None:
        if self.how == "ssh":
            assert self._conn is not None
            q = shlex.quote(path)
            res = self._conn.run(
                f"if [ ! -e {q} ]; then exit 44; fi; head -c {MAX_BYTES} -- {q} | base64 | tr -d '\\n'", timeout=60
            )
            if res.exit_code == 44:
                return None
            if not res.ok:
                raise SshError(f"cannot read {path} on the pod: {res.stderr.strip() or f'exit {res.exit_code}'}")
            try:
                return base64.b64decode(res.stdout.strip(), validate=True)
            except ValueError:
                raise SshError(f"unexpected answer while reading {path} on the pod") from None
        if self.how == "s3":
            assert self._s3 is not None and self._vs is not None
            data = self._s3.read(self._vs.key_for(path))
            return data[:MAX_BYTES] if data is not None else None
        raise RunnerError(f"cannot read {path}: {self.why_not}")

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def __enter__(self) -> VolumeFiles:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


__all__ = ["MAX_BYTES", "VolumeFiles"]
