"""The runner's and the watcher's notifications (runner/eventlog.py, runner/notify.py): sent once per
event, never waited for, the webhook URL (a secret) never shown."""

from __future__ import annotations

import pytest

from remote.podside.contract import Event, EventSource
from runner.errors import SettingsError
from runner.eventlog import RunnerEvents, read_local
from runner.paths import StatePaths
from runner.settings import load_settings
from tests.fixtures.pod_harness import WebhookSink
from tests.fixtures.train_harness import wait_for


@pytest.fixture
def held_sink():
    sink = WebhookSink(held=True)  # answers nothing until released: a slow webhook
    yield sink
    sink.close()


def test_an_event_is_sent_once_and_nothing_waits_for_the_webhook(tmp_path, held_sink):
    said: list[str] = []
    events = RunnerEvents(StatePaths(tmp_path / "state", "dev"), EventSource.WATCHER, [held_sink.url()], said.append)

    sent = events.emit(Event.PREEMPTED, "r1", 1, pod="pod1", step=40, message="Outbid")

    assert sent is not None and sent["id"] == "r1:1:preempted" and sent["source"] == "watcher"
    wait_for(lambda: held_sink.arrived == 1, 10, "the POST to reach the (held) webhook")  # emit returned first
    assert events.emit(Event.PREEMPTED, "r1", 1) is None  # the same event again: nothing sent
    held_sink.release.set()
    [body] = held_sink.wait_events("preempted")
    assert {k: body[k] for k in ("event", "run_id", "pod_id", "attempt", "step", "message")} == {
        "event": "preempted",
        "run_id": "r1",
        "pod_id": "pod1",
        "attempt": 1,
        "step": 40,
        "message": "Outbid",
    }
    assert [e["id"] for e in read_local(StatePaths(tmp_path / "state", "dev"), "r1")] == ["r1:1:preempted"]
    assert said == []


def test_a_recurring_event_takes_the_next_id(tmp_path):
    events = RunnerEvents(StatePaths(tmp_path / "state", "dev"), EventSource.RUNNER, [])
    first = events.emit(Event.WAITING_FOR_CAPACITY, "r1", 2, recurring=True)
    second = events.emit(Event.WAITING_FOR_CAPACITY, "r1", 2, recurring=True)
    assert (first["id"], second["id"]) == ("r1:2:waiting-for-capacity", "r1:2:waiting-for-capacity:2")


def test_a_dead_webhook_is_logged_without_its_secret_path(tmp_path):
    paths = StatePaths(tmp_path / "state", "dev")
    dead = "http://127.0.0.1:9/hook/s3cr3t-t0ken"  # the discard port: nothing listens
    RunnerEvents(paths, EventSource.RUNNER, [dead]).emit(Event.GAVE_UP, "r1", 1)
    wait_for(lambda: paths.notify_log.exists() and "failed" in paths.notify_log.read_text(), 30, "the failure logged")
    logged = paths.notify_log.read_text()
    assert "r1:1:gave-up" in logged and "http://127.0.0.1/***" in logged and "s3cr3t" not in logged


def test_notify_url_is_a_secret_setting(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "Pulumi.yaml").write_text("name: x\nruntime: python\n")
    monkeypatch.setenv("NOTIFY_URL", "https://hooks.slack.com/services/T0/B0/s3cr3t, https://ntfy.sh/my-topic")
    settings = load_settings()
    assert settings.notify_urls == ("https://hooks.slack.com/services/T0/B0/s3cr3t", "https://ntfy.sh/my-topic")
    assert "https://hooks.slack.com/services/T0/B0/s3cr3t" in settings.secrets()
    assert "services/T0/B0/s3cr3t" in settings.secrets()  # the path alone is the key too
    assert "s3cr3t" not in repr(settings)
    monkeypatch.setenv("NOTIFY_URL", "hooks.slack.com/services/T0/B0/s3cr3t")
    with pytest.raises(SettingsError) as e:
        load_settings()
    assert "NOTIFY_URL" in e.value.message and "s3cr3t" not in e.value.message
