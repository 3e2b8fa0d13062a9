"""The volume without a pod, measured: `runner sync` and `runner pull` through RunPod's S3 API (the
stand-in: moto's S3 server behind standins/runpod_s3.py's RunPod rules, on loopback) against the SSH
path (rsync over the local sshd playing the pod, which the runner starts and stops around the copy).

    python -m bench.s3 [--files 10000] [--runs 3] [--checkpoint-mb 200] [--out bench/results/s3.json]

Figures (docs/guide/data.md quotes them):
- first sync of the tree (files small files in 100 folders) and a no-op sync, S3 vs SSH; the pod is
  stopped before every run, as when you upload a data set before training;
- GPU-seconds billed while uploading: from the fake RunPod API's log, the time between the call that
  started the pod and the call that stopped it (0 on the S3 path: no call at all). On RunPod the image
  pull / boot comes on top, which the fake does not simulate (boot_seconds=0);
- pull of a checkpoint (one safetensors file of checkpoint-mb MB + trainer_state.json) through S3.
Everything is a subprocess `python -m runner ...`, so CLI start-up and imports are included.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import statistics
import struct
import sys
import tempfile
import time
from pathlib import Path

from bench.pod import BenchError, BenchOptions, BenchPod
from standins.pulumi_cli import SAMPLE_OUTPUTS
from standins.runpod_s3 import RunPodS3


def make_tree(root: Path, files: int) -> int:
    rng = random.Random(8)
    total = 0
    for i in range(files):
        d = root / f"part_{i % 100:03d}"
        d.mkdir(parents=True, exist_ok=True)
        data = rng.randbytes(rng.randint(100, 2000))
        (d / f"sample_{i:05d}.txt").write_bytes(data)
        total += len(data)
    return total


def run(pod: BenchPod, *argv: str, **env: str) -> float:
    proc = pod.runner(*argv, **env)
    code = proc.wait(timeout=3600)
    if code != 0:
        raise BenchError(f"runner {' '.join(argv)} exited {code}: {proc.stderr_text()[-2000:]}")
    return time.time() - proc.started


def stop_pod(pod: BenchPod) -> None:
    p = pod.fake.pods[pod.pod_id]
    if p.status == "RUNNING":
        with pod.fake.state.lock:
            pod.fake.state.stop(p, api="rest")


def gpu_seconds(pod: BenchPod) -> float:
    """Start-to-stop time of the pod from the fake's call log (what RunPod bills the GPU for)."""
    reqs = pod.fake.requests
    starts = [r.time for r in reqs if r.billable]
    stops = [r.time for r in reqs if r.action == "stop" and r.status == 200]
    return (stops[-1] - starts[0]) if starts and stops else 0.0


def checkpoint(dirpath: Path, mb: int) -> int:
    dirpath.mkdir(parents=True, exist_ok=True)
    n = mb * 1024 * 1024
    header = json.dumps({"w": {"dtype": "U8", "shape": [n], "data_offsets": [0, n]}}).encode()
    with open(dirpath / "model.safetensors", "wb") as fh:
        fh.write(struct.pack("<Q", len(header)) + header)
        chunk = random.Random(1).randbytes(1024 * 1024)
        for _ in range(mb):
            fh.write(chunk)
    step = int(dirpath.name.split("-")[1])
    (dirpath / "trainer_state.json").write_text(json.dumps({"global_step": step}))
    return (dirpath / "model.safetensors").stat().st_size


def med(xs: list[float]) -> float:
    return statistics.median(xs) if xs else float("nan")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m bench.s3", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--files", type=int, default=10_000)
    ap.add_argument("--runs", type=int, default=3, help="no-op syncs and pulls per path (default 3)")
    ap.add_argument("--checkpoint-mb", type=int, default=200)
    ap.add_argument("--out", default=str(Path(__file__).resolve().parent / "results" / "s3.json"))
    args = ap.parse_args(argv)

    result: dict = {"files": args.files, "runs": args.runs, "checkpoint_mb": args.checkpoint_mb}
    with (
        BenchPod(BenchOptions(requirements=0, fast_venv=True)) as pod,
        RunPodS3(volume_id=str(SAMPLE_OUTPUTS["volume_id"])) as s3,
    ):
        result["tree_bytes"] = make_tree(pod.data_dir, args.files)
        s3_env = s3.env()

        # S3 path: the pod stays stopped.
        stop_pod(pod)
        pod.fake.clear_requests()
        first = run(pod, "sync", **s3_env)
        noop = [run(pod, "sync", **s3_env) for _ in range(args.runs)]
        result["s3"] = {
            "first_sync_s": first,
            "noop_sync_s": noop,
            "runpod_api_calls": len(pod.fake.requests),
            "gpu_seconds_billed": 0.0,
            "pod_status_after": pod.pod_status(),
        }

        # SSH path: the runner starts the pod, rsyncs, stops it again.
        ssh: dict = {"noop_sync_s": [], "noop_gpu_seconds": []}
        pod.fake.clear_requests()
        ssh["first_sync_s"] = run(pod, "sync", "--via", "ssh")
        ssh["first_gpu_seconds"] = gpu_seconds(pod)
        for _ in range(args.runs):
            stop_pod(pod)
            pod.fake.clear_requests()
            ssh["noop_sync_s"].append(run(pod, "sync", "--via", "ssh"))
            ssh["noop_gpu_seconds"].append(gpu_seconds(pod))
        result["ssh"] = ssh

        # pull of a checkpoint through S3, pod stopped.
        stage = Path(tempfile.mkdtemp(prefix="rt-bench-ckpt-"))
        try:
            ckpt = stage / "checkpoint-100"
            size = checkpoint(ckpt, args.checkpoint_mb)
            client = s3.backend()
            for f in ckpt.iterdir():
                client.upload_file(str(f), s3.volume_id, f"outputs/bench/checkpoint-100/{f.name}")
            pulls = []
            for i in range(args.runs):
                dest = stage / f"home{i}"
                pulls.append(run(pod, "pull", "outputs/bench/checkpoint-100", str(dest), **s3_env))
                if (dest / "checkpoint-100" / "model.safetensors").stat().st_size != size:
                    raise BenchError("pulled checkpoint has the wrong size")
            result["pull"] = {"bytes": size, "seconds": pulls, "MB_per_s": [size / 1e6 / t for t in pulls]}
        finally:
            shutil.rmtree(stage, ignore_errors=True)

    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    s, h, p = result["s3"], result["ssh"], result["pull"]
    print(f"tree: {args.files} files, {result['tree_bytes'] / 1e6:.1f} MB")
    print(
        f"first sync:  S3 {s['first_sync_s']:.2f} s (pod stopped, {s['runpod_api_calls']} RunPod API calls, "
        f"0 GPU-s) | SSH {h['first_sync_s']:.2f} s ({h['first_gpu_seconds']:.1f} GPU-s billed)"
    )
    print(
        f"no-op sync:  S3 median {med(s['noop_sync_s']):.2f} s | SSH median {med(h['noop_sync_s']):.2f} s "
        f"({med(h['noop_gpu_seconds']):.1f} GPU-s billed)"
    )
    print(
        f"pull {p['bytes'] / 1e6:.0f} MB checkpoint through S3: median {med(p['seconds']):.2f} s "
        f"({med(p['MB_per_s']):.0f} MB/s)"
    )
    print(f"results: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
