"""`runner logs`: the end of the training log from the 'pod' (the test sshd), and following it live
across a real dropped SSH connection."""

from __future__ import annotations

import threading

from remote.podside.contract import VolumePaths
from runner import cli
from runner.companions.logs import PodStoppedWhileFollowing, follow_log
from runner.exitcodes import ExitCode
from runner.pod.link import open_pod_link
from runner.remote.pod_view import tail_log
from standins.pod_sandbox import wait_until
from tests.runner.test_sync import pod_env, pod_sshd  # noqa: F401  (fixtures)


def write_log(workspace, text: str, mode: str = "a") -> None:
    path = workspace / "logs" / "current.log"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open(mode, encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()


def test_logs_n_prints_the_last_whole_lines(pod_env, capsys):
    pod_env.add_pod("RUNNING")
    write_log(pod_env.workspace, "".join(f"step {i}\n" for i in range(1, 21)) + "half a li")
    assert cli.main(["logs", "-n", "3"]) == 0
    assert capsys.readouterr().out == "step 18\nstep 19\nstep 20\n"
    assert cli.main(["logs"]) == 0  # default 100: everything there is
    assert capsys.readouterr().out == "".join(f"step {i}\n" for i in range(1, 21))
    assert cli.main(["logs", "-n", "0"]) == 0
    assert capsys.readouterr().out == ""
    assert pod_env.fake.billable_calls() == []


def test_logs_keeps_bytes_exact(pod_env, capsysbinary):
    pod_env.add_pod("RUNNING")
    raw = "ünïcode ✓\n".encode() + b"\xff\xfe not utf-8\n"
    (pod_env.workspace / "logs").mkdir()
    (pod_env.workspace / "logs" / "current.log").write_bytes(raw)
    assert cli.main(["logs", "-n", "5"]) == 0
    assert capsysbinary.readouterr().out == raw


def test_logs_without_a_log_yet(pod_env, capsys):
    pod_env.add_pod("RUNNING")
    assert cli.main(["logs"]) == 0
    captured = capsys.readouterr()
    assert captured.out == "" and "no training log on the pod yet" in captured.err


def test_logs_on_a_stopped_pod_does_not_start_it(pod_env, capsys):
    pod_env.add_pod("EXITED")
    assert cli.main(["logs", "-f"]) == ExitCode.POD
    err = capsys.readouterr().err
    assert "is not running" in err and "runner status" in err
    assert pod_env.fake.billable_calls() == []
    assert pod_env.pod.status == "EXITED"


def test_tail_offset_stops_before_a_partial_line(pod_env):
    pod_env.add_pod("RUNNING")
    write_log(pod_env.workspace, "a\nbb\nccc")
    link = open_pod_link(pod_env.settings(), start_if_stopped=False)
    with link.connect() as conn:
        tail = tail_log(conn, VolumePaths(str(pod_env.workspace)).log, 10)
    assert tail.lines == [b"a", b"bb"] and tail.end_offset == len("a\nbb\n")


class Follower:
    """follow_log in a thread, collecting lines; stop() plays Ctrl-C's part."""

    def __init__(self, link, offset: int):
        self.lines: list[bytes] = []
        self.messages: list[str] = []
        self.error: BaseException | None = None
        self.stop_event = threading.Event()
        path = VolumePaths(link.outputs.workspace).log
        self.thread = threading.Thread(target=self._run, args=(link, path, offset), daemon=True)
        self.thread.start()

    def _run(self, link, path, offset) -> None:
        try:
            follow_log(
                link,
                path,
                offset,
                self.lines.append,
                stop_event=self.stop_event,
                say=self.messages.append,
                max_reconnect_wait_s=30,
            )
        except BaseException as e:  # noqa: BLE001 - handed to the test thread
            self.error = e

    def wait_for(self, count: int) -> None:
        wait_until(lambda: len(self.lines) >= count or self.error is not None, 20, f"{count} lines")
        assert self.error is None, self.error

    def stop(self) -> None:
        self.stop_event.set()
        self.thread.join(timeout=20)
        assert not self.thread.is_alive()


def test_follow_survives_a_dropped_connection(pod_env):
    pod_env.add_pod("RUNNING")
    write_log(pod_env.workspace, "old 1\nold 2\n")
    link = open_pod_link(pod_env.settings(), start_if_stopped=False)
    with link.connect() as conn:
        offset = tail_log(conn, VolumePaths(str(pod_env.workspace)).log, 1).end_offset
    follower = Follower(link, offset)
    try:
        write_log(pod_env.workspace, "new 1\nnew 2\n")
        follower.wait_for(2)
        pod_env.sshd.drop_connections()
        write_log(pod_env.workspace, "after drop 1\nafter drop 2\nafter")
        write_log(pod_env.workspace, " drop 3\n")
        follower.wait_for(5)
        assert any("reconnected" in m for m in follower.messages), follower.messages
    finally:
        follower.stop()
    assert follower.lines == [b"new 1", b"new 2", b"after drop 1", b"after drop 2", b"after drop 3"]


def test_follow_ends_when_the_pod_stops(pod_env):
    pod_env.add_pod("RUNNING")
    write_log(pod_env.workspace, "training...\n")
    link = open_pod_link(pod_env.settings(), start_if_stopped=False)
    follower = Follower(link, 0)
    try:
        follower.wait_for(1)
        pod_env.fake.client().stop_pod(pod_env.pod_id)  # e.g. the pod stopping itself after training
        pod_env.sshd.drop_connections()
        follower.thread.join(timeout=20)
        assert isinstance(follower.error, PodStoppedWhileFollowing)
        assert "no longer running" in follower.error.message
    finally:
        follower.stop()
    assert pod_env.fake.billable_calls() == []


def test_logs_follow_command_returns_zero_when_the_pod_stops(pod_env, capsys, monkeypatch):
    """Through the CLI: -f prints the tail, follows, and ends cleanly when the pod goes away."""
    pod_env.add_pod("RUNNING")
    write_log(pod_env.workspace, "one\ntwo\n")
    import runner.companions.logs as logs_mod

    real = logs_mod.follow_log

    def follow_then_stop(link, path, offset, on_line, **kw):
        # The pod stops as soon as following begins; the follower must notice and end.
        pod_env.fake.client().stop_pod(pod_env.pod_id)
        pod_env.sshd.drop_connections()
        return real(link, path, offset, on_line, **kw)

    monkeypatch.setattr(logs_mod, "follow_log", follow_then_stop)
    assert cli.main(["logs", "-f", "-n", "1"]) == 0
    captured = capsys.readouterr()
    assert captured.out == "two\n"
    assert "no longer running" in captured.err
