"""The SSH key a command will use, checked before anything costs money (Settings.require_ssh_key): the
file exists, is a private key's, is readable and loads as the SSH connection will load it (a passphrase
through ssh-agent, damage, an unsupported type). Loading needs paramiko, so a key that loaded once is
remembered per version of its file in the state directory (never anything from the key itself)."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

from runner.errors import SettingsError
from runner.paths import write_private


def checked_key(p: Path, how: str, state_dir: Path) -> Path:
    """The private key file `p` (`how` names the setting in messages), checked: it exists, is a private
    key's file, readable, and loads as the SSH connection will load it. SettingsError otherwise."""
    if p.suffix == ".pub":
        raise SettingsError(f"{how} points at a public key ({p}); set SSH_KEY_PATH to the private key (without .pub).")
    if not p.exists():
        raise SettingsError(
            f"{how} {p} does not exist. Create one with `ssh-keygen -t ed25519 -f {shlex.quote(str(p))}`, add the .pub to "
            "your RunPod account (Settings > SSH Public Keys), or set SSH_KEY_PATH in .runpod.env."
        )
    if not p.is_file():
        raise SettingsError(f"{how} {p} is not a file; set SSH_KEY_PATH to your private key file.")
    try:
        with open(p, "rb") as fh:
            head = fh.read(64)
    except OSError as e:
        raise SettingsError(f"cannot read {how} {p}: {e.strerror}; fix its permissions (chmod 600).") from None
    if b"PRIVATE KEY" not in head:
        raise SettingsError(
            f"{how} {p} does not look like a private key (no 'PRIVATE KEY' header); "
            "set SSH_KEY_PATH to the private half of your key pair."
        )
    _load(p, how, state_dir)
    return p


def _load(p: Path, how: str, state_dir: Path) -> None:
    """Load the key as the SSH connection will (passphrase, damage, unsupported type), once per
    version of the file: the file's identity and times are remembered in the state directory
    (never anything from the key itself), so later commands skip paramiko's import."""
    try:
        st = p.stat()
    except OSError as e:
        raise SettingsError(f"cannot read {how} {p}: {e.strerror}.") from None
    stamp = json.dumps(
        {
            "path": str(p.resolve()),
            "dev": st.st_dev,
            "ino": st.st_ino,
            "size": st.st_size,
            "mtime_ns": st.st_mtime_ns,
            "ctime_ns": st.st_ctime_ns,
        },
        sort_keys=True,
    )
    memo = state_dir / "ssh_key_checked"
    try:
        if memo.read_text() == stamp:
            return
    except OSError:
        pass
    from runner.errors import SshKeyError
    from runner.remote.keys import EncryptedKey, load_private_key, signing_key  # paramiko: only now

    try:
        try:
            load_private_key(p)
        except EncryptedKey:
            with signing_key(p):  # through ssh-agent: checked every time (the agent may drop it)
                return
    except SshKeyError as e:
        raise SettingsError(f"{how}: {e.message}") from None
    try:
        write_private(memo, stamp)
    except OSError:
        pass  # no state dir: check again next time


__all__ = ["checked_key"]
