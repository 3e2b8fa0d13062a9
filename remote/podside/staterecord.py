"""<workspace>/.runner/state.json's vocabulary: its keys (StateKey) and the current attempt's states
(AttemptState). Part of the runner–pod protocol: contract.py re-exports every name here. Its own module
so that runfiles.py (which contract.py re-exports) can use it without importing contract.py. Standard
library only: it travels to the pod in the program and in the start command's slice of it."""

from __future__ import annotations

from enum import Enum


class AttemptState(str, Enum):
    """state.json's "state" for the current attempt."""

    SETUP = "setup"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    PREEMPTED = "preempted"
    STALLED = "stalled"  # the stall guard ended it (finished: never relaunched)
    STOPPED = "stopped"  # ended on purpose: a hold (runner stop, the budget) or SIGHUP/SIGINT

    @property
    def terminal(self) -> bool:
        return self not in (AttemptState.SETUP, AttemptState.RUNNING)


TERMINAL_STATES = tuple(s.value for s in AttemptState if s.terminal)


class StateKey:
    """Keys of <workspace>/.runner/state.json (one record: the current attempt of the current run)."""

    RUN_ID = "run_id"
    ATTEMPT = "attempt"
    STATE = "state"  # AttemptState
    EXIT_CODE = "exit_code"
    CONFIG = "config"
    OUTPUT_DIR = "output_dir"
    RESUME_FROM = "resume_from"
    LAST_CHECKPOINT = "last_checkpoint"
    STARTED_AT = "started_at"
    ENDED_AT = "ended_at"
    LOG_OFFSET = "log_offset"
    STOP_REQUESTED = "stop_requested"
    SESSION = "session"
    MESSAGE = "message"
    STOP_METHOD = "stop_method"
    SUPERVISOR_PID = "supervisor_pid"
    TRAIN_PID = "train_pid"
    COMMIT = "commit"
    LAUNCHER = "launcher"
    GPU_COUNT = "gpu_count"
    REPO_DIR = "repo_dir"

    ALL = tuple(value for name, value in list(locals().items()) if name.isupper())  # in this order
