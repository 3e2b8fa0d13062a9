"""`python -m bench`: run the figures, print median + spread + ratio, write bench/results/*.json."""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
import traceback
from datetime import datetime, timezone
from pathlib import Path

from bench import coldstart, fixedcost, follow, goodput, phases, recovery, relaunch, roundtrips, stop, sync
from bench.pod import ROOT, BenchOptions, BenchPod
from bench.profiles import render_profiles
from bench.stats import percentile, summary
from standins.link import PROFILES, profile_named

RESULTS_DIR = Path(__file__).resolve().parent / "results"
FIGURES = (
    "cold_start",
    "warm_relaunch",
    "launch_phases",
    "fixed_cost",
    "log_latency",
    "stop_latency",
    "preemption_recovery",
    "sync_noop",
    "round_trips",
    "runner_overhead",
    "goodput",
)
SCHEMA = 2


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    ap.add_argument("--quick", action="store_true", help="short smoke run: 2 runs, short follows, 1,000 files")
    ap.add_argument("--runs", type=int, help="runs per figure (default 5; --quick 2)")
    ap.add_argument("--latency-seconds", type=float, help="followed seconds per log-latency run (default 10)")
    ap.add_argument("--overhead-seconds", type=float, help="followed seconds of the overhead run (default 60)")
    ap.add_argument("--overhead-runs", type=int, default=1, help="overhead sessions (default 1)")
    ap.add_argument("--files", type=int, help="files in the sync tree (default 10000; --quick 1000)")
    ap.add_argument("--boot-seconds", type=float, help="the fake's simulated pod boot in the recovery runs (default 2)")
    ap.add_argument(
        "--requirements",
        type=int,
        default=None,
        help="N tiny local wheels in requirements.txt instead of the real set (torch, transformers, "
        "accelerate, datasets, ...: bench/wheelhouse.py, the default)",
    )
    ap.add_argument("--cold-runs", type=int, help="cold-start runs (default 2; --quick 1): the seed's take ~1 min each")
    ap.add_argument(
        "--sshd-home",
        choices=("clean", "machine"),
        default="clean",
        help="clean: the pod's SSH sessions get an empty HOME, like a RunPod image (default); "
        "machine: this machine's HOME and ~/.bashrc",
    )
    ap.add_argument(
        "--fast-venv",
        action="store_true",
        help="create the training venv without its own pip (seconds faster; for the smoke test)",
    )
    ap.add_argument(
        "--profiles",
        default=",".join(PROFILES),
        help=f"comma list of link profiles, each a world of its own (standins/link.py): {', '.join(PROFILES)}",
    )
    ap.add_argument(
        "--goodput-hours", type=float, help="simulated hours of training in the goodput run (default 3; --quick 1)"
    )
    ap.add_argument("--preemption-rate", type=float, default=1.0, help="preemptions per simulated hour (default 1)")
    ap.add_argument("--sim-hour-s", type=float, default=60.0, help="real seconds per simulated hour (default 60)")
    ap.add_argument("--only", default="", help=f"comma list of figures to run: {', '.join(FIGURES)}")
    ap.add_argument("--results-dir", default=str(RESULTS_DIR), help="where the JSON goes (default bench/results)")
    ap.add_argument("--keep", action="store_true", help="keep the temp directory of the run")
    args = ap.parse_args(argv)
    quick = args.quick
    args.runs = args.runs or (2 if quick else 5)
    args.latency_seconds = args.latency_seconds or (3.0 if quick else 10.0)
    args.overhead_seconds = args.overhead_seconds or (10.0 if quick else 60.0)
    args.files = args.files or (1000 if quick else 10000)
    args.cold_runs = args.cold_runs or (1 if quick else 2)
    args.boot_seconds = 2.0 if args.boot_seconds is None else args.boot_seconds
    args.goodput_hours = args.goodput_hours or (1.0 if quick else 3.0)
    wanted = [f.strip() for f in args.only.split(",") if f.strip()] or list(FIGURES)
    unknown = sorted(set(wanted) - set(FIGURES))
    if unknown:
        ap.error(f"unknown figure(s) {', '.join(unknown)}; choose from {', '.join(FIGURES)}")
    if args.runs < 1:
        ap.error("--runs must be at least 1")
    args.figures = wanted
    try:
        args.profile_list = [profile_named(p.strip()) for p in args.profiles.split(",") if p.strip()]
    except ValueError as e:
        ap.error(str(e))
    if not args.profile_list:
        ap.error("--profiles needs at least one profile")
    return args


