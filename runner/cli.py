"""`python -m runner <command>`: parse arguments, load settings, dispatch to runner.<module>.run(args, settings).

Each command lives in its own module with `run(args: argparse.Namespace, settings: Settings) -> int`,
imported only when that command runs.
"""
from __future__ import annotations

import argparse
import importlib
import re
import sys
import textwrap
from dataclasses import dataclass
from typing import Callable, Sequence

from runner.errors import (
    EXIT_INTERRUPTED, EXIT_USAGE, NotImplementedYet, RunnerError, from_runpod_error, redact,
)

# command -> module holding run(args, settings)
COMMANDS: dict[str, str] = {
    "train": "runner.train",
    "sync": "runner.sync",
    "tensorboard": "runner.tensorboard",
    "status": "runner.status",
    "logs": "runner.logs",
    "stop": "runner.stop",
    "ssh": "runner.ssh_cmd",
    "ssh-config": "runner.ssh_cmd",
}

EXIT_CODES_HELP = """\
exit codes:
  0    success (train: training exited 0)
  2    bad input: arguments, settings (.runpod.env), command not implemented yet
  3    Pulumi: CLI missing, no such stack, no outputs yet (`pulumi up`), `pulumi up` failed
  4    the pod: gone, no GPU capacity to resume it, spot withdrawn, not reachable in time
  5    the RunPod API: key rejected, API unavailable
  6    SSH: cannot connect/authenticate, link lost for good
  130  interrupted (Ctrl-C)
  train otherwise exits with training's own exit code."""


# ---------------------------------------------------------------- argument types
@dataclass(frozen=True)
class HostSpec:
    """--host user@host[:port]: train on a machine you already have instead of the stack's pod."""

    user: str
    host: str
    port: int = 22

    def __str__(self) -> str:
        return f"{self.user}@{self.host}:{self.port}"


_HOST_RE = re.compile(r"^(?P<user>[A-Za-z0-9._][A-Za-z0-9._-]*)@(?P<host>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._-]+)(?::(?P<port>\d+))?$")


def host_spec(value: str) -> HostSpec:
    m = _HOST_RE.match(value)
    if not m:
        raise argparse.ArgumentTypeError(f"expected user@host or user@host:port, got {value!r}")
    port = int(m["port"]) if m["port"] else 22
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"port {port} is out of range 1-65535")
    return HostSpec(m["user"], m["host"].strip("[]"), port)


def _non_negative_int(value: str) -> int:
    try:
        n = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {value!r}") from None
    if n < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {n}")
    return n


def _positive_int(value: str) -> int:
    n = _non_negative_int(value)
    if n == 0:
        raise argparse.ArgumentTypeError("must be at least 1")
    return n


def _port(value: str) -> int:
    n = _positive_int(value)
    if n > 65535:
        raise argparse.ArgumentTypeError(f"port {n} is out of range 1-65535")
    return n


def _budget(value: str) -> float:
    try:
        x = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an amount in US dollars, got {value!r}") from None
    if not x > 0 or x != x or x == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive amount of dollars, got {value!r}")
    return x


def _run_id(value: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}", value):
        raise argparse.ArgumentTypeError(
            "run ids are 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit")
    return value


# ---------------------------------------------------------------- parser
class _Formatter(argparse.RawDescriptionHelpFormatter):
    def __init__(self, prog: str) -> None:
        super().__init__(prog, max_help_position=32)


