"""Read the stack's outputs and (for recovery) re-apply the stack, by running the Pulumi CLI.

The runner never creates or deletes RunPod resources itself: the pod and the volume live in
Pulumi's state, and recreating them goes through `pulumi up`: refresh_and_up when the pod is gone
(the refresh drops it from the state, the up creates a new one), replace_and_up when it still
exists but cannot run where it is (a refresh keeps a stopped pod; `--replace <pod_urn>` makes the
provider delete it and create a new one, possibly on another host).
The executable is `pulumi` from PATH unless PULUMI_BINARY (env or .runpod.env) names another. What the
outputs mean, parsed and checked: runner/pod/stack_outputs.py.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections import deque
from collections.abc import Mapping, Sequence
from pathlib import Path

from runner.errors import PodNoCapacity, PulumiNotInstalled, StackError, redact
from runner.pod.stack_outputs import NEEDED_OUTPUTS, StackOutputs, parse_outputs
from runner.types import Say

INSTALL_HINT = (
    "Install the Pulumi CLI (`curl -fsSL https://get.pulumi.com | sh`, or `brew install pulumi/tap/pulumi`), "
    "then run `pulumi login --local` (keeps the state on this machine; no Pulumi account needed)."
)


def pulumi_binary(explicit: str | None = None) -> str:
    return explicit or os.environ.get("PULUMI_BINARY") or "pulumi"


def read_outputs(
    stack: str,
    *,
    project_root: Path | str | None = None,
    env: Mapping[str, str] | None = None,
    pulumi: str | None = None,
    secrets: Sequence[str] = (),
    timeout: float = 120.0,
) -> StackOutputs:
    """`pulumi stack output --json --show-secrets --stack <stack>` in the project root -> StackOutputs."""
    return parse_outputs(
        _output_json(stack, project_root=project_root, env=env, pulumi=pulumi, secrets=secrets, timeout=timeout), stack
    )


def _output_json(
    stack: str,
    *,
    project_root: Path | str | None,
    env: Mapping[str, str] | None,
    pulumi: str | None,
    secrets: Sequence[str],
    timeout: float = 120.0,
) -> object:
    exe = pulumi_binary(pulumi)
    argv = [exe, "stack", "output", "--json", "--show-secrets", "--stack", stack, "--non-interactive"]
    try:
        proc = subprocess.run(
            argv,
            cwd=str(project_root) if project_root else None,
            env=dict(env) if env is not None else None,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    except FileNotFoundError:
        raise PulumiNotInstalled(f"the Pulumi CLI ({exe!r}) was not found. {INSTALL_HINT}") from None
    except PermissionError:
        raise PulumiNotInstalled(f"the Pulumi CLI ({exe!r}) is not executable. {INSTALL_HINT}") from None
    except subprocess.TimeoutExpired:
        raise StackError(
            f"`pulumi stack output` did not finish within {timeout:.0f}s; "
            "check that `pulumi stack output` works in this directory."
        ) from None
    if proc.returncode != 0:
        from runner.pod.pulumi_errors import explain_failure

        raise explain_failure(stack, proc.stderr, secrets)
    # The output holds plaintext secrets: never echo it in an error.
    try:
        return json.loads(proc.stdout)
    except json.JSONDecodeError:
        raise StackError(
            f"`pulumi stack output --json` for stack {stack!r} printed {len(proc.stdout)} characters that are "
            "not JSON; run `pulumi stack output --json` yourself to see what is wrong."
        ) from None


def read_outputs_cached(
    stack: str,
    *,
    cache_dir: Path,
    project_root: Path,
    env: Mapping[str, str],
    pulumi: str | None = None,
    secrets: Sequence[str] = (),
) -> StackOutputs:
    """read_outputs, answered from runner/pod/stack_cache.py while the stack's local state file is
    unchanged (no `pulumi` run); any other backend always runs `pulumi stack output`."""
    from runner.pod.stack_cache import StackCache

    exe = pulumi_binary(pulumi)
    cache = StackCache.open(cache_dir, Path(project_root), stack, env, exe)
    if cache is not None:
        hit = cache.load()
        if hit is not None:
            try:
                return parse_outputs(hit, stack)
            except StackError:
                cache.drop()
    data = _output_json(stack, project_root=project_root, env=env, pulumi=exe, secrets=secrets)
    outputs = parse_outputs(data, stack)
    if cache is not None and isinstance(data, dict):
        cache.store(data, needed=NEEDED_OUTPUTS)
    return outputs


def refresh_and_up(
    stack: str,
    *,
    project_root: Path | str | None = None,
    env: Mapping[str, str] | None = None,
    pulumi: str | None = None,
    on_line: Say | None = None,
    secrets: Sequence[str] = (),
) -> None:
    """`pulumi up --refresh --yes --skip-preview --stack <stack>`, streaming each output line to on_line
    (default: stderr). Recreates a pod that is gone, through Pulumi's state, never outside it."""
    _up(stack, [], project_root=project_root, env=env, pulumi=pulumi, on_line=on_line, secrets=secrets)


