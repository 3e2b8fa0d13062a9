"""Which pod of the stack a command works on, when the stack has several (podCount / podNames).

    settings = choose(settings, pod=args.pod, run=args.run, mode=Mode.FREE, say=say)   # runner train
    settings = choose(settings, pod=None, run=None, mode=Mode.ASK)                      # a companion

The answer is Settings seen from that pod (Settings.pod, Settings.pod_slot): its stack outputs
(read_outputs_for gives them), its local state (StatePaths.pod_dir) and its records on the volume. A
one-pod stack is left as it is (and --pod names nothing there but the pod itself).

    --pod NAME (or the pod's id)   that pod
    --run ID                        the pod this machine's record of the run names (none: as without)
    Mode.FREE (train)               the first free pod: no runner or watcher here leads it, and no run of
                                    this machine's is unfinished on it (stopped pods are free, and so
                                    are idle running ones); says which
    Mode.ASK (companions)           the only pod that runs; with several running and none named, the
                                    user chooses (a terminal), or the error lists them (exit 2)
"""

from __future__ import annotations

import sys
from dataclasses import replace
from enum import Enum

from runner.errors import UsageError
from runner.pod.stack import read_outputs_for
from runner.pod.stack_outputs import StackOutputs
from runner.pod.stack_pods import PodEntry
from runner.settings import Settings
from runner.types import Say, say_nothing

UNFINISHED = ("launching", "running", "detached")  # a run record's status while its run may still go on


class Mode(str, Enum):
    FREE = "free"  # runner train
    ASK = "ask"  # the companions
    ALL = "all"  # runner status: every pod unless one is named


def on_pod(settings: Settings, entry: PodEntry) -> Settings:
    return replace(settings, pod=entry.name, pod_slot=entry.slot)


def choose(
    settings: Settings,
    *,
    pod: str | None,
    run: str | None,
    mode: Mode,
    say: Say = say_nothing,
    outputs: StackOutputs | None = None,
) -> Settings:
    if outputs is None:
        outputs = read_outputs_for(settings)
        settings.chosen_with.put(outputs)  # the command's own read takes them: one `pulumi` run, not two
    if not outputs.pods:
        if pod and pod not in (outputs.pod_id, outputs.pod_name):
            raise UsageError(
                f"stack {outputs.stack!r} has one pod ({outputs.pod_id}); --pod {pod} names none of it",
                hint="Give a stack several pods with `pulumi config set podCount 2` and `pulumi up`.",
            )
        return settings
    if pod:
        return on_pod(settings, entry_named(outputs, pod))
    named = pod_of_run(settings, run) if run else None
    if named:
        return on_pod(settings, entry_named(outputs, named))
    if mode == Mode.ALL:
        return settings
    if mode == Mode.FREE:
        entry, why = first_free(settings, outputs)
        say(f"pod {entry.name} ({entry.pod_id}): {why}; name another with --pod")
        return on_pod(settings, entry)
    return on_pod(settings, ask(settings, outputs))


def entry_named(outputs: StackOutputs, name: str) -> PodEntry:
    found = next((e for e in outputs.pods if name in (e.name, e.pod_id)), None)
    if found is None:
        raise UsageError(
            f"stack {outputs.stack!r} has no pod {name!r}",
            hint=f"its pods: {', '.join(e.name for e in outputs.pods)}",
        )
    return found


def pod_of_run(settings: Settings, run_id: str) -> str | None:
    """The pod this machine's record of the run names (None: no such record; the mode decides)."""
    from runner.train import run_record

    record = run_record.load(settings.paths, run_id)
    return record.pod if record is not None else None


def runs_on(settings: Settings) -> dict[str, str]:
    """pod name -> the newest unfinished run this machine recorded on it."""
    from runner.train import run_record

    found: dict[str, tuple[str, str]] = {}
    for record in run_record.all_records(settings.paths):
        if record.pod and record.status in UNFINISHED:
            if record.pod not in found or record.updated_at > found[record.pod][0]:
                found[record.pod] = (record.updated_at, record.run_id)
    return {pod: run_id for pod, (_, run_id) in found.items()}


def availability(settings: Settings, outputs: StackOutputs) -> tuple[list[PodEntry], list[str]]:
    """The free pods (no runner or watcher here leads them, no unfinished run of this machine's on them),
    in the stack's order, and why each other one is busy."""
    from runner.stacklock import StackLock

    free: list[PodEntry] = []
    busy: list[str] = []
    running = runs_on(settings)
    for entry in outputs.pods:
        holder = StackLock.of(on_pod(settings, entry).paths).holder()
        if holder is not None:
            busy.append(f"{entry.name}: {holder.describe()} leads it")
        elif entry.name in running:
            busy.append(f"{entry.name}: run {running[entry.name]} is not finished")
        else:
            free.append(entry)
    return free, busy


def first_free(settings: Settings, outputs: StackOutputs) -> tuple[PodEntry, str]:
    free, busy = availability(settings, outputs)
    if free:
        return free[0], "the first free pod"
    raise UsageError(
        f"every pod of stack {outputs.stack!r} is busy ({'; '.join(busy)})",
        hint="Wait for one to finish, follow one with `runner logs --pod NAME`, add pods (podCount), "
        "or queue runs with `runner sweep`.",
    )


def ask(settings: Settings, outputs: StackOutputs) -> PodEntry:
    """The pod with the one live run; with several, the user's choice (or an error that lists them)."""
    running = runs_on(settings)
    live = [e for e in outputs.pods if e.name in running]
    if len(live) <= 1:
        return live[0] if live else outputs.pods[0]
    lines = [f"  {i}. {e.name} ({e.pod_id}): run {running[e.name]}" for i, e in enumerate(live, 1)]
    if not sys.stdin.isatty():
        raise UsageError(
            "several runs are live on this stack's pods:\n" + "\n".join(lines),
            hint="Name one with --pod NAME or --run ID.",
        )
    print("Several runs are live on this stack's pods:\n" + "\n".join(lines), file=sys.stderr)
    while True:
        answer = input(f"Which one (1-{len(live)})? ").strip()
        if answer.isdigit() and 1 <= int(answer) <= len(live):
            return live[int(answer) - 1]
        named = [e for e in live if answer in (e.name, e.pod_id)]
        if named:
            return named[0]


__all__ = ["Mode", "availability", "choose", "first_free", "on_pod", "runs_on"]
