"""runner/ssh.py against the real OpenSSH server of standins/pod_sandbox.py."""

from __future__ import annotations

import os
import queue
import shlex
import socket
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from runner.errors import (
    HostKeyMismatch,
    PortInUse,
    RemoteFileShrunk,
    SshAuthError,
    SshDisconnected,
    SshKeyError,
    SshNotReady,
    SshTimeout,
)
from runner.remote.banner import wait_for_ssh_banner
from runner.remote.hostkeys import HostKey, expect_host_key
from runner.remote.shell import SCRIPT_COMMAND, build_script
from runner.remote.ssh import SshConnection, SshTarget
from standins.pod_sandbox import wait_until
from standins.ports import free_port


def _target(sshd, key_path: str | None = None, port: int | None = None) -> SshTarget:
    return SshTarget(sshd.host, port or sshd.port, sshd.user, key_path or sshd.key_path)


@pytest.fixture
def conn(sshd):
    with SshConnection.open(_target(sshd), host_key_check=expect_host_key(sshd.known_host_key), timeout=10) as c:
        yield c


def _keygen(path: Path, key_type: str, passphrase: str = "") -> str:
    args = ["ssh-keygen", "-q", "-t", key_type, "-N", passphrase, "-f", str(path)]
    if key_type == "rsa":
        args[4:4] = ["-b", "2048"]
    subprocess.run(args, check=True, capture_output=True)
    return path.with_name(path.name + ".pub").read_text()


# ---- connecting and running ---------------------------------------------------------------------
def test_run_returns_output_and_exit_code(conn):
    result = conn.run("echo out; echo err >&2; exit 3")
    assert (result.exit_code, result.stdout, result.stderr) == (3, "out\n", "err\n")
    assert conn.run("true").ok


def test_the_connection_sends_small_packets_at_once(conn):
    """Nagle off (TCP_NODELAY), as OpenSSH does: with it on, each channel open and each step of the
    handshake waited ~40 ms for the server's delayed ACK."""
    sock = conn._transport.sock
    assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0


def test_every_fixture_port_reaches_the_server(sshd):
    for port in sshd.ports:
        with SshConnection.open(_target(sshd, port=port), host_key_check=expect_host_key(sshd.known_host_key)) as c:
            assert c.run("echo $((6*7))").stdout == "42\n"


def test_run_sends_stdin_and_closes_it(conn):
    payload = os.urandom(3 * 1024 * 1024)  # larger than the SSH window: no deadlock either way
    result = conn.run("sha256sum | cut -d' ' -f1", stdin=payload)
    import hashlib

    assert result.stdout.strip() == hashlib.sha256(payload).hexdigest()


def test_run_large_output_on_both_streams(conn):
    result = conn.run("head -c 3000000 /dev/zero | tr '\\0' a; head -c 3000000 /dev/zero | tr '\\0' b >&2")
    assert result.stdout == "a" * 3_000_000 and result.stderr == "b" * 3_000_000


def test_run_timeout(conn):
    with pytest.raises(SshTimeout, match="sleep 30"):
        conn.run("sleep 30", timeout=0.5)
    assert conn.run("echo still usable").stdout == "still usable\n"


def test_command_killed_by_signal_has_no_exit_status(conn):
    assert conn.run("kill -9 $$").exit_code == -1


def test_streaming_callbacks_see_every_line(conn):
    out_lines, err_lines = [], []
    result = conn.run(
        "for i in 1 2 3; do echo line$i; echo warn$i >&2; done; printf tail",
        on_stdout_line=out_lines.append,
        on_stderr_line=err_lines.append,
    )
    assert out_lines == ["line1", "line2", "line3", "tail"]
    assert err_lines == ["warn1", "warn2", "warn3"]
    assert result.stdout == "line1\nline2\nline3\ntail"


# ---- run_script: values travel on stdin, quoted ---------------------------------------------------
HOSTILE = {
    "RT_QUOTES": "it's \"quoted\" 'twice'",
    "RT_SUBST": "$(touch {marker}) `touch {marker}` ${{HOME}}",
    "RT_NEWLINES": "line1\nline2\n\nexport RT_INJECTED=1\n",
    "RT_SPACES": "  leading and trailing  ",
    "RT_EMPTY": "",
    "RT_SHELL": "; touch {marker} && echo pwned | cat > {marker} # \\ \\n",
    "RT_UNICODE": "grüße ✓ \t tab",
}


