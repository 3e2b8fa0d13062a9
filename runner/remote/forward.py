"""Local port forwarding over an SSH transport (`runner tensorboard`'s tunnel)."""

from __future__ import annotations

import errno
import select
import socket
import threading
from dataclasses import dataclass, field

import paramiko

from runner.errors import PortInUse, SshError

_READ_CHUNK = 65536


@dataclass
class PortForward:
    """A local listener whose connections are tunnelled over SSH (direct-tcpip)."""

    _transport: paramiko.Transport
    requested_port: int
    remote_host: str
    remote_port: int
    target_name: str
    local_port: int = 0
    errors: list[str] = field(default_factory=list)
    _listener: socket.socket | None = None
    _closed: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)

    def start(self) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        # Linux still refuses SO_REUSEADDR binds while another socket listens there, so this only
        # lets us rebind a port whose old connections linger in TIME_WAIT.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", int(self.requested_port)))
            sock.listen(16)
        except OSError as e:
            sock.close()
            if e.errno in (errno.EADDRINUSE, errno.EACCES):
                raise PortInUse(self.requested_port, e.strerror or "") from None
            raise SshError(f"cannot listen on 127.0.0.1:{self.requested_port}: {e}") from None
        self._listener = sock
        self.local_port = sock.getsockname()[1]
        t = threading.Thread(target=self._accept_loop, name=f"forward:{self.local_port}", daemon=True)
        t.start()
        self._threads.append(t)

    def _accept_loop(self) -> None:
        assert self._listener is not None
        while not self._closed.is_set():
            try:
                readable, _, _ = select.select([self._listener], [], [], 0.2)
                if not readable:
                    continue
                client, addr = self._listener.accept()
            except OSError:
                if self._closed.is_set():
                    return
                continue
            t = threading.Thread(target=self._serve, args=(client, addr), daemon=True)
            t.start()
            self._threads.append(t)

    def _serve(self, client: socket.socket, addr) -> None:
        try:
            chan = self._transport.open_channel("direct-tcpip", (self.remote_host, self.remote_port), addr, timeout=20)
        except (paramiko.SSHException, EOFError, OSError) as e:
            self.errors.append(
                f"{self.target_name} could not connect to {self.remote_host}:{self.remote_port} ({e}); "
                f"is the service running on the pod?"
            )
            client.close()
            return
        _pump(client, chan, self._closed)

    def close(self) -> None:
        self._closed.set()
        if self._listener is not None:
            self._listener.close()
        for t in list(self._threads):
            t.join(timeout=5)

    def __enter__(self) -> PortForward:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _pump(client: socket.socket, chan: paramiko.Channel, closed: threading.Event) -> None:
    """Copy bytes both ways until both directions reached EOF (half-closes are passed on)."""
    client_eof = chan_eof = False
    try:
        while not (client_eof and chan_eof) and not closed.is_set():
            watch = [s for s, eof in ((client, client_eof), (chan, chan_eof)) if not eof]
            readable, _, _ = select.select(watch, [], [], 0.5)
            if client in readable:
                data = client.recv(_READ_CHUNK)
                if data:
                    chan.sendall(data)
                else:
                    client_eof = True
                    chan.shutdown_write()
            if chan in readable:
                data = chan.recv(_READ_CHUNK)
                if data:
                    client.sendall(data)
                else:
                    chan_eof = True
                    client.shutdown(socket.SHUT_WR)
    except (OSError, paramiko.SSHException, EOFError):
        pass
    finally:
        chan.close()
        client.close()
