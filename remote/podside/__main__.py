"""Entry point of the pod-side program: `python3 podside-<hash>.pyz [supervise | idlewatch | autoresume ...]`.

Without an argument the mode is RT_ACTION: launch (default) or inspect. `supervise PLAN [TOKEN
LAUNCHER_PID]` is what tmux runs (with a token it first waits for that launcher's plan, handoff.py);
`idlewatch` is the idle stop (idlewatch.py); `autoresume` is what the pod's start command runs
(autoresume.py). An InputError becomes `error: <what to do>` on stderr and exit status 2.
RT_NOTIFY_URLS (a secret) leaves the environment first, whatever the mode: nothing started from here
ever sees it; a launch writes it to notify.json. So do the repo's credential (credential.py) and
training's secrets (trainsecrets.py: a launch keeps them for training alone).
"""

from __future__ import annotations

import os
import sys
from typing import List, Optional

from .contract import DEFAULT_WORKSPACE, ERROR_PREFIX, Inputs, VolumePaths
from .credential import take as take_credential
from .inputs import InputError, read_settings
from .trainsecrets import SecretsError
from .trainsecrets import take as take_secrets


def main(argv: Optional[List[str]] = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    notify_urls = os.environ.pop(Inputs.NOTIFY_URLS, None)
    if args[:1] == ["idlewatch"]:
        from . import idlewatch

        return idlewatch.main(args[1:])
    if args[:1] == ["supervise"]:
        from . import supervise  # imports everything the attempt's end needs, now

        plan = (
            args[1]
            if len(args) > 1
            else VolumePaths(
                os.environ.get(Inputs.WORKSPACE) or DEFAULT_WORKSPACE, os.environ.get(Inputs.POD_SLOT) or ""
            ).supervisor_plan
        )
        if len(args) > 3:  # started early by a launcher: wait for its plan
            return supervise.main(plan, token=args[2], launcher_pid=int(args[3]))
        return supervise.main(plan)
    if args[:1] == ["autoresume"]:
        from . import autoresume

        return autoresume.main(args[1:], os.path.realpath(sys.argv[0]))  # the program, not podside-current
    try:
        credential = take_credential(os.environ)  # before anything can inherit the environment
        try:
            secrets = take_secrets(os.environ)
        except SecretsError as exc:
            raise InputError(f"{Inputs.TRAIN_SECRETS}: {exc}; fix TRAIN_SECRETS in .runpod.env") from None
        settings = read_settings(os.environ)
        if settings.action == "inspect":
            from . import inspection

            return inspection.inspect(settings)
        from . import launch

        return launch.launch(
            settings, dict(os.environ), os.path.abspath(sys.argv[0]), notify_urls, credential, secrets=secrets
        )
    except InputError as exc:
        sys.stdout.flush()
        sys.stderr.write(f"{ERROR_PREFIX}{exc}\n")
        return 2


if __name__ == "__main__":
    sys.exit(main())
