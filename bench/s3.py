"""The volume without a pod, measured: `runner sync` and `runner pull` through RunPod's S3 API against
rclone, s5cmd and `aws s3 sync` (bench/s3tools.py), all against the same S3 stand-in (moto's server
behind standins/runpod_s3.py's RunPod rules) behind the same link profile (standins/link.py).

    python -m bench.s3 [--profiles loopback,near,far] [--files 20000] [--min-kb 20] [--max-kb 300]
                       [--checkpoint-mb 200] [--tools rclone,s5cmd,aws] [--quick]

The data set is shaped like the user's: `files` files of min-kb..max-kb (random bytes, fixed seed) in
data/audio_0 .. audio_{folders-1} plus a JSONL manifest. Rows, per profile, each contender in turn:
  first upload   the data set to a destination with nothing in it (the runner: its manifest removed too)
  no-op re-sync  the same command again, nothing changed
  download       a checkpoint (one safetensors file of checkpoint-mb MB + trainer_state.json) to an
                 empty folder: `runner pull <path>`, the tools' sync from S3
Each tool with its defaults and tuned (bench/s3tools.py); the target compares the runner with the best
of all of them. Every command is a whole process (start-up and imports included). S3 requests are
counted at the stand-in. After the runner's first upload every object is checked (key and size).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import struct
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from bench.pod import BenchError, BenchOptions, BenchPod
from bench.s3tools import TOOLS, S3Target, Tool, run_sync, run_sync_down
from standins.link import PROFILES, Link, profile_named
from standins.pulumi_cli import SAMPLE_OUTPUTS
from standins.runpod_s3 import RunPodS3

ROWS = ("first_upload", "noop_resync", "download")
RUNNER = "runner"


@dataclass(frozen=True)
class DataSet:
    files: int
    bytes: int
    sizes: dict[str, int]  # rel path -> size


def make_dataset(root: Path, files: int, min_kb: int, max_kb: int, folders: int = 3) -> DataSet:
    rng = random.Random(29)
    sizes: dict[str, int] = {}
    manifest = []
    for i in range(files):
        rel = f"audio_{i % folders}/clip_{i:06d}.wav"
        n = rng.randint(min_kb * 1000, max_kb * 1000)
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(rng.randbytes(n))
        sizes[rel] = n
        manifest.append(json.dumps({"audio": rel, "seconds": round(n / 32000, 2), "text": f"clip {i}"}))
    (root / "manifest.jsonl").write_text("\n".join(manifest) + "\n")
    sizes["manifest.jsonl"] = (root / "manifest.jsonl").stat().st_size
    return DataSet(len(sizes), sum(sizes.values()), sizes)


def make_checkpoint(dirpath: Path, mb: int) -> int:
    dirpath.mkdir(parents=True, exist_ok=True)
    n = mb * 1024 * 1024
    header = json.dumps({"w": {"dtype": "U8", "shape": [n], "data_offsets": [0, n]}}).encode()
    with open(dirpath / "model.safetensors", "wb") as fh:
        fh.write(struct.pack("<Q", len(header)) + header)
        chunk = random.Random(1).randbytes(1024 * 1024)
        for _ in range(mb):
            fh.write(chunk)
    (dirpath / "trainer_state.json").write_text(json.dumps({"global_step": 100}))
    return sum(p.stat().st_size for p in dirpath.iterdir())


@dataclass
class World:
    pod: BenchPod
    s3: RunPodS3
    data: DataSet
    checkpoint_key: str
    checkpoint_bytes: int
    scratch: Path
    results: dict = field(default_factory=dict)

    def wipe(self, prefix: str) -> None:
        """Every object under prefix, straight from the backend (no RunPod rules, no link)."""
        client = self.s3.backend()
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=self.s3.volume_id, Prefix=prefix):
            keys = [{"Key": c["Key"]} for c in page.get("Contents", [])]
            if keys:
                client.delete_objects(Bucket=self.s3.volume_id, Delete={"Objects": keys, "Quiet": True})
        self.s3._dirs = {d for d in self.s3._dirs if not d.startswith(prefix)}

    def check_upload(self, prefix: str) -> None:
        client = self.s3.backend()
        found: dict[str, int] = {}
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=self.s3.volume_id, Prefix=prefix):
            found.update({c["Key"][len(prefix) :]: c["Size"] for c in page.get("Contents", []) if c["Key"][-1] != "/"})
        if found != self.data.sizes:
            missing = sorted(set(self.data.sizes) - set(found))[:3]
            wrong = sorted(k for k in found if self.data.sizes.get(k) != found[k])[:3]
            raise BenchError(f"upload under {prefix} is wrong: missing {missing}, wrong size/extra {wrong}")


class Contender:
    def __init__(self, world: World, target: S3Target, profile: str):
        self.world, self.target, self.profile = world, target, profile

    def measure(self, name: str, fn) -> dict:
        s3 = self.world.s3
        n0 = len(s3.requests)
        t0 = time.time()
        fn()
        took = time.time() - t0
        reqs = s3.requests[n0:]
        ops: dict[str, int] = {}
        for r in reqs:
            ops[r.op] = ops.get(r.op, 0) + 1
        return {"seconds": took, "requests": len(reqs), "ops": ops}


def runner_env(target: S3Target) -> dict[str, str]:
    return {
        "RUNPOD_S3_ACCESS_KEY": target.access_key,
        "RUNPOD_S3_SECRET_KEY": target.secret_key,
        "RUNPOD_S3_ENDPOINT_URL": target.endpoint,
    }


def run_runner(pod: BenchPod, argv: list[str], env: dict[str, str]) -> None:
    proc = pod.runner(*argv, **env)
    code = proc.wait(timeout=7200)
    if code != 0:
        raise BenchError(f"runner {' '.join(argv)} exited {code}: {proc.stderr_text()[-2000:]}")


def measure_runner(world: World, target: S3Target, profile: str) -> dict:
    pod, env = world.pod, runner_env(target)
    c = Contender(world, target, profile)
    out: dict = {}
    world.wipe("data/")
    shutil.rmtree(pod.state_dir / "dev" / "s3", ignore_errors=True)
    for p in pod.state_dir.rglob("s3"):
        shutil.rmtree(p, ignore_errors=True)  # the manifest: a first upload knows nothing
    out["first_upload"] = c.measure("first_upload", lambda: run_runner(pod, ["sync"], env))
    world.check_upload("data/")
    out["noop_resync"] = c.measure("noop_resync", lambda: run_runner(pod, ["sync"], env))
    dest = world.scratch / f"pull-{profile}"
    out["download"] = c.measure(
        "download", lambda: run_runner(pod, ["pull", world.checkpoint_key, str(dest), "--via", "s3"], env)
    )
    got = dest / world.checkpoint_key.rsplit("/", 1)[-1]
    if sum(p.stat().st_size for p in got.iterdir()) != world.checkpoint_bytes:
        raise BenchError("the pulled checkpoint has the wrong size")
    shutil.rmtree(dest, ignore_errors=True)
    world.wipe("data/")
    return out


def measure_tool(world: World, tool: Tool, target: S3Target, profile: str) -> dict:
    c = Contender(world, target, profile)
    prefix = f"bench/{profile}/{tool.name.replace(' ', '-').strip('()').replace('(', '').replace(')', '')}"
    home = world.scratch / "tool-home"
    out: dict = {}
    source = world.pod.data_dir
    out["first_upload"] = c.measure("first_upload", lambda: run_sync(tool, target, source, prefix, home))
    world.check_upload(f"{prefix}/")
    out["noop_resync"] = c.measure("noop_resync", lambda: run_sync(tool, target, source, prefix, home))
    world.wipe(f"{prefix}/")
    dest = world.scratch / f"dl-{profile}-{tool.program}"
    ckpt_target = S3Target(target.endpoint, target.region, target.bucket, target.access_key, target.secret_key)
    out["download"] = c.measure("download", lambda: run_download(tool, ckpt_target, world.checkpoint_key, dest, home))
    if sum(p.stat().st_size for p in dest.iterdir()) != world.checkpoint_bytes:
        raise BenchError(f"{tool.name} downloaded the wrong number of bytes")
    shutil.rmtree(dest, ignore_errors=True)
    return out


def run_download(tool: Tool, target: S3Target, key: str, dest: Path, home: Path) -> None:
    run_sync_down(tool, target, key, dest, home)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        prog="python -m bench.s3", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--profiles", default="loopback,near,far", help=f"comma list of {', '.join(PROFILES)}")
    ap.add_argument("--files", type=int, help="files in the data set (default 20000; --quick 1000)")
    ap.add_argument("--min-kb", type=int, default=20)
    ap.add_argument("--max-kb", type=int, default=300)
    ap.add_argument("--folders", type=int, default=3)
    ap.add_argument("--checkpoint-mb", type=int, help="default 200; --quick 50")
    ap.add_argument("--tools", default="rclone,s5cmd,aws", help="comma list; '' for the runner alone")
    ap.add_argument(
        "--variants",
        choices=("both", "tuned", "defaults"),
        default="both",
        help="each tool with its defaults, tuned for many small files, or both (default)",
    )
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--out", default=str(Path(__file__).resolve().parent / "results" / "s3.json"))
    a = ap.parse_args(argv)
    a.files = a.files or (1000 if a.quick else 20_000)
    a.checkpoint_mb = a.checkpoint_mb or (50 if a.quick else 200)
    a.profile_list = [profile_named(p.strip()) for p in a.profiles.split(",") if p.strip()]
    wanted = {t.strip() for t in a.tools.split(",") if t.strip()}
    a.tool_list = [
        t for t in TOOLS if t.program in wanted and a.variants in ("both", "tuned" if t.tuned else "defaults")
    ]
    return a


def main(argv: list[str] | None = None) -> int:
    a = parse_args(argv)
    missing = sorted({t.program for t in a.tool_list if not t.available()})
    if missing:
        print(f"missing tools: {', '.join(missing)} (bash scripts/bench.sh s3 installs them)", file=sys.stderr)
        return 2
    result: dict = {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "loadavg_start": list(os.getloadavg()),
        "config": {k: v for k, v in vars(a).items() if k not in ("profile_list", "tool_list")},
        "profiles": {},
    }
    scratch = Path(tempfile.mkdtemp(prefix="rt-bench-s3-"))
    try:
        with (
            BenchPod(BenchOptions(requirements=0, fast_venv=True)) as pod,
            RunPodS3(volume_id=str(SAMPLE_OUTPUTS["volume_id"])) as s3,
        ):
            data = make_dataset(pod.data_dir, a.files, a.min_kb, a.max_kb, a.folders)
            ckpt_dir = scratch / "checkpoint-100"
            ckpt_bytes = make_checkpoint(ckpt_dir, a.checkpoint_mb)
            key = "outputs/bench/checkpoint-100"
            for f in ckpt_dir.iterdir():
                s3.backend().upload_file(str(f), s3.volume_id, f"{key}/{f.name}")
            shutil.rmtree(ckpt_dir)
            stop_pod(pod)
            world = World(pod, s3, data, key, ckpt_bytes, scratch)
            result["data"] = {"files": data.files, "bytes": data.bytes, "checkpoint_bytes": ckpt_bytes}
            progress(f"data set: {data.files} files, {data.bytes / 1e6:.0f} MB; checkpoint {ckpt_bytes / 1e6:.0f} MB")
            for profile in a.profile_list:
                link = None if profile.direct else Link(profile).start()
                try:
                    port = s3.port if link is None else link.forward(s3.port)
                    target = S3Target(
                        f"http://127.0.0.1:{port}/", s3.data_center, s3.volume_id, s3.access_key, s3.secret_key
                    )
                    rows: dict = {}
                    progress(f"{profile.describe()}: runner ...")
                    rows[RUNNER] = measure_runner(world, target, profile.name)
                    progress(f"  runner: {brief(rows[RUNNER])}")
                    for tool in a.tool_list:
                        progress(f"{profile.name}: {tool.name} ...")
                        try:
                            rows[tool.name] = measure_tool(world, tool, target, profile.name)
                            progress(f"  {tool.name}: {brief(rows[tool.name])}")
                        except Exception as e:  # noqa: BLE001 - one tool's failure must not hide the rest
                            rows[tool.name] = {"error": f"{type(e).__name__}: {e}"[:2000]}
                            progress(f"  {tool.name} FAILED: {e}")
                    result["profiles"][profile.name] = {"describe": profile.describe(), "rows": rows}
                finally:
                    if link is not None:
                        link.close()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    result["loadavg_end"] = list(os.getloadavg())
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(render(result))
    print(f"\nresults: {out}")
    return 0


def stop_pod(pod: BenchPod) -> None:
    p = pod.fake.pods[pod.pod_id]
    if p.status == "RUNNING":
        with pod.fake.state.lock:
            pod.fake.state.stop(p, api="rest")


def brief(rows: dict) -> str:
    return ", ".join(f"{k} {v['seconds']:.2f} s ({v['requests']} req)" for k, v in rows.items())


def progress(message: str) -> None:
    print(f"[bench.s3] {message}", file=sys.stderr, flush=True)


def best_tool(rows: dict, row: str) -> tuple[str, float] | None:
    timed = [(name, r[row]["seconds"]) for name, r in rows.items() if name != RUNNER and "error" not in r]
    return min(timed, key=lambda x: x[1]) if timed else None


def render(result: dict) -> str:
    d = result["data"]
    lines = [
        f"data set: {d['files']} files, {d['bytes'] / 1e6:.0f} MB; checkpoint {d['checkpoint_bytes'] / 1e6:.0f} MB; "
        f"load {', '.join(f'{x:.2f}' for x in result['loadavg_start'])} at the start, "
        f"{', '.join(f'{x:.2f}' for x in result['loadavg_end'])} at the end",
    ]
    for name, p in result["profiles"].items():
        rows = p["rows"]
        lines += ["", f"{p['describe']}", f"  {'':16s}" + "".join(f"{r:>22s}" for r in ROWS)]
        for who, r in rows.items():
            if "error" in r:
                lines.append(f"  {who:16s} ERROR: {r['error'][:200]}")
                continue
            cells = "".join(f"{r[row]['seconds']:>9.2f} s ({r[row]['requests']:>6d} req)" for row in ROWS)
            lines.append(f"  {who:16s}{cells}")
        verdicts = []
        for row in ROWS:
            best = best_tool(rows, row)
            if best is None or "error" in rows.get(RUNNER, {"error": 1}):
                continue
            ratio = rows[RUNNER][row]["seconds"] / best[1]
            verdicts.append(f"{row} {ratio:.2f}x the best ({best[0]}) -> {'OK' if ratio <= 1.0 else 'MISSED'}")
        lines += [f"  runner vs the best tool: {v}" for v in verdicts]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
