"""The argument parser's manners: a mistake is reported by the parser that owns the flag, with the
closest command or flag suggested, and exits with ExitCode.USAGE.

argparse itself names the top-level parser for a flag a subcommand does not know (`python -m runner:
error: unrecognized arguments: --confg`) and suggests nothing.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Iterable, Sequence
from typing import NoReturn

from runner.exitcodes import ExitCode

_INVALID_CHOICE = re.compile(r"invalid choice: '?(?P<given>[^' ,]+)'?.*\(choose from (?P<choices>.*)\)")


def closest(given: str, candidates: Iterable[str]) -> str | None:
    """The candidate `given` most likely meant, if one is close enough."""
    import difflib

    found = difflib.get_close_matches(given, list(candidates), n=1, cutoff=0.6)
    return found[0] if found else None


def did_you_mean(given: str, candidates: Iterable[str]) -> str:
    """ "; did you mean X?" when one candidate is close, else nothing."""
    match = closest(given, candidates)
    return f"; did you mean {match}?" if match else ""


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors suggest the closest choice and exit with ExitCode.USAGE."""

    _given: Sequence[str] = ()

    def parse_known_args(self, args=None, namespace=None):
        self._given = list(sys.argv[1:] if args is None else args)
        return super().parse_known_args(args, namespace)

    def error(self, message: str) -> NoReturn:
        m = _INVALID_CHOICE.search(message)
        if m:
            choices = [c.strip().strip("'\"") for c in m["choices"].split(",")]
            before = self._given[: self._given.index(m["given"])] if m["given"] in self._given else []
            # `--stak dev status`: the typo made `dev` the command; name the typo rather than `dev`
            message += did_you_mean(m["given"], choices) or self._unknown_flag_hint(before)
        elif message.startswith("the following arguments are required"):
            message += self._unknown_flag_hint(self._given)  # `--confg x` leaves --config missing
        self.print_usage(sys.stderr)
        self.exit(ExitCode.USAGE, f"{self.prog}: error: {message}\n")

    def _unknown_flag_hint(self, given: Sequence[str]) -> str:
        known = self.option_strings()
        for arg in given:
            flag = arg.split("=", 1)[0]
            if flag.startswith("-") and not any(option.startswith(flag) for option in known):
                match = closest(flag, known)
                return f" ({flag} is not a flag of this command{f'; did you mean {match}?' if match else ''})"
        return ""

    def option_strings(self) -> list[str]:
        return [flag for action in self._actions for flag in action.option_strings if action.help != argparse.SUPPRESS]

    def reject_unknown(self, extras: Sequence[str]) -> NoReturn:
        """Arguments this parser does not take: the first unknown flag gets a suggestion."""
        hint = ""
        for arg in extras:
            if arg.startswith("-"):
                hint = did_you_mean(arg.split("=", 1)[0], self.option_strings())
                if hint:
                    break
        self.error(f"unrecognized arguments: {' '.join(extras)}{hint}")


def subcommand_parser(parser: argparse.ArgumentParser, name: str | None) -> Parser | None:
    """The subcommand's own parser, to report what only it could have accepted."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction) and name in action.choices:
            sub = action.choices[name]
            return sub if isinstance(sub, Parser) else None
    return None
