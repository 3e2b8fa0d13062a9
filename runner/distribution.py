"""The installed package's name and the commands it installs (pyproject.toml [project.scripts])."""

from __future__ import annotations

DISTRIBUTION = "runpod-trainer"
COMMAND_NAMES = (DISTRIBUTION, "rptrain")

__all__ = ["COMMAND_NAMES", "DISTRIBUTION"]