def test_run_script_delivers_hostile_values_exactly(conn, tmp_path):
    marker = tmp_path / "injected"
    env = {k: v.format(marker=marker) for k, v in HOSTILE.items()}
    script = (
        "for n in " + " ".join(env) + '; do printf "%s\\0" "${!n}"; done\n'
        'printf "%s\\0" "${RT_INJECTED-unset}"\n'
        'tr "\\0" " " < /proc/$$/cmdline\n'
    )
    result = conn.run_script(script, env)
    assert result.exit_code == 0, result.stderr
    *values, injected, cmdline = result.stdout.split("\0")
    assert values == list(env.values())
    assert injected == "unset"
    assert cmdline.strip() == " ".join(shlex.split(SCRIPT_COMMAND))  # no value ever on a command line
    assert not marker.exists()


def test_run_script_exit_code_and_set_e(conn):
    result = conn.run_script("set -e\necho before\nfalse\necho after\n", {})
    assert (result.exit_code, result.stdout) == (1, "before\n")
    assert conn.run_script('echo "error: $MSG" >&2; exit 7', {"MSG": "x"}).exit_code == 7


def test_commands_in_the_script_cannot_swallow_the_rest_of_it(conn):
    result = conn.run_script("cat\nread -r line || echo read-got-eof\necho after\n", {})
    assert result.stdout == "read-got-eof\nafter\n"


@pytest.mark.parametrize("name", ["A-B", "1X", "X Y", "", "A=B", "$(x)"])
def test_run_script_rejects_bad_names_before_sending(name):
    with pytest.raises(ValueError, match="invalid environment variable name"):
        build_script("true", {name: "v"})


def test_run_script_rejects_nul_and_non_strings():
    with pytest.raises(ValueError, match="NUL"):
        build_script("true", {"A": "x\0y"})
    with pytest.raises(TypeError, match="must be a str"):
        build_script("true", {"A": 3})


# ---- keys -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("key_type", ["rsa", "ecdsa", "ed25519"])
def test_key_types(sshd, tmp_path, key_type):
    key = tmp_path / f"id_{key_type}"
    sshd.authorize(_keygen(key, key_type))
    with SshConnection.open(_target(sshd, str(key)), host_key_check=expect_host_key(sshd.known_host_key)) as c:
        assert c.run("echo ok").stdout == "ok\n"


def test_unregistered_key_is_rejected(sshd, tmp_path):
    key = tmp_path / "stranger"
    _keygen(key, "ed25519")
    with pytest.raises(SshAuthError, match="rejected the key .*stranger.*Register its public half"):
        SshConnection.open(_target(sshd, str(key)), host_key_check=expect_host_key(sshd.known_host_key))


def _key_error(tmp_path, key_path) -> str:
    # A closed port: the key problem must be reported before any network access.
    target = SshTarget("127.0.0.1", free_port(), "root", str(key_path))
    with pytest.raises(SshKeyError) as info:
        SshConnection.open(target, host_key_check=expect_host_key("ssh-ed25519 AAAA"))
    return str(info.value)


def test_key_errors_are_clear_and_come_first(tmp_path):
    assert "does not exist" in _key_error(tmp_path, tmp_path / "missing") and "SSH_KEY_PATH" in _key_error(
        tmp_path, tmp_path / "missing"
    )
    assert "is not a file" in _key_error(tmp_path, tmp_path)
    encrypted = tmp_path / "encrypted"
    _keygen(encrypted, "ed25519", passphrase="secret phrase")
    assert "passphrase" in _key_error(tmp_path, encrypted)
    assert "is a public key" in _key_error(tmp_path, encrypted.with_name("encrypted.pub"))
    garbage = tmp_path / "garbage"
    garbage.write_text("-----BEGIN NONSENSE-----\nxx\n")
    assert "not a private key" in _key_error(tmp_path, garbage)


