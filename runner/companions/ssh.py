"""`runner ssh` and `runner ssh-config`: the system ssh (and VS Code, scp, rsync) to the running pod.

Both first connect once with paramiko, which checks the pod's host key against the runner's pin
(runner/remote/hostkeys.py), then write that key into an OpenSSH known_hosts file the runner maintains
(<state dir>/<stack>/ssh_known_hosts) under the alias runpod-<stack>, so the system ssh checks it
with StrictHostKeyChecking=yes. Neither command starts the pod.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from datetime import datetime, timezone
from pathlib import Path

from runner.errors import PodNotRunning, UsageError
from runner.output import plain as _say
from runner.paths import write_private
from runner.pod.link import PodLink, open_pod_link
from runner.remote.hostkeys import HostKey
from runner.remote.openssh import (
    host_alias,
    host_key_algorithms,
    openssh_known_hosts_path,
    openssh_options,
    write_known_hosts,
)
from runner.settings import Settings

# Replaced in tests; never returns in real use.
_exec = os.execvp


def pinned_link(settings: Settings, what: str) -> tuple[PodLink, HostKey, Path]:
    """The running pod, its verified host key, and the refreshed OpenSSH known_hosts file."""
    try:
        link = open_pod_link(settings, start_if_stopped=False)
    except PodNotRunning as e:
        raise PodNotRunning(
            e.summary,
            hint=f"{what} needs a running pod and does not start one (it would bill until stopped). Start it "
            "with `python -m runner train ...` or `python -m runner sync --keep-running`.",
        ) from None
    with link.connect() as conn:
        key = conn.host_key
    known_hosts = write_known_hosts(openssh_known_hosts_path(settings), host_alias(settings), key)
    return link, key, known_hosts


def _destination(link: PodLink) -> tuple[str, str]:
    ep = link.endpoint
    return ep.user or link.outputs.ssh_user, ep.host


def ssh_argv(
    settings: Settings, link: PodLink, key: HostKey, known_hosts: Path, remote_command: list[str] | tuple[str, ...] = ()
) -> list[str]:
    user, host = _destination(link)
    return [
        "ssh",
        *openssh_options(
            key_path=settings.ssh_key_path,
            port=link.endpoint.port,
            known_hosts=known_hosts,
            alias=host_alias(settings),
            key_type=key.key_type,
        ),
        "-t",
        f"{user}@{host}",
        *remote_command,
    ]


def _q(value: str | Path) -> str:
    """An ssh_config value: double-quoted when it has spaces (ssh_config has no other escaping)."""
    text = str(value)
    if '"' in text:
        raise UsageError(f"{text!r} contains a double quote, which an ssh_config file cannot hold; rename it.")
    return f'"{text}"' if any(c.isspace() for c in text) else text


def config_block(
    settings: Settings, link: PodLink, key: HostKey, known_hosts: Path, *, now: datetime | None = None
) -> str:
    user, host = _destination(link)
    alias = host_alias(settings)
    when = (now or datetime.now(timezone.utc)).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        f"# Written by `python -m runner ssh-config` for pod {link.pod_id} (stack {settings.stack}) at {when}.",
        "# RunPod gives the pod a new public port (and host key) on every start: regenerate this block",
        "# after each start (`python -m runner ssh-config --write` updates the Include-able file).",
        f"Host {alias}",
        f"    HostName {host}",
        f"    Port {int(link.endpoint.port)}",
        f"    User {user}",
        f"    IdentityFile {_q(settings.ssh_key_path)}",
        "    IdentitiesOnly yes",
        "    ForwardAgent no",
        f"    UserKnownHostsFile {_q(known_hosts)}",
        "    StrictHostKeyChecking yes",
        f"    HostKeyAlias {alias}",
    ]
    algorithms = host_key_algorithms(key.key_type)
    if algorithms:
        lines.append(f"    HostKeyAlgorithms {algorithms}")
    lines += ["    ServerAliveInterval 15", "    ServerAliveCountMax 4"]
    return "\n".join(lines) + "\n"


def run_ssh_config(args: argparse.Namespace, settings: Settings) -> int:
    link, key, known_hosts = pinned_link(settings, "`runner ssh-config`")
    block = config_block(settings, link, key, known_hosts)
    alias = host_alias(settings)
    if getattr(args, "write", False):
        target = settings.paths.ssh_config
        write_private(target, block)
        print(f"wrote {target} (Host {alias} -> {link.endpoint.host}:{link.endpoint.port}).")
        print(f"Once, put this line at the TOP of ~/.ssh/config (before any Host line):\n    Include {_q(target)}")
        print(f"Then `ssh {alias}` (or VS Code Remote-SSH: {alias}) works; rerun with --write after each pod start.")
        return 0
    sys.stdout.write(block)
    sys.stdout.flush()
    _say(
        f"note: the port changes on every pod start; rerun this then (or use --write with an Include line). "
        f"`ssh {alias}` connects once the block is in ~/.ssh/config."
    )
    return 0


def run_ssh(args: argparse.Namespace, settings: Settings) -> int:
    if shutil.which("ssh") is None:
        raise UsageError("the OpenSSH client `ssh` is not installed on this machine; install it and retry.")
    link, key, known_hosts = pinned_link(settings, "`runner ssh`")
    command = list(getattr(args, "remote_command", None) or [])
    if command[:1] == ["--"]:
        command = command[1:]
    argv = ssh_argv(settings, link, key, known_hosts, command)
    sys.stdout.flush()
    sys.stderr.flush()
    _exec(argv[0], argv)
    return 0


def run(args: argparse.Namespace, settings: Settings) -> int:
    if getattr(args, "command", None) == "ssh-config":
        return run_ssh_config(args, settings)
    return run_ssh(args, settings)
