"""A slow link on 127.0.0.1: a user-space TCP proxy that adds one-way delay and a bandwidth cap per
direction (kernel netem is not available here), placed in front of the stand-ins (the fake RunPod API,
the pod's sshd, the S3 server) so the benchmarks see what a user 40-150 ms from a data center sees.

The model, per direction, shared by every connection through one Link (one user's access link):
  - a bottleneck of `bps` bits/s: a chunk read at t leaves at max(t, when the link is free) + size/rate;
  - then the one-way delay (RTT/2): it is written to the other side at departure + delay;
  - a new connection pays one round trip before its first byte leaves (the TCP handshake), and the
    server's first bytes leave half a round trip later still (the server sees the handshake's end then).
Order within a connection is kept. Bounded: at most `max_connections` at once (more are closed on
accept), at most `window` bytes queued per connection and direction (reading stops until it drains,
as a TCP window does), 127.0.0.1 only (listening and forwarding). It stops by itself: when its
parent closes the control pipe, or after `lifetime_s` at the latest.

It runs in a process of its own (its own interpreter lock: the bench's process hosts the fake API and
the S3 stand-in), driven by JSON lines on stdin/stdout:
    {"forward": 2222} -> {"port": 40101}      a listener on 127.0.0.1 that forwards to 127.0.0.1:2222
    {"stats": true}   -> {"stats": {"2222": {"connections": 3, "exchanges": 41, "up": ..., "down": ...}}}
    {"reset": true}   -> {"ok": true}         zero the counters
An exchange is one request/response turn seen on a connection: the client speaking after the server
did (or first). Summed over connections, so parallel requests count each.

    with Link(PROFILES["far"]) as link:
        port = link.forward(api_port)
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from typing import IO

LOCAL = "127.0.0.1"
CHUNK = 64 * 1024
DEFAULT_WINDOW = 4 * 1024 * 1024
DEFAULT_MAX_CONNECTIONS = 512
DEFAULT_LIFETIME_S = 4 * 3600.0


@dataclass(frozen=True)
class Profile:
    name: str
    rtt_s: float  # round-trip time added (each direction gets half)
    up_bps: float | None = None  # client -> server cap, bits per second (None: no cap)
    down_bps: float | None = None  # server -> client cap

    @property
    def direct(self) -> bool:
        """Nothing to shape: the stand-ins are used without a proxy."""
        return self.rtt_s <= 0 and self.up_bps is None and self.down_bps is None

    def describe(self) -> str:
        if self.direct:
            return f"{self.name} (no proxy: 0 ms, no cap)"
        caps = {self.up_bps, self.down_bps}
        cap = f"{next(iter(caps)) / 1e6:g} Mbit/s" if len(caps) == 1 and None not in caps else "asymmetric caps"
        return f"{self.name} (RTT {self.rtt_s * 1000:g} ms, {cap} each way)"


PROFILES = {
    "loopback": Profile("loopback", 0.0),
    "near": Profile("near", 0.040, 200e6, 200e6),
    "far": Profile("far", 0.140, 50e6, 50e6),
}


class LinkError(RuntimeError):
    pass


def profile_named(name: str) -> Profile:
    try:
        return PROFILES[name]
    except KeyError:
        raise LinkError(f"unknown link profile {name!r}; choose from {', '.join(PROFILES)}") from None


# ---------------------------------------------------------------- the proxy (in its own process)
class Bottleneck:
    """One direction of the link: serialisation at `bps`, then the one-way delay."""

    def __init__(self, bps: float | None, delay_s: float):
        self.bps, self.delay_s = bps, delay_s
        self.free_at = 0.0

    def arrival(self, now: float, size: int, not_before: float) -> float:
        start = max(now, self.free_at, not_before)
        depart = start + (size * 8 / self.bps if self.bps else 0.0)
        self.free_at = depart
        return depart + self.delay_s


@dataclass
class Counters:
    connections: int = 0
    refused: int = 0
    exchanges: int = 0
    up: int = 0
    down: int = 0
    open: int = 0


@dataclass
class Proxy:
    profile: Profile
    window: int = DEFAULT_WINDOW
    max_connections: int = DEFAULT_MAX_CONNECTIONS
    counters: dict[int, Counters] = field(default_factory=dict)

    def __post_init__(self) -> None:
        half = self.profile.rtt_s / 2
        self.up = Bottleneck(self.profile.up_bps, half)
        self.down = Bottleneck(self.profile.down_bps, half)
        self.active = 0
        self.servers: list[asyncio.base_events.Server] = []
        self.tasks: set[asyncio.Task] = set()

    async def forward(self, target_port: int) -> int:
        self.counters.setdefault(target_port, Counters())

        async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            task = asyncio.current_task()
            if task is not None:
                self.tasks.add(task)
            try:
                await self._connection(target_port, reader, writer)
            except asyncio.CancelledError:
                writer.close()  # the link is stopping
            finally:
                if task is not None:
                    self.tasks.discard(task)

        server = await asyncio.start_server(accept, LOCAL, 0)
        self.servers.append(server)
        return server.sockets[0].getsockname()[1]

    async def _connection(self, port: int, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        c = self.counters[port]
        if self.active >= self.max_connections:
            c.refused += 1
            writer.close()
            return
        self.active += 1
        c.connections += 1
        c.open += 1
        accepted = time.monotonic()
        rtt = self.profile.rtt_s
        try:
            up_reader, up_writer = await asyncio.open_connection(LOCAL, port)
        except OSError:
            self.active -= 1
            c.open -= 1
            writer.close()
            return
        for w in (writer, up_writer):
            sock = w.get_extra_info("socket")
            if sock is not None:
                import socket

                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        turn = {"last": "down"}  # who spoke last on this connection
        try:
            await asyncio.gather(
                self._pump(reader, up_writer, self.up, accepted + rtt, c, "up", turn),
                self._pump(up_reader, writer, self.down, accepted + 1.5 * rtt, c, "down", turn),
            )
        finally:
            self.active -= 1
            c.open -= 1
            for w in (writer, up_writer):
                w.close()

    async def _pump(
        self,
        src: asyncio.StreamReader,
        dst: asyncio.StreamWriter,
        link: Bottleneck,
        not_before: float,
        c: Counters,
        direction: str,
        turn: dict,
    ) -> None:
        queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()
        queued = {"bytes": 0}
        room = asyncio.Event()
        room.set()

        async def deliver() -> None:
            while True:
                at, data = await queue.get()
                wait = at - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
                if not data:
                    break
                dst.write(data)
                try:
                    await dst.drain()
                except (ConnectionError, OSError):
                    break
                queued["bytes"] -= len(data)
                if queued["bytes"] < self.window:
                    room.set()
            try:
                if dst.can_write_eof():
                    dst.write_eof()
            except (OSError, RuntimeError):
                pass

        writer_task = asyncio.create_task(deliver())
        try:
            while True:
                await room.wait()
                try:
                    data = await src.read(CHUNK)
                except (ConnectionError, OSError):
                    data = b""
                now = time.monotonic()
                if data:
                    if direction == "up":
                        c.up += len(data)
                        if turn["last"] != "up":
                            c.exchanges += 1
                    else:
                        c.down += len(data)
                    turn["last"] = direction
                    queued["bytes"] += len(data)
                    if queued["bytes"] >= self.window:
                        room.clear()
                at = link.arrival(now, len(data), not_before) if data else max(now, link.free_at) + link.delay_s
                queue.put_nowait((at, data))
                if not data:
                    break
            await writer_task
        finally:
            writer_task.cancel()

    def stats(self) -> dict:
        return {str(p): asdict(c) for p, c in self.counters.items()}

    def reset(self) -> None:
        for p in self.counters:
            self.counters[p] = Counters(open=self.counters[p].open)


async def _serve(profile: Profile, lifetime_s: float, window: int, max_connections: int) -> None:
    proxy = Proxy(profile, window=window, max_connections=max_connections)
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    out = sys.stdout

    def answer(obj: dict) -> None:
        out.write(json.dumps(obj) + "\n")
        out.flush()

    async def control() -> None:
        while True:
            line = await reader.readline()
            if not line:
                return  # the parent went away: stop
            try:
                msg = json.loads(line)
                if "forward" in msg:
                    answer({"port": await proxy.forward(int(msg["forward"]))})
                elif "stats" in msg:
                    answer({"stats": proxy.stats()})
                elif "reset" in msg:
                    proxy.reset()
                    answer({"ok": True})
                else:
                    answer({"error": f"unknown request {sorted(msg)}"})
            except (ValueError, TypeError, OSError) as e:
                answer({"error": str(e)})

    try:
        await asyncio.wait_for(control(), timeout=lifetime_s)
    except asyncio.TimeoutError:
        pass
    for server in proxy.servers:
        server.close()
    tasks = list(proxy.tasks)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


def main(argv: list[str] | None = None) -> int:
    import argparse

    ap = argparse.ArgumentParser(prog="python -m standins.link", description="A shaped TCP link on 127.0.0.1.")
    ap.add_argument("--rtt-ms", type=float, required=True)
    ap.add_argument("--up-mbit", type=float, default=0.0, help="0: no cap")
    ap.add_argument("--down-mbit", type=float, default=0.0, help="0: no cap")
    ap.add_argument("--lifetime-s", type=float, default=DEFAULT_LIFETIME_S)
    ap.add_argument("--window", type=int, default=DEFAULT_WINDOW)
    ap.add_argument("--max-connections", type=int, default=DEFAULT_MAX_CONNECTIONS)
    a = ap.parse_args(argv)
    profile = Profile(
        "custom", a.rtt_ms / 1000, a.up_mbit * 1e6 if a.up_mbit else None, a.down_mbit * 1e6 if a.down_mbit else None
    )
    asyncio.run(_serve(profile, a.lifetime_s, a.window, a.max_connections))
    return 0


# ---------------------------------------------------------------- the handle (in the bench's process)
class Link:
    """The proxy process for one profile; forward() adds a shaped port in front of a local one."""

    def __init__(
        self,
        profile: Profile,
        *,
        lifetime_s: float = DEFAULT_LIFETIME_S,
        window: int = DEFAULT_WINDOW,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
    ):
        self.profile = profile
        self.lifetime_s, self.window, self.max_connections = lifetime_s, window, max_connections
        self.proc: subprocess.Popen | None = None
        self.ports: dict[int, int] = {}  # target port -> shaped port

    def start(self) -> Link:
        p = self.profile
        argv = [
            sys.executable,
            "-m",
            "standins.link",
            f"--rtt-ms={p.rtt_s * 1000}",
            f"--up-mbit={(p.up_bps or 0) / 1e6}",
            f"--down-mbit={(p.down_bps or 0) / 1e6}",
            f"--lifetime-s={self.lifetime_s}",
            f"--window={self.window}",
            f"--max-connections={self.max_connections}",
        ]
        root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        env = {
            **os.environ,
            "PYTHONPATH": root + (os.pathsep + os.environ["PYTHONPATH"] if "PYTHONPATH" in os.environ else ""),
        }
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env, cwd=root)
        return self

    def _ask(self, msg: dict) -> dict:
        if self.proc is None or self.proc.stdin is None or self.proc.stdout is None:
            raise LinkError("the link is not started")
        stdin: IO[str] = self.proc.stdin
        stdin.write(json.dumps(msg) + "\n")
        stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise LinkError(f"the link process ended (exit {self.proc.poll()})")
        answer = json.loads(line)
        if "error" in answer:
            raise LinkError(answer["error"])
        return answer

    def forward(self, port: int, host: str = LOCAL) -> int:
        """A port on 127.0.0.1 whose connections reach host:port through the shaped link."""
        if host not in (LOCAL, "localhost"):
            raise LinkError(f"the link forwards to {LOCAL} only, not {host}")
        if port not in self.ports:
            self.ports[port] = int(self._ask({"forward": port})["port"])
        return self.ports[port]

    def stats(self) -> dict[int, Counters]:
        raw = self._ask({"stats": True})["stats"]
        return {int(k): Counters(**v) for k, v in raw.items()}

    def reset(self) -> None:
        self._ask({"reset": True})

    def close(self) -> None:
        if self.proc is None:
            return
        try:
            if self.proc.stdin is not None:
                self.proc.stdin.close()  # the proxy stops when its control pipe closes
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
        finally:
            if self.proc.stdout is not None:
                self.proc.stdout.close()
            self.proc = None

    def __enter__(self) -> Link:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()


__all__ = ["PROFILES", "Counters", "Link", "LinkError", "Profile", "profile_named"]

if __name__ == "__main__":
    sys.exit(main())
