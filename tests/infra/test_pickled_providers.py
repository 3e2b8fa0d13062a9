"""Existing stacks hold their dynamic providers pickled by reference (`__provider` in every resource's
state). These are the exact strings today's stacks carry, serialized by the code before the RunPod client
moved out of infra/ (commit b26ef3b): they must keep loading, and as the providers of today."""

from __future__ import annotations

import base64

import dill
from pulumi.dynamic.dynamic import serialize_provider

from infra.pod_resource import PodProvider
from infra.volume_resource import VolumeProvider

POD_PROVIDER_2026_12 = "gASVKQAAAAAAAACMEmluZnJhLnBvZF9yZXNvdXJjZZSMC1BvZFByb3ZpZGVylJOUKYGULg=="
VOLUME_PROVIDER_2026_12 = "gASVLwAAAAAAAACMFWluZnJhLnZvbHVtZV9yZXNvdXJjZZSMDlZvbHVtZVByb3ZpZGVylJOUKYGULg=="


def load(serialized: str):
    """What `python -m pulumi.dynamic` does with a resource's __provider (pulumi/dynamic/__main__.py)."""
    return dill.loads(base64.b64decode(serialized))


def test_providers_pickled_before_the_move_load_as_todays():
    assert type(load(POD_PROVIDER_2026_12)) is PodProvider
    assert type(load(VOLUME_PROVIDER_2026_12)) is VolumeProvider


def test_todays_providers_serialize_to_the_same_strings():
    """Unchanged strings: `pulumi up` sees no provider change on existing stacks (no diff, no replace)."""
    assert serialize_provider(PodProvider()) == POD_PROVIDER_2026_12
    assert serialize_provider(VolumeProvider()) == VOLUME_PROVIDER_2026_12
