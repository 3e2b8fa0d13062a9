"""Notifications: one POST per webhook URL for an event, shaped by the URL, sent without delaying anyone.

Shapes (the runner's notifications use the same rules: runner/notify.py imports this module):
  https://hooks.slack.com/...                          Slack incoming webhook: {"text": ...}
  https://discord.com/api/webhooks/... (discordapp.com) Discord webhook: {"content": ...}
  https://ntfy.sh/<topic>, or one path segment on a host named ntfy*: the text as the body, a Title header
  anything else                                        the event object as JSON (EventKey)
The URLs are secrets (a webhook's path is its key): never in argv, a log or an exception's text; what
is shown is redact(url), the scheme and host. The pod sends from a detached grandchild process
(send_detached): a dead or slow webhook never delays training, a launch or a stop. Each request has
a 5 s timeout and is tried at most twice. Standard library only (Python 3.8+).
"""

from __future__ import annotations

import json
import os
import re
from enum import Enum
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple

from .runfiles import EventKey, NotifyKey

TIMEOUT_S = 5.0
TRIES = 2  # the first request and at most one retry (after a network error, a 5xx or a 429)
RETRY_PAUSE_S = 0.5
USER_AGENT = "runpod-trainer-notify/1"  # Discord's edge refuses urllib's default agent
TEXT_LIMIT = 1800  # Discord takes 2000 characters of content
_URL_RE = re.compile(r"^https?://[^\s/?#@]+(/[^\s]*)?$", re.IGNORECASE)


class Shape(str, Enum):
    SLACK = "slack"
    DISCORD = "discord"
    NTFY = "ntfy"
    JSON = "json"


class NotifyUrlError(ValueError):
    """A webhook URL list that cannot be used; the text never holds a URL."""


def parse_urls(text: str) -> List[str]:
    """NOTIFY_URL / RT_NOTIFY_URLS: URLs separated by commas (or whitespace); each http(s)://host/...
    without credentials in it (the path or query carries a webhook's key)."""
    urls = [part for part in re.split(r"[,\s]+", text or "") if part]
    for n, url in enumerate(urls, 1):
        if not _URL_RE.match(url):
            raise NotifyUrlError(
                f"notification URL {n} of {len(urls)} is not an http(s)://host/... URL without a user:password@ part"
            )
    return urls


def _split(url: str) -> Tuple[str, str, str]:
    """(scheme, lower-case host without port, path)"""
    scheme, _, rest = url.partition("://")
    netloc, slash, path = rest.partition("/")
    path = (slash + path).split("?", 1)[0].split("#", 1)[0]
    return scheme.lower(), netloc.rsplit("@", 1)[-1].split(":", 1)[0].lower(), path


def shape_of(url: str) -> Shape:
    _, host, path = _split(url)
    segments = [s for s in path.split("/") if s]
    if host == "hooks.slack.com":
        return Shape.SLACK
    if host in ("discord.com", "discordapp.com", "canary.discord.com", "ptb.discord.com") and path.startswith(
        "/api/webhooks/"
    ):
        return Shape.DISCORD
    if host.startswith("ntfy") and len(segments) == 1:
        return Shape.NTFY
    return Shape.JSON


def redact(url: str) -> str:
    """What may be shown of a webhook URL: its scheme and host."""
    scheme, host, _ = _split(url)
    return f"{scheme}://{host}/***"


def scrub(text: str, url: str) -> str:
    """text without any part of url that could carry its key: the URL, its path and query (whole and
    piece by piece) and its userinfo; what stays of it is at most the scheme and host."""
    _, _, rest = url.partition("://")
    netloc, _, tail = rest.partition("/")
    path, _, query = tail.partition("?")
    pieces = {url, rest, tail, path, query, netloc.rsplit("@", 1)[0] if "@" in netloc else ""}
    pieces.update(p for p in re.split(r"[/?&=#]", tail) if len(p) >= 4)
    for secret in sorted(pieces, key=len, reverse=True):
        if len(secret) > 1:
            text = text.replace(secret, "***")
    return text


def title(event: Mapping[str, Any]) -> str:
    return f"run {event.get(EventKey.RUN_ID)}: {event.get(EventKey.EVENT)}"


def text(event: Mapping[str, Any]) -> str:
    """One line for people: what happened to which run, and where it stands."""
    parts = [f"runpod-trainer: run {event.get(EventKey.RUN_ID)} attempt {event.get(EventKey.ATTEMPT)}"]
    parts.append(str(event.get(EventKey.EVENT)))
    details = []
    if event.get(EventKey.STEP) is not None:
        details.append(f"step {event[EventKey.STEP]}")
    checkpoint = event.get(EventKey.CHECKPOINT)
    if checkpoint:
        details.append(f"checkpoint {str(checkpoint).rstrip('/').rsplit('/', 1)[-1]}")
    if event.get(EventKey.COST_USD) is not None:
        details.append(f"about ${float(event[EventKey.COST_USD]):.2f}")
    if event.get(EventKey.POD_ID):
        details.append(f"pod {event[EventKey.POD_ID]}")
    line = " ".join(parts) + (f" ({', '.join(details)})" if details else "")
    if event.get(EventKey.MESSAGE):
        line += f": {event[EventKey.MESSAGE]}"
    return line[:TEXT_LIMIT]


