"""One SSH connection to the pod (or a --host machine), over paramiko (docs/internals/ssh.md).

Everything the runner does on the pod goes through `SshConnection`: run a command, stream a script
to bash (shell.SCRIPT_COMMAND), follow the training log from a byte offset, read a file, forward a local port.
The host key is checked by a pluggable `HostKeyPolicy` (runner/remote/hostkeys.py pins it per pod).
"""

from __future__ import annotations

import select
import shlex
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

import paramiko

from runner.errors import RemoteFileShrunk, SshDisconnected, SshError, SshTimeout
from runner.remote.hostkeys import HostKey, HostKeyPolicy
from runner.remote.keys import signing_key
from runner.remote.shell import (
    OUTPUT_LIMIT,
    READ_LIMIT,
    SCRIPT_COMMAND,
    LineBuffer,
    LineCallback,
    LineSplitter,
    PartialCallback,
    RunResult,
    build_script,
)
from runner.remote.ssh_handshake import handshake

if TYPE_CHECKING:
    from runner.remote.forward import PortForward


# ---- value types --------------------------------------------------------------------------------
@dataclass(frozen=True)
class SshTarget:
    host: str
    port: int
    user: str
    key_path: str

    def __str__(self) -> str:
        return f"{self.user}@{self.host}:{self.port}"


_READ_CHUNK = 65536

# What to check when nothing answers: the stack's pod, or a machine given with --host.
POD_UNREACHABLE = (
    "Is the pod running and its port 22/tcp exposed? (`python -m runner status` shows the current SSH endpoint)"
)
HOST_UNREACHABLE = (
    "Check --host (USER@HOST[:PORT]): that the machine is up and reachable from here and that "
    "sshd listens on that port."
)


