"""`python -m runner.livecheck [--lifecycle --max-spend USD] [--json]`: see runner/livecheck/__init__.py.

Exit codes: 0 every step answered as the client expects and no assumption was refuted; 1 a step
failed, an assumption was refuted or something could not be cleaned up; 2 bad input (no API key,
a lifecycle without its cap); 5 the API key was rejected; 130 interrupted (after the cleanup).
"""

from __future__ import annotations

import argparse
import signal
import sys
import uuid

from runner.livecheck.created import Created, stderr_say

RECORD = "livecheck-created.json"
NEEDS_KEY = (
    "the live check needs RUNPOD_API_KEY: a RunPod API key (https://www.runpod.io/console/user/settings; "
    "read access is enough for the default read-only checks, --lifecycle needs read/write). Set it in "
    "the environment (`RUNPOD_API_KEY=... python -m runner.livecheck`) or in .runpod.env. Nothing was called."
)


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m runner.livecheck",
        description=("Check the client's assumptions against the live RunPod API. Read-only unless --lifecycle."),
    )
    p.add_argument(
        "--lifecycle",
        action="store_true",
        help="also create the cheapest pod, read, stop and terminate it (costs money: needs --max-spend)",
    )
    p.add_argument(
        "--max-spend",
        type=float,
        metavar="USD",
        default=None,
        help="the most the lifecycle may spend, in US dollars (e.g. 0.10); required with --lifecycle",
    )
    p.add_argument(
        "--self-stop-after",
        type=float,
        metavar="SECONDS",
        default=None,
        help="with --lifecycle: when the pod asks to stop itself with its own key, after its container starts "
        "(default 60; the check waits as long again for RunPod to show it stopped)",
    )
    p.add_argument("--json", action="store_true", help="print the report as one JSON object")
    p.add_argument("--env-file", metavar="PATH", default=None, help="settings file (default: .runpod.env)")
    args = p.parse_args(argv)
    if args.lifecycle and (args.max_spend is None or not args.max_spend > 0):
        p.error("--lifecycle spends money: give the cap with --max-spend USD (e.g. --max-spend 0.10)")
    if args.self_stop_after is not None and not (args.lifecycle and 0 < args.self_stop_after <= 240):
        p.error("--self-stop-after goes with --lifecycle and takes 0 < SECONDS <= 240")
    return args


def _sigterm(signum, frame) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    from runner.errors import RunnerError
    from runner.settings import load_settings

    args = parse(argv)
    try:
        settings = load_settings(args.env_file)
    except RunnerError as e:
        print(f"error: {e.message}", file=sys.stderr)
        return 2
    if not settings.api_key:
        print(f"error: {NEEDS_KEY}", file=sys.stderr)
        return 2
    try:
        signal.signal(signal.SIGTERM, _sigterm)
    except ValueError:
        pass  # not the main thread (in-process tests)
    from backends.runpod.client import RunPodClient
    from backends.runpod.errors import RunPodError
    from runner.livecheck import lifecycle, reads, self_stop
    from runner.livecheck.findings import Report

    client = RunPodClient(
        settings.api_key, rest_url=settings.rest_url, graphql_url=settings.graphql_url, max_retries=2, timeout=30.0
    )
    report = Report()
    record = settings.state_dir / RECORD
    code = 0
    clock = lifecycle.Clock()
    created: Created | None = None
    try:
        earlier = Created.leftover(record)
        if earlier is not None:
            left = earlier.cleanup(client, stderr_say)
            report.step(
                "earlier run's pods",
                not left,
                f"removed what an interrupted live check left ({earlier.name}); still there: {left or 'nothing'}",
            )
            report.leftovers += left
        reads.key_and_lists(client, report)
        choice = reads.cheapest_gpu(client, report)
        if args.lifecycle and choice is not None:
            created = Created(record, f"rt-livecheck-{uuid.uuid4().hex[:8]}")
            after = args.self_stop_after if args.self_stop_after is not None else self_stop.DEFAULT_AFTER_S
            lifecycle.run(client, choice, created, report, clock, args.max_spend, stderr_say, self_stop_after_s=after)
    except reads.KeyRejected:
        code = 5
    except lifecycle.OverBudget:
        code = 2
    except KeyboardInterrupt:
        stderr_say("interrupted: removing what the live check created")
        code = 130
    except RunPodError as e:
        report.step("unexpected answer", False, str(e))
    finally:
        if created is not None:
            left = created.cleanup(client, stderr_say)
            report.leftovers += left
            for pid in list(clock.running):
                clock.ended(pid)
        report.spent_usd = clock.total()
    if args.json:
        print(report.as_json())
    else:
        report.print(sys.stdout)
    if code:
        return code
    return 0 if report.passed else 1


if __name__ == "__main__":
    sys.exit(main())