def replace_and_up(
    stack: str,
    urn: str,
    *,
    project_root: Path | str | None = None,
    env: Mapping[str, str] | None = None,
    pulumi: str | None = None,
    on_line: Say | None = None,
    secrets: Sequence[str] = (),
) -> None:
    """`pulumi up --refresh --yes --skip-preview --replace <urn> --stack <stack>`: replace a resource
    that still exists (the pod provider deletes the old pod first, then creates a new one).
    Streaming, redaction and errors as refresh_and_up."""
    if not urn or not urn.startswith("urn:pulumi:"):
        raise StackError(f"cannot replace {urn!r}: not a Pulumi URN; run `pulumi up` to refresh the stack outputs.")
    _up(stack, ["--replace", urn], project_root=project_root, env=env, pulumi=pulumi, on_line=on_line, secrets=secrets)


def _up(
    stack: str,
    extra: Sequence[str],
    *,
    project_root: Path | str | None,
    env: Mapping[str, str] | None,
    pulumi: str | None,
    on_line: Say | None,
    secrets: Sequence[str],
) -> None:
    import sys

    emit = on_line or (lambda line: print(line, file=sys.stderr, flush=True))
    exe = pulumi_binary(pulumi)
    argv = [exe, "up", "--refresh", "--yes", "--skip-preview", *extra, "--stack", stack, "--non-interactive"]
    try:
        proc = subprocess.Popen(
            argv,
            cwd=str(project_root) if project_root else None,
            env=dict(env) if env is not None else None,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
            bufsize=1,
        )
    except FileNotFoundError:
        raise PulumiNotInstalled(f"the Pulumi CLI ({exe!r}) was not found. {INSTALL_HINT}") from None
    tail: deque[str] = deque(maxlen=12)
    assert proc.stdout is not None
    try:
        for raw in proc.stdout:
            line = redact(raw.rstrip("\n"), secrets)
            tail.append(line)
            emit(line)
    finally:
        proc.stdout.close()
        rc = proc.wait()
    if rc != 0:
        from infra.advice import NO_GPU

        joined = "\n".join(tail)
        if NO_GPU in joined:
            raise PodNoCapacity(
                f"`pulumi up` could not create a pod for stack {stack!r}: RunPod has {NO_GPU}",
                hint="Pulumi's lines above say what RunPod answered. Retry later (`runner train --wait-for-capacity 6h` "
                "keeps trying), or choose another GPU type or data center.",
            )
        from runner.pod.pulumi_errors import known_failure

        raise known_failure(stack, joined) or StackError(
            f"`pulumi up` failed for stack {stack!r} (exit {rc}); its last lines:\n{joined}",
            hint="Fix the cause and run `pulumi up` yourself, then retry.",
        )


def read_outputs_for(settings) -> StackOutputs:
    """read_outputs with everything taken from Settings, through the stack-output cache; seen from the
    pod the command chose (Settings.pod, runner/pod/choice.py) when the stack has several. The command's
    first read takes what choosing the pod read, if it did (Settings.chosen_with)."""
    first = settings.chosen_with.take()
    outputs = (
        first
        if isinstance(first, StackOutputs)
        else read_outputs_cached(
            settings.stack,
            cache_dir=settings.paths.stack_dir,
            project_root=settings.project_root,
            env=settings.subprocess_env(),
            pulumi=settings.pulumi_binary,
            secrets=settings.secrets(),
        )
    )
    return outputs.for_pod(settings.pod) if settings.pod else outputs


def refresh_and_up_for(settings, *, on_line: Say | None = None) -> None:
    refresh_and_up(
        settings.stack,
        project_root=settings.project_root,
        env=settings.subprocess_env(),
        pulumi=settings.pulumi_binary,
        on_line=on_line,
        secrets=settings.secrets(),
    )


def replace_and_up_for(settings, urn: str, *, on_line: Say | None = None) -> None:
    replace_and_up(
        settings.stack,
        urn,
        project_root=settings.project_root,
        env=settings.subprocess_env(),
        pulumi=settings.pulumi_binary,
        on_line=on_line,
        secrets=settings.secrets(),
    )
