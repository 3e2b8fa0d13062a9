""".runpod.env: the table of known keys and the parser (the file is parsed, never executed), and the
settings whose values are secrets beyond the keys: NOTIFY_URL, and TRAIN_SECRETS (runner/secret_settings.py).

`KEY=value` lines, optional `export ` prefix, `#` comments, values optionally in single quotes
(literal) or double quotes (\\" \\\\ \\n escapes). runner/settings.py merges the result with the
environment and the command line into Settings.
"""

from __future__ import annotations

import os
import re
import shlex
import stat
from collections.abc import Mapping
from pathlib import Path

from runner.errors import SettingsError
from runner.types import Say

DEFAULT_ENV_FILE = ".runpod.env"

# key -> (default, one-line description); the order is the order of .runpod.env.example
KEYS: dict[str, tuple[str | None, str]] = {
    "RUNPOD_API_KEY": (None, "RunPod API key (read/write); secret"),
    "SSH_KEY_PATH": ("~/.ssh/id_ed25519", "private SSH key whose public half is in your RunPod account"),
    "PULUMI_STACK": ("dev", "Pulumi stack holding the pod and the volume"),
    "REPO_URL": (None, "git URL of the training repo the pod clones"),
    "REPO_BRANCH": ("main", "branch the pod checks out"),
    "TRAIN_SCRIPT": ("scripts/train.py", "training entry point, relative to the repo"),
    "DATA_DIR": ("data", "local data directory `runner sync` uploads"),
    "RUNPOD_REST_URL": (None, "override of the REST API base URL (tests, proxies)"),
    "RUNPOD_GRAPHQL_URL": (None, "override of the GraphQL API URL (tests, proxies)"),
    "RUNPOD_S3_ACCESS_KEY": (None, "S3 API key's access key (your user id, user_...): the volume without a pod"),
    "RUNPOD_S3_SECRET_KEY": (None, "S3 API key's secret (rps_...); secret"),
    "RUNPOD_S3_ENDPOINT_URL": (None, "override of the S3 endpoint (default from the data center; tests, proxies)"),
    "RUNNER_STATE_DIR": ("~/.runpod-trainer", "local state: pinned host keys, run records"),
    "POD_START_TIMEOUT": ("900", "seconds to wait for a pod to run and answer SSH"),
    "SSH_CONTROL_PERSIST": ("60", "seconds `runner sync` keeps its SSH connection for the next sync; 0: off"),
    "WATCH_POLL_SECONDS": ("15", "`runner watch` (and the background watcher): seconds between two looks at the pod"),
    "WATCH_CONFIRM_SECONDS": ("20", "`runner watch`: how long RunPod's answers must agree the pod is down"),
    "NOTIFY_URL": (None, "webhook URLs (Slack, Discord, ntfy, any JSON endpoint), comma-separated; secret"),
    "TRAIN_SECRETS": (
        None,
        "variables training gets on the pod (e.g. HF_TOKEN,WANDB_API_KEY); values from here or the environment",
    ),
    "PULUMI_BINARY": ("pulumi", "the Pulumi CLI to run"),
    "PULUMI_CONFIG_PASSPHRASE": (None, "passphrase of a local-backend stack's secrets; secret"),
    "PULUMI_CONFIG_PASSPHRASE_FILE": (None, "file holding that passphrase (preferred over the above)"),
}
SECRET_KEYS = frozenset({"RUNPOD_API_KEY", "PULUMI_CONFIG_PASSPHRASE", "RUNPOD_S3_SECRET_KEY", "NOTIFY_URL"})

_KEY_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def parse_env_text(text: str, *, source: str = DEFAULT_ENV_FILE) -> dict[str, str]:
    """Parse KEY=value lines. Errors name the line, never its value (it may be the key)."""
    values: dict[str, str] = {}
    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("export ") or line.startswith("export\t"):
            line = line[len("export") :].lstrip()
        key, sep, rest = line.partition("=")
        key = key.strip()
        if not sep or not _KEY_RE.fullmatch(key):
            raise SettingsError(f"{source}:{lineno}: expected KEY=value (a name, '=', then the value)")
        values[key] = _parse_value(rest.strip(), source, lineno)
    return values


def _parse_value(rest: str, source: str, lineno: int) -> str:
    if rest[:1] in ("'", '"'):
        quote = rest[0]
        out: list[str] = []
        i = 1
        while i < len(rest):
            c = rest[i]
            if c == quote:
                tail = rest[i + 1 :].strip()
                if tail and not tail.startswith("#"):
                    raise SettingsError(f"{source}:{lineno}: unexpected text after the closing quote")
                return "".join(out)
            if quote == '"' and c == "\\" and i + 1 < len(rest):
                nxt = rest[i + 1]
                out.append({"n": "\n", "t": "\t"}.get(nxt, nxt))
                i += 2
                continue
            out.append(c)
            i += 1
        raise SettingsError(f"{source}:{lineno}: missing closing {quote}")
    # unquoted: an inline comment starts at whitespace followed by '#'
    m = re.search(r"\s#", rest)
    return (rest[: m.start()] if m else rest).strip()


def check_permissions(path: Path, warn: Say) -> None:
    try:
        mode = path.stat().st_mode
    except OSError:
        return
    if os.name == "posix" and mode & (stat.S_IRWXG | stat.S_IRWXO):
        warn(
            f"{path} is accessible by group/others (mode {stat.S_IMODE(mode):04o}) and holds your RunPod API key; "
            f"run `chmod 600 {shlex.quote(str(path))}`"
        )


# ---------------------------------------------------------------- settings whose values are secrets
def notify_setting(text: str | None, source: str) -> tuple[str, ...]:
    """NOTIFY_URL: one or more webhook URLs; an error names the setting, never the URL (it is a secret)."""
    if not text:
        return ()
    from remote.podside.notify import NotifyUrlError, parse_urls

    try:
        return tuple(parse_urls(text))
    except NotifyUrlError as e:
        raise SettingsError(f"NOTIFY_URL ({source}): {e}; separate several URLs with commas.") from None


def secret_names(text: str | None, source: str) -> tuple[str, ...]:
    """The names TRAIN_SECRETS lists (commas or spaces between them); SettingsError for one that cannot be."""
    if not text:
        return ()
    from remote.podside.trainsecrets import refused  # only when some are named: the CLI starts without it

    found: list[str] = []
    for name in re.split(r"[\s,]+", text):
        if not name or name in found:
            continue
        why = refused(name)
        if why:
            raise SettingsError(f"TRAIN_SECRETS ({source}): {why}; list the names of the variables training needs.")
        found.append(name)
    return tuple(found)


def secret_values(
    wanted: tuple[str, ...], environ: Mapping[str, str], file_values: Mapping[str, str]
) -> dict[str, str]:
    """Each named variable's value: the environment's, else the settings file's (empty counts as unset)."""
    out: dict[str, str] = {}
    for name in wanted:
        value = environ.get(name) or file_values.get(name)
        if value:
            out[name] = value
    return out
