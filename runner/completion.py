"""Shell completion for bash, zsh and fish, through argcomplete.

`runpod-trainer completion SHELL` prints the script that registers the completer; the shell then runs
the command itself with _ARGCOMPLETE set on every TAB, and main() hands the parser to argcomplete
before parsing. argcomplete is imported only then and here, so no other command pays for it.
"""

from __future__ import annotations

import argparse
import os

from runner.settings import Settings

SHELLS = ("bash", "zsh", "fish")


def config_files(prefix: str, **_: object) -> list[str]:
    """`--config` completes from the training configs: configs/*.yaml under the project root."""
    from runner.settings import find_project_root

    root = find_project_root()
    found = sorted(p.relative_to(root).as_posix() for p in (root / "configs").glob("*.y*ml") if p.is_file())
    return [path for path in found if path.startswith(prefix)]


def mark_completers(parser: argparse.ArgumentParser) -> None:
    """Give every `--config` in the parser and its subcommands the config completer."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                mark_completers(sub)
        elif "--config" in action.option_strings:
            action.completer = config_files  # type: ignore[attr-defined]  # argcomplete reads this attribute


def complete_if_asked(parser: argparse.ArgumentParser) -> None:
    """Inside a TAB press (the shell set _ARGCOMPLETE): print the completions and exit."""
    if "_ARGCOMPLETE" not in os.environ:
        return
    import argcomplete

    mark_completers(parser)
    argcomplete.autocomplete(parser)


def script(shell: str) -> str:
    import argcomplete

    from runner import COMMAND_NAMES

    return argcomplete.shellcode(list(COMMAND_NAMES), shell=shell)


def run(args: argparse.Namespace, settings: Settings) -> int:
    print(script(args.shell), end="")
    return 0


__all__ = ["SHELLS", "complete_if_asked", "config_files", "run", "script"]