def _examples(*lines: str) -> str:
    return "examples:\n" + "\n".join(f"  {line}" for line in lines)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m runner",
        formatter_class=_Formatter,
        description=textwrap.dedent("""\
            Train on a RunPod GPU pod declared by this project's Pulumi stack.

            `pulumi up` creates the network volume and the pod; the runner makes sure the pod
            runs, starts training over SSH, follows the log through disconnects and spot
            preemptions, and the pod stops itself when training ends. Settings come from
            .runpod.env (see .runpod.env.example); environment variables override it."""),
        epilog=_examples(
            "cp .runpod.env.example .runpod.env && chmod 600 .runpod.env   # then fill it in",
            "pulumi up                                                      # create volume + pod",
            "python -m runner sync                                          # upload data/ once",
            "python -m runner train --config configs/baseline.yaml",
            "python -m runner status",
            "python -m runner <command> --help                              # details of a command",
        ) + "\n\n" + EXIT_CODES_HELP,
    )
    parser.add_argument("--env-file", metavar="PATH", default=None,
                        help="settings file (default: ./.runpod.env, else the project root's)")
    parser.add_argument("--stack", metavar="NAME", default=None,
                        help="Pulumi stack (default: PULUMI_STACK from settings, else 'dev')")
    parser.add_argument("--debug", action="store_true", help="show tracebacks for errors")

    # Accept the global options after the command too (`runner status --stack prod`);
    # SUPPRESS keeps a subcommand from resetting a value given before it.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--env-file", metavar="PATH", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    common.add_argument("--stack", metavar="NAME", default=argparse.SUPPRESS,
                        help="Pulumi stack (default: PULUMI_STACK, else 'dev')")
    common.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)

    sub = parser.add_subparsers(dest="command", metavar="<command>", title="commands")
    sub.required = True

    def add(name: str, summary: str, description: str, examples: Sequence[str]) -> argparse.ArgumentParser:
        return sub.add_parser(
            name, help=summary, parents=[common], formatter_class=_Formatter,
            description=textwrap.dedent(description).strip(),
            epilog=_examples(*examples) + "\n\n" + EXIT_CODES_HELP,
        )

    p = add("train", "start (or rejoin) training on the pod and follow its log", """
        Check the config here (exists, YAML, has output_dir) and read the stack outputs, make
        sure the pod runs (resuming it if stopped or preempted), start remote/remote_train.sh on
        it over SSH and follow the training log live until training ends, reconnecting when the
        link drops (no line lost or repeated). The pod clones REPO_URL (committed, pushed code),
        reuses the venv on the volume, resumes from the newest complete checkpoint in output_dir
        and trains in tmux. If training already runs there, the runner attaches to it instead.

        Spot preemption is recovered without you: the runner notices it within seconds (API
        poll every 5 s, the launcher's SIGTERM footer, SSH drops), resumes the same pod with
        the stack's bid (or replaces it through the stack, `pulumi up --refresh [--replace]`,
        when it cannot be resumed),
        and relaunches the same run, which continues from the newest complete checkpoint.
        Bounded by --max-recoveries and --budget-usd; a stop by you is never undone.

        At the end: a summary (exit code, duration, checkpoint, estimated cost), the pod stops
        itself and the runner checks that through the API (and stops it if it did not), and
        the runner exits with training's exit code. Ctrl-C detaches: training keeps running,
        the pod still stops itself at the end; come back with `runner logs -f` / `runner status`.

        --host trains on any SSH machine instead (no RunPod API, nothing is stopped), --local
        on this machine (workspace ./.local-workspace; the training repo defaults to this
        checkout). The config path is relative to the training repo root, on both sides.""", [
        "python -m runner train --config configs/baseline.yaml",
        "python -m runner train --config configs/baseline.yaml --detach      # start, don't follow",
        "python -m runner train --config configs/baseline.yaml --keep-pod    # pod stays up afterwards",
        "python -m runner train --config configs/small.yaml --host root@gpu-box:2222 --workspace /data/ws",
        "TRAIN_SCRIPT=remote/smoke_train.py python -m runner train --local --config configs/smoke.yaml",
    ])
    p.add_argument("--config", required=True, metavar="PATH",
                   help="training config (YAML with output_dir), relative to the training repo root; "
                        "the pod uses the same path in its checkout")
    p.add_argument("--detach", action="store_true",
                   help="start training and return at once; follow later with `runner logs -f`")
    p.add_argument("--keep-pod", action="store_true",
                   help="leave the pod running after training ends (default: it stops itself)")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--host", type=host_spec, metavar="USER@HOST[:PORT]",
                       help="train over SSH on this machine instead of the stack's pod (no RunPod API; "
                            "its host key is pinned on first use)")
    where.add_argument("--local", action="store_true",
                       help="run the pod-side launcher on this machine: the whole flow without a cloud")
    p.add_argument("--workspace", metavar="DIR",
                   help="workspace (volume) directory on the target (default: the stack's workspace output, "
                        "/workspace for --host, ./.local-workspace for --local)")
    p.add_argument("--run-id", type=_run_id, metavar="ID",
                   help="name of the run (default: <config name>-<UTC time>); reuse one to continue it")
    p.add_argument("--max-recoveries", type=_non_negative_int, default=3, metavar="N",
                   help="after a spot preemption (or a vanished pod) resume or recreate the pod and continue "
                        "from the newest checkpoint, at most N times (default: 3; 0 = report and exit 4)")
    p.add_argument("--budget-usd", type=_budget, metavar="X",
                   help="stop the pod once this command's attempts have cost about X US dollars "
                        "(cost_per_hr x pod time; no recovery beyond it); exit 4")

    p = add("sync", "upload a local data directory to the network volume (rsync over SSH)", """
        Copy PATH (default: DATA_DIR from settings, i.e. ./data) to the network volume under
        /workspace, with rsync over SSH. Only changed files are sent, so it is cheap to repeat.
        Starts the pod if it is stopped and stops it again afterwards unless --keep-running.""", [
        "python -m runner sync                       # upload ./data",
        "python -m runner sync data/audio_0 --dry-run",
        "python -m runner sync --delete --keep-running",
    ])
    p.add_argument("path", nargs="?", metavar="PATH", help="local directory to upload (default: DATA_DIR)")
    p.add_argument("--dry-run", action="store_true", help="list what would be transferred, change nothing")
    p.add_argument("--delete", action="store_true", help="delete remote files that are not present locally")
    p.add_argument("--keep-running", action="store_true", help="leave the pod running afterwards")

    p = add("tensorboard", "open TensorBoard for the run through an SSH tunnel", """
        Start TensorBoard on the pod (its own tmux session, bound to the pod's 127.0.0.1, on the
        config's logging_dir) unless it already runs, forward a local port to it over SSH and
        print the URL. Runs until Ctrl-C, which closes the tunnel and leaves TensorBoard running
        on the pod (--stop-remote stops it too). Does not start a stopped pod.""", [
        "python -m runner tensorboard                # http://localhost:6006 (or the next free port)",
        "python -m runner tensorboard --port 16006   # exactly this port, or an error if it is busy",
        "python -m runner tensorboard --config configs/baseline_whisper_small.yaml",
    ])
    p.add_argument("--port", type=_port, default=None, metavar="N",
                   help="local port; default 6006, or the next free one if 6006 is taken")
    p.add_argument("--config", metavar="PATH",
                   help="training config whose logging_dir to show (default: the current run's config)")
    p.add_argument("--stop-remote", action="store_true", help="also stop TensorBoard on the pod on Ctrl-C")

    p = add("status", "show the pod, the current run and what it costs", """
        Show the pod's state (running, starting, preempted, stopped, gone), its SSH endpoint,
        cost per hour, and the current run's progress. Read-only: never starts anything.""", [
        "python -m runner status",
        "python -m runner status --json | jq .pod.state",
    ])
    p.add_argument("--json", action="store_true", help="print one JSON object instead of text")

    p = add("logs", "print the training log from the pod", """
        Print the end of the current training log (/workspace/logs/current.log) from the pod.
        With -f keep following it, across reconnects, until Ctrl-C.""", [
        "python -m runner logs",
        "python -m runner logs -n 200",
        "python -m runner logs -f",
    ])
    p.add_argument("-f", "--follow", action="store_true", help="keep printing new lines until Ctrl-C")
    p.add_argument("-n", "--lines", type=_non_negative_int, default=100, metavar="N",
                   help="how many lines from the end to print first (default: 100)")

    add("stop", "stop the pod now (the network volume keeps your data)", """
        Stop the stack's pod through the RunPod API. Compute billing stops; the network
        volume (checkpoints, data, venv) stays and keeps its small storage charge. Safe to
        repeat: an already stopped or deleted pod is reported, not an error. Training on the
        pod is interrupted; `runner train` later resumes from the last checkpoint.""", [
        "python -m runner stop",
        "python -m runner stop --stack prod",
    ])

    p = add("ssh", "open an interactive shell on the pod (or run one command)", """
        SSH into the running pod with the key from SSH_KEY_PATH, using its current endpoint
        (the public port changes on every start) and a pinned host key. Anything after `--` is
        run on the pod instead of a shell. Does not start a stopped pod.""", [
        "python -m runner ssh",
        "python -m runner ssh -- nvidia-smi",
    ])
    p.add_argument("remote_command", nargs=argparse.REMAINDER, metavar="-- COMMAND",
                   help="a command to run on the pod instead of an interactive shell")

    p = add("ssh-config", "print an ~/.ssh/config entry for the pod", """
        Print a Host block for the pod's current endpoint, for ssh, scp, rsync or VS Code
        Remote-SSH. The port changes whenever the pod starts, so prefer --write: it keeps a file
        in the runner's state directory current, which ~/.ssh/config includes once.""", [
        "python -m runner ssh-config --write   # then add the printed Include line to ~/.ssh/config once",
        "python -m runner ssh-config && ssh runpod-dev",
    ])
    p.add_argument("--write", action="store_true",
                   help="write the block to the state directory's ssh_config (for an Include line)")
    return parser


