"""The real requirement set of the benchmarks' training repo, its wheelhouse and the stand-in image.

Built once into a cache outside the repo (BENCH_CACHE, default ~/.cache/runpod-trainer-bench), so
later runs are offline (`--no-index --find-links <wheelhouse>`) and repeatable:
  wheelhouse/         `pip download` of WHEELHOUSE_SPECS and everything they need (~330 MB)
  image-<hash>/       a Python installation of its own (bench/imagepython.py) with IMAGE_SPECS
                      installed from the wheelhouse: the stand-in for a RunPod pytorch image
                      (torch preinstalled; uv on its PATH, as `pip install uv` in an image puts it)
A changed spec list makes a new wheelhouse (its spec file differs) and a new image (another hash).

torch is pinned to 2.13.0: on this machine pip takes the CPU build of it from a local file; any other
torch spec would pull a multi-GB CUDA build.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

from bench.imagepython import link_pip, make_image_python

TORCH = "torch==2.13.0"
# A Whisper fine-tuning stack, as far as its wheels are sane here (evaluate/jiwer are not in the
# local index; librosa would add numba+llvmlite, ~100 MB, for nothing the benchmark measures).
REQUIREMENTS = [
    "torch>=2.1",
    "transformers>=4.40",
    "accelerate>=0.30",
    "datasets>=2.18",
    "soundfile>=0.12",
    "pyyaml>=6",
]
WHEELHOUSE_SPECS = [TORCH, *REQUIREMENTS[1:], "uv"]
IMAGE_SPECS = [TORCH, "uv"]  # what the "image" ships (its pip is this machine's)
IMPORTS = "torch,transformers,accelerate,datasets"  # what the bench trainer imports before its first step


class WheelhouseError(RuntimeError):
    pass


def cache_root() -> Path:
    return Path(os.environ.get("BENCH_CACHE") or Path.home() / ".cache" / "runpod-trainer-bench")


def _progress(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def ensure_wheelhouse() -> Path:
    """The wheelhouse, downloaded on the first run (from the machine's configured index)."""
    root = cache_root()
    house = root / "wheelhouse"
    spec_file = house / "SPECS"
    want = "\n".join(WHEELHOUSE_SPECS) + "\n"
    if spec_file.is_file() and spec_file.read_text() == want:
        return house
    _progress(f"building the wheelhouse once in {house} (pip download {' '.join(WHEELHOUSE_SPECS)}) ...")
    tmp = root / "wheelhouse.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "-q",
            "--disable-pip-version-check",
            "-d",
            str(tmp),
            *WHEELHOUSE_SPECS,
        ],
        capture_output=True,
        text=True,
        timeout=3600,
    )
    if out.returncode != 0:
        raise WheelhouseError(f"pip download failed ({out.returncode}): {out.stderr.strip()[-2000:]}")
    (tmp / "SPECS").write_text(want)
    shutil.rmtree(house, ignore_errors=True)
    tmp.rename(house)
    return house


def ensure_image(wheelhouse: Path | None) -> Path:
    """The stand-in image's python3: with IMAGE_SPECS from the wheelhouse, or bare (pip only) without one."""
    specs = IMAGE_SPECS if wheelhouse is not None else []
    tag = hashlib.sha256(("\n".join(specs) + sys.version).encode()).hexdigest()[:12]
    image = cache_root() / f"image-{tag}"
    python = image / "bin" / "python3"
    done = image / "READY"
    if done.is_file() and python.exists():
        return python
    _progress(f"building the stand-in image interpreter once in {image} ({', '.join(specs) or 'bare'}) ...")
    make_image_python(image)
    link_pip(python, copy=True)
    if specs:
        assert wheelhouse is not None
        out = subprocess.run(
            [
                str(python),
                "-m",
                "pip",
                "install",
                "-q",
                "--disable-pip-version-check",
                "--no-index",
                "--find-links",
                str(wheelhouse),
                *specs,
            ],
            capture_output=True,
            text=True,
            timeout=1800,
        )
        if out.returncode != 0:
            shutil.rmtree(image, ignore_errors=True)
            raise WheelhouseError(f"installing {specs} into the image failed: {out.stderr.strip()[-2000:]}")
    done.write_text("\n".join(specs) + "\n")
    return python


def requirements_text(wheelhouse: Path) -> str:
    return f"--no-index\n--find-links {wheelhouse}\n" + "".join(f"{r}\n" for r in REQUIREMENTS)
