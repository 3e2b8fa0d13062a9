"""A sweep's runs: every combination of the --set values, each a run id and its config overrides."""

from __future__ import annotations

import itertools
import json
import re
import time
from dataclasses import dataclass

from runner.errors import UsageError

MAX_RUNS = 256
_KEY_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]{0,63}$")


@dataclass(frozen=True)
class Axis:
    key: str
    values: tuple[object, ...]


def value_of(text: str) -> object:
    """A value as `--set` reads it: JSON when it is (1e-4, 16, true), else text."""
    try:
        parsed = json.loads(text)
    except ValueError:
        return text
    return text if isinstance(parsed, (list, dict)) else parsed


def axis(text: str) -> Axis:
    """`lr=1e-4,3e-4` -> Axis("lr", (0.0001, 0.0003))."""
    key, eq, raw = text.partition("=")
    key = key.strip()
    if not eq or not _KEY_RE.match(key) or not raw.strip():
        raise UsageError(f"--set {text!r}: expected KEY=V1,V2,... with a top-level config key")
    values = tuple(value_of(v.strip()) for v in raw.split(",") if v.strip())
    if len(set(map(repr, values))) != len(values):
        raise UsageError(f"--set {key}: a value is given twice")
    return Axis(key, values)


def combinations(axes: list[Axis]) -> list[dict[str, object]]:
    keys = [a.key for a in axes]
    if len(set(keys)) != len(keys):
        raise UsageError("--set names a key twice; give all its values in one --set KEY=V1,V2")
    combos = [dict(zip(keys, values)) for values in itertools.product(*(a.values for a in axes))]
    if not combos or len(combos) > MAX_RUNS:
        raise UsageError(f"a sweep has 1 to {MAX_RUNS} runs (this one: {len(combos)})")
    return combos


def default_id(config_name: str) -> str:
    stem = re.sub(r"[^A-Za-z0-9._-]", "-", config_name).strip("-._") or "sweep"
    return f"{stem[:32]}-sweep-{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}"


def run_id(sweep_id: str, index: int) -> str:
    return f"{sweep_id}-{index + 1}"


def describe(values: dict[str, object]) -> str:
    return " ".join(f"{k}={v}" for k, v in values.items())
