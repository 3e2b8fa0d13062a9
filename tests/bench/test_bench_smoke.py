"""The benchmark harness runs end to end in a tiny mode and writes well-formed JSON with every figure.

No timing assertions: the numbers are the benchmark's business (bash scripts/bench.sh)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from bench.cli import FIGURES

ROOT = Path(__file__).resolve().parents[2]


def test_bench_tiny_run_writes_every_figure(tmp_path):
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench",
            "--runs",
            "1",
            "--latency-seconds",
            "0.5",
            "--overhead-seconds",
            "1",
            "--files",
            "20",
            "--requirements",
            "1",
            "--boot-seconds",
            "0",
            "--fast-venv",
            "--cold-runs",
            "1",
            "--goodput-hours",
            "0.2",
            "--preemption-rate",
            "5",
            "--sim-hour-s",
            "30",
            "--profiles",
            "loopback,far",
            "--results-dir",
            str(tmp_path),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
        env={**os.environ, "BENCH_CACHE": str(tmp_path / "cache")},  # the stand-in image, built here
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    latest = json.loads((tmp_path / "latest.json").read_text())
    stamped = [p for p in tmp_path.glob("*.json") if p.name != "latest.json"]
    assert len(stamped) == 1 and json.loads(stamped[0].read_text()) == latest
    assert latest["schema"] == 2
    for key in ("nproc", "cpu_model", "python", "date"):
        assert latest["machine"][key], key
    assert list(latest["profiles"]) == ["loopback", "far"]
    for profile, p in latest["profiles"].items():
        assert set(p["figures"]) == set(FIGURES), profile
        for name, fig in p["figures"].items():
            assert "error" not in fig, (profile, name, fig.get("traceback"))
            assert fig["name"] == name
            assert set(fig["summary"]) >= {"n", "median", "p5", "p95", "min", "max"}
            assert isinstance(fig["spread"], dict) and fig["spread"]
            assert fig["met"] in (True, False, None)
            if name != "preemption_recovery":  # recovery may be absent: then value is None with a note
                assert fig["summary"]["n"] >= 1 and isinstance(fig["value"], float), name
            else:
                assert fig["value"] is not None or fig["note"]
                assert fig["extra"]["detection"]["summary"]["n"] >= 1
    # The far world went through the link: the round trips were counted there.
    far = latest["profiles"]["far"]["figures"]["round_trips"]["extra"]["commands"]
    assert far["status"]["ssh_connections"] >= 1 and far["status"]["ssh_exchanges"] > 0
    assert far["status"]["api_requests"] >= 1
    for way in ("runner", "seed"):
        assert latest["profiles"]["loopback"]["figures"]["goodput"]["extra"][way]["billed_s"] > 0
    assert "every figure per link profile" in out.stdout and "round trips per command under far" in out.stdout
    figures = latest["profiles"]["loopback"]["figures"]
    for name in ("cold_start", "warm_relaunch", "sync_noop"):
        base = figures[name]["baseline"]
        assert base["name"] and base["summary"]["n"] >= 1 and base["ratio"] > 0
    phases = figures["launch_phases"]["extra"]["phases"]
    assert list(phases) == [
        "startup_imports",
        "stack_outputs",
        "api_read",
        "ssh_connect",
        "startup_rest",
        "script_transfer",
        "launcher_start",
        "tmux_start",
        "code_and_venv",
        "trainer_start",
    ]
    assert all(p["n"] >= 1 for p in phases.values()), phases
    assert set(figures["fixed_cost"]["extra"]["per_command"]) >= {"status", "sync", "train"}
    assert "warm_relaunch" in out.stdout and "cold_start" in out.stdout and "results:" in out.stdout


def test_bench_unattended_tiny_run_writes_its_figures(tmp_path):
    """bench/unattended.py end to end in a tiny mode (a fast poll, no boot): the figures are there."""
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.unattended",
            "--runs",
            "1",
            "--poll",
            "0.3",
            "--confirm",
            "0.5",
            "--boot-seconds",
            "0",
            "--notify-runs",
            "1",
            "--results-dir",
            str(tmp_path),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "BENCH_CACHE": str(tmp_path / "cache"), "PYTHONPATH": str(ROOT)},
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    [written] = tmp_path.glob("unattended-*.json")
    result = json.loads(written.read_text())
    for name in ("relaunch_s", "notify_runner_s", "notify_pod_s"):
        assert result[name]["n"] >= 1 and result[name]["median"] is not None, name
    assert result["runs"][0]["resumed_from"] == "checkpoint-10"
