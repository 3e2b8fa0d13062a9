"""The newest complete checkpoint-N under output_dir, in the Hugging Face Trainer layout.

The Trainer saves a checkpoint as: the weights (model.safetensors, pytorch_model.bin, shards with an
index json, or a PEFT adapter), optimizer/scheduler/rng state, and trainer_state.json last. A
checkpoint-N folder is complete only when
  - trainer_state.json parses and its global_step == N, and
  - the weights it needs are there and whole: a single weights file, or an index json whose shards all
    exist and are whole.
A safetensors file is whole when its 8-byte little-endian header length, the JSON header and the data
the header declares (the largest data_offsets end) fit in the file. A cut-off write always fails that
test: it is a prefix of the real file. A pytorch_model.bin in torch's zip format is whole when the
zip's central directory (written last) is there.
"""

from __future__ import annotations

import json
import os
import re
import struct
from typing import List, Optional, Tuple

from .contract import CHECKPOINT_PREFIX

SINGLE_WEIGHTS = ("model.safetensors", "pytorch_model.bin", "adapter_model.safetensors", "adapter_model.bin")
INDEXES = ("model.safetensors.index.json", "pytorch_model.bin.index.json")
_NAME_RE = re.compile(re.escape(CHECKPOINT_PREFIX) + r"(\d{1,15})$")


def safetensors_problem(path: str) -> Optional[str]:
    """None when the file is whole, else why not (as `<name> truncated ...`)."""
    name = os.path.basename(path)
    try:
        size = os.path.getsize(path)
        with open(path, "rb") as fh:
            head = fh.read(8)
            if len(head) < 8:
                return f"{name} truncated ({size} bytes, no header)"
            (header_len,) = struct.unpack("<Q", head)
            if 8 + header_len > size:
                return f"{name} truncated ({size} bytes, header of {header_len} bytes cut off)"
            raw = fh.read(header_len)
    except OSError as exc:
        return f"{name} unreadable ({exc.strerror})"
    try:
        header = json.loads(raw.decode("utf-8"))
    except ValueError:
        return None  # whole but not JSON: not a cut-off write, so not ours to judge
    if not isinstance(header, dict):
        return None
    end = 0
    for key, entry in header.items():
        if key == "__metadata__" or not isinstance(entry, dict):
            continue
        offsets = entry.get("data_offsets")
        if isinstance(offsets, list) and len(offsets) == 2 and all(isinstance(o, int) for o in offsets):
            end = max(end, offsets[1])
    if 8 + header_len + end > size:
        return f"{name} truncated ({size} of {8 + header_len + end} bytes)"
    return None


def _is_zipfile(path: str) -> bool:
    import zipfile  # only a torch-format pytorch_model.bin needs it (~15 ms to import on every start)

    return zipfile.is_zipfile(path)


def bin_problem(path: str) -> Optional[str]:
    """pytorch_model.bin: torch's zip format must have its central directory; others must be non-empty."""
    name = os.path.basename(path)
    try:
        with open(path, "rb") as fh:
            magic = fh.read(4)
    except OSError as exc:
        return f"{name} unreadable ({exc.strerror})"
    if not magic:
        return f"{name} is empty"
    if magic.startswith(b"PK") and not _is_zipfile(path):
        return f"{name} truncated (its zip directory is missing)"
    return None


def weights_file_problem(path: str) -> Optional[str]:
    if path.endswith(".safetensors"):
        return safetensors_problem(path)
    return bin_problem(path)


def _weights_problem(path: str) -> Optional[str]:
    present = [n for n in SINGLE_WEIGHTS if os.path.isfile(os.path.join(path, n))]
    for name in present:
        why = weights_file_problem(os.path.join(path, name))
        if why:
            return why
    if present:
        return None
    for index_name in INDEXES:
        index_file = os.path.join(path, index_name)
        if not os.path.isfile(index_file):
            continue
        try:
            with open(index_file, encoding="utf-8") as fh:
                shards = sorted(set(json.load(fh)["weight_map"].values()))
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return f"{index_name} unreadable"
        if not shards or not all(isinstance(s, str) for s in shards):
            return f"{index_name} names no shards"
        for shard in shards:
            shard_path = os.path.join(path, shard)
            if not os.path.isfile(shard_path):
                return f"weight shard {shard} missing"
            why = weights_file_problem(shard_path)
            if why:
                return f"weight shard {why}"
        return None
    return "no model weights (model.safetensors, pytorch_model.bin, sharded index or adapter)"


def checkpoint_problem(path: str, step: int) -> Optional[str]:
    """None when checkpoint-<step> at `path` is complete, else why not (one short phrase)."""
    state_file = os.path.join(path, "trainer_state.json")
    if not os.path.isfile(state_file):
        return "trainer_state.json missing (killed mid-save?)"
    try:
        with open(state_file, encoding="utf-8") as fh:
            state = json.load(fh)
    except (OSError, ValueError):
        return "trainer_state.json unreadable or truncated"
    found = state.get("global_step") if isinstance(state, dict) else None
    if isinstance(found, bool) or found != step:
        return f"trainer_state.json global_step {found!r} does not match {step}"
    return _weights_problem(path)


def scan(output_dir: str) -> Tuple[Optional[str], List[str]]:
    """(newest complete checkpoint path or None, ["<name>: <why>" for the newer incomplete ones])."""
    try:
        names = os.listdir(output_dir)
    except OSError:
        names = []
    candidates = []
    for name in names:
        match = _NAME_RE.match(name)
        if match and os.path.isdir(os.path.join(output_dir, name)):
            candidates.append((int(match.group(1)), name))
    skipped: List[str] = []
    for step, name in sorted(candidates, reverse=True):
        path = os.path.join(output_dir, name)
        why = checkpoint_problem(path, step)
        if why is None:
            return path, skipped
        skipped.append(f"{name}: {why}")
    return None, skipped


def newest(output_dir: Optional[str]) -> Optional[str]:
    return scan(output_dir)[0] if output_dir else None
