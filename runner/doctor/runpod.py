"""Checks against the RunPod API, read-only: the key (one read), the GPU type, its stock and prices
in the volume's data center (on-demand over REST v2's catalog, spot over GraphQL), the spot API
itself, the volume, the pod. No call here creates, starts or resumes anything.

What is checked comes from the stack outputs when there are some, else from the stack config
(before the first `pulumi up`).
"""

from __future__ import annotations

from dataclasses import dataclass

from runner.doctor.check import Check, Context, Prerequisite, fail, named, ok, warn
from runner.doctor.stack import outputs, outputs_or_skip
from runner.doctor.stackconfig import stack_config
from runner.errors import RunnerError, SettingsError

KEY_FIX = (
    "create a key with read/write access at https://www.runpod.io/console/user/settings and set "
    "RUNPOD_API_KEY in .runpod.env"
)


@dataclass(frozen=True)
class Plan:
    """What the stack rents: from its outputs, else its config."""

    source: str
    gpu_type: str
    gpu_count: int
    data_center: str
    market: str
    bid_per_gpu: float | None
    spot_fallback: str
    max_on_demand: float | None


def plan(ctx: Context) -> Plan:
    def build() -> Plan:
        cfg = stack_config(ctx)
        try:
            o = outputs(ctx)
        except RunnerError:
            o = None
        if o is not None and o.gpu_type and o.data_center:
            return Plan(
                "stack outputs",
                o.gpu_type,
                o.gpu_count,
                o.data_center,
                o.market,
                o.bid_per_gpu if o.bid_per_gpu is not None else _num(cfg.get("bidPerGpu")),
                o.spot_fallback,
                o.max_on_demand_price,
            )
        return Plan(
            cfg.describe(),
            str(cfg.get("gpuType")),
            int(cfg.get("gpuCount") or 1),
            str(cfg.get("dataCenter")).upper(),
            "spot",
            _num(cfg.get("bidPerGpu")),
            str(cfg.get("spotFallback")),
            _num(cfg.get("maxOnDemandPricePerGpu")),
        )

    return ctx.once("plan", build)


def _num(value: object) -> float | None:
    try:
        return float(value) if value is not None else None  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None


def client(ctx: Context):
    """The API client, once the key was accepted (else Prerequisite: the key check says why)."""
    if not ctx.known("api_key_ok"):
        raise Prerequisite("not checked: the RunPod API key was not accepted")
    return ctx.once("client", lambda: ctx.settings.client(max_retries=1, timeout=20.0))


@named("RunPod API key")
def api_key(ctx: Context) -> Check:
    from backends.runpod.errors import AuthError, RunPodError

    name = "RunPod API key"
    try:
        ctx.settings.require_api_key()
    except SettingsError as e:
        return fail(name, e.message, KEY_FIX)
    c = ctx.once("client", lambda: ctx.settings.client(max_retries=1, timeout=20.0))
    try:
        pod_id = outputs(ctx).pod_id
    except RunnerError:
        pod_id = None
    try:
        if pod_id:  # the one read: the stack's pod
            c.find_pod(pod_id, with_history=False)
            what = f"read pod {pod_id}"
        else:
            c.list_network_volumes()
            what = "listed the network volumes"
    except AuthError:
        return fail(name, "RunPod rejected the API key (401)", KEY_FIX)
    except RunPodError as e:
        return fail(
            name,
            f"the RunPod API did not answer properly ({e.message})",
            "check the network (and RUNPOD_REST_URL if set), then retry in a minute",
        )
    ctx.remember("api_key_ok", True)
    return ok(name, f"accepted ({what})")


