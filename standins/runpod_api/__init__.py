"""A faithful fake of the RunPod APIs this project uses (REST v2 + the GraphQL spot operations).

Real HTTP on 127.0.0.1; rules and texts from /work/shared/reference/runpod-api.md.
Run by hand: python -m standins.runpod_api --port 0 --api-key KEY [--ssh-host H --ssh-ports 2201,2202]
"""

from .server import INJECTABLE, FakeRequest, FakeRunPod, Injection
from .state import ApiError, FakePod, FakeState, FakeVolume, GpuPrice

__all__ = [
    "FakeRunPod",
    "FakePod",
    "FakeVolume",
    "FakeState",
    "FakeRequest",
    "Injection",
    "INJECTABLE",
    "ApiError",
    "GpuPrice",
]
