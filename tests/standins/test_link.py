"""The shaped link (standins/link.py): delay and bandwidth are applied, it is bounded, it lives on
127.0.0.1 only, and it stops by itself. Lower bounds only: a loaded machine may add time, never remove it."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest

from standins.link import PROFILES, Link, LinkError, Profile
from standins.waiting import wait_for


class EchoServer:
    """Echoes what it gets; `BULK n` answers n bytes."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.conns: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(c)
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    @staticmethod
    def _serve(c: socket.socket) -> None:
        with c:
            while True:
                try:
                    data = c.recv(65536)
                except OSError:
                    return
                if not data:
                    return
                if data.startswith(b"BULK "):
                    c.sendall(b"x" * int(data.split()[1]))
                else:
                    c.sendall(data)

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def echo() -> Iterator[EchoServer]:
    server = EchoServer()
    yield server
    server.close()


def connect(port: int) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", port), timeout=30)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def round_trip(s: socket.socket, payload: bytes = b"ping") -> float:
    t = time.monotonic()
    s.sendall(payload)
    got = b""
    while len(got) < len(payload):
        got += s.recv(65536)
    return time.monotonic() - t


def test_delay_is_applied_each_way_and_a_new_connection_pays_a_handshake(echo):
    with Link(Profile("t", 0.2)) as link:
        port = link.forward(echo.port)
        t = time.monotonic()
        with connect(port) as s:
            first = round_trip(s)
            later = [round_trip(s) for _ in range(3)]
        assert time.monotonic() - t >= 0.4  # handshake + the first exchange
        assert first >= 0.4 - 0.005
        assert all(x >= 0.2 - 0.005 for x in later), later
        stats = link.stats()[echo.port]
        assert stats.connections == 1 and stats.exchanges == 4
        assert stats.up == stats.down == 16


def test_bandwidth_cap_is_applied_and_shared_by_connections(echo):
    rate = 8e6  # 1 MB/s
    with Link(Profile("t", 0.0, rate, rate)) as link:
        port = link.forward(echo.port)
        size = 500_000

        def fetch(out: list) -> None:
            with connect(port) as s:
                s.sendall(f"BULK {size}".encode())
                got = 0
                while got < size:
                    got += len(s.recv(65536))
                out.append(got)

        done: list[int] = []
        t = time.monotonic()
        threads = [threading.Thread(target=fetch, args=(done,)) for _ in range(2)]
        for th in threads:
            th.start()
        for th in threads:
            th.join(timeout=60)
        took = time.monotonic() - t
        assert done == [size, size]
        # Two downloads through one link share its 1 MB/s: 1 MB takes at least 1 s, not 0.5 s.
        assert took >= 2 * size * 8 / rate - 0.02, took
        assert link.stats()[echo.port].down == 2 * size


def test_connections_are_bounded(echo):
    with Link(Profile("t", 0.0), max_connections=2) as link:
        port = link.forward(echo.port)
        a, b = connect(port), connect(port)
        try:
            round_trip(a), round_trip(b)
            c = connect(port)
            with c:
                c.settimeout(10)
                try:
                    c.sendall(b"ping")
                    assert c.recv(10) == b""  # closed by the link, never forwarded
                except ConnectionResetError:
                    pass
            assert link.stats()[echo.port].refused == 1
        finally:
            a.close()
            b.close()


def test_listens_and_forwards_on_127_0_0_1_only(echo):
    with Link(PROFILES["near"]) as link:
        port = link.forward(echo.port)
        with pytest.raises(LinkError, match="127.0.0.1"):
            link.forward(echo.port, host="10.0.0.1")
        with connect(port) as s:
            assert s.getpeername()[0] == "127.0.0.1"
        # Nothing listens on another address of this machine for that port.
        addrs = {a[4][0] for a in socket.getaddrinfo(socket.gethostname(), None, socket.AF_INET)} - {"127.0.0.1"}
        for addr in addrs:
            with pytest.raises(OSError):
                socket.create_connection((addr, port), timeout=2).close()


def test_stops_by_itself_after_its_lifetime(echo):
    link = Link(Profile("t", 0.0), lifetime_s=1.0).start()
    try:
        port = link.forward(echo.port)
        assert link.proc is not None
        wait_for(lambda: link.proc.poll() is not None, 30, "the link to stop by itself")
        with pytest.raises(OSError):
            connect(port).close()
    finally:
        link.close()


def test_stops_when_its_parent_lets_go(echo):
    link = Link(Profile("t", 0.0)).start()
    port = link.forward(echo.port)
    proc = link.proc
    assert proc is not None and proc.stdin is not None
    proc.stdin.close()  # what the parent's death does to the control pipe
    wait_for(lambda: proc.poll() is not None, 30, "the link to stop")
    with pytest.raises(OSError):
        connect(port).close()
    link.close()


def test_profiles_are_the_issue_s_links():
    assert PROFILES["loopback"].direct
    near, far = PROFILES["near"], PROFILES["far"]
    assert (near.rtt_s, near.up_bps, near.down_bps) == (0.040, 200e6, 200e6)
    assert (far.rtt_s, far.up_bps, far.down_bps) == (0.140, 50e6, 50e6)