def test_a_link_that_drops_during_auth_is_a_connect_error_not_a_rejected_key(sshd, monkeypatch):
    """What paramiko raises when the server goes away mid-auth (a preemption drops every session):
    a reconnect may cure it, so it must not read as "rejected the key" (not retried, exit 6)."""
    import paramiko

    from runner.errors import SshConnectError

    def dropping(self, username, key):
        self.close()
        raise paramiko.AuthenticationException("Authentication failed: transport shut down or saw EOF")

    monkeypatch.setattr(paramiko.Transport, "auth_publickey", dropping)
    with pytest.raises(SshConnectError, match="dropped during authentication"):
        SshConnection.open(_target(sshd), host_key_check=expect_host_key(sshd.known_host_key))


def test_host_key_check_runs_before_auth_and_can_refuse(sshd):
    seen: list[HostKey] = []

    def refuse(key: HostKey) -> None:
        seen.append(key)
        raise HostKeyMismatch("not the pinned key")

    with pytest.raises(HostKeyMismatch):
        SshConnection.open(_target(sshd), host_key_check=refuse)
    assert seen == [HostKey.from_line(sshd.known_host_key)]
    with pytest.raises(HostKeyMismatch, match="expected ssh-ed25519 SHA256:"):
        SshConnection.open(_target(sshd), host_key_check=expect_host_key("ssh-ed25519 " + "A" * 68))


def test_fingerprint_matches_ssh_keygen(sshd):
    out = subprocess.run(["ssh-keygen", "-lf", str(sshd.host_key_path) + ".pub"], capture_output=True, text=True)
    assert HostKey.from_line(sshd.known_host_key).fingerprint == out.stdout.split()[1]


def test_connect_to_closed_port_is_a_clear_error(sshd):
    from runner.errors import SshConnectError

    with pytest.raises(SshConnectError, match="cannot connect .*runner status"):
        SshConnection.open(_target(sshd, port=free_port()), host_key_check=expect_host_key(sshd.known_host_key))


# ---- files ----------------------------------------------------------------------------------------
def test_read_and_write_files(conn, tmp_path):
    data = bytes(range(256)) * 100 + b"\xff\xfe not utf-8"
    path = tmp_path / "sub dir" / "file's.bin"
    path.parent.mkdir()
    conn.write_file(str(path), data, mode=0o600)
    assert path.read_bytes() == data and (path.stat().st_mode & 0o777) == 0o600
    assert conn.read_file(str(path)) == data
    assert conn.read_file(str(path), offset=250) == data[250:]
    assert conn.read_file(str(tmp_path / "nope")) is None


# ---- follow -----------------------------------------------------------------------------------------
def _follow_into_queue(conn, path, offset, stop: threading.Event) -> tuple[queue.Queue, threading.Thread]:
    q: queue.Queue = queue.Queue()

    def run():
        try:
            for item in conn.follow(str(path), offset, should_stop=stop.is_set):
                q.put(item)
            q.put("stopped")
        except Exception as e:  # handed to the test thread
            q.put(e)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return q, t


def test_follow_from_an_offset(conn, tmp_path):
    log = tmp_path / "a.log"
    log.write_bytes(b"alpha\nbeta\ngamma\n")
    stop = threading.Event()
    q, t = _follow_into_queue(conn, log, 6, stop)
    assert [q.get(timeout=10) for _ in range(2)] == [(b"beta", 11), (b"gamma", 17)]
    stop.set()
    assert q.get(timeout=10) == "stopped"


def test_follow_waits_for_a_file_that_does_not_exist_yet(conn, tmp_path):
    log = tmp_path / "later.log"
    stop = threading.Event()
    q, t = _follow_into_queue(conn, log, 0, stop)
    wait_until(lambda: _tail_reading(log) is not None or _tail_waiting(log), 10, "tail to start")
    log.write_bytes(b"hello\n")
    assert q.get(timeout=10) == (b"hello", 6)
    stop.set()
    assert q.get(timeout=10) == "stopped"


def _tail_pids(path: Path) -> list[int]:
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                cmd = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if cmd and cmd[0].endswith(b"tail") and str(path).encode() in cmd:
                pids.append(int(entry))
    return pids


