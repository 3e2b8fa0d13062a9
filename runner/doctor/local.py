"""Checks on this machine alone: the settings file, the SSH private key, and its public half
against the public key the stack gives the pod (sshPublicKey / sshPublicKeyPath in Pulumi.<stack>.yaml)."""

from __future__ import annotations

import os
import shlex
import stat

from runner.doctor.check import Check, Context, Prerequisite, fail, named, ok, warn
from runner.doctor.stackconfig import stack_config

EXAMPLE_FIX = "cp .runpod.env.example .runpod.env && chmod 600 .runpod.env, then fill it in"


@named(".runpod.env")
def env_file(ctx: Context) -> Check:
    s = ctx.settings
    name = ".runpod.env"
    if s.env_file is None:
        if s.sources.get("RUNPOD_API_KEY") == "environment":
            return warn(
                name,
                "no .runpod.env in this directory or the project root; settings come from the environment",
                EXAMPLE_FIX + " (so every shell has the same settings)",
            )
        return fail(name, f"no .runpod.env in this directory or in the project root {s.project_root}", EXAMPLE_FIX)
    try:
        mode = stat.S_IMODE(s.env_file.stat().st_mode)
    except OSError as e:
        return fail(name, f"cannot read {s.env_file}: {e.strerror}", f"chmod 600 {shlex.quote(str(s.env_file))}")
    if os.name == "posix" and mode & (stat.S_IRWXG | stat.S_IRWXO):
        return fail(
            name,
            f"{s.env_file} is readable by group or others (mode {mode:04o}) and holds your API key",
            f"chmod 600 {shlex.quote(str(s.env_file))}",
        )
    return ok(name, f"{s.env_file} (mode {mode:04o})")


def _loaded_key(ctx: Context):
    from runner.remote.keys import signing_key

    def load():
        with signing_key(ctx.settings.ssh_key_path) as key:  # the file, or ssh-agent's key for it
            return key

    return ctx.once("ssh_key", load)


@named("SSH private key")
def ssh_key(ctx: Context) -> Check:
    from runner.errors import SshKeyError

    name = "SSH private key"
    path = ctx.settings.ssh_key_path
    try:
        key = _loaded_key(ctx)
    except SshKeyError as e:
        low = e.message.lower()
        if "passphrase" in low:
            fix = (
                f"`ssh-add {shlex.quote(str(path))}` (the runner signs through ssh-agent), or a key for RunPod alone: "
                "`ssh-keygen -t ed25519 -N '' -f ~/.ssh/runpod_ed25519` and set SSH_KEY_PATH to it"
            )
        elif "does not exist" in low:
            fix = f"`ssh-keygen -t ed25519 -N '' -f {shlex.quote(str(path))}`, or set SSH_KEY_PATH in .runpod.env to your private key"
        elif "public key" in low:
            fix = "set SSH_KEY_PATH to the private key (the file without .pub)"
        else:
            fix = "set SSH_KEY_PATH to a working ed25519/RSA/ECDSA private key (`ssh-keygen -t ed25519 -N ''`)"
        return fail(name, e.message, fix)
    return ok(name, f"{path} loads ({key.get_name()}, {key.fingerprint})")


def _line_key(line: str) -> str:
    """`type base64` of an OpenSSH public key line (the comment dropped)."""
    parts = line.strip().split()
    return " ".join(parts[:2])


@named("SSH public key")
def public_key(ctx: Context) -> Check:
    name = "SSH public key"
    try:
        key = _loaded_key(ctx)
    except Exception:
        raise Prerequisite("not checked: the private key did not load") from None
    ours = f"{key.get_name()} {key.get_base64()}"
    cfg = stack_config(ctx)
    if cfg.public_key is None:
        return warn(
            name,
            f"{cfg.describe()} sets neither sshPublicKey nor sshPublicKeyPath",
            f"pulumi config set sshPublicKeyPath {shlex.quote(f'{ctx.settings.ssh_key_path}.pub')}",
        )
    where, text = cfg.public_key
    if text is None:
        return fail(
            name,
            f"{where} cannot be read",
            f"pulumi config set sshPublicKeyPath {shlex.quote(f'{ctx.settings.ssh_key_path}.pub')}",
        )
    if _line_key(text) != ours:
        return fail(
            name,
            f"the public half of SSH_KEY_PATH ({ctx.settings.ssh_key_path}) is not the key the stack gives "
            f"the pod ({where}): SSH to the pod would be refused",
            f"set SSH_KEY_PATH to the private half of {where}, or "
            f"`pulumi config set sshPublicKeyPath {shlex.quote(f'{ctx.settings.ssh_key_path}.pub')}` and `pulumi up` "
            "(a new key replaces the pod; the volume stays)",
        )
    return ok(name, f"matches {where}")


__all__ = ["env_file", "public_key", "ssh_key"]
