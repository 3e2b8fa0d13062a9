"""Import this before paramiko: it keeps paramiko from importing `invoke` (~70 ms with the
unittest.mock it pulls in, on every runner command that touches SSH). paramiko uses invoke only
for `Match exec` lines of an ssh_config it parses; the runner never hands it one (it builds its
SSH targets itself). paramiko treats invoke as optional (`try: import invoke`), so it imports fine.
Nothing changes when something imported invoke already."""

from __future__ import annotations

import sys

sys.modules.setdefault("invoke", None)  # type: ignore[arg-type]