class SshConnection:
    """One authenticated SSH transport. Thread-safe for independent channels (paramiko is)."""

    def __init__(self, target: SshTarget, transport: paramiko.Transport, host_key: HostKey):
        self.target = target
        self.host_key = host_key
        self._transport = transport

    # ---- lifecycle ------------------------------------------------------------------------------
    @classmethod
    def open(
        cls,
        target: SshTarget,
        *,
        host_key_check: HostKeyPolicy,
        timeout: float = 20.0,
        keepalive: int = 15,
        unreachable_hint: str = POD_UNREACHABLE,
    ) -> SshConnection:
        with signing_key(target.key_path) as pkey:  # fails on a bad key before touching the network
            transport, host_key = handshake(target, pkey, host_key_check, timeout, keepalive, unreachable_hint)
        return cls(target, transport, host_key)

    def close(self) -> None:
        self._transport.close()

    def __enter__(self) -> SshConnection:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def is_active(self) -> bool:
        return self._transport.is_active()

    def check_alive(self, timeout: float = 10.0) -> None:
        """Round trip to the server (open + close a channel); SshDisconnected if it does not answer.

        Paramiko's keepalives are fire-and-forget, so a silently dead link (pod host gone, NAT
        dropped) is only noticed by asking for an answer.
        """
        chan = self._open_session(timeout=timeout)
        chan.close()

    def _disconnected(self, what: str) -> SshDisconnected:
        reason = self._transport.get_exception()
        # Some exceptions say nothing (EOFError()): name them rather than print "()".
        text = (
            (
                str(reason).strip()
                or {"EOFError": "the server closed the connection"}.get(type(reason).__name__, type(reason).__name__)
            )
            if reason is not None
            else ""
        )
        return SshDisconnected(
            f"lost the SSH connection to {self.target} while {what}" + (f" ({text})" if text else "")
        )

    def _open_session(self, timeout: float = 20.0) -> paramiko.Channel:
        if not self._transport.is_active():
            raise self._disconnected("opening a channel")
        try:
            return self._transport.open_session(timeout=timeout)
        except (paramiko.SSHException, EOFError, OSError) as e:
            if not self._transport.is_active() or "Timeout" in str(e):
                self._transport.close()
                raise self._disconnected("opening a channel") from None
            raise SshError(f"{self.target} refused a new session ({e})") from None

    def _transport_died(self, chan: paramiko.Channel) -> bool:
        """After a channel closed without an exit status: was it the link (vs. a signal)?"""
        if not self._transport.is_active():
            return True
        # The transport thread closes its channels just before it marks itself inactive.
        self._transport.join(timeout=1.0)
        return not self._transport.is_active()

    # ---- commands -------------------------------------------------------------------------------
    def run(
        self,
        command: str,
        *,
        stdin: bytes | None = None,
        timeout: float | None = None,
        on_stdout_line: LineCallback | None = None,
        on_stderr_line: LineCallback | None = None,
    ) -> RunResult:
        """Run a shell command line; the caller quotes every value in it (shlex.quote).

        stdin is sent then closed (EOF). With on_*_line callbacks, output lines are also delivered
        as they arrive (decoded, without newline). timeout: SshTimeout after that many seconds (the
        channel is closed; the remote process gets SIGPIPE on its next write).
        """
        status, out, err = self._exec(
            command,
            stdin=stdin,
            timeout=timeout,
            on_stdout=LineSplitter(on_stdout_line),
            on_stderr=LineSplitter(on_stderr_line),
        )
        return RunResult(status, out.decode("utf-8", "replace"), err.decode("utf-8", "replace"))

    def _exec(
        self,
        command: str,
        *,
        stdin: bytes | None = None,
        timeout: float | None = None,
        on_stdout: LineSplitter | None = None,
        on_stderr: LineSplitter | None = None,
    ) -> tuple[int, bytes, bytes]:
        on_stdout = on_stdout or LineSplitter(None)
        on_stderr = on_stderr or LineSplitter(None)
        chan = self._open_session()
        try:
            try:
                chan.exec_command(command)
            except (paramiko.SSHException, EOFError, OSError):
                if not self._transport.is_active():
                    raise self._disconnected(f"starting `{_short(command)}`") from None
                raise
            writer = threading.Thread(target=_send_stdin, args=(chan, stdin or b""), daemon=True)
            writer.start()
            out, err = bytearray(), bytearray()
            deadline = None if timeout is None else time.monotonic() + timeout
            while True:
                while chan.recv_ready():
                    data = chan.recv(_READ_CHUNK)
                    out += data
                    on_stdout.feed(data)
                while chan.recv_stderr_ready():
                    data = chan.recv_stderr(_READ_CHUNK)
                    err = (err + data)[-OUTPUT_LIMIT:]  # only its end is ever shown
                    on_stderr.feed(data)
                if len(out) > OUTPUT_LIMIT:
                    raise SshError(
                        f"`{_short(command)}` on {self.target} printed more than {OUTPUT_LIMIT // 2**20} MiB; "
                        "the runner reads no more than that"
                    )
                finished = chan.exit_status_ready() and (chan.eof_received or chan.closed)
                if finished and not chan.recv_ready() and not chan.recv_stderr_ready():
                    break
                if deadline is not None and time.monotonic() > deadline:
                    raise SshTimeout(f"`{_short(command)}` on {self.target} did not finish within {timeout:g}s")
                wait = 1.0 if deadline is None else max(0.0, min(1.0, deadline - time.monotonic()))
                if chan.eof_received:
                    # Output is over, but the process may still run: the channel stays readable
                    # (EOF) from here on, so wait for the exit status instead of spinning on select.
                    chan.status_event.wait(wait)
                else:
                    select.select([chan], [], [], wait)
            on_stdout.flush()
            on_stderr.flush()
            status = chan.exit_status
            if status == -1 and self._transport_died(chan):
                raise self._disconnected(f"running `{_short(command)}`")
            return status, bytes(out), bytes(err)
        finally:
            chan.close()

    def run_script(
        self,
        script_text: str,
        env: Mapping[str, str],
        *,
        timeout: float | None = None,
        on_stdout_line: LineCallback | None = None,
        on_stderr_line: LineCallback | None = None,
    ) -> RunResult:
        """Run a bash script with environment values, nothing but SCRIPT_COMMAND on the command line.

        The values travel inside the script on stdin as `export NAME=<shlex-quoted value>`, so
        they never show up in the pod's process list or sshd logs and cannot inject commands.
        """
        payload = build_script(script_text, env)
        return self.run(
            SCRIPT_COMMAND,
            stdin=payload,
            timeout=timeout,
            on_stdout_line=on_stdout_line,
            on_stderr_line=on_stderr_line,
        )

    def read_file(self, path: str, *, offset: int = 0, limit: int = READ_LIMIT) -> bytes | None:
        """At most `limit` bytes of the remote file from `offset` on, or None if it does not exist."""
        q = shlex.quote(path)
        code, out, err = self._exec(
            f"if [ ! -e {q} ]; then exit 44; fi; tail -c +{int(offset) + 1} -- {q} | head -c {int(limit)}"
        )
        if code == 44:
            return None
        if code != 0:
            raise SshError(f"cannot read {path} on {self.target}: {err.decode(errors='replace').strip()}")
        return out

    def write_file(self, path: str, data: bytes, *, mode: int = 0o644) -> None:
        """Write a remote file atomically (temp file in the same directory, then mv)."""
        q, tmp = shlex.quote(path), shlex.quote(f"{path}.tmp-{threading.get_ident()}")
        res = self.run(f"umask 077 && cat > {tmp} && chmod {mode:o} {tmp} && mv -f {tmp} {q}", stdin=data)
        if not res.ok:
            raise SshError(f"cannot write {path} on {self.target}: {res.stderr.strip()}")

    # ---- following a growing file ---------------------------------------------------------------
    def follow(
        self,
        path: str,
        offset: int = 0,
        *,
        should_stop: Callable[[], bool] | None = None,
        tick_s: float = 0.25,
        liveness_probe_s: float = 20.0,
        liveness_timeout_s: float = 15.0,
        on_partial: PartialCallback | None = None,
    ) -> Iterator[tuple[bytes, int]]:
        """Stream a remote file from byte `offset` on, forever (until should_stop() or the caller stops).

        Yields (line, next_offset): each whole line without its b"\\n", and the byte offset just
        after it (where to resume). A partial last line is held back until its newline arrives.
        on_partial(bytes) is called with the unfinished last line so far whenever it grew (a progress
        bar redrawn with \\r); it is never counted in the offsets.
        Waits for the file if it does not exist yet. should_stop is polled every tick_s seconds and
        after each batch of lines; the iterator then just ends. Raises SshDisconnected if the link
        drops, or stops answering: after liveness_probe_s without data we ask the server for a round
        trip, and give up on the link if none comes back within liveness_timeout_s.

        Remote side: `tail -c +N -F` rather than a shell loop: inotify-driven (no polling delay for
        an existing file), waits for a missing file (polling every 0.25 s), is in coreutils on every
        image, and exits by itself when our end of the pipe goes away. The byte counting happens
        here, so resuming needs nothing but the offset.
        """
        offset = int(offset)
        q = shlex.quote(path)
        command = (
            f'if [ -e {q} ] && [ "$(stat -c %s -- {q})" -lt {offset} ]; then '
            f"echo 'file is shorter than the offset' >&2; exit 65; fi; "
            f"exec tail -s 0.25 -c +{offset + 1} -F -- {q}"
        )
        chan = self._open_session()
        try:
            try:
                chan.exec_command(command)
                chan.shutdown_write()
            except (paramiko.SSHException, EOFError, OSError):
                raise self._disconnected(f"starting to follow {path}") from None
            lines = LineBuffer(offset)
            stderr_tail = b""
            last_rx = time.monotonic()
            while True:
                got = False
                data = b""
                while chan.recv_ready():
                    data += chan.recv(_READ_CHUNK)
                    got = True
                while chan.recv_stderr_ready():
                    stderr_tail = (stderr_tail + chan.recv_stderr(_READ_CHUNK))[-2000:]
                if got:
                    last_rx = time.monotonic()
                    yield from lines.feed(data)
                    if on_partial is not None and lines.pending:
                        on_partial(lines.pending)
                if should_stop is not None and should_stop():
                    return
                if chan.closed or chan.exit_status_ready() or (chan.eof_received and not chan.recv_ready()):
                    chan.status_event.wait(5)  # after EOF the exit status follows (or the close)
                    status = chan.exit_status
                    if status == -1 and self._transport_died(chan):
                        raise self._disconnected(f"following {path}")
                    detail = stderr_tail.decode(errors="replace").strip()
                    if status == 65:
                        raise RemoteFileShrunk(
                            f"{path} on {self.target} is shorter than offset {offset}: it was replaced or "
                            f"truncated, so resuming there would skip or repeat lines. Follow it from 0."
                        )
                    raise SshError(f"following {path} on {self.target} stopped (tail exit {status}): {detail}")
                if time.monotonic() - last_rx > liveness_probe_s:
                    self.check_alive(timeout=liveness_timeout_s)
                    last_rx = time.monotonic()
                select.select([chan], [], [], tick_s)
        finally:
            chan.close()

    # ---- port forwarding ------------------------------------------------------------------------
    def forward_local_port(self, local_port: int, remote_port: int, remote_host: str = "127.0.0.1") -> PortForward:
        """Listen on 127.0.0.1:local_port (0 = pick a free one) and tunnel each connection to
        remote_host:remote_port as seen from the pod. Use as a context manager; `.local_port`."""
        from runner.remote.forward import PortForward  # only `runner tensorboard` forwards a port

        fwd = PortForward(self._transport, local_port, remote_host, remote_port, str(self.target))
        fwd.start()
        return fwd


def _send_stdin(chan: paramiko.Channel, data: bytes) -> None:
    try:
        if data:
            chan.sendall(data)
        chan.shutdown_write()
    except (paramiko.SSHException, EOFError, OSError):
        pass  # the reader side notices the closed channel / dead transport


def _short(command: str, limit: int = 60) -> str:
    first = command.splitlines()[0] if command else ""
    return first if len(first) <= limit else first[: limit - 3] + "..."
