"""The runner's error types. Each carries the process exit code the CLI returns for it
(runner/exitcodes.py defines them all; the constants below are its members under their old names)."""

from __future__ import annotations

from collections.abc import Iterable

from runner.exitcodes import ExitCode

EXIT_OK = ExitCode.OK
EXIT_FAILED = ExitCode.FAILED
EXIT_USAGE = ExitCode.USAGE
EXIT_STACK = ExitCode.STACK
EXIT_POD = ExitCode.POD
EXIT_API = ExitCode.API
EXIT_SSH = ExitCode.SSH
EXIT_DOCTOR = ExitCode.CHECK_FAILED  # `runner doctor`: a check failed
EXIT_INTERRUPTED = ExitCode.INTERRUPTED


class RunnerError(Exception):
    """An error the user can act on, as data: what happened (`summary`), the other side's own words when
    they help (`cause`), and what to do (`hint`). `message` renders them, here and nowhere else; the CLI
    prints `error: <message>` and exits with `exit_code`. Code that needs part of an error reads the
    field (`summary`), never a slice of the text."""

    exit_code: int = EXIT_FAILED
    # True when recreating the pod through the stack (`pulumi up --refresh`, with `--replace` for a pod that still exists) can fix it.
    recoverable = False

    def __init__(
        self, summary: str, *, cause: str | None = None, hint: str | None = None, exit_code: int | None = None
    ):
        self.summary = summary
        self.cause = cause
        self.hint = hint
        if exit_code is not None:
            self.exit_code = exit_code
        super().__init__(summary)

    @property
    def message(self) -> str:
        return render(self.summary, cause=self.cause, hint=self.hint)

    @property
    def headline(self) -> str:
        """What happened and the other side's words, without what to do (for a line that says it next)."""
        return render(self.summary, cause=self.cause)

    def add_note_of_release(self, note: str) -> None:
        """The command stopped the pod it had started again: that note replaces the hint (which may have said
        to stop it by hand); a start that timed out keeps the advice for the retry."""
        again = " Retry when the cause is fixed (slow image pulls: raise POD_START_TIMEOUT)."
        self.hint = note + (again if isinstance(self, PodStartTimeout) else "")

    def __str__(self) -> str:
        return self.message


def render(summary: str, *, cause: str | None = None, hint: str | None = None) -> str:
    """The one way an error becomes text: "summary (cause). hint" (no doubled full stops)."""
    text = summary.rstrip()
    if cause:
        text = f"{text.rstrip('.')} ({cause.strip().rstrip('.')})"
    if hint:
        if text and text[-1] not in ".:;!?":
            text += "."
        text = f"{text} {hint.strip()}"
    return text


class UsageError(RunnerError):
    exit_code = EXIT_USAGE


class SettingsError(UsageError):
    """.runpod.env / environment / flags are missing or invalid."""


class NotImplementedYet(UsageError):
    """A subcommand whose module does not exist yet."""


class DamagedStateFile(UsageError):
    """A file of the runner's own state on this machine cannot be read as what it should hold."""

    def __init__(self, path: object, why: str, consequence: str):
        super().__init__(f"{path} is damaged ({why}): delete it; {consequence}")
        self.path, self.why = path, why


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

    def __init__(self, pod_id: str, state: str, shown: str):
        super().__init__(f"pod {pod_id} is no longer running ({shown})")
        self.pod_id, self.state, self.shown = pod_id, state, shown


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


class TensorBoardError(RunnerError):
    """TensorBoard could not be found or started on the pod."""


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
    """A RunPod client exception as a RunnerError: RunPod's own words are the cause, the hint says what to do."""
    from backends.runpod import errors as rp  # local import: errors.py stays importable without the client
    from infra.advice import SPOT_FALLBACK, raise_bid

    what = f"pod {pod_id}" if pod_id else "the resource"
    detail = getattr(exc, "message", None) or str(exc)
    if isinstance(exc, rp.AuthError):
        return ApiAuthError(
            "RunPod rejected the API key",
            cause=detail,
            hint="Check RUNPOD_API_KEY in .runpod.env: create a key with read/write access at "
            "https://www.runpod.io/console/user/settings.",
        )
    if isinstance(exc, rp.NotFound):
        return PodGone(
            f"{what} no longer exists on RunPod",
            hint="Run `pulumi up` to recreate it (the network volume and its checkpoints are kept).",
        )
    if isinstance(exc, rp.NoCapacity):
        return PodNoCapacity(
            f"RunPod has no free GPU to start {what}",
            cause=detail,
            hint="Your data on the network volume is safe. Retry later, or move the pod to a free GPU by replacing "
            "it through the stack: `pulumi up --refresh --replace <pod_urn>` (`pulumi stack output pod_urn`; "
            "`runner train` does this itself during recovery).",
        )
    if isinstance(exc, rp.GraphQLGone):
        return SpotUnavailableError(
            f"RunPod retired its GraphQL API, the only API that could resume, rent or price spot pods, so {what} "
            "cannot be resumed as a spot pod and no new spot pod can be rented",
            cause=detail,
            hint="Everything else (reading, stopping, on-demand pods, the volume) works over REST v2. Let the stack "
            f"use on-demand pods: {SPOT_FALLBACK}, then `pulumi up` (an in-place update); the next `runner train` "
            "replaces the stopped spot pod with an on-demand one through the stack, keeping the network volume and "
            "its checkpoints.",
        )
    if isinstance(exc, rp.SpotUnavailable):
        return SpotUnavailableError(
            "RunPod rejected the spot (interruptible) operation; spot pods may have been withdrawn",
            cause=detail,
            hint=f"Allow on-demand pods: {SPOT_FALLBACK}, then `pulumi up --refresh`.",
        )
    if isinstance(exc, rp.BidTooLow):
        return PodError(
            f"RunPod refused the spot bid for {what}",
            cause=detail,
            hint=f"Raise the stack's bid, then refresh the outputs and retry: {raise_bid(_bid_hint(detail))} and "
            "`pulumi up` (an update in place: the pod and the volume stay).",
        )
    if isinstance(exc, rp.RateLimited):
        return ApiError("RunPod is rate-limiting requests", cause=detail, hint="Wait a minute and retry.")
    if isinstance(exc, rp.TransientError):
        return ApiError("the RunPod API is not answering properly", cause=detail, hint="Retry in a minute.")
    if isinstance(exc, rp.InvalidAction):
        return ApiError(
            f"RunPod refused the action on {what}", cause=detail, hint="`python -m runner status` shows its state."
        )
    return ApiError("RunPod API error", cause=detail)
