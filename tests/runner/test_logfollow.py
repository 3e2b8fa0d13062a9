"""follow_with_reconnect against the real sshd while its connections are dropped under it."""

from __future__ import annotations

import threading
from pathlib import Path

from runner.companions.logs import POD_HINT
from runner.errors import SshDisconnected
from runner.remote.follow import FollowEnd, FollowEvents, FollowPolicy, follow_with_reconnect, gave_up
from runner.remote.hostkeys import expect_host_key
from runner.remote.ssh import SshConnection, SshTarget
from standins.pod_sandbox import wait_until
from standins.ports import free_port


class Recorder:
    """Collects (line, offset) from on_line; lets the test wait for a count."""

    def __init__(self):
        self.items: list[tuple[bytes, int]] = []
        self.cond = threading.Condition()

    def __call__(self, line: bytes, offset: int) -> None:
        with self.cond:
            self.items.append((line, offset))
            self.cond.notify_all()

    def wait_for(self, count: int, timeout: float = 15.0) -> None:
        with self.cond:
            if not self.cond.wait_for(lambda: len(self.items) >= count, timeout):
                raise AssertionError(f"got {len(self.items)} lines, wanted {count}: {self.items[-3:]}")


class _Events(FollowEvents):
    def __init__(self, lines, should_stop, on_disconnect, on_reconnect, on_partial):
        self.lines, self._should_stop, self._on_disconnect = lines, should_stop, on_disconnect
        self._on_reconnect, self._on_partial = on_reconnect, on_partial
        self.shows_partial = on_partial is not None

    def line(self, line, offset):
        self.lines(line, offset)

    def partial(self, data):
        self._on_partial(data)

    def should_stop(self):
        return self._should_stop()

    def dropped(self, error, attempt):
        return bool(self._on_disconnect(error, attempt))

    def reconnected(self, conn, offset):
        self._on_reconnect(conn, offset)


class Follower:
    """Runs follow_with_reconnect in a thread, like `runner train` does while it watches state."""

    def __init__(self, sshd, path: Path, offset: int = 0, **kwargs):
        self.sshd = sshd
        self.lines = Recorder()
        self.finished = threading.Event()
        self.connects = 0
        self.disconnects: list[tuple[str, int]] = []
        self.reconnected = threading.Event()
        self.followed = None
        self.result: int | Exception | None = None
        self.connect_fn = kwargs.pop("connect", self.connect)
        self.stop_event = kwargs.pop("stop_event", None)
        self.policy = FollowPolicy(
            max_reconnect_wait_s=kwargs.pop("max_reconnect_wait_s", 600.0),
            initial_backoff_s=0.05,
            max_backoff_s=0.2,
            stop_check_interval_s=0.1,
        )
        self.events = _Events(
            self.lines,
            kwargs.pop("should_stop", self.finished.is_set),
            kwargs.pop("on_disconnect", lambda e, attempt: self.disconnects.append((type(e).__name__, attempt))),
            kwargs.pop("on_reconnect", lambda conn, off: self.reconnected.set()),
            kwargs.pop("on_partial", None),
        )
        assert not kwargs, kwargs
        self.thread = threading.Thread(target=self._run, args=(str(path), offset), daemon=True)

    def connect(self) -> SshConnection:
        self.connects += 1
        target = SshTarget(self.sshd.host, self.sshd.port, self.sshd.user, self.sshd.key_path)
        return SshConnection.open(target, host_key_check=expect_host_key(self.sshd.known_host_key), timeout=10)

    def _run(self, path: str, offset: int) -> None:
        try:
            self.followed = follow_with_reconnect(
                lambda: self.connect_fn(), path, offset, self.events, stop_event=self.stop_event, policy=self.policy
            )
            self.result = self.followed.offset
        except Exception as e:
            self.result = e

    def start(self) -> Follower:
        self.thread.start()
        return self

    def join(self, timeout: float = 20.0):
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "follow_with_reconnect did not return"
        return self.result


