"""The command-line reference page (docs/reference/cli.md) is rendered from the runner's own parser by
the docs hook: every command and every visible flag is on it, so a new one cannot be left out."""

from __future__ import annotations

import argparse
import importlib.util
from pathlib import Path

from runner.cli import build_parser

ROOT = Path(__file__).resolve().parents[2]


def _hook():
    spec = importlib.util.spec_from_file_location("docs_hook", ROOT / "docs" / "hooks" / "generated.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_reference_lists_every_command_and_flag():
    hook = _hook()
    page = (ROOT / "docs" / "reference" / "cli.md").read_text()
    rendered = hook.on_page_markdown(page, None, None, None)
    assert hook.CLI_MARK not in rendered
    parser = build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices
    for name, sub in commands.items():
        assert f"\n## {name}\n" in rendered, name
        section = rendered.split(f"\n## {name}\n", 1)[1].split("\n## ", 1)[0]
        for action in sub._actions:
            if action.help != argparse.SUPPRESS:
                for flag in action.option_strings:
                    assert f"`{flag}" in section, (name, flag)
