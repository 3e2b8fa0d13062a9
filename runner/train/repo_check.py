"""What the pod would find out only after a resume, checked here first (no money spent):

    the branch name       a valid git branch name (`git check-ref-format --branch`)
    the tmux session      RT_SESSION matches the pod side's SESSION_RE
    the branch exists     `git ls-remote` on REPO_URL: missing there -> error; REPO_URL not
                          reachable from this machine (VPN, deploy key only on the pod) -> a warning
    the files exist       when REPO_URL is this checkout (its path, or the URL of one of its
                          remotes): the config and TRAIN_SCRIPT are in the branch as pushed
                          (error; `--allow-unpushed` makes it a warning)

REPO_URL may carry a token: it never appears in a message (mask_url) nor on a command line (git
gets it through GIT_CONFIG_* environment variables as the URL of a temporary remote name).
"""

from __future__ import annotations

import functools
import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from remote.podside.contract import DEFAULT_SESSION, SESSION_RE, Inputs
from runner.errors import SettingsError, UsageError
from runner.types import Say

LS_REMOTE_TIMEOUT_S = 20.0
_CHECK_REMOTE = "runner-check"


class RepoCheckError(UsageError):
    """The training repo, branch or files are not what the pod needs (ExitCode.USAGE, nothing started)."""


def mask_url(url: str) -> str:
    """A repo URL with any credentials in it hidden (the same rule as runner/train/remote_launch.py)."""
    return re.sub(r"(://)[^/@]*@", r"\1***@", url)


@functools.lru_cache(maxsize=8)
def _valid_branch_name(branch: str) -> bool:
    return (
        not branch.startswith("-")
        and subprocess.run(
            ["git", "check-ref-format", "--branch", branch],
            cwd="/",
            capture_output=True,
            timeout=10,
        ).returncode
        == 0
    )


def check_branch_name(branch: str) -> None:
    if not _valid_branch_name(branch):  # asked twice per `runner train`: one git process
        raise SettingsError(
            f"REPO_BRANCH {branch!r} is not a valid git branch name (`git check-ref-format --branch` refuses it); "
            "set REPO_BRANCH in .runpod.env to the branch the pod should check out, e.g. main."
        )


def check_session(session: str) -> str:
    """The tmux session the launcher will use: RT_SESSION from the environment, else the target's."""
    chosen = os.environ.get(Inputs.SESSION) or session or DEFAULT_SESSION
    if not SESSION_RE.match(chosen):
        raise SettingsError(
            f"{Inputs.SESSION} {chosen!r} is not a valid tmux session name for the pod: use letters, digits, "
            f"'_' and '-' only (default: {DEFAULT_SESSION})."
        )
    return chosen


@dataclass(frozen=True)
class RemoteBranch:
    reachable: bool
    sha: str | None  # the branch's commit on the remote (None: not there / not reachable)
    detail: str = ""  # why it was not reachable (masked)


def _git_env(repo_url: str) -> dict[str, str]:
    env = dict(os.environ)
    n = int(env.get("GIT_CONFIG_COUNT", "0") or 0)
    env.update(
        {
            "GIT_CONFIG_COUNT": str(n + 1),
            f"GIT_CONFIG_KEY_{n}": f"remote.{_CHECK_REMOTE}.url",
            f"GIT_CONFIG_VALUE_{n}": repo_url,
            "GIT_TERMINAL_PROMPT": "0",
            "GIT_SSH_COMMAND": (env.get("GIT_SSH_COMMAND") or "ssh") + " -o BatchMode=yes -o ConnectTimeout=10",
        }
    )
    return env


def ls_remote_branch(repo_url: str, branch: str, *, timeout_s: float = LS_REMOTE_TIMEOUT_S) -> RemoteBranch:
    try:
        out = subprocess.run(
            ["git", "ls-remote", "--exit-code", _CHECK_REMOTE, f"refs/heads/{branch}"],
            cwd="/",
            env=_git_env(repo_url),
            capture_output=True,
            text=True,
            timeout=timeout_s,
        )
    except subprocess.TimeoutExpired:
        return RemoteBranch(False, None, f"no answer within {timeout_s:g}s")
    except OSError as e:
        return RemoteBranch(False, None, f"cannot run git: {e.strerror}")
    if out.returncode == 0:
        return RemoteBranch(True, out.stdout.split()[0] if out.stdout.split() else None)
    if out.returncode == 2:
        return RemoteBranch(True, None)
    lines = [line for line in out.stderr.strip().splitlines() if line.strip()]
    detail = (lines[-1] if lines else f"git exit code {out.returncode}").replace(repo_url, mask_url(repo_url))
    return RemoteBranch(False, None, mask_url(detail).removeprefix("fatal: "))


def _normalize(url: str) -> str:
    """host/path of a git URL (scheme, credentials, port-less scp syntax, .git and slashes dropped)."""
    u = url.strip()
    if u.lower().startswith("file://"):
        return str(Path(u[len("file://") :]).resolve())
    m = re.match(r"^[a-z][a-z0-9+.-]*://(?:[^/@]*@)?([^/]+)(/.*)?$", u, re.I)
    if m:
        host, path = m.group(1).lower(), m.group(2) or ""
        host = host.split(":")[0] if not host.startswith("[") else host
    else:
        scp = re.match(r"^(?:[^@/]+@)?([^:/]+):(.*)$", u)
        if not scp:
            return str(Path(u).expanduser().resolve())
        host, path = scp.group(1).lower(), "/" + scp.group(2)
    path = re.sub(r"\.git/?$", "", path.rstrip("/"))
    return f"{host}/{path.lstrip('/')}"


