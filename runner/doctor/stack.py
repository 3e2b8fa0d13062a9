"""Checks of the Pulumi side: the CLI and its version, the stack, its passphrase, its outputs
(read with the runner's own `pulumi stack output`, runner/pod/stack.py)."""

from __future__ import annotations

import re
import subprocess

from runner.doctor.check import Check, Context, Prerequisite, fail, ok, warn
from runner.errors import NoStackOutputs, PulumiNotInstalled, RunnerError, StackError
from runner.pod.stack import INSTALL_HINT, pulumi_binary, read_outputs_for
from runner.pod.stack_outputs import StackOutputs

MIN_MAJOR = 3


def pulumi_cli(ctx: Context) -> Check:
    name = "Pulumi CLI"
    exe = pulumi_binary(ctx.settings.pulumi_binary)
    try:
        out = subprocess.run(
            [exe, "version"],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=60,
            env=ctx.settings.subprocess_env(),
        )
    except (FileNotFoundError, PermissionError):
        ctx.remember("pulumi_missing", True)
        return fail(name, f"the Pulumi CLI ({exe!r}) was not found or is not executable", INSTALL_HINT)
    except subprocess.TimeoutExpired:
        return fail(name, f"`{exe} version` did not answer within 60s", "check that `pulumi version` works here")
    version = out.stdout.strip()
    m = re.match(r"v?(\d+)\.(\d+)", version)
    if out.returncode != 0 or not m:
        return fail(
            name, f"`{exe} version` failed (exit {out.returncode})", "reinstall the Pulumi CLI: " + INSTALL_HINT
        )
    if int(m.group(1)) < MIN_MAJOR:
        return warn(name, f"{exe} {version}: older than v{MIN_MAJOR}", "upgrade: " + INSTALL_HINT)
    return ok(name, f"{exe} {version}")


def outputs(ctx: Context) -> StackOutputs:
    """The stack outputs (once), or the StackError that explains why not."""
    return ctx.once("outputs", lambda: read_outputs_for(ctx.settings))


def outputs_or_skip(ctx: Context, why_needed: str) -> StackOutputs:
    """The stack outputs for a check that needs them; without them the check is a skip line (the stack
    check says what is wrong), `why_needed` saying what they would give."""
    try:
        return outputs(ctx)
    except RunnerError:
        raise Prerequisite(f"not checked: no stack outputs yet ({why_needed})") from None


def stack(ctx: Context) -> list[Check]:
    """Three lines from one `pulumi stack output`: the stack exists, its passphrase, its outputs."""
    s = ctx.settings
    stack_name, pass_name, out_name = f"stack {s.stack}", "stack passphrase", "stack outputs"
    passphrase = _passphrase(ctx)
    try:
        outs = outputs(ctx)
    except PulumiNotInstalled:
        return [
            Check(stack_name, *_skipped("the Pulumi CLI is missing")),
            passphrase,
            Check(out_name, *_skipped("the Pulumi CLI is missing")),
        ]
    except NoStackOutputs as e:
        return [
            ok(stack_name, "exists"),
            passphrase,
            fail(out_name, e.message, "`pulumi up` (then run the doctor again)"),
        ]
    except StackError as e:
        low = e.message.lower()
        if "no stack" in low:
            return [
                fail(
                    stack_name,
                    e.message,
                    f"`pulumi stack init {s.stack}` then `pulumi up`, or set PULUMI_STACK "
                    "to an existing stack (`pulumi stack ls`)",
                ),
                passphrase,
                Check(out_name, *_skipped("no stack")),
            ]
        if "passphrase" in low:
            return [
                ok(stack_name, "exists"),
                fail(
                    pass_name,
                    e.message,
                    "set PULUMI_CONFIG_PASSPHRASE_FILE (or PULUMI_CONFIG_PASSPHRASE) in "
                    ".runpod.env to the stack's passphrase",
                ),
                Check(out_name, *_skipped("the stack's secrets cannot be decrypted")),
            ]
        return [
            fail(stack_name, e.message, "run `pulumi stack output` here to see what is wrong"),
            passphrase,
            Check(out_name, *_skipped("`pulumi stack output` failed")),
        ]
    missing = [
        k
        for k, v in (
            ("volume_id", outs.volume_id),
            ("data_center", outs.data_center),
            ("gpu_type", outs.gpu_type),
            ("pod_urn", outs.pod_urn),
        )
        if not v
    ]
    out_check = (
        warn(
            out_name,
            f"pod {outs.pod_id}; missing {', '.join(missing)} (a stack from an older version)",
            "`pulumi up` once adds them",
        )
        if missing
        else ok(out_name, f"pod {outs.pod_id}, volume {outs.volume_id} in {outs.data_center}, {outs.market}")
    )
    return [ok(stack_name, "exists"), passphrase, out_check]


def _skipped(why: str):
    from runner.doctor.check import Status

    return Status.SKIP, f"not checked: {why}"


def _passphrase(ctx: Context) -> Check:
    s = ctx.settings
    name = "stack passphrase"
    if s.pulumi_passphrase_file is not None:
        try:
            s.pulumi_passphrase_file.read_bytes()
        except OSError as e:
            return fail(
                name,
                f"PULUMI_CONFIG_PASSPHRASE_FILE {s.pulumi_passphrase_file} cannot be read ({e.strerror})",
                "point PULUMI_CONFIG_PASSPHRASE_FILE at the file that holds the stack's passphrase",
            )
        return ok(name, f"PULUMI_CONFIG_PASSPHRASE_FILE ({s.pulumi_passphrase_file})")
    if s.pulumi_passphrase:
        return ok(name, f"PULUMI_CONFIG_PASSPHRASE ({s.sources.get('PULUMI_CONFIG_PASSPHRASE', 'set')})")
    return warn(
        name,
        "neither PULUMI_CONFIG_PASSPHRASE nor PULUMI_CONFIG_PASSPHRASE_FILE is set: a local-backend "
        "stack cannot decrypt its secrets (runpod:token) for `pulumi up`",
        "set PULUMI_CONFIG_PASSPHRASE_FILE in .runpod.env (not needed with a Pulumi Cloud backend)",
    )


__all__ = ["outputs", "pulumi_cli", "stack"]
