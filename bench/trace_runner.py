"""`python -m bench.trace_runner <runner args>`: `python -m runner <args>` with the entry and exit time of
a few runner functions appended to $BENCH_TRACE_FILE (JSON lines: name, enter, exit), for the phase
breakdown (bench/phases.py). Nothing in the runner changes: each function is wrapped right after its
module is imported (an import hook), so the runner's own import order and costs stay as they are.

Traced: runner.pod.stack.read_outputs_for (stack outputs), backends.runpod.client.RunPodClient._send
(each API request), runner.remote.ssh.SshConnection.open (SSH connect + handshake + auth) and
SshConnection.run_script (the launcher's round trip: script transfer and everything on the pod).
"""

from __future__ import annotations

import functools
import importlib.abc
import importlib.machinery
import json
import os
import sys
import time

T0 = time.time()
TARGETS = {
    "runner.pod.stack": [("", "read_outputs_for", "stack_outputs")],
    "backends.runpod.client": [("RunPodClient", "_send", "api_request")],
    "runner.remote.ssh": [("SshConnection", "open", "ssh_connect"), ("SshConnection", "run_script", "run_script")],
}
_events: list[dict] = []


def _wrap(fn, name: str):
    @functools.wraps(fn)
    def traced(*args, **kwargs):
        enter = time.time()
        try:
            return fn(*args, **kwargs)
        finally:
            _events.append({"name": name, "enter": enter, "exit": time.time()})

    return traced


def _patch(module) -> None:
    for owner_name, attr, label in TARGETS.get(module.__name__, []):
        owner = getattr(module, owner_name) if owner_name else module
        raw = owner.__dict__[attr]
        if isinstance(raw, classmethod):
            setattr(owner, attr, classmethod(_wrap(raw.__func__, label)))
        else:
            setattr(owner, attr, _wrap(raw, label))


class _Hook(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path, target=None):
        if fullname not in TARGETS:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or spec.loader is None:
            return spec
        loader = spec.loader
        real_exec = loader.exec_module

        def exec_module(module):
            real_exec(module)
            _patch(module)

        loader.exec_module = exec_module  # type: ignore[method-assign]
        return spec


def _write() -> None:
    path = os.environ.get("BENCH_TRACE_FILE")
    if path:
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps({"name": "process", "enter": T0, "exit": time.time()}) + "\n")
            for e in _events:
                fh.write(json.dumps(e) + "\n")


def main() -> int:
    sys.meta_path.insert(0, _Hook())
    sys.argv = ["runner", *sys.argv[1:]]
    from runner.cli import main as runner_main

    try:
        return runner_main()
    finally:
        _write()


if __name__ == "__main__":
    raise SystemExit(main())
