#!/usr/bin/env python3
"""The training script of the benchmark's training repo (copied there as bench_train.py).

Speaks the trainer interface (`--config <yaml> [--resume <checkpoint dir>]`) and stamps the events
the benchmark measures with this machine's clock (the "pod" is this machine, so one clock):

    BENCH start t=<epoch s> attempt=<n> resume=<checkpoint name|none>   first statement of the process
    BENCH step t=<epoch s>                                               after `imports` and one torch op
    BENCH line seq=<i> t=<epoch s>                                       written at `rate` lines/s
    BENCH ckpt seq=<i>                                                   checkpoint-<i> is complete
    BENCH exit t=<epoch s> code=<c>                                      just before the process exits

Config (flat `key: value`): output_dir, lines, interval (mean s between lines), jitter_seed (random
gaps, see below), save_every (lines), exit_code, imports (comma list of modules imported before the
first step, e.g. torch,transformers: what a real trainer pays before step 1). Checkpoints use the Hugging Face layout the launcher recognises (model.safetensors, then
trainer_state.json with global_step).
"""

import time

T0 = time.time()  # noqa: E402 - before any import: "the training process started"

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import random  # noqa: E402
import sys  # noqa: E402


def load(path):
    cfg = {}
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            key, sep, value = line.partition(":")
            if sep and not line[:1].isspace() and not line.startswith("#"):
                cfg[key.strip()] = value.strip()
    return cfg


def save(output_dir, seq):
    ckpt = os.path.join(output_dir, f"checkpoint-{seq}")
    os.makedirs(ckpt, exist_ok=True)
    with open(os.path.join(ckpt, "model.safetensors"), "wb") as fh:
        header = b'{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}'
        header += b" " * (-len(header) % 8)
        fh.write(len(header).to_bytes(8, "little") + header + b"\0\0\x80\x3f")
    with open(os.path.join(ckpt, "trainer_state.json"), "w", encoding="utf-8") as fh:
        json.dump({"global_step": seq}, fh)
    print(f"BENCH ckpt seq={seq}", flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", required=True)
    ap.add_argument("--resume")
    args = ap.parse_args()
    cfg = load(args.config)
    attempt = os.environ.get("RT_ATTEMPT", "?")
    resume = os.path.basename(args.resume.rstrip("/")) if args.resume else "none"
    print(f"BENCH start t={T0:.6f} attempt={attempt} resume={resume}", flush=True)
    if cfg.get("imports"):
        import importlib

        mods = [importlib.import_module(m.strip()) for m in cfg["imports"].split(",") if m.strip()]
        torch = next((m for m in mods if m.__name__ == "torch"), None)
        if torch is not None:
            float(torch.ones(4).sum())  # one real op: the library works, not only imports
        print(f"BENCH step t={time.time():.6f}", flush=True)
    lines = int(cfg.get("lines", 3))
    interval = float(cfg.get("interval", 0.01))
    save_every = int(cfg.get("save_every", 0))
    # jitter: gaps uniform in [0, 2*interval] (same mean), so line writes do not phase-lock with the
    # follower's periodic work (a fixed rate would always land right after it)
    rng = random.Random(int(cfg["jitter_seed"])) if cfg.get("jitter_seed") else None
    start = 1
    if args.resume:
        with open(os.path.join(args.resume, "trainer_state.json"), encoding="utf-8") as fh:
            start = int(json.load(fh)["global_step"]) + 1
    due = time.time()
    for seq in range(start, lines + 1):
        due += rng.uniform(0, 2 * interval) if rng else interval
        delay = due - time.time()
        if delay > 0:
            time.sleep(delay)
        print(f"BENCH line seq={seq} t={time.time():.6f}", flush=True)
        if save_every and seq % save_every == 0:
            save(cfg["output_dir"], seq)
    code = int(cfg.get("exit_code", 0))
    print(f"BENCH exit t={time.time():.6f} code={code}", flush=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