def request_parts(url: str, event: Mapping[str, Any]) -> Tuple[bytes, Dict[str, str]]:
    """The body and headers of the POST for this URL's shape."""
    shape = shape_of(url)
    headers = {"User-Agent": USER_AGENT}
    if shape is Shape.NTFY:
        headers.update({"Title": title(event).encode("ascii", "replace").decode(), "Content-Type": "text/plain"})
        return text(event).encode("utf-8"), headers
    headers["Content-Type"] = "application/json"
    if shape is Shape.SLACK:
        body: Any = {"text": text(event)}
    elif shape is Shape.DISCORD:
        body = {"content": text(event)}
    else:
        body = {key: event.get(key) for key in EventKey.ALL}
    return json.dumps(body).encode("utf-8"), headers


def post(url: str, event: Mapping[str, Any], timeout: float = TIMEOUT_S) -> Tuple[bool, bool, str]:
    """One POST: (delivered, worth retrying, what happened: no URL in it)."""
    import urllib.error
    import urllib.request

    body, headers = request_parts(url, event)
    try:
        request = urllib.request.Request(url, data=body, headers=headers, method="POST")
        with urllib.request.urlopen(request, timeout=timeout) as response:
            response.read(65536)
        return True, False, "ok"
    except urllib.error.HTTPError as exc:
        return False, exc.code >= 500 or exc.code == 429, f"HTTP {exc.code}"
    except urllib.error.URLError as exc:
        return False, True, scrub(f"{type(exc.reason).__name__}: {exc.reason}", url)
    except Exception as exc:  # noqa: BLE001 - timeouts, resets, a malformed answer: all only logged
        return False, True, scrub(f"{type(exc).__name__}: {exc}", url)


def send_now(
    urls: List[str],
    event: Mapping[str, Any],
    log: Callable[[str], None],
    pause: Optional[Callable[[float], None]] = None,
) -> int:
    """POST the event to every URL (at most TRIES each); the number delivered. Failures are logged redacted."""
    import time

    pause = pause or time.sleep
    delivered = 0
    for url in urls:
        for n in range(TRIES):
            ok, again, what = post(url, event)
            if ok or not again or n + 1 == TRIES:
                break
            pause(RETRY_PAUSE_S)
        if ok:
            delivered += 1
        else:
            log(f"notify: {event.get(EventKey.ID)} to {redact(url)} failed: {what}")
    return delivered


def send_detached(urls: List[str], event: Mapping[str, Any], log_path: str) -> None:
    """Send from a grandchild in its own session (double fork: nothing to reap, no tie to tmux or SSH);
    this process goes on at once. The grandchild has no open descriptor of this one (the launch lock,
    the SSH channel's stdout): /dev/null for 0-2, everything else closed."""
    if not urls:
        return
    pid = os.fork()
    if pid:
        os.waitpid(pid, 0)  # the middle child exits right after its own fork
        return
    try:
        _detach()
        if os.fork():
            os._exit(0)
        send_now(urls, event, _appender(log_path))
    finally:
        os._exit(0)


def _detach() -> None:
    import signal

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, signal.SIG_DFL)  # never the supervisor's handlers in this copy of it
    os.setsid()
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    try:
        fds = [int(name) for name in os.listdir("/proc/self/fd")]
    except OSError:
        fds = list(range(3, 1024))
    for fd in fds:
        if fd > 2:
            try:
                os.close(fd)
            except OSError:
                pass


def _appender(path: str) -> Callable[[str], None]:
    def log(line: str) -> None:
        import time

        data = f"{time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())} {line}\n".encode("utf-8", "replace")
        try:
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        except OSError:
            return
        try:
            os.write(fd, data)
        finally:
            os.close(fd)

    return log


# ---------------------------------------------------------------- notify.json on the volume
def read_urls(path: str) -> List[str]:
    """The URLs notify.json lists ([] without the file, or when it is not what the launcher wrote)."""
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except (OSError, ValueError):
        return []
    urls = data.get(NotifyKey.URLS) if isinstance(data, dict) else None
    return [u for u in urls if isinstance(u, str) and _URL_RE.match(u)] if isinstance(urls, list) else []


def write_urls(path: str, urls: List[str]) -> None:
    """notify.json, mode 600 (written atomically); no URLs: the file is removed (no notifications)."""
    from .record import write_json_atomic

    if not urls:
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        return
    write_json_atomic(path, {NotifyKey.URLS: urls}, mode=0o600)
