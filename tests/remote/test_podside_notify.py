"""remote/podside/notify.py: the URL shapes, the secret kept secret, and a send that never waits.
The requests go to a real HTTP server on 127.0.0.1 (tests/fixtures/pod_harness.py WebhookSink)."""

from __future__ import annotations

import json
import os
import socket
import time

import pytest

from remote.podside import notify
from remote.podside.contract import EventKey, new_event
from tests.fixtures.pod_harness import WebhookSink, wait_for

SECRET = "T000/B000/s3cr3tXYZ"
EVENT = new_event(
    id="r1:2:finished",
    event="finished",
    run_id="r1",
    pod_id="pod-abc",
    attempt=2,
    step=40,
    checkpoint="/workspace/repo/checkpoints/x/checkpoint-40",
    time="2026-01-01T00:00:00Z",
    source="pod",
)


@pytest.mark.parametrize(
    "url, shape",
    [
        (f"https://hooks.slack.com/services/{SECRET}", notify.Shape.SLACK),
        (f"https://discord.com/api/webhooks/123/{SECRET}", notify.Shape.DISCORD),
        (f"https://discordapp.com/api/webhooks/123/{SECRET}", notify.Shape.DISCORD),
        ("https://ntfy.sh/my-secret-topic", notify.Shape.NTFY),
        ("https://ntfy.example.org/topic", notify.Shape.NTFY),
        ("https://ntfy.example.org/a/b", notify.Shape.JSON),  # more than one path segment
        ("https://discord.com/channels/1/2", notify.Shape.JSON),  # not a webhook
        ("https://example.org/hook?key=x", notify.Shape.JSON),
    ],
)
def test_the_url_decides_the_shape(url, shape):
    assert notify.shape_of(url) is shape


def test_the_bodies_each_service_expects():
    body, headers = notify.request_parts(f"https://hooks.slack.com/services/{SECRET}", EVENT)
    assert json.loads(body) == {"text": notify.text(EVENT)} and headers["Content-Type"] == "application/json"
    assert notify.text(EVENT) == (
        "runpod-trainer: run r1 attempt 2 finished (step 40, checkpoint checkpoint-40, pod pod-abc)"
    )
    body, _ = notify.request_parts(f"https://discord.com/api/webhooks/1/{SECRET}", EVENT)
    assert json.loads(body) == {"content": notify.text(EVENT)}
    body, headers = notify.request_parts("https://ntfy.sh/topic", EVENT)
    assert body.decode() == notify.text(EVENT) and headers["Title"] == "run r1: finished"
    body, headers = notify.request_parts("https://example.org/hook", EVENT)
    assert json.loads(body) == EVENT and list(json.loads(body)) == list(EventKey.ALL)
    assert headers["User-Agent"] == notify.USER_AGENT  # Discord's edge refuses urllib's own


def test_bad_urls_are_refused_without_showing_them():
    assert notify.parse_urls(f" https://a.example/{SECRET}, https://ntfy.sh/t ") == [
        f"https://a.example/{SECRET}",
        "https://ntfy.sh/t",
    ]
    assert notify.parse_urls("") == []
    for bad in (f"ftp://x/{SECRET}", "https://user:s3cr3tpw@example.org/x", f"hooks.slack.com/{SECRET}"):
        with pytest.raises(notify.NotifyUrlError) as err:
            notify.parse_urls(f"https://ok.example/x,{bad}")
        assert SECRET not in str(err.value) and "s3cr3tpw" not in str(err.value) and "URL 2 of 2" in str(err.value)


def test_what_is_shown_of_a_url_is_its_host():
    url = f"https://hooks.slack.com/services/{SECRET}?x=1"
    assert notify.redact(url) == "https://hooks.slack.com/***"
    text = f"<urlopen error unknown url {url}> while posting services/{SECRET}"
    assert SECRET not in notify.scrub(text, url)


def test_a_post_reaches_the_webhook_and_failures_say_why_without_the_url(sink):
    assert notify.post(sink.url(), EVENT) == (True, False, "ok")
    assert sink.events() == [EVENT] and sink.requests[0]["path"] == "/hook/s3cr3t-t0ken"
    sink.status = 404
    assert notify.post(sink.url(), EVENT) == (False, False, "HTTP 404")
    sink.status = 500
    assert notify.post(sink.url(), EVENT)[:2] == (False, True)
    closed = f"http://127.0.0.1:{free_port()}/{SECRET}"
    ok, again, what = notify.post(closed, EVENT)
    assert (ok, again) == (False, True) and SECRET not in what and "Connection" in what


def test_one_retry_at_most_and_a_redacted_line_for_what_failed(sink):
    logged: list[str] = []
    sink.status = 500
    assert notify.send_now([sink.url()], EVENT, logged.append, pause=lambda _s: None) == 0
    assert len(sink.requests) == notify.TRIES == 2
    assert logged == ["notify: r1:2:finished to http://127.0.0.1/*** failed: HTTP 500"]
    sink.status = 404
    notify.send_now([sink.url()], EVENT, logged.append, pause=lambda _s: None)
    assert len(sink.requests) == 3, "a 4xx is not retried"


def test_a_request_gives_up_after_its_timeout(sink):
    sink.release.clear()  # answers nothing
    started = time.monotonic()
    ok, again, what = notify.post(sink.url(), EVENT, timeout=0.5)
    assert not ok and again and time.monotonic() - started < 3 and SECRET not in what


def test_the_detached_send_returns_at_once_and_delivers_later(sink, tmp_path):
    sink.release.clear()  # a slow webhook
    started = time.monotonic()
    notify.send_detached([sink.url()], EVENT, str(tmp_path / "notify.log"))
    returned = time.monotonic() - started
    wait_for(lambda: sink.arrived == 1, 10, "the grandchild's request to arrive")
    assert returned < 1.0 and sink.requests == [], "returned while the webhook still held the request"
    sink.release.set()
    wait_for(lambda: sink.events() == [EVENT], 10, "the event to be delivered")


def test_the_detached_sender_keeps_no_descriptor_of_its_parent(sink, tmp_path):
    """A grandchild holding the launcher's stdout would keep the runner's SSH channel open; one holding
    the launch lock would keep the next launch waiting."""
    sink.release.clear()
    read_end, write_end = os.pipe()
    try:
        notify.send_detached([sink.url()], EVENT, str(tmp_path / "notify.log"))
        wait_for(lambda: sink.arrived == 1, 10, "the request")
        os.close(write_end)
        write_end = -1
        os.set_blocking(read_end, False)
        assert os.read(read_end, 1) == b"", "EOF: nobody else holds the pipe's write end"
    finally:
        sink.release.set()
        os.close(read_end)
        if write_end >= 0:
            os.close(write_end)


def test_notify_json_is_private_and_only_urls_come_back(tmp_path):
    path = str(tmp_path / "notify.json")
    notify.write_urls(path, [f"https://a.example/{SECRET}"])
    assert os.stat(path).st_mode & 0o777 == 0o600
    assert notify.read_urls(path) == [f"https://a.example/{SECRET}"]
    (tmp_path / "notify.json").write_text(json.dumps({"urls": ["file:///etc/passwd", 3, "https://b.example/x"]}))
    assert notify.read_urls(path) == ["https://b.example/x"]
    notify.write_urls(path, [])
    assert not os.path.exists(path) and notify.read_urls(path) == []


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
