"""RunPod runs a pod's start command at every container start. The stand-in pod is a directory served by
a real sshd, so this thread plays that part for tests and benchmarks: each time the fake RunPod API starts
the pod again (its start count grows and it is RUNNING), the start command `pulumi up` gives the pod
(remote/podside/bundle.py start_command) runs with the pod's environment: RunPod's variables, the pod's
own key, and a no-op for the image's /start.sh. Its host keys go to a folder of the container's own
(RT_SSH_HOST_KEY_DIR, by default <workspace>/../container-etc-ssh), never this machine's /etc/ssh. The
keys an image ships are put there when the object is made (made once per process: ssh-keygen's RSA
takes a while), so a start copies keys and makes none, and a caller timing something builds the object
before its clock starts.

    with ContainerStarts(fake, pod_id, workspace, {"TMUX_TMPDIR": ...}) as starts:
        ...                      # a resume of the pod runs the start command; starts.runs counts them
"""

from __future__ import annotations

import atexit
import os
import shlex
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path

from remote.podside.bundle import HOST_KEY_TYPES, start_command

_IMAGE_KEYS: list[Path] = []


def _image_host_keys() -> Path:
    """A folder with the host keys an image ships (/etc/ssh), made on the first call of this process."""
    if not _IMAGE_KEYS:
        folder = Path(tempfile.mkdtemp(prefix="rt-image-host-keys-"))
        atexit.register(shutil.rmtree, folder, True)
        for kind in HOST_KEY_TYPES:
            key = folder / f"ssh_host_{kind}_key"
            subprocess.run(["ssh-keygen", "-q", "-t", kind, "-N", "", "-f", str(key)], check=True, timeout=60)
        _IMAGE_KEYS.append(folder)
    return _IMAGE_KEYS[0]


class ContainerStarts:
    def __init__(
        self,
        fake,
        pod_id: str,
        workspace: Path,
        environment: dict[str, str] | None = None,
        *,
        host_key_dir: Path | None = None,
    ):
        self.fake, self.pod_id, self.workspace = fake, pod_id, workspace
        self.environment = environment or {}
        self.host_key_dir = host_key_dir or workspace.parent / "container-etc-ssh"
        self.host_key_dir.mkdir(parents=True, exist_ok=True)
        for key in _image_host_keys().iterdir():
            if not (self.host_key_dir / key.name).exists():
                shutil.copy2(key, self.host_key_dir / key.name)
        self.runs = 0
        self.started_at: list[float] = []  # time.time() of each start command run
        self._stop = threading.Event()
        self._seen = 0
        self._thread = threading.Thread(target=self._watch, name="container-starts", daemon=True)

    def __enter__(self) -> ContainerStarts:
        self._seen = self.fake.pods[self.pod_id].start_count
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)

    def _watch(self) -> None:
        while not self._stop.wait(0.05):
            pod = self.fake.pods[self.pod_id]
            if pod.start_count != self._seen and pod.status == "RUNNING":
                self._seen = pod.start_count
                self._start()

    def _start(self) -> None:
        import time

        self.started_at.append(time.time())
        environment = {
            "PATH": os.environ["PATH"],
            "HOME": str(self.workspace.parent),
            "RT_IMAGE_START": "/bin/true",
            "RT_SSH_HOST_KEY_DIR": str(self.host_key_dir),
            "RUNPOD_POD_ID": self.pod_id,
            "RUNPOD_API_KEY": self.fake.pod_api_key(self.pod_id),
            "RUNPOD_REST_URL": self.fake.rest_url,
            **self.environment,
        }
        subprocess.run(shlex.split(start_command(0, str(self.workspace))), env=environment, check=True, timeout=60)
        self.runs += 1


__all__ = ["ContainerStarts"]
