"""Checks of what the pod will clone and run: REPO_URL reachable from here with the branch on it
(`git ls-remote`, as runner train's pre-flight does: runner/train/repo_check.py), and the training
config(s) naming `output_dir`."""

from __future__ import annotations

from pathlib import Path

from runner.doctor.check import Check, Context, fail, ok, warn
from runner.errors import RunnerError


def repo_url(ctx: Context) -> Check:
    from runner.train import repo_check

    name = "REPO_URL"
    s = ctx.settings
    if not s.repo_url:
        return fail(
            name,
            "REPO_URL is not set: the pod would not know what to clone",
            "set REPO_URL in .runpod.env to the git URL of the training repo",
        )
    shown = repo_check.mask_url(s.repo_url)
    try:
        repo_check.check_branch_name(s.repo_branch)
    except RunnerError as e:
        return fail(name, e.message, "set REPO_BRANCH in .runpod.env to an existing branch, e.g. main")
    remote = repo_check.ls_remote_branch(s.repo_url, s.repo_branch)
    if not remote.reachable:
        return fail(
            name,
            f"{shown} is not reachable from here ({remote.detail})",
            "check the URL and your access (`git ls-remote <REPO_URL>`); a private repo needs a token in the "
            "URL or an SSH deploy key (the pod needs the same access)",
        )
    if remote.sha is None:
        return fail(
            name,
            f"{shown} has no branch {s.repo_branch!r}",
            f"push it (`git push origin {s.repo_branch}`) or set REPO_BRANCH in .runpod.env to an existing branch",
        )
    return ok(name, f"{shown} branch {s.repo_branch} at {remote.sha[:12]}")


def train_config(ctx: Context) -> list[Check]:
    from runner.train.train_config import load_train_config

    root = ctx.settings.project_root
    if ctx.config:
        rels = [ctx.config]
    else:
        rels = sorted(p.relative_to(root).as_posix() for p in (root / "configs").glob("*.yaml"))
        if not rels:
            return [
                warn(
                    "training config",
                    f"no configs/*.yaml under {root}",
                    "name one with `python -m runner doctor --config PATH`",
                )
            ]
    checks = []
    for rel in rels:
        name = f"config {rel}"
        try:
            cfg = load_train_config(rel, root, cwd=Path.cwd())
        except RunnerError as e:
            checks.append(
                fail(
                    name,
                    e.message,
                    f"add a top-level `output_dir: checkpoints/{Path(rel).stem}` to {rel}"
                    if "output_dir" in e.message
                    else "fix the file as the message says",
                )
            )
            continue
        checks.append(ok(name, f"output_dir {cfg.output_dir}"))
    return checks


__all__ = ["repo_url", "train_config"]
