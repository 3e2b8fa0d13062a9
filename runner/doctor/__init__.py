"""`runner doctor`: every problem the first run would hit, found before any money is spent.

CHECKS is the list of check functions, in the order printed; each takes the Context and returns a
Check or a list of Checks (runner/doctor/check.py). A new check is one function and one line here.
None of them makes a billable call: only reads (RunPod GETs and GraphQL queries, `pulumi version`,
`pulumi stack output`, `git ls-remote`).
"""

from __future__ import annotations

from runner.doctor import idle, local, repo, runpod, stack, volume_s3
from runner.doctor.check import Check, CheckFunction, Context, Status, run_one

CHECKS: list[CheckFunction] = [
    local.env_file,
    local.ssh_key,
    local.public_key,
    stack.pulumi_cli,
    stack.stack,
    runpod.api_key,
    runpod.gpu_market,
    runpod.volume,
    volume_s3.s3_access,
    runpod.pod_state,
    idle.idle_stop,
    repo.repo_url,
    repo.train_config,
]


def run_checks(ctx: Context, checks: list[CheckFunction] | None = None) -> list[Check]:
    results: list[Check] = []
    for fn in CHECKS if checks is None else checks:
        results.extend(run_one(fn, ctx))
    return results


__all__ = ["CHECKS", "Check", "Context", "Status", "run_checks"]
