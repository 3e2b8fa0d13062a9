"""The SSH private key: loaded for real, with a message that says how to fix the file.

Used by the connection (runner/remote/ssh.py) and, before any money is spent, by the settings'
pre-flight check (runner/settings.py) and `runner doctor`.

A key file protected by a passphrase is used through ssh-agent (signing_key): the agent's key whose
public half is the file's (read from <key>.pub, or from the OpenSSH format's unencrypted header) signs
for the runner, which never sees the passphrase. Without an agent holding it, the advice is `ssh-add`
or a dedicated key for RunPod, never to strip the passphrase of a key that protects more than pods.
"""

from __future__ import annotations

import base64
import os
import shlex
import struct
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import paramiko
from paramiko.pkey import UnknownKeyType

from runner.errors import SshKeyError


def load_private_key(key_path: str | Path) -> paramiko.PKey:
    """Load an ed25519/RSA/ECDSA private key, or raise SshKeyError saying how to fix the file."""
    path = Path(key_path).expanduser()
    hint = "Set SSH_KEY_PATH in .runpod.env to the private key whose public half is in RunPod's SSH settings"
    if not path.exists():
        raise SshKeyError(
            f"SSH private key {path} does not exist. {hint}, or create one with "
            f"`ssh-keygen -t ed25519 -f {shlex.quote(str(path))}` and register {path}.pub with RunPod."
        )
    if not path.is_file():
        raise SshKeyError(f"SSH private key {path} is not a file. {hint}.")
    try:
        data = path.read_bytes()
    except OSError as e:
        raise SshKeyError(
            f"cannot read SSH private key {path} ({e.strerror}); run as its owner or fix its mode (`chmod 600 {shlex.quote(str(path))}`)."
        ) from None
    if data.lstrip().startswith((b"ssh-", b"ecdsa-")):
        raise SshKeyError(f"{path} is a public key; SSH_KEY_PATH must name the private key (without .pub).")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # cryptography's DSA deprecation: the error below says it
            return paramiko.PKey.from_path(path)
    except (paramiko.PasswordRequiredException, TypeError) as e:
        # cryptography raises TypeError("Password was not given but private key is encrypted")
        if isinstance(e, TypeError) and "encrypted" not in str(e) and "password" not in str(e).lower():
            raise
        raise EncryptedKey(
            f"SSH private key {path} is protected by a passphrase, the runner cannot prompt for it, and no "
            f"ssh-agent holds it. Add it to your agent (`ssh-add {shlex.quote(str(path))}`; the runner then signs through the "
            f"agent), or create a key for RunPod alone: `ssh-keygen -t ed25519 -N '' -f ~/.ssh/runpod_ed25519`, "
            f"register its .pub with RunPod and set SSH_KEY_PATH to it."
        ) from None
    except UnknownKeyType as e:
        kind = getattr(e, "key_type", None)
        name = getattr(kind, "__name__", str(kind or "unknown")).replace("PrivateKey", "")
        raise SshKeyError(
            f"{path} is a {name} key, a type the runner cannot use; supported: ed25519, RSA and ECDSA keys. "
            f"Create one with `ssh-keygen -t ed25519 -N '' -f ~/.ssh/runpod_ed25519` and register its .pub with RunPod."
        ) from None
    except (paramiko.SSHException, ValueError) as e:
        raise SshKeyError(
            f"{path} could not be loaded as a private key: it is damaged, or not a private key the runner can use ({e}); "
            f"supported: ed25519, RSA and ECDSA keys in OpenSSH or PEM format."
        ) from None


class EncryptedKey(SshKeyError):
    """The key file needs a passphrase (and no ssh-agent holds the key)."""


def public_blob(path: Path) -> bytes | None:
    """The public key of a private key file without decrypting it: <path>.pub, else the public key the
    OpenSSH format keeps unencrypted in its header; None when neither can be read."""
    try:
        fields = path.with_name(path.name + ".pub").read_text().split()
        return base64.b64decode(fields[1])
    except (OSError, IndexError, ValueError):
        pass
    try:
        text = path.read_text()
        body = text.split("-----BEGIN OPENSSH PRIVATE KEY-----", 1)[1].split("-----END", 1)[0]
        raw = base64.b64decode("".join(body.split()))
        magic = b"openssh-key-v1\0"
        if not raw.startswith(magic):
            return None
        at = len(magic)
        for _ in range(3):  # ciphername, kdfname, kdfoptions
            (n,) = struct.unpack(">I", raw[at : at + 4])
            at += 4 + n
        at += 4  # the number of keys
        (n,) = struct.unpack(">I", raw[at : at + 4])
        return raw[at + 4 : at + 4 + n] or None
    except (OSError, IndexError, ValueError, struct.error):
        return None


@contextmanager
def signing_key(key_path: str | Path) -> Iterator[paramiko.PKey]:
    """The key that signs for SSH_KEY_PATH: the file itself, or, when it needs a passphrase, ssh-agent's
    key with the same public half (the agent connection is closed when the block ends). SshKeyError
    (EncryptedKey) when neither works."""
    path = Path(key_path).expanduser()
    try:
        yield load_private_key(path)
        return
    except EncryptedKey:
        if not os.environ.get("SSH_AUTH_SOCK"):
            raise
        wanted = public_blob(path)
        if wanted is None:
            raise
        agent = paramiko.Agent()
    try:
        for key in agent.get_keys():
            if key.asbytes() == wanted:
                yield key
                return
        raise EncryptedKey(
            f"SSH private key {path} is protected by a passphrase, and the ssh-agent at SSH_AUTH_SOCK does not "
            f"hold it: `ssh-add {shlex.quote(str(path))}`, or create a key for RunPod alone (`ssh-keygen -t ed25519 -N '' -f "
            "~/.ssh/runpod_ed25519`, its .pub registered with RunPod, SSH_KEY_PATH set to it)."
        )
    finally:
        agent.close()


__all__ = ["EncryptedKey", "load_private_key", "public_blob", "signing_key"]
