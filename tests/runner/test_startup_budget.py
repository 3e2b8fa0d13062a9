"""The start-up rules the benchmarks hold (fixed cost ~0.2 s, warm relaunch ~0.47 s), as tests: what a
command may have imported at the moments that matter. Each budget names what must not be there yet and
how many of the project's modules may be; a change that needs more raises the budget here, on purpose.

Run in a fresh interpreter each, as a user's command starts."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PROJECT = ("runner", "backends", "infra", "remote")
HEAVY = ("paramiko", "boto3", "botocore", "yaml", "pulumi", "http.client", "ssl", "urllib3", "cryptography")


def loaded_at(code: str) -> list[str]:
    """sys.modules (sorted) when `code` calls snapshot(), in a new interpreter."""
    prelude = textwrap.dedent("""
        import json, sys
        class _Snapshot(Exception):
            pass
        def snapshot(*_a, **_k):
            print(json.dumps(sorted(sys.modules)))
            raise _Snapshot
    """)
    script = prelude + textwrap.dedent(code) + "\nsnapshot()\n"
    wrapped = f"try:\n{textwrap.indent(script, '    ')}\nexcept _Snapshot:\n    pass\n"
    out = subprocess.run([sys.executable, "-c", wrapped], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def project(mods: list[str]) -> list[str]:
    return [m for m in mods if m.split(".")[0] in PROJECT]


def present(mods: list[str], names: tuple[str, ...]) -> list[str]:
    return sorted({n for n in names for m in mods if m == n or m.startswith(n + ".")})


def test_help_imports_only_the_command_table():
    mods = loaded_at("""
        import contextlib, io, runpy
        sys.argv = ["runner", "--help"]
        with contextlib.redirect_stdout(io.StringIO()):
            try:
                runpy.run_module("runner", run_name="__main__")
            except SystemExit:
                pass
    """)
    assert present(mods, HEAVY) == []
    # the command table, and what the parser and the help text need: the exit codes, the forgiving
    # parser, how lines look (all standard library only)
    allowed = (
        "runner.__main__",
        "runner.cli",
        "runner.errors",
        "runner.commands",
        "runner.exitcodes",
        "runner.cliparser",
        "runner.output",
        "runner.termtext",
    )
    assert [m for m in project(mods) if m != "runner" and not m.startswith(allowed)] == []
    assert len(project(mods)) <= 26, project(mods)


def test_train_starts_its_early_link_before_the_rest_of_the_runner_is_imported():
    """runner/train/command.py starts the background API read and SSH connection first: the session, the
    checks and the launch code are imported while the link is being opened, not before."""
    mods = loaded_at("""
        import argparse
        import runner.pod.early_link as early_link
        early_link.EarlyLink.start = staticmethod(snapshot)
        from runner.train import command
        command.run(argparse.Namespace(
            config="c.yaml", run_id=None, detach=False, keep_pod=False, budget_usd=None, max_recoveries=3,
            allow_unpushed=False, workspace=None, local=False, host=None, no_watch=False, wait_for_capacity=None,
            stall_minutes=None,
        ), None)
    """)
    not_yet = (
        "runner.train.session",
        "runner.train.attempt",
        "runner.train.prechecks",
        "runner.train.repo_check",
        "runner.train.console",
        "runner.train.remote_launch",
        "runner.train.ledger",
        "runner.companions",
        "runner.volume",
        "boto3",
        "botocore",
    )
    assert present(mods, not_yet) == []
    # paramiko without invoke and the unittest.mock it pulls in (runner/remote/__init__.py: ~70 ms)
    assert [m for m in mods if m.startswith(("invoke.", "unittest"))] == []
    # 65: the command table (17 commands), the settings with RunPod's config file and the URL and endpoint
    # checks, the exit codes and how lines look: all small, standard library only (modules split out, the
    # same code: the stack's outputs apart from the Pulumi CLI's calls; what a RunPod reply means apart
    # from the client's transport; the SSH handshake apart from the connection)
    assert len(project(mods)) <= 65, project(mods)


def test_sync_imports_no_runpod_client_before_rsync_is_spawned():
    mods = loaded_at("""
        import runner.cli, runner.companions.sync
    """)
    heavy = ("backends.runpod.client", "http.client", "runner.volume.sync", "paramiko", "runner.pod.link", "boto3")
    assert present(mods, heavy) == []
