"""Runner settings: `.runpod.env` < environment variables < command-line flags; RunPod's own
~/.runpod/config.toml gives the API key when none of them does (runner/runpod_config.py).

`.runpod.env` is parsed, never executed: `KEY=value` lines, optional `export ` prefix, `#` comments,
values optionally in single quotes (literal) or double quotes (\\" \\\\ \\n escapes). Empty values count
as unset, so `RUNPOD_API_KEY=` in the environment does not hide the file's key.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from backends.plain_http import plain_http_elsewhere
from runner import envfile
from runner.cliparser import did_you_mean
from runner.envfile import DEFAULT_ENV_FILE, KEYS, check_permissions, parse_env_text
from runner.errors import SettingsError
from runner.paths import StatePaths
from runner.runpod_config import api_key_from_config
from runner.types import Say

_STACK_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-/]{0,199}")
_PLACEHOLDER_RE = re.compile(r"^(<.*>|your[-_].*|changeme|xxx+|\.\.\.)$", re.IGNORECASE)


def _default_warn(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr)


class FirstRead:
    """The stack outputs a command read to choose its pod (runner/pod/choice.py), handed once to the
    command's own first read of them (runner/pod/stack.py read_outputs_for): one `pulumi stack output`
    per command, not two. Taken once, so every later read (after a `pulumi up`, a watcher's next pass)
    is a fresh one."""

    def __init__(self) -> None:
        self._outputs: object | None = None

    def put(self, outputs: object) -> None:
        self._outputs = outputs

    def take(self) -> object | None:
        outputs, self._outputs = self._outputs, None
        return outputs


@dataclass(frozen=True)
class Settings:
    api_key: str | None = field(repr=False)
    ssh_key_path: Path
    stack: str
    repo_url: str | None
    repo_branch: str
    train_script: str
    data_dir: Path
    rest_url: str | None
    graphql_url: str | None
    state_dir: Path
    pod_start_timeout_s: float
    pulumi_binary: str
    pulumi_passphrase: str | None = field(repr=False)
    pulumi_passphrase_file: Path | None
    project_root: Path
    env_file: Path | None  # the file that was read, None if there was none
    s3_access_key: str | None = field(default=None, repr=False)  # RunPod S3 API key: user_... (not secret,
    s3_secret_key: str | None = field(default=None, repr=False)  # but kept out of repr with the secret rps_...)
    s3_endpoint_url: str | None = None  # override; default from the stack's data center (runner/volume)
    ssh_control_persist_s: int = 60  # `runner sync`'s OpenSSH control master (0: no connection reuse)
    watch_poll_s: float = 15.0  # `runner watch`: between two looks at the pod
    watch_confirm_s: float = 20.0  # `runner watch`: RunPod's answers agree the pod is down for this long
    notify_urls: tuple[str, ...] = field(default=(), repr=False)  # NOTIFY_URL: webhooks (secrets)
    # The pod of the stack this command works on (runner/pod/choice.py), when the stack has several: its
    # name and the folder of its records ("" for the first pod: everything where it always was).
    pod: str = ""
    pod_slot: str = ""
    chosen_with: FirstRead = field(default_factory=lambda: FirstRead(), compare=False, repr=False)
    train_secret_names: tuple[str, ...] = ()  # TRAIN_SECRETS (runner/envfile.py)
    train_secrets: Mapping[str, str] = field(default_factory=dict, compare=False, repr=False)  # their values
    sources: Mapping[str, str] = field(default_factory=dict, compare=False, repr=False)
    values: Mapping[str, str] = field(default_factory=dict, compare=False, repr=False)  # as merged, secrets too

    def __repr__(self) -> str:
        shown = ", ".join(
            f"{k}={v!r}"
            for k, v in (
                ("api_key", "***" if self.api_key else None),
                ("ssh_key_path", str(self.ssh_key_path)),
                ("stack", self.stack),
                ("repo_url", self.repo_url),
                ("repo_branch", self.repo_branch),
                ("train_script", self.train_script),
                ("data_dir", str(self.data_dir)),
                ("rest_url", self.rest_url),
                ("graphql_url", self.graphql_url),
                ("s3_access_key", "***" if self.s3_access_key else None),
                ("s3_secret_key", "***" if self.s3_secret_key else None),
                ("s3_endpoint_url", self.s3_endpoint_url),
                ("state_dir", str(self.state_dir)),
                ("pod_start_timeout_s", self.pod_start_timeout_s),
                ("ssh_control_persist_s", self.ssh_control_persist_s),
                ("pulumi_binary", self.pulumi_binary),
                ("pulumi_passphrase", "***" if self.pulumi_passphrase else None),
                ("project_root", str(self.project_root)),
                ("env_file", str(self.env_file) if self.env_file else None),
            )
        )
        return f"Settings({shown})"

    __str__ = __repr__

    # ------------------------------------------------------------ checks
    def require_api_key(self) -> str:
        if not self.api_key:
            raise SettingsError(
                f"set RUNPOD_API_KEY in {self._env_file_hint()} (or the environment, or `runpod login`'s "
                "~/.runpod/config.toml): create a key at https://www.runpod.io/console/user/settings, "
                "then `cp .runpod.env.example .runpod.env && chmod 600 .runpod.env` and fill it in."
            )
        if _PLACEHOLDER_RE.match(self.api_key):
            raise SettingsError(
                f"RUNPOD_API_KEY in {self._env_file_hint()} is still the example placeholder; "
                "replace it with your RunPod API key."
            )
        if any(c.isspace() for c in self.api_key):
            raise SettingsError(
                f"RUNPOD_API_KEY in {self._env_file_hint()} contains whitespace; paste the key alone on the line."
            )
        return self.api_key

    def require_ssh_key(self) -> Path:
        """The private key file, checked to exist, be readable and load (runner/ssh_key_check.py), before
        anything costs money."""
        from runner.ssh_key_check import checked_key

        src = self.sources.get("SSH_KEY_PATH", "default")
        how = f"SSH_KEY_PATH ({src})" if src != "default" else "the default SSH key"
        return checked_key(self.ssh_key_path, how, self.state_dir)

    def preflight(self) -> None:
        """Everything a pod-touching command needs locally; call before any billable API call."""
        self.require_api_key()
        self.require_ssh_key()

    # ------------------------------------------------------------ derived
    @property
    def paths(self) -> StatePaths:
        return StatePaths(self.state_dir, self.stack, self.pod_slot)

    def secrets(self) -> tuple[str, ...]:
        """Values to scrub from any text the runner echoes (REPO_URL's credential, training's secrets and the
        webhooks too: a webhook's path is its key)."""
        from remote.podside.credential import split_url

        credential = split_url(self.repo_url)[1] if self.repo_url else None
        password = credential.partition(":")[2] if credential else None
        hooks = [part for url in self.notify_urls for part in (url, url.partition("://")[2].partition("/")[2])]
        trained = self.train_secrets.values()
        found = (self.api_key, self.pulumi_passphrase, self.s3_secret_key, credential, password, *hooks, *trained)
        return tuple(s for s in found if s and len(s) > 1)

    def client(self, **kw):
        """A RunPodClient for these settings (raises SettingsError when the key is missing)."""
        from backends.runpod.client import RunPodClient

        if self.rest_url:
            kw.setdefault("rest_url", self.rest_url)
        if self.graphql_url:
            kw.setdefault("graphql_url", self.graphql_url)
        return RunPodClient(self.require_api_key(), **kw)

    def subprocess_env(self, base: Mapping[str, str] | None = None) -> dict[str, str]:
        """Environment for `pulumi` (the program and its providers read RUNPOD_API_KEY and the URLs from it)."""
        env = dict(os.environ if base is None else base)
        for key, value in (
            ("RUNPOD_API_KEY", self.api_key),
            ("RUNPOD_REST_URL", self.rest_url),
            ("RUNPOD_GRAPHQL_URL", self.graphql_url),
            ("PULUMI_CONFIG_PASSPHRASE", self.pulumi_passphrase),
            (
                "PULUMI_CONFIG_PASSPHRASE_FILE",
                str(self.pulumi_passphrase_file) if self.pulumi_passphrase_file else None,
            ),
        ):
            if value:
                env[key] = value
        return env

    def _env_file_hint(self) -> str:
        return str(self.env_file) if self.env_file else DEFAULT_ENV_FILE


def find_project_root(start: Path | None = None) -> Path:
    """The nearest directory holding Pulumi.yaml (cwd upwards), else this checkout's root."""
    here = (start or Path.cwd()).resolve()
    for d in (here, *here.parents):
        if (d / "Pulumi.yaml").is_file():
            return d
    pkg_root = Path(__file__).resolve().parents[1]
    if (pkg_root / "Pulumi.yaml").is_file():
        return pkg_root
    return here


def load_settings(
    env_file: str | os.PathLike | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, str | None] | None = None,
    cwd: Path | None = None,
    warn: Say | None = None,
) -> Settings:
    """Load settings. `env_file=None` means ./.runpod.env, else <project root>/.runpod.env, if present
    (a missing default file is fine: the environment may carry everything); an explicit file must exist.
    `overrides` are command-line values keyed like the file (None = not given)."""
    environ = os.environ if environ is None else environ
    warn = warn or _default_warn
    cwd = (cwd or Path.cwd()).resolve()
    project_root = find_project_root(cwd)

    path: Path | None
    if env_file is not None:
        path = Path(env_file).expanduser()
        if not path.is_absolute():
            path = cwd / path
        if not path.exists():
            raise SettingsError(f"settings file {path} does not exist; copy .runpod.env.example to it and fill it in.")
    else:
        path = next((p for p in (cwd / DEFAULT_ENV_FILE, project_root / DEFAULT_ENV_FILE) if p.exists()), None)
        if path is not None and path.parent != project_root:
            # Another directory's file (a cloned repo may ship one) decides where the API key goes and
            # which programs run (PULUMI_BINARY): never silently.
            warn(
                f"using {path} from the current directory, not the project's ({project_root / DEFAULT_ENV_FILE}); "
                "it decides where your keys are sent and which `pulumi` runs. Pass --env-file to choose a file "
                "explicitly, or run from the project."
            )

    file_values: dict[str, str] = {}
    if path is not None:
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as e:
            raise SettingsError(f"cannot read settings file {path}: {e.strerror}; check its permissions.") from None
        except UnicodeDecodeError:
            raise SettingsError(f"settings file {path} is not UTF-8 text.") from None
        check_permissions(path, warn)
        file_values = parse_env_text(text, source=str(path))
        named = envfile.secret_names(environ.get("TRAIN_SECRETS") or file_values.get("TRAIN_SECRETS"), str(path))
        for key in file_values:
            if key not in KEYS and key not in named:
                hint = did_you_mean(key, KEYS) or f" (known: {', '.join(KEYS)})"
                warn(f"{path}: unknown setting {key} ignored{hint}")

    merged: dict[str, str] = {}
    sources: dict[str, str] = {}
    for key, (default, _) in KEYS.items():
        for src, value in (
            ("default", default),
            (str(path), file_values.get(key)),
            ("environment", environ.get(key)),
            ("command line", (overrides or {}).get(key)),
        ):
            if value is not None and value != "":
                merged[key] = value
                sources[key] = src
    if "RUNPOD_API_KEY" not in merged:
        found = api_key_from_config(environ)
        if found is not None:
            merged["RUNPOD_API_KEY"], sources["RUNPOD_API_KEY"] = found[0], str(found[1])

    def to_path(v: str) -> Path:
        p = Path(v).expanduser()
        return p if p.is_absolute() else (cwd / p)

    def path_of(key: str) -> Path | None:
        v = merged.get(key)
        if v is None:
            return None
        return to_path(v)

    stack = merged["PULUMI_STACK"]
    if not _STACK_RE.fullmatch(stack):
        raise SettingsError(
            f"PULUMI_STACK {stack!r} ({sources['PULUMI_STACK']}) is not a valid stack name "
            "(letters, digits, '-', '_', '.', '/')."
        )
    try:
        timeout = float(merged["POD_START_TIMEOUT"])
        if not timeout > 0:
            raise ValueError
    except ValueError:
        raise SettingsError(
            f"POD_START_TIMEOUT ({sources['POD_START_TIMEOUT']}) must be a positive number of seconds."
        ) from None
    try:
        persist = int(merged["SSH_CONTROL_PERSIST"])
        if persist < 0:
            raise ValueError
    except ValueError:
        raise SettingsError(
            f"SSH_CONTROL_PERSIST ({sources['SSH_CONTROL_PERSIST']}) must be a whole number of seconds "
            "(0 turns the connection reuse off)."
        ) from None
    watch = {}
    for key in ("WATCH_POLL_SECONDS", "WATCH_CONFIRM_SECONDS"):
        try:
            watch[key] = float(merged[key])
            if not watch[key] >= 0 or watch[key] == float("inf"):
                raise ValueError
        except ValueError:
            raise SettingsError(f"{key} ({sources[key]}) must be a number of seconds.") from None
    for key in ("RUNPOD_REST_URL", "RUNPOD_GRAPHQL_URL", "RUNPOD_S3_ENDPOINT_URL"):
        url = merged.get(key)
        if url and not re.match(r"https?://", url):
            raise SettingsError(f"{key} ({sources[key]}) must start with http:// or https://")
        if url and plain_http_elsewhere(url):
            raise SettingsError(
                f"{key} ({sources[key]}) is http:// to another machine ({url}): the requests carry your keys, "
                "in the clear over http. Use https:// (http:// only for a proxy on this machine: 127.0.0.1, localhost)."
            )

    data_dir = Path(merged["DATA_DIR"]).expanduser()
    names = envfile.secret_names(merged.get("TRAIN_SECRETS"), sources.get("TRAIN_SECRETS", ""))
    return Settings(
        api_key=merged.get("RUNPOD_API_KEY"),
        ssh_key_path=to_path(merged["SSH_KEY_PATH"]),
        stack=stack,
        repo_url=merged.get("REPO_URL"),
        repo_branch=merged["REPO_BRANCH"],
        train_script=merged["TRAIN_SCRIPT"],
        data_dir=data_dir if data_dir.is_absolute() else project_root / data_dir,
        rest_url=merged.get("RUNPOD_REST_URL"),
        graphql_url=merged.get("RUNPOD_GRAPHQL_URL"),
        state_dir=to_path(merged["RUNNER_STATE_DIR"]),
        pod_start_timeout_s=timeout,
        ssh_control_persist_s=persist,
        watch_poll_s=max(0.1, watch["WATCH_POLL_SECONDS"]),
        watch_confirm_s=watch["WATCH_CONFIRM_SECONDS"],
        notify_urls=envfile.notify_setting(merged.get("NOTIFY_URL"), sources.get("NOTIFY_URL", "")),
        train_secret_names=names,
        train_secrets=envfile.secret_values(names, environ, file_values),
        pulumi_binary=merged["PULUMI_BINARY"],
        pulumi_passphrase=merged.get("PULUMI_CONFIG_PASSPHRASE"),
        pulumi_passphrase_file=path_of("PULUMI_CONFIG_PASSPHRASE_FILE"),
        project_root=project_root,
        env_file=path,
        sources=sources,
        values=merged,
        s3_access_key=merged.get("RUNPOD_S3_ACCESS_KEY"),
        s3_secret_key=merged.get("RUNPOD_S3_SECRET_KEY"),
        s3_endpoint_url=merged.get("RUNPOD_S3_ENDPOINT_URL"),
    )
