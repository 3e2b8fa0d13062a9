"""mkdocs hook: the reference pages that are generated from the code, so they cannot drift from it.

A page holding `<!-- generated: cli -->` gets the command-line reference rendered from the runner's
own argparse parser (runner/cli.py `build_parser`): a new command or flag appears by itself.
`<!-- generated: exit-codes -->` gets the table of runner/exitcodes.py's ExitCode.
"""

from __future__ import annotations

import argparse
import re
from typing import Any

CLI_MARK = "<!-- generated: cli -->"
EXIT_CODES_MARK = "<!-- generated: exit-codes -->"


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    if CLI_MARK in markdown:
        from runner.cli import build_parser

        markdown = markdown.replace(CLI_MARK, cli_reference(build_parser(prog="runpod-trainer")))
    if EXIT_CODES_MARK in markdown:
        from runner.exitcodes import markdown_table

        markdown = markdown.replace(EXIT_CODES_MARK, markdown_table())
    return markdown


def cli_reference(parser: argparse.ArgumentParser) -> str:
    out = ["```text", _usage(parser), "```", "", _options_table(parser), ""]
    for name, sub in _subcommands(parser):
        out += [f"## {name}", "", _summary(parser, name), "", "```text", _usage(sub), "```", ""]
        if sub.description:
            out += [_paragraphs(sub.description), ""]
        table = _options_table(sub)
        if table:
            out += [table, ""]
        examples = _examples(sub.epilog or "")
        if examples:
            out += ["Examples:", "", "```bash", *examples, "```", ""]
    return "\n".join(out)


def _subcommands(parser: argparse.ArgumentParser) -> list[tuple[str, argparse.ArgumentParser]]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return list(action.choices.items())
    return []


def _summary(parser: argparse.ArgumentParser, name: str) -> str:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for choice in action._choices_actions:
                if choice.dest == name and choice.help:
                    return _capitalised(choice.help) + "."
    return ""


def _usage(parser: argparse.ArgumentParser) -> str:
    return " ".join(parser.format_usage().split()).removeprefix("usage: ")


def _options_table(parser: argparse.ArgumentParser) -> str:
    formatter = parser._get_formatter()
    rows = []
    for action in parser._actions:
        if action.help == argparse.SUPPRESS or isinstance(action, argparse._SubParsersAction):
            continue
        if action.option_strings:
            metavar = "" if action.nargs == 0 else " " + formatter._format_args(action, action.dest.upper())
            names = ", ".join(f"`{flag}{metavar}`" for flag in action.option_strings)
        else:
            names = f"`{formatter._metavar_formatter(action, action.dest)(1)[0]}`"
        rows.append(f"| {names} | {_cell(formatter._expand_help(action) if action.help else '')} |")
    if not rows:
        return ""
    return "\n".join(["| option | meaning |", "|---|---|", *rows])


def _examples(epilog: str) -> list[str]:
    lines = epilog.splitlines()
    if not lines or not lines[0].startswith("examples:"):
        return []
    examples = []
    for line in lines[1:]:
        if not line.startswith("  "):
            break
        examples.append(line.strip())
    return examples


def _paragraphs(text: str) -> str:
    return "\n\n".join(" ".join(block.split()) for block in re.split(r"\n\s*\n", text.strip()))


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|").replace("<", "&lt;")


def _capitalised(text: str) -> str:
    return text[:1].upper() + text[1:]
