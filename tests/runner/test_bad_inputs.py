"""The bad-input matrix: every input the runner can check on this machine is refused before the
first billable call, with a clear message and its documented exit code.

One row per bad input: (id, command line, setup, exit code, message fragment). Each row runs
against the fake RunPod API with a STOPPED pod, the stub `pulumi` and the real sshd, and asserts
from the fake's call log that nothing billable was asked for (no resume, start or create), that
the pod is still stopped, and that no secret appears in what the runner printed.

A new command or input joins by adding a row (and, if it needs one, a setup function).
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest

from runner.exitcodes import ExitCode
from tests.fixtures.pod_harness import git
from tests.fixtures.train_harness import TrainEnv, smoke_config, train_env  # noqa: F401

CONFIG = "configs/smoke.yaml"


def keygen(env: TrainEnv, name: str, key_type: str = "ed25519", passphrase: str = "") -> str:
    path = env.root / name
    subprocess.run(
        ["ssh-keygen", "-q", "-t", key_type, "-N", passphrase, "-f", str(path)], check=True, capture_output=True
    )
    return str(path)


# ---------------------------------------------------------------- setups (env, monkeypatch)
def passphrase_key(env, mp):
    mp.setenv("SSH_KEY_PATH", keygen(env, "enc", passphrase="a secret phrase"))


def damaged_key(env, mp):
    path = keygen(env, "damaged")
    lines = open(path).read().splitlines()
    lines[2] = lines[2][:10] + "AAAA" + lines[2][14:]  # one flipped run in the body
    open(path, "w").write("\n".join(lines) + "\n")
    mp.setenv("SSH_KEY_PATH", path)


def dsa_key(env, mp):
    mp.setenv("SSH_KEY_PATH", keygen(env, "dsa", key_type="dsa"))


def public_key(env, mp):
    mp.setenv("SSH_KEY_PATH", keygen(env, "pub") + ".pub")


def header_only_key(env, mp):
    path = env.root / "header_only"
    path.write_text("-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----\n")
    mp.setenv("SSH_KEY_PATH", str(path))


def missing_key(env, mp):
    mp.setenv("SSH_KEY_PATH", str(env.root / "no-such-key"))


def setenv(name: str, value: str) -> Callable:
    return lambda env, mp: mp.setenv(name, value)


def delenv(name: str) -> Callable:
    return lambda env, mp: mp.delenv(name, raising=False)


def no_outputs(env, mp):
    env.stub.set(outputs={})


def uncommitted_config(env, mp):
    env.write_config("configs/draft.yaml", smoke_config(), commit=False)


def committed_not_pushed(env, mp):
    """This checkout with a remote `origin` (REPO_URL = its URL): a config committed but not pushed."""
    bare = env.root / "origin.git"
    git(env.root, "init", "-q", "--bare", "-b", "main", str(bare))
    git(env.project, "remote", "add", "origin", f"file://{bare}")
    git(env.project, "push", "-q", "origin", "main")
    mp.setenv("REPO_URL", str(bare) + "/")  # another spelling of the same remote
    env.write_config("configs/local-only.yaml", smoke_config())


def script_not_committed(env, mp):
    (env.project / "remote" / "new_train.py").write_text("print('hi')\n")
    mp.setenv("TRAIN_SCRIPT", "remote/new_train.py")


def data_file(env, mp):
    (env.project / "file.txt").write_text("x")


@dataclass(frozen=True)
class Case:
    id: str
    argv: tuple[str, ...]
    code: int
    fragment: str
    setup: Callable | None = field(default=None, compare=False)


TRAIN = ("train", "--config", CONFIG)
CASES = [
    # the SSH key: loaded for real before anything else
    Case("key-missing", TRAIN, ExitCode.USAGE, "no-such-key does not exist", missing_key),
    Case("key-passphrase", TRAIN, ExitCode.USAGE, "protected by a passphrase", passphrase_key),
    Case("key-damaged", TRAIN, ExitCode.USAGE, "it is damaged", damaged_key),
    Case("key-header-only", TRAIN, ExitCode.USAGE, "it is damaged", header_only_key),
    Case("key-dsa", TRAIN, ExitCode.USAGE, "is a DSA key, a type the runner cannot use", dsa_key),
    Case("key-public", TRAIN, ExitCode.USAGE, "points at a public key", public_key),
    Case("sync-key-passphrase", ("sync",), ExitCode.USAGE, "protected by a passphrase", passphrase_key),
    # settings
    Case(
        "api-key-placeholder",
        TRAIN,
        ExitCode.USAGE,
        "still the example placeholder",
        setenv("RUNPOD_API_KEY", "<your-key>"),
    ),
    Case("repo-url-missing", TRAIN, ExitCode.USAGE, "set REPO_URL", delenv("REPO_URL")),
    Case(
        "branch-invalid", TRAIN, ExitCode.USAGE, "'a..b' is not a valid git branch name", setenv("REPO_BRANCH", "a..b")
    ),
    Case("branch-option", TRAIN, ExitCode.USAGE, "'-x' is not a valid git branch name", setenv("REPO_BRANCH", "-x")),
    Case(
        "branch-not-on-remote", TRAIN, ExitCode.USAGE, "branch 'nope' does not exist in", setenv("REPO_BRANCH", "nope")
    ),
    Case(
        "session-invalid",
        TRAIN,
        ExitCode.USAGE,
        "RT_SESSION 'a b;rm' is not a valid tmux session name",
        setenv("RT_SESSION", "a b;rm"),
    ),
    Case("start-timeout-not-a-number", TRAIN, ExitCode.USAGE, "POD_START_TIMEOUT", setenv("POD_START_TIMEOUT", "soon")),
    # the config and the training script, as the pod would clone them
    Case(
        "config-missing",
        ("train", "--config", "configs/nope.yaml"),
        ExitCode.USAGE,
        "config configs/nope.yaml not found",
    ),
    Case(
        "config-not-committed",
        ("train", "--config", "configs/draft.yaml"),
        ExitCode.USAGE,
        "configs/draft.yaml is not in branch main",
        uncommitted_config,
    ),
    Case(
        "config-not-pushed",
        ("train", "--config", "configs/local-only.yaml"),
        ExitCode.USAGE,
        "configs/local-only.yaml is not in branch main as pushed to",
        committed_not_pushed,
    ),
    Case(
        "train-script-not-committed",
        TRAIN,
        ExitCode.USAGE,
        "remote/new_train.py is not in branch main",
        script_not_committed,
    ),
    # flags
    Case(
        "workspace-relative",
        ("train", "--config", CONFIG, "--workspace", "ws"),
        ExitCode.USAGE,
        "--workspace must be an absolute",
    ),
    # the stack
    Case("no-stack-outputs", TRAIN, ExitCode.STACK, "pulumi up", no_outputs),
    # sync
    Case("sync-path-missing", ("sync", "does-not-exist"), ExitCode.USAGE, "does not exist"),
    Case("sync-path-not-a-dir", ("sync", "file.txt"), ExitCode.USAGE, "is not a directory", data_file),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_is_refused_before_any_billable_call(train_env, monkeypatch, case):
    env = train_env
    env.add_pod("EXITED")
    if case.setup is not None:
        case.setup(env, monkeypatch)
    res = env.run(*case.argv)
    assert res.code == case.code, res.err
    assert case.fragment in res.err, res.err
    assert env.fake.billable_calls() == [], env.fake.billable_calls()
    assert env.pod.status == "EXITED"
    for secret in (env.fake.api_key, "a secret phrase"):
        assert secret not in res.out + res.err


def test_allow_unpushed_turns_the_tree_check_into_a_warning(train_env, monkeypatch):
    env = train_env
    env.add_pod("RUNNING")
    script_not_committed(env, monkeypatch)
    res = env.run(*TRAIN, "--allow-unpushed")
    assert "warning: remote/new_train.py is not in branch main" in res.err
    assert res.code == ExitCode.USAGE and "training script" in res.err and "not found" in res.err  # the pod's own check


def test_a_remote_not_reachable_from_here_is_a_warning_not_an_error(train_env, monkeypatch):
    env = train_env
    env.add_pod("RUNNING")
    monkeypatch.setenv("REPO_URL", "https://user:tok3n-s3cret@127.0.0.1:1/nothing.git")
    res = env.run(*TRAIN, "--detach")
    assert "warning: could not check https://***@127.0.0.1:1/nothing.git from here" in res.err
    assert "tok3n-s3cret" not in res.out + res.err


@pytest.mark.parametrize(
    "url",
    [
        "git@github.com:me/repo.git",
        "https://github.com/me/repo",
        "https://x-token:abc@github.com/me/repo.git/",
        "ssh://git@GitHub.com:22/me/repo.git",
    ],
)
def test_every_spelling_of_a_remote_is_recognised_as_this_checkout(tmp_path, url):
    from runner.train.repo_check import checkout_remote

    git(tmp_path, "init", "-q", "-b", "main")
    git(tmp_path, "remote", "add", "upstream", "git@github.com:me/repo.git")
    assert checkout_remote(url, tmp_path) == "upstream"
    assert checkout_remote(str(tmp_path) + "/", tmp_path) == ""
    assert checkout_remote("https://github.com/me/other.git", tmp_path) is None
