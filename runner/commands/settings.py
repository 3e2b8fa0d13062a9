"""`runner settings`: its flags and help. The work is in runner.settings_view, imported only when it runs."""

from __future__ import annotations

import argparse

NAME = "settings"
IMPLEMENTATION = "runner.settings_view"
SUMMARY = "show each effective setting and where it came from (secrets redacted)"
DESCRIPTION = """\
Show every setting the commands would use, its value and its source: the default, .runpod.env, the
environment, the command line (--stack), or RunPod's ~/.runpod/config.toml for the API key. Secrets
(RUNPOD_API_KEY, RUNPOD_S3_SECRET_KEY, PULUMI_CONFIG_PASSPHRASE) show only whether they are set, and
credentials in REPO_URL are hidden. Reads nothing but the settings; calls nothing."""
EXAMPLES = ("python -m runner settings", "python -m runner settings --json | jq .settings.PULUMI_STACK")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print one JSON object instead of text")
