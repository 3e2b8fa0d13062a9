"""The live check's read-only probes: nothing here creates, starts or changes anything.

Raw REST reads (RunPodClient._rest) are used where the check is about the wire format itself
(a field's name, the pagination envelope); everything else goes through the client's own calls.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

from backends.runpod.client import RunPodClient
from backends.runpod.errors import AuthError, GraphQLGone, RunPodError, SpotUnavailable
from runner.livecheck.findings import Report, Verdict

CANDIDATES = 6  # cheapest GPU types asked for stock, at most


@dataclass(frozen=True)
class Choice:
    """The cheapest GPU type with stock, where, and what spot would cost (None: no spot)."""

    gpu_type: str
    data_center: str
    on_demand_per_hr: float
    minimum_bid: float | None


class KeyRejected(Exception):
    pass


def _raw(client: RunPodClient, path: str, operation: str) -> Any:
    return client._rest("GET", path, operation=operation)


def key_and_lists(client: RunPodClient, report: Report) -> None:
    try:
        pods = client.list_pods()
    except AuthError as e:
        report.step("API key", False, f"rejected ({e.message})")
        raise KeyRejected from None
    report.step("API key", True, f"accepted (GET /v2/pods: {len(pods)} pod(s))")
    vols = client.list_network_volumes()
    report.step("network volumes", True, f"GET /v2/network-volumes: {len(vols)} volume(s)")
    page = _raw(client, "/v2/pods", "pods page (raw)")
    shape = (
        "a `pagination` object"
        if isinstance(page, dict) and isinstance(page.get("pagination"), dict)
        else "no `pagination` object (one complete page, as the client reads it)"
    )
    report.step(
        "list pagination",
        isinstance(page, dict) and isinstance(page.get("pods"), list),
        f"GET /v2/pods answers {{pods: [...]}} with {shape}",
    )


def _secure_price(entry: dict) -> float | None:
    price = entry.get("price")
    value = price.get("secure") if isinstance(price, dict) else None
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0 else None


def cheapest_gpu(client: RunPodClient, report: Report) -> Choice | None:
    """The GPU catalog (assumption 9: `price.secure` per GPU) and the cheapest type in stock somewhere in Secure Cloud."""
    try:
        data = _raw(client, "/v2/catalog/gpus", "GPU catalog (raw)") or {}
    except RunPodError as e:
        report.step("GPU catalog", False, f"GET /v2/catalog/gpus failed: {e.message}")
        return None
    gpus = [g for g in (data.get("gpus") if isinstance(data, dict) else None) or [] if isinstance(g, dict)]
    priced = {str(g.get("id")): p for g in gpus if (p := _secure_price(g)) is not None and g.get("id")}
    report.step("GPU catalog", bool(gpus), f"GET /v2/catalog/gpus: {len(gpus)} GPU type(s)")
    if priced:
        report.find(9, Verdict.CONFIRMED, f"{len(priced)} of {len(gpus)} catalog entries carry a numeric price.secure")
    elif gpus:
        fields = sorted({k for g in gpus for k in g})
        report.find(
            9,
            Verdict.REFUTED,
            f"no entry has a numeric price.secure; the fields are {', '.join(fields)} "
            "(fix _catalog_price_from_v2 in backends/runpod/models.py)",
        )
    for gpu_type, per_gpu in sorted(priced.items(), key=lambda kv: kv[1])[:CANDIDATES]:
        query = urlencode({"include": "AVAILABILITY", "product": "POD", "count": 1, "cloud": "SECURE"})
        try:
            detail = _raw(client, f"/v2/catalog/gpus/{quote(gpu_type, safe='')}?{query}", "GPU stock (raw)") or {}
        except RunPodError:
            continue
        dcs = [
            d
            for d in detail.get("dataCenters") or []
            if isinstance(d, dict) and str(d.get("availability") or "NONE").upper() != "NONE" and d.get("id")
        ]
        if dcs:
            choice = Choice(gpu_type, str(dcs[0]["id"]), per_gpu, None)
            report.step(
                "cheapest GPU in stock",
                True,
                f"{choice.gpu_type} in {choice.data_center}, ${choice.on_demand_per_hr:.3f}/h on demand",
            )
            return _with_spot(client, report, choice)
    report.step("cheapest GPU in stock", True, "no priced GPU type has Secure Cloud stock right now (no lifecycle)")
    return None


def _with_spot(client: RunPodClient, report: Report, choice: Choice) -> Choice:
    """GraphQL's spot price for the choice (assumption 10 when GraphQL is gone)."""
    try:
        sp = client.spot_price(choice.gpu_type, 1, choice.data_center)
    except GraphQLGone as e:
        report.find(10, Verdict.CONFIRMED, f"/graphql answered HTTP {e.status}: {e.message}")
        report.step("spot price (GraphQL)", True, "GraphQL is retired: spot is gone with it")
        return choice
    except SpotUnavailable as e:
        report.step("spot price (GraphQL)", True, f"GraphQL answers, but without spot ({e.message})")
        return choice
    minimum = sp.minimum_bid_per_gpu
    report.step(
        "spot price (GraphQL)",
        True,
        f"minimum bid ${minimum:.3f}/GPU-h"
        if minimum is not None
        else "GraphQL answers without a minimum bid (no spot stock)",
    )
    if minimum:
        _per_gpu(client, report, choice, minimum)
    return Choice(choice.gpu_type, choice.data_center, choice.on_demand_per_hr, minimum)


def _per_gpu(client: RunPodClient, report: Report, choice: Choice, one: float) -> None:
    """Assumption 3: the minimum bid for 2 GPUs is the same number as for 1 when it is per GPU."""
    try:
        two = client.spot_price(choice.gpu_type, 2, choice.data_center).minimum_bid_per_gpu
    except RunPodError as e:
        report.find(3, Verdict.NOT_CHECKED, f"the 2-GPU spot price query failed ({e.message})")
        return
    if two is None:
        report.find(3, Verdict.NOT_CHECKED, "no 2-GPU spot price to compare with")
    elif abs(two - one) <= 0.01 * one:
        report.find(3, Verdict.CONFIRMED, f"minimumBidPrice ${one:.3f} for 1 GPU and ${two:.3f} for 2: per GPU")
    elif abs(two - 2 * one) <= 0.02 * one:
        report.find(
            3,
            Verdict.REFUTED,
            f"minimumBidPrice ${one:.3f} for 1 GPU, ${two:.3f} for 2: per pod "
            "(divide by gpuCount in backends/runpod/graphql.py spot_price)",
        )
    else:
        report.find(3, Verdict.NOT_CHECKED, f"minimumBidPrice ${one:.3f} for 1 GPU, ${two:.3f} for 2: inconclusive")


__all__ = ["Choice", "KeyRejected", "cheapest_gpu", "key_and_lists"]
