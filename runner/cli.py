"""`python -m runner <command>`: global options, the command registry, and errors -> exit codes.

Each command's help and flags live in runner/commands/<command>.py; its work in the module that
COMMANDS names (`run(args, settings) -> int`), imported only when that command runs.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import textwrap
from collections.abc import Callable, Sequence

from runner.commands import ALL as COMMAND_MODULES
from runner.commands.argtypes import HostSpec, host_spec
from runner.errors import (
    EXIT_INTERRUPTED,
    EXIT_USAGE,
    NotImplementedYet,
    RunnerError,
    from_runpod_error,
    redact,
)

# command -> the module holding its run(args, settings), imported when the command runs
COMMANDS: dict[str, str] = {command.NAME: command.IMPLEMENTATION for command in COMMAND_MODULES}

EXIT_CODES_HELP = """\
exit codes:
  0    success (train: training exited 0)
  2    bad input: arguments, settings (.runpod.env), command not implemented yet
  3    Pulumi: CLI missing, no such stack, no outputs yet (`pulumi up`), `pulumi up` failed
  4    the pod: gone, no GPU capacity to resume it, spot withdrawn, not reachable in time
  5    the RunPod API: key rejected, API unavailable
  6    SSH: cannot connect/authenticate, link lost for good
  7    doctor: at least one check failed
  130  interrupted (Ctrl-C)
  train otherwise exits with training's own exit code."""


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
        )
        + "\n\n"
        + EXIT_CODES_HELP,
    )
    parser.add_argument(
        "--env-file",
        metavar="PATH",
        default=None,
        help="settings file (default: ./.runpod.env, else the project root's)",
    )
    parser.add_argument(
        "--stack", metavar="NAME", default=None, help="Pulumi stack (default: PULUMI_STACK from settings, else 'dev')"
    )
    parser.add_argument(
        "--debug", action="store_true", help="show tracebacks for errors (the exit codes stay the documented ones)"
    )

    # Accept the global options after the command too (`runner status --stack prod`);
    # SUPPRESS keeps a subcommand from resetting a value given before it.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--env-file", metavar="PATH", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    common.add_argument(
        "--stack", metavar="NAME", default=argparse.SUPPRESS, help="Pulumi stack (default: PULUMI_STACK, else 'dev')"
    )
    common.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)

    sub = parser.add_subparsers(dest="command", metavar="<command>", title="commands")
    sub.required = True

    def add(name: str, summary: str, description: str, examples: Sequence[str]) -> argparse.ArgumentParser:
        return sub.add_parser(
            name,
            help=summary,
            parents=[common],
            formatter_class=_Formatter,
            description=description,
            epilog=_examples(*examples) + "\n\n" + EXIT_CODES_HELP,
        )

    for command in COMMAND_MODULES:
        p = add(command.NAME, command.SUMMARY, command.DESCRIPTION, command.EXAMPLES)
        command.add_arguments(p)
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
            _print_traceback(secrets)  # then the usual line and exit code: scripts rely on them
        print(f"error: {redact(e.message, secrets)}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print(
            "\ninterrupted. Anything already running on the pod keeps running: "
            "`python -m runner status` shows it, `python -m runner stop` stops it.",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED
    except Exception as e:
        from backends.runpod.errors import RunPodError

        if isinstance(e, RunPodError):
            if getattr(args, "debug", False):
                _print_traceback(secrets)
            err = from_runpod_error(e)
            print(f"error: {redact(err.message, secrets)}", file=sys.stderr)
            return err.exit_code
        raise


def _print_traceback(secrets: tuple[str, ...]) -> None:
    """--debug: the traceback of the error being handled, secrets scrubbed."""
    import traceback

    print(redact(traceback.format_exc(), secrets), file=sys.stderr, end="")


__all__ = ["COMMANDS", "EXIT_USAGE", "HostSpec", "build_parser", "host_spec", "main", "resolve"]
