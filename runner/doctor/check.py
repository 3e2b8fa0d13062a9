"""The doctor's vocabulary: one Check result per line, and the Context the check functions share.

A check function takes the Context and returns a Check or a list of them. It never spends money:
only reads (the RunPod API's GETs and GraphQL queries, `pulumi version` / `pulumi stack output`,
`git ls-remote`). What several checks need (the stack outputs, the API client, the pod) is read
once through Context.once(), which remembers a value or the error it raised.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from runner.errors import RunnerError
from runner.settings import Settings
from runner.types import StrEnum


class Status(StrEnum):
    OK = "ok"
    WARN = "warn"  # works, but worth knowing (not counted as a failure)
    FAIL = "fail"  # the first run would fail here: fix it first
    SKIP = "skip"  # could not be checked, because an earlier check failed


@dataclass(frozen=True)
class Check:
    name: str
    status: Status
    detail: str
    fix: str = ""  # what to do (a command or a setting), for warn and fail

    def as_dict(self) -> dict[str, str]:
        return {"name": self.name, "status": str(self.status), "detail": self.detail, "fix": self.fix}


def ok(name: str, detail: str) -> Check:
    return Check(name, Status.OK, detail)


def warn(name: str, detail: str, fix: str = "") -> Check:
    return Check(name, Status.WARN, detail, fix)


def fail(name: str, detail: str, fix: str) -> Check:
    return Check(name, Status.FAIL, detail, fix)


def skip(name: str, why: str) -> Check:
    return Check(name, Status.SKIP, why)


def named(name: str) -> Callable[[CheckFunction], CheckFunction]:
    """The name a check function's skip or crash line gets (default: the function's name)."""

    def mark(fn: CheckFunction) -> CheckFunction:
        fn.check_name = name  # type: ignore[attr-defined]  # a mark read back with getattr
        return fn

    return mark


class Prerequisite(Exception):
    """Raised inside a check when something it needs failed earlier: reported as skip."""


CheckResult = Check | Iterable[Check]
CheckFunction = Callable[["Context"], CheckResult]


@dataclass
class Context:
    settings: Settings
    config: str | None = None  # --config: the training config to check (default: configs/*.yaml)
    debug: bool = False  # --debug: a check that crashes also prints its traceback (stderr)
    _memo: dict[str, tuple[bool, Any]] = field(default_factory=dict)

    def once(self, key: str, compute: Callable[[], Any]) -> Any:
        """compute() the first time, its value (or the exception it raised, re-raised) after that."""
        if key not in self._memo:
            try:
                self._memo[key] = (True, compute())
            except Exception as e:  # noqa: BLE001 - remembered and re-raised to every caller
                self._memo[key] = (False, e)
        good, value = self._memo[key]
        if not good:
            raise value
        return value

    def remember(self, key: str, value: Any) -> None:
        self._memo[key] = (True, value)

    def known(self, key: str) -> bool:
        return key in self._memo and self._memo[key][0]


def run_one(fn: CheckFunction, ctx: Context) -> list[Check]:
    """One check function's results; an error it did not expect becomes a fail line, not a crash."""
    name = getattr(fn, "check_name", fn.__name__.replace("_", " "))
    try:
        result = fn(ctx)
    except Prerequisite as e:
        return [skip(name, str(e))]
    except RunnerError as e:
        return [fail(name, e.message, "fix the cause above, then run `python -m runner doctor` again")]
    except Exception as e:  # noqa: BLE001 - a doctor reports, it does not crash on one check
        from backends.runpod.errors import RunPodError
        from runner.errors import from_runpod_error

        if ctx.debug:
            import sys
            import traceback

            from runner.errors import redact

            print(redact(traceback.format_exc(), ctx.settings.secrets()), file=sys.stderr, end="")
        if isinstance(e, RunPodError):
            return [fail(name, from_runpod_error(e).message, "fix the cause above, then run the doctor again")]
        return [
            fail(
                name,
                f"the check itself failed: {type(e).__name__}: {e}",
                "run with --debug and report it; the other checks are unaffected",
            )
        ]
    return [result] if isinstance(result, Check) else list(result)


__all__ = [
    "Check",
    "CheckFunction",
    "Context",
    "Prerequisite",
    "Status",
    "fail",
    "named",
    "ok",
    "run_one",
    "skip",
    "warn",
]
