"""The runner's error types. Each carries the process exit code the CLI returns for it.

Exit codes (also in `python -m runner --help`):
  0    success (`train`: training exited 0)
  2    bad input: usage, settings (.runpod.env), a command not implemented yet
  3    Pulumi: CLI missing, stack missing, no outputs yet, malformed outputs, `pulumi up` failed
  4    the pod: gone, no capacity to resume it, spot withdrawn, did not become reachable in time
  5    the RunPod API: key rejected, API unavailable, unexpected answer
  6    SSH: could not connect or authenticate, link lost for good
  7    `doctor`: at least one check failed (each FAIL line says the fix)
  130  interrupted (Ctrl-C)
`train` otherwise exits with training's own exit code.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from backends.runpod.models import Pod

EXIT_OK = 0
EXIT_USAGE = 2
EXIT_STACK = 3
EXIT_POD = 4
EXIT_API = 5
EXIT_SSH = 6
EXIT_DOCTOR = 7  # `runner doctor`: a check failed
EXIT_INTERRUPTED = 130


class RunnerError(Exception):
    """An error the user can act on; the CLI prints `error: <message>` and exits with `exit_code`."""

    exit_code = 1
    # True when recreating the pod through the stack (`pulumi up --refresh`, with `--replace` for a pod that still exists) can fix it.
    recoverable = False

    def __init__(self, message: str, *, exit_code: int | None = None):
        super().__init__(message)
        self.message = message
        if exit_code is not None:
            self.exit_code = exit_code


class UsageError(RunnerError):
    exit_code = EXIT_USAGE


class SettingsError(UsageError):
    """.runpod.env / environment / flags are missing or invalid."""


class NotImplementedYet(UsageError):
    """A subcommand whose module does not exist yet."""


class StackError(RunnerError):
    exit_code = EXIT_STACK


class PulumiNotInstalled(StackError):
    pass


class NoStackOutputs(StackError):
    pass


class PodError(RunnerError):
    exit_code = EXIT_POD


class PodGone(PodError):
    """The pod was terminated or never existed; the stack can recreate it."""

    recoverable = True


class PodNoCapacity(PodError):
    """RunPod has no GPU to resume the pod on its host; recreating through the stack can place it elsewhere."""

    recoverable = True


class SpotUnavailableError(PodError):
    """RunPod rejected the spot operations (spot withdrawn); switch the stack to on-demand."""


class PodNotRunning(PodError):
    """The command only works on a running pod and was told not to start it."""


class PodLeft(PodError):
    """The pod stopped or disappeared under a command that was working with it."""

    def __init__(self, pod_id: str, state: str, pod: Pod | None = None):
        change = getattr(pod, "last_status_change", None)
        status = getattr(pod, "status", None)
        shown = f"{status}: {change}" if status and change else (status or str(state))
        super().__init__(f"pod {pod_id} is no longer running ({shown})")
        self.pod_id, self.state, self.pod = pod_id, state, pod


class PodStartTimeout(PodError):
    """The pod did not become RUNNING with a working SSH endpoint within the deadline."""


class ApiError(RunnerError):
    exit_code = EXIT_API


class ApiAuthError(ApiError):
    pass


class VolumeError(ApiError):
    """The network volume's S3 API (runner/volume) refused or failed a request; the message says what to do."""


class VolumeAuthError(VolumeError):
    """The S3 API key was rejected, or the request went to another data center's endpoint (403)."""


class VolumeClockSkew(VolumeError):
    """RunPod's S3 API rejects requests more than an hour off its clock."""


class SshError(RunnerError):
    """Every SSH failure: the CLI prints the message and exits with 6."""

    exit_code = EXIT_SSH


class SshKeyError(SshError):
    """The private key file is missing, unreadable, encrypted or not a key."""


class SshConnectError(SshError):
    """No SSH session could be set up (refused, timed out, handshake failed)."""


class SshAuthError(SshError):
    """The server rejected our key."""


class HostKeyMismatch(SshError):
    """The server presented a host key that the pin does not allow."""


class HostKeyStoreError(SshError):
    """The pin store cannot be read or written."""


class SshDisconnected(SshError):
    """The link to the server dropped (or stopped answering)."""


class SshTimeout(SshError):
    """A remote command did not finish within its timeout."""


class SshNotReady(SshError):
    """No SSH banner on host:port within the deadline."""


class RemoteFileShrunk(SshError):
    """The followed file is shorter than the offset we resume from (it was replaced or truncated)."""