# ---------------------------------------------------------------- dispatch
def resolve(command: str) -> Callable:
    """The run function for a command, imported lazily; NotImplementedYet when its module is missing."""
    module_name = COMMANDS[command]
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as e:
        if e.name != module_name:
            raise  # the module exists but something it imports does not: a real bug, show it
        raise NotImplementedYet(
            f"`runner {command}` is not implemented yet ({module_name.replace('.', '/')}.py is missing)."
        ) from None
    run = getattr(module, "run", None)
    if not callable(run):
        raise NotImplementedYet(
            f"`runner {command}` is not implemented yet ({module_name.replace('.', '/')}.py has no run())."
        )
    return run


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)  # exits 2 with usage on bad arguments
    secrets: tuple[str, ...] = ()
    try:
        from runner.settings import load_settings

        settings = load_settings(args.env_file, overrides={"PULUMI_STACK": args.stack})
        secrets = settings.secrets()
        args.stack = settings.stack
        run = resolve(args.command)
        code = run(args, settings)
        return int(code or 0)
    except RunnerError as e:
        if getattr(args, "debug", False):
            raise
        print(f"error: {redact(e.message, secrets)}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("\ninterrupted. Anything already running on the pod keeps running: "
              "`python -m runner status` shows it, `python -m runner stop` stops it.", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as e:
        from infra.runpod_client import RunPodError

        if isinstance(e, RunPodError) and not getattr(args, "debug", False):
            err = from_runpod_error(e)
            print(f"error: {redact(err.message, secrets)}", file=sys.stderr)
            return err.exit_code
        raise


__all__ = ["COMMANDS", "EXIT_USAGE", "HostSpec", "build_parser", "host_spec", "main", "resolve"]
