"""The training code on the pod: clone on the first run, fast-forward on later ones, never clobber.

Uncommitted changes to tracked files, or commits made on the pod that keep the branch from
fast-forwarding, stop the launch with an InputError and leave everything as it was. Untracked files
(the venv, checkpoints, logs) are not a problem. With RT_CODE_SOURCE=pushed git is skipped.
git runs with argument lists and GIT_TERMINAL_PROMPT=0; its output goes to stderr.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from typing import List, NamedTuple, Optional, Sequence, Tuple

from . import credential as gitcredential
from .inputs import InputError, LaunchSettings


def mask_url(url: str) -> str:
    """Hide credentials embedded in a URL (https://user:token@host/...) before showing it."""
    return re.sub(r"(://)[^/@]*@", r"\1***@", url)


def _env() -> dict:
    return {**os.environ, "GIT_TERMINAL_PROMPT": "0"}


def git(repo_dir: str, *args: str, capture: bool = False, config: Sequence[str] = ()) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["git", *config, "-C", repo_dir, *args],
        env=_env(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE if capture else sys.stderr.fileno(),
        stderr=subprocess.PIPE if capture else None,
        text=True,
    )


def _out(repo_dir: str, *args: str) -> Optional[str]:
    proc = git(repo_dir, *args, capture=True)
    return proc.stdout.strip() if proc.returncode == 0 else None


class Head(NamedTuple):
    """The checkout's commit: as `git rev-parse --short` shows it, and its full id."""

    short: str
    full: str


def head(repo_dir: str) -> Optional[Head]:
    found = (_out(repo_dir, "log", "-1", "--format=%h %H", "HEAD") or "").split()
    return Head(found[0], found[1]) if len(found) == 2 else None


def update(s: LaunchSettings, credential: Optional[str] = None) -> Optional[Head]:
    """Bring RT_REPO_DIR to origin's RT_REPO_BRANCH; returns the commit (None for a pushed tree that is
    not a git checkout). credential: for git's clone and fetch only (credential.py)."""
    with gitcredential.helper_args(credential) as config:
        return _update(s, config)


def _update(s: LaunchSettings, config: Sequence[str]) -> Optional[Head]:
    repo = s.repo_dir
    if s.code_source == "pushed":
        if not os.path.isdir(repo):
            raise InputError(f"RT_CODE_SOURCE=pushed but {repo} does not exist; push the working tree there first")
        return head(repo) if os.path.exists(os.path.join(repo, ".git")) else None
    shown = mask_url(s.repo_url)
    if os.path.lexists(repo) and not os.path.exists(os.path.join(repo, ".git")):
        if os.path.isdir(repo) and not os.listdir(repo):
            os.rmdir(repo)
        else:
            raise InputError(
                f"{repo} exists but is not a git checkout; move it away, set RT_REPO_DIR elsewhere, "
                "or use RT_CODE_SOURCE=pushed"
            )
    if not os.path.lexists(repo):
        return _clone(s, shown, config)
    current = _unchanged(repo)
    if _out(repo, "remote", "get-url", "origin") != s.repo_url:
        if (
            git(repo, "remote", "set-url", "origin", s.repo_url, capture=True).returncode != 0
            and git(repo, "remote", "add", "origin", s.repo_url, capture=True).returncode != 0
        ):
            raise InputError(f"cannot point origin of {repo} at {shown}")
    remote_ref = f"refs/remotes/origin/{s.branch}"
    # RT_REPO_COMMIT: the commit the runner's `git ls-remote` just saw on origin. When origin/<branch> is
    # already at it, the fetch (0.3-1 s from GitHub) would bring nothing: skipped. Anything else fetches.
    tips: Optional[Tips] = _tips(repo, s.branch) if s.commit else None
    if tips is None or tips.remote != s.commit:
        tips = None
        if (
            git(repo, "fetch", "--quiet", "origin", f"+refs/heads/{s.branch}:{remote_ref}", config=config).returncode
            != 0
        ):
            raise InputError(
                f"git fetch of branch {s.branch} from {shown} failed; check the branch exists and "
                "the pod can reach the repo"
            )
    if current != s.branch:
        tips = None
        local = git(repo, "show-ref", "--verify", "--quiet", f"refs/heads/{s.branch}", capture=True).returncode == 0
        switch: List[str] = (
            ["switch", "--quiet", s.branch] if local else ["switch", "--quiet", "--track", "-c", s.branch, remote_ref]
        )
        if git(repo, *switch).returncode != 0:
            raise InputError(
                f"cannot switch {repo} to branch {s.branch} (untracked files in the way?); nothing was started"
            )
    if tips is None:
        tips = _tips(repo, s.branch)
    if tips.local is None or tips.local != tips.remote:
        # Already at origin's commit (the usual relaunch), the merge would be a no-op: it runs only when not.
        if git(repo, "merge", "--quiet", "--ff-only", remote_ref).returncode != 0:
            raise InputError(
                f"the pod's branch {s.branch} in {repo} cannot be fast-forwarded to origin (it has "
                "commits made on the pod, or untracked files would be overwritten); nothing was "
                f"changed. Push or reset them on the pod ({shlex.join(['git', '-C', repo, 'log', f'origin/{s.branch}..HEAD'])}), "
                "then run again"
            )
        tips = _tips(repo, s.branch)
    if tips.local is not None and tips.local != tips.remote:
        ahead = _out(repo, "rev-list", "--count", f"{remote_ref}..HEAD") or "0"
        if ahead != "0":
            sys.stderr.write(
                f"warning: the pod's branch {s.branch} has {ahead} commit(s) that are not on origin; "
                "they are kept and used\n"
            )
    if tips.local and tips.short:
        return Head(tips.short, tips.local)
    return head(repo)


def at_commit(s: LaunchSettings, credential: Optional[str] = None) -> Optional[Head]:
    """The checkout exactly at s.commit, for a relaunch of a run with nobody attached (no new code mid-run):
    nothing to do when HEAD is there (the usual case), else HEAD detached at it (fetched first when
    missing); local changes stop it as in update(). A pushed tree is used as it is."""
    repo = s.repo_dir
    if s.code_source == "pushed" or not s.commit:
        return update(s, credential)
    if not os.path.exists(os.path.join(repo, ".git")):
        raise InputError(f"the run's checkout {repo} is gone; start the run again with `runner train`")
    _unchanged(repo)
    now = head(repo)
    if now is not None and now.full == s.commit:
        return now
    if git(repo, "cat-file", "-e", f"{s.commit}^{{commit}}", capture=True).returncode != 0:
        with gitcredential.helper_args(credential) as config:
            git(
                repo,
                "fetch",
                "--quiet",
                "origin",
                f"+refs/heads/{s.branch}:refs/remotes/origin/{s.branch}",
                config=config,
            )
    if git(repo, "switch", "--quiet", "--detach", s.commit).returncode != 0:
        raise InputError(f"cannot check out the run's commit {s.commit[:12]} in {repo}; nothing was started")
    return head(repo)


def _unchanged(repo: str) -> Optional[str]:
    """The current branch (None: detached), after making sure no tracked file has local changes."""
    changed, current = _status(repo)
    if changed:
        raise InputError(
            f"the pod's checkout {repo} has local changes to tracked files; nothing was updated or "
            f"started. Changed: {' '.join(changed[:5])} — commit and push them from the pod, or discard "
            f"them ({shlex.join(['git', '-C', repo, 'stash'])}), then run again"
        )
    return current


class Tips(NamedTuple):
    local: Optional[str]  # refs/heads/<branch>
    remote: Optional[str]  # refs/remotes/origin/<branch>
    short: Optional[str]  # the local tip as `git rev-parse --short` gives it


def _tips(repo_dir: str, branch: str) -> Tips:
    """Both tips and the local one's short name from one git process (for-each-ref abbreviates as
    rev-parse --short does)."""
    heads, remotes = f"refs/heads/{branch}", f"refs/remotes/origin/{branch}"
    found = {}
    for line in (
        _out(repo_dir, "for-each-ref", "--format=%(refname) %(objectname) %(objectname:short)", heads, remotes) or ""
    ).splitlines():
        parts = line.split(" ")
        if len(parts) == 3:
            found[parts[0]] = (parts[1], parts[2])
    local, remote = found.get(heads), found.get(remotes)
    return Tips(local[0] if local else None, remote[0] if remote else None, local[1] if local else None)


def _status(repo_dir: str) -> Tuple[List[str], Optional[str]]:
    """One `git status --porcelain=v2 --branch`: the changed tracked files (shown as porcelain v1's
    "XY path") and the current branch (None when HEAD is detached)."""
    proc = git(repo_dir, "status", "--porcelain=v2", "--branch", "--untracked-files=no", capture=True)
    if proc.returncode != 0:
        raise InputError(f"git status failed in {repo_dir}: {(proc.stderr or '').strip()}")
    changed: List[str] = []
    branch: Optional[str] = None
    for line in proc.stdout.splitlines():
        if line.startswith("# branch.head "):
            name = line[len("# branch.head ") :]
            branch = None if name == "(detached)" else name
        elif line[:2] in ("1 ", "2 ", "u "):
            kind, xy = line[0], line[2:4].replace(".", " ")
            fields = line.split(" ", {"1": 8, "2": 9, "u": 10}[kind])
            path = fields[-1]
            if kind == "2" and "\t" in path:
                new, orig = path.split("\t", 1)
                path = f"{orig} -> {new}"
            changed.append(f"{xy} {path}")
    return changed, branch


def _clone(s: LaunchSettings, shown: str, config: Sequence[str]) -> Optional[Head]:
    parent = os.path.dirname(s.repo_dir)
    try:
        os.makedirs(parent, exist_ok=True)
    except OSError:
        raise InputError(f"cannot create {parent}") from None
    sys.stderr.write(f"cloning {shown} (branch {s.branch}) into {s.repo_dir}\n")
    sys.stderr.flush()
    # Into a temporary sibling, renamed when complete: a clone cut off (the launcher killed with its
    # SSH session) leaves no half checkout in RT_REPO_DIR for the next launch to trip over.
    partial = s.repo_dir.rstrip("/") + ".partial-clone"
    shutil.rmtree(partial, ignore_errors=True)
    proc = subprocess.run(
        ["git", *config, "clone", "--quiet", f"--branch={s.branch}", "--", s.repo_url, partial],
        env=_env(),
        stdin=subprocess.DEVNULL,
        stdout=sys.stderr.fileno(),
    )
    if proc.returncode != 0:
        shutil.rmtree(partial, ignore_errors=True)
        raise InputError(
            f"git clone of {shown} (branch {s.branch}) failed; check REPO_URL/REPO_BRANCH and that "
            "the pod can read the repo (deploy key or token)"
        )
    try:
        os.rename(partial, s.repo_dir)
    except OSError as exc:
        raise InputError(f"cannot move the clone into {s.repo_dir} ({exc.strerror})") from None
    return head(s.repo_dir)


def link_data(workspace_data: str, repo_dir: str) -> Optional[str]:
    """`runner sync` uploads to <workspace>/data, configs name data relative to the repo: link
    <repo>/data to it unless the repo has its own. Returns the link made, if any."""
    link = os.path.join(repo_dir, "data")
    if not os.path.isdir(workspace_data) or os.path.lexists(link):
        return None
    os.symlink(workspace_data, link)
    return link