def _tail_waiting(path: Path) -> bool:
    return bool(_tail_pids(path))


def _tail_reading(path: Path) -> int | None:
    """The read position of the remote tail in `path` (the 'pod' is this machine)."""
    for pid in _tail_pids(path):
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                if os.readlink(f"/proc/{pid}/fd/{fd}") == str(path):
                    for line in Path(f"/proc/{pid}/fdinfo/{fd}").read_text().splitlines():
                        if line.startswith("pos:"):
                            return int(line.split()[1])
            except OSError:
                continue
    return None


def test_follow_never_yields_half_a_line(conn, tmp_path):
    log = tmp_path / "growing.log"
    log.write_bytes(b"")
    stop = threading.Event()
    q, t = _follow_into_queue(conn, log, 0, stop)
    with log.open("ab", buffering=0) as w:
        w.write(b"first\n")
        assert q.get(timeout=10) == (b"first", 6)
        w.write(b"sec")  # half a line: tail reads and sends it, follow must hold it back
        wait_until(lambda: _tail_reading(log) == 9, 10, "the remote tail to read the partial line")
        w.write(b"ond\nthird\n")
        assert [q.get(timeout=10) for _ in range(2)] == [(b"second", 13), (b"third", 19)]
    stop.set()
    assert q.get(timeout=10) == "stopped"


def test_follow_stops_remote_tail_when_closed(conn, tmp_path):
    log = tmp_path / "c.log"
    log.write_bytes(b"x\n")
    gen = conn.follow(str(log), 0)
    assert next(gen) == (b"x", 2)
    assert _tail_pids(log)
    gen.close()
    log.write_bytes(b"x\ny\n")  # tail notices the closed pipe at the latest when it writes
    wait_until(lambda: not _tail_pids(log), 10, "the remote tail to exit")


def test_follow_raises_disconnected_when_the_link_drops(sshd, conn, tmp_path):
    log = tmp_path / "d.log"
    log.write_bytes(b"one\n")
    gen = conn.follow(str(log), 0)
    assert next(gen) == (b"one", 4)
    sshd.drop_connections()
    with pytest.raises(SshDisconnected, match="lost the SSH connection"):
        next(gen)
    with pytest.raises(SshDisconnected):
        conn.run("true")


def test_follow_refuses_an_offset_past_the_end(conn, tmp_path):
    log = tmp_path / "short.log"
    log.write_bytes(b"abc\n")
    with pytest.raises(RemoteFileShrunk, match="shorter than offset 100"):
        next(conn.follow(str(log), 100))


# ---- port forwarding ------------------------------------------------------------------------------
@pytest.fixture
def remote_http_server(conn, tmp_path):
    """python http.server started on the 'pod' through the connection; yields (port, served dir)."""
    served = tmp_path / "www"
    served.mkdir()
    (served / "hello.txt").write_text("hello through the tunnel\n")
    port = free_port()
    server_log = tmp_path / "http.log"
    cmd = (
        f"cd {shlex.quote(str(served))} || exit 1; nohup {shlex.quote(sys.executable)} -u -m http.server "
        f"--bind 127.0.0.1 {port} > {shlex.quote(str(server_log))} 2>&1 < /dev/null & echo $!"
    )
    pid = int(conn.run(cmd).stdout.strip())
    try:
        wait_until(lambda: b"Serving HTTP" in (conn.read_file(str(server_log)) or b""), 15, "remote http.server")
        yield port
    finally:
        conn.run(f"kill {pid}")


def test_port_forward_carries_a_real_http_request(conn, remote_http_server):
    with conn.forward_local_port(0, remote_http_server) as fwd:
        assert fwd.local_port > 0
        for _ in range(3):  # several connections through one forward
            with urllib.request.urlopen(f"http://127.0.0.1:{fwd.local_port}/hello.txt", timeout=10) as r:
                assert r.read() == b"hello through the tunnel\n"
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", fwd.local_port), timeout=2).close()