@named("GPU type")
def gpu_market(ctx: Context) -> list[Check]:
    """The GPU type, on-demand stock and price (v2 catalog), the spot API, spot stock and bid (GraphQL)."""
    from backends.runpod.errors import GraphQLGone, NotFound, RunPodError, SpotUnavailable

    c = client(ctx)
    p = plan(ctx)
    gpu = f"{p.gpu_count}x {p.gpu_type} in {p.data_center}"
    checks: list[Check] = []
    try:
        od = c.on_demand_price(p.gpu_type, p.gpu_count, p.data_center)
    except NotFound:
        return [
            fail(
                "GPU type",
                f"RunPod has no GPU type {p.gpu_type!r} ({p.source})",
                "`pulumi config set gpuType 'NVIDIA GeForce RTX 4090'` (a RunPod GPU type id)",
            )
        ]
    except RunPodError as e:  # the catalog answered without a usable price: the error names the field
        return [fail("GPU type", f"RunPod's GPU catalog: {e.message}", "retry in a minute; if it stays, see the hint")]
    checks.append(ok("GPU type", f"{p.gpu_type} exists ({p.source})"))
    price = od.per_gpu
    shown = f"${price:.3f}/GPU-h ({od.price_field})"
    if od.stock == "NONE":
        checks.append(
            fail(
                "on-demand stock",
                f"no {gpu} available on demand right now ({shown})",
                "retry later; or pick a GPU type with stock there (`pulumi config set gpuType ...`); "
                "a new dataCenter replaces the volume and loses its data",
            )
        )
    elif p.spot_fallback == "on-demand" and (p.max_on_demand is None or price > p.max_on_demand):
        cap = f"${p.max_on_demand:.3f}" if p.max_on_demand is not None else "not set"
        checks.append(
            warn(
                "on-demand stock",
                f"{gpu}: stock {od.stock}, {shown}, above the cap maxOnDemandPricePerGpu ({cap}): the fallback would refuse",
                f"pulumi config set maxOnDemandPricePerGpu {price}",
            )
        )
    else:
        cap = f", cap ${p.max_on_demand:.3f}" if p.max_on_demand is not None else ""
        checks.append(ok("on-demand stock", f"{gpu}: stock {od.stock}, {shown}{cap}"))
    try:
        sp = c.spot_price(p.gpu_type, p.gpu_count, p.data_center)
    except GraphQLGone as e:
        return checks + [_spot_gone(p, f"RunPod retired its GraphQL API ({e.message})")]
    except SpotUnavailable as e:
        return checks + [_spot_gone(p, f"RunPod no longer offers spot through its API ({e.message})")]
    except RunPodError as e:
        return checks + [warn("spot API", f"the spot price query failed ({e.message})", "retry in a minute")]
    checks.append(ok("spot API", "GraphQL answers the spot price query"))
    minimum = sp.minimum_bid_per_gpu
    if (sp.stock_status or "NONE").upper() == "NONE" or minimum is None:
        checks.append(
            fail(
                "spot stock",
                f"no spot {gpu} right now",
                "retry later, or allow on-demand: "
                "`pulumi config set spotFallback on-demand` and `pulumi config set maxOnDemandPricePerGpu <USD>`",
            )
        )
    elif p.bid_per_gpu is None or p.bid_per_gpu < minimum:
        bid = f"${p.bid_per_gpu:.3f}" if p.bid_per_gpu is not None else "not set"
        checks.append(
            fail(
                "spot stock",
                f"{gpu}: stock {sp.stock_status}, minimum bid ${minimum:.3f}/GPU-h, above bidPerGpu ({bid})",
                f"pulumi config set bidPerGpu {minimum + 0.01:.2f}",
            )
        )
    else:
        checks.append(
            ok(
                "spot stock",
                f"{gpu}: stock {sp.stock_status}, minimum bid ${minimum:.3f}/GPU-h, bidPerGpu ${p.bid_per_gpu:.3f}",
            )
        )
    return checks


def _spot_gone(p: Plan, why: str) -> Check:
    fix = (
        "`pulumi config set spotFallback on-demand` and `pulumi config set maxOnDemandPricePerGpu <USD per GPU-hour>`,"
        " then `pulumi up`"
    )
    if p.spot_fallback == "on-demand":
        return warn("spot API", why + "; the stack falls back to on-demand", "")
    return fail("spot API", why, fix)


