"""One module per subcommand: its help, its flags (`add_arguments`) and where its work lives.

These modules import nothing heavy (argparse only), so building the parser costs nothing; the
implementation named by IMPLEMENTATION (a module with `run(args, settings) -> int`) is imported
only when its command runs.
"""

from __future__ import annotations

from types import ModuleType

from runner.commands import (
    completion,
    demo,
    doctor,
    events,
    livecheck,
    logs,
    pull,
    settings,
    ssh,
    ssh_config,
    status,
    stop,
    sweep,
    sync,
    tensorboard,
    train,
    watch,
)

# In the order `--help` lists them.
ALL: tuple[ModuleType, ...] = (
    train,
    sweep,
    watch,
    sync,
    pull,
    tensorboard,
    status,
    logs,
    events,
    stop,
    ssh,
    ssh_config,
    doctor,
    settings,
    livecheck,
    demo,
    completion,
)

__all__ = ["ALL"]
