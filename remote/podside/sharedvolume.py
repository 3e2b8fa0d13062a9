"""A network volume shared by several pods (RT_SHARED_VOLUME=1): what keeps their runs apart.

RunPod lets one network volume be attached to many pods and warns that writing the same files from
several of them at once may conflict or corrupt data: the application must coordinate its writes
(docs/guide/several-pods.md cites the page). So here no two runs ever write one file, and what they do
share is written once under a volume-wide lock (an flock on the volume: MooseFS, behind RunPod's network
volumes, keeps file locks across all its clients) and only read afterwards:

    runs/<run_id>/<repo>/        the run's own checkout (a git worktree at the run's commit): its
                                 relative output_dir, checkpoints and anything training writes there
    .runner/git/<repo>.git       one bare clone: the objects every run's worktree uses (fetches: locked)
    .runner/venvs/<key>/         one venv per requirements.txt and interpreter, built once (locked),
                                 then used as it is by every run with the same key
    .runner/pods/<slot>/, logs/pods/<slot>/   each pod's own records and log (contract.VolumePaths)
    data/                        the data set: read by runs, written only by `runner sync`

A run that is live on another pod, or another pod's live run writing to the same absolute output_dir,
refuses the launch before anything starts (conflicts()).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
from typing import List, Optional, Sequence

from . import credential as gitcredential
from . import record, volumelock
from .contract import AttemptState, StateKey
from .gitcode import Head, _unchanged, git, head, mask_url
from .inputs import InputError, LaunchSettings

LOCK_WAIT_S = 1800.0  # a first clone or a venv's install can take many minutes
_LIVE = (AttemptState.SETUP.value, AttemptState.RUNNING.value)


def volume_lock(path: str, what: str, wait_s: float = LOCK_WAIT_S, note=None):
    """An flock on the volume, held while one pod writes what all pods share."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    busy = f"{what} is still locked by another pod after {wait_s:.0f}s ({path})"
    return volumelock.held(path, busy, wait_s, (lambda: note(f"waiting for another pod: {what}")) if note else None)


# ---------------------------------------------------------------- the run's own checkout
def checkout(s: LaunchSettings, credential: Optional[str] = None) -> Optional[Head]:
    """s.repo_dir (runs/<run id>/<repo>) as a worktree of the volume's bare clone, at the branch's commit
    (exactly s.commit when pinned or already fetched). A run's later attempts keep their checkout; a
    pushed tree (RT_CODE_SOURCE=pushed) is used as it is."""
    if s.code_source == "pushed":
        if not os.path.isdir(s.repo_dir):
            raise InputError(
                f"RT_CODE_SOURCE=pushed but {s.repo_dir} does not exist; push the working tree there first"
            )
        return head(s.repo_dir) if os.path.exists(os.path.join(s.repo_dir, ".git")) else None
    name = os.path.basename(s.repo_dir.rstrip("/"))
    store = s.paths.git_store(name)
    with gitcredential.helper_args(credential) as config, volume_lock(store + ".lock", "the shared git clone"):
        target = _fetched(s, store, config)
        if os.path.exists(os.path.join(s.repo_dir, ".git")):
            _unchanged(s.repo_dir)
            now = head(s.repo_dir)
            if now is not None and now.full == target:
                return now
            if git(s.repo_dir, "switch", "--quiet", "--detach", target).returncode != 0:
                raise InputError(f"cannot check out {target[:12]} in the run's checkout {s.repo_dir}")
            return head(s.repo_dir)
        if os.path.lexists(s.repo_dir):
            raise InputError(f"{s.repo_dir} exists but is not the run's checkout; move it away or use another run id")
        os.makedirs(os.path.dirname(s.repo_dir), exist_ok=True)
        git(store, "worktree", "prune")  # checkouts of runs that were deleted
        if git(store, "worktree", "add", "--quiet", "--detach", s.repo_dir, target).returncode != 0:
            raise InputError(f"cannot make the run's checkout {s.repo_dir} at {target[:12]}")
    return head(s.repo_dir)