@named("network volume")
def volume(ctx: Context) -> Check:
    from backends.runpod.errors import NotFound

    name = "network volume"
    c = client(ctx)
    o = outputs_or_skip(ctx, "`pulumi up` creates the volume")
    if not o.volume_id:
        raise Prerequisite("not checked: the stack outputs name no volume_id")
    try:
        v = c.get_network_volume(o.volume_id)
    except NotFound:
        return fail(
            name,
            f"volume {o.volume_id} (stack output volume_id) does not exist on RunPod",
            "`pulumi up --refresh` (a new volume starts empty: `python -m runner sync` again)",
        )
    if o.data_center and v.data_center and v.data_center != o.data_center:
        return fail(
            name,
            f"volume {v.id} is in {v.data_center}, the stack says {o.data_center}",
            "`pulumi up --refresh` to bring the outputs in line",
        )
    return ok(name, f"{v.id} ({v.name}, {v.size_gb} GB) in {v.data_center}")


@named("pod")
def pod_state(ctx: Context) -> Check:
    from runner.pod.state import PodState, classify

    name = "pod"
    c = client(ctx)
    o = outputs_or_skip(ctx, "`pulumi up` creates the pod")
    pod = c.find_pod(o.pod_id, with_history=True)
    state = classify(pod, spot=o.is_spot)
    if state == PodState.GONE:
        return warn(
            name,
            f"pod {o.pod_id} no longer exists",
            "`runner train` recreates it through the stack (or `pulumi up --refresh` now)",
        )
    assert pod is not None
    mismatch = _pod_key_mismatch(ctx, c, pod.id)
    if mismatch:
        return fail(
            name,
            f"pod {pod.id} is {state}, but it accepts another SSH key (its PUBLIC_KEY) than the public "
            f"half of SSH_KEY_PATH ({ctx.settings.ssh_key_path}): SSH would be refused",
            "`pulumi up` (the stack's key differs from the pod's: the pod is replaced, the volume stays), "
            "or set SSH_KEY_PATH to the key the pod was created with",
        )
    cost = f", ${pod.cost_per_hr:.3f}/h now" if pod.cost_per_hr else ""
    if o.data_center and pod.data_center and pod.data_center != o.data_center:
        return warn(
            name,
            f"pod {pod.id} is {state} in {pod.data_center}, the volume in {o.data_center}",
            "`pulumi up --refresh`",
        )
    return ok(name, f"{pod.id} is {state} ({pod.status}{cost})")


def raw_pod(ctx: Context, c, pod_id: str) -> dict | None:
    """The pod's v2 JSON as RunPod sends it (once): its `env` and `args` (start command) are not in the
    Pod model. None when it cannot be read."""
    from urllib.parse import quote

    from backends.runpod.errors import RunPodError

    def read() -> dict | None:
        try:
            data = c._rest("GET", f"/v2/pods/{quote(pod_id, safe='')}", operation="get pod (environment)")
        except RunPodError:
            return None
        return data if isinstance(data, dict) else None

    return ctx.once(f"raw_pod:{pod_id}", read)


def _pod_key_mismatch(ctx: Context, c, pod_id: str) -> bool:
    """Whether the pod's own PUBLIC_KEY (v2 `env`) is a different key than the public half of
    SSH_KEY_PATH. False when either is unknown."""
    if not ctx.known("ssh_key"):  # did not load (the key check says why), or was not checked
        return False
    key = ctx.once("ssh_key", lambda: None)
    data = raw_pod(ctx, c, pod_id)
    env = data.get("env") if isinstance(data, dict) else None
    theirs = env.get("PUBLIC_KEY") if isinstance(env, dict) else None
    if not isinstance(theirs, str) or not theirs.strip():
        return False
    return " ".join(theirs.split()[:2]) != f"{key.get_name()} {key.get_base64()}"


__all__ = ["api_key", "gpu_market", "plan", "pod_state", "raw_pod", "volume"]
