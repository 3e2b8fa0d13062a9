"""The SSH host keys a pod keeps on its volume, read through RunPod's S3 API: what vouches for the key a
pod presents at the runner's first connection, before any pin exists (runner/remote/hostkeys.py).

The pod's start command (remote/podside/bundle.py, host_key_script) keeps its host keys in
<workspace>/.runner/ssh-host-keys and restores them at every start. S3 is authenticated (HTTPS, the
stack's S3 keys) and only our pods write to the volume, so a server on the path to the pod's SSH port
cannot forge what is read here. Every kept type is read, so that a server cannot dodge the check by
presenting a type the pod does not keep; only the public halves. What is read is data from the pod: a
file that is not one public key line is ignored. Without S3 keys, or with nothing kept, nothing
vouches and the first connection is trust on first use, as before.
"""

from __future__ import annotations

import base64
import binascii

from remote.podside.bundle import HOST_KEY_DIR, HOST_KEY_TYPES
from runner.errors import RunnerError
from runner.output import plain as say
from runner.pod.stack_outputs import StackOutputs
from runner.remote.hostkeys import HostKey, Vouched
from runner.settings import Settings

MAX_PUBLIC_KEY_BYTES = 4096  # an RSA-4096 public key line is ~750 bytes
KEY_TYPES = ("ssh-ed25519", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521", "ssh-rsa")


def _parsed(raw: bytes | None) -> HostKey | None:
    if not raw or len(raw) > MAX_PUBLIC_KEY_BYTES:
        return None
    try:
        key = HostKey.from_line(raw.decode("ascii"))
        base64.b64decode(key.base64, validate=True)
    except (UnicodeDecodeError, ValueError, binascii.Error):
        return None
    return key if key.key_type in KEY_TYPES else None


def kept_host_keys(settings: Settings, outputs: StackOutputs) -> Vouched:
    """A `vouched` for HostKeyStore.policy: the kept public keys, read only when it is called."""

    def read() -> list[HostKey] | None:
        from concurrent.futures import ThreadPoolExecutor

        from runner.volume import read_file

        folder = f"{outputs.workspace.rstrip('/')}/{HOST_KEY_DIR}"
        paths = [f"{folder}/ssh_host_{kind}_key.pub" for kind in HOST_KEY_TYPES]
        try:
            # Side by side: one round trip to S3 at the first connection, not one per key type.
            with ThreadPoolExecutor(len(paths)) as pool:
                found = list(pool.map(lambda path: _parsed(read_file(settings, outputs, path)), paths))
        except RunnerError as e:
            say(
                f"warning: could not read the pod's kept SSH host key through S3 ({e.headline}); trusting it on first use"
            )
            return None
        return [key for key in found if key is not None] or None

    return read


__all__ = ["kept_host_keys"]
