"""`runner livecheck`: the key check, signals, the probes, the report and the exit code
(flags: runner/commands/livecheck.py).

Exit codes (runner/exitcodes.py): OK every step answered as the client expects and no assumption was
refuted; FAILED a step failed, an assumption was refuted or something could not be cleaned up; USAGE bad
input (no API key, a lifecycle without its cap, a cap too small); API the API key was rejected;
INTERRUPTED (after the cleanup).
"""

from __future__ import annotations

import argparse
import signal
import sys
import uuid

from runner.errors import SettingsError, UsageError
from runner.exitcodes import ExitCode
from runner.livecheck.created import Created, stderr_say
from runner.settings import Settings

RECORD = "livecheck-created.json"
NEEDS_KEY = (
    "the live check needs RUNPOD_API_KEY: a RunPod API key (https://www.runpod.io/console/user/settings; "
    "read access is enough for the default read-only checks, --lifecycle needs read/write). Set it in "
    "the environment (`RUNPOD_API_KEY=... python -m runner livecheck`) or in .runpod.env. Nothing was called."
)


def _sigterm(signum, frame) -> None:
    raise KeyboardInterrupt


def run(args: argparse.Namespace, settings: Settings) -> int:
    if args.lifecycle and (args.max_spend is None or not args.max_spend > 0):
        raise UsageError("--lifecycle spends money: give the cap with --max-spend USD (e.g. --max-spend 0.10)")
    if args.self_stop_after is not None and not (args.lifecycle and 0 < args.self_stop_after <= 240):
        raise UsageError("--self-stop-after goes with --lifecycle and takes 0 < SECONDS <= 240")
    if not settings.api_key:
        raise SettingsError(NEEDS_KEY)
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
    code = ExitCode.OK
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
        code = ExitCode.API
    except lifecycle.OverBudget:
        code = ExitCode.USAGE
    except KeyboardInterrupt:
        stderr_say("interrupted: removing what the live check created")
        code = ExitCode.INTERRUPTED
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
    return ExitCode.OK if report.passed else ExitCode.FAILED
