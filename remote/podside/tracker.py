"""One experiment-tracker run per training run, whatever the preemptions: every attempt of a run logs to
the same W&B run, the same MLflow run and the same TensorBoard directory, so the curves continue.

The supervisor adds to training's environment, each only where neither the user (the image, the pod's
environment, TRAIN_SECRETS) nor an earlier default set it:
  * WANDB_RUN_ID, the run id in W&B's alphabet (wandb_run_id), and WANDB_RESUME=allow: wandb.init(),
    which the Hugging Face WandbCallback calls, resumes that run (or creates it, the first time);
  * TENSORBOARD_LOGGING_DIR (read by transformers 5's TensorBoardCallback; 4.x reads its `logging_dir`
    argument): the config's logging_dir when it has one, else <output_dir>/runs/<run id>, instead of
    a new runs/<time>_<host> per attempt;
  * MLFLOW_RUN_ID: the MLflowCallback (any transformers since 4.26) gives it to mlflow.start_run(), which
    resumes that run and fails if it does not exist. So an MLflow run is created first, or found again
    by its tag runpod_trainer.run_id = <run id>, in the experiment the callback will use
    (MLFLOW_EXPERIMENT_NAME, else MLflow's active one), by the training venv's own mlflow
    (MLFLOW_HELPER, with training's environment: the tracking URI, credentials, the working directory a
    default `sqlite:///mlflow.db` is relative to). Without mlflow in the venv, or with
    DISABLE_MLFLOW_INTEGRATION=true, nothing is created; when it fails, training starts without it
    (a note in the log) and the callback makes a run of its own, as it would without the runner.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from typing import Callable, Dict, List, Mapping, Optional

from . import configfile

WANDB_ID_MAX = 64
MLFLOW_TAG = "runpod_trainer.run_id"
MLFLOW_TIMEOUT_S = 120.0  # a tracking server far away; the attempt starts without it after this

# Run by the training venv's python: `python -c MLFLOW_HELPER <run id>`; prints one JSON line.
MLFLOW_HELPER = r"""
import importlib.util, json, os, sys
if importlib.util.find_spec("mlflow") is None:
    print(json.dumps({"mlflow": None, "why": "not installed"}))
    sys.exit(0)
import mlflow
from mlflow.tracking import MlflowClient
run_id, tag = sys.argv[1], sys.argv[2]
name = os.environ.get("MLFLOW_EXPERIMENT_NAME")
if name:
    experiment = mlflow.set_experiment(name).experiment_id
else:
    active = getattr(getattr(mlflow.tracking, "fluent", None), "_get_experiment_id", None)
    experiment = (active() if active else None) or os.environ.get("MLFLOW_EXPERIMENT_ID") or "0"
client = MlflowClient()
found = client.search_runs([experiment], filter_string="tags.`%s` = '%s'" % (tag, run_id), max_results=1)
if found:
    print(json.dumps({"mlflow": found[0].info.run_id, "created": False}))
else:
    made = client.create_run(experiment, tags={tag: run_id, "mlflow.runName": run_id})
    print(json.dumps({"mlflow": made.info.run_id, "created": True}))
"""


def wandb_run_id(run_id: str) -> str:
    """The run id as a W&B run id: letters, digits, '-' and '_' (W&B refuses some punctuation and its
    ids name URLs), at most WANDB_ID_MAX characters; an id that had to change gets a short hash of the
    original, so two run ids never map to one W&B run."""
    safe = re.sub(r"[^A-Za-z0-9_-]", "-", run_id)
    if safe == run_id and len(safe) <= WANDB_ID_MAX:
        return safe
    digest = hashlib.sha256(run_id.encode("utf-8")).hexdigest()[:8]
    return f"{safe[: WANDB_ID_MAX - 9]}-{digest}"


def board_dir(config_path: str, repo_dir: str, output_dir: str, run_id: str) -> str:
    """TensorBoard's directory for every attempt: the config's logging_dir (relative = under the repo;
    `runner tensorboard` shows it), else <output_dir>/runs/<run id>."""
    try:
        data = configfile.load_mapping(config_path)
    except configfile.ConfigError:
        data = None
    value = data.get("logging_dir") if isinstance(data, dict) else None
    if isinstance(value, str) and value.strip() and "\n" not in value:
        return os.path.normpath(os.path.join(repo_dir, os.path.expanduser(value.strip())))
    return os.path.join(output_dir, "runs", wandb_run_id(run_id))


def _unset(env: Mapping[str, str], name: str) -> bool:
    return not env.get(name)


def defaults(env: Mapping[str, str], run_id: str, board: str) -> Dict[str, str]:
    """The W&B and TensorBoard values training gets, where env has none."""
    wanted = {
        "WANDB_RUN_ID": wandb_run_id(run_id),
        "WANDB_RESUME": "allow",
        "TENSORBOARD_LOGGING_DIR": board,
    }
    return {name: value for name, value in wanted.items() if _unset(env, name)}


def wants_mlflow_run(env: Mapping[str, str]) -> bool:
    disabled = (env.get("DISABLE_MLFLOW_INTEGRATION") or "").upper() in ("1", "TRUE", "YES", "ON")
    return _unset(env, "MLFLOW_RUN_ID") and not disabled


def parse_helper_output(stdout: Optional[str]) -> Optional[Dict[str, object]]:
    for line in reversed((stdout or "").strip().splitlines()):
        try:
            data = json.loads(line)
        except ValueError:
            continue
        if isinstance(data, dict) and "mlflow" in data:
            return data
    return None


def mlflow_run(
    run: Callable[[List[str]], Optional[str]], python: str, run_id: str, note: Callable[[str], None]
) -> Optional[str]:
    """The MLflow run id of this run, created or found by the venv's mlflow; None (said in a note when
    mlflow is there but failed). run(argv): the helper's stdout, None when it failed."""
    answer = parse_helper_output(run([python, "-c", MLFLOW_HELPER, run_id, MLFLOW_TAG]))
    if answer is None:
        note(
            "tracker: could not create or find this run's MLflow run (the lines above say why); an MLflow "
            "logger makes a new run for this attempt"
        )
        return None
    found = answer.get("mlflow")
    return found if isinstance(found, str) and found else None


def describe(values: Mapping[str, str]) -> str:
    """The log's note: what training was given (names and ids, never anything secret)."""
    parts = [f"{name}={values[name]}" for name in sorted(values)]
    return "tracker: " + ", ".join(parts)


__all__ = [
    "MLFLOW_TAG",
    "board_dir",
    "defaults",
    "describe",
    "mlflow_run",
    "parse_helper_output",
    "wandb_run_id",
    "wants_mlflow_run",
]
