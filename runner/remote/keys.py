"""The SSH private key: loaded for real, with a message that says how to fix the file.

Used by the connection (runner/remote/ssh.py) and, before any money is spent, by the settings'
pre-flight check (runner/settings.py).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import paramiko
from paramiko.pkey import UnknownKeyType

import runner.remote.paramiko_light  # noqa: F401  (before paramiko: no invoke)
from runner.errors import SshKeyError


def load_private_key(key_path: str | Path) -> paramiko.PKey:
    """Load an ed25519/RSA/ECDSA private key, or raise SshKeyError saying how to fix the file."""
    path = Path(key_path).expanduser()
    hint = "Set SSH_KEY_PATH in .runpod.env to the private key whose public half is in RunPod's SSH settings"
    if not path.exists():
        raise SshKeyError(
            f"SSH private key {path} does not exist. {hint}, or create one with "
            f"`ssh-keygen -t ed25519 -f {path}` and register {path}.pub with RunPod."
        )
    if not path.is_file():
        raise SshKeyError(f"SSH private key {path} is not a file. {hint}.")
    try:
        data = path.read_bytes()
    except OSError as e:
        raise SshKeyError(
            f"cannot read SSH private key {path} ({e.strerror}); run as its owner or fix its mode (`chmod 600 {path}`)."
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
        raise SshKeyError(
            f"SSH private key {path} is protected by a passphrase, and the runner cannot prompt for it. "
            f"Use a key without a passphrase for RunPod (`ssh-keygen -t ed25519 -N '' -f ~/.ssh/runpod_ed25519`, "
            f"then register the .pub with RunPod) or remove it with `ssh-keygen -p -f {path}`."
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


__all__ = ["load_private_key"]