class PortInUse(SshError):
    def __init__(self, port: int, detail: str = ""):
        super().__init__(
            f"local port {port} is already in use{f' ({detail})' if detail else ''}; stop whatever listens "
            f"there (`ss -ltnp 'sport = :{port}'` shows it) or choose another local port"
        )
        self.port = port


# SSH failures that a reconnect may cure.
RETRYABLE_SSH = (SshDisconnected, SshConnectError, SshNotReady)


def redact(text: str, secrets: Iterable[str | None]) -> str:
    """Replace every non-trivial secret occurring in `text` by `***` (for echoing tool output)."""
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "***")
    return text


def _bid_hint(detail: str) -> str:
    """A bid just above the minimum RunPod named (one unit of its last shown decimal more, since the
    text may be rounded), else a placeholder."""
    import re
    from decimal import Decimal

    m = re.search(r"minimum[^$\d]*\$?\s*(\d+(?:\.(\d+))?)", detail, re.IGNORECASE)
    if not m:
        return "<USD per GPU-hour, above RunPod's minimum bid>"
    places = max(len(m.group(2) or ""), 3)
    step = Decimal(1).scaleb(-places)
    return str(Decimal(m.group(1)).quantize(step) + step)


def from_runpod_error(exc: Exception, *, pod_id: str | None = None) -> RunnerError:
    """Translate a RunPod client exception into a RunnerError with a message that says what to do."""
    from backends.runpod.errors import (
        AuthError,
        BidTooLow,
        GraphQLGone,
        InvalidAction,
        NoCapacity,
        NotFound,
        RateLimited,
        SpotUnavailable,
        TransientError,
    )

    what = f"pod {pod_id}" if pod_id else "the resource"
    detail = getattr(exc, "message", None) or str(exc)
    if isinstance(exc, AuthError):
        return ApiAuthError(
            "RunPod rejected the API key (" + detail + "). Check RUNPOD_API_KEY in .runpod.env: "
            "create a key with read/write access at https://www.runpod.io/console/user/settings."
        )
    if isinstance(exc, NotFound):
        return PodGone(
            f"{what} no longer exists on RunPod; run `pulumi up` to recreate it "
            "(the network volume and its checkpoints are kept)."
        )
    if isinstance(exc, NoCapacity):
        return PodNoCapacity(
            f"RunPod has no free GPU to start {what} ({detail}). Your data on the network volume is safe. "
            "Retry later, or move the pod to a free GPU by replacing it through the stack: "
            "`pulumi up --refresh --replace <pod_urn>` (`pulumi stack output pod_urn`; `runner train` "
            "does this itself during recovery)."
        )
    if isinstance(exc, GraphQLGone):
        return SpotUnavailableError(
            f"RunPod retired its GraphQL API ({detail}), the only API that could resume, rent or price spot "
            f"pods, so {what} cannot be resumed as a spot pod and no new spot pod can be rented. Everything else "
            "(reading, stopping, on-demand pods, the volume) works over REST v2. Let the stack use on-demand pods: "
            "`pulumi config set spotFallback on-demand` and `pulumi config set maxOnDemandPricePerGpu <USD per "
            "GPU-hour>`, then `pulumi up` (an in-place update); the next `runner train` replaces the stopped spot "
            "pod with an on-demand one through the stack, keeping the network volume and its checkpoints."
        )
    if isinstance(exc, SpotUnavailable):
        return SpotUnavailableError(
            f"RunPod rejected the spot (interruptible) operation ({detail}); spot pods may have been withdrawn. "
            "Allow on-demand pods: `pulumi config set spotFallback on-demand` and "
            "`pulumi config set maxOnDemandPricePerGpu <USD per GPU-hour>`, then `pulumi up --refresh`."
        )
    if isinstance(exc, BidTooLow):
        return PodError(
            f"RunPod refused the spot bid for {what}: {detail} Raise the stack's bid, then refresh the outputs "
            f"and retry: `pulumi config set bidPerGpu {_bid_hint(detail)}` and `pulumi up` (an update in place: "
            "the pod and the volume stay)."
        )
    if isinstance(exc, RateLimited):
        return ApiError(f"RunPod is rate-limiting requests ({detail}); wait a minute and retry.")
    if isinstance(exc, TransientError):
        return ApiError(f"the RunPod API is not answering properly ({detail}); retry in a minute.")
    if isinstance(exc, InvalidAction):
        return ApiError(f"RunPod refused the action on {what}: {detail}. `python -m runner status` shows its state.")
    return ApiError(f"RunPod API error: {detail}")
