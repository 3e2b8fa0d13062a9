"""The runner: the commands run on the user's machine (`runner/cli.py`, docs/internals/architecture.md)."""

DISTRIBUTION = "runpod-trainer"  # the installed package
COMMAND_NAMES = (DISTRIBUTION, "rptrain")  # the commands it installs (pyproject.toml [project.scripts])
