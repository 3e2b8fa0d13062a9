"""RunPod behind a seam (issue 24): outside backends/ (and the RunPod-specific doctor and livecheck), the
runner never names RunPod's status words in code. Its state decisions read backends/states.py's neutral
facts, which backends/runpod/dialect.py maps RunPod's words to, so a second cloud changes no decision."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RUNPOD_WORDS = {"EXITED", "TERMINATED", "PROVISIONING", "RUNNING", "ERROR", "CREATED", "RESTARTING", "DEAD"}
ALLOWED = ("runner/doctor/", "runner/livecheck/")  # they check RunPod itself, by name


def test_the_runner_names_no_runpod_status_word_in_code():
    found = []
    for path in sorted((ROOT / "runner").rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        if rel.startswith(ALLOWED):
            continue
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("backends.runpod"):
                found += [f"{rel}:{node.lineno} imports {a.name}" for a in node.names if a.name in RUNPOD_WORDS]
            elif isinstance(node, ast.Constant) and isinstance(node.value, str):
                if node.value in RUNPOD_WORDS or node.value.lower().startswith("outbid"):
                    found.append(f"{rel}:{node.lineno} {node.value!r}")
    assert found == []
