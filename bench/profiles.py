"""The figures of every link profile side by side, the warm relaunch's target under `far`, and the
round-trip table (bench/roundtrips.py), as `python -m bench` prints them after each profile's own."""

from __future__ import annotations

FAR_RTT_BUDGET = 4  # warm relaunch under far: <= 4 RTT + FAR_FIXED_S, and >= 5x the seed's way
FAR_FIXED_S = 0.3
SIDE_BY_SIDE = (
    "cold_start",
    "warm_relaunch",
    "fixed_cost",
    "log_latency",
    "stop_latency",
    "preemption_recovery",
    "sync_noop",
    "runner_overhead",
)


def _s(x: float | None) -> str:
    if x is None:
        return "n/a"
    return f"{x * 1000:.0f} ms" if abs(x) < 1 else f"{x:.2f} s"


def _cell(f: dict | None) -> str:
    if f is None:
        return "-"
    if "error" in f:
        return "ERROR"
    value = f"{f['value']:.2f} %" if f["unit"] != "s" else _s(f["value"])
    b = f.get("baseline")
    if b:
        value += f" ({b['ratio']:.2f}x)"
    return value


def side_by_side(result: dict) -> list[str]:
    names = list(result["profiles"])
    width = 24
    lines = [
        "every figure per link profile (in brackets: the ratio to its baseline from the same profile's run)",
        f"  {'figure':22s}" + "".join(f"{n:>{width}s}" for n in names),
    ]
    for fig in SIDE_BY_SIDE:
        cells = [_cell(result["profiles"][n]["figures"].get(fig)) for n in names]
        if all(c == "-" for c in cells):
            continue
        lines.append(f"  {fig:22s}" + "".join(f"{c:>{width}s}" for c in cells))
    return lines


def far_target(result: dict) -> list[str]:
    p = result["profiles"].get("far")
    f = (p or {}).get("figures", {}).get("warm_relaunch")
    if not f or "error" in f:
        return []
    limit = FAR_RTT_BUDGET * p["rtt_s"] + FAR_FIXED_S
    ratio = f["baseline"]["ratio"]
    ok = f["value"] <= limit and ratio >= 5.0
    return [
        f"warm relaunch under far: median {_s(f['value'])}; target <= {FAR_RTT_BUDGET} RTT + {FAR_FIXED_S} s = "
        f"{_s(limit)} and >= 5x the seed's way ({ratio:.2f}x): {'OK' if ok else 'MISSED'} "
        f"({(f['value'] - FAR_FIXED_S) / p['rtt_s']:.1f} RTT above {FAR_FIXED_S} s)"
    ]


def round_trip_table(result: dict) -> list[str]:
    shaped = [n for n, p in result["profiles"].items() if p["rtt_s"] > 0 and "round_trips" in p["figures"]]
    if not shaped:
        return []
    name = "far" if "far" in shaped else shaped[-1]
    p = result["profiles"][name]
    f = p["figures"]["round_trips"]
    if "error" in f:
        return [f"round trips: ERROR {f['error']}"]
    base = result["profiles"].get("loopback", {}).get("figures", {}).get("round_trips", {})
    base_rows = base.get("extra", {}).get("commands", {}) if "error" not in base else {}
    rtt = p["rtt_s"]
    lines = [
        f"round trips per command under {name} (counted: API requests at the fake, connections and "
        "request/response turns at the link), each against its floor",
        f"  {'command':12s}{'wall':>9s}{'on the path':>12s}{'API req':>9s}{'SSH conn':>9s}{'SSH turns':>10s}"
        f"{'floor (API/conn/turns)':>24s}",
    ]
    for cmd, row in f["extra"]["commands"].items():
        fl = row["floor"]
        on_path = "n/a"
        if cmd in base_rows:
            on_path = f"{(row['seconds'] - base_rows[cmd]['seconds']) / rtt:.1f} RTT"
        lines.append(
            f"  {cmd:12s}{_s(row['seconds']):>9s}{on_path:>12s}{row['api_requests']:>9d}"
            f"{row.get('ssh_connections', 0):>9d}{row.get('ssh_exchanges', 0):>10d}"
            f"{fl['api_requests']:>10d} / {fl['ssh_connections']} / {fl['ssh_exchanges']} ({fl['reference']})"
        )
    floors = f["extra"]["floors"]
    for ref, c in floors.items():
        lines.append(
            f"  floor {ref}: {c.get('ssh_connections', 0)} SSH connection(s), {c.get('ssh_exchanges', 0)} turns, "
            f"{_s(c['seconds'])}"
        )
    lines.append(
        "  'on the path': (wall under this profile - wall on loopback) / RTT: the round trips the command waited"
    )
    return lines


def render_profiles(result: dict) -> list[str]:
    lines = side_by_side(result) if len(result["profiles"]) > 1 else []
    for block in (far_target(result), round_trip_table(result)):
        if block:
            lines += ["", *block]
    return lines


__all__ = ["render_profiles"]