def _expected(lines: list[bytes]) -> list[tuple[bytes, int]]:
    out, pos = [], 0
    for line in lines:
        pos += len(line) + 1
        out.append((line, pos))
    return out


def test_every_line_exactly_once_across_drops(sshd, tmp_path):
    log = tmp_path / "current.log"
    lines = [f"step {i} loss={1 / (i + 1):.4f}".encode() for i in range(30)]
    with log.open("ab", buffering=0) as w:
        w.write(b"\n".join(lines[:5]) + b"\n")
        f = Follower(sshd, log).start()
        f.lines.wait_for(5)

        sshd.drop_connections()  # mid-follow
        w.write(b"\n".join(lines[5:10]) + b"\n")  # written while we are (probably) away
        w.write(lines[10][:10])  # a half-written line around the drop
        wait_until(f.reconnected.is_set, 15, "the follower to reconnect")
        w.write(lines[10][10:] + b"\n")
        f.lines.wait_for(11)

        f.reconnected.clear()
        sshd.drop_connections()  # and once more
        w.write(b"\n".join(lines[11:25]) + b"\n")
        wait_until(f.reconnected.is_set, 15, "the second reconnect")
        f.lines.wait_for(25)

        w.write(b"\n".join(lines[25:]) + b"\ntrailing partial")
        f.finished.set()  # training finished: drain what is in the file and return
    final = f.join()

    assert f.lines.items == _expected(lines)
    assert final == _expected(lines)[-1][1]  # the partial last line is not consumed
    assert f.connects == 3
    assert [d[1] for d in f.disconnects] == [1, 1] and all(d[0] == "SshDisconnected" for d in f.disconnects)


def test_resuming_from_a_returned_offset_continues_seamlessly(sshd, tmp_path):
    log = tmp_path / "current.log"
    log.write_bytes(b"a\nb\n")
    f = Follower(sshd, log).start()
    f.lines.wait_for(2)
    f.finished.set()
    offset = f.join()
    with log.open("ab") as w:
        w.write(b"c\nd\n")
    g = Follower(sshd, log, offset).start()
    g.lines.wait_for(2)
    g.finished.set()
    assert g.join() == 8
    assert f.lines.items + g.lines.items == _expected([b"a", b"b", b"c", b"d"])


def test_stop_event_detaches_from_another_thread(sshd, tmp_path):
    log = tmp_path / "current.log"
    log.write_bytes(b"one\n")
    detach = threading.Event()
    f = Follower(sshd, log, stop_event=detach).start()
    f.lines.wait_for(1)
    detach.set()  # Ctrl-C in the CLI thread: leave training running, return where we are
    assert f.join() == 4
    assert f.lines.items == [(b"one", 4)]


def test_stop_event_while_reconnecting(sshd, tmp_path):
    log = tmp_path / "current.log"
    log.write_bytes(b"one\n")
    detach = threading.Event()
    attempts = []

    def on_disconnect(error, attempt):
        attempts.append(attempt)
        if attempt == 3:
            detach.set()

    closed = free_port()
    f = Follower(sshd, log, stop_event=detach, on_disconnect=on_disconnect)
    first = f.connect
    f.connect_fn = lambda: first() if f.connects == 0 else _connect_to(sshd, closed, f)
    f.start()
    f.lines.wait_for(1)
    sshd.drop_connections()
    assert f.join() == 4 and f.followed.end == FollowEnd.DETACHED
    assert attempts == [1, 2, 3]


def _connect_to(sshd, port: int, f: Follower) -> SshConnection:
    f.connects += 1
    return SshConnection.open(
        SshTarget(sshd.host, port, sshd.user, sshd.key_path),
        host_key_check=expect_host_key(sshd.known_host_key),
        timeout=5,
    )


