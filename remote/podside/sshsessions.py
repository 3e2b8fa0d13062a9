"""Who is connected to the pod over SSH, for the idle stop (idlewatch.py): authenticated connections only.

The ports: RT_IDLE_SSH_PORTS, else the ones a process named sshd listens on (read from /proc; needs to
see its fds: root on a pod), else 22. A connection to them counts when its socket is held by the sshd
process OpenSSH retitles once the user is authenticated (`sshd: root`, `sshd: root@notty`,
`sshd-session: root@pts/0` from 9.8 on). A TCP connection that never authenticates (`sshd: [accepted]`,
`[net]`, `[priv]`), which anyone on the Internet can open to a pod's public port, does not count. Where
no sshd process is visible (another SSH server, no access to /proc) every ESTABLISHED connection counts:
the safe side.
"""

from __future__ import annotations

import os
import re
from typing import Dict, Iterable, List, Optional, Set

from .contract import Inputs

SSH_PORTS_ENV = Inputs.IDLE_SSH_PORTS
PROC_NET = ("/proc/net/tcp", "/proc/net/tcp6")
TCP_ESTABLISHED, TCP_LISTEN = "01", "0A"


def tcp_sockets(paths: Iterable[str] = PROC_NET) -> List[tuple]:
    """(local port, state hex, inode) of every TCP socket in /proc/net/tcp{,6}."""
    found = []
    for path in paths:
        try:
            with open(path, encoding="ascii", errors="replace") as fh:
                lines = fh.read().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) < 10 or ":" not in fields[1]:
                continue
            try:
                port = int(fields[1].rsplit(":", 1)[1], 16)
            except ValueError:
                continue
            found.append((port, fields[3].upper(), fields[9]))
    return found


def sshd_listen_ports(sockets: List[tuple], proc: str = "/proc") -> Set[int]:
    """Ports that a process named sshd listens on (needs to see its /proc/<pid>/fd: root on a pod)."""
    inodes: Set[str] = set()
    try:
        pids = [p for p in os.listdir(proc) if p.isdigit()]
    except OSError:
        return set()
    for pid in pids:
        try:
            with open(f"{proc}/{pid}/comm", encoding="ascii", errors="replace") as fh:
                if fh.read().strip() != "sshd":
                    continue
            for fd in os.listdir(f"{proc}/{pid}/fd"):
                target = os.readlink(f"{proc}/{pid}/fd/{fd}")
                if target.startswith("socket:["):
                    inodes.add(target[8:-1])
        except OSError:
            continue
    return {port for port, state, inode in sockets if state == TCP_LISTEN and inode in inodes}


def ssh_ports(environ: Dict[str, str], sockets: List[tuple]) -> Set[int]:
    text = environ.get(SSH_PORTS_ENV, "").strip()
    if text:
        return {int(p) for p in text.replace(",", " ").split() if p.isdigit()}
    return sshd_listen_ports(sockets) or {22}


# OpenSSH's title of the process that serves a connection once its user is authenticated: "sshd: <user>"
# (no channel yet: a tunnel-only connection), "sshd: <user>@<tty or notty>" ("sshd-session: ..." from
# 9.8 on). Before authentication every title has a bracketed part: "sshd: [accepted]", "sshd: <user>
# [net]", "sshd: <user> [priv]", "sshd: unknown [preauth]"; the listener's has several words.
AUTHENTICATED_TITLE = re.compile(r"(?:sshd|sshd-session): [^\s\[]\S*\Z")
SSHD_TITLE = re.compile(r"(?:sshd|sshd-session)(?::|\Z)")


def _title(pid: str, proc: str) -> Optional[str]:
    try:
        with open(f"{proc}/{pid}/cmdline", "rb") as fh:
            return fh.read(4096).replace(b"\0", b" ").decode("utf-8", "replace").strip()
    except OSError:
        return None


def _socket_inodes(pid: str, proc: str) -> Optional[Set[str]]:
    try:
        targets = [os.readlink(f"{proc}/{pid}/fd/{fd}") for fd in os.listdir(f"{proc}/{pid}/fd")]
    except OSError:
        return None
    return {t[8:-1] for t in targets if t.startswith("socket:[")}


def ssh_connections(ports: Set[int], sockets: List[tuple], proc: str = "/proc") -> int:
    """Authenticated SSH connections to `ports` (see the module docstring)."""
    established = {inode for port, state, inode in sockets if state == TCP_ESTABLISHED and port in ports}
    if not established:
        return 0
    try:
        pids = [p for p in os.listdir(proc) if p.isdigit()]
    except OSError:
        return len(established)
    seen_sshd, held = False, set()
    for pid in pids:
        title = _title(pid, proc)
        if title is None or not SSHD_TITLE.match(title):
            continue
        seen_sshd = True
        if not AUTHENTICATED_TITLE.match(title):
            continue
        inodes = _socket_inodes(pid, proc)
        if inodes is None:  # a logged-in session whose sockets we cannot see: count it
            return max(1, len(held))
        held |= inodes & established
    return len(held) if seen_sshd else len(established)