def checkout_remote(repo_url: str, root: Path) -> str | None:
    """ "" when REPO_URL is this checkout's own path, the remote's name when it is one of its
    remotes' URLs, None when the training repo is something else."""
    if not (root / ".git").exists():
        return None
    want = _normalize(repo_url)
    if want == str(root.resolve()):
        return ""
    out = subprocess.run(
        ["git", "-C", str(root), "config", "--get-regexp", r"^remote\..*\.url$"],
        capture_output=True,
        text=True,
        timeout=10,
    )
    for line in out.stdout.splitlines():
        key, _, url = line.partition(" ")
        if url and _normalize(url) == want:
            return key[len("remote.") : -len(".url")]
    return None


def _git_ok(root: Path, *args: str) -> bool:
    return subprocess.run(["git", "-C", str(root), *args], capture_output=True, timeout=10).returncode == 0


def _objects_exist(root: Path, names: list[str]) -> list[bool]:
    """Whether each object name (`<commit>^{commit}`, `<tree-ish>:<path>`) resolves in the checkout:
    one `git cat-file --batch-check` for all of them instead of one git per name."""
    if not names or any("\n" in n or "\r" in n for n in names):
        return [_git_ok(root, "cat-file", "-e", n) for n in names]
    out = subprocess.run(
        ["git", "-C", str(root), "cat-file", "--batch-check=%(objectname)"],
        input="".join(n + "\n" for n in names),
        capture_output=True,
        text=True,
        timeout=10,
    )
    answers = out.stdout.splitlines()
    if out.returncode != 0 or len(answers) != len(names):
        return [_git_ok(root, "cat-file", "-e", n) for n in names]
    # found: the object's id alone; not found: "<name> missing" (or "ambiguous", "dangling", ...)
    return [re.fullmatch(r"[0-9a-f]{40,64}", a.strip()) is not None for a in answers]


def check_repo(
    repo_url: str,
    branch: str,
    *,
    root: Path,
    paths: list[str],
    allow_unpushed: bool,
    say: Say,
    remote: RemoteBranch | None = None,
) -> None:
    """The branch exists on REPO_URL; when REPO_URL is this checkout, `paths` exist in it as pushed.
    `remote`: ls_remote_branch()'s answer when the caller asked it already."""
    shown = mask_url(repo_url)
    remote = remote or ls_remote_branch(repo_url, branch)
    if remote.reachable and remote.sha is None:
        raise RepoCheckError(
            f"branch {branch!r} does not exist in {shown} (`git ls-remote` found no refs/heads/{branch}); "
            f"push it (`git push -u origin {branch}`) or set REPO_BRANCH to a branch that exists there."
        )
    if not remote.reachable:
        say(
            f"warning: could not check {shown} from here ({remote.detail}); the pod will try to clone "
            f"branch {branch} itself"
        )
    name = checkout_remote(repo_url, root)
    if name is None:
        return
    tree, what = None, ""
    if remote.sha:
        # The pushed commit and the files in it, in one git call (the usual case: all there).
        found = _objects_exist(root, [f"{remote.sha}^{{commit}}", *(f"{remote.sha}:{p}" for p in paths)])
        if found[0]:
            _require_pushed(
                [p for p, ok in zip(paths, found[1:]) if not ok],
                f"branch {branch} as pushed to {shown}",
                allow_unpushed,
                say,
            )
            return
        say(
            f"warning: {shown} has commits on {branch} this checkout does not (`git fetch`); "
            "not checking that the config and TRAIN_SCRIPT are in it"
        )
        return
    if name and _git_ok(root, "rev-parse", "--verify", "--quiet", f"refs/remotes/{name}/{branch}"):
        tree, what = f"refs/remotes/{name}/{branch}", f"{name}/{branch} as last fetched"
    elif name == "" and _git_ok(root, "rev-parse", "--verify", "--quiet", f"refs/heads/{branch}"):
        tree, what = f"refs/heads/{branch}", f"branch {branch}"
    if tree is None:
        return
    found = _objects_exist(root, [f"{tree}:{p}" for p in paths])
    _require_pushed([p for p, ok in zip(paths, found) if not ok], what, allow_unpushed, say)


def _require_pushed(missing: list[str], what: str, allow_unpushed: bool, say: Say) -> None:
    if not missing:
        return
    listed = " and ".join(missing)
    problem = (
        f"{listed} {'is' if len(missing) == 1 else 'are'} not in {what}: the pod clones that, so it "
        f"would not find {'it' if len(missing) == 1 else 'them'}"
    )
    if allow_unpushed:
        say(f"warning: {problem} (--allow-unpushed: launching anyway)")
        return
    raise RepoCheckError(
        f"{problem}. Commit and push ({'`git add ' + ' '.join(missing) + ' && git commit && git push`'}), "
        "fix --config / TRAIN_SCRIPT, or pass --allow-unpushed if the pod gets them another way."
    )


__all__ = [
    "RepoCheckError",
    "check_branch_name",
    "check_repo",
    "check_session",
    "checkout_remote",
    "ls_remote_branch",
    "mask_url",
]
