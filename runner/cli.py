"""`python -m runner <command>`: global options, the command registry, and errors -> exit codes.

Each command's help and flags live in runner/commands/<command>.py; its work in the module that
COMMANDS names (`run(args, settings) -> int`), imported only when that command runs.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import textwrap
from collections.abc import Callable, Sequence
from pathlib import Path

from runner import COMMAND_NAMES, DISTRIBUTION, exitcodes, output
from runner.cliparser import Parser, subcommand_parser
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
from runner.output import plain as say
from runner.termtext import LINES, for_stream, set_raw

# command -> the module holding its run(args, settings), imported when the command runs
COMMANDS: dict[str, str] = {command.NAME: command.IMPLEMENTATION for command in COMMAND_MODULES}

# The one list of exit codes in the help: the top-level --help (runner/exitcodes.py defines them).
EXIT_CODES_HELP = exitcodes.help_text()


# ---------------------------------------------------------------- parser
class _Formatter(argparse.RawDescriptionHelpFormatter):
    def __init__(self, prog: str) -> None:
        super().__init__(prog, max_help_position=32)


def _examples(prog: str, *lines: str) -> str:
    """The examples, written as `python -m runner …`, shown as the runner was invoked, comments aligned."""
    split = [line.replace("python -m runner", prog).partition("  # ") for line in lines]
    width = max((len(code.rstrip()) for code, sep, _ in split if sep), default=0)
    shown = [f"{code.rstrip():<{width}}  # {comment}" if sep else code for code, sep, comment in split]
    return "examples:\n" + "\n".join(f"  {line}" for line in shown)


def prog_name() -> str:
    """How the runner was invoked: `runpod-trainer` (or its alias) as a command, else `python -m runner`."""
    name = Path(sys.argv[0]).name if sys.argv and sys.argv[0] else ""
    return name if name in COMMAND_NAMES else "python -m runner"


class _Version(argparse.Action):
    """--version: the installed distribution's version, looked up only when asked (importlib.metadata
    costs start-up time every other command would pay)."""

    def __init__(self, option_strings: Sequence[str], dest: str = argparse.SUPPRESS, help: str | None = None):
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, help=help)

    def __call__(self, parser, namespace, values, option_string=None):
        from importlib.metadata import PackageNotFoundError, version

        try:
            print(f"{DISTRIBUTION} {version(DISTRIBUTION)}")
        except PackageNotFoundError:
            print(f"{DISTRIBUTION} (not installed: run from a checkout without `pip install`)")
        parser.exit()


def build_parser(prog: str | None = None) -> Parser:
    prog = prog or prog_name()
    parser = Parser(
        prog=prog,
        formatter_class=_Formatter,
        description=textwrap.dedent("""\
            Train on a RunPod GPU pod declared by this project's Pulumi stack.

            `pulumi up` creates the network volume and the pod; the runner makes sure the pod
            runs, starts training over SSH, follows the log through disconnects and spot
            preemptions, and the pod stops itself when training ends. Settings come from
            .runpod.env (see .runpod.env.example); environment variables override it."""),
        epilog=_examples(
            prog,
            "cp .runpod.env.example .runpod.env && chmod 600 .runpod.env   # then fill it in",
            "pulumi up                                                      # create volume + pod",
            "python -m runner sync                                          # upload data/ once",
            "python -m runner train --config configs/baseline_whisper_small.yaml",
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
    parser.add_argument(
        "--raw",
        action="store_true",
        help="on a terminal, show the pod's log and values as sent, escape sequences included (default: "
        "only colours; other control sequences are shown escaped)",
    )
    parser.add_argument(
        "-q", "--quiet", action="store_true", help="fewer lines: no waits and no progress before training starts"
    )
    parser.add_argument("--version", action=_Version, help="print the version and exit")

    # Accept the global options after the command too (`runner status --stack prod`);
    # SUPPRESS keeps a subcommand from resetting a value given before it.
    common = Parser(add_help=False)
    common.add_argument("--env-file", metavar="PATH", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    common.add_argument(
        "--stack", metavar="NAME", default=argparse.SUPPRESS, help="Pulumi stack (default: PULUMI_STACK, else 'dev')"
    )
    common.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    common.add_argument("--raw", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    common.add_argument("-q", "--quiet", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)

    sub = parser.add_subparsers(dest="command", metavar="<command>", title="commands")
    sub.required = True

    def add(name: str, summary: str, description: str, examples: Sequence[str]) -> argparse.ArgumentParser:
        return sub.add_parser(
            name,
            help=summary,
            parents=[common],
            formatter_class=_Formatter,
            description=description,
            epilog=_examples(prog, *examples) + f"\n\nexit codes: `{prog} --help` lists them.",
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


# command -> how it picks a pod of a stack with several (runner/pod/choice.py); commands without one use none
POD_CHOICE: dict[str, str] = {c.NAME: c.POD_CHOICE for c in COMMAND_MODULES if getattr(c, "POD_CHOICE", None)}


def _pod_of(args: argparse.Namespace, settings):
    """Settings seen from the pod the command works on (--pod, --run, or its default)."""
    mode = POD_CHOICE.get(args.command)
    pod, run = getattr(args, "pod", None), getattr(args, "run", None)
    if mode is None or getattr(args, "local", False) or getattr(args, "host", None) is not None:
        return settings
    if mode == "all" and not (pod or run):
        return settings
    from runner.errors import StackError
    from runner.pod.choice import Mode, choose

    try:
        return choose(settings, pod=pod, run=run, mode=Mode(mode), say=say)
    except StackError:
        if pod:
            raise
        return settings  # no outputs yet, no pulumi...: the command says so in its own words


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    if "_ARGCOMPLETE" in os.environ:  # the shell asks for completions (runner/completion.py)
        from runner.completion import complete_if_asked

        complete_if_asked(parser)
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv:
        parser.print_help()
        return exitcodes.ExitCode.OK
    args, extras = parser.parse_known_args(argv)  # bad arguments: usage, exit ExitCode.USAGE
    if extras:  # reported by the parser that owns the command's flags, with a suggestion
        (subcommand_parser(parser, args.command) or parser).reject_unknown(extras)
    set_raw(bool(getattr(args, "raw", False)))
    secrets: tuple[str, ...] = ()
    output.quiet = bool(getattr(args, "quiet", False))
    output.command = parser.prog
    try:
        from runner.settings import load_settings

        settings = load_settings(args.env_file, overrides={"PULUMI_STACK": args.stack})
        secrets = settings.secrets()
        args.stack = settings.stack
        settings = _pod_of(args, settings)
        run = resolve(args.command)
        code = run(args, settings)
        return int(code or 0)
    except RunnerError as e:
        if getattr(args, "debug", False):
            _print_traceback(secrets)  # then the usual line and exit code: scripts rely on them
        say(f"error: {output.as_invoked(redact(e.message, secrets))}")
        return e.exit_code
    except KeyboardInterrupt:
        print(
            output.as_invoked(
                "\ninterrupted. Anything already running on the pod keeps running: "
                "`python -m runner status` shows it, `python -m runner stop` stops it."
            ),
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED
    except Exception as e:
        from backends.runpod.errors import RunPodError

        if isinstance(e, RunPodError):
            if getattr(args, "debug", False):
                _print_traceback(secrets)
            err = from_runpod_error(e)
            say(f"error: {output.as_invoked(redact(err.message, secrets))}")
            return err.exit_code
        raise


def _print_traceback(secrets: tuple[str, ...]) -> None:
    """--debug: the traceback of the error being handled, secrets scrubbed."""
    import traceback

    print(for_stream(redact(traceback.format_exc(), secrets), sys.stderr, LINES), file=sys.stderr, end="")


__all__ = ["COMMANDS", "EXIT_USAGE", "HostSpec", "build_parser", "host_spec", "main", "resolve"]