def _fetched(s: LaunchSettings, store: str, config: Sequence[str]) -> str:
    """The commit the run trains: s.commit when the store has it (or can fetch it), else the branch's tip."""
    shown = mask_url(s.repo_url)
    if not os.path.isdir(store):
        partial = store + ".partial-clone"
        shutil.rmtree(partial, ignore_errors=True)
        sys.stderr.write(f"cloning {shown} into the volume's shared clone {store}\n")
        sys.stderr.flush()
        os.makedirs(os.path.dirname(store), exist_ok=True)
        cloned = git(os.path.dirname(store), "clone", "--quiet", "--bare", "--", s.repo_url, partial, config=config)
        if cloned.returncode != 0:
            shutil.rmtree(partial, ignore_errors=True)
            raise InputError(
                f"git clone of {shown} failed; check REPO_URL and that the pod can read the repo (deploy key or token)"
            )
        os.rename(partial, store)
    if s.commit and _has(store, s.commit):
        return s.commit
    ref = f"refs/heads/{s.branch}"
    git(store, "remote", "set-url", "origin", s.repo_url, capture=True)
    if git(store, "fetch", "--quiet", "origin", f"+{ref}:{ref}", config=config).returncode != 0:
        raise InputError(f"git fetch of branch {s.branch} from {shown} failed; check the branch exists")
    if s.commit and (s.pin_commit or _has(store, s.commit)):
        if not _has(store, s.commit):
            raise InputError(f"the run's commit {s.commit[:12]} is not on branch {s.branch} any more")
        return s.commit
    tip = git(store, "rev-parse", "--verify", "--quiet", ref + "^{commit}", capture=True)
    if tip.returncode != 0 or not tip.stdout.strip():
        raise InputError(f"branch {s.branch} was not found in {shown}")
    return tip.stdout.strip()


def _has(store: str, commit: str) -> bool:
    return git(store, "cat-file", "-e", f"{commit}^{{commit}}", capture=True).returncode == 0


# ---------------------------------------------------------------- the shared venv
def venv_dir(s: LaunchSettings) -> str:
    """.runner/venvs/<key>: one venv per requirements.txt and interpreter (RT_PYTHON's real file)."""
    digest = hashlib.sha256()
    try:
        with open(os.path.join(s.repo_dir, "requirements.txt"), "rb") as fh:
            digest.update(fh.read())
    except OSError:
        digest.update(b"<no requirements.txt>")
    exe = shutil.which(s.python) or s.python
    digest.update(b"\0" + os.path.realpath(exe).encode())
    return s.paths.shared_venv(digest.hexdigest()[:16])


# ---------------------------------------------------------------- runs that would step on each other
def conflicts(s: LaunchSettings, run_id: str, output_dir: Optional[str] = None) -> List[str]:
    """What another pod's live run shares with this launch: the run itself, or its output_dir."""
    found: List[str] = []
    for other in s.paths.other_pods():
        state = record.load(other.state_file)
        if not state or state.get(StateKey.STATE) not in _LIVE:
            continue
        where = f"pod {other.slot or 'the first'}"
        if state.get(StateKey.RUN_ID) == run_id:
            found.append(
                f"run {run_id} is {state.get(StateKey.STATE)} on {where}; follow it there "
                "(`runner logs --run ...`) or start this one with another --run-id"
            )
        elif output_dir and state.get(StateKey.OUTPUT_DIR) == output_dir:
            found.append(
                f"run {state.get(StateKey.RUN_ID)} on {where} writes to the same output_dir {output_dir}; "
                "make output_dir relative (each run's checkout is its own) or give this run another one"
            )
    return found


def refuse_conflicts(s: LaunchSettings, run_id: str, output_dir: Optional[str] = None) -> None:
    found = conflicts(s, run_id, output_dir)
    if found:
        raise InputError("; ".join(found) + "; nothing was started")
