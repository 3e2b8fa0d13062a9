"""Check the training config on this machine before anything touches RunPod.

`--config` is relative to the training repo's root (this project); the same relative path is what
the pod-side launcher gets as RT_CONFIG inside its checkout. Checked here: the file exists, is
YAML, is a mapping, and names a non-empty top-level `output_dir` (where checkpoints go, so the
launcher can resume from the newest complete one).
"""

from __future__ import annotations

import re
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from runner.errors import UsageError


class ConfigError(UsageError):
    """The training config is missing or unusable (exit 2, nothing started)."""


@dataclass(frozen=True)
class TrainConfig:
    rel_path: str  # POSIX path relative to the repo root: RT_CONFIG on the pod
    path: Path  # the local file
    output_dir: str  # as written in the config (relative to the repo root, or absolute)
    values: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def name(self) -> str:
        return self.path.stem

    def default_run_id(self) -> str:
        """<config name>-<UTC time>: a new run's id when --run-id is not given."""
        stem = re.sub(r"[^A-Za-z0-9._-]", "-", self.name).strip("-._") or "run"
        return f"{stem[:40]}-{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}"


def _relative_to_root(config: str, root: Path, cwd: Path) -> tuple[Path, str]:
    given = Path(config).expanduser()
    candidates = [given] if given.is_absolute() else [root / given, cwd / given]
    for cand in candidates:
        full = cand.resolve()
        try:
            rel = full.relative_to(root.resolve())
        except ValueError:
            continue
        if full.exists():
            return full, rel.as_posix()
    full = candidates[0].resolve()
    try:
        rel_text = full.relative_to(root.resolve()).as_posix()
    except ValueError:
        raise ConfigError(
            f"config {config} is outside the training repo {root}; --config takes a path relative to the "
            f"repo root (e.g. configs/baseline.yaml), the same path the pod uses inside its checkout."
        ) from None
    return full, rel_text


def load_train_config(config: str, project_root: Path, *, cwd: Path | None = None) -> TrainConfig:
    """The checked config, or ConfigError saying what to fix."""
    root = Path(project_root)
    path, rel = _relative_to_root(config, root, (cwd or Path.cwd()))
    if not path.exists():
        raise ConfigError(
            f"config {rel} not found (looked for {path}); --config is relative to the training repo root "
            f"{root}. Existing configs: {_existing(root)}."
        )
    if not path.is_file():
        raise ConfigError(f"config {rel} is not a file ({path}).")
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError(f"cannot read config {path}: {e.strerror}.") from None
    except UnicodeDecodeError:
        raise ConfigError(f"config {path} is not UTF-8 text.") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        where = ""
        mark = getattr(e, "problem_mark", None)
        if mark is not None:
            where = f" at line {mark.line + 1}, column {mark.column + 1}"
        problem = getattr(e, "problem", None) or "syntax error"
        raise ConfigError(f"config {rel} is not valid YAML{where}: {problem}; fix it and retry.") from None
    if not isinstance(data, dict):
        raise ConfigError(f"config {rel} must be a YAML mapping of `key: value` lines (it has no top-level keys).")
    output_dir = data.get("output_dir")
    if not isinstance(output_dir, str) or not output_dir.strip():
        raise ConfigError(
            f"config {rel} has no top-level output_dir; add a line such as `output_dir: checkpoints/{path.stem}` "
            "(checkpoints go there on the network volume, and training resumes from the newest one)."
        )
    if "\n" in output_dir or "\r" in output_dir:
        raise ConfigError(f"config {rel}: output_dir must not contain a line break.")
    return TrainConfig(rel_path=rel, path=path, output_dir=output_dir.strip(), values=data)


def _existing(root: Path) -> str:
    found = (
        sorted(p.relative_to(root).as_posix() for p in (root / "configs").glob("*.y*ml"))
        if (root / "configs").is_dir()
        else []
    )
    return ", ".join(found[:8]) + (" ..." if len(found) > 8 else "") if found else "none under configs/"


def uncommitted_warning(cfg: TrainConfig, repo_root: Path) -> str | None:
    """A warning when the pod would not see this file as it is here (it clones committed code only)."""
    try:
        out = subprocess.run(
            ["git", "-C", str(repo_root), "status", "--porcelain", "--", cfg.rel_path],
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if out.returncode != 0 or not out.stdout.strip():
        return None
    what = "is not committed" if out.stdout.startswith("??") else "has uncommitted changes"
    return (
        f"config {cfg.rel_path} {what}; the training repo is cloned from its committed (and pushed) "
        f"state, so commit and push it first or the run uses the old version (or fails to find it)."
    )
