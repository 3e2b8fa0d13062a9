"""GET /v2/billing/pods as RunPod's v2.9.0 spec shapes it: time buckets (hour, day, week, month, year) of
what each pod was billed, with the resolved query and the totals in `metadata`.

What the fake bills: every stretch a pod runs (from each start to the stop, preemption or termination
that ends it, FakePod.billing) at the pod's hourly rate then, split over the buckets it overlaps. A
record is emitted per pod per bucket that has a charge. Query rules from the spec: startTime (default
30 days ago) snapped down to its bucket's start, endTime (default now) snapped up to the end of its
bucket unless on a boundary, lastN (the last N buckets ending with the current one) exclusive with
both; podId narrows to one pod (an unknown one: no records).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta, timezone
from typing import Any

from .state import ApiError, FakePod

BUCKETS = ("hour", "day", "week", "month", "year")
DEFAULT_WINDOW = timedelta(days=30)


def _parse(value: str, name: str) -> datetime:
    try:
        dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ApiError(400, f"{name} must be an RFC 3339 date-time, got {value!r}") from None
    if dt.tzinfo is None:
        raise ApiError(400, f"{name} must carry a time zone (e.g. 2026-06-01T00:00:00Z)")
    return dt.astimezone(timezone.utc)


def floor(dt: datetime, size: str) -> datetime:
    dt = dt.astimezone(timezone.utc).replace(minute=0, second=0, microsecond=0)
    if size == "hour":
        return dt
    dt = dt.replace(hour=0)
    if size == "day":
        return dt
    if size == "week":
        return dt - timedelta(days=dt.weekday())
    dt = dt.replace(day=1)
    return dt if size == "month" else dt.replace(month=1)


def following(dt: datetime, size: str) -> datetime:
    """The start of the bucket after the one starting at dt."""
    if size == "hour":
        return dt + timedelta(hours=1)
    if size == "day":
        return dt + timedelta(days=1)
    if size == "week":
        return dt + timedelta(weeks=1)
    if size == "month":
        return dt.replace(year=dt.year + dt.month // 12, month=dt.month % 12 + 1)
    return dt.replace(year=dt.year + 1)


def window(query: Mapping[str, str], now: datetime) -> tuple[datetime, datetime, str]:
    size = query.get("bucketSize") or "day"
    if size not in BUCKETS:
        raise ApiError(400, f"bucketSize must be one of {', '.join(BUCKETS)}")
    if "lastN" in query:
        if "startTime" in query or "endTime" in query:
            raise ApiError(400, "lastN is mutually exclusive with startTime/endTime")
        n = int(query["lastN"]) if query["lastN"].isdigit() else 0
        if n < 1:
            raise ApiError(400, "lastN must be a positive integer")
        end = following(floor(now, size), size)
        start = end
        for _ in range(n):
            start = floor(start - timedelta(seconds=1), size)
        return start, end, size
    start = floor(_parse(query["startTime"], "startTime") if "startTime" in query else now - DEFAULT_WINDOW, size)
    end = _parse(query["endTime"], "endTime") if "endTime" in query else now
    if floor(end, size) != end:
        end = following(floor(end, size), size)
    if end <= start:
        raise ApiError(400, "endTime must be after startTime")
    return start, end, size


def _charged(pod: FakePod, start: float, end: float, now: float) -> float:
    total = 0.0
    for began, ended, rate in pod.billing:
        overlap = min(end, ended if ended is not None else now) - max(start, began)
        if overlap > 0:
            total += overlap * rate / 3600.0
    return total


def _amounts(gpu: float) -> dict[str, float]:
    return {"totalAmount": round(gpu, 6), "gpuAmount": round(gpu, 6), "cpuAmount": 0.0, "diskAmount": 0.0}


def _iso(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


def pod_billing(pods: Iterable[FakePod], query: Mapping[str, str], now: float | None = None) -> dict[str, Any]:
    clock = time.time() if now is None else now
    start, end, size = window(query, datetime.fromtimestamp(clock, timezone.utc))
    wanted = query.get("podId")
    records: list[dict[str, Any]] = []
    for pod in pods:
        if wanted is not None and pod.id != wanted:
            continue
        bucket = start
        while bucket < end:
            nxt = following(bucket, size)
            gpu = _charged(pod, bucket.timestamp(), nxt.timestamp(), clock)
            if gpu > 0:
                records.append({"startTime": _iso(bucket), "endTime": _iso(nxt), "podId": pod.id, **_amounts(gpu)})
            bucket = nxt
    total = sum(r["gpuAmount"] for r in records)
    return {
        "records": records,
        "metadata": {
            "query": {"startTime": _iso(start), "endTime": _iso(end), "bucketSize": size, "podId": wanted},
            "recordCount": len(records),
            "uniquePodCount": len({r["podId"] for r in records}),
            "totals": _amounts(total),
        },
    }


__all__ = ["BUCKETS", "floor", "following", "pod_billing", "window"]
