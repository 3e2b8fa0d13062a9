"""Fixtures of the pod-side tests that run the program for real (tests/fixtures/pod_harness.py)."""

from __future__ import annotations

import uuid

import pytest

from tests.fixtures.pod_harness import PodSandbox, WebhookSink


@pytest.fixture
def pod(tmp_path, venv_templates):
    """A stand-in pod whose volume has a warm venv (no pip at launch), cleaned up after the test."""
    sandbox = PodSandbox(tmp_path / "pod", session=f"rt-{uuid.uuid4().hex[:12]}", venv_template=venv_templates["warm"])
    yield sandbox
    sandbox.cleanup()


@pytest.fixture
def sink():
    """A webhook on 127.0.0.1 that records what it receives."""
    server = WebhookSink()
    yield server
    server.close()
