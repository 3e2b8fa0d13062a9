"""`python -m runner.livecheck …` is `runner livecheck …` (runner/commands/livecheck.py)."""

import sys

from runner.cli import main

sys.exit(main(["livecheck", *sys.argv[1:]]))
