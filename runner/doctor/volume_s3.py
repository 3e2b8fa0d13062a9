"""The volume without a pod (docs/guide/data.md): is RunPod's S3 API there for
the stack's volume, and are its keys accepted? One listing request, no RunPod API call."""

from __future__ import annotations

from runner.doctor.check import Check, Context, fail, named, ok, warn
from runner.doctor.stack import outputs_or_skip

KEYS_FIX = (
    "RunPod console > Settings > S3 API Keys > Create; put the access key (user_...) in "
    "RUNPOD_S3_ACCESS_KEY and the secret (rps_...) in RUNPOD_S3_SECRET_KEY in .runpod.env"
)


@named("S3 API")
def s3_access(ctx: Context) -> Check:
    from runner.volume import AccessState, check_access

    name = "S3 API"
    o = outputs_or_skip(ctx, "the volume's id and data center come from them")
    access = check_access(ctx.settings, o)
    if access.state == AccessState.OK:
        return ok(name, access.message)
    if access.state == AccessState.UNAVAILABLE:
        # Not a failure: everything works over SSH, only with the pod started for it.
        return warn(name, access.message, KEYS_FIX if not ctx.settings.s3_access_key else "")
    if access.state == AccessState.CLOCK:
        return fail(name, access.message, "set this machine's clock (e.g. `sudo timedatectl set-ntp true`)")
    if access.state == AccessState.REJECTED:
        return fail(name, access.message, KEYS_FIX)
    return fail(name, access.message, "check the network, or unset the S3 keys to use SSH only")
