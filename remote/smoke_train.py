#!/usr/bin/env python3
"""Smoke-test trainer: a stand-in for scripts/train.py that needs no GPU and no packages.

It speaks the same interface as the real trainer (``--config <yaml> [--resume <checkpoint dir>]``)
and leaves the same traces a Hugging Face Trainer leaves, so the launcher can be exercised end to
end on a CPU box:

* one line per step on stdout, flushed: ``step N/M loss X``;
* every ``save_steps`` steps (and at the last step) ``<output_dir>/checkpoint-N/`` with
  ``model.safetensors`` written first and ``trainer_state.json`` (``{"global_step": N, ...}``) last,
  like HF does, so a save interrupted in between leaves a detectably partial checkpoint;
* ``--resume <dir>`` prints ``resumed from checkpoint-N`` and continues at step N+1.

Config (flat ``key: value`` YAML; other keys are ignored): output_dir, logging_dir, max_steps,
save_steps, step_seconds (sleep per step), fail_at_step (exit 3 at that step), save_seconds (pause
between writing the weights and the trainer state, so tests can kill mid-save), progress_bar
(true: a tqdm-style bar redrawn with \r on stderr at every step, as a Hugging Face Trainer shows
it, with the `step N/M loss X` line printed through it every log_steps steps, as tqdm.write does),
hang_at_step (at that step print nothing more and never finish: a stalled data loader or NCCL hang),
eval_at_step / eval_seconds / eval_tick_seconds (after that step an "evaluation" that prints no whole
line for eval_seconds, only a progress line on stderr redrawn with \r every eval_tick_seconds).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import struct
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

FAIL_EXIT_CODE = 3
N_WEIGHTS = 4


@dataclass(frozen=True)
class SmokeConfig:
    output_dir: str
    logging_dir: Optional[str] = None
    max_steps: int = 40
    save_steps: int = 10
    step_seconds: float = 0.05
    fail_at_step: Optional[int] = None
    save_seconds: float = 0.0
    progress_bar: object = False  # true: a tqdm-style bar of its own; "tqdm": the real tqdm package
    log_steps: int = 1
    hang_at_step: Optional[int] = None
    eval_at_step: Optional[int] = None
    eval_seconds: float = 0.0
    eval_tick_seconds: float = 0.5


def _scalar(text: str):
    text = text.strip()
    if text[:1] in ("'", '"'):
        end = text.find(text[0], 1)
        return text[1:end] if end > 0 else text[1:]
    if " #" in text:
        text = text.split(" #", 1)[0].rstrip()
    if text in ("", "~", "null"):
        return None
    if text in ("true", "false"):
        return text == "true"
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def parse_flat_yaml(text: str) -> dict:
    """Top-level ``key: value`` pairs; indented lines, list items and comments are skipped."""
    data = {}
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#") or line[:1] in (" ", "\t", "-"):
            continue
        key, sep, value = line.partition(":")
        if sep and key.strip():
            data[key.strip()] = _scalar(value)
    return data


def load_config(path: str) -> SmokeConfig:
    data = parse_flat_yaml(Path(path).read_text(encoding="utf-8"))
    if not data.get("output_dir"):
        raise SystemExit(f"config {path}: output_dir is required")

    def optional_int(key):
        return None if data.get(key) is None else int(data[key])

    return SmokeConfig(
        output_dir=str(data["output_dir"]),
        logging_dir=None if data.get("logging_dir") is None else str(data["logging_dir"]),
        max_steps=int(data.get("max_steps") or 40),
        save_steps=int(data.get("save_steps") or 10),
        step_seconds=float(data.get("step_seconds") or 0.0),
        fail_at_step=optional_int("fail_at_step"),
        save_seconds=float(data.get("save_seconds") or 0.0),
        progress_bar=data.get("progress_bar") or False,
        log_steps=int(data.get("log_steps") or 1),
        hang_at_step=optional_int("hang_at_step"),
        eval_at_step=optional_int("eval_at_step"),
        eval_seconds=float(data.get("eval_seconds") or 0.0),
        eval_tick_seconds=float(data.get("eval_tick_seconds") or 0.5),
    )


def write_safetensors(path: Path, weights: list[float]) -> None:
    """A real (tiny) safetensors file: 8-byte header length, JSON header, raw little-endian F32 data."""
    data = struct.pack(f"<{len(weights)}f", *weights)
    header = json.dumps({"w": {"dtype": "F32", "shape": [len(weights)], "data_offsets": [0, len(data)]}})
    header_bytes = header.encode() + b" " * (-len(header) % 8)
    with open(path, "wb") as fh:
        fh.write(struct.pack("<Q", len(header_bytes)) + header_bytes + data)
        fh.flush()
        os.fsync(fh.fileno())


def read_safetensors(path: Path) -> list[float]:
    raw = path.read_bytes()
    (header_len,) = struct.unpack("<Q", raw[:8])
    meta = json.loads(raw[8 : 8 + header_len])["w"]
    start, end = meta["data_offsets"]
    body = raw[8 + header_len + start : 8 + header_len + end]
    return list(struct.unpack(f"<{len(body) // 4}f", body))


def save_checkpoint(cfg: SmokeConfig, step: int, weights: list[float], history: list[dict], say=None) -> Path:
    ckpt = Path(cfg.output_dir) / f"checkpoint-{step}"
    ckpt.mkdir(parents=True, exist_ok=True)
    write_safetensors(ckpt / "model.safetensors", weights)
    if cfg.save_seconds > 0:
        time.sleep(cfg.save_seconds)
    state = {
        "global_step": step,
        "max_steps": cfg.max_steps,
        "save_steps": cfg.save_steps,
        "epoch": step / cfg.max_steps,
        "log_history": history[-50:],
        "best_model_checkpoint": None,
    }
    (ckpt / "trainer_state.json").write_text(json.dumps(state, indent=2), encoding="utf-8")
    (say or (lambda text: print(text, flush=True)))(f"saved {ckpt.name}")
    return ckpt


def load_checkpoint(path: str) -> tuple[int, list[float]]:
    ckpt = Path(path)
    state = json.loads((ckpt / "trainer_state.json").read_text(encoding="utf-8"))
    weights_file = ckpt / "model.safetensors"
    weights = read_safetensors(weights_file) if weights_file.is_file() else [1.0] * N_WEIGHTS
    return int(state["global_step"]), weights


class ProgressBar:
    """What tqdm draws on stderr: `\\r 30%|###       | 12/40 [00:00<00:01, 19.61it/s]`, no newline,
    redrawn in place; write() clears it, prints a whole line and draws it again (tqdm.write)."""

    def __init__(self, total: int, start: int):
        self.total, self.n, self.t0 = total, start, time.monotonic()
        self.width = 0

    def _text(self) -> str:
        frac = self.n / self.total if self.total else 1.0
        filled = int(frac * 10)
        elapsed = max(time.monotonic() - self.t0, 1e-6)
        return (
            f"{int(frac * 100):3d}%|{'#' * filled}{' ' * (10 - filled)}| {self.n}/{self.total} "
            f"[00:{int(elapsed):02d}<00:00, {max(self.n, 1) / elapsed:.2f}it/s]"
        )

    def update(self, n: int) -> None:
        self.n = n
        text = self._text()
        self.width = len(text)
        sys.stderr.write("\r" + text)
        sys.stderr.flush()

    def write(self, line: str) -> None:
        sys.stderr.write("\r" + " " * self.width + "\r")
        sys.stderr.flush()
        print(line, flush=True)
        self.update(self.n)

    def close(self) -> None:
        sys.stderr.write("\n")
        sys.stderr.flush()


class TqdmBar:
    """The same surface over the real tqdm (what the Hugging Face Trainer draws its bar with)."""

    def __init__(self, total: int, done: int):
        from tqdm import tqdm  # only for progress_bar: tqdm (the trainer has no other dependency)

        self.bar = tqdm(total=total, initial=done, file=sys.stderr, mininterval=0, ascii=True)

    def update(self, n: int) -> None:
        self.bar.update(n - self.bar.n)

    def write(self, line: str) -> None:
        self.bar.write(line, file=sys.stdout)
        sys.stdout.flush()

    def close(self) -> None:
        self.bar.close()


def hang() -> None:
    """Print nothing, end never (until a signal): what a stalled data loader or an NCCL hang looks like."""
    while True:
        time.sleep(3600)


def evaluate(cfg: SmokeConfig) -> None:
    """A long evaluation: no whole line, only a progress line on stderr redrawn with \r."""
    ticks = max(int(cfg.eval_seconds / cfg.eval_tick_seconds), 1)
    for n in range(1, ticks + 1):
        time.sleep(cfg.eval_tick_seconds)
        sys.stderr.write(f"\reval {n * 100 // ticks:3d}%|{n}/{ticks}")
        sys.stderr.flush()
    sys.stderr.write("\n")
    print("eval done", flush=True)


def loss_at(step: int, weights: list[float]) -> float:
    return 2.0 * math.exp(-step / 15.0) + 0.05 + 0.01 * sum(abs(w) for w in weights) / len(weights)


def train(cfg: SmokeConfig, resume: Optional[str]) -> int:
    weights = [1.0] * N_WEIGHTS
    start = 1
    if resume:
        done, weights = load_checkpoint(resume)
        print(f"resumed from {Path(resume).name}", flush=True)
        start = done + 1
    metrics = None
    if cfg.logging_dir:
        Path(cfg.logging_dir).mkdir(parents=True, exist_ok=True)
        metrics = open(Path(cfg.logging_dir) / "metrics.jsonl", "a", encoding="utf-8")
    history: list[dict] = []
    bar = (
        TqdmBar(cfg.max_steps, start - 1)
        if cfg.progress_bar == "tqdm"
        else ProgressBar(cfg.max_steps, start - 1)
        if cfg.progress_bar
        else None
    )
    say = bar.write if bar is not None else (lambda text: print(text, flush=True))
    for step in range(start, cfg.max_steps + 1):
        if cfg.fail_at_step is not None and step == cfg.fail_at_step:
            print(f"simulated failure at step {step} (fail_at_step)", file=sys.stderr, flush=True)
            return FAIL_EXIT_CODE
        if cfg.step_seconds > 0:
            time.sleep(cfg.step_seconds)
        weights = [w * 0.97 for w in weights]
        loss = loss_at(step, weights)
        history.append({"step": step, "loss": round(loss, 4)})
        if bar is not None:
            bar.update(step)
        if bar is None or step % cfg.log_steps == 0 or step == cfg.max_steps:
            say(f"step {step}/{cfg.max_steps} loss {loss:.4f}")
        if metrics:
            metrics.write(json.dumps({"step": step, "loss": loss}) + "\n")
            metrics.flush()
        if step % cfg.save_steps == 0 or step == cfg.max_steps:
            save_checkpoint(cfg, step, weights, history, say)
        if cfg.hang_at_step is not None and step == cfg.hang_at_step:
            hang()
        if cfg.eval_at_step is not None and step == cfg.eval_at_step:
            evaluate(cfg)
    if bar is not None:
        bar.close()
    print(f"done: {cfg.max_steps} steps", flush=True)
    return 0


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True, help="flat YAML config")
    parser.add_argument("--resume", help="checkpoint-N directory to continue from")
    args = parser.parse_args(argv)
    return train(load_config(args.config), args.resume)


if __name__ == "__main__":
    sys.exit(main())
