"""Shell completion through the real shells: the scripts `completion bash|zsh|fish` print are loaded
into bash, zsh and fish, and the completions come from the installed command (argcomplete)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent  # the venv's runpod-trainer and rptrain


@pytest.fixture
def project(tmp_path) -> Path:
    (tmp_path / "Pulumi.yaml").write_text("name: t\n")
    (tmp_path / "configs").mkdir()
    for name in ("baseline.yaml", "big.yaml", "smoke.yaml"):
        (tmp_path / "configs" / name).write_text("output_dir: checkpoints/x\n")
    return tmp_path


def _shell(argv: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("_ARC")}
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    return subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=60)


def bash_complete(line: str, cwd: Path) -> list[str]:
    """What bash's TAB would offer at the end of `line`, through the registered completion function."""
    words = line.split(" ")
    script = (
        "source <(runpod-trainer completion bash)\n"
        f'COMP_LINE="{line}"; COMP_POINT=${{#COMP_LINE}}; COMP_WORDS=({" ".join(repr(w) for w in words)});'
        f" COMP_CWORD={len(words) - 1}\n"
        f'"$(complete -p {words[0]} | sed "s/.*-F \\([^ ]*\\) .*/\\1/")" {words[0]} {words[-1]!r} {words[-2]!r}\n'
        'printf "%s\\n" "${COMPREPLY[@]}"\n'
    )
    done = _shell(["bash", "-c", script], cwd)
    assert done.returncode == 0, done.stderr
    return [w.strip() for w in done.stdout.splitlines() if w.strip()]


def test_bash_completes_commands_flags_and_configs(project):
    assert bash_complete("runpod-trainer tr", project) == ["train"]
    assert bash_complete("rptrain status --j", project) == ["--json"]
    assert bash_complete("runpod-trainer train --config configs/b", project) == [
        "configs/baseline.yaml",
        "configs/big.yaml",
    ]
    assert bash_complete("rptrain doctor --config ", project) == [
        "configs/baseline.yaml",
        "configs/big.yaml",
        "configs/smoke.yaml",
    ]


def test_fish_completes_commands_flags_and_configs(project):
    script = (
        "runpod-trainer completion fish | source\n"
        'complete -C "runpod-trainer sta"\n'
        "echo ---\n"
        'complete -C "rptrain train --config configs/s"\n'
    )
    done = _shell(["fish", "--no-config", "-c", script], project)
    assert done.returncode == 0, done.stderr
    commands, configs = done.stdout.split("---\n")
    assert [line.split("\t")[0] for line in commands.splitlines()] == ["status"]
    assert "show the pod, the current run and what it costs" in commands  # the summary as its description
    assert configs.split() == ["configs/smoke.yaml"]


def test_zsh_registers_the_completer_for_both_names(project):
    script = 'autoload -U compinit && compinit -u -D\neval "$(runpod-trainer completion zsh)"\nprint -r -- "$_comps[runpod-trainer] $_comps[rptrain]"\n'
    done = _shell(["zsh", "-f", "-c", script], project)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["_python_argcomplete", "_python_argcomplete"]


def test_zsh_asks_the_command_as_its_completer_does(project):
    """What the zsh function runs on TAB (the variables and redirections of argcomplete's zsh script):
    `name:description` pairs on fd 8."""
    script = (
        "COMP_LINE='runpod-trainer doc' COMP_POINT=18 _ARGCOMPLETE=1 _ARGCOMPLETE_SHELL=zsh "
        "_ARGCOMPLETE_SUPPRESS_SPACE=1 runpod-trainer 8>&1 9>&2 1>/dev/null 2>&1 </dev/null"
    )
    done = _shell(["zsh", "-f", "-c", script], project)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("\013") == ["doctor:check everything the first run needs, spending nothing"]
