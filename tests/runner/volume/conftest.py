"""Fixtures for the volume-without-a-pod tests: RunPod's S3 API stand-in (standins/runpod_s3.py: moto's
server behind RunPod's rules) whose bucket is the pod sandbox's /workspace directory, so what S3
writes the pod reads and the other way round.

`s3_env.start(status)` adds the pod (and its volume) to the fake RunPod API, starts the stand-in for that
volume and puts its keys and endpoint into the environment. PutObject's cap is scaled down (SMALL_PUT)
on both sides so a file of a few hundred KB goes multipart.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import pytest

from standins.runpod_s3 import RunPodS3
from tests.runner.test_sync import PodEnv, pod_env, pod_sshd  # noqa: F401  (fixtures)

SMALL_PUT = 256 * 1024
SMALL_PART = 100 * 1024


@dataclass
class S3Env:
    pod_env: PodEnv
    monkeypatch: pytest.MonkeyPatch
    s3: RunPodS3 | None = None
    started: list[RunPodS3] = field(default_factory=list)

    def start(self, status: str = "EXITED", *, keys: bool = True, **standin) -> RunPodS3:
        self.pod_env.add_pod(status)
        volume_id = self.pod_env.stub.behaviour()["outputs"]["volume_id"]
        s3 = RunPodS3(volume_id=volume_id, volume_dir=self.pod_env.workspace, put_limit=SMALL_PUT, **standin)
        s3.start()
        self.started.append(s3)
        self.s3 = s3
        if keys:
            for k, v in s3.env().items():
                self.monkeypatch.setenv(k, v)
        return s3

    @property
    def fake(self):
        return self.pod_env.fake


@pytest.fixture
def s3_env(pod_env, monkeypatch) -> S3Env:  # noqa: F811
    import runner.volume.listing as listing
    import runner.volume.transfer as transfer

    monkeypatch.setattr(transfer, "PUT_LIMIT", SMALL_PUT)
    monkeypatch.setattr(transfer, "PART_SIZE", SMALL_PART)
    monkeypatch.setattr(listing, "STALL_PAUSE_S", 0.0)
    for key in ("RUNPOD_S3_ACCESS_KEY", "RUNPOD_S3_SECRET_KEY", "RUNPOD_S3_ENDPOINT_URL"):
        monkeypatch.delenv(key, raising=False)
    env = S3Env(pod_env, monkeypatch)
    yield env
    for s3 in env.started:
        s3.stop()


@contextmanager
def ctrl_c_on(s3: RunPodS3, when: Callable[[object], bool]) -> Iterator[threading.Event]:
    """The user presses Ctrl-C when the stand-in gets the first request for which when(request) holds,
    and the runner has seen it before that request goes on. Yields the event "it was pressed"."""
    pressed, seen = threading.Event(), threading.Event()

    def on_sigint(signum, frame):
        seen.set()
        raise KeyboardInterrupt

    def hook(req) -> None:
        if not pressed.is_set() and when(req):
            pressed.set()
            os.kill(os.getpid(), signal.SIGINT)
            assert seen.wait(10)

    s3.on_request = hook
    old = signal.signal(signal.SIGINT, on_sigint)
    try:
        yield pressed
    finally:
        signal.signal(signal.SIGINT, old)
        s3.on_request = None
