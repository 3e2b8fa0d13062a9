"""`runner completion SHELL`: its flags and help. The work is in runner.completion, imported only when it runs."""

from __future__ import annotations

import argparse

NAME = "completion"
IMPLEMENTATION = "runner.completion"
SUMMARY = "print the shell completion script for bash, zsh or fish"
DESCRIPTION = """\
Print the script that makes TAB complete commands, flags and --config (from configs/*.yaml) for
runpod-trainer and rptrain. Load it from your shell's start-up file:
  bash  ~/.bashrc:                   eval "$(runpod-trainer completion bash)"
  zsh   ~/.zshrc, after compinit:    eval "$(runpod-trainer completion zsh)"
  fish  ~/.config/fish/config.fish:  runpod-trainer completion fish | source"""
EXAMPLES = ("python -m runner completion bash", "python -m runner completion fish | source")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("shell", choices=("bash", "zsh", "fish"), help="the shell to complete in")
