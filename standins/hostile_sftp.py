"""A hostile pod's SFTP server on 127.0.0.1: an SSH server (paramiko's server side) whose SFTP listings
name whatever the test says, `../../x`, `/etc/x` or `a/b` included, which no real file system can hold.

What a compromised pod can answer to `runner pull` over SSH. The files are a dict of absolute paths to
bytes; `listings` maps a folder to the names its listing returns (each a file of the dict, or a folder
when the name maps to None). Any client key is accepted; the host key is fresh for every server.

    with HostileSftp(files={"/ws/out/a": b"x"}, listings={"/ws/out": {"a": b"x", "../../evil": b"pwn"}}) as srv:
        SshConnection.open(SshTarget("127.0.0.1", srv.port, "root", key_path), host_key_check=srv.policy())
"""

from __future__ import annotations

import os
import socket
import stat
import threading
from dataclasses import dataclass, field

import paramiko


@dataclass
class HostileSftp:
    files: dict[str, bytes] = field(default_factory=dict)  # path -> content
    listings: dict[str, dict[str, bytes | None]] = field(default_factory=dict)  # folder -> name -> content|None
    opened: list[str] = field(default_factory=list)  # every path a client opened

    def __post_init__(self) -> None:
        self.host_key = paramiko.ECDSAKey.generate()
        self._sock: socket.socket | None = None
        self._threads: list[threading.Thread] = []
        self._transports: list[paramiko.Transport] = []
        self.port = 0

    # ---- the view the server gives --------------------------------------------------------------
    def _is_dir(self, path: str) -> bool:
        return path.rstrip("/") in self.listings or any(
            name_content is None
            for folder, names in self.listings.items()
            for name, name_content in names.items()
            if f"{folder}/{name}" == path.rstrip("/")
        )

    def _content(self, path: str) -> bytes | None:
        if path in self.files:
            return self.files[path]
        folder, _, name = path.rpartition("/")
        return self.listings.get(folder, {}).get(name)

    def _attrs(self, name: str, content: bytes | None) -> paramiko.SFTPAttributes:
        attrs = paramiko.SFTPAttributes()
        attrs.filename = name
        attrs.st_mode = (stat.S_IFDIR | 0o755) if content is None else (stat.S_IFREG | 0o644)
        attrs.st_size = 0 if content is None else len(content)
        attrs.st_mtime = 1_700_000_000
        return attrs

    # ---- lifecycle ------------------------------------------------------------------------------
    def start(self) -> HostileSftp:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(8)
        self.port = self._sock.getsockname()[1]
        thread = threading.Thread(target=self._accept, name="hostile-sftp", daemon=True)
        thread.start()
        self._threads.append(thread)
        return self

    def stop(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        for t in self._transports:
            t.close()

    def __enter__(self) -> HostileSftp:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def host_key_line(self) -> str:
        return f"{self.host_key.get_name()} {self.host_key.get_base64()}"

    def _accept(self) -> None:
        while self._sock is not None:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            transport = paramiko.Transport(conn)
            transport.add_server_key(self.host_key)
            transport.set_subsystem_handler("sftp", paramiko.SFTPServer, _Interface, self)
            self._transports.append(transport)
            try:
                transport.start_server(server=_Server())
            except (paramiko.SSHException, EOFError, OSError):
                transport.close()


class _Server(paramiko.ServerInterface):
    def get_allowed_auths(self, username: str) -> str:
        return "publickey"

    def check_auth_publickey(self, username: str, key: paramiko.PKey) -> int:
        return paramiko.AUTH_SUCCESSFUL

    def check_channel_request(self, kind: str, chanid: int) -> int:
        return paramiko.OPEN_SUCCEEDED if kind == "session" else paramiko.OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED


class _Handle(paramiko.SFTPHandle):
    def __init__(self, data: bytes):
        super().__init__(os.O_RDONLY)
        self.data = data

    def read(self, offset: int, length: int) -> bytes:
        return self.data[offset : offset + length]

    def stat(self) -> paramiko.SFTPAttributes:
        attrs = paramiko.SFTPAttributes()
        attrs.st_size, attrs.st_mode = len(self.data), stat.S_IFREG | 0o644
        return attrs


class _Interface(paramiko.SFTPServerInterface):
    def __init__(self, server: paramiko.ServerInterface, hostile: HostileSftp, *args, **kwargs):
        super().__init__(server, *args, **kwargs)
        self.hostile = hostile

    def list_folder(self, path: str):
        names = self.hostile.listings.get(path.rstrip("/"))
        if names is None:
            return paramiko.SFTP_NO_SUCH_FILE
        return [self.hostile._attrs(name, content) for name, content in names.items()]

    def stat(self, path: str):
        if self.hostile._is_dir(path):
            return self.hostile._attrs(path.rsplit("/", 1)[-1], None)
        content = self.hostile._content(path)
        if content is None:
            return paramiko.SFTP_NO_SUCH_FILE
        return self.hostile._attrs(path.rsplit("/", 1)[-1], content)

    lstat = stat

    def open(self, path: str, flags: int, attr):
        self.hostile.opened.append(path)
        content = self.hostile._content(path)
        if content is None:
            return paramiko.SFTP_NO_SUCH_FILE
        return _Handle(content)

    def canonicalize(self, path: str) -> str:
        return path  # never normalised: the client must not rely on the server for that


__all__ = ["HostileSftp"]