# ---------------------------------------------------------------- the machine
def _first_line(argv: list[str]) -> str | None:
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    text = (out.stdout or out.stderr).strip()
    return text.splitlines()[0] if text else None


def machine_info() -> dict:
    cpu = None
    try:
        cpu = next(
            (
                ln.split(":", 1)[1].strip()
                for ln in Path("/proc/cpuinfo").read_text().splitlines()
                if ln.startswith("model name")
            ),
            None,
        )
    except OSError:
        pass
    commit = _first_line(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"])
    dirty = bool(_first_line(["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"]))
    return {
        "nproc": os.cpu_count(),
        "cpu_model": cpu,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "loadavg_start": list(os.getloadavg()),
        "openssh": _first_line(["ssh", "-V"]),
        "rsync": _first_line(["rsync", "--version"]),
        "tmux": _first_line(["tmux", "-V"]),
        # BENCH_COMMIT: set when benchmarking an exported snapshot (no .git) of a commit
        "commit": os.environ.get("BENCH_COMMIT") or (f"{commit}{'+dirty' if dirty else ''}" if commit else None),
    }


# ---------------------------------------------------------------- figures from raw measurements
def figure(
    name: str,
    unit: str,
    samples: list[float],
    *,
    statistic: str = "median",
    value: float | None = None,
    target: float,
    spread: dict | None = None,
    baseline: dict | None = None,
    extra: dict | None = None,
    note: str | None = None,
) -> dict:
    s = summary(samples)
    value = s["median"] if value is None else value
    return {
        "name": name,
        "unit": unit,
        "statistic": statistic,
        "value": value,
        "spread": spread or {k: s[k] for k in ("p5", "p95", "min", "max")},
        "samples": samples,
        "summary": s,
        "target": {"statistic": statistic, "max": target},
        "met": None if value is None else value <= target,
        "ratio_to_target": None if value is None else value / target,
        "baseline": baseline,
        "extra": extra or {},
        "note": note,
    }


def build_cold_start(raw: dict) -> dict:
    runner, seed = raw["runner"], raw["seed"]
    ratio = summary(seed)["median"] / summary(runner)["median"]
    f = figure(
        "cold_start",
        "s",
        runner,
        target=float("inf"),
        baseline={
            "name": "seed (git clone + fresh venv + pip install -r requirements.txt, torch included)",
            "samples": seed,
            "summary": summary(seed),
            "ratio": ratio,
            "ratio_statistic": "baseline median / figure median",
            "target_ratio_min": 5.0,
            "met": ratio >= 5.0,
        },
        extra={
            "runner_process_started": summary(raw["runner_process"]),
            "seed_process_started": summary(raw["seed_process"]),
            "installer": raw["installer"],
        },
    )
    f["target"] = {"statistic": "seed median / median", "min_ratio": 5.0}
    f["met"], f["ratio_to_target"] = ratio >= 5.0, 5.0 / ratio
    return f


def build_phases(raw: dict) -> dict:
    total = [r["total"] for r in raw["runs"]]
    f = figure(
        "launch_phases",
        "s",
        total,
        target=0.5,
        extra={"phases": {k: raw["summary"][k] for k in phases.PHASES}, "strace": raw["strace"]},
        note=None if raw["strace"] else "strace missing: the pod-side phases are lumped into trainer_start",
    )
    return f


def build_fixed_cost(raw: dict, train_first: list) -> dict:
    per = {name: summary(raw[name]) for name in fixedcost.COMMANDS}
    train = [x for x in train_first if x is not None]
    if train:
        per["train"] = summary(train)
    worst = max(per, key=lambda k: per[k]["median"])
    floor = summary(raw["python_floor"])["median"]
    f = figure(
        "fixed_cost",
        "s",
        raw[worst] if worst != "train" else train,
        target=0.3,
        extra={"per_command": per, "worst": worst, "python_floor": summary(raw["python_floor"])},
        note=f"worst command: {worst}; `python -c pass` alone: {floor * 1000:.0f} ms",
    )
    return f


def build_warm_relaunch(raw: dict) -> dict:
    runner, seed, pip = raw["runner"], raw["seed"], raw["runner_pip"]
    med, seed_med, pip_med = (summary(x)["median"] for x in (runner, seed, pip))
    return figure(
        "warm_relaunch",
        "s",
        runner,
        target=0.5,
        baseline={
            "name": "seed (git pull + pip install -r requirements.txt + start, every run)",
            "samples": seed,
            "summary": summary(seed),
            "ratio": seed_med / med,
            "ratio_statistic": "baseline median / figure median",
            "target_ratio_min": 5.0,
            "met": seed_med / med >= 5.0,
        },
        extra={
            "runner_pip_every_run": {"samples": pip, "summary": summary(pip), "ratio": pip_med / med},
            "cold_first_run_s": raw["cold_first_run_s"],
        },
    )


def build_log_latency(raw: dict) -> dict:
    pooled, per_run = raw["pooled_s"], raw["per_run_p95_s"]
    return figure(
        "log_latency",
        "s",
        pooled,
        statistic="p95",
        value=percentile(pooled, 95),
        target=0.2,
        spread={
            "per_run_p95_min": min(per_run),
            "per_run_p95_max": max(per_run),
            "p5": percentile(pooled, 5),
            "median": percentile(pooled, 50),
        },
        extra={"per_run_p95_s": per_run, "lines_per_run": raw["lines_per_run"]},
    )


def build_stop_latency(raw: dict) -> dict:
    return figure(
        "stop_latency",
        "s",
        raw["attached"],
        target=3.0,
        extra={
            "detached": {"samples": raw["detached"], "summary": summary(raw["detached"])},
            "bound": "attached: the pod waits at most RT_ACK_WAIT=30 s (runner/train.py ACK_WAIT_S) "
            "for the runner's ack before it stops itself",
        },
    )


def build_recovery(raw: dict) -> dict:
    rec, det = raw["recovery_s"], raw["detection_s"]
    det_med = summary(det)["median"]
    note = None
    if not rec:
        exits = sorted({r["runner_exit"] for r in raw["runs"]})
        note = (
            f"not measured: no relaunch after the preemption (runner exit {exits}; automatic recovery, "
            f"runner/recovery.py, is not there yet). Detection is measured."
        )
    f = figure(
        "preemption_recovery",
        "s",
        rec,
        target=20.0,
        note=note,
        extra={
            "detection": {
                "samples": det,
                "summary": summary(det),
                "target_max": 10.0,
                "met": None if det_med is None else det_med <= 10.0,
            },
            "boot_seconds_subtracted": raw["boot_seconds"],
            "runs": raw["runs"],
        },
    )
    return f


def build_sync(raw: dict) -> dict:
    """The figure is the first sync (cold SSH connection, like plain rsync); the repeated one (control
    master warm) is in extra, each with its ratio to plain rsync measured in the same run."""
    runner, rsync = raw["runner"], raw["rsync"]
    base = summary(rsync)["median"]
    ratio = summary(runner)["median"] / base
    repeated = raw.get("runner_repeated") or []
    r_ratio = summary(repeated)["median"] / base if repeated else None
    f = figure(
        "sync_noop",
        "s",
        runner,
        target=float("inf"),
        baseline={
            "name": "plain rsync -a over the same ssh (cold connection)",
            "samples": rsync,
            "summary": summary(rsync),
            "ratio": ratio,
            "ratio_statistic": "first sync (cold connection) median / baseline median",
            "target_ratio_max": 1.1,
            "met": ratio <= 1.1,
        },
        extra={
            "files": raw["files"],
            "runner_before_rsync": summary([x for x in raw["runner_before_rsync"] if x is not None]),
            "repeated": {
                "samples": repeated,
                "summary": summary(repeated),
                "ratio": r_ratio,
                "ratio_statistic": "repeated sync (control master warm) median / baseline median",
                "met": None if r_ratio is None else r_ratio <= 1.1,
            },
            "masters_closed_before_first": raw.get("masters_closed", []),
        },
    )
    f["target"] = {"statistic": "median / plain rsync median", "max_ratio": 1.1}
    f["met"], f["ratio_to_target"] = ratio <= 1.1, ratio / 1.1
    return f


def build_overhead(raw: dict) -> dict:
    cpu = [x for x in raw["cpu_percent"] if x is not None]
    windows = raw["window_cpu_percent"]
    spread = {
        "window_min": min(windows) if windows else None,
        "window_max": max(windows) if windows else None,
        "min": min(cpu) if cpu else None,
        "max": max(cpu) if cpu else None,
    }
    return figure(
        "runner_overhead",
        "% of one core",
        cpu,
        target=2.0,
        spread=spread,
        extra={
            "followed_s": raw["followed_s"],
            "window_cpu_percent": windows,
            "log_latency_during": summary(raw["latencies_s"]),
        },
    )


# ---------------------------------------------------------------- printing
def _fmt(x, unit: str) -> str:
    if x is None:
        return "n/a"
    if unit == "s":
        return f"{x * 1000:.0f} ms" if abs(x) < 1 else f"{x:.2f} s"
    return f"{x:.2f}"


def render(result: dict) -> str:
    m = result["machine"]
    lines = [
        f"machine: {m['nproc']} CPU ({m['cpu_model']}), Python {m['python']}, {m['date']}, "
        f"load {', '.join(f'{x:.2f}' for x in m['loadavg_start'])}; sshd HOME: {result['config']['sshd_home']}",
    ]
    for name, p in result["profiles"].items():
        lines += ["", f"== link profile {p['describe']}", ""]
        lines += render_figures(p["figures"])
    if len(result["profiles"]) > 1 or any("round_trips" in p["figures"] for p in result["profiles"].values()):
        lines += ["", *render_profiles(result)]
    return "\n".join(lines)


def render_figures(figures: dict) -> list[str]:
    lines: list[str] = []
    for name in FIGURES:
        f = figures.get(name)
        if f is None or "error" in f:
            if f is not None:
                lines.append(f"{name:20s} ERROR: {f['error']}")
            continue
        if name == "round_trips":
            continue  # in the round-trip table
        unit = f["unit"]
        spread = ", ".join(f"{k} {_fmt(v, unit)}" for k, v in f["spread"].items())
        verdict = {True: "OK", False: "MISSED", None: "n/a"}[f["met"]]
        tgt = f["target"]
        if "max" in tgt:
            target = f"{tgt['statistic']} <= {_fmt(tgt['max'], unit)}"
        elif "min_ratio" in tgt:
            target = f">= {tgt['min_ratio']}x faster than the baseline"
        elif "min" in tgt:
            target = f"{tgt['statistic']} >= {tgt['min']:g} {unit}"
        else:
            target = f"<= {tgt['max_ratio']}x baseline"
        lines.append(f"{name:20s} {f['statistic']} {_fmt(f['value'], unit):>9s}  ({spread}; n={f['summary']['n']})")
        lines.append(f"{'':20s} target {target}: {verdict}")
        b = f.get("baseline")
        if b:
            lines.append(
                f"{'':20s} vs {b['name']}: median {_fmt(b['summary']['median'], unit)}, "
                f"ratio {b['ratio']:.2f}x ({b['ratio_statistic']}) -> {'OK' if b['met'] else 'MISSED'}"
            )
        elif f["ratio_to_target"] is not None:
            lines.append(f"{'':20s} vs target: {f['ratio_to_target']:.2f}x of the limit")
        if name == "warm_relaunch":
            e = f["extra"]["runner_pip_every_run"]
            lines.append(
                f"{'':20s} runner with pip every run: median {_fmt(e['summary']['median'], unit)} "
                f"({e['ratio']:.2f}x the warm relaunch); cold first run {_fmt(f['extra']['cold_first_run_s'], unit)}"
            )
        if name == "cold_start":
            e = f["extra"]
            lines.append(
                f"{'':20s} training process started: median {_fmt(e['runner_process_started']['median'], unit)} "
                f"(seed {_fmt(e['seed_process_started']['median'], unit)}); installer: {e['installer']}"
            )
        if name == "launch_phases":
            for phase, s in f["extra"]["phases"].items():
                lines.append(
                    f"{'':22s}{phase:16s} median {_fmt(s['median'], unit):>7s}  (min {_fmt(s['min'], unit)}, "
                    f"max {_fmt(s['max'], unit)})"
                )
        if name == "fixed_cost":
            for cmd, s in f["extra"]["per_command"].items():
                lines.append(
                    f"{'':22s}runner {cmd:8s} median {_fmt(s['median'], unit):>7s}  (max {_fmt(s['max'], unit)})"
                )
        if name == "sync_noop":
            e = f["extra"]["runner_before_rsync"]
            r = f["extra"].get("repeated") or {}
            if r.get("ratio") is not None:
                lines.append(
                    f"{'':20s} repeated sync (control master warm): median {_fmt(r['summary']['median'], unit)}, "
                    f"ratio {r['ratio']:.2f}x plain rsync -> {'OK' if r['met'] else 'MISSED'}"
                )
            lines.append(
                f"{'':20s} first sync, until rsync's output is released (API agreed; rsync runs from "
                f"before the API read): median {_fmt(e['median'], unit)} ({f['extra']['files']} files)"
            )
        if name == "goodput":
            for way in ("runner", "seed"):
                g = f["extra"][way]
                parts = ", ".join(
                    f"{k[:-2]} {100 * g[k] / g['billed_s']:.1f}%"
                    for k in ("setup_s", "recovery_s", "redone_s", "idle_s")
                )
                det = [x for x in g["detection_s"] if x == x]
                lines.append(
                    f"{'':20s} {way}: {100 * (g['goodput'] or 0):.1f}% of {g['billed_s']:.0f} s billed ({parts}); "
                    f"{g['preemptions']} preemption(s), detection {_fmt(max(det), 's') if det else 'n/a'} at most; "
                    f"done after {g['wall_sim_hours']:.2f} simulated hours"
                )
        if name == "stop_latency":
            d = f["extra"]["detached"]["summary"]
            lines.append(
                f"{'':20s} detached (RT_ACK_WAIT=0): median {_fmt(d['median'], unit)}, max {_fmt(d['max'], unit)}"
            )
        if name == "preemption_recovery":
            d = f["extra"]["detection"]
            lines.append(
                f"{'':20s} detection: median {_fmt(d['summary']['median'], unit)} "
                f"(max {_fmt(d['summary']['max'], unit)}), target <= 10 s: "
                f"{ {True: 'OK', False: 'MISSED', None: 'n/a'}[d['met']] }"
            )
        if f.get("note"):
            lines.append(f"{'':20s} note: {f['note']}")
    return lines


# ---------------------------------------------------------------- main
def progress(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def run(args: argparse.Namespace) -> dict:
    result: dict = {
        "schema": SCHEMA,
        "machine": machine_info(),
        "config": {
            "runs": args.runs,
            "quick": args.quick,
            "latency_seconds": args.latency_seconds,
            "overhead_seconds": args.overhead_seconds,
            "overhead_runs": args.overhead_runs,
            "files": args.files,
            "boot_seconds": args.boot_seconds,
            "requirements": args.requirements or "real",
            "sshd_home": args.sshd_home,
            "cold_runs": args.cold_runs,
            "fast_venv": args.fast_venv,
            "figures": args.figures,
            "profiles": [p.name for p in args.profile_list],
        },
        "profiles": {},
    }
    started = time.time()
    for profile in args.profile_list:
        progress(f"link profile {profile.describe()}")
        result["profiles"][profile.name] = {
            "describe": profile.describe(),
            "rtt_s": profile.rtt_s,
            "loadavg_start": list(os.getloadavg()),
            "figures": run_profile(args, profile),
        }
    result["machine"]["loadavg_end"] = list(os.getloadavg())
    result["duration_s"] = time.time() - started
    return result


def run_profile(args: argparse.Namespace, profile) -> dict:
    options = BenchOptions(
        sshd_home=args.sshd_home,
        requirements=args.requirements,
        fast_venv=args.fast_venv,
        keep=args.keep,
        profile=profile,
    )
    train_first: list = []
    figures: dict = {}
    gp = goodput.GoodputOptions(hours=args.goodput_hours, rate=args.preemption_rate, sim_hour_s=args.sim_hour_s)
    with BenchPod(options) as pod:
        if args.keep:
            progress(f"workspace kept in {pod.root}")
        pod.add_configs(
            {
                **relaunch.CONFIGS,
                **stop.CONFIGS,
                **recovery.CONFIGS,
                **coldstart.configs(options.real),
                **follow.configs(args.latency_seconds, args.overhead_seconds),
                "goodput": gp.config(),
            }
        )

        def warm_relaunch() -> dict:
            raw = relaunch.measure(pod, args.runs)
            train_first.extend(raw["runner_first_request"])
            return build_warm_relaunch(raw)

        steps = {
            "cold_start": lambda: build_cold_start(coldstart.measure(pod, args.cold_runs)),
            "warm_relaunch": warm_relaunch,
            "launch_phases": lambda: build_phases(phases.measure(options, args.runs)),
            "fixed_cost": lambda: build_fixed_cost(fixedcost.measure(pod, args.runs), train_first),
            "log_latency": lambda: build_log_latency(follow.measure_latency(pod, args.runs)),
            "stop_latency": lambda: build_stop_latency(stop.measure(pod, args.runs)),
            "preemption_recovery": lambda: build_recovery(recovery.measure(pod, args.runs, args.boot_seconds)),
            "sync_noop": lambda: build_sync(sync.measure(pod, args.runs, args.files)),
            "round_trips": lambda: build_round_trips(roundtrips.measure(pod, args.files)),
            "runner_overhead": lambda: build_overhead(
                follow.measure_overhead(pod, args.overhead_runs, window_s=min(10.0, args.overhead_seconds / 3))
            ),
            "goodput": lambda: build_goodput(goodput.measure(pod, gp)),
        }
        # cold_start, then warm_relaunch first: they leave the repo and venv warm for every other figure.
        for name in FIGURES:
            if name not in args.figures:
                continue
            progress(f"{profile.name}: {name} ...")
            t = time.time()
            try:
                figures[name] = steps[name]()
            except Exception as e:  # noqa: BLE001 - one broken figure must not hide the others
                figures[name] = {
                    "name": name,
                    "error": f"{type(e).__name__}: {e}",
                    "traceback": traceback.format_exc(),
                }
                progress(f"{name} FAILED: {e}")
            progress(f"{profile.name}: {name} done in {time.time() - t:.0f}s")
    return figures


def build_goodput(raw: dict) -> dict:
    """The runner's goodput against the seed's way from the same world; target >= 95%."""
    r, seed = raw["runner"], raw["seed"]
    f = figure("goodput", "%", [100 * (r["goodput"] or 0)], target=float("inf"))
    f["target"] = {"statistic": "share of billed GPU time kept", "min": 95.0}
    f["met"] = (r["goodput"] or 0) * 100 >= 95.0
    f["ratio_to_target"] = None
    f["baseline"] = {
        "name": "the seed's way (stops at a preemption until the user returns)",
        "summary": {"median": 100 * (seed["goodput"] or 0)},
        "ratio": (r["goodput"] or 0) / seed["goodput"] if seed["goodput"] else float("inf"),
        "ratio_statistic": "runner goodput / seed goodput",
        "met": f["met"],
    }
    f["extra"] = raw
    return f


def build_round_trips(raw: dict) -> dict:
    rows = {name: {**c, "floor": roundtrips.floor_of(name, raw["floors"])} for name, c in raw["commands"].items()}
    f = figure("round_trips", "s", [c["seconds"] for c in raw["commands"].values()], target=float("inf"))
    f["extra"] = {"commands": rows, "floors": raw["floors"]}
    f["met"], f["ratio_to_target"] = None, None
    return f


def write_results(result: dict, directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    text = json.dumps(result, indent=2, default=str) + "\n"
    path = directory / f"{stamp}.json"
    path.write_text(text)
    (directory / "latest.json").write_text(text)
    return path


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    result = run(args)
    path = write_results(result, Path(args.results_dir))
    print(render_safe(result))
    print(f"\nresults: {path}")
    failed = any("error" in f for p in result["profiles"].values() for f in p["figures"].values())
    return 1 if failed else 0


def render_safe(result: dict) -> str:
    return render(result)
