"""The git credential of an https REPO_URL (https://user:token@host/...): only ever in git's hands.

The runner takes it out of the URL (split_url) and sends it apart from it, as RT_REPO_CREDENTIAL in the
launch's stdin; the shim (remote_train.sh) moves it from the environment into a private file before this
program starts (RT_REPO_CREDENTIAL_FILE). take() reads it from there, deletes the file, and leaves the
environment (which the supervisor, tmux and training inherit) without it; a URL that still carries one
(an older runner) is cleaned the same way. The clone and the fetch get it through a one-shot credential
helper (helper_args) reading a 0600 file in a 0700 temp directory that is removed when git is done: so
the token is never in an argv, in .git/config, in .runner/supervise.json, in the log, or in the
environment of training.
"""

from __future__ import annotations

import os
import shlex
import shutil
import tempfile
from contextlib import contextmanager
from typing import Iterator, List, MutableMapping, Optional, Tuple
from urllib.parse import unquote, urlsplit, urlunsplit

from .contract import Inputs


def split_url(url: str) -> Tuple[str, Optional[str]]:
    """(the URL without its user info, the user info) for http(s) URLs; other URLs (ssh, a path, scp's
    git@host:path, whose user is no secret) come back as they are, with None."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url, None
    if parts.scheme.lower() not in ("http", "https") or "@" not in parts.netloc:
        return url, None
    userinfo, _, host = parts.netloc.rpartition("@")
    return urlunsplit(parts._replace(netloc=host)), userinfo


def take(environ: MutableMapping[str, str]) -> Optional[str]:
    """The credential of this launch, taken out of `environ` (the file the shim wrote is deleted)."""
    credential = environ.pop(Inputs.REPO_CREDENTIAL, None) or None
    path = environ.pop(Inputs.REPO_CREDENTIAL_FILE, None)
    if path:
        try:
            with open(path, encoding="utf-8") as fh:
                credential = fh.read() or credential
        except OSError:
            pass
        remove_private(path)
    url = environ.get(Inputs.REPO_URL)
    if url:
        clean, embedded = split_url(url)
        if embedded is not None:
            environ[Inputs.REPO_URL] = clean
            credential = credential or embedded
    return credential


def remove_private(path: str) -> None:
    """A file the shim wrote into a 0700 temp directory of its own (rt-private.*), and that directory."""
    try:
        os.unlink(path)
        if os.path.basename(os.path.dirname(path)).startswith("rt-private."):
            os.rmdir(os.path.dirname(path))
    except OSError:
        pass


@contextmanager
def helper_args(credential: Optional[str]) -> Iterator[List[str]]:
    """`git -c ...` options for one git command that may ask for the credential: no other helper
    (none may store it), ours answers `get` from a private file that exists while the block runs."""
    if not credential:
        yield []
        return
    user, sep, password = credential.partition(":")
    directory = tempfile.mkdtemp(prefix="rt-git-")  # 0700
    path = os.path.join(directory, "credential")
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(f"username={unquote(user)}\npassword={unquote(password) if sep else ''}\n")
        helper = f'!f() {{ test "$1" = get && cat {shlex.quote(path)}; }}; f'
        yield ["-c", "credential.helper=", "-c", f"credential.helper={helper}"]
    finally:
        shutil.rmtree(directory, ignore_errors=True)


__all__ = ["helper_args", "remove_private", "split_url", "take"]
