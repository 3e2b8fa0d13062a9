"""The stall guard: is training still doing something? The supervisor asks it while training runs.

A stall is either
  * no new output in the log (a growing unfinished line counts: a tqdm bar redrawn with \\r) and no
    new checkpoint-N for `minutes` (RT_STALL_MINUTES, default 45: a first model download or a long
    evaluation prints progress, and 45 min of silence is far past either), or
  * every GPU under `gpu_util_below` percent (RT_STALL_GPU_UTIL, default 5) for `gpu_window_minutes`
    (RT_STALL_GPU_WINDOW_MINUTES, default 30), read with nvidia-smi; without nvidia-smi (or when it
    fails) this check is skipped, never counted as idle.
0 turns either check off. The supervisor decides what a stall does (StallAction).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from typing import Any, Callable, List, Mapping, NamedTuple, Optional

from .contract import (
    CHECKPOINT_PREFIX,
    DEFAULT_STALL_GPU_UTIL,
    DEFAULT_STALL_GPU_WINDOW_MINUTES,
    DEFAULT_STALL_MINUTES,
    StallAction,
    StallKey,
)

MAX_POLL_S = 30.0
MIN_POLL_S = 0.2
NVIDIA_SMI_TIMEOUT_S = 10.0


class StallConfig(NamedTuple):
    minutes: float = DEFAULT_STALL_MINUTES
    gpu_util_below: float = DEFAULT_STALL_GPU_UTIL
    gpu_window_minutes: float = DEFAULT_STALL_GPU_WINDOW_MINUTES
    action: str = StallAction.STOP.value

    @classmethod
    def from_plan(cls, data: Any) -> StallConfig:
        """From the plan's (and the spec's) `stall` object; a missing value takes its default."""
        data = data if isinstance(data, dict) else {}

        def number(key: str, default: float) -> float:
            value = data.get(key)
            return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else default

        action = data.get(StallKey.ACTION)
        return cls(
            number(StallKey.MINUTES, DEFAULT_STALL_MINUTES),
            number(StallKey.GPU_UTIL_BELOW, DEFAULT_STALL_GPU_UTIL),
            number(StallKey.GPU_WINDOW_MINUTES, DEFAULT_STALL_GPU_WINDOW_MINUTES),
            action if action in {a.value for a in StallAction} else StallAction.STOP.value,
        )

    @property
    def off(self) -> bool:
        return self.minutes <= 0 and self.gpu_window_minutes <= 0


def gpu_utilization(nvidia_smi: str) -> Optional[float]:
    """The busiest GPU's utilization in percent, or None when nvidia-smi fails or says nothing."""
    try:
        out = subprocess.run(
            [nvidia_smi, "--query-gpu=utilization.gpu", "--format=csv,noheader,nounits"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            timeout=NVIDIA_SMI_TIMEOUT_S,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    values: List[float] = []
    for line in out.stdout.splitlines() if out.returncode == 0 else []:
        try:
            values.append(float(line.strip()))
        except ValueError:
            continue
    return max(values) if values else None


def _size(path: str) -> int:
    try:
        return os.stat(path).st_size
    except OSError:
        return -1


def _newest_checkpoint(output_dir: str) -> Optional[str]:
    """The highest checkpoint-N name present (complete or not: a save in progress is progress)."""
    try:
        names = os.listdir(output_dir)
    except OSError:
        return None
    steps = [n[len(CHECKPOINT_PREFIX) :] for n in names if n.startswith(CHECKPOINT_PREFIX)]
    numbers = [int(s) for s in steps if s.isdigit()]
    return f"{CHECKPOINT_PREFIX}{max(numbers)}" if numbers else None


class StallGuard:
    def __init__(
        self,
        config: StallConfig,
        log_path: str,
        output_dir: str,
        environ: Mapping[str, str],
        clock: Callable[[], float] = time.monotonic,
        gpu: Optional[Callable[[], Optional[float]]] = None,
    ):
        self.config, self.log_path, self.output_dir, self.clock = config, log_path, output_dir, clock
        nvidia_smi = shutil.which("nvidia-smi", path=environ.get("PATH")) if config.gpu_window_minutes > 0 else None
        self.gpu = gpu if gpu is not None else ((lambda: gpu_utilization(nvidia_smi)) if nvidia_smi else None)
        self.poll_s = min(
            [MAX_POLL_S] + [max(m * 60 / 10, MIN_POLL_S) for m in (config.minutes, config.gpu_window_minutes) if m > 0]
        )
        self.rearm()

    def rearm(self) -> None:
        """Start both clocks again from now (after a stall reported with action notify)."""
        self.seen = (_size(self.log_path), _newest_checkpoint(self.output_dir))
        self.active_at = self.clock()
        self.gpu_low_since: Optional[float] = None

    def check(self) -> Optional[str]:
        """Why training looks stalled, or None."""
        now = self.clock()
        seen = (_size(self.log_path), _newest_checkpoint(self.output_dir))
        if seen != self.seen:
            self.seen, self.active_at = seen, now
        minutes = self.config.minutes
        if minutes > 0 and now - self.active_at >= minutes * 60:
            return f"no output and no new checkpoint for {minutes:g} min"
        if self.gpu is not None:
            util = self.gpu()
            if util is None or util >= self.config.gpu_util_below:
                self.gpu_low_since = None
            elif self.gpu_low_since is None:
                self.gpu_low_since = now
            window = self.config.gpu_window_minutes
            if self.gpu_low_since is not None and now - self.gpu_low_since >= window * 60:
                return f"GPU utilization under {self.config.gpu_util_below:g}% for {window:g} min"
        return None