def test_port_forward_to_a_closed_remote_port_reports_why(conn):
    remote_port = free_port()
    with conn.forward_local_port(0, remote_port) as fwd:
        with socket.create_connection(("127.0.0.1", fwd.local_port), timeout=10) as s:
            s.settimeout(10)
            assert s.recv(1) == b""  # closed: nothing listens on the pod side
        wait_until(lambda: fwd.errors, 10, "the forward to record the failure")
    assert f"127.0.0.1:{remote_port}" in fwd.errors[0] and "is the service running" in fwd.errors[0]


def test_port_forward_port_in_use(conn):
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen(1)
    port = busy.getsockname()[1]
    try:
        with pytest.raises(PortInUse, match=f"local port {port} is already in use") as info:
            conn.forward_local_port(port, 6006)
        assert info.value.port == port
    finally:
        busy.close()


# ---- waiting for sshd -----------------------------------------------------------------------------
def test_banner_wait_succeeds_on_sshd(sshd):
    wait_for_ssh_banner(sshd.host, sshd.port, deadline_s=10)


def test_banner_wait_times_out_on_a_closed_port():
    port = free_port()
    waits: list[str] = []
    with pytest.raises(SshNotReady, match=f"127.0.0.1:{port}.*refused.*--host") as info:
        wait_for_ssh_banner("127.0.0.1", port, deadline_s=1, on_wait=waits.append)
    assert waits and "connection refused" in waits[0]
    # Only --host waits here: the message is about that machine, not about the stack's pod.
    assert f"sshd listens on port {port}" in str(info.value)
    assert "pod" not in str(info.value) and "runner status" not in str(info.value)


def test_banner_wait_port_open_but_silent():
    """RunPod publishes the port before sshd runs: an open port is not enough."""
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)
    try:
        with pytest.raises(SshNotReady, match="no SSH banner"):
            wait_for_ssh_banner("127.0.0.1", silent.getsockname()[1], deadline_s=1, probe_timeout_s=0.3)
    finally:
        silent.close()


def test_banner_wait_sees_a_server_that_comes_up_later():
    port = free_port()
    started = threading.Event()
    waits: list[str] = []

    def serve_banner():
        with socket.create_server(("127.0.0.1", port)) as srv:
            started.set()
            while True:
                c, _ = srv.accept()
                with c:
                    c.sendall(b"some pre-banner text\r\nSSH-2.0-OpenSSH_9.9\r\n")
                    return

    def on_wait(msg: str) -> None:
        waits.append(msg)
        if len(waits) == 2 and not started.is_set():
            threading.Thread(target=serve_banner, daemon=True).start()
            started.wait(5)

    wait_for_ssh_banner("127.0.0.1", port, deadline_s=30, on_wait=on_wait)
    assert len(waits) == 2 and all("refused" in w for w in waits)


def test_follow_notices_a_link_that_stops_answering(sshd, conn, tmp_path):
    """A vanished pod host sends no reset: only asking for a round trip reveals the dead link."""
    log = tmp_path / "silent.log"
    log.write_bytes(b"one\n")
    gen = conn.follow(str(log), 0, liveness_probe_s=0.5, liveness_timeout_s=1.0)
    assert next(gen) == (b"one", 4)
    sshd.freeze_connections()
    try:
        with pytest.raises(SshDisconnected, match="while opening a channel"):
            next(gen)
    finally:
        sshd.drop_connections()


def test_exit_status_arrives_after_output_was_closed_early(conn):
    from runner.remote.shell import RunResult

    assert conn.run("echo x; exec >&- 2>&-; sleep 0.3; exit 4") == RunResult(4, "x\n", "")


def test_run_in_progress_raises_disconnected_when_the_link_drops(sshd, conn):
    started = threading.Event()
    outcome: queue.Queue = queue.Queue()

    def run():
        try:
            outcome.put(conn.run("echo started; sleep 30", on_stdout_line=lambda line: started.set()))
        except Exception as e:
            outcome.put(e)

    threading.Thread(target=run, daemon=True).start()
    assert started.wait(10)
    sshd.drop_connections()
    error = outcome.get(timeout=10)
    assert isinstance(error, SshDisconnected) and "sleep 30" in str(error)
