"""What a failed `pulumi` command meant, said with the fix: no stack, not logged in, no passphrase, else
its last lines (secrets redacted). runner/pod/stack.py runs the commands."""

from __future__ import annotations

from collections.abc import Sequence

from runner.errors import StackError, redact


def known_failure(stack: str, stderr: str) -> StackError | None:
    """The failures every `pulumi` command can meet (no stack, not logged in, no passphrase), else None."""
    low = stderr.lower()
    if "no stack named" in low or "no stack selected" in low or ("stack" in low and "not found" in low):
        return StackError(
            f"Pulumi has no stack {stack!r} in this project. Create it with `pulumi stack init {stack}` and "
            f"`pulumi up`, or set PULUMI_STACK / --stack to an existing one (`pulumi stack ls`)."
        )
    if "pulumi login" in low or "pulumi_access_token" in low or "not logged in" in low:
        return StackError(
            "Pulumi is not logged in to a backend; run `pulumi login --local` (no account needed), then `pulumi up`."
        )
    if "passphrase" in low:
        return StackError(
            "Pulumi needs the stack's passphrase to decrypt secrets; set PULUMI_CONFIG_PASSPHRASE "
            "or PULUMI_CONFIG_PASSPHRASE_FILE in .runpod.env or the environment."
        )
    return None


def explain_failure(stack: str, stderr: str, secrets: Sequence[str]) -> StackError:
    known = known_failure(stack, stderr)
    if known is not None:
        return known
    tail = "\n".join(redact(stderr, secrets).strip().splitlines()[-8:])
    return StackError(
        f"`pulumi stack output` failed for stack {stack!r}:\n{tail}"
        if tail
        else f"`pulumi stack output` failed for stack {stack!r} without an error message."
    )