def test_a_drop_can_end_the_follow(sshd, tmp_path):
    """The runner asks the API on a drop; a preempted pod ends the follow, as a value (no exception)."""

    def on_disconnect(error, attempt):
        return True  # the pod was outbid: stop following

    log = tmp_path / "current.log"
    log.write_bytes(b"x\n")
    f = Follower(sshd, log, on_disconnect=on_disconnect).start()
    f.lines.wait_for(1)
    sshd.drop_connections()
    assert f.join() == 2
    assert f.followed.end == FollowEnd.ABANDONED and isinstance(f.followed.error, SshDisconnected)
    assert f.connects == 1


def test_gives_up_after_the_reconnect_budget(sshd, tmp_path):
    log = tmp_path / "current.log"
    log.write_bytes(b"x\n")
    closed = free_port()
    f = Follower(sshd, log, max_reconnect_wait_s=1.0)
    first = f.connect
    f.connect_fn = lambda: first() if f.connects == 0 else _connect_to(sshd, closed, f)
    f.start()
    f.lines.wait_for(1)
    sshd.drop_connections()
    assert f.join() == 2 and f.followed.end == FollowEnd.GAVE_UP
    error = gave_up(f.followed, f.policy, hint=POD_HINT)
    assert isinstance(error, SshDisconnected)
    assert "could not reconnect for 1s" in str(error) and "runner logs --follow" in str(error)
    assert f.connects >= 2


def test_host_key_mismatch_on_reconnect_is_not_retried(sshd, tmp_path):
    from runner.errors import HostKeyMismatch

    log = tmp_path / "current.log"
    log.write_bytes(b"x\n")
    f = Follower(sshd, log)
    real_key = sshd.known_host_key

    def connect():
        f.connects += 1
        key = real_key if f.connects == 1 else "ssh-ed25519 " + "A" * 68
        target = SshTarget(sshd.host, sshd.port, sshd.user, sshd.key_path)
        return SshConnection.open(target, host_key_check=expect_host_key(key), timeout=10)

    f.connect_fn = connect
    f.start()
    f.lines.wait_for(1)
    sshd.drop_connections()
    assert isinstance(f.join(), HostKeyMismatch)
    assert f.connects == 2


def test_should_stop_before_any_new_line_still_drains(sshd, tmp_path):
    log = tmp_path / "current.log"
    log.write_bytes(b"a\nb\nc\n")
    f = Follower(sshd, log, should_stop=lambda: True).start()
    assert f.join() == 6
    assert f.lines.items == _expected([b"a", b"b", b"c"])


def test_the_unfinished_line_is_shown_as_it_grows_across_a_drop_and_never_counted(sshd, tmp_path):
    log = tmp_path / "current.log"
    partials: list[bytes] = []
    seen = threading.Condition()

    def on_partial(data: bytes) -> None:
        with seen:
            partials.append(data)
            seen.notify_all()

    def wait_partial(want: bytes) -> None:
        with seen:
            assert seen.wait_for(lambda: partials and partials[-1] == want, 15), partials[-3:]

    with log.open("ab", buffering=0) as w:
        w.write(b"header\n\r 1/3 [")
        f = Follower(sshd, log, on_partial=on_partial).start()
        wait_partial(b"\r 1/3 [")
        w.write(b"00:01]\r 2/3 [")
        wait_partial(b"\r 1/3 [00:01]\r 2/3 [")
        sshd.drop_connections()  # resumes at the whole-line offset: the line again
        wait_until(f.reconnected.is_set, 15, "the follower to reconnect")
        w.write(b"00:02]")
        wait_partial(b"\r 1/3 [00:01]\r 2/3 [00:02]")
        w.write(b"\n")
        f.lines.wait_for(2)
        f.finished.set()
    final = f.join()

    bar = b"\r 1/3 [00:01]\r 2/3 [00:02]"
    assert f.lines.items == _expected([b"header", bar])  # whole lines with whole-line offsets only
    assert final == len(b"header\n") + len(bar) + 1
    assert all(bar.startswith(p) for p in partials)
